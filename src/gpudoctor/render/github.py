"""GitHub Actions workflow commands: one `::error`/`::warning` annotation per finding.

Under `GITHUB_ACTIONS=true` the CLI adds these to any format (unless `--no-annotations`), and a
Markdown summary goes to `$GITHUB_STEP_SUMMARY`; `--format github` prints them alone, with a closing
notice. Values are escaped as the runner expects (`%`, CR, LF; `:` and `,` in properties too), so a
string from the machine can neither end the annotation nor start a workflow command of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gpudoctor.model import Finding, Severity
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import visible

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run

COMMAND = {Severity.ERROR: "error", Severity.WARNING: "warning", Severity.INFO: "notice"}


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _clean(text: str) -> str:
    return visible(redact(text))


def annotation(finding: Finding) -> str:
    lines = [_clean(finding.message)]
    lines += [f"seen: {_clean(s)}" for s in finding.seen]
    if finding.why:
        lines.append(f"why: {_clean(finding.why)}")
    for fix in finding.fixes:
        lines.append(f"fix: {_clean(fix.summary)}")
        lines += [f"    {visible(c)}" for c in fix.commands]  # each command whole, on its own line
    lines.append(f"more: gpudoctor explain {finding.code}")
    title = escape_property(f"{finding.code} {finding.severity.value}: {_clean(finding.title)}")
    return f"::{COMMAND[finding.severity]} title={title}::{escape_data(chr(10).join(lines))}\n"


def render(run: Run, options: RenderOptions) -> str:
    findings = [f for f in run.report.findings if options.verbose or f.severity is not Severity.INFO]
    text = "".join(annotation(f) for f in findings)
    if options.extras.get("annotations_only"):
        return text
    report = run.report
    errors, warnings = report.count(Severity.ERROR), report.count(Severity.WARNING)
    verdict = "failed" if run.decision.failed else "passed"
    because = f" because of {run.decision.reason}" if run.decision.reason else ""
    summary = (
        f"gpudoctor {verdict}{because}: {errors} error{'s' * (errors != 1)}, "
        f"{warnings} warning{'s' * (warnings != 1)}, usable GPU: {'yes' if report.has_usable_gpu else 'no'}"
    )
    return text + f"::notice title=gpudoctor::{escape_data(summary)}\n"
