"""Where a rendered report or a facts file goes: stdout, or a file written atomically."""

from __future__ import annotations

import os
import sys
from pathlib import Path


class OutputError(Exception):
    """A report or facts file could not be written; the message is one line for the user."""


def write_stdout(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except OSError as exc:
        _silence_stdout()
        raise OutputError(f"cannot write to standard output: {exc.strerror or exc}") from exc


def _silence_stdout() -> None:
    """After a failed write, point stdout at /dev/null so the interpreter's final flush stays quiet."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def write_file(text: str, dest: str | Path) -> None:
    """`-` is stdout; a path is written atomically (a temporary file beside it, then renamed)."""
    if str(dest) == "-":
        write_stdout(text)
        return
    path = Path(dest)
    if path.is_dir():
        raise OutputError(f"cannot write {path}: it is a folder")
    if path.exists() and not path.is_file():  # /dev/stdout, /dev/full, a FIFO: write in place
        try:
            with path.open("w", encoding="utf-8") as stream:
                stream.write(text)
        except OSError as exc:
            raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
        return
    import tempfile  # here: only a written file needs it (and its random, shutil, bz2, lzma)

    tmp_name = ""
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent or ".")
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(tmp_name).chmod(0o666 & ~_umask())
        Path(tmp_name).replace(path)
    except OSError as exc:
        if tmp_name:
            Path(tmp_name).unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
