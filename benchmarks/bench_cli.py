"""`gpudoctor` against issue #12's targets, each beside the peer or baseline measured in the same run.

    python benchmarks/bench_cli.py                  # every figure, 7 interleaved rounds
    python benchmarks/bench_cli.py --runs 3         # quicker, noisier
    python benchmarks/bench_cli.py --write-readme   # also benchmarks/results/bench_cli.json + README figures

Builds throwaway venvs under /tmp/gpudoctor-bench on first use: this checkout installed with pip
(.pyc files as a user has them), the peers `numba` and `cuda-doctor==0.2.0`, stand-in framework
packages whose import sleeps like a real one, 2,000 stand-in distributions, a conda prefix with
4,000 records, and folders for LD_LIBRARY_PATH. Time figures are medians of interleaved rounds;
memory figures are peak RSS from getrusage: gpudoctor's own process, and separately the largest
program it ran. Prints a table and the load average; exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    CACHE,
    Command,
    clean_env,
    installed_gpudoctor,
    load_average,
    make_venv,
    peak_memory,
    python_version,
    save_results,
    timed_rounds,
    wait4_peak,
)

NAME = "bench_cli"
STANDIN_IMPORT_SECONDS = {"tensorflow": 1.6, "torch": 1.0, "jax": 0.6}
FLOOD_BYTES = 300 * 2**20


@dataclass
class Figure:
    what: str
    measured: str
    beside: str
    target: str
    met: bool | None  # None: no target, a figure for reference

    @property
    def verdict(self) -> str:
        return "" if self.met is None else ("met" if self.met else "MISSED")


# --- stand-in environments ------------------------------------------------------------------------

STANDIN_MODULES = {
    "torch": (
        "2.5.1",
        (
            "import time\ntime.sleep({sleep})\n__version__ = '2.5.1+cpu'\n"
            "class version:\n    cuda = None\n    hip = None\n"
            "class cuda:\n    is_available = staticmethod(lambda: False)\n"
            "    device_count = staticmethod(lambda: 0)\n    get_arch_list = staticmethod(lambda: [])\n"
            "class backends:\n    class cudnn:\n        version = staticmethod(lambda: None)\n"
        ),
    ),
    "tensorflow": (
        "2.17.0",
        (
            "import time\ntime.sleep({sleep})\n__version__ = '2.17.0'\n"
            "class sysconfig:\n    get_build_info = staticmethod(lambda: {{'is_cuda_build': False}})\n"
            "class config:\n    list_physical_devices = staticmethod(lambda kind=None: [])\n"
        ),
    ),
    "jax": (
        "0.4.30",
        "import time\ntime.sleep({sleep})\n__version__ = '0.4.30'\ndevices = lambda backend=None: []\n",
    ),
}


def site_packages(python: Path) -> Path:
    return next((python.parent.parent / "lib").glob("python3*/site-packages"))


def add_standin(site: Path, name: str, sleep: float, flood: int = 0) -> None:
    version, source = STANDIN_MODULES[name]
    package = site / name
    package.mkdir(exist_ok=True)
    text = source.format(sleep=sleep)
    if flood:
        text = (
            f"import sys\nfor _ in range({flood // 2**20}):\n    sys.stderr.write('x' * 1048575 + '\\n')\n"
            + text
        )
    (package / "__init__.py").write_text(text, encoding="utf-8")
    info = site / f"{name}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n", encoding="utf-8"
    )
    (info / "INSTALLER").write_text("pip\n", encoding="utf-8")
    (info / "RECORD").write_text(f"{name}/__init__.py,,\n", encoding="utf-8")


def frameworks_venv() -> Path:
    python = make_venv("standin-frameworks", marker="-2")
    for name, sleep in STANDIN_IMPORT_SECONDS.items():
        add_standin(site_packages(python), name, sleep)
    return python


def flood_venv() -> Path:
    python = make_venv("standin-flood", marker="-2")
    add_standin(site_packages(python), "torch", 0.0, flood=FLOOD_BYTES)
    return python


def distributions_venv(count: int) -> Path:
    from bench_survey import make_env

    return make_env(f"survey-{count}", count)


def conda_prefix(count: int) -> Path:
    python = make_venv(f"conda-{count}-named", marker="-1")
    meta = python.parent.parent / "conda-meta"
    if meta.is_dir() and len(list(meta.glob("*.json"))) == count:
        return python
    meta.mkdir(exist_ok=True)
    for i in range(count):
        name, build = f"package-{i:05d}", f"py311h{i:06x}_0"
        dist = f"{name}-1.{i}.0-{build}"  # conda names the record, the package file and its folder this way
        files = [f"lib/python3.11/site-packages/{name.replace('-', '_')}/mod{k}.py" for k in range(30)]
        record = {
            "build": build,
            "build_number": 0,
            "channel": "https://conda.anaconda.org/conda-forge/linux-64",
            "constrains": [],
            "depends": [f"dep-{j} >=1.0" for j in range(i % 6)] + ["python >=3.11,<3.12.0a0"],
            "extracted_package_dir": f"/opt/conda/pkgs/{dist}",
            "files": files,
            "fn": f"{dist}.conda",
            "license": "MIT",
            "link": {"source": f"/opt/conda/pkgs/{dist}", "type": 1},
            "md5": "0" * 32,
            "name": name,
            "package_tarball_full_path": f"/opt/conda/pkgs/{dist}.conda",
            "paths_data": {
                "paths": [
                    {"_path": f, "path_type": "hardlink", "sha256": "a" * 64, "size_in_bytes": 1000 + k}
                    for k, f in enumerate(files)
                ],
                "paths_version": 1,
            },
            "requested_spec": "None",
            "sha256": "b" * 64,
            "size": 12345,
            "subdir": "linux-64",
            "timestamp": 1700000000000,
            "url": f"https://conda.anaconda.org/conda-forge/linux-64/{dist}.conda",
            "version": f"1.{i}.0",
        }
        (meta / f"{dist}.json").write_text(json.dumps(record, indent=2, sort_keys=True))
    return python


# Stand-ins for the CUDA libraries of torch's nvidia-* wheels (built with gcc once): each costs RESIDENT_MIB
# resident once loaded (the real ones' relocations: 360 MB for torch 2.14.1's set), and libcublas and
# libcusolver need a libcublasLt as large on disk as the real one (a sparse file).
RESIDENT_MIB = 60
NVIDIA_WHEELS = {
    "nvidia_cuda_runtime-13.0.96": (
        "cu13",
        {"libcudart.so.13": "int cudaRuntimeGetVersion(int *v) { *v = 13000; return 0; }"},
    ),
    "nvidia_cublas-13.1.1.3": (
        "cu13",
        {
            "libcublasLt.so.13": "int cublasLtHelper(void) { return 1; }",
            "libcublas.so.13": "extern int cublasLtHelper(void);\n"
            "int cublasGetProperty(int t, int *v) { *v = cublasLtHelper() * 13; return 0; }",
        },
    ),
    "nvidia_cufft-12.0.0.61": (
        "cu13",
        {"libcufft.so.12": "int cufftGetProperty(int t, int *v) { *v = 12; return 0; }"},
    ),
    "nvidia_cusparse-12.6.3.3": (
        "cu13",
        {"libcusparse.so.12": "int cusparseGetProperty(int t, int *v) { *v = 12; return 0; }"},
    ),
    "nvidia_cusolver-12.0.4.66": (
        "cu13",
        {
            "libcusolver.so.12": "extern int cublasLtHelper(void);\n"
            "int cusolverGetProperty(int t, int *v) { *v = cublasLtHelper() * 12; return 0; }"
        },
    ),
    "nvidia_cuda_nvrtc-13.0.88": (
        "cu13",
        {"libnvrtc.so.13": "int nvrtcVersion(int *a, int *b) { *a = 13; *b = 0; return 0; }"},
    ),
    "nvidia_cudnn_cu13-9.24.0.43": (
        "cudnn",
        {"libcudnn.so.9": "unsigned long cudnnGetVersion(void) { return 92400; }"},
    ),
    "nvidia_nccl_cu13-2.30.7": (
        "nccl",
        {"libnccl.so.2": "int ncclGetVersion(int *v) { *v = 23007; return 0; }"},
    ),
}


def nvidia_wheels_venv() -> Path:
    python = make_venv("standin-nvidia-wheels", marker="-1")
    site = site_packages(python)
    done = site / ".built"
    if done.exists():
        return python
    for distribution, (package, libraries) in NVIDIA_WHEELS.items():
        folder = site / "nvidia" / package / "lib"
        folder.mkdir(parents=True, exist_ok=True)
        for soname, code in libraries.items():
            source = folder / f".{soname}.c"
            resident = (
                ""
                if "Lt" in soname
                else (
                    f"#include <string.h>\nstatic char pages[{RESIDENT_MIB} << 20];\n"
                    "__attribute__((constructor)) static void touch(void) { memset(pages, 1, sizeof pages); }\n"
                )
            )
            source.write_text(resident + code + "\n", encoding="utf-8")
            needs = ["-L" + str(folder), "-l:libcublasLt.so.13"] if "cublasLtHelper()" in code else []
            subprocess.run(
                [
                    "gcc",
                    "-shared",
                    "-fPIC",
                    "-o",
                    str(folder / soname),
                    str(source),
                    f"-Wl,-soname,{soname}",
                    *needs,
                ],
                check=True,
                capture_output=True,
            )
            if "Lt" in soname:
                with (folder / soname).open("r+b") as handle:
                    handle.truncate(520 << 20)
        info = site / f"{distribution}.dist-info"
        info.mkdir(exist_ok=True)
        (info / "RECORD").write_text(
            "".join(f"nvidia/{package}/lib/{name},,\n" for name in libraries), encoding="utf-8"
        )
    done.touch()
    return python


def library_folders(count: int) -> str:
    root = CACHE / "ld-library-path"
    for i in range(count):
        folder = root / f"lib{i:04d}"
        if not folder.is_dir():
            folder.mkdir(parents=True)
            for k in range(3):
                (folder / f"libother{k}.so.1").write_bytes(b"")
    return ":".join(str(root / f"lib{i:04d}") for i in range(count))


# --- the figures -----------------------------------------------------------------------------------


def ratio_figure(what: str, mine: Command, other: Command, limit: float, how: str) -> Figure:
    ratio = mine.median / other.median
    return Figure(
        what=what,
        measured=f"{mine.median:.3f} s",
        beside=f"{other.label}: {other.median:.3f} s ({ratio:.2f}×)",
        target=how,
        met=ratio <= limit,
    )


def library_path_figure(base: Command, by_count: dict[int, Command]) -> Figure:
    """What LD_LIBRARY_PATH folders add: wall time at 400 (the target), and the CPU time (gpudoctor and
    every program it ran: far less noisy than wall time on a busy machine) they add per folder at each
    count. Work that is linear in the folders doubles per doubling of them, quadratic work quadruples:
    the exponent of a least-squares fit of log(CPU added) on log(folders), over every count, must keep
    the growth per doubling nearer 2 than 4 (one noisy count no longer decides it, as a ratio of two did)."""
    wall = by_count[400].median - base.median
    added = {n: c.cpu_median - base.cpu_median for n, c in by_count.items()}
    growth = _growth_per_doubling(added)
    linear = growth <= 2.8  # between 2 (linear) and 4 (quadratic): sqrt(8)
    slopes = ", ".join(f"{n}: {added[n] / n * 1e6:.0f} µs" for n in by_count)
    return Figure(
        "`gpudoctor check`, 400 LD_LIBRARY_PATH folders",
        f"{by_count[400].median:.3f} s (+{wall:.3f} s)",
        f"an empty venv: {base.median:.3f} s; CPU added per folder at {slopes}; "
        f"growth per doubling {min(by_count):,}→{max(by_count):,}: {growth:.1f}× (linear 2×, quadratic 4×)",
        "≤ +0.10 s, linear at worst",
        wall <= 0.10 and linear,
    )


def _growth_per_doubling(added: dict[int, float]) -> float:
    """2 ** the slope of log2(added) on log2(count); infinite when some count added nothing measurable."""
    if any(a <= 0 for a in added.values()):
        return float("inf")
    xs = [math.log2(n) for n in added]
    ys = [math.log2(a) for a in added.values()]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mean_x) ** 2 for x in xs
    )
    return float(2**slope)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    gpudoctor = installed_gpudoctor()
    python = gpudoctor.parent / "python"
    bare = make_venv("bare")
    figures: list[Figure] = []
    notes: list[str] = []
    env = clean_env()

    # 1. start-up, beside the peers
    peers_python: Path | None
    try:
        peers_python = make_venv("peers", "numba", "cuda-doctor==0.2.0")
    except subprocess.CalledProcessError as exc:
        peers_python = None
        notes.append(f"numba and cuda-doctor 0.2.0 could not be installed: {exc.stderr.decode()[-300:]}")
    passing = Command("python -c pass", [str(python), "-c", "pass"])
    helping = Command("gpudoctor --help", [str(gpudoctor), "--help"])
    checking = Command("gpudoctor check", [str(gpudoctor), "check", "--python", str(bare)])
    start_up = [passing, helping, checking]
    numba = doctor = None
    if peers_python is not None:
        numba = Command("numba -s", [str(peers_python), "-m", "numba", "-s"])
        doctor = Command("cuda-doctor diagnose", [str(peers_python.parent / "cuda-doctor"), "diagnose"])
        start_up += [numba, doctor]
    timed_rounds(start_up, args.runs)
    figures.append(ratio_figure("`gpudoctor --help`", helping, passing, 12, "≤ 12× `python -c pass`"))
    if numba is not None and doctor is not None:
        figures.append(
            ratio_figure("`gpudoctor check`, no framework", checking, numba, 0.30, "≤ 0.30× `numba -s`")
        )
        figures.append(
            ratio_figure("`gpudoctor check`, no framework", checking, doctor, 1.0, "faster than cuda-doctor")
        )
    else:
        figures.append(
            Figure("`gpudoctor check`, no framework", f"{checking.median:.3f} s", "no peer", "", None)
        )

    # 2. with frameworks: the slowest import plus at most 0.3 s
    frameworks = frameworks_venv()
    imports = [
        Command(f"python -c 'import {name}'", [str(frameworks), "-c", f"import {name}"])
        for name in STANDIN_IMPORT_SECONDS
    ]
    with_frameworks = Command("gpudoctor check", [str(gpudoctor), "check", "--python", str(frameworks)])
    timed_rounds([*imports, with_frameworks], max(3, args.runs // 2))
    slowest = max(imports, key=lambda c: c.median)
    extra = with_frameworks.median - slowest.median
    stand_ins = ", ".join(f"{n} {s:g} s" for n, s in STANDIN_IMPORT_SECONDS.items())
    figures.append(
        Figure(
            f"`gpudoctor check`, stand-in frameworks ({stand_ins})",
            f"{with_frameworks.median:.3f} s",
            f"slowest import ({slowest.label}): {slowest.median:.3f} s (+{extra:.3f} s)",
            "≤ slowest import + 0.3 s",
            extra <= 0.3,
        )
    )

    # 3. what each large environment adds to a check
    base = Command("check", [str(gpudoctor), "check", "--python", str(bare)])
    dists = Command(
        "2,000 distributions", [str(gpudoctor), "check", "--python", str(distributions_venv(2000))]
    )
    conda = Command("4,000 conda records", [str(gpudoctor), "check", "--python", str(conda_prefix(4000))])
    folder_counts = (200, 400, 800, 1600)
    ld_paths = [
        Command(
            f"{n} LD_LIBRARY_PATH folders",
            [str(gpudoctor), "check", "--python", str(bare)],
            env=clean_env(LD_LIBRARY_PATH=library_folders(n)),
        )
        for n in folder_counts
    ]
    timed_rounds([base, dists, conda, *ld_paths], max(args.runs, 7))  # CPU per folder: a fit over medians
    for command, budget in ((dists, 0.15), (conda, 0.10)):
        added = command.median - base.median
        figures.append(
            Figure(
                f"`gpudoctor check`, {command.label}",
                f"{command.median:.3f} s (+{added:.3f} s)",
                f"an empty venv: {base.median:.3f} s",
                f"≤ +{budget:.2f} s",
                added <= budget,
            )
        )
    figures.append(library_path_figure(base, dict(zip(folder_counts, ld_paths, strict=True))))

    # 4. memory: gpudoctor's own process, and the programs it runs
    own, largest = peak_memory(gpudoctor, ["check", "--python", str(bare)], env)
    figures.append(
        Figure(
            "peak memory, `gpudoctor check`",
            f"{own:.0f} MiB (own process)",
            f"largest child: {largest:.0f} MiB",
            "≤ 80 MiB",
            own <= 80,
        )
    )
    flood_own, flood_child = peak_memory(gpudoctor, ["check", "--python", str(flood_venv())], env)
    figures.append(
        Figure(
            f"peak memory, a framework printing {FLOOD_BYTES >> 20} MiB on stderr",
            f"{flood_own:.0f} MiB (own process)",
            f"largest child: {flood_child:.0f} MiB",
            "≤ 80 MiB",
            flood_own <= 80,
        )
    )
    from gpudoctor.probes.child_process import script_source

    seconds, library_child = wait4_peak([str(bare), "-c", script_source("libraries")], env)
    figures.append(
        Figure(
            "peak memory, the CUDA-libraries child (this machine's CUDA 13.0 toolkit)",
            f"{library_child:.0f} MiB",
            f"{seconds:.2f} s",
            "≤ 150 MiB",
            library_child <= 150,
        )
    )
    try:
        wheels = nvidia_wheels_venv()
    except (OSError, subprocess.CalledProcessError) as exc:
        notes.append(f"no stand-in nvidia wheels (gcc needed): {exc}")
    else:
        seconds, library_child = wait4_peak([str(wheels), "-c", script_source("libraries")], env)
        figures.append(
            Figure(
                f"peak memory, the CUDA-libraries child facing stand-ins of torch's nvidia wheels "
                f"({sum(len(libs) for _, libs in NVIDIA_WHEELS.values()) - 1} libraries of {RESIDENT_MIB} MiB "
                "resident each once loaded, a 520 MB libcublasLt)",
                f"{library_child:.0f} MiB",
                f"{seconds:.2f} s",
                "≤ 150 MiB",
                library_child <= 150,
            )
        )

    conditions = (
        f"{os.cpu_count()} CPUs, Python {python_version()}, {platform.system()}; median of {args.runs} "
        f"interleaved rounds after a warm-up; load average {load_average()} when done"
    )
    markdown = render(figures, notes, conditions)
    print(markdown)
    if args.write_readme:
        results = {"figures": [vars(f) for f in figures], "notes": notes, "conditions": conditions}
        save_results(NAME, results, markdown)
        print(f"\nwrote benchmarks/results/{NAME}.json and the README section")
    return 0 if all(f.met is not False for f in figures) else 1


def render(figures: list[Figure], notes: list[str], conditions: str) -> str:
    """The Markdown table (the README section is exactly this, from benchmarks/results/bench_cli.json)."""
    rows = ["| what | gpudoctor | beside it, same run | target | |", "| --- | --- | --- | --- | --- |"]
    rows += [f"| {f.what} | {f.measured} | {f.beside} | {f.target} | {f.verdict} |" for f in figures]
    return "\n".join([*rows, "", conditions + ".", *(f"\n{n}" for n in notes)]) + "\n"


def render_results(results: dict[str, object], make: Callable[..., Figure] = Figure) -> str:
    figures = [make(**f) for f in results["figures"]]  # type: ignore[attr-defined]
    return render(figures, list(results["notes"]), str(results["conditions"]))  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
