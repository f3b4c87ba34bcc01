"""The conda environment of the target interpreter, read from `<prefix>/conda-meta/*.json`.

The records are read directly (fast, works without conda on PATH); `conda list --json` is asked
only when the conda-meta folder cannot be read. The prefix is $CONDA_PREFIX when the target
interpreter lives there, else the target's own prefix when it has conda-meta; an active conda
env that the target does not belong to (a venv on top of it) is reported with is_target=False.
"""

from __future__ import annotations

import functools
import json
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from gpudoctor.facts import CondaFacts, CondaPackage
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable, load_json
from gpudoctor.runner import which

CONDA_LIST_TIMEOUT = 12.0
MAX_SCRIPT_BYTES = 65536
_SUBDIRS = re.compile(r"^(noarch|(linux|osx|win|freebsd|emscripten|wasi|zos)-[a-z0-9_]+)$")
_DEFAULTS = {"main", "r", "free", "msys2", "pro", "mro", "mro-archive"}
_SHOWN = (
    "cudatoolkit",
    "cuda-version",
    "cuda-cudart",
    "cudnn",
    "nccl",
    "pytorch-cuda",
    "pytorch",
    "tensorflow",
)


@functools.lru_cache(maxsize=1024)  # a few channels, thousands of records
def short_channel(channel: str) -> str:
    """A channel URL or name as conda shows it: 'conda-forge', 'pytorch', 'nvidia', 'defaults', 'pypi'."""
    channel = channel.strip()
    if not channel or channel == "<unknown>":
        return ""
    if "://" in channel:
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


def _used_fields(text: str) -> dict[str, str] | None:
    """The members parse_record uses, found without decoding the whole record (its file lists are most
    of it): each looked for from the nearer end, fallbacks only when needed. None when the layout is
    not conda's own or a member is not a string (the full decoder then decides what it means)."""
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


def parse_record(text: str) -> CondaPackage:
    """One conda-meta/*.json record. Raises ValueError on anything that is not a package record."""
    data: Any = _used_fields(text)
    if data is None or not data.get("name") or not data.get("version"):
        data = load_json(text)
    if not isinstance(data, dict):
        data = {}
    name, version = data.get("name"), data.get("version")
    if not isinstance(name, str) or not name or not isinstance(version, str) or not version:
        raise ValueError("no package name and version")
    build = data.get("build") or data.get("build_string") or ""
    channel = data.get("channel") or data.get("schannel") or data.get("url") or ""
    return CondaPackage(
        name=name,
        version=version,
        build=build if isinstance(build, str) else "",
        channel=short_channel(channel) if isinstance(channel, str) else "",
    )


def parse_conda_list(text: str) -> tuple[CondaPackage, ...]:
    """`conda list --json` output. Raises ValueError when it is not a list of package rows."""
    rows = load_json(text)
    if isinstance(rows, list):
        return tuple(
            _list_row(row) for row in rows if isinstance(row, dict) and isinstance(row.get("name"), str)
        )
    raise ValueError("conda list --json did not print a list")


def _list_row(row: dict[str, Any]) -> CondaPackage:
    channel = row.get("channel") or row.get("base_url") or ""
    return CondaPackage(
        name=row["name"],
        version=str(row.get("version") or ""),
        build=str(row.get("build_string") or ""),
        channel=short_channel(channel) if isinstance(channel, str) else "",
    )


def collect(ctx: ProbeContext) -> CondaFacts:
    prefix, is_target = _choose_prefix(ctx)
    meta = Path(prefix) / "conda-meta"
    packages: tuple[CondaPackage, ...] = ()
    unreadable: list[str] = []
    source: Any = None
    conda_exe = ctx.env.get("CONDA_EXE") or which("conda", ctx.env)
    list_error = None
    try:
        records = sorted(p for p in meta.iterdir() if p.suffix == ".json")
    except OSError as exc:
        records = None
        if meta.exists() or conda_exe:
            unreadable.append(f"{meta}: {exc.strerror or exc}")
        else:
            raise ProbeUnavailable(f"not a conda environment ({prefix} has no conda-meta)") from exc
    if records is not None:
        source = "conda-meta"
        found = []
        for record in records:
            try:
                found.append(parse_record(_read(record).decode("utf-8")))
            except (OSError, ValueError, UnicodeDecodeError):
                unreadable.append(record.name)
        packages = tuple(found)
    elif conda_exe:
        argv = [conda_exe, "list", "--json", "--prefix", prefix]
        result = ctx.runner.run(argv, timeout=CONDA_LIST_TIMEOUT, env=dict(ctx.env))
        if not result.ok:
            list_error = result.describe_failure()
        else:
            try:
                packages, source = parse_conda_list(result.stdout), "conda list"
            except ValueError as exc:
                list_error = f"conda list --json printed something unusable: {exc}"
    else:
        list_error = "conda-meta cannot be read and no conda executable was found to ask"

    scripts = _activate_scripts(Path(prefix))
    return CondaFacts(
        prefix=prefix,
        env_name=_env_name(ctx, Path(prefix)),
        is_target=is_target,
        source=source,
        packages=packages,
        unreadable=tuple(unreadable),
        activate_scripts=tuple(p.name for p in scripts),
        activate_sets_library_path=any(_adds_prefix_lib(p, prefix) for p in scripts),
        conda_exe=conda_exe,
        list_error=list_error,
    )


def _read(path: Path) -> bytes:
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


def _choose_prefix(ctx: ProbeContext) -> tuple[str, bool]:
    python_dir = Path(ctx.target.python).parent
    own = python_dir if ctx.os_name == "Windows" else python_dir.parent
    active = ctx.env.get("CONDA_PREFIX")
    if active and _inside(python_dir, Path(active)):
        return active, True
    if (own / "conda-meta").exists():
        return str(own), True
    if active and (Path(active) / "conda-meta").exists():
        return active, False
    raise ProbeUnavailable("not a conda environment")


def _inside(folder: Path, prefix: Path) -> bool:
    def norm(p: Path) -> str:
        return os.path.normcase(str(p))

    for left, right in ((folder, prefix), (folder.resolve(), prefix.resolve())):
        if norm(left) == norm(right) or norm(left).startswith(norm(right).rstrip("/\\") + os.sep):
            return True
    return False


def _env_name(ctx: ProbeContext, prefix: Path) -> str | None:
    named = ctx.env.get("CONDA_DEFAULT_ENV")
    if named and ctx.env.get("CONDA_PREFIX") == str(prefix) and not re.search(r"[/\\]", named):
        return named
    if prefix.parent.name == "envs":
        return prefix.name
    if (prefix / "condabin").is_dir() or (prefix / "envs").is_dir():
        return "base"
    return None


def _activate_scripts(prefix: Path) -> list[Path]:
    try:
        return sorted(p for p in (prefix / "etc" / "conda" / "activate.d").iterdir() if p.is_file())[:50]
    except OSError:
        return []


def _adds_prefix_lib(script: Path, prefix: str) -> bool:
    try:
        with script.open("rb") as handle:
            text = handle.read(MAX_SCRIPT_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return False
    prefix_forms = (r"\$\{?CONDA_PREFIX\}?", r"%CONDA_PREFIX%", re.escape(prefix))
    lib = "(?:" + "|".join(prefix_forms) + r")[/\\](?:lib|Library[/\\]bin)\b"
    for line in text.splitlines():
        if "LD_LIBRARY_PATH" in line and re.search(lib, line) and not line.lstrip().startswith("#"):
            return True
    return False


def _home(path: str) -> str:
    try:
        home = str(Path.home())
    except (RuntimeError, KeyError):
        return path
    return "~" + path[len(home) :] if home not in ("", "/") and path.startswith(home + os.sep) else path


def describe(facts: CondaFacts) -> Description:
    where = _home(facts.prefix or "?")
    label = f"env '{facts.env_name}' at {where}" if facts.env_name else f"env at {where}"
    if not facts.is_target:
        label += " (active, but not the target interpreter's)"
    by_name = {p.name: p for p in facts.packages}
    shown = [f"{n} {by_name[n].version}" for n in _SHOWN if n in by_name][:4]
    parts = [label, f"{len(facts.packages)} packages", ", ".join(shown)]
    mark: Mark = "ok"
    if facts.unreadable or facts.list_error:
        mark = "warn"
        parts.append(facts.list_error or f"{len(facts.unreadable)} unreadable record(s)")
    details = tuple(
        f"{p.name} {p.version} {p.build} [{p.channel}]" for p in facts.packages if p.name in _SHOWN
    )
    details += tuple(f"activate.d: {s}" for s in facts.activate_scripts)
    details += tuple(f"unreadable: {u}" for u in facts.unreadable)
    return Description(mark=mark, summary=" · ".join(p for p in parts if p), details=details)


PROBE = Probe(name="conda", title="conda", collect=collect, describe=describe, timeout=15)
