"""Probes, in report order. Add a probe here and a slot for its facts in `facts.Facts`."""

from __future__ import annotations

from typing import Any

from gpudoctor.probes.base import Description, Probe, ProbeContext
from gpudoctor.probes.environment import PROBE as ENVIRONMENT
from gpudoctor.probes.platform import PROBE as PLATFORM

PROBES: tuple[Probe[Any], ...] = (
    PLATFORM,
    ENVIRONMENT,
)

__all__ = ["PROBES", "Description", "Probe", "ProbeContext"]
