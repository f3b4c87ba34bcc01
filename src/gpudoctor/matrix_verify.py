"""Compare the matrix with what the released wheels say about themselves (recorded by tools/verify_matrix.py)."""

from __future__ import annotations

from typing import Any

from packaging.version import InvalidVersion, Version

from gpudoctor.matrix import Matrix

RECORDING = "tests/data/matrix_recording"

# package -> where its wheels are read, whether the wheel itself is opened (build_info.py), first release
PACKAGES: dict[str, dict[str, Any]] = {
    "tensorflow": {"platform": "linux", "wheel": True, "first": "1.13.0", "patches": True},
    "tensorflow-gpu": {"platform": "linux", "wheel": True, "first": "1.13.0", "patches": True},
    "torch": {"platform": "linux", "wheel": False, "first": "1.8.0", "patches": False},
    "jax": {"platform": "linux", "wheel": False, "first": "0.4.1", "patches": True},
    "jax-cuda12-plugin": {"platform": "linux", "wheel": False, "first": "0.4.1", "patches": True},
    "jax-cuda13-plugin": {"platform": "linux", "wheel": False, "first": "0.4.1", "patches": True},
    "tensorflow-metal": {"platform": "macos", "wheel": False, "first": "0.1", "patches": True},
    "tensorflow-directml-plugin": {
        "platform": "windows",
        "wheel": False,
        "first": "0.0.1.dev0",
        "patches": True,
    },
}


def _v(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None


def releases_to_record(matrix: Matrix, package: str, by_python: dict[str, list[str]]) -> dict[str, str]:
    """version -> the newest Python with a wheel of it, for the releases worth recording."""
    spec = PACKAGES[package]
    first = Version(spec["first"])
    newest_python: dict[str, str] = {}
    for python in sorted(by_python, key=Version):
        for version in by_python[python]:
            newest_python[version] = python
    parsed = {v: p for v in newest_python if (p := _v(v)) is not None and p >= first}
    finals = sorted((p for p in parsed.values() if not p.is_prerelease), reverse=True)
    newest_final = finals[0] if finals else None
    keep: set[Version] = set()
    if spec["patches"]:
        keep.update(finals)
    else:
        series: dict[tuple[int, ...], list[Version]] = {}
        for p in finals:
            series.setdefault(p.release[:2], []).append(p)
        for members in series.values():
            keep.update({min(members), max(members)})
    pre = [p for p in parsed.values() if p.is_prerelease and (newest_final is None or p > newest_final)]
    if pre:
        keep.add(max(pre))
    if not finals and parsed:  # dev-only packages (tensorflow-directml-plugin)
        keep.update(parsed.values())
    return {v: newest_python[v] for v, p in parsed.items() if p in keep}


Recording = Any
load_recording = newer_releases = set_last_verified = verify = None  # filled in below
