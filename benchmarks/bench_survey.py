"""What the package survey costs per installed distribution (issue #9/#12: 2,000 distributions add <= 0.15 s).

    python benchmarks/bench_survey.py              # 2,000 stand-in distributions, 7 runs each
    python benchmarks/bench_survey.py --count 5000

Builds two throwaway venvs under /tmp: an empty one and one holding COUNT stand-in distributions whose
METADATA (headers and a long description, as real wheels write it) and RECORD look like PyPI's; 40
of them are CUDA wheels and frameworks, so RECORDs are read and overlaps looked for. Prints the survey
child's median wall time in each, and the difference against the 0.15 s budget; exits 1 over budget.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import time
import venv
from pathlib import Path

from gpudoctor.facts import TargetFacts
from gpudoctor.probes import python as survey
from gpudoctor.probes.base import ProbeContext
from gpudoctor.runner import SubprocessRunner

CACHE = Path(os.environ.get("GPUDOCTOR_BENCH_CACHE", "/tmp/gpudoctor-bench"))
BUDGET = 0.15
DESCRIPTION = (
    "A package that does useful things.\n\n" + ("Lorem ipsum dolor sit amet, consectetur. " * 40 + "\n") * 12
)


def make_env(name: str, count: int) -> Path:
    root = CACHE / name
    python = root / "bin" / "python"
    marker = root / f".complete-{count}"
    if marker.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    venv.EnvBuilder(with_pip=False, symlinks=True).create(root)
    site = next((root / "lib").glob("python3*/site-packages"))
    for i in range(count):
        cuda = i < 40
        name_i = f"nvidia-lib{i}-cu12" if cuda else f"package-{i:05d}"
        folder = site / f"{name_i.replace('-', '_')}-1.{i}.0.dist-info"
        folder.mkdir()
        headers = [
            "Metadata-Version: 2.1",
            f"Name: {name_i}",
            f"Version: 1.{i}.0",
            "Summary: a stand-in distribution",
            "License: MIT",
            "Classifier: Programming Language :: Python :: 3",
            *(f"Requires-Dist: dep-{j}>=1.0" for j in range(i % 7)),
        ]
        (folder / "METADATA").write_text("\n".join(headers) + "\n\n" + DESCRIPTION, encoding="utf-8")
        (folder / "INSTALLER").write_text("pip\n", encoding="utf-8")
        files = [f"nvidia/lib{i}/lib/liblib{i}.so.12"] if cuda else [f"package_{i:05d}/__init__.py"]
        files += [f"{'nvidia/shared' if cuda else f'package_{i:05d}'}/mod{k}.py" for k in range(30)]
        record = [f"{f},sha256=AAAA,{100 + k}" for k, f in enumerate(files)]
        (folder / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    marker.touch()
    return python


def timed(python: Path, runs: int) -> tuple[float, float]:
    """Median wall time of one survey child, and its median CPU time (user + system: what a loaded
    machine cannot inflate)."""
    ctx = ProbeContext(
        runner=SubprocessRunner(),
        env={"PATH": os.defpath},
        target=TargetFacts(python=str(python), selected_by="--python", cwd="/tmp"),
    )
    survey.parse(dict(survey.run_child(ctx, "python").data or {}))  # warm the page cache and .pyc files
    samples, cpu = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        run = survey.run_child(ctx, "python")
        samples.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        assert run.data is not None, run.problem
    return statistics.median(samples), statistics.median(cpu)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    empty, empty_cpu = timed(make_env("survey-empty", 0), args.runs)
    full, full_cpu = timed(make_env(f"survey-{args.count}", args.count), args.runs)
    added, added_cpu = full - empty, full_cpu - empty_cpu
    print(f"package survey, empty venv:           {empty:.3f} s wall, {empty_cpu:.3f} s CPU")
    print(f"package survey, {args.count} distributions: {full:.3f} s wall, {full_cpu:.3f} s CPU")
    print(
        f"added by {args.count} distributions:        {added:.3f} s wall, {added_cpu:.3f} s CPU (budget {BUDGET:.2f} s)"
    )
    return 0 if added <= BUDGET * args.count / 2000 else 1


if __name__ == "__main__":
    sys.exit(main())
