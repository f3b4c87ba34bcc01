"""A report that pastes into a GitHub issue: the probe table, the findings with their fixes in code
blocks, and the facts folded in a `<details>` block.

Strings from the machine are escaped for Markdown and HTML (a package's metadata cannot open a tag,
a link or a table cell of its own), and every command sits alone on its own line of a fenced block.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from gpudoctor import __version__
from gpudoctor.model import Finding, Severity
from gpudoctor.overview import framework_notice, probe_rows, provenance
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import visible

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run

MARK = {"ok": "✅ ok", "warn": "⚠️ warning", "fail": "❌ error", "none": "➖"}
SEVERITY = {Severity.ERROR: "❌", Severity.WARNING: "⚠️", Severity.INFO: "ℹ️"}
FENCE_LANGUAGE = {"bash": "bash", "powershell": "powershell", "cmd": "bat"}
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_BLOCK_START = re.compile(r"^(\s*)([#>+\-=]|\d+(?=[.)]))")


def md(text: str, *, line_start: bool = False) -> str:
    """Machine text as literal Markdown inline text: controls visible, HTML and Markdown escaped
    (and, at the start of a line, whatever would open a heading, list or quote)."""
    text = visible(redact(text))
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _SPECIAL.sub(r"\\\1", text)
    if not line_start:
        return text
    return _BLOCK_START.sub(lambda m: m[1] + (m[2] + "\\" if m[2][0].isdigit() else "\\" + m[2]), text)


def code_span(text: str) -> str:
    text = visible(redact(text))
    ticks = "`" * (max((len(m) for m in re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fenced(lines: list[str], language: str = "") -> str:
    body = "\n".join(visible(line) for line in lines)
    fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
    return f"{fence}{language}\n{body}\n{fence}"


def finding_block(finding: Finding) -> str:
    parts = [f"### {SEVERITY[finding.severity]} {finding.code} {finding.severity.value}: {md(finding.title)}"]
    parts.append(md(finding.message, line_start=True))
    details = [f"- seen: {md(s)}" for s in finding.seen]
    if finding.why:
        details.append(f"- why: {md(finding.why)}")
    if details:
        parts.append("\n".join(details))
    for fix in finding.fixes:
        notes = [n for n, on in (("needs admin", fix.needs_admin), ("then reboot", fix.needs_reboot)) if on]
        where = str(getattr(fix, "where", "") or "")
        label = {"host": "Fix, on the host", "container": "Fix, inside the container"}.get(where, "Fix")
        parts.append(f"**{label}:** {md(fix.summary)}" + (f" ({', '.join(notes)})" if notes else ""))
        if fix.commands:
            parts.append(fenced(list(fix.commands), FENCE_LANGUAGE.get(fix.shell, "")))
    parts.append(f"More: `gpudoctor explain {finding.code}`")
    return "\n\n".join(parts)


def summary(run: Run) -> str:
    report = run.report
    errors, warnings, infos = (report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    counts = (
        f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}, "
        f"{infos} note{'s' * (infos != 1)} · {report.checks_run} checks ran · "
        + ("a usable NVIDIA GPU was found" if report.has_usable_gpu else "no usable NVIDIA GPU")
    )
    if run.decision.failed and not errors:
        because = {"warnings": "because of warnings (--fail-on warning)", "no-gpu": "(--require-gpu)"}
        return f"**Failed {because.get(run.decision.reason, '')}**: {counts}"
    return f"**{counts[0].upper()}{counts[1:]}**" if errors else f"**No errors**: {counts}"


def render(run: Run, options: RenderOptions) -> str:
    from gpudoctor.render.json import dumps_facts

    report = run.report
    facts = report.facts
    target = facts.target
    python = facts.python
    head = [
        "## gpudoctor report",
        f"gpudoctor {__version__} · target Python {md(python.version) if python and python.version else ''}: "
        + (
            f"{code_span(target.python)} (from {md(target.selected_by)})" if target.python else "not recorded"
        ),
    ]
    replay = provenance(facts, run.origin)
    if replay:
        head.append(f"> {md(replay)}")
    notice = framework_notice(facts)
    if notice:
        head.append(f"> [!WARNING]\n> {md(notice)}")
    rows = ["| | part | what gpudoctor saw |", "| --- | --- | --- |"]
    for row in probe_rows(report):
        reason = f" · **{md(row.reason)}**" if row.reason else ""
        rows.append(f"| {MARK[row.mark]} | {md(row.title)} | {md(row.summary)}{reason} |")
    head.append("\n".join(rows))
    shown = [f for f in report.findings if options.verbose or f.severity is not Severity.INFO]
    body = [finding_block(f) for f in shown]
    hidden = len(report.findings) - len(shown)
    tail = [summary(run)]
    if hidden:
        tail.append(f"{hidden} note{'s' * (hidden != 1)} not shown (`gpudoctor check -v` shows them).")
    tail.append(
        "<details><summary>Facts (JSON; replay with <code>gpudoctor check --facts FILE</code>)</summary>\n\n"
        + fenced(dumps_facts(facts, redact=False).splitlines(), "json")
        + "\n\n</details>"
    )
    return "\n\n".join(head + body + tail) + "\n"
