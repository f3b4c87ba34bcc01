"""What several subcommands share: the options that mean the same everywhere, and gathering facts
with a progress line on a terminal. Only typer is imported here, so `gpudoctor --help` stays fast."""

from __future__ import annotations

import sys
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from gpudoctor.facts import Facts

PYTHON_HELP = (
    "Interpreter whose environment to diagnose. Default: the active venv, then the active conda env, "
    "then python3/python on PATH."
)

PythonOption = Annotated[str | None, typer.Option("--python", metavar="PATH", help=PYTHON_HELP)]
MatrixOption = Annotated[
    Path | None, typer.Option("--matrix", metavar="FILE", help="Use another compatibility matrix.")
]
TimeoutOption = Annotated[
    float,
    typer.Option("--timeout", metavar="SECONDS", min=1, help="Time limit for each framework probe."),
]
NoRedactOption = Annotated[
    bool,
    typer.Option(
        "--no-redact",
        help="Keep user and host names, GPU UUIDs and serials, and secret-looking values in what is saved.",
    ),
]


def gather(python: str | None, timeout: float, *, only: Collection[str] | None = None) -> Facts:
    """`pipeline.gather`, with one line per probe on stderr while it runs when stderr is a terminal."""
    from gpudoctor import pipeline

    if not sys.stderr.isatty():
        return pipeline.gather(python, timeout, only=only)
    from gpudoctor.render.progress import spinner

    with spinner(pipeline.probe_names(only)) as on_done:
        return pipeline.gather(python, timeout, on_done=on_done, only=only)
