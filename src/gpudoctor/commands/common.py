"""What several subcommands share: the options that mean the same everywhere, and gathering facts
with a progress line on a terminal (`checking.gather`). Only typer is imported here, so
`gpudoctor --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gpudoctor.checking import gather

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

__all__ = ["MatrixOption", "NoRedactOption", "PythonOption", "TimeoutOption", "gather"]
