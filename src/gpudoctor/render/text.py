"""The terminal report: one line per probe, then the findings with their fixes, then a summary.

Colour and glyphs only where rich says the terminal takes them; piped output and NO_COLOR get
plain text that pastes cleanly into a bug report.

The report is first made of `Styled` text (pieces with rich style names), then drawn: by rich on a
terminal, and without importing rich when piped, where every line is printed whole and unstyled
(what rich prints there too: tests/test_golden.py holds the piped output, tests/test_plain_output.py
that both ways agree). rich and its imports were a tenth of a piped `gpudoctor check` (issue #12).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal, Union

from gpudoctor import __version__
from gpudoctor.model import Finding, Report, Severity
from gpudoctor.overview import framework_notice, probe_rows, provenance
from gpudoctor.probes.base import Mark
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import visible
from gpudoctor.render.screen import PLAIN

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

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

Part = Union[str, tuple[str, str], "Styled"]


class Styled:
    """Text as rich would hold it, without rich: parts (a string, a (string, style) pair or Styled text)
    under one style. `Styled("x", style="dim")` is `Text("x", style="dim")`; several parts are
    `Text.assemble(...)`; `no_wrap` marks a command, one physical line whatever the width."""

    __slots__ = ("no_wrap", "parts", "style")

    def __init__(self, *parts: Part, style: str = "", no_wrap: bool = False) -> None:
        self.parts = parts
        self.style = style
        self.no_wrap = no_wrap

    @property
    def plain(self) -> str:
        return "".join(
            p if isinstance(p, str) else p.plain if isinstance(p, Styled) else p[0] for p in self.parts
        )

    def rich(self) -> Text:
        from rich.text import Text

        overflow: Literal["ignore"] | None = "ignore" if self.no_wrap else None
        wrap = True if self.no_wrap else None
        if len(self.parts) == 1 and isinstance(self.parts[0], str):
            return Text(self.parts[0], style=self.style, no_wrap=wrap, overflow=overflow)
        parts = [p.rich() if isinstance(p, Styled) else p for p in self.parts]
        return Text.assemble(*parts, style=self.style, no_wrap=wrap, overflow=overflow)


def fancy_marks(console: Console) -> bool:
    """Glyphs (✓ ✗) on a UTF-8 terminal, [ok] [XX] anywhere else."""
    return bool(console.is_terminal) and (console.encoding or "").lower().startswith("utf")


def _mark(mark: Mark, fancy: bool) -> Styled:
    glyph, ascii_glyph, style = MARKS[mark]
    return Styled(glyph if fancy else ascii_glyph, style=style)


Line = tuple[Styled, Styled]  # a prefix (mark, title, label) and the text after it


def print_lines(console: Console, lines: list[Line]) -> None:
    """On a terminal, wrapped text hangs under its column; piped, each line is printed whole."""
    from rich.table import Table
    from rich.text import Text

    for prefix, body in lines:
        if console.is_terminal and not body.no_wrap:
            grid = Table.grid()
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            grid.add_row(prefix.rich(), body.rich())
            console.print(grid)
        else:
            rich_body = body.rich()
            line = Text.assemble(
                prefix.rich(), rich_body, no_wrap=rich_body.no_wrap, overflow=rich_body.overflow
            )
            line.rstrip()
            # A command is one physical line whatever the width: rich neither wraps nor crops it, and
            # the terminal folds it on screen (a copy stays one runnable line).
            console.print(line, soft_wrap=True if body.no_wrap else None)


def probe_lines(report: Report, fancy: bool, verbose: bool) -> list[Line]:
    rows = probe_rows(report)
    width = max((len(r.title) for r in rows), default=0)
    lines: list[Line] = []
    for row in rows:
        mark = _mark(row.mark, fancy)
        summary: list[Part] = [visible(redact(row.summary))]
        if row.reason:
            summary += [" · ", (visible(row.reason), MARKS[row.mark][2])]
        lines.append((Styled(mark, " ", (row.title.ljust(width), "bold"), "  "), Styled(*summary)))
        if verbose:
            indent = Styled(" " * (len(mark.plain) + 1 + width + 2))
            for detail in row.details:
                lines.append((indent, Styled(visible(redact(detail)), style="dim")))
            if row.seconds:
                lines.append((indent, Styled(f"({row.seconds:.2f} s)", style="dim")))
    return lines


WHERE_LABEL = {"host": "on the host", "container": "inside the container"}


def finding_lines(finding: Finding, fancy: bool) -> list[Line]:
    head = Styled(
        _mark(SEVERITY_MARK[finding.severity], fancy),
        " ",
        (finding.code, "bold"),
        " ",
        (finding.severity.value, SEVERITY_STYLE[finding.severity]),
        "  ",
    )
    lines: list[Line] = [(head, Styled(visible(redact(finding.message))))]
    pad = "    "
    for seen in finding.seen:
        lines.append((Styled(pad, ("seen: ", "dim")), Styled(visible(redact(seen)))))
    if finding.why:
        lines.append((Styled(pad, ("why:  ", "dim")), Styled(visible(redact(finding.why)))))
    for fix in finding.fixes:
        notes = [n for n, on in (("needs admin", fix.needs_admin), ("then reboot", fix.needs_reboot)) if on]
        summary = visible(redact(fix.summary)) + (f" ({', '.join(notes)})" if notes else "")
        where = WHERE_LABEL.get(str(getattr(fix, "where", "") or ""))
        label = f"fix ({where}): " if where else "fix:"
        lines.append((Styled(f"{pad}{label:<6}", style="green"), Styled(summary, style="green")))
        prompt = "PS> " if fix.shell == "powershell" else "> " if fix.shell == "cmd" else "$ "
        for command in fix.commands:
            # Never wrapped by us (the terminal folds it, and a copy stays one runnable line) and not
            # redacted: a command must run as printed on this machine.
            lines.append(
                (
                    Styled(pad + "      " + prompt, style="bold"),
                    Styled(visible(command), style="bold", no_wrap=True),
                )
            )
    lines.append((Styled(pad), Styled(f"more: gpudoctor explain {finding.code}", style="dim")))
    return lines


def summary_line(report: Report, decision: Decision | None = None) -> Styled:
    errors, warnings, infos = (report.count(s) for s in (Severity.ERROR, Severity.WARNING, Severity.INFO))
    checks = report.checks_run
    counts = (
        f", {warnings} warning{'s' * (warnings != 1)}, {infos} note{'s' * (infos != 1)}"
        f" · {checks} check{'s' * (checks != 1)} ran"
    )
    gpu = " · a usable NVIDIA GPU was found" if report.has_usable_gpu else " · no usable NVIDIA GPU"
    if errors:
        return Styled((f"{errors} error{'s' * (errors != 1)}", "bold red"), counts)
    if decision is not None and decision.failed:
        because = {
            "warnings": f"because of {warnings} warning{'s' * (warnings != 1)} (--fail-on warning)",
            "no-gpu": "because no usable NVIDIA GPU was found (--require-gpu)",
        }.get(decision.reason, "")
        return Styled((f"Failed {because}".rstrip(), "bold red"), ": no errors", counts, gpu)
    return Styled(("No errors", "bold green"), counts, gpu)


Block = Styled | None | list[Line]  # one printed line, an empty line, or lines that wrap in columns


def report_blocks(
    report: Report,
    *,
    fancy: bool,
    verbose: bool = False,
    decision: Decision | None = None,
    origin: Origin | None = None,
) -> Iterator[Block]:
    """The report, top to bottom."""
    target = report.facts.target
    python = report.facts.python
    version = f" {python.version}" if python and python.version else ""
    yield Styled(
        (f"gpudoctor {__version__}", "bold"),
        " · target Python",
        visible(version),
        ": ",
        visible(redact(target.python)) if target.python else ("not recorded in these facts", "dim"),
        (f" (from {visible(target.selected_by)})" if target.python else "", "dim"),
    )
    replay = provenance(report.facts, origin) if origin is not None else None
    if replay:
        yield Styled(visible(redact(replay)), style="dim")
    notice = framework_notice(report.facts)
    if notice:
        yield None
        yield [(Styled("note: ", style="bold yellow"), Styled(visible(redact(notice))))]
    yield None
    yield probe_lines(report, fancy, verbose)
    shown = [f for f in report.findings if verbose or f.severity is not Severity.INFO]
    hidden = len(report.findings) - len(shown)
    yield None
    for finding in shown:
        yield finding_lines(finding, fancy)
        yield None
    yield summary_line(report, decision)
    if hidden:
        yield Styled(f"{hidden} note{'s' * (hidden != 1)} hidden; run with -v to see them", style="dim")


def render_report(
    report: Report,
    console: Console,
    *,
    verbose: bool = False,
    decision: Decision | None = None,
    origin: Origin | None = None,
) -> None:
    """The report drawn by rich on a console."""
    for block in report_blocks(
        report, fancy=fancy_marks(console), verbose=verbose, decision=decision, origin=origin
    ):
        if block is None:
            console.print()
        elif isinstance(block, Styled):
            console.print(block.rich())
        else:
            print_lines(console, block)


def plain_text(blocks: Iterator[Block]) -> str:
    """What rich prints for these blocks where the output is not a terminal: every line whole, unstyled
    (the strings are `visible()`: no tab, newline or control character for rich to treat)."""
    out: list[str] = []
    for block in blocks:
        if block is None:
            out.append("\n")
        elif isinstance(block, Styled):
            out.append(block.plain + "\n")
        else:
            out.extend((prefix.plain + body.plain).rstrip() + "\n" for prefix, body in block)
    return "".join(out)


def render(run: Run, options: RenderOptions) -> str:
    screen = options.screen or PLAIN
    if not screen.terminal:
        blocks = report_blocks(
            run.report, fancy=False, verbose=options.verbose, decision=run.decision, origin=run.origin
        )
        return plain_text(blocks)
    console, buffer = screen.console()
    render_report(run.report, console, verbose=options.verbose, decision=run.decision, origin=run.origin)
    return buffer.getvalue()
