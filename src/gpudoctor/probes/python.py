"""Placeholder probe: Python packages (being built)."""

from __future__ import annotations

from gpudoctor.facts import PythonFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> PythonFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: PythonFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="python", title="Python packages", collect=collect, describe=describe, timeout=10)
