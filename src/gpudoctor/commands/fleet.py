"""`gpudoctor fleet REPORT...`: many nodes' reports or facts, one table grouped by root cause."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer


class FleetFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


def fleet(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="REPORT...",
            help="`gpudoctor check --json` reports or facts files from the nodes, or folders of them.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        FleetFormat, typer.Option("--format", "-f", help="text, markdown or json.")
    ] = FleetFormat.text,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write there instead of stdout (- is stdout)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show info findings, every wording and the drivers.")
    ] = False,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", metavar="FILE", help="Matrix for judging facts files.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on a node with errors only, or with warnings too.")
    ] = FailOn.error,
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            metavar="NODELIST",
            help="Nodes that must have reported, as a Slurm node list (gpu-[01-16]); absent ones fail.",
        ),
    ] = None,
) -> None:
    """Many nodes at once: their findings grouped by root cause, the healthy nodes, the unreadable ones.

    Exit 1 when any node has an error, sent a report that cannot be read, or (with --expect) sent none.
    """
    import shutil
    import sys

    from gpudoctor import pipeline
    from gpudoctor.fleet import FleetUsageError, exit_code, gather
    from gpudoctor.output import write_file
    from gpudoctor.render import fleet as render

    try:
        result = gather(reports or [], lambda: pipeline.load_matrix(matrix_file), expect=expect)
    except FleetUsageError as exc:
        raise pipeline.UsageError(str(exc)) from exc
    if output_format is FleetFormat.json:
        text = render.render_json(result)
    elif output_format is FleetFormat.markdown:
        text = render.render_markdown(result, verbose=verbose)
    else:
        to_terminal = output in (None, "-") and sys.stdout.isatty()
        width = shutil.get_terminal_size((100, 24)).columns if to_terminal else 100
        text = render.render_text(result, verbose=verbose, width=width)
    write_file(text, output or "-")
    raise typer.Exit(exit_code(result, fail_on_warning=fail_on is FailOn.warning))
