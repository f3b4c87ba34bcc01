"""Placeholder probe: conda (being built)."""

from __future__ import annotations

from gpudoctor.facts import CondaFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> CondaFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: CondaFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="conda", title="conda", collect=collect, describe=describe, timeout=10)
