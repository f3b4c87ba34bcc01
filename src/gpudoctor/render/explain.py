"""`gpudoctor explain`: the list of codes, or one page, optionally with what it found on a machine."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

from rich.console import Console, ConsoleOptions, RenderResult
from rich.markdown import CodeBlock, Markdown
from rich.text import Text

from gpudoctor.explain import SECTIONS, Explanation
from gpudoctor.model import Finding, RuleOutcome
from gpudoctor.render.json import finding_data
from gpudoctor.render.screen import PLAIN, Screen
from gpudoctor.render.text import fancy_marks, finding_lines, print_lines


class _WholeLines(CodeBlock):
    """A code block whose every line is one physical line: never wrapped, never cropped (the terminal
    folds it on screen; a copy stays one runnable command)."""

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in str(self.text).rstrip("\n").splitlines():
            yield Text("    " + line, style="bold", no_wrap=True, overflow="ignore")


class _Page(Markdown):
    elements: ClassVar[dict[str, type[Any]]] = {
        **Markdown.elements,
        "fence": _WholeLines,
        "code_block": _WholeLines,
    }


def render_list(pages: Sequence[Explanation], *, as_json: bool, screen: Screen = PLAIN) -> str:
    if as_json:
        return json.dumps([{"code": p.code, "title": p.title} for p in pages], indent=2) + "\n"
    console, buffer = screen.console()
    for page in pages:
        console.print(f"[bold]{page.code}[/bold]  {page.title}")
    return buffer.getvalue()


def render_page(
    page: Explanation,
    *,
    as_json: bool,
    on_machine: tuple[Sequence[Finding], RuleOutcome | None] | None = None,
    screen: Screen = PLAIN,
) -> str:
    """`on_machine`: the findings of this code on a replayed machine, and the rule's outcome there."""
    if as_json:
        document: dict[str, Any] = {
            "code": page.code,
            "title": page.title,
            "sections": {name: page.section(name) for name in SECTIONS},
            "markdown": page.body,
        }
        if on_machine is not None:
            findings, outcome = on_machine
            document["on_this_machine"] = [finding_data(f) for f in findings]
            document["check"] = {"state": outcome.state, "detail": outcome.detail} if outcome else None
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    console, buffer = screen.console()
    console.print(f"[bold]{page.code}: {page.title}[/bold]")
    console.print()
    if on_machine is not None:
        findings, outcome = on_machine
        if findings:
            console.print("[bold]On this machine[/bold]")
            for finding in findings:
                print_lines(console, finding_lines(finding, fancy_marks(console)))
        elif outcome is not None and outcome.state == "skip":
            console.print(f"On this machine: {page.code} did not apply ({outcome.detail}).", markup=False)
        else:
            console.print(f"[green]On this machine: {page.code} found nothing wrong.[/green]")
        console.print()
    if console.is_terminal:
        console.print(_Page(page.body), crop=False)
    else:  # piped: the Markdown source itself, never cropped to a terminal width
        console.print(page.body, markup=False, highlight=False)
    return buffer.getvalue()
