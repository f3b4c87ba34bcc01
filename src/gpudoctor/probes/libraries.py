"""Placeholder probe: CUDA libraries (being built)."""

from __future__ import annotations

from gpudoctor.facts import LibrariesFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> LibrariesFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: LibrariesFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="libraries", title="CUDA libraries", collect=collect, describe=describe, timeout=10)
