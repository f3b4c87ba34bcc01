"""The conda environment of the target interpreter, read from `<prefix>/conda-meta/*.json`.

The records are read directly (fast, works without conda on PATH); `conda list --json` is asked
only when the conda-meta folder cannot be read. The prefix is $CONDA_PREFIX when the target
interpreter lives there, else the target's own prefix when it has conda-meta; an active conda
env that the target does not belong to (a venv on top of it) is reported with is_target=False.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from gpudoctor import conda_meta
from gpudoctor.conda_meta import short_channel
from gpudoctor.facts import CondaFacts, CondaPackage
from gpudoctor.prestart import conda_child
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable, load_json
from gpudoctor.probes.child_process import parse_marker
from gpudoctor.runner import which

CONDA_LIST_TIMEOUT = 12.0
CONDA_META_TIMEOUT = 30.0
MAX_SCRIPT_BYTES = 65536
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


def parse_record(text: str) -> CondaPackage:
    """One conda-meta/*.json record. Raises ValueError on anything that is not a package record."""
    return _package(*conda_meta.record_fields(text))


def _package(name: str, version: str, build: str, channel: str) -> CondaPackage:
    return CondaPackage(name=name, version=version, build=build, channel=short_channel(channel))


def _read_package(name: str, version: str, build: str, channel: str) -> CondaPackage:
    """A row of `conda_meta.read_folder`: its channel is already short."""
    return CondaPackage(name=name, version=version, build=build, channel=channel)


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
    chosen = conda_meta.choose_prefix(ctx.target.python, ctx.env, windows=ctx.os_name == "Windows")
    if chosen is None:
        raise ProbeUnavailable("not a conda environment")
    prefix, is_target = chosen
    meta = Path(prefix) / "conda-meta"
    packages: tuple[CondaPackage, ...] = ()
    unreadable: list[str] = []
    source: Any = None
    conda_exe = ctx.env.get("CONDA_EXE") or which("conda", ctx.env)
    list_error = None
    listing = _records(ctx, meta)
    if "error" not in listing:
        source = "conda-meta"
        packages = tuple(_read_package(*record) for record in listing["records"])
        unreadable.extend(listing["unreadable"])
    elif not meta.exists() and not conda_exe:
        raise ProbeUnavailable(f"not a conda environment ({prefix} has no conda-meta)")
    elif conda_exe:
        unreadable.append(f"{meta}: {listing['error']}")
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
        unreadable.append(f"{meta}: {listing['error']}")
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


def _records(ctx: ProbeContext, meta: Path) -> dict[str, Any]:
    """conda_meta.read_folder(meta) from the child prestart started (the same program when it did not),
    or read here when the child gave no usable answer."""
    if not meta.is_dir():
        return conda_meta.read_folder(str(meta))  # says why
    argv, env = conda_child(str(meta), ctx.env)
    result = ctx.runner.run(argv, timeout=ctx.child_budget(CONDA_META_TIMEOUT), env=env)
    answer = parse_marker(result.stdout) if result.ok else None
    if answer is not None and _well_formed(answer):
        return answer
    return conda_meta.read_folder(str(meta))


def _well_formed(answer: dict[str, Any]) -> bool:
    if set(answer) == {"error"}:
        return isinstance(answer["error"], str)
    records, unreadable = answer.get("records"), answer.get("unreadable")
    return (
        isinstance(records, list)
        and isinstance(unreadable, list)
        and all(isinstance(r, list) and len(r) == 4 and all(isinstance(v, str) for v in r) for r in records)
        and all(isinstance(u, str) for u in unreadable)
    )


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
