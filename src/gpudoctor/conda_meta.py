"""Read the records in a conda prefix's `conda-meta/*.json`: the name, version, build and channel of each.

The conda probe asks a child process for them: this file run as a script by gpudoctor's own
interpreter (`python -I -c <this file> <conda-meta folder>`), which prestart starts at t≈0, so a
prefix with thousands of records is read on another core while the CLI loads (issue #12); it prints
`@@GPUDOCTOR@@ {"records": [[file, name, version, build, channel], ...], "unreadable": [file, ...]}`
(or `{"error": why}` when the folder cannot be listed). When the child cannot answer, the probe
calls `read_folder` itself: one implementation either way. Standard library only.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # run as a script it needs neither (pathlib alone was a tenth of its start)
    from collections.abc import Mapping
    from pathlib import Path

MARKER = "@@GPUDOCTOR@@ "


def choose_prefix(python: str, env: Mapping[str, str], *, windows: bool) -> tuple[str, bool] | None:
    """(prefix, is_target) of the conda environment to read, or None when there is none: $CONDA_PREFIX
    when the interpreter lives in it, else the interpreter's own prefix when it has conda-meta, else an
    active conda env the interpreter does not belong to (a venv on top of it: is_target False)."""
    from pathlib import Path

    python_dir = Path(python).parent
    own = python_dir if windows else python_dir.parent
    active = env.get("CONDA_PREFIX")
    if active and _inside(python_dir, Path(active)):
        return active, True
    if (own / "conda-meta").exists():
        return str(own), True
    if active and (Path(active) / "conda-meta").exists():
        return active, False
    return None


def _inside(folder: Path, prefix: Path) -> bool:
    def norm(p: Path) -> str:
        return os.path.normcase(str(p))

    for left, right in ((folder, prefix), (folder.resolve(), prefix.resolve())):
        if norm(left) == norm(right) or norm(left).startswith(norm(right).rstrip("/\\") + os.sep):
            return True
    return False


# conda writes its records with json.dump(indent=2, sort_keys=True): a top-level key is exactly a line
# starting with two spaces and a quote (JSON strings hold no raw newline), deeper keys have more, and
# each key once, in sorted order: build, channel, ..., files, ..., name, paths_data, ..., url, version.
_RECORD_LAYOUT = '{\n  "'
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"(?=,?\n)')
_NOT_A_STRING = object()


def _member(text: str, key: str, *, from_end: bool) -> object:
    """A top-level string member: its value, None when absent, _NOT_A_STRING for another kind."""
    needle = f'\n  "{key}": '
    at = text.rfind(needle) if from_end else text.find(needle)
    if at < 0:
        return None
    value = _STRING.match(text, at + len(needle))
    if value is None:
        return _NOT_A_STRING
    quoted = value.group()
    return quoted[1:-1] if "\\" not in quoted else json.loads(quoted)


def used_fields(text: str) -> dict[str, str] | None:
    """The members a record's reading uses, found without decoding the whole record (its file lists
    are most of it): each looked for from the nearer end, fallbacks only when needed. None when the
    layout is not conda's own or a member is not a string (the full decoder then decides what it means)."""
    if not text.startswith(_RECORD_LAYOUT) or not text.rstrip().endswith("}"):
        return None
    found: dict[str, str] = {}
    for keys, from_end in (
        (("name",), False),
        (("version",), True),
        (("build", "build_string"), False),
        (("channel", "schannel"), False),
        (("url",), True),
    ):
        if keys == ("url",) and (found.get("channel") or found.get("schannel")):
            continue
        for key in keys:
            value = _member(text, key, from_end=from_end)
            if value is _NOT_A_STRING:
                return None
            if isinstance(value, str):
                found[key] = value
                if value:
                    break
    return found


def record_fields(text: str) -> tuple[str, str, str, str]:
    """(name, version, build, channel as written) of one record. ValueError for anything that is not a
    package record (unparsable JSON, nested too deeply, no name or version)."""
    data: Any = used_fields(text)
    if data is None or not data.get("name") or not data.get("version"):
        try:
            data = json.loads(text)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc
    if not isinstance(data, dict):
        data = {}
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ValueError("no package name and version")
    build = data.get("build") or data.get("build_string") or ""
    channel = data.get("channel") or data.get("schannel") or data.get("url") or ""
    return name, version, build if isinstance(build, str) else "", channel if isinstance(channel, str) else ""


# The first members of a record in that layout: build, build_number (optional), channel.
_HEAD = re.compile(
    r'\{\n  "build": "([^"\\\n]*)",\n(?:  "build_number": [^\n]*\n)?  "channel": "([^"\\\n]+)",?\n'
)
HEAD_BYTES = 1024


def head_fields(file_name: str, head: str) -> tuple[str, str, str, str] | None:
    """(name, version, build, channel) from a record's file name and its first bytes: conda names each
    record `name-version-build.json`, and neither a version nor a build may hold a '-'. The build the
    record itself names must agree; None (read it whole) otherwise."""
    match = _HEAD.match(head)
    parts = file_name[: -len(".json")].rsplit("-", 2)
    if match is None or len(parts) != 3 or not all(parts) or parts[2] != match.group(1):
        return None
    return parts[0], parts[1], parts[2], match.group(2)


def _fields_of(folder: str, file_name: str, folder_fd: int | None) -> tuple[str, str, str, str]:
    """One record's fields: from its name and first bytes when they suffice, else from all of it.
    With `folder_fd` the record is opened relative to its open folder (no path to join and walk)."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
    if folder_fd is not None:
        fd = os.open(file_name, flags, dir_fd=folder_fd)
    else:
        fd = os.open(os.path.join(folder, file_name), flags)  # noqa: PTH118 - thousands of records
    try:
        head = os.read(fd, HEAD_BYTES)
    finally:
        os.close(fd)
    quick = head_fields(file_name, head.decode("utf-8", "replace"))
    if quick is not None:
        return quick
    return record_fields(_read(os.path.join(folder, file_name)).decode("utf-8"))  # noqa: PTH118


def _read(path: str) -> bytes:
    """A record's bytes, with one open and as few reads as its size needs (thousands of records)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        size = os.fstat(fd).st_size
        chunks = [os.read(fd, max(size, 1 << 16) + 1)]
        while chunks[-1]:
            chunks.append(os.read(fd, 1 << 20))
        return b"".join(chunks)
    finally:
        os.close(fd)


_SUBDIRS = re.compile(r"^(noarch|(linux|osx|win|freebsd|emscripten|wasi|zos)-[a-z0-9_]+)$")
_DEFAULTS = {"main", "r", "free", "msys2", "pro", "mro", "mro-archive"}


@functools.lru_cache(maxsize=1024)  # a few channels, thousands of records
def short_channel(channel: str) -> str:
    """A channel URL or name as conda shows it: 'conda-forge', 'pytorch', 'nvidia', 'defaults', 'pypi'."""
    channel = channel.strip()
    if not channel or channel == "<unknown>":
        return ""
    if "://" in channel:
        from urllib.parse import urlparse  # here: one call per distinct channel

        parsed = urlparse(channel)
        parts = [p for p in parsed.path.split("/") if p]
        if parts and parts[-1].endswith((".conda", ".tar.bz2")):
            parts.pop()
        if len(parts) >= 2 and parts[0] == "t":  # token-authenticated anaconda.org URL: /t/<token>/<channel>
            parts = parts[2:]
    else:
        parts = [p for p in channel.split("/") if p]
    if parts and _SUBDIRS.match(parts[-1]):
        parts.pop()
    if "pkgs" in parts[:-1] and parts[parts.index("pkgs") + 1] in _DEFAULTS:
        return "defaults"
    if "label" in parts:
        parts = parts[: parts.index("label")]
    return parts[-1] if parts else ""


def read_folder(folder: str) -> dict[str, Any]:
    """Every *.json record of a conda-meta folder, in file-name order (as pathlib sorts them), as
    [name, version, build, short channel]: what the conda probe keeps (the channel as conda shows
    it: thousands of records name a few channels, and their full URLs were most of the output)."""
    try:
        with os.scandir(folder) as entries:
            names = [e.name for e in entries if e.name.endswith(".json") and e.name != ".json"]
    except OSError as exc:
        return {"error": exc.strerror or str(exc)}
    names.sort(key=str.lower if os.name == "nt" else None)
    records: list[list[str]] = []
    unreadable: list[str] = []
    folder_fd = None
    if os.open in os.supports_dir_fd:
        try:
            folder_fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            folder_fd = None
    try:
        for name in names:
            try:
                package, version, build, channel = _fields_of(folder, name, folder_fd)
                records.append([package, version, build, short_channel(channel)])
            except (OSError, ValueError, UnicodeDecodeError):
                unreadable.append(name)
    finally:
        if folder_fd is not None:
            os.close(folder_fd)
    return {"records": records, "unreadable": unreadable}


if __name__ == "__main__":
    sys.stdout.write("\n" + MARKER + json.dumps(read_folder(sys.argv[1])) + "\n")
