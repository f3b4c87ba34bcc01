"""Placeholder probe: TensorFlow (being built)."""

from __future__ import annotations

from gpudoctor.facts import TensorFlowFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> TensorFlowFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: TensorFlowFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="tensorflow", title="TensorFlow", collect=collect, describe=describe, timeout=10)
