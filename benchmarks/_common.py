"""What the benchmarks share: throwaway venvs, an installed copy of this checkout, timing and peak memory,
and the README's generated figures.

gpudoctor is measured as users run it: installed with `pip install` (its .pyc files written once),
never the editable checkout (with PYTHONDONTWRITEBYTECODE=1 that recompiles every module per run).
Commands are timed in interleaved rounds (A B C, A B C, ...) so that a load spike on this shared
machine hits every command alike; each figure is a median. Peak memory comes from getrusage: of
gpudoctor's own process (run in-process by `_rusage.py`) and, separately, of the largest program it ran.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GPUDOCTOR_BENCH_CACHE", "/tmp/gpudoctor-bench"))
README = ROOT / "README.md"
RESULTS = ROOT / "benchmarks" / "results"


def clean_env(**extra: str) -> dict[str, str]:
    """The environment commands run in: no active venv or conda env, .pyc files allowed, no colour."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["NO_COLOR"] = "1"
    env.update(extra)
    return env


def make_venv(name: str, *packages: str, marker: str = "") -> Path:
    """A venv under CACHE (made once); returns its python. Raises CalledProcessError when pip fails."""
    root = CACHE / name
    python = root / "bin" / "python"
    done = root / f".complete{marker}"
    if done.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    venv.EnvBuilder(with_pip=bool(packages), symlinks=True).create(root)
    if packages:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", *packages],
            check=True,
            timeout=1800,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
    done.touch()
    return python


def _source_hash() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "gpudoctor").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    digest.update((ROOT / "pyproject.toml").read_bytes())
    return digest.hexdigest()[:16]


def installed_gpudoctor() -> Path:
    """The `gpudoctor` program of a venv holding this checkout, installed (not editable) and compiled."""
    python = make_venv("gpudoctor-installed", str(ROOT))
    stamp = CACHE / "gpudoctor-installed" / ".source"
    current = _source_hash()
    if not stamp.exists() or stamp.read_text() != current:
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall", str(ROOT)],
            check=True,
            timeout=600,
            env=clean_env(),
            stdout=subprocess.DEVNULL,
        )
        stamp.write_text(current)
    program = python.parent / "gpudoctor"
    subprocess.run([str(program), "--help"], env=clean_env(), capture_output=True, check=False)  # .pyc
    return program


@dataclass
class Command:
    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=clean_env)
    samples: list[float] = field(default_factory=list)
    cpu_samples: list[float] = field(default_factory=list)  # CPU seconds of the program and all it waited for
    codes: set[int] = field(default_factory=set)

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu_samples)


def timed_rounds(commands: Sequence[Command], runs: int) -> None:
    """One warm-up each, then `runs` rounds running every command once, in turn."""
    for rnd in range(runs + 1):
        for command in commands:
            before = _children_cpu()
            started = time.perf_counter()
            done = subprocess.run(
                command.argv, env=command.env, capture_output=True, check=False, timeout=600, cwd="/tmp"
            )
            elapsed = time.perf_counter() - started
            command.codes.add(done.returncode)
            if rnd:
                command.samples.append(elapsed)
                command.cpu_samples.append(_children_cpu() - before)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def peak_memory(program: Path, args: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """(MiB of gpudoctor's own process, MiB of the largest program it ran), from one run."""
    python = program.parent / "python"
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "rusage.json"
        subprocess.run(
            [str(python), str(ROOT / "benchmarks" / "_rusage.py"), str(out), *args],
            env=dict(env),
            capture_output=True,
            check=False,
            timeout=600,
            cwd="/tmp",
        )
        data = json.loads(out.read_text())
    return data["self_kib"] / 1024, data["children_kib"] / 1024


def wait4_peak(argv: Sequence[str], env: Mapping[str, str]) -> tuple[float, float]:
    """(seconds, peak MiB) of one program run, its own figures from wait4."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), env=dict(env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/tmp"
    )
    _, _, usage = os.wait4(proc.pid, 0)
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def load_average() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.1f} (1 min), {five:.1f} (5 min)"


# --- the README's generated figures ---------------------------------------------------------------


def begin_marker(name: str) -> str:
    return f"<!-- benchmark {name}: generated by benchmarks/{name}.py --write-readme; do not edit -->"


def end_marker(name: str) -> str:
    return f"<!-- end of benchmark {name} -->"


def save_results(name: str, results: dict[str, object], markdown: str) -> None:
    """benchmarks/results/<name>.json (the data) and the README's section between the markers."""
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    text = README.read_text(encoding="utf-8")
    begin, end = begin_marker(name), end_marker(name)
    if begin not in text or end not in text:
        raise SystemExit(f"README.md has no section marked for {name}: add the two marker lines first")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    README.write_text(f"{head}{begin}\n{markdown.rstrip()}\n{end}{tail}", encoding="utf-8")


def readme_section(name: str) -> str | None:
    text = README.read_text(encoding="utf-8")
    begin, end = begin_marker(name), end_marker(name)
    if begin not in text or end not in text:
        return None
    return text.split(begin, 1)[1].split(end, 1)[0].strip("\n")


def as_data(obj: object) -> object:
    return asdict(obj) if hasattr(obj, "__dataclass_fields__") else obj  # type: ignore[call-overload]


def python_version() -> str:
    return ".".join(map(str, sys.version_info[:3]))
