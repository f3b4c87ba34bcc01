"""Placeholder probe: NVIDIA driver (being built)."""

from __future__ import annotations

from gpudoctor.facts import DriverFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> DriverFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: DriverFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="driver", title="NVIDIA driver", collect=collect, describe=describe, timeout=10)
