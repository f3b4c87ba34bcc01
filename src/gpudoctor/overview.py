"""The report's view of each probe: the one-line summary and details of its facts."""

from __future__ import annotations

from typing import Any

from gpudoctor.facts import ProbeStatus
from gpudoctor.probes import PROBES
from gpudoctor.probes.base import Description, Mark


def describe_probe(name: str, value: Any, status: ProbeStatus | None) -> Description:
    probe = next((p for p in PROBES if p.name == name), None)
    if status is not None and status.state != "ok":
        mark: Mark = "none" if status.state in ("unavailable", "skipped") else "fail"
        return Description(mark=mark, summary=f"{status.state}: {status.detail}".rstrip(": "))
    if value is None or probe is None:
        return Description(mark="none", summary="not collected")
    try:
        return probe.describe(value)
    except Exception as exc:  # noqa: BLE001 - a describe bug must not cost the report  # a describe bug must not cost the user the report
        return Description(mark="warn", summary=f"(could not summarise: {type(exc).__name__}: {exc})")
