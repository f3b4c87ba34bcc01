"""What every renderer says above the findings: one row per probe, where the facts came from, and
whether the diagnosed environment holds a GPU framework at all.

A probe row's mark agrees with the findings: it is the worst severity among the findings about
that part of the stack (`Finding.part`, the probe's name), and a mark other than ok carries its
reason on the row itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gpudoctor.facts import ProbeStatus
from gpudoctor.probes import PROBES
from gpudoctor.probes.base import Description, Mark

if TYPE_CHECKING:
    from gpudoctor.facts import Facts
    from gpudoctor.model import Finding, Report
    from gpudoctor.pipeline import Origin

FAILED_STATES = ("error", "timeout", "crash")
_RANK: dict[Mark, int] = {"fail": 0, "warn": 1, "ok": 2, "none": 3}


def describe_probe(name: str, value: Any, status: ProbeStatus | None) -> Description:
    probe = next((p for p in PROBES if p.name == name), None)
    if status is not None and status.state != "ok":
        mark: Mark = "none" if status.state in ("unavailable", "skipped") else "fail"
        return Description(mark=mark, summary=f"{status.state}: {status.detail}".rstrip(": "))
    if value is None or probe is None:
        return Description(mark="none", summary="not collected")
    try:
        return probe.describe(value)
    except Exception as exc:  # noqa: BLE001 - a describe bug must not cost the user the report
        return Description(mark="warn", summary=f"(could not summarise: {type(exc).__name__}: {exc})")


@dataclass(frozen=True, kw_only=True)
class ProbeRow:
    name: str
    title: str
    mark: Mark
    summary: str  # what the probe saw
    reason: str = ""  # why the mark is not ok: the worst finding about this part ("GD301: ...")
    details: tuple[str, ...] = ()
    seconds: float = 0.0


def part_of(finding: Finding) -> str:
    """The probe a finding is about (`Finding.part`, stamped from the rule); "" when unknown."""
    part = getattr(finding, "part", "")
    return part if isinstance(part, str) else ""


def _findings_name_parts() -> bool:
    import dataclasses

    from gpudoctor.model import Finding

    return any(f.name == "part" for f in dataclasses.fields(Finding))


def probe_rows(report: Report) -> list[ProbeRow]:
    from gpudoctor.model import Severity

    titles = {p.name: p.title for p in PROBES}
    # Hand-written or trimmed facts may carry no probe statuses: show the slots they do have.
    statuses = report.facts.probes or tuple(
        ProbeStatus(name=p.name) for p in PROBES if getattr(report.facts, p.name, None) is not None
    )
    severity_mark: dict[Severity, Mark] = {Severity.ERROR: "fail", Severity.WARNING: "warn"}
    rows = []
    for status in statuses:
        desc = describe_probe(status.name, getattr(report.facts, status.name, None), status)
        about = [f for f in report.findings if part_of(f) == status.name and f.severity is not Severity.INFO]
        reason = ""
        if not _findings_name_parts():  # until rules say which part they are about: the probe's own mark
            mark = desc.mark
        elif about:
            worst = about[0]  # findings are sorted by severity
            mark = severity_mark[worst.severity]
            more = f" (+{len(about) - 1} more)" if len(about) > 1 else ""
            reason = f"{worst.code}: {worst.title}{more}"
        elif status.state in FAILED_STATES:
            mark = "warn"  # the probe failed: GD001 says so below
            reason = "GD001: this probe did not finish"
        elif desc.mark in ("warn", "fail"):
            mark = "none"  # the probe saw something odd that no finding calls a problem here
        else:
            mark = desc.mark
        rows.append(
            ProbeRow(
                name=status.name,
                title=titles.get(status.name, status.name),
                mark=mark,
                summary=desc.summary,
                reason=reason,
                details=desc.details,
                seconds=status.seconds,
            )
        )
    return rows


def worst_mark(marks: list[Mark]) -> Mark:
    return min(marks, key=_RANK.__getitem__, default="none")


def machine_kind(facts: Facts) -> str:
    """A few words for the machine the facts describe: "Linux x86_64 (WSL2)", "Windows AMD64"."""
    p = facts.platform
    if p is None:
        return "an unrecorded machine"
    words = [p.distro or p.system or "unknown system", p.machine]
    extra = [f"WSL{p.wsl}" if p.wsl else "", f"in a {p.container} container" if p.container else ""]
    kind = " ".join(w for w in words if w)
    extras = ", ".join(e for e in extra if e)
    return f"{kind} ({extras})" if extras else kind


def provenance(facts: Facts, origin: Origin) -> str | None:
    """For a replay: the file, when and on what kind of machine it was collected, by which version."""
    if origin.kind != "replay":
        return None
    when = getattr(facts, "collected_at", "") or "at an unrecorded time"
    when = when if when.startswith("at ") else f"at {when}"
    version = f"gpudoctor {facts.gpudoctor_version}" if facts.gpudoctor_version else "an unrecorded gpudoctor"
    return (
        f"Replayed from {origin.path}: facts collected {when} on {machine_kind(facts)} by {version}; "
        "nothing on this machine was probed."
    )


def framework_notice(facts: Facts) -> str | None:
    """When the diagnosed environment holds no TensorFlow, PyTorch or JAX: say so, and how to point
    gpudoctor at the environment that has it."""
    from gpudoctor.distributions import FRAMEWORK_DISTRIBUTIONS

    python = facts.python
    if python is None or python.error:
        return None
    wanted = {name for names in FRAMEWORK_DISTRIBUTIONS.values() for name in names}
    if any(d.name in wanted for d in python.distributions):
        return None
    if any(getattr(getattr(facts, name, None), "installed", False) for name in FRAMEWORK_DISTRIBUTIONS):
        return None
    where = facts.target.python or python.executable or "the target interpreter"
    windows = facts.platform is not None and facts.platform.system == "Windows"
    example = "C:\\path\\to\\env\\Scripts\\python.exe" if windows else "/path/to/env/bin/python"
    return (
        f"No GPU framework (TensorFlow, PyTorch, JAX) is installed in the environment diagnosed here "
        f"({where}, chosen by {facts.target.selected_by}), so this report cannot say why one does not "
        "see the GPU. Point gpudoctor at the environment that has it: "
        f"`gpudoctor check --python {example}`, or activate that environment and run "
        "`gpudoctor check` again (with gpudoctor installed by `pipx install .` it runs in any environment)."
    )
