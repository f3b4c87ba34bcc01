"""Shorten what a pasted report should not carry: the user's home folder becomes `~`.

Only the running user's home is replaced: `~` keeps a path usable in a shell, whereas rewriting every
`/home/<name>` would also rewrite shared folders such as `/home/common_modules` and break commands.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _home() -> str:
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):
        return ""
    return home if home not in ("/", "/root", "") else ""


def redact(data: Any, home: str | None = None) -> Any:
    home = _home() if home is None else home
    if isinstance(data, str):
        return data.replace(home, "~") if home else data
    if isinstance(data, list):
        return [redact(v, home) for v in data]
    if isinstance(data, dict):
        return {k: redact(v, home) for k, v in data.items()}
    return data
