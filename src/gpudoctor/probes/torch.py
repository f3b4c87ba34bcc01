"""Placeholder probe: PyTorch (being built)."""

from __future__ import annotations

from gpudoctor.facts import TorchFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> TorchFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: TorchFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="torch", title="PyTorch", collect=collect, describe=describe, timeout=10)
