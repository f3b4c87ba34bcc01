"""The `--json` document: schema_version, the facts, and the findings."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from gpudoctor import __version__
from gpudoctor.facts import SCHEMA_VERSION, Facts
from gpudoctor.model import Finding, Report, Severity
from gpudoctor.redact import redact, redact_facts
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import json_safe
from gpudoctor.serde import to_data

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run


def finding_data(finding: Finding) -> dict[str, Any]:
    return {
        "code": finding.code,
        "severity": finding.severity.value,
        "title": finding.title,
        "check": finding.check,
        "part": finding.part,
        "message": finding.message,
        "why": finding.why,
        "seen": list(finding.seen),
        "fix": list(finding.fix_commands),
        "fixes": [to_data(f) for f in finding.fixes],
        "explain": f"gpudoctor explain {finding.code}",
    }


def report_data(report: Report, run: Run | None = None) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "errors": report.count(Severity.ERROR),
        "warnings": report.count(Severity.WARNING),
        "info": report.count(Severity.INFO),
        "usable_gpu": report.has_usable_gpu,
        "checks_run": report.checks_run,
    }
    if run is not None:
        summary["exit_code"] = run.decision.exit_code
        summary["failed_because"] = run.decision.reason or None
    data: dict[str, Any] = redact(
        {
            "schema_version": SCHEMA_VERSION,
            "gpudoctor_version": __version__,
            "summary": summary,
            "matrix": report.matrix_source,
            "findings": [finding_data(f) for f in report.findings],
            "checks": [to_data(o) for o in report.outcomes],
            "facts": to_data(report.facts),
        }
    )
    return data


def dumps_report(report: Report, run: Run | None = None) -> str:
    return json_safe(json.dumps(report_data(report, run), indent=2, ensure_ascii=False))


def dumps_facts(facts: Facts, *, redact: bool = True) -> str:
    data = to_data(redact_facts(facts) if redact else facts)  # structure-aware: the same findings on replay
    return json_safe(json.dumps(data, indent=2, ensure_ascii=False))


def render(run: Run, options: RenderOptions) -> str:
    return dumps_report(run.report, run) + "\n"
