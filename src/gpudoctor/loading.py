"""Reading files that gpudoctor did not write: saved facts, reports, matrix files.

A facts file is shared with strangers and a matrix file may come from anywhere, so every read is
bounded before anything is parsed: only regular files (never a FIFO, a device or a folder: a FIFO
would block, `/dev/zero` never ends), a byte cap, a nesting cap, and for YAML a cap on how far
aliases may expand (billion laughs). Every refusal is one `UntrustedInputError` line that quotes at
most a short excerpt of the offending value. The CLI calls `load_facts_file` and `load_matrix_file`;
other readers (fleet reports) use `read_bounded` + `parse_json`.
"""

from __future__ import annotations

import json
import os
import reprlib
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gpudoctor.facts import Facts
    from gpudoctor.matrix import Matrix

MAX_FACTS_BYTES = 8 * 1024 * 1024  # a real facts file or JSON report is well under 1 MB
MAX_DEPTH = 48  # facts nest about 8 levels, the matrix 5
MAX_YAML_NODES = 500_000  # after alias expansion; the real matrix has about 20,000
EXCERPT = 60


class UntrustedInputError(ValueError):
    """A file was refused or could not be parsed; the message is one line."""


_REPR = reprlib.Repr()
_REPR.maxlevel = 2
_REPR.maxstring = EXCERPT
_REPR.maxother = EXCERPT
_REPR.maxlist = _REPR.maxtuple = _REPR.maxdict = _REPR.maxset = 4
_REPR.maxlong = 40


def excerpt(value: object, limit: int = EXCERPT) -> str:
    """A bounded repr() for error messages: short values read exactly as repr() does, long or deep
    ones are cut (never the whole of a 100 MB string or a million-element list)."""
    text = _REPR.repr(value)
    text = text.replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def read_bounded(path: str | os.PathLike[str], limit: int) -> str:
    """The text of a regular file of at most `limit` bytes.

    Raises OSError when it cannot be opened (missing, no permission) and UntrustedInputError when it
    is not a regular file, is larger than `limit` or is not UTF-8 text.
    """
    flags = (
        os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0)
    )
    fd = os.open(path, flags)  # non-blocking: opening a FIFO with no writer returns at once
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UntrustedInputError(f"not a regular file ({_file_kind(info.st_mode)}): refused")
        if info.st_size > limit:
            raise UntrustedInputError(f"larger than {_size(limit)} ({_size(info.st_size)}): refused")
        # The size it says and one byte more, in one read (fleet reads 10,000 files); only a file that
        # turns out longer or shorter than it said (it grew, or a short read) is read on to its end.
        data = os.read(fd, min(limit, info.st_size) + 1)
        if len(data) != info.st_size:
            chunks = [data]
            left = limit + 1 - len(data)
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 16))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:
        raise UntrustedInputError(f"larger than {_size(limit)}: refused")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedInputError("not a text file (not UTF-8)") from None


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "not a plain file")


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def check_depth(document: object, limit: int = MAX_DEPTH) -> None:
    """Refuse data nested deeper than `limit` containers (fleet checks 10,000 reports with it).

    Recursive, but never deeper than `limit` calls: the walk stops at the first level too many."""
    if isinstance(document, _CONTAINERS):
        _check_nesting(document, limit, limit)


_CONTAINERS = (dict, list)


def _check_nesting(value: dict[Any, Any] | list[Any], room: int, limit: int) -> None:
    if room <= 0:
        raise UntrustedInputError(f"nested more than {limit} levels deep: refused")
    for item in value.values() if isinstance(value, dict) else value:
        if isinstance(item, _CONTAINERS):
            _check_nesting(item, room - 1, limit)


def parse_json(text: str) -> Any:
    """JSON text as data, refusing documents nested too deeply."""
    try:
        document = json.loads(text)
    except RecursionError:
        raise UntrustedInputError(f"nested more than {MAX_DEPTH} levels deep: refused") from None
    except ValueError as exc:
        raise UntrustedInputError(f"not valid JSON: {excerpt(str(exc), 120)}") from None
    check_depth(document)
    return document


def _yaml_loader() -> Any:
    import yaml

    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _check_yaml_events(text: str) -> None:
    """Walk the YAML event stream: depth, and the size of the document once every alias is
    expanded, are capped before any object is built."""
    import yaml

    sizes: dict[str, int] = {}  # anchor -> expanded node count
    stack: list[tuple[int, str | None]] = []  # open collections: node count so far, anchor
    total = 0
    for event in yaml.parse(text, Loader=_yaml_loader()):
        if isinstance(event, yaml.ScalarEvent | yaml.AliasEvent):
            count = 1 if isinstance(event, yaml.ScalarEvent) else sizes.get(event.anchor or "", 1)
            if isinstance(event, yaml.ScalarEvent) and event.anchor:
                sizes[event.anchor] = 1
            if stack:
                stack[-1] = (stack[-1][0] + count, stack[-1][1])
            total += count
        elif isinstance(event, yaml.SequenceStartEvent | yaml.MappingStartEvent):
            if len(stack) >= MAX_DEPTH:
                raise UntrustedInputError(f"nested more than {MAX_DEPTH} levels deep: refused")
            stack.append((1, event.anchor))
            total += 1
        elif isinstance(event, yaml.SequenceEndEvent | yaml.MappingEndEvent):
            count, anchor = stack.pop()
            if anchor:
                sizes[anchor] = count
            if stack:
                stack[-1] = (stack[-1][0] + count, stack[-1][1])
            else:
                total = max(total, count)
        if total > MAX_YAML_NODES:
            raise UntrustedInputError(
                f"more than {MAX_YAML_NODES:,} values once its aliases are expanded: refused"
            )


def parse_yaml(text: str, *, bounded: bool = True) -> Any:
    """YAML text as data (safe types only), bounded in depth and alias expansion unless the caller
    vouches for the text (`bounded=False`: the file gpudoctor ships)."""
    import yaml

    try:
        if bounded:
            _check_yaml_events(text)
        return yaml.load(text, Loader=_yaml_loader())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or (str(exc).splitlines() or ["?"])[0]
        raise UntrustedInputError(f"not valid YAML{where}: {excerpt(problem, 120)}") from None
    except (ValueError, RecursionError, OverflowError) as exc:  # e.g. an integer of 10,000 digits
        if isinstance(exc, UntrustedInputError):
            raise
        raise UntrustedInputError(f"not valid YAML: {excerpt(str(exc), 120)}") from None


# ----------------------------------------------------------------------------------------------
# What the CLI calls


def load_facts_file(path: str | os.PathLike[str]) -> Facts:
    """A saved facts file, or a whole `--json` report (its `facts`), validated into `Facts`."""
    from gpudoctor.facts import MIN_SCHEMA_VERSION, SCHEMA_VERSION, Facts
    from gpudoctor.serde import SerdeError, from_data

    try:
        text = read_bounded(path, MAX_FACTS_BYTES)
    except OSError as exc:
        raise UntrustedInputError(f"cannot read facts file {path}: {exc.strerror or exc}") from None
    except UntrustedInputError as exc:
        raise UntrustedInputError(f"facts file {path}: {exc}") from None
    try:
        raw = parse_json(text)
    except UntrustedInputError as exc:
        message = str(exc)
        if message.startswith("not valid JSON: "):
            raise UntrustedInputError(f"facts file {path} is {message}") from None
        raise UntrustedInputError(f"facts file {path}: {message}") from None
    if isinstance(raw, dict) and "facts" in raw and "findings" in raw:
        raw = raw["facts"]  # a whole `--json` report works too
    if isinstance(raw, dict) and "schema_version" in raw:
        version = raw["schema_version"]
        if not isinstance(version, int) or isinstance(version, bool):
            raise UntrustedInputError(
                f"facts file {path}: schema_version {excerpt(version)} is not a whole number"
            )
        if version > SCHEMA_VERSION:
            raise UntrustedInputError(
                f"facts file {path} was written by a newer gpudoctor (schema {version}; this one reads "
                f"{SCHEMA_VERSION}): upgrade with `pip install -U gpudoctor`"
            )
        if version < MIN_SCHEMA_VERSION:  # pipeline: no gpudoctor release wrote such a file
            raise UntrustedInputError(
                f"facts file {path} has schema_version {version}, which no gpudoctor wrote: this one reads "
                f"schemas {MIN_SCHEMA_VERSION} to {SCHEMA_VERSION}"
            )
    try:
        return from_data(Facts, raw)
    except SerdeError as exc:
        raise UntrustedInputError(f"facts file {path} does not look like gpudoctor facts: {exc}") from None


def load_matrix_file(path: str | os.PathLike[str] | None) -> Matrix:
    """The packaged matrix (None), or a matrix file given by the user, validated."""
    from gpudoctor.matrix import MatrixError, load_matrix

    try:
        return load_matrix(None if path is None else str(path))
    except MatrixError as exc:
        raise UntrustedInputError(str(exc)) from None
    except OSError as exc:
        raise UntrustedInputError(f"cannot read matrix file {path}: {exc.strerror or exc}") from None


__all__ = [
    "MAX_DEPTH",
    "MAX_FACTS_BYTES",
    "UntrustedInputError",
    "check_depth",
    "excerpt",
    "load_facts_file",
    "load_matrix_file",
    "parse_json",
    "parse_yaml",
    "read_bounded",
]
