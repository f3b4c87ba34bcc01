"""A whole cluster at once: read many nodes' reports or facts, group their findings by root cause.

Input is untrusted: a report or facts file from a node may be missing, huge, not a regular file,
not JSON, too deep, of the wrong shape or from a newer gpudoctor. Each such file becomes one
`Unreadable` line; nothing here raises for a bad file. Reports (`gpudoctor check --json`) are taken
as their node judged them; facts files (`--save-facts`, `gpudoctor collect`) are judged here with the
real engine and matrix. Everything read is sanitised once, at load: control characters become
visible escapes and long strings are cut, so every renderer can print what it gets.
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from gpudoctor.matrix import Matrix

MAX_FILES = 200_000  # files gathered from folders, all together
MAX_FOLDER_DEPTH = 8
MAX_FINDINGS_PER_NODE = 500
MAX_TEXT = 400  # characters kept of a title or message read from a file
MAX_NAME = 120

SEVERITIES = ("error", "warning", "info")
NodeKind = Literal["report", "facts"]


class FleetUsageError(Exception):
    """The command line itself is wrong (a path that does not exist, nothing to read): exit 2."""


@dataclass(frozen=True, kw_only=True)
class NodeFinding:
    code: str
    severity: str  # "error" | "warning" | "info"
    title: str
    message: str


@dataclass(frozen=True, kw_only=True)
class Node:
    """One node whose report or facts were read."""

    name: str
    path: str
    kind: NodeKind
    findings: tuple[NodeFinding, ...] = ()
    usable_gpu: bool | None = None
    gpus: int | None = None
    driver_version: str | None = None
    gpudoctor_version: str = ""
    schema_version: int | None = None

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    @property
    def state(self) -> Literal["error", "warning", "healthy"]:
        known: Literal["error", "warning", "healthy"] | None = self.__dict__.get("_state")
        if known is None:  # worked out once: renderers ask for every node's state several times
            severities = {f.severity for f in self.findings}
            known = "error" if "error" in severities else "warning" if "warning" in severities else "healthy"
            self.__dict__["_state"] = known  # not a field: equality and repr stay those of the fields
        return known


@dataclass(frozen=True, kw_only=True)
class Unreadable:
    name: str
    path: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class Variant:
    """One wording of a finding (its message carries the node's own facts) and where it was seen."""

    message: str
    nodes: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class FindingGroup:
    """One root cause across the fleet: a finding code and every node that reported it."""

    code: str
    severity: str
    title: str
    nodes: tuple[str, ...]
    variants: tuple[Variant, ...]

    @property
    def count(self) -> int:
        return len(self.nodes)


@dataclass(frozen=True, kw_only=True)
class Fleet:
    nodes: tuple[Node, ...] = ()
    unreadable: tuple[Unreadable, ...] = ()
    groups: tuple[FindingGroup, ...] = field(default=())
    missing: tuple[str, ...] = ()  # expected nodes (--expect) that left no file at all

    def names(self, state: str) -> tuple[str, ...]:
        by_state: dict[str, tuple[str, ...]] | None = self.__dict__.get("_by_state")
        if by_state is None:  # worked out once, as for Node.state
            lists: dict[str, list[str]] = {}
            for node in self.nodes:
                lists.setdefault(node.state, []).append(node.name)
            by_state = self.__dict__["_by_state"] = {state: tuple(names) for state, names in lists.items()}
        return by_state.get(state, ())

    @property
    def healthy(self) -> tuple[str, ...]:
        return self.names("healthy")

    @property
    def total(self) -> int:
        return len(self.nodes) + len(self.unreadable) + len(self.missing)


def exit_code(fleet: Fleet, *, fail_on_warning: bool = False) -> int:
    """1 when any node has an error (or a warning, if asked), could not be read or is missing, else 0."""
    if fleet.unreadable or fleet.missing or any(n.state == "error" for n in fleet.nodes):
        return 1
    if fail_on_warning and any(n.state == "warning" for n in fleet.nodes):
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# Names


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """A string from an untrusted file, safe to print: control characters escaped, length capped."""
    if len(text) <= limit and text.isprintable():
        return text
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
    return text


_DIGITS = re.compile(r"(\d+)")


@functools.lru_cache(maxsize=1 << 17)  # each node name is sorted in every group it appears in
def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    """gpu2 before gpu10."""
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in _DIGITS.split(name) if p)


_HOST = re.compile(r"^([^\[\],]*?)(\d+)([^\[\],\d]*)$")


@functools.lru_cache(maxsize=1 << 17)
def _host_parts(name: str) -> tuple[str, str, str] | None:
    """(prefix, digits, suffix) of a numbered name; None for one that stays as it is."""
    match = _HOST.match(name)
    return None if match is None else (match[1], match[2], match[3])


def hostlist(names: Iterable[str]) -> str:
    """Slurm-style compressed names: gpu-[01-04,07],login1."""
    numbered: dict[tuple[str, str], list[str]] = {}
    order: list[tuple[str, str] | str] = []
    for name in sorted(set(names), key=natural_key):
        numbered_name = _host_parts(name)
        if numbered_name is None:
            order.append(name)
            continue
        prefix, digits, suffix = numbered_name
        if (prefix, suffix) not in numbered:
            numbered[(prefix, suffix)] = []
            order.append((prefix, suffix))
        numbered[(prefix, suffix)].append(digits)
    parts: list[str] = []
    for item in order:
        if isinstance(item, str):
            parts.append(item)
            continue
        prefix, suffix = item
        for width, numbers in _by_width(numbered[item]):
            if len(numbers) == 1:
                parts.append(f"{prefix}{numbers[0]:0{width}d}{suffix}")
            else:
                parts.append(f"{prefix}[{_ranges(numbers, width)}]{suffix}")
    return ",".join(parts)


def _by_width(all_digits: list[str]) -> list[tuple[int, list[int]]]:
    """Zero-padded numbers keep their width; an unpadded one joins the padded of its length."""
    widths = {len(d) for d in all_digits if len(d) > 1 and d.startswith("0")}
    groups: dict[int, list[int]] = {}
    for digits in all_digits:
        width = len(digits) if len(digits) in widths else 0
        groups.setdefault(width, []).append(int(digits))
    return [(w, sorted(set(groups[w]))) for w in sorted(groups)]


def _ranges(numbers: list[int], width: int) -> str:
    ranges: list[str] = []
    start = prev = numbers[0]
    for n in [*numbers[1:], None]:
        if n is not None and n == prev + 1:
            prev = n
            continue
        ranges.append(f"{start:0{width}d}" if start == prev else f"{start:0{width}d}-{prev:0{width}d}")
        if n is not None:
            start = prev = n
    return ",".join(ranges)


MAX_EXPANDED = 1_000_000


def expand_hostlist(expression: str) -> list[str]:
    """Slurm's node list syntax, expanded: `gpu-[01-03,07],login1` -> gpu-01, gpu-02, gpu-03, gpu-07, login1."""
    names: list[str] = []
    for item in _split_top_level(expression.strip()):
        pieces: list[list[str]] = []
        for literal, ranges in re.findall(r"([^\[\]]*)(?:\[([^\[\]]*)\])?", item):
            pieces.append([literal])
            if ranges:
                pieces.append(_expand_ranges(ranges, expression))
        expanded = [""]
        for options in pieces:
            expanded = [head + tail for head in expanded for tail in options]
            if len(names) + len(expanded) > MAX_EXPANDED:
                raise FleetUsageError(f"--expect {clean(expression, 80)}: more than {MAX_EXPANDED} nodes")
        names.extend(n for n in expanded if n)
    return names


def _split_top_level(expression: str) -> list[str]:
    items, depth, current = [], 0, ""
    for char in expression:
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth not in (0, 1):
            raise FleetUsageError(f"--expect {clean(expression, 80)}: unbalanced brackets")
        if char == "," and depth == 0:
            items.append(current)
            current = ""
        else:
            current += char
    if depth:
        raise FleetUsageError(f"--expect {clean(expression, 80)}: unbalanced brackets")
    return [i.strip() for i in [*items, current] if i.strip()]


def _expand_ranges(ranges: str, expression: str) -> list[str]:
    out: list[str] = []
    for part in ranges.split(","):
        match = re.fullmatch(r"\s*(\d+)(?:-(\d+))?\s*", part)
        if not match:
            raise FleetUsageError(
                f"--expect {clean(expression, 80)}: {clean(part, 40)!r} is not a number or a range"
            )
        first, last = match.group(1), match.group(2) or match.group(1)
        width = len(first) if first.startswith("0") else 0
        if int(last) < int(first) or int(last) - int(first) >= MAX_EXPANDED:
            raise FleetUsageError(f"--expect {clean(expression, 80)}: bad range {clean(part, 40)!r}")
        out.extend(f"{n:0{width}d}" for n in range(int(first), int(last) + 1))
    return out


def node_names(paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Each file's node name: its file name without `.json`; the folders too where two collide."""
    normalized = [os.path.normpath(p) for p in paths]
    split: dict[int, list[str]] = {}  # the folders of a path, only for names that collide

    def parts(i: int) -> list[str]:
        if i not in split:
            split[i] = list(PurePath(normalized[i]).parts)
        return split[i]

    def stem(parts: list[str], parents: int) -> str:
        name = parts[-1][:-5] if parts[-1].lower().endswith(".json") else parts[-1]
        folders = [p for p in parts[:-1] if p][-parents:] if parents else []
        return clean("/".join([*folders, name]), MAX_NAME) or "?"

    names = []
    for i, path in enumerate(normalized):
        base = os.path.basename(path)  # noqa: PTH119 - a PurePath per file costs more than reading it
        names.append(stem([base] if base else parts(i), 0))
    for parents in range(1, 4):
        seen: dict[str, int] = {}
        for n in names:
            seen[n] = seen.get(n, 0) + 1
        if len(seen) == len(names):
            break
        names = [stem(parts(i), parents) if seen[n] > 1 else n for i, n in enumerate(names)]
    counts: dict[str, int] = {}
    unique = []
    for n in names:
        counts[n] = counts.get(n, 0) + 1
        unique.append(n if counts[n] == 1 else f"{n}#{counts[n]}")
    return unique


# ---------------------------------------------------------------------------------------------
# Finding the files


def discover(arguments: Sequence[str]) -> list[str]:
    """Files named on the command line, and every `*.json` below the folders named there."""
    if not arguments:
        raise FleetUsageError("name at least one report file or folder")
    found: list[str] = []
    seen: set[str] = set()

    def add(path: str) -> None:
        key = os.path.normpath(path)
        if key not in seen:
            seen.add(key)
            found.append(path)
        if len(found) > MAX_FILES:
            raise FleetUsageError(f"more than {MAX_FILES} files to read; name fewer folders")

    for argument in arguments:
        try:
            is_dir = Path(argument).is_dir()
            exists = is_dir or os.path.lexists(argument)
        except (OSError, ValueError) as exc:
            raise FleetUsageError(f"{clean(argument)}: {getattr(exc, 'strerror', None) or exc}") from exc
        if not exists:
            raise FleetUsageError(f"{clean(argument)}: no such file or folder")
        if not is_dir:
            add(argument)
            continue
        before = len(found)
        for file in _walk(argument, 0):
            add(file)
        if len(found) == before:
            raise FleetUsageError(f"{clean(argument)}: no *.json reports in this folder")
    return found


def _walk(folder: str, depth: int) -> Iterator[str]:
    try:
        with os.scandir(folder) as entries:
            items = sorted(entries, key=lambda e: e.name)
    except OSError:
        return
    for entry in items:
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                if depth < MAX_FOLDER_DEPTH:
                    yield from _walk(entry.path, depth + 1)
            elif entry.name.lower().endswith(".json"):
                yield entry.path
        except OSError:
            continue


# ---------------------------------------------------------------------------------------------
# Reading one file


class _Bad(Exception):
    """This node's file cannot be used; the message is the one line shown for it."""


def read_text(path: str) -> str:
    """The file's text, through the bounded reader every untrusted file goes through."""
    from gpudoctor import loading

    try:
        return loading.read_bounded(path, loading.MAX_FACTS_BYTES)
    except OSError as exc:
        raise _Bad(f"cannot open: {exc.strerror or exc}") from None
    except loading.UntrustedInputError as exc:
        raise _Bad(clean(str(exc), 200)) from None


def parse_json(text: str) -> Any:
    """The whole document, bounded in depth (files not in `check --json`'s usual layout)."""
    from gpudoctor import loading

    text = text.removeprefix("\ufeff")
    if not text.strip():
        raise _Bad("empty file")
    try:
        return loading.parse_json(text)
    except loading.UntrustedInputError as exc:
        raise _Bad(clean(str(exc), 200)) from None


_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
# ^ json's C scanner: the value at a position -> (value, where it ends); StopIteration if none
_OPEN = re.compile(r"[ \t\n\r]*\{")
_KEY = re.compile(r'[ \t\n\r]*"([^"\\\x00-\x1f]*)"[ \t\n\r]*:[ \t\n\r]*')  # a key without escapes
_AFTER = re.compile(r"[ \t\n\r]*([,}])")
_CLOSE = re.compile(r"[ \t\n\r]*}")
_SKIPPED = frozenset({"checks", "facts"})  # a report's bulk: of it, fleet reads only facts.driver
# `gpudoctor check --json` is indented by 2, and no JSON string holds a raw newline: a line that
# starts with 2 spaces and a quote is a member of the top level, with 4 a member of a member.
# (Each ends in a character that is rare in such text, so that str.find skips ahead quickly.)
_TOP_CHECKS = '\n  "checks":'
_TOP_FACTS = '\n  "facts": {'
_TOP_MEMBER = '\n  "'
_FACTS_DRIVER = '\n    "driver":'
_SPACE = re.compile(r"[ \t\n\r]+")


def _past_space(text: str, i: int) -> int:
    space = _SPACE.match(text, i)
    return i if space is None else space.end()


_ODD: Any = object()  # not the usual layout


@dataclass(frozen=True, kw_only=True)
class _Head:
    """What a report says before its `checks`: read and checked once per distinct text."""

    findings: tuple[NodeFinding, ...]
    usable_gpu: bool | None
    gpudoctor_version: str
    schema_version: int | None


_HEADS: dict[str, _Head | str] = {}  # a head's text -> what it says, or why it cannot be read
MAX_HEAD_CHARS = 16 * 1024 * 1024  # of all the heads kept together (a real one is a few KB)
_kept = [0]


def _usual_report(name: str, path: str, text: str) -> Node | None:
    """A report in `check --json`'s own layout, read without decoding its checks and facts.

    A report is mostly checks and facts, of which fleet reads only `facts.driver`, and the nodes of
    a fleet mostly share their findings word for word. So the head (every member before `checks`)
    is decoded member by member with json's own scanner and checked once per distinct text, and of
    the rest only `facts.driver` is decoded, found by the layout (no top-level line between `facts`
    and its `driver`). Anything else (another layout, a facts file, a document cut short) returns
    None, and the whole text is decoded instead.
    """
    end = text.find(_TOP_CHECKS)
    if end < 0:
        return None
    head_text = text[:end]
    head = _HEADS.get(head_text)
    if head is None:
        head = _read_head(text, end)
        if head is None:
            return None
        if _kept[0] + len(head_text) <= MAX_HEAD_CHARS:
            _kept[0] += len(head_text)
            _HEADS[head_text] = head
    driver = _facts_driver(text, end)
    if driver is _ODD:
        return None
    if isinstance(head, str):
        raise _Bad(head)
    return _node_of_report(name, path, head, {"driver": driver})


def _read_head(text: str, end: int) -> _Head | str | None:
    """The members before `checks` (which must start at `end`), checked; or why they cannot be read."""
    from gpudoctor import loading

    try:
        opened = _OPEN.match(text)
        walked = None if opened is None else _members(text, opened.end(), _SKIPPED)
    except (ValueError, IndexError, StopIteration):
        return None  # not valid JSON there: the full decoder says what is wrong
    except RecursionError:
        return f"nested more than {loading.MAX_DEPTH} levels deep: refused"
    if walked is None or walked[1] != "checks" or _past_space(text, end + len(_TOP_CHECKS)) != walked[2]:
        return None
    members = walked[0]
    if "findings" not in members or members.get("kind") == "gpudoctor-fleet":
        return None
    try:
        loading.check_depth(members)
        return _head(members)
    except loading.UntrustedInputError as exc:
        return clean(str(exc), 200)
    except _Bad as exc:
        return str(exc)


def _facts_driver(text: str, checks: int) -> Any:
    """This report's `facts.driver` ({} when facts has none), found by the layout; `_ODD` when the
    layout is not the usual one."""
    from gpudoctor import loading

    facts = text.rfind(_TOP_FACTS, checks)
    if facts < 0 or not text[-64:].rstrip().endswith("}"):
        return _ODD  # facts before checks, another layout, or cut short
    driver = text.find(_FACTS_DRIVER, facts)
    if text.find(_TOP_MEMBER, facts + 1, len(text) if driver < 0 else driver) >= 0:
        return _ODD  # facts ends before that: another member's driver, or another layout
    if driver < 0:
        return {}
    try:
        value, stop = _SCAN(text, _past_space(text, driver + len(_FACTS_DRIVER)))
    except (ValueError, IndexError, StopIteration):
        return _ODD
    except RecursionError:
        raise _Bad(f"nested more than {loading.MAX_DEPTH} levels deep: refused") from None
    if _AFTER.match(text, stop) is None:
        return _ODD
    try:
        loading.check_depth(value, loading.MAX_DEPTH - 2)  # inside the report and its facts
    except loading.UntrustedInputError:
        raise _Bad(f"nested more than {loading.MAX_DEPTH} levels deep: refused") from None
    return value


def _members(text: str, i: int, until: frozenset[str]) -> tuple[dict[str, Any], str | None, int] | None:
    """Decode an object's members one by one from i (just past its `{`) until a key in `until`:
    (members so far, that key or None at the object's end, where its value or the rest starts)."""
    decoded: dict[str, Any] = {}
    closed = _CLOSE.match(text, i)
    if closed is not None:
        return decoded, None, closed.end()
    while True:
        key = _KEY.match(text, i)
        if key is None:
            return None  # a key with escapes, or not an object: the full decoder decides
        name = key.group(1)
        if name in until:
            return decoded, name, key.end()
        decoded[name], i = _SCAN(text, key.end())
        after = _AFTER.match(text, i)
        if after is None:
            return None
        i = after.end()
        if after.group(1) == "}":
            return decoded, None, i


def _text(value: Any, where: str, *, required: bool = False, limit: int = MAX_TEXT) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str):
        raise _Bad(f"{where} is {type(value).__name__}, not text")
    return clean(value, limit)


_CODE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,15}$")
_SEEN: dict[tuple[Any, Any, Any, Any], NodeFinding] = {}  # findings repeat across nodes: checked once
MAX_SEEN = 20_000  # findings kept, each of at most MAX_SEEN_CHARS characters as read
MAX_SEEN_CHARS = 4 * MAX_TEXT


def _finding(item: dict[str, Any], where: str) -> NodeFinding:
    code = _text(item.get("code"), f"{where}.code", required=True, limit=40)
    if not _CODE.match(code):
        raise _Bad(f"{where}.code is {code!r}, not a finding code")
    severity = item.get("severity")
    if severity not in SEVERITIES:
        raise _Bad(f"{where}.severity is {clean(repr(severity), 40)}, not error, warning or info")
    return NodeFinding(
        code=code,
        severity=severity,
        title=_text(item.get("title"), f"{where}.title"),
        message=_text(item.get("message"), f"{where}.message"),
    )


def _findings(raw: Any) -> tuple[NodeFinding, ...]:
    if not isinstance(raw, list):
        raise _Bad(f"findings is {type(raw).__name__}, not a list")
    if len(raw) > MAX_FINDINGS_PER_NODE:
        raise _Bad(f"{len(raw)} findings (at most {MAX_FINDINGS_PER_NODE} are believable)")
    findings = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise _Bad(f"findings[{i}] is {type(item).__name__}, not an object")
        key = (item.get("code"), item.get("severity"), item.get("title"), item.get("message"))
        try:
            finding = _SEEN.get(key)  # only text (or None) was ever checked and kept
        except TypeError:  # a list or an object where text belongs: unhashable, and refused below
            finding = None
        if finding is None:
            finding = _finding(item, f"findings[{i}]")
            if len(_SEEN) < MAX_SEEN and sum(len(part or "") for part in key) <= MAX_SEEN_CHARS:
                _SEEN[key] = finding
        findings.append(finding)
    return tuple(findings)


def _inventory(facts: Any) -> tuple[int | None, str | None]:
    """GPU count and driver version, read leniently from a facts mapping."""
    driver = facts.get("driver") if isinstance(facts, dict) else None
    if not isinstance(driver, dict):
        return None, None
    gpus = driver.get("gpus")
    version = driver.get("driver_version")
    return (
        len(gpus) if isinstance(gpus, list) else None,
        clean(version, 40) if isinstance(version, str) and version else None,
    )


def _schema(doc: dict[str, Any]) -> int | None:
    value = doc.get("schema_version")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _head(doc: dict[str, Any]) -> _Head:
    """A report's findings, summary and versions, checked (raises _Bad)."""
    schema = _schema(doc)
    try:
        findings = _findings(doc["findings"])
    except _Bad as exc:
        from gpudoctor.facts import SCHEMA_VERSION

        if schema is not None and schema > SCHEMA_VERSION:
            raise _Bad(
                f"{exc} (written by a newer gpudoctor: report schema {schema}, this one reads "
                f"{SCHEMA_VERSION})"
            ) from None
        raise
    summary = doc.get("summary")
    usable = summary.get("usable_gpu") if isinstance(summary, dict) else None
    version = doc.get("gpudoctor_version")
    return _Head(
        findings=findings,
        usable_gpu=usable if isinstance(usable, bool) else None,
        gpudoctor_version=clean(version, 40) if isinstance(version, str) else "",
        schema_version=schema,
    )


def _report_node(name: str, path: str, doc: dict[str, Any]) -> Node:
    return _node_of_report(name, path, _head(doc), doc.get("facts"))


def _node_of_report(name: str, path: str, head: _Head, facts: Any) -> Node:
    """A report's node: its head's findings and versions, and the GPU count and driver of its facts."""
    gpus, driver = _inventory(facts)
    return Node(
        name=name,
        path=path,
        kind="report",
        findings=head.findings,
        usable_gpu=head.usable_gpu,
        gpus=gpus,
        driver_version=driver,
        gpudoctor_version=head.gpudoctor_version,
        schema_version=head.schema_version,
    )


class Judge:
    """Judges facts files with the real engine; identical facts (but for timings) are judged once."""

    def __init__(self, matrix_loader: Callable[[], Matrix]) -> None:
        self._matrix_loader = matrix_loader
        self._matrix: Matrix | None = None
        self._memo: dict[str | bytes, tuple[tuple[NodeFinding, ...], bool]] = {}

    def __call__(self, raw: dict[str, Any], key: bytes | None = None) -> tuple[tuple[NodeFinding, ...], bool]:
        """The findings and whether a GPU is usable; `key`: `timeless_key` of the text `raw` came from."""
        from gpudoctor.engine import diagnose
        from gpudoctor.facts import Facts
        from gpudoctor.serde import SerdeError, from_data

        if key is None:
            key = json.dumps(_without_timings(raw), sort_keys=True, default=str).encode()
        if key in self._memo:
            return self._memo[key]
        try:
            facts = from_data(Facts, raw)
        except SerdeError as exc:
            raise _Bad(f"does not look like gpudoctor facts: {clean(str(exc), 200)}") from None
        except RecursionError:
            raise _Bad("nested too deeply to be gpudoctor facts") from None
        if self._matrix is None:
            self._matrix = self._matrix_loader()
        report = diagnose(facts, self._matrix)
        result = (
            tuple(
                NodeFinding(
                    code=f.code, severity=f.severity.value, title=clean(f.title), message=clean(f.message)
                )
                for f in report.findings
            ),
            report.has_usable_gpu,
        )
        self._memo[key] = result
        return result


_TIMING = re.compile(r'"seconds": *-?[0-9][0-9.eE+-]*')  # a probe's time: the only number of that name


def timeless_key(text: str) -> bytes:
    """A digest of facts text that differs only in how long the probes took.

    Such facts are judged alike (no rule reads a probe's time into a title or a message), so the
    fleet judges them once. Matching on the text costs far less than encoding the decoded facts
    again: only a number after `"seconds":` outside a string is blanked (inside one, the quotes
    would be escaped), and whatever else differs, however little, gives another key.
    """
    blanked = _TIMING.sub('"seconds": 0', text)
    return hashlib.blake2b(blanked.encode("utf-8", "surrogatepass"), digest_size=20).digest()


def _without_timings(raw: dict[str, Any]) -> dict[str, Any]:
    probes = raw.get("probes")
    if not isinstance(probes, list):
        return raw
    return {
        **raw,
        "probes": [
            {k: v for k, v in p.items() if k != "seconds"} if isinstance(p, dict) else p for p in probes
        ],
    }


def _facts_node(name: str, path: str, raw: dict[str, Any], judge: Judge, key: bytes | None = None) -> Node:
    from gpudoctor.facts import SCHEMA_VERSION

    schema = _schema(raw)
    if schema is not None and schema > SCHEMA_VERSION:
        raise _Bad(
            f"facts written by a newer gpudoctor (schema {schema}; this one reads {SCHEMA_VERSION}): "
            "upgrade gpudoctor here, or have the nodes write `gpudoctor check --json` reports"
        )
    findings, usable = judge(raw, key)
    gpus, driver = _inventory(raw)
    version = raw.get("gpudoctor_version")
    return Node(
        name=name,
        path=path,
        kind="facts",
        findings=findings,
        usable_gpu=usable,
        gpus=gpus,
        driver_version=driver,
        gpudoctor_version=clean(version, 40) if isinstance(version, str) else "",
        schema_version=schema,
    )


@dataclass(frozen=True, kw_only=True)
class _Facts:
    """A facts file read and parsed, still to be judged (by the one Judge of the main process)."""

    name: str
    path: str
    raw: dict[str, Any]
    key: bytes  # timeless_key of its text


def _load(name: str, path: str) -> Node | Unreadable | _Facts:
    """Read and parse one file: a report becomes a Node; facts wait for the engine."""
    shown = clean(path, 300)
    try:
        text = read_text(path)
        node = _usual_report(name, shown, text)
        if node is not None:
            return node
        doc = parse_json(text)
        if not isinstance(doc, dict):
            raise _Bad(f"a JSON {type(doc).__name__}, not a gpudoctor report or facts object")
        if doc.get("kind") == "gpudoctor-fleet":
            raise _Bad("a `gpudoctor fleet` summary, not one node's report")
        if "findings" in doc:
            return _report_node(name, shown, doc)
        if any(key in doc for key in ("probes", "driver", "platform", "target")):
            return _Facts(name=name, path=shown, raw=doc, key=timeless_key(text))
        raise _Bad("neither a gpudoctor report (no findings) nor gpudoctor facts (no probes)")
    except _Bad as exc:
        return Unreadable(name=name, path=shown, reason=str(exc))
    except MemoryError:
        return Unreadable(name=name, path=shown, reason="too large to read")


def _judged(loaded: Node | Unreadable | _Facts, judge: Judge) -> Node | Unreadable:
    if not isinstance(loaded, _Facts):
        return loaded
    try:
        return _facts_node(loaded.name, loaded.path, loaded.raw, judge, loaded.key)
    except _Bad as exc:
        return Unreadable(name=loaded.name, path=loaded.path, reason=str(exc))


def read_node(name: str, path: str, judge: Judge) -> Node | Unreadable:
    return _judged(_load(name, path), judge)


# ---------------------------------------------------------------------------------------------
# The fleet


def group(nodes: Iterable[Node], *, include_info: bool = True) -> tuple[FindingGroup, ...]:
    """One group per finding code, errors first, then the most widespread."""
    by_code: dict[str, dict[str, Any]] = {}
    for node in nodes:
        name = node.name
        for finding in node.findings:
            if finding.severity == "info" and not include_info:
                continue
            entry = by_code.get(finding.code)
            if entry is None:
                entry = by_code[finding.code] = {
                    "severity": finding.severity,
                    "title": finding.title,
                    "nodes": {},
                    "variants": {},
                }
            elif finding.severity != entry["severity"] and SEVERITIES.index(
                finding.severity
            ) < SEVERITIES.index(entry["severity"]):
                entry["severity"] = finding.severity  # a newer node may judge it more severely
            if not entry["title"]:
                entry["title"] = finding.title
            entry["nodes"][name] = None
            variant = entry["variants"].get(finding.message)
            if variant is None:
                variant = entry["variants"][finding.message] = {}
            variant[name] = None
    groups = [
        FindingGroup(
            code=code,
            severity=entry["severity"],
            title=entry["title"],
            nodes=tuple(sorted(entry["nodes"], key=natural_key)),
            variants=tuple(
                sorted(
                    (
                        Variant(message=message, nodes=tuple(sorted(names, key=natural_key)))
                        for message, names in entry["variants"].items()
                    ),
                    key=lambda v: (-len(v.nodes), v.message),
                )
            ),
        )
        for code, entry in by_code.items()
    ]
    return tuple(sorted(groups, key=lambda g: (SEVERITIES.index(g.severity), -g.count, g.code)))


PARALLEL_FROM = 1000  # files: below this, starting worker processes costs more than it saves
# A report in the usual layout costs well under 0.1 ms to read here, and a worker adds about half of
# that again (fork, pickling the nodes back, its own checked heads): on 2 CPUs the workers and this
# process only take turns (10,000 reports, 2 CPUs: 1.4 CPU s with workers, 0.9 s without), from 4 on
# the files are read side by side.
WORKER_CPUS = 4
CHUNK = 250


def _load_chunk(items: Sequence[tuple[str, str]]) -> list[Node | Unreadable | _Facts]:
    return [_load(name, path) for name, path in items]


def _workers(files: int, parallel_from: int) -> int:
    if files < parallel_from or sys.platform != "linux":  # fork is the cheap and safe start there
        return 1
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return 1 if cpus < WORKER_CPUS else max(1, min(cpus, 16, files))


def read_all(
    items: Sequence[tuple[str, str]],
    matrix_loader: Callable[[], Matrix],
    *,
    parallel_from: int = PARALLEL_FROM,
) -> list[Node | Unreadable]:
    """Every (name, path) read: in worker processes when there are many files and CPUs to spare.

    Workers only read and parse; facts files come back to this process, whose one Judge (one
    matrix, one memo) judges them.
    """
    workers = _workers(len(items), parallel_from)
    if workers == 1:
        loaded = _load_chunk(items)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        size = max(1, min(CHUNK, len(items) // (workers * 4)))
        chunks = [items[i : i + size] for i in range(0, len(items), size)]
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            loaded = [result for part in pool.map(_load_chunk, chunks) for result in part]
    judge = Judge(matrix_loader)
    return [_judged(item, judge) for item in loaded]


def gather(
    arguments: Sequence[str],
    matrix_loader: Callable[[], Matrix],
    *,
    expect: str | None = None,
    parallel_from: int = PARALLEL_FROM,
) -> Fleet:
    """Read every report or facts file named (or found in the folders named) and group them.

    `expect` is a Slurm node list of the nodes that should have reported; those without a file
    are `missing`. `matrix_loader` is called only if a facts file needs judging (once per worker
    process; many files are read in parallel when it can be pickled).
    """
    expected = expand_hostlist(expect) if expect else []
    collecting = gc.isenabled()
    gc.disable()  # tens of thousands of small objects, none in a cycle: the collector's passes only cost
    try:
        return _gather(arguments, matrix_loader, expected, parallel_from)
    finally:
        if collecting:
            gc.enable()


def _gather(
    arguments: Sequence[str], matrix_loader: Callable[[], Matrix], expected: list[str], parallel_from: int
) -> Fleet:
    paths = discover(arguments)
    names = node_names(paths)
    nodes: list[Node] = []
    unreadable: list[Unreadable] = []
    for result in read_all(list(zip(names, paths, strict=True)), matrix_loader, parallel_from=parallel_from):
        if isinstance(result, Node):
            nodes.append(result)
        else:
            unreadable.append(result)
    nodes.sort(key=lambda n: natural_key(n.name))
    unreadable.sort(key=lambda u: natural_key(u.name))
    seen = {n.name for n in nodes} | {u.name for u in unreadable}
    missing = tuple(sorted({name for name in expected if name not in seen}, key=natural_key))
    return Fleet(nodes=tuple(nodes), unreadable=tuple(unreadable), groups=group(nodes), missing=missing)
