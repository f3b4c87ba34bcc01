"""Where text output goes: a terminal (width, colour, glyphs) or a pipe or file (plain, whole lines).

What rich would detect for a stream, without importing rich when the answer is plain: a stream that
is not a terminal, with nothing in the environment that makes rich treat it as one (tests/test_plain_output.py
compares both ways); rich decides everything else.
"""

from __future__ import annotations

import builtins
import io
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console

# What makes rich call a stream a terminal (or not) whatever isatty says, or look past it (Jupyter).
_RICH_DECIDES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS", "JUPYTER_LINES")


class _Buffer(io.StringIO):
    """A string buffer that reports the encoding of the stream it stands in for."""

    def __init__(self, encoding: str) -> None:
        super().__init__()
        self._encoding = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


@dataclass(frozen=True, kw_only=True)
class Screen:
    width: int = 80
    terminal: bool = False
    color_system: str | None = None
    no_color: bool = False
    encoding: str = "utf-8"

    @classmethod
    def of(cls, stream: TextIO | None = None) -> Screen:
        """What rich detects for a stream (stdout by default): terminal or not, width, colour."""
        stream = stream or sys.stdout
        plain = _plain_screen(stream)
        return plain if plain is not None else cls.as_rich_sees(stream)

    @classmethod
    def as_rich_sees(cls, stream: TextIO) -> Screen:
        """What rich's own Console detects for the stream (imports rich)."""
        from rich.console import Console

        console = Console(file=stream, highlight=False)
        return cls(
            width=console.width,
            terminal=console.is_terminal,
            color_system=console.color_system,
            no_color=console.no_color,
            encoding=console.encoding,
        )

    def console(self) -> tuple[Console, io.StringIO]:
        """A console that renders as this screen would, into a buffer."""
        from rich.console import Console

        buffer = _Buffer(self.encoding)
        console = Console(
            file=buffer,
            width=self.width,
            force_terminal=self.terminal,
            color_system=self.color_system,  # type: ignore[arg-type]
            no_color=self.no_color,
            highlight=False,
            legacy_windows=False,
        )
        console.soft_wrap = not self.terminal  # piped output keeps whole lines for pasting
        return console, buffer


def _plain_screen(stream: TextIO) -> Screen | None:
    """The Screen rich would give a stream that is surely not a terminal; None when rich must say.

    rich's own rules for such a stream: the width is $COLUMNS when it is all digits, else the size
    of the first of stdin, stdout and stderr that is a terminal, else 80; no colour system; NO_COLOR
    when set to anything but ""; the stream's encoding, lower-cased ("utf-8" when it has none)."""
    if sys.platform == "win32" or any(name in os.environ for name in _RICH_DECIDES):
        return None
    if hasattr(builtins, "get_ipython"):
        return None  # Jupyter or IPython: rich has rules of its own there
    isatty = getattr(stream, "isatty", None)
    try:
        if isatty is None or isatty():
            return None
    except ValueError:  # a closed stream: rich says "not a terminal" the same way
        return None
    columns = os.environ.get("COLUMNS")
    if columns is not None and columns.isdigit():
        width = int(columns)
    else:
        width = 0
        for descriptor in (0, 1, 2):
            try:
                width = os.get_terminal_size(descriptor).columns
            except (AttributeError, ValueError, OSError):
                continue
            break
        width = width or 80
    return Screen(
        width=width,
        terminal=False,
        color_system=None,
        no_color=os.environ.get("NO_COLOR", "") != "",
        encoding=(getattr(stream, "encoding", "utf-8") or "utf-8").lower(),
    )


PLAIN = Screen()
