"""Where text output goes: a terminal (width, colour, glyphs) or a pipe or file (plain, whole lines)."""

from __future__ import annotations

import io
import sys
from dataclasses import dataclass
from typing import TextIO

from rich.console import Console


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
        console = Console(file=stream or sys.stdout, highlight=False)
        return cls(
            width=console.width,
            terminal=console.is_terminal,
            color_system=console.color_system,
            no_color=console.no_color,
            encoding=console.encoding,
        )

    def console(self) -> tuple[Console, io.StringIO]:
        """A console that renders as this screen would, into a buffer."""
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


PLAIN = Screen()
