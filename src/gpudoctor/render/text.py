"""The terminal report: one line per probe, then the findings with their fixes, then a summary.

Colour and glyphs only where rich says the terminal takes them; piped output and NO_COLOR get
plain text that pastes cleanly into a bug report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from gpudoctor import __version__
from gpudoctor.model import Finding, Report, Severity
from gpudoctor.overview import framework_notice, probe_rows, provenance
from gpudoctor.probes.base import Mark
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import visible
from gpudoctor.render.screen import PLAIN

if TYPE_CHECKING:
    from gpudoctor.pipeline import Decision, Origin, Run

MARKS: dict[Mark, tuple[str, str, str]] = {
    "ok": ("✓", "[ok]", "green"),
    "warn": ("!", "[!!]", "yellow"),
    "fail": ("✗", "[XX]", "red"),
    "none": ("·", "[--]", "dim"),
}
SEVERITY_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "bold yellow", Severity.INFO: "cyan"}
SEVERITY_MARK: dict[Severity, Mark] = {
    Severity.ERROR: "fail",
    Severity.WARNING: "warn",
    Severity.INFO: "none",
}


def _mark(mark: Mark, console: Console) -> Text:
    glyph, ascii_glyph, style = MARKS[mark]
    fancy = console.is_terminal and (console.encoding or "").lower().startswith("utf")
    return Text(glyph if fancy else ascii_glyph, style=style)


Line = tuple[Text, Text]  # a prefix (mark, title, label) and the text after it


def print_lines(console: Console, lines: list[Line]) -> None:
    """On a terminal, wrapped text hangs under its column; piped, each line is printed whole."""
    for prefix, body in lines:
        if console.is_terminal and not body.no_wrap:
            grid = Table.grid()
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            grid.add_row(prefix, body)
            console.print(grid)
        else:
            line = Text.assemble(prefix, body, no_wrap=body.no_wrap, overflow=body.overflow)
            line.rstrip()
            # A command is one physical line whatever the width: rich neither wraps nor crops it, and
            # the terminal folds it on screen (a copy stays one runnable line).
            console.print(line, soft_wrap=True if body.no_wrap else None)


def probe_lines(report: Report, console: Console, verbose: bool) -> list[Line]:
    rows = probe_rows(report)
    width = max((len(r.title) for r in rows), default=0)
    lines: list[Line] = []
    for row in rows:
        mark = _mark(row.mark, console)
        body = Text(visible(redact(row.summary)))
        if row.reason:
            body.append(" · ")
            body.append(visible(row.reason), style=MARKS[row.mark][2])
        lines.append((Text.assemble(mark, " ", (row.title.ljust(width), "bold"), "  "), body))
        if verbose:
            indent = Text(" " * (len(mark) + 1 + width + 2))
            for detail in row.details:
                lines.append((indent, Text(visible(redact(detail)), style="dim")))
            if row.seconds:
                lines.append((indent, Text(f"({row.seconds:.2f} s)", style="dim")))
    return lines


WHERE_LABEL = {"host": "on the host", "container": "inside the container"}


def finding_lines(finding: Finding, console: Console) -> list[Line]:
    head = Text.assemble(
        _mark(SEVERITY_MARK[finding.severity], console),
        " ",
        (finding.code, "bold"),
        " ",
        (finding.severity.value, SEVERITY_STYLE[finding.severity]),
        "  ",
    )
    lines: list[Line] = [(head, Text(visible(redact(finding.message))))]
    pad = "    "
    for seen in finding.seen:
        lines.append((Text.assemble(pad, ("seen: ", "dim")), Text(visible(redact(seen)))))
    if finding.why:
        lines.append((Text.assemble(pad, ("why:  ", "dim")), Text(visible(redact(finding.why)))))
    for fix in finding.fixes:
        notes = [n for n, on in (("needs admin", fix.needs_admin), ("then reboot", fix.needs_reboot)) if on]
        summary = visible(redact(fix.summary)) + (f" ({', '.join(notes)})" if notes else "")
        where = WHERE_LABEL.get(str(getattr(fix, "where", "") or ""))
        label = f"fix ({where}): " if where else "fix:"
        lines.append((Text(f"{pad}{label:<6}", style="green"), Text(summary, style="green")))
        prompt = "PS> " if fix.shell == "powershell" else "> " if fix.shell == "cmd" else "$ "
        for command in fix.commands:
            # Never wrapped by us (the terminal folds it, and a copy stays one runnable line) and not
            # redacted: a command must run as printed on this machine.
            lines.append(
                (
                    Text(pad + "      " + prompt, style="bold"),
                    Text(visible(command), style="bold", no_wrap=True, overflow="ignore"),
                )
            )
    lines.append((Text(pad), Text(f"more: gpudoctor explain {finding.code}", style="dim")))
    return lines


def summary_line(report: Report, decision: Decision | None = None) -> Text:
    errors, warnings, infos = (report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    checks = report.checks_run
    counts = (
        f", {warnings} warning{'s' * (warnings != 1)}, {infos} note{'s' * (infos != 1)}"
        f" · {checks} check{'s' * (checks != 1)} ran"
    )
    gpu = " · a usable NVIDIA GPU was found" if report.has_usable_gpu else " · no usable NVIDIA GPU"
    if errors:
        return Text.assemble((f"{errors} error{'s' * (errors != 1)}", "bold red"), counts)
    if decision is not None and decision.failed:
        because = {
            "warnings": f"because of {warnings} warning{'s' * (warnings != 1)} (--fail-on warning)",
            "no-gpu": "because no usable NVIDIA GPU was found (--require-gpu)",
        }.get(decision.reason, "")
        return Text.assemble((f"Failed {because}".rstrip(), "bold red"), ": no errors", counts, gpu)
    return Text.assemble(("No errors", "bold green"), counts, gpu)


def render_report(
    report: Report,
    console: Console,
    *,
    verbose: bool = False,
    decision: Decision | None = None,
    origin: Origin | None = None,
) -> None:
    target = report.facts.target
    python = report.facts.python
    version = f" {python.version}" if python and python.version else ""
    console.print(
        Text.assemble(
            (f"gpudoctor {__version__}", "bold"),
            " · target Python",
            visible(version),
            ": ",
            visible(redact(target.python)) if target.python else ("not recorded in these facts", "dim"),
            (f" (from {visible(target.selected_by)})" if target.python else "", "dim"),
        )
    )
    replay = provenance(report.facts, origin) if origin is not None else None
    if replay:
        console.print(Text(visible(redact(replay)), style="dim"))
    notice = framework_notice(report.facts)
    if notice:
        console.print()
        print_lines(console, [(Text("note: ", style="bold yellow"), Text(visible(redact(notice))))])
    console.print()
    print_lines(console, probe_lines(report, console, verbose))
    shown = [f for f in report.findings if verbose or f.severity is not Severity.INFO]
    hidden = len(report.findings) - len(shown)
    if shown:
        console.print()
        for finding in shown:
            print_lines(console, finding_lines(finding, console))
            console.print()
    else:
        console.print()
    console.print(summary_line(report, decision))
    if hidden:
        console.print(
            Text(f"{hidden} note{'s' * (hidden != 1)} hidden; run with -v to see them", style="dim")
        )


def render(run: Run, options: RenderOptions) -> str:
    console, buffer = (options.screen or PLAIN).console()
    render_report(run.report, console, verbose=options.verbose, decision=run.decision, origin=run.origin)
    return buffer.getvalue()
