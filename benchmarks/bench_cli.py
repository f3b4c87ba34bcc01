"""Wall-clock figures for the CLI, against the issue's targets and a peer (`numba -s`).

    python benchmarks/bench_cli.py            # all figures (builds throwaway venvs under /tmp on first run)
    python benchmarks/bench_cli.py --quick    # skip the TensorFlow and numba venvs

Targets: `gpudoctor --help` < 0.3 s; `gpudoctor check` with no framework installed < 0.5 s;
with the real TensorFlow installed, within 0.5 s of TensorFlow's own import time.
Prints one line per figure (median of N runs) and exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import venv
from pathlib import Path

CACHE = Path(os.environ.get("GPUDOCTOR_BENCH_CACHE", "/tmp/gpudoctor-bench"))
TENSORFLOW = os.environ.get("GPUDOCTOR_BENCH_TF", "tensorflow==2.20.0")


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None) -> float:
    subprocess.run(argv, capture_output=True, check=False, env=env, timeout=600)  # warm caches and .pyc files
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False, env=env, timeout=600)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def make_venv(name: str, *packages: str) -> Path:
    root = CACHE / name
    python = root / "bin" / "python"
    marker = root / ".complete"
    if marker.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    venv.EnvBuilder(with_pip=True).create(root)
    if packages:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True, timeout=1200)
    marker.touch()
    return python


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="skip the TensorFlow and numba figures")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    gpudoctor = shutil.which("gpudoctor") or f"{sys.executable} -m gpudoctor"
    cmd = gpudoctor.split()
    bare = make_venv("bare")
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    env.pop("CONDA_PREFIX", None)
    # an installed package has its .pyc files; without them every run recompiles gpudoctor
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    figures: list[tuple[str, float, float | None]] = []
    figures.append(("gpudoctor --help", timed([*cmd, "--help"], args.runs, env), 0.3))
    figures.append(
        (
            "gpudoctor check (no framework installed)",
            timed([*cmd, "check", "--python", str(bare)], args.runs, env),
            0.5,
        )
    )
    if not args.quick:
        tf = make_venv("tensorflow", TENSORFLOW)
        tf_import = timed([str(tf), "-c", "import tensorflow"], args.runs, env)
        tf_check = timed([*cmd, "check", "--python", str(tf)], args.runs, env)
        figures.append(("python -c 'import tensorflow'", tf_import, None))
        figures.append(("gpudoctor check (TensorFlow installed)", tf_check, tf_import + 0.5))
        numba = make_venv("numba", "numba")
        figures.append(
            (
                "numba -s (peer, collects much less)",
                timed([str(numba), "-m", "numba", "-s"], args.runs, env),
                None,
            )
        )

    missed = 0
    for label, seconds, target in figures:
        verdict = ""
        if target is not None:
            ok = seconds <= target
            missed += not ok
            verdict = f"  target ≤ {target:.2f} s  {'ok' if ok else 'MISSED'}"
        print(f"{label:45s} {seconds:6.2f} s{verdict}")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main())
