"""Compiled code of the methods `dataclasses` writes, kept between runs of the CLI (issue #12).

For each dataclass, `dataclasses` writes `__init__`, `__repr__`, `__eq__`, `__hash__`,
`__setattr__`... as source text and compiles it with `exec`. gpudoctor's ~110 classes make that
~570 compilations, about a quarter of what `gpudoctor check` spends importing itself. The text of
each method depends only on the class's fields and options, so the code compiled from it can be
kept: `install()` gives `dataclasses` an `exec` that looks the text up first (a miss compiles it
as `exec` would), and `save()`, called as the CLI leaves, writes what was compiled anew.

The same text always compiles to the same code, so a hit behaves exactly as a compilation. The
file holds code that will run, so it gets what a user's own `.pyc` files would deserve, and more:
it is read only from a folder and a file owned by this user and writable by no one else, behind a
header naming the Python build (marshal's code format changes between releases) and a SHA-256 of
the payload, and anything odd in it is a miss (see `matrix_cache`, whose folder it shares and
whose `GPUDOCTOR_CACHE_DIR=off` turns it off too). Only the CLI (`entry.main`) installs it.
"""

from __future__ import annotations

import builtins
import marshal
import sys
import types
from typing import Any

FORMAT = b"gpudoctor-dataclass-code 1\n"
MAX_ENTRIES = 4000  # a file that grew past this (many gpudoctor releases) keeps only one run's code

_compiled: dict[str, types.CodeType] = {}
_used: set[str] = set()
_new = False


def _header() -> bytes:
    return FORMAT + f"{sys.implementation.cache_tag} {sys.hexversion:x} marshal {marshal.version}\n".encode()


def _file_name() -> str:
    return f"dataclass-code-{sys.implementation.cache_tag}.marshal"


def _cached_exec(source: Any, globals: Any = None, locals: Any = None, /) -> None:
    global _new
    if type(source) is not str:
        return builtins.exec(source, globals, locals)  # noqa: S102 - what dataclasses asked for
    code = _compiled.get(source)
    if code is None:
        code = _compiled[source] = compile(source, "<string>", "exec")
        _new = True
    _used.add(source)
    return builtins.exec(code, globals, locals)  # noqa: S102 - what dataclasses asked for, compiled


def install() -> None:
    """Read the saved code and let `dataclasses` use it; nothing happens when there is no cache."""
    import dataclasses

    from gpudoctor import matrix_cache

    folder = matrix_cache.cache_dir()
    if folder is None or "exec" in vars(dataclasses):
        return
    payload = matrix_cache.read_payload(folder / _file_name(), _header())
    if payload is not None:
        try:
            saved = marshal.loads(payload)
        except (EOFError, ValueError, TypeError):
            saved = None
        if isinstance(saved, dict):
            _compiled.update((k, v) for k, v in saved.items() if type(k) is str and type(v) is types.CodeType)
    dataclasses.exec = _cached_exec  # type: ignore[attr-defined]


def save() -> None:
    """Write the code when this run compiled any anew (silently nothing when it cannot)."""
    global _new
    if not _new:
        return
    _new = False
    from gpudoctor import matrix_cache

    folder = matrix_cache.cache_dir()
    if folder is None:
        return
    kept = _compiled if len(_compiled) <= MAX_ENTRIES else {k: _compiled[k] for k in _used}
    try:
        payload = marshal.dumps(kept)
    except ValueError:
        return
    matrix_cache.write_payload(folder / _file_name(), _header(), payload)
