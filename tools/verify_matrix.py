#!/usr/bin/env python3
"""Check compat_matrix.yaml against the released wheels, and refresh the recording of what they say.

    python tools/verify_matrix.py            # compare with the recording in tests/data/ (offline)
    python tools/verify_matrix.py --refresh  # read the wheels from the package index first (network)

`--refresh` asks pip (never a hand-rolled HTTP client) for every release the matrix has a row for:
`pip index versions` per Python version (which releases have wheels for which Python),
and `pip download --no-deps` of one wheel per release, whose METADATA (Requires-Dist,
Requires-Python, Provides-Extra) and, for TensorFlow, `tensorflow/python/platform/build_info.py`
(CUDA, cuDNN, compute capabilities, is_cuda_build) are read; the wheel is deleted at once; only what was read (a few KB per release) is written to
tests/data/matrix_recording/. pip's own configuration is ignored (PIP_CONFIG_FILE=/dev/null) so a
local constraint or mirror cannot change the answer.

The comparison itself is `gpudoctor.matrix_verify`; it prints one line per disagreement and ends
with `checked N, agree N, disagree N, unverifiable N`. Exit status 1 when anything disagrees.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gpudoctor.matrix import load_matrix
from gpudoctor.matrix_verify import (
    PACKAGES,
    RECORDING,
    Recording,
    load_recording,
    newer_releases,
    releases_to_record,
    set_last_verified,
    verify,
)

LINUX = (
    *(f"manylinux_2_{glibc}_x86_64" for glibc in range(34, 16, -1)),
    "manylinux2014_x86_64",
    "manylinux2010_x86_64",
    "manylinux1_x86_64",
    "linux_x86_64",
)
PLATFORMS = {
    "linux": LINUX,
    "macos": tuple(f"macosx_{major}_0_arm64" for major in range(15, 10, -1)),
    "windows": ("win_amd64",),
}
PYTHONS = tuple(f"3.{m}" for m in range(5, 16))
BUILD_INFO = "python/platform/build_info.py"  # under tensorflow/ (tensorflow_core/ in 1.15-2.1)


def _pip(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    keep = ("PIP_CERT", "PIP_DEFAULT_TIMEOUT")  # no local find-links, constraints or mirrors
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in keep}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1")
    return subprocess.run(
        [sys.executable, "-m", "pip", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _target(python: str, platform: str) -> list[str]:
    # X.Y.99: a release that requires ">=3.6.2" still counts for Python 3.6
    flags = ["--only-binary=:all:", "--python-version", f"{python}.99"]
    for tag in PLATFORMS[platform]:
        flags += ["--platform", tag]
    return flags


def index_versions(package: str, python: str, platform: str) -> list[str]:
    done = _pip("index", "versions", package, "--pre", *_target(python, platform), timeout=120)
    match = re.search(r"Available versions: (.*)", done.stdout)
    versions = [v.strip() for v in match.group(1).split(",")] if match else []
    return [v for v in versions if "+" not in v]  # a local build (+cpu) is not on the index


def _read_wheel(path: Path) -> dict[str, Any]:
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        text = wheel.read(metadata).decode("utf-8", "replace")
        build_info = None
        found = sorted(n for n in names if n.endswith(BUILD_INFO) and n.count("/") == 3)
        if found:
            build_info = _build_info(wheel.read(found[0]).decode("utf-8", "replace"))
            build_info["file"] = found[0]
    headers = _headers(text)
    return {
        "wheel": path.name,
        "requires_python": (headers.get("Requires-Python") or [None])[0],
        "requires_dist": headers.get("Requires-Dist", []),
        "provides_extra": headers.get("Provides-Extra", []),
        "build_info": build_info,
    }


def _headers(text: str) -> dict[str, list[str]]:
    headers: dict[str, list[str]] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        name, sep, value = line.partition(": ")
        if sep and not line.startswith((" ", "\t")):
            headers.setdefault(name, []).append(value.strip())
    return headers


def _build_info(source: str) -> dict[str, Any]:
    """The assignments of build_info.py, read without running it."""
    import ast

    info: dict[str, Any] = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if (
                isinstance(value, ast.Call)
                and getattr(value.func, "attr", "") == "OrderedDict"
                and value.args
            ):
                value = value.args[0]
            try:
                literal = ast.literal_eval(value) if value is not None else None
            except ValueError:
                continue
            for target in targets:
                if not isinstance(target, ast.Name):
                    continue
                if target.id == "build_info" and isinstance(literal, list | dict):
                    pairs = literal.items() if isinstance(literal, dict) else literal
                    info.update({k: v for k, v in pairs if isinstance(k, str)})
                elif isinstance(literal, str | bool | int | list | dict):
                    info[target.id] = literal
    return info


def fetch_release(package: str, version: str, python: str, platform: str) -> dict[str, Any]:
    """What one release's wheel for `python` on `platform` says about itself: its METADATA and, for
    TensorFlow, build_info.py. The wheel is downloaded to a temporary folder and deleted."""
    with tempfile.TemporaryDirectory(prefix="verify-matrix-") as tmp:
        done = _pip(
            "download", "--no-deps", "--quiet", "-d", tmp, *_target(python, platform), f"{package}=={version}"
        )
        files = list(Path(tmp).glob("*.whl"))
        if done.returncode != 0 or not files:
            return _from_sdist(package, version, Path(tmp)) or {
                "error": _last_line(done.stderr),
                "python": python,
            }
        record = _read_wheel(files[0])
    record["python"] = python
    return record


def _from_sdist(package: str, version: str, tmp: Path) -> dict[str, Any] | None:
    """A release without wheels (jax <= 0.4.14 was an sdist): pip's report of the metadata it builds."""
    report = tmp / "report.json"
    done = _pip(
        "install", "--dry-run", "--no-deps", "--ignore-installed", "--ignore-requires-python",
        "--no-binary", package, "--quiet", "--report", str(report), f"{package}=={version}",
    )  # fmt: skip
    if done.returncode != 0 or not report.exists():
        return None
    items = json.loads(report.read_text())["install"]
    if not items or items[0]["download_info"]["url"].endswith(".whl"):
        return None
    meta = items[0]["metadata"]
    return {
        "sdist": items[0]["download_info"]["url"].rsplit("/", 1)[-1],
        "requires_python": meta.get("requires_python"),
        "requires_dist": meta.get("requires_dist", []),
        "provides_extra": meta.get("provides_extra", []),
        "build_info": None,
        "python": None,
    }


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else "pip failed"


def refresh(recording_dir: Path, jobs: int, only: list[str] | None = None, again: bool = False) -> None:
    matrix = load_matrix(str(ROOT / "compat_matrix.yaml"))
    recording_dir.mkdir(parents=True, exist_ok=True)
    for package, spec in PACKAGES.items():
        if only and package not in only:
            continue
        path = recording_dir / f"{package}.json"
        old = json.loads(path.read_text()) if path.exists() else {}
        platform = spec["platform"]
        print(f"{package}: listing releases", file=sys.stderr, flush=True)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            pythons = list(
                pool.map(index_versions, [package] * len(PYTHONS), PYTHONS, [platform] * len(PYTHONS))
            )
            listed = dict(zip(PYTHONS, pythons, strict=True))
        by_python = {py: versions for py, versions in listed.items() if versions}
        wanted = releases_to_record(matrix, package, by_python)
        releases: dict[str, Any] = dict(old.get("releases", {}))
        todo = [(v, py) for v, py in wanted.items() if again or "error" in releases.get(v, {"error": ""})]
        print(f"{package}: reading {len(todo)} of {len(wanted)} releases", file=sys.stderr, flush=True)
        with concurrent.futures.ThreadPoolExecutor(jobs) as pool:
            futures = {pool.submit(fetch_release, package, v, py, platform): v for v, py in todo}
            for future in concurrent.futures.as_completed(futures):
                releases[futures[future]] = future.result()
        document = {
            "package": package,
            "platform": platform,
            "recorded": datetime.date.today().isoformat(),
            "versions_by_python": by_python,
            "releases": {v: releases[v] for v in sorted(releases, key=_version_key) if v in wanted},
        }
        path.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")


def _version_key(version: str) -> Any:
    from packaging.version import Version

    return Version(version)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--refresh", action="store_true", help="read the wheels from the index first (network)"
    )
    parser.add_argument("--jobs", type=int, default=4, help="parallel pip processes for --refresh")
    parser.add_argument("--only", action="append", metavar="PACKAGE", help="refresh only these packages")
    parser.add_argument("--again", action="store_true", help="re-read releases already recorded")
    parser.add_argument("--recording", type=Path, default=ROOT / RECORDING)
    parser.add_argument("--matrix", type=Path, default=ROOT / "compat_matrix.yaml")
    args = parser.parse_args(argv)
    if args.refresh:
        refresh(args.recording, args.jobs, args.only, args.again)
    recording: Recording = load_recording(args.recording)
    matrix = load_matrix(str(args.matrix))
    result = verify(matrix, recording)
    for line in result.lines:
        print(line)
    for line in newer_releases(matrix, recording):
        print(line)
    print(result.summary)
    if args.refresh and result.disagree == 0:
        set_last_verified(args.matrix, recording.recorded, result.summary)
    return 1 if result.disagree else 0


if __name__ == "__main__":
    raise SystemExit(main())
