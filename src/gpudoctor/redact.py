"""Shorten what a pasted report should not carry: the home folder and other users' names in paths."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_USER_DIR = re.compile(r"(/home/|/Users/|[A-Za-z]:\\Users\\)([^/\\\s'\"]+)")


def _home() -> str:
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):
        return ""
    return home if home not in ("/", "/root", "") else ""


def redact(data: Any, home: str | None = None) -> Any:
    home = _home() if home is None else home
    if isinstance(data, str):
        if home:
            data = data.replace(home, "~")
        return _USER_DIR.sub(r"\1<user>", data)
    if isinstance(data, list):
        return [redact(v, home) for v in data]
    if isinstance(data, dict):
        return {k: redact(v, home) for k, v in data.items()}
    return data
