"""Real wheels in throwaway venvs: torch 2.14.1 without its CUDA wheels, and the CUDA 12 and CUDA 13 cuDNN
wheels side by side. The findings must name what the real metadata and RECORD files say.

Cached under /tmp by content; skips itself cleanly when the package index cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import DriverFacts, Facts, GpuFacts, PlatformFacts
from gpudoctor.matrix import load_matrix
from gpudoctor.probes import python as survey
from gpudoctor.probes import toolkit
from gpudoctor.probes.base import ProbeUnavailable
from tests.conftest import make_ctx

pytestmark = pytest.mark.integration

CACHE = Path(os.environ.get("GPUDOCTOR_TEST_CACHE", "/tmp/gpudoctor-integration"))
COMPLETE = ".gpudoctor-complete"
TORCH = "torch==2.14.1"  # the CUDA 13.0 build; its wheel lies on this machine's disk for Python 3.11
# What `import torch` needs before it reaches torch._C (pure Python, no CUDA).
TORCH_PURE_DEPS = (
    "typing-extensions>=4.10.0",
    "filelock",
    "sympy>=1.13.3",
    "networkx>=2.5.1",
    "jinja2",
    "fsspec",
)
CUDNN_CU13 = "nvidia-cudnn-cu13==9.24.0.43"
CUDNN_CU12 = "nvidia-cudnn-cu12==9.28.0.42"
JAX_CUDA12_LOCAL = (
    "--no-deps",
    "jax==0.10.2",
    "jax-cuda12-plugin==0.10.2",
)  # metadata only: no jaxlib, no GPU
NVCC_CU12 = "nvidia-cuda-nvcc-cu12==12.9.86"
NVCC_CU13 = ("nvidia-cuda-nvcc==13.0.88", "nvidia-nvvm==13.0.88")
OFFLINE = (
    "NewConnectionError",
    "Could not fetch",
    "No matching distribution",
    "Network is unreachable",
    "Temporary failure",
)


def _venv(name: str, *steps: tuple[str, ...]) -> Path:
    """A cached venv where each step is one `pip install` argument list, in order."""
    if not sys.platform.startswith("linux") or sys.version_info[:2] != (3, 11):
        pytest.skip("the recorded expectations are for the CPython 3.11 Linux x86_64 wheels")
    root = CACHE / name
    python = root / "bin" / "python"
    if (root / COMPLETE).exists() and python.exists():
        return python
    shutil.rmtree(root, ignore_errors=True)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, symlinks=True).create(partial)
    for step in steps:
        done = subprocess.run(
            [str(partial / "bin" / "python"), "-m", "pip", "install", "-q", "--no-input", *step],
            check=False,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            shutil.rmtree(partial, ignore_errors=True)
            if any(word in done.stderr for word in OFFLINE):
                pytest.skip(f"the package index cannot be reached: {done.stderr.strip()[-200:]}")
            pytest.fail(f"pip install {' '.join(step)} failed:\n{done.stderr[-2000:]}")
    partial.rename(root)
    (root / COMPLETE).write_text(repr(steps) + "\n", encoding="utf-8")
    return root / "bin" / "python"


def _check(python: Path, tmp_path: Path) -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "check", "--python", str(python), "--json"],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return done.returncode, json.loads(done.stdout)


def _findings(report: dict[str, object], code: str) -> list[dict[str, object]]:
    findings = report.get("findings")
    assert isinstance(findings, list)
    return [f for f in findings if isinstance(f, dict) and f.get("code") == code]


def test_torch_without_its_cuda_wheels_names_what_is_missing(tmp_path: Path) -> None:
    python = _venv("env-torch-2.14.1-no-deps", ("--no-deps", TORCH), TORCH_PURE_DEPS)
    code, report = _check(python, tmp_path)
    torch = report["facts"]["torch"]  # type: ignore[index]
    assert torch["imported"] is False
    assert "libcudnn.so.9: cannot open shared object file" in torch["import_error"]
    (finding,) = _findings(report, "GD801")
    assert finding["severity"] == "error"
    message = finding["message"]
    assert isinstance(message, str)
    assert "cannot load libcudnn.so.9: nvidia-cudnn-cu13==9.24.0.43" in message
    command = " ".join(finding["fix"])  # type: ignore[arg-type]
    for pin in ("nvidia-cudnn-cu13==9.24.0.43", "nvidia-nccl-cu13==2.30.7", "'triton~=3.8.0'", "==13.0.3'"):
        assert pin in command
    assert code == 1


def test_cuda12_and_cuda13_cudnn_wheels_write_the_same_files(tmp_path: Path) -> None:
    python = _venv("env-cudnn-cu12-then-cu13", ("--no-deps", CUDNN_CU12), ("--no-deps", CUDNN_CU13))
    facts = survey.collect(make_ctx(python=str(python), cwd=tmp_path))
    shared = {Path(f.path).name: f for f in facts.shared_files}
    assert "libcudnn.so.9" in shared and "libcudnn_ops.so.9" in shared
    owners = {o.distribution: o.matches for o in shared["libcudnn.so.9"].owners}
    assert owners == {"nvidia-cudnn-cu12": False, "nvidia-cudnn-cu13": True}  # cu13 was installed last
    assert facts.shared_files_total >= 20
    _, report = _check(python, tmp_path)
    (finding,) = _findings(report, "GD802")
    assert "nvidia-cudnn-cu12 9.28.0.42 and nvidia-cudnn-cu13 9.24.0.43 write the same" in str(
        finding["message"]
    )
    assert "nvidia-cudnn-cu13's copy is on disk" in str(finding["message"])


def _on_a_gpu_machine(python: Path, tmp_path: Path, driver_cuda: str) -> list[str]:
    """GD805 on the real survey of `python` and the real toolkit probe, as if this Linux box had an RTX 4090
    and a driver of CUDA `driver_cuda`."""
    ctx = make_ctx(python=str(python), cwd=tmp_path, env={"PATH": "/usr/bin:/bin"})
    try:
        tk = toolkit.collect(ctx)
    except ProbeUnavailable:
        tk = None
    facts = Facts(
        platform=PlatformFacts(system="Linux", machine="x86_64", distro_id="ubuntu"),
        driver=DriverFacts(
            nvml_state="ok",
            driver_version="580.95.05" if driver_cuda == "13.0" else "575.57.08",
            cuda_driver_version=driver_cuda,
            gpus=(GpuFacts(name="NVIDIA GeForce RTX 4090", compute_capability="8.9"),),
        ),
        toolkit=tk,
        python=survey.collect(ctx),
    )
    return [f.message for f in diagnose(facts, load_matrix()).findings if f.code == "GD805"]


def test_the_real_nvcc_wheels_put_ptxas_and_libdevice_where_xla_looks(tmp_path: Path) -> None:
    """The released nvidia-cuda-nvcc-cu12 (ptxas, nvvm/libdevice in nvidia/cuda_nvcc) and the CUDA 13 pair
    nvidia-cuda-nvcc + nvidia-nvvm (nvidia/cu13/bin, nvidia/cu13/nvvm): the survey finds each root whole.
    JAX's `_cuda_path` takes `nvidia.cu13` first, even for its CUDA 12 plugin: fine on a CUDA 13 driver,
    CUDA 13 code an R575 driver cannot load."""
    python = _venv("env-jax-cuda12-local-nvcc-wheels", JAX_CUDA12_LOCAL, ("--no-deps", NVCC_CU12, *NVCC_CU13))
    facts = survey.collect(make_ctx(python=str(python), cwd=tmp_path))
    roots = {r.via: r for r in facts.cuda_roots}
    cu12, cu13 = roots["wheel nvidia/cuda_nvcc"], roots["wheel nvidia/cu13"]
    assert cu12.ptxas and cu12.libdevice and not cu12.nvcc  # the cu12 wheel ships no nvcc binary
    assert cu13.ptxas and cu13.nvcc and cu13.libdevice
    tools = {(t.distribution, t.name) for t in facts.wheel_tools}
    assert {
        ("nvidia-cuda-nvcc-cu12", "ptxas"),
        ("nvidia-cuda-nvcc", "ptxas"),
        ("nvidia-nvvm", "libdevice.10.bc"),
    } <= tools
    assert _on_a_gpu_machine(python, tmp_path, "13.0") == []
    [message] = _on_a_gpu_machine(python, tmp_path, "12.9")
    assert "CUDA 13.0.88 ptxas" in message and "nvidia/cu13/bin/ptxas" in message


def test_jax_cuda12_local_without_the_nvcc_wheel(tmp_path: Path) -> None:
    """No nvcc wheel: XLA goes on to /usr/local/cuda (this machine's CUDA 13.0 toolkit), which a CUDA 12.9
    driver cannot run; without a toolkit there it finds no ptxas at all."""
    python = _venv("env-jax-cuda12-local", JAX_CUDA12_LOCAL)
    [message] = _on_a_gpu_machine(python, tmp_path, "12.9")
    if Path("/usr/local/cuda/bin/ptxas").is_file():
        assert "ptxas at /usr/local/cuda/bin/ptxas" in message and "CUDA 12.9 at most" in message
    else:
        assert "JAX (jax-cuda12-plugin 0.10.2) will find no usable ptxas" in message
