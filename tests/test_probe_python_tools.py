"""The survey's `cuda_roots`: where XLA, JAX and PyTorch look for ptxas, nvcc and libdevice, found by the
real child in a throwaway venv (stand-in wheels laid out as the released ones) and on this machine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from gpudoctor.facts import CudaRoot, PythonFacts
from gpudoctor.probes import python as probe
from tests.conftest import make_ctx
from tests.standins import install_standin, make_venv, site_packages

# RECORD layouts of the released wheels (read from nvidia_cuda_nvcc_cu12-12.9.86, nvidia_cuda_nvcc-13.0.88
# and nvidia_nvvm-13.5.37): CUDA 12 keeps ptxas and libdevice in nvidia/cuda_nvcc (no nvcc binary); CUDA 13
# puts nvcc and ptxas in nvidia/cu13/bin and libdevice in the separate nvidia-nvvm wheel.
CU12_FILES = ("nvidia/cuda_nvcc/bin/ptxas", "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc")
CU13_NVCC_FILES = ("nvidia/cu13/bin/nvcc", "nvidia/cu13/bin/ptxas", "nvidia/cu13/bin/nvlink")
CU13_NVVM_FILES = ("nvidia/cu13/nvvm/libdevice/libdevice.10.bc",)


def _executable(path: Path, text: str = "#!/bin/sh\nexit 0\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)
    return path


def _by(facts: PythonFacts, via: str) -> list[CudaRoot]:
    return [r for r in facts.cuda_roots if r.via == via]


@pytest.fixture(scope="module")
def tools_facts(tmp_path_factory: pytest.TempPathFactory) -> tuple[PythonFacts, Path, Path]:
    base = tmp_path_factory.mktemp("tools")
    python = make_venv(base)
    site = site_packages(python)
    install_standin(site, "nvidia-cuda-nvcc-cu12", "12.9.86", files=dict.fromkeys(CU12_FILES, "x"))
    install_standin(site, "nvidia-cuda-nvcc", "13.0.88", files=dict.fromkeys(CU13_NVCC_FILES, "x"))
    for path in (*CU12_FILES[:1], *CU13_NVCC_FILES):
        (site / path).chmod(0o755)  # pip keeps the wheel's executable bit
    # A toolkit reached only through a one-line wrapper on PATH (as /usr/local/bin/ptxas is on this machine).
    toolkit = base / "cuda-12.4"
    _executable(toolkit / "bin" / "ptxas")
    _executable(toolkit / "bin" / "nvcc")
    (toolkit / "version.json").write_text(
        json.dumps({"cuda_nvcc": {"version": "12.4.131"}}), encoding="utf-8"
    )
    wrappers = base / "wrappers"
    _executable(wrappers / "ptxas", f'#!/bin/sh\nexec {toolkit}/bin/ptxas "$@"\n')
    env = {
        "PATH": f"::{wrappers}:/usr/bin:/bin",  # empty entries are the working directory: never used
        "XLA_FLAGS": f"--xla_gpu_autotune_level=0 --xla_gpu_cuda_data_dir='{base / 'xla dir'}'",
        "CUDA_HOME": str(toolkit),
    }
    facts = probe.collect(make_ctx(python=str(python), env=env, cwd=base))
    return facts, site, toolkit


def test_xla_flags_folder_is_read_with_its_quotes(tools_facts: tuple[PythonFacts, Path, Path]) -> None:
    facts, _, _ = tools_facts
    [root] = _by(facts, "XLA_FLAGS")
    assert root.path.endswith("xla dir") and not root.ptxas and not root.libdevice


def test_ptxas_on_path_is_traced_through_its_wrapper(tools_facts: tuple[PythonFacts, Path, Path]) -> None:
    facts, _, toolkit = tools_facts
    [root] = _by(facts, "ptxas on PATH")
    assert root.tool is not None and root.tool.endswith("wrappers/ptxas")
    assert root.real == str(toolkit) and root.version == "12.4.131"
    assert _by(facts, "nvcc on PATH") == []  # only the wrapped ptxas is on PATH


def test_cuda_home_root_has_nvcc_and_its_version(tools_facts: tuple[PythonFacts, Path, Path]) -> None:
    facts, _, toolkit = tools_facts
    [root] = _by(facts, "CUDA_HOME")
    assert root.path == str(toolkit) and root.nvcc and root.ptxas and root.version == "12.4.131"


def test_wheel_folders_follow_the_released_layouts(tools_facts: tuple[PythonFacts, Path, Path]) -> None:
    facts, site, _ = tools_facts
    [cu12] = _by(facts, "wheel nvidia/cuda_nvcc")
    assert cu12.path == str(site / "nvidia" / "cuda_nvcc")
    assert cu12.ptxas and cu12.libdevice and not cu12.nvcc
    [cu13] = _by(facts, "wheel nvidia/cu13")
    assert cu13.ptxas and cu13.nvcc and not cu13.libdevice  # libdevice is nvidia-nvvm's
    [prefix] = _by(facts, "prefix")
    assert not prefix.ptxas and not prefix.libdevice
    tools = {(t.distribution, t.name) for t in facts.wheel_tools}
    assert {
        ("nvidia-cuda-nvcc", "ptxas"),
        ("nvidia-cuda-nvcc", "nvcc"),
        ("nvidia-cuda-nvcc-cu12", "ptxas"),
    } <= tools


def test_real_machine_roots() -> None:
    """This machine: a CUDA 13.0 toolkit at /usr/local/cuda-13.0 (no version.json), no GPU; elsewhere the
    survey still answers, with the environment's prefix at least."""
    facts = probe.collect(make_ctx(python=sys.executable, env={"PATH": "/usr/local/bin:/usr/bin:/bin"}))
    assert facts.error is None
    assert _by(facts, "prefix") and _by(facts, "prefix")[0].path == sys.prefix
    if Path("/usr/local/cuda-13.0/bin/ptxas").is_file() and Path("/usr/local/cuda").exists():
        [cuda] = _by(facts, "/usr/local/cuda")
        assert cuda.ptxas and cuda.nvcc and cuda.libdevice
        assert (cuda.real or cuda.path) == str(Path("/usr/local/cuda").resolve())
        assert any(r.path == "/usr/local/cuda-13.0" for r in _by(facts, "toolkit"))


@pytest.mark.parametrize(
    "raw",
    [
        "nope",
        [{"via": "somewhere", "path": "/x"}],
        [{"via": "prefix"}],
        [{"via": "PATH", "path": 3, "ptxas": "yes"}],
    ],
)
def test_parse_drops_bad_roots(raw: object) -> None:
    assert probe.parse({"cuda_roots": raw}).cuda_roots == ()


def test_parse_keeps_a_good_root() -> None:
    [root] = probe.parse(
        {
            "cuda_roots": [
                {"via": "ptxas on PATH", "path": "/usr", "tool": "/usr/bin/ptxas", "ptxas": True, "x": 1}
            ]
        }
    ).cuda_roots
    assert root == CudaRoot(via="ptxas on PATH", path="/usr", tool="/usr/bin/ptxas", ptxas=True)
