"""CUDA libraries as the target environment sees them: what the dynamic loader resolves, every copy
on disk in the places frameworks look, and each one's version in its own words.

The work happens in a child process of the target interpreter (`child/libraries.py`), so the
target's site-packages, conda prefix and environment apply, and a library that crashes on load
takes only the child down. The child announces each load and call on stderr; when it dies, the
probe runs it again with the culprit skipped and records the crash on that library.
"""

from __future__ import annotations

import time
from typing import Any, get_args

from gpudoctor.facts import LibrariesFacts, LibraryFile, LibraryKind, LibraryLocation
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.probes.child_process import run_child

STEP = "@@GPUDOCTOR-STEP@@ "
MAX_RERUNS = 3
BUDGET = 35.0  # seconds for all child runs together; the probe's own limit is a little longer
_KINDS: tuple[str, ...] = get_args(LibraryKind)
_LOCATIONS: tuple[str, ...] = get_args(LibraryLocation)
_SOURCES = ("call", "header", "file-name", "package")
_SHOWN = ("cudart", "cudnn", "libcuda")
_LABELS = {"pip-wheel": "pip wheel", "cuda-toolkit": "CUDA toolkit", "ld_library_path": "LD_LIBRARY_PATH"}


def last_step(stderr: str) -> tuple[str, str] | None:
    """The last thing the child started before it died: ("load", soname) or ("call", real path)."""
    for line in reversed(stderr.splitlines()):
        if line.startswith(STEP):
            action, _, target = line[len(STEP) :].partition(" ")
            if action in ("load", "call") and target:
                return action, target
    return None


def parse_files(data: dict[str, Any], crashes: dict[str, str]) -> tuple[LibraryFile, ...]:
    """The child's file rows as facts; anything malformed is dropped or defaulted, never trusted."""
    rows = data.get("files")
    files = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, dict):
            continue
        kind, location, source = row.get("kind"), row.get("location"), row.get("version_source")
        version, error = row.get("version"), row.get("load_error")
        crash = next((crashes[k] for k in (row.get("real"), row.get("name")) if k in crashes), None)
        files.append(
            LibraryFile(
                kind=kind if kind in _KINDS else "other",
                name=str(row.get("name") or ""),
                path=str(row.get("path") or ""),
                location=location if location in _LOCATIONS else "other",
                version=version if isinstance(version, str) and version else None,
                version_source=source if source in _SOURCES else None,
                loader_default=row.get("loader_default") is True,
                load_error=crash or (error if isinstance(error, str) and error else None),
            )
        )
    return tuple(files)


def collect(ctx: ProbeContext) -> LibrariesFacts:
    if ctx.os_name == "Darwin":
        raise ProbeUnavailable("macOS has no CUDA libraries")
    ld_library_path = tuple(p for p in ctx.env.get("LD_LIBRARY_PATH", "").split(":") if p)
    skip: list[str] = []
    crashes: dict[str, str] = {}
    started = time.monotonic()
    while True:
        left = BUDGET - (time.monotonic() - started)
        args = tuple(a for target in skip for a in ("--skip", target))
        run = run_child(ctx, "libraries", args=args, timeout=max(1.0, min(ctx.child_timeout, left)))
        if run.data is not None:
            break
        step = last_step(run.result.stderr)
        problem = run.problem or "the library probe failed"
        if step is None or run.result.error is not None or len(skip) >= MAX_RERUNS or left < 5:
            where = (
                f" while {'loading' if step[0] == 'load' else 'asking the version of'} {step[1]}"
                if step
                else ""
            )
            return LibrariesFacts(ld_library_path=ld_library_path, search_error=problem + where)
        action, target = step
        doing = "loading it" if action == "load" else "asking it for its version"
        signal = run.result.signal_name
        how = (
            f"crashed the process ({signal})"
            if signal
            else f"ended the process (status {run.result.returncode})"
        )
        crashes[target] = f"{how} when {doing}"
        skip.append(target)
    searched = data_searched(run.data)
    return LibrariesFacts(
        files=parse_files(run.data, crashes),
        ld_library_path=ld_library_path,
        searched=searched,
    )


def data_searched(data: dict[str, Any]) -> tuple[str, ...]:
    searched = data.get("searched")
    return tuple(s for s in searched if isinstance(s, str)) if isinstance(searched, list) else ()


def _label(kind: str) -> str:
    return {"libcuda": "libcuda", "nvml": "libnvidia-ml"}.get(kind, f"lib{kind}")


def describe(facts: LibrariesFacts) -> Description:
    details = tuple(
        " ".join(
            part
            for part in (
                f"{f.name} {f.version or '?'}" + (f" ({f.version_source})" if f.version_source else ""),
                f"[{f.location}{', loader default' if f.loader_default else ''}]",
                f.path,
                f"load error: {f.load_error}" if f.load_error else "",
            )
            if part
        )
        for f in facts.files
    )
    if facts.search_error:
        return Description(mark="warn", summary=f"could not look: {facts.search_error}", details=details)
    found: list[str] = []
    missing: list[str] = []
    for kind in _SHOWN:
        copies = [f for f in facts.files if f.kind == kind]
        default = next((f for f in copies if f.loader_default), None)
        if default is not None and default.load_error:
            found.append(f"{_label(kind)} fails to load")
        elif default is not None:
            where = _LABELS.get(default.location, default.location)
            found.append(f"{_label(kind)} {default.version or '?'} ({where})")
        elif copies:
            where = _LABELS.get(copies[0].location, copies[0].location)
            found.append(f"{_label(kind)} {copies[0].version or '?'} only in {where}, not on the loader path")
        else:
            missing.append(_label(kind))
    summary = ", ".join(found)
    if missing:
        summary = " · ".join(s for s in (summary, f"{', '.join(missing)} not found") if s)
    visible = any(f.loader_default and not f.load_error for f in facts.files)
    mark: Mark = "ok" if visible else ("warn" if facts.files else "none")
    return Description(mark=mark, summary=summary, details=details)


PROBE = Probe(name="libraries", title="CUDA libraries", collect=collect, describe=describe, timeout=40)
