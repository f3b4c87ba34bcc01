"""Placeholder probe: CUDA toolkit (being built)."""

from __future__ import annotations

from gpudoctor.facts import ToolkitFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> ToolkitFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: ToolkitFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="toolkit", title="CUDA toolkit", collect=collect, describe=describe, timeout=10)
