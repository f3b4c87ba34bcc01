"""`gpudoctor fleet`: gather, render, write, exit code. cli.py only declares the options."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpudoctor.matrix import Matrix


class FleetCommandError(ValueError):
    """Bad usage or an output that cannot be written: one line, exit 2."""


def write_atomic(path: str, text: str) -> None:
    """Write `text` to `path` whole or not at all (a temporary file in the same folder, renamed)."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path()
    try:
        fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise FleetCommandError(f"cannot write {path}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        Path(temporary).replace(target)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        raise FleetCommandError(f"cannot write {path}: {exc.strerror or exc}") from exc


def run_fleet(
    arguments: Sequence[str],
    *,
    output_format: str,
    output: str | None,
    verbose: bool,
    matrix_loader: Callable[[], Matrix],
    fail_on_warning: bool,
) -> int:
    from gpudoctor.fleet import FleetUsageError, exit_code, gather
    from gpudoctor.render import fleet as render

    try:
        fleet = gather(arguments, matrix_loader)
    except FleetUsageError as exc:
        raise FleetCommandError(str(exc)) from exc
    if output_format == "json":
        text = render.render_json(fleet)
    elif output_format == "markdown":
        text = render.render_markdown(fleet, verbose=verbose)
    else:
        to_terminal = output in (None, "-") and sys.stdout.isatty()
        width = shutil.get_terminal_size((100, 24)).columns if to_terminal else 100
        text = render.render_text(fleet, verbose=verbose, width=width)
    if output in (None, "-"):
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        write_atomic(output, text)
    return exit_code(fleet, fail_on_warning=fail_on_warning)
