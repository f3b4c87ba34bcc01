"""Placeholder probe: JAX (being built)."""

from __future__ import annotations

from gpudoctor.facts import JaxFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable


def collect(ctx: ProbeContext) -> JaxFacts:
    raise ProbeUnavailable("not built yet")


def describe(facts: JaxFacts) -> Description:
    return Description(mark="none", summary="")


PROBE = Probe(name="jax", title="JAX", collect=collect, describe=describe, timeout=10)
