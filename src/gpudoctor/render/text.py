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
from gpudoctor.facts import ProbeStatus
from gpudoctor.model import Finding, Report, Severity
from gpudoctor.overview import describe_probe
from gpudoctor.probes import PROBES
from gpudoctor.probes.base import Mark
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.screen import PLAIN

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run

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
            console.print(line)


def probe_lines(report: Report, console: Console, verbose: bool) -> list[Line]:
    titles = {p.name: p.title for p in PROBES}
    # Hand-written or trimmed facts may carry no probe statuses: show the slots they do have.
    statuses = report.facts.probes or tuple(
        ProbeStatus(name=p.name) for p in PROBES if getattr(report.facts, p.name, None) is not None
    )
    width = max((len(titles.get(s.name, s.name)) for s in statuses), default=0)
    lines: list[Line] = []
    for status in statuses:
        value = getattr(report.facts, status.name, None)
        desc = describe_probe(status.name, value, status)
        title = titles.get(status.name, status.name).ljust(width)
        mark = _mark(desc.mark, console)
        lines.append((Text.assemble(mark, " ", (title, "bold"), "  "), Text(redact(desc.summary))))
        if verbose:
            indent = Text(" " * (len(mark) + 1 + width + 2))
            for detail in desc.details:
                lines.append((indent, Text(redact(detail), style="dim")))
            if status.seconds:
                lines.append((indent, Text(f"({status.seconds:.2f} s)", style="dim")))
    return lines


def finding_lines(finding: Finding, console: Console) -> list[Line]:
    head = Text.assemble(
        _mark(SEVERITY_MARK[finding.severity], console),
        " ",
        (finding.code, "bold"),
        " ",
        (finding.severity.value, SEVERITY_STYLE[finding.severity]),
        "  ",
    )
    lines: list[Line] = [(head, Text(redact(finding.message)))]
    pad = "    "
    for seen in finding.seen:
        lines.append((Text.assemble(pad, ("seen: ", "dim")), Text(redact(seen))))
    if finding.why:
        lines.append((Text.assemble(pad, ("why:  ", "dim")), Text(redact(finding.why))))
    for fix in finding.fixes:
        notes = [n for n, on in (("needs admin", fix.needs_admin), ("then reboot", fix.needs_reboot)) if on]
        summary = redact(fix.summary) + (f" ({', '.join(notes)})" if notes else "")
        lines.append((Text(pad + "fix:  ", style="green"), Text(summary, style="green")))
        prompt = "PS> " if fix.shell == "powershell" else "> " if fix.shell == "cmd" else "$ "
        for command in fix.commands:
            # Never wrapped by us (the terminal folds it, and a copy stays one runnable line) and not
            # redacted: a command must run as printed on this machine.
            lines.append(
                (
                    Text(pad + "      " + prompt, style="bold"),
                    Text(command, style="bold", no_wrap=True, overflow="ignore"),
                )
            )
    lines.append((Text(pad), Text(f"more: gpudoctor explain {finding.code}", style="dim")))
    return lines


def summary_line(report: Report) -> Text:
    errors, warnings, infos = (report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    checks = report.checks_run
    if errors:
        head = Text(f"{errors} error{'s' * (errors != 1)}", style="bold red")
    else:
        head = Text("No errors", style="bold green")
    tail = (
        f", {warnings} warning{'s' * (warnings != 1)}, {infos} note{'s' * (infos != 1)}"
        f" · {checks} check{'s' * (checks != 1)} ran"
    )
    verdict = ""
    if not errors:
        verdict = " · a usable NVIDIA GPU was found" if report.has_usable_gpu else " · no usable NVIDIA GPU"
    return Text.assemble(head, tail, verdict)


def render_report(report: Report, console: Console, *, verbose: bool = False) -> None:
    target = report.facts.target
    python = report.facts.python
    version = f" {python.version}" if python and python.version else ""
    console.print(
        Text.assemble(
            (f"gpudoctor {__version__}", "bold"),
            " · target Python",
            version,
            ": ",
            redact(target.python) if target.python else ("not recorded in these facts", "dim"),
            (f" (from {target.selected_by})" if target.python else "", "dim"),
        )
    )
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
    console.print(summary_line(report))
    if hidden:
        console.print(
            Text(f"{hidden} note{'s' * (hidden != 1)} hidden; run with -v to see them", style="dim")
        )


def render(run: Run, options: RenderOptions) -> str:
    console, buffer = (options.screen or PLAIN).console()
    render_report(run.report, console, verbose=options.verbose)
    if run.policy.require_gpu and not run.report.has_usable_gpu:
        console.print("--require-gpu: no usable NVIDIA GPU was found", style="bold red")
    return buffer.getvalue()
