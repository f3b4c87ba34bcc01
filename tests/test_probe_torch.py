"""The PyTorch probe against throwaway venvs holding a stand-in `torch` that mimics the real API."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.facts import TorchFacts
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun
from gpudoctor.probes.libnames import library_kind
from gpudoctor.probes.torch import (
    channel_name,
    collect,
    cudnn_text,
    describe,
    parse,
)
from gpudoctor.runner import CommandResult
from tests.conftest import make_ctx, write_executable

# The stand-in reads its behaviour from _scenario.json next to it; the texts are torch's own.
STANDIN_TORCH = """
import json, os, signal, sys, time, warnings
_S = json.load(open(os.path.join(os.path.dirname(__file__), "_scenario.json")))
if _S.get("garbage"):
    print("{\\"not\\": json")
    sys.stdout.write("@@GPUDOCTOR@@ {broken json")
    sys.stdout.flush()
if _S.get("import_error"):
    raise ImportError(_S["import_error"])
if _S.get("hang_on_import"):
    time.sleep(600)
if _S.get("segfault_on_import"):
    os.kill(os.getpid(), signal.SIGSEGV)
for _lib in _S.get("load", []):
    import ctypes
    ctypes.CDLL(_lib)
__version__ = _S["version"]
from torch import version, cuda, backends
"""
STANDIN_VERSION = """
from torch import _S
cuda = _S.get("cuda")
hip = _S.get("hip")
"""
STANDIN_CUDA = """
import os, signal, warnings
from torch import _S
_warned = []
def is_available():
    for text in _S.get("init_warnings", []):
        warnings.warn(text, UserWarning)
    if _S.get("segfault_on_cuda"):
        os.kill(os.getpid(), signal.SIGSEGV)
    return bool(_S.get("available"))
def device_count():
    return len(_S.get("devices", [])) if _S.get("available") else 0
def get_arch_list():
    return list(_S.get("arch_list", []))
def _lazy_init():
    if not _warned:
        _warned.append(1)
        for text in _S.get("device_warnings", []):
            warnings.warn(text, UserWarning)
def get_device_name(index):
    _lazy_init()
    return _S["devices"][index]["name"]
def get_device_capability(index):
    _lazy_init()
    return tuple(_S["devices"][index]["capability"])
"""
STANDIN_CUDNN = """
from torch import _S
def version():
    return _S.get("cudnn")
"""

DRIVER_TOO_OLD = (
    "CUDA initialization: The NVIDIA driver on your system is too old (found version 10010). Please update "
    "your GPU driver by downloading and installing a new version from the URL: "
    "http://www.nvidia.com/Download/index.aspx Alternatively, go to: https://pytorch.org to install a PyTorch "
    "version that has been compiled with your version of the CUDA driver. "
    "(Triggered internally at  /pytorch/c10/cuda/CUDAFunctions.cpp:100.)"
)
SM120_NOT_COMPATIBLE = (
    "\nNVIDIA GeForce RTX 5090 D with CUDA capability sm_120 is not compatible with the current PyTorch "
    "installation.\nThe current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 "
    "sm_90.\nIf you want to use the NVIDIA GeForce RTX 5090 D GPU with PyTorch, please check the instructions "
    "at https://pytorch.org/get-started/locally/\n"
)


def make_env(root: Path) -> tuple[str, Path]:
    """A throwaway venv (no pip): its interpreter and its site-packages."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    python = root / "bin" / "python"
    site = next((root / "lib").glob("python3*/site-packages"))
    return str(python), site


def write_dist(site: Path, name: str, version: str, *, installer: str | None = "pip") -> Path:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: stand-in\n", encoding="utf-8"
    )
    if installer:
        (info / "INSTALLER").write_text(installer + "\n", encoding="utf-8")
    return info


def install_torch(site: Path, scenario: dict[str, Any], *, dist_version: str | None = None) -> None:
    pkg = site / "torch"
    (pkg / "cuda").mkdir(parents=True)
    (pkg / "backends").mkdir()
    (pkg / "__init__.py").write_text(STANDIN_TORCH, encoding="utf-8")
    (pkg / "_scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
    (pkg / "version.py").write_text(STANDIN_VERSION, encoding="utf-8")
    (pkg / "cuda" / "__init__.py").write_text(STANDIN_CUDA, encoding="utf-8")
    (pkg / "backends" / "__init__.py").write_text("from torch.backends import cudnn\n", encoding="utf-8")
    (pkg / "backends" / "cudnn.py").write_text(STANDIN_CUDNN, encoding="utf-8")
    write_dist(site, "torch", dist_version or scenario["version"].split("+")[0])


def torch_env(tmp_path: Path, scenario: dict[str, Any], **kwargs: Any) -> str:
    python, site = make_env(tmp_path / "venv")
    install_torch(site, scenario, **kwargs)
    return python


CUDA_124 = {
    "version": "2.5.1+cu124",
    "cuda": "12.4",
    "cudnn": 90100,
    "available": True,
    "arch_list": ["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
    "devices": [{"name": "NVIDIA GeForce RTX 4090", "capability": [8, 9]}],
}


def test_cuda_build_with_a_usable_gpu(tmp_path: Path) -> None:
    facts = collect(make_ctx(python=torch_env(tmp_path, CUDA_124)))
    assert facts.installed and facts.imported and facts.import_error is None
    assert facts.version == "2.5.1+cu124"
    assert facts.dist_version == "2.5.1"
    assert facts.installer == "pip"
    assert facts.cuda_version == "12.4" and facts.hip_version is None
    assert facts.cudnn_version == 90100
    assert facts.cuda_available is True and facts.device_count == 1
    assert [(d.index, d.name, d.capability) for d in facts.devices] == [(0, "NVIDIA GeForce RTX 4090", "8.9")]
    assert facts.arch_list[-1] == "sm_90"
    assert facts.module_path is not None and facts.module_path.endswith("torch/__init__.py")
    assert facts.conda_build is None and facts.warnings == ()
    description = describe(facts)
    assert description.mark == "ok"
    assert description.summary == (
        "PyTorch 2.5.1+cu124 (CUDA 12.4, cuDNN 9.1) · 1 GPU usable: NVIDIA GeForce RTX 4090 (8.9)"
    )


def test_cpu_build(tmp_path: Path) -> None:
    scenario = {"version": "2.5.1+cpu", "cuda": None, "cudnn": None, "available": False}
    facts = collect(make_ctx(python=torch_env(tmp_path, scenario)))
    assert facts.cuda_version is None and facts.cuda_available is False and facts.device_count == 0
    assert facts.devices == () and facts.arch_list == ()
    assert describe(facts).summary == "PyTorch 2.5.1+cpu (CPU-only build)"
    assert describe(facts).mark == "warn"


@pytest.mark.parametrize(
    ("facts", "mark"),
    [
        (TorchFacts(installed=True, imported=True, version="2.5.1+cpu"), "warn"),
        (
            TorchFacts(installed=True, imported=True, version="2.5.1", conda_build="cpu_generic_py311h1"),
            "warn",
        ),
        (TorchFacts(installed=True, imported=True, version="2.5.1", conda_cpuonly=True), "warn"),
        (TorchFacts(installed=True, imported=True, version="2.5.1"), "ok"),  # macOS wheel: MPS, not CUDA
    ],
)
def test_cpu_only_build_is_marked(facts: TorchFacts, mark: str) -> None:
    assert describe(facts).mark == mark


def test_driver_too_old_warning_is_kept(tmp_path: Path) -> None:
    scenario = {"version": "1.7.0", "cuda": "10.2", "cudnn": 7605, "available": False}
    scenario["init_warnings"] = [DRIVER_TOO_OLD]
    facts = collect(make_ctx(python=torch_env(tmp_path, scenario)))
    assert facts.cuda_available is False
    assert len(facts.warnings) == 1 and "too old (found version 10010)" in facts.warnings[0]
    assert describe(facts).mark == "warn"
    assert describe(facts).summary == "PyTorch 1.7.0 (CUDA 10.2, cuDNN 7.6) · no GPU usable"


def test_unsupported_architecture_warning_is_kept(tmp_path: Path) -> None:
    scenario = dict(CUDA_124, version="2.6.0+cu124")
    scenario["devices"] = [{"name": "NVIDIA GeForce RTX 5090 D", "capability": [12, 0]}]
    scenario["device_warnings"] = [SM120_NOT_COMPATIBLE]
    facts = collect(make_ctx(python=torch_env(tmp_path, scenario)))
    assert facts.devices[0].capability == "12.0"
    assert any("sm_120 is not compatible with the current PyTorch installation" in w for w in facts.warnings)
    assert describe(facts).mark == "warn"


def test_import_error_is_a_fact(tmp_path: Path) -> None:
    message = "libcudnn.so.9: cannot open shared object file: No such file or directory"
    python = torch_env(tmp_path, {"version": "2.5.1+cu124", "import_error": message})
    facts = collect(make_ctx(python=python))
    assert facts.installed and not facts.imported
    assert facts.import_error == f"ImportError: {message}"
    assert facts.dist_version == "2.5.1" and facts.version is None
    assert describe(facts).mark == "fail"
    assert describe(facts).summary == f"PyTorch 2.5.1 fails to import: ImportError: {message}"


def test_hanging_import_is_stopped(tmp_path: Path) -> None:
    python = torch_env(tmp_path, {"version": "2.5.1", "hang_on_import": True})
    facts = collect(make_ctx(python=python, child_timeout=2))
    assert facts.installed and not facts.imported
    assert facts.import_error == "import torch did not finish within 2 s and was stopped"


def test_segfault_on_import(tmp_path: Path) -> None:
    python = torch_env(tmp_path, {"version": "2.5.1", "segfault_on_import": True})
    facts = collect(make_ctx(python=python))
    assert not facts.imported
    assert facts.import_error == "import torch crashed the interpreter (SIGSEGV)"


def test_segfault_during_cuda_init_keeps_what_the_import_said(tmp_path: Path) -> None:
    python = torch_env(tmp_path, dict(CUDA_124, segfault_on_cuda=True))
    facts = collect(make_ctx(python=python))
    assert facts.imported and facts.version == "2.5.1+cu124" and facts.cuda_version == "12.4"
    assert facts.cuda_available is None
    assert facts.cuda_error == "initialising CUDA in torch crashed the interpreter (SIGSEGV)"


def test_garbage_on_stdout_does_not_hide_the_result(tmp_path: Path) -> None:
    facts = collect(make_ctx(python=torch_env(tmp_path, dict(CUDA_124, garbage=True))))
    assert facts.imported and facts.cuda_available is True and facts.version == "2.5.1+cu124"


def test_not_installed(tmp_path: Path) -> None:
    python, _ = make_env(tmp_path / "venv")
    with pytest.raises(ProbeUnavailable, match="PyTorch is not installed"):
        collect(make_ctx(python=python))


def test_missing_interpreter(tmp_path: Path) -> None:
    with pytest.raises(ProbeUnavailable, match="does not exist"):
        collect(make_ctx(python=str(tmp_path / "nope" / "python")))


def test_interpreter_that_prints_garbage(bin_dir: Path) -> None:
    python = write_executable(bin_dir, "python", stdout="Segmentation fault? no: {garbage\n")
    facts = collect(make_ctx(python=str(python)))
    assert facts.probe_error is not None and "printed no result" in facts.probe_error
    assert describe(facts).mark == "warn"


def test_conda_record_and_pip_overwrite(tmp_path: Path) -> None:
    python = torch_env(tmp_path, dict(CUDA_124, version="2.3.0+cu121"))
    meta = tmp_path / "venv" / "conda-meta"
    meta.mkdir()
    records = {
        "pytorch-2.1.0-cpu_py311h6d93b4c_0.json": {
            "name": "pytorch",
            "version": "2.1.0",
            "build": "cpu_py311h6d93b4c_0",
            "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        },
        "pytorch-cuda-12.1-ha16c6d3_5.json": {"name": "pytorch-cuda", "version": "12.1", "build": "x"},
        "cpuonly-2.0-0.json": {"name": "cpuonly", "version": "2.0", "build": "0", "channel": "pytorch"},
        "pytorch-mutex-1.0-cpu.json": "not a record",
    }
    for file_name, record in records.items():
        (meta / file_name).write_text(json.dumps(record), encoding="utf-8")
    (meta / "pytorch-broken-1.json").write_text("{not json", encoding="utf-8")
    facts = collect(make_ctx(python=python))
    assert facts.conda_build == "cpu_py311h6d93b4c_0"
    assert facts.conda_channel == "conda-forge"
    assert facts.conda_version == "2.1.0"
    assert facts.conda_cpuonly is True
    assert facts.installer == "pip" and facts.dist_version == "2.3.0"


def test_loaded_cuda_libraries_come_from_proc_maps(tmp_path: Path) -> None:
    if not Path("/proc/self/maps").exists() or shutil.which("gcc") is None:
        pytest.skip("needs Linux /proc and gcc")
    lib_dir = tmp_path / "libs"
    lib_dir.mkdir()
    source = lib_dir / "stub.c"
    source.write_text("int cudaRuntimeGetVersion(int *v) { *v = 12040; return 0; }\n", encoding="utf-8")
    library = lib_dir / "libcudart.so.12"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True)
    facts = collect(make_ctx(python=torch_env(tmp_path, dict(CUDA_124, load=[str(library)]))))
    assert [(lib.path, lib.kind) for lib in facts.loaded_libraries] == [(str(library), "cudart")]


def test_child_script_runs_on_python_36(tmp_path: Path) -> None:
    python36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python3.6"
    if not python36.exists():
        pytest.skip("no Python 3.6 interpreter here")
    site = tmp_path / "site"
    install_torch(site, CUDA_124)
    facts = collect(make_ctx(python=str(python36), env={"PYTHONPATH": str(site)}))
    assert facts.imported and facts.version == "2.5.1+cu124" and facts.devices[0].capability == "8.9"


def _run(stdout: str = "", returncode: int | None = 0, **kwargs: Any) -> ChildRun:
    result = CommandResult(argv=("python",), returncode=returncode, stdout=stdout, **kwargs)
    return ChildRun(result=result, data=None, problem=None)


def test_parse_rejects_bad_values() -> None:
    data = {
        "stage": "done",
        "installed": True,
        "imported": True,
        "version": 2.5,
        "cuda_version": ["12.4"],
        "cudnn_version": "90100",
        "cuda_available": "yes",
        "device_count": True,
        "devices": [{"index": "0"}, 5, {"index": 1, "name": None, "capability": "eight"}],
        "arch_list": "sm_90",
        "warnings": [1, None, "CUDA initialization: boom", "CUDA initialization: boom", "unrelated noise"],
        "dist": "torch",
        "conda": ["pytorch"],
        "loaded_libraries": [3, "", "/usr/lib/libcuda.so.1"],
    }
    facts = parse(data, _run())
    assert facts.version is None and facts.cuda_version is None and facts.cudnn_version is None
    assert facts.cuda_available is None and facts.device_count is None
    assert [(d.index, d.name, d.capability) for d in facts.devices] == [(1, "", None)]
    assert facts.arch_list == ()
    assert facts.warnings == ("CUDA initialization: boom",)
    assert facts.dist_version is None and facts.conda_build is None and facts.conda_channel is None
    assert [(lib.path, lib.kind) for lib in facts.loaded_libraries] == [("/usr/lib/libcuda.so.1", "libcuda")]


def test_parse_not_installed_and_early_exit() -> None:
    with pytest.raises(ProbeUnavailable):
        parse({"installed": "yes"}, _run())
    stopped = parse(
        {"installed": True, "stage": "metadata"}, _run(returncode=1, stderr="Fatal Python error\n")
    )
    assert stopped.import_error == "import torch exited with status 1: Fatal Python error"


@pytest.mark.parametrize(
    ("channel", "name"),
    [
        ("https://conda.anaconda.org/conda-forge/linux-64", "conda-forge"),
        ("https://conda.anaconda.org/pytorch/linux-64/", "pytorch"),
        ("https://repo.anaconda.com/pkgs/main/linux-64", "defaults"),
        ("pkgs/main", "defaults"),
        ("conda-forge", "conda-forge"),
        ("nvidia", "nvidia"),
        ("", ""),
        ("   ", ""),
    ],
)
def test_channel_name(channel: str, name: str) -> None:
    assert channel_name(channel) == name


def test_small_parsers() -> None:
    assert cudnn_text(90100) == "9.1" and cudnn_text(91002) == "9.10" and cudnn_text(8902) == "8.9"
    assert cudnn_text(7605) == "7.6"
    assert library_kind("/x/nvidia/cudnn/lib/libcudnn_graph.so.9") == "cudnn"
    assert library_kind("C:\\Windows\\System32\\nvcuda.dll") == "libcuda"
    assert library_kind("/usr/lib/libcublasLt.so.12") == "cublas"
    assert library_kind("/usr/lib/libfoo.so") == "other"


def test_cudnn_check_failure_is_kept() -> None:
    message = "RuntimeError: cuDNN version incompatibility: PyTorch was compiled  against (9, 1, 0) but found runtime version (8, 9, 2)"
    facts = parse(
        {"installed": True, "imported": True, "version": "2.4.1+cu121", "cudnn_error": message}, _run()
    )
    assert facts.cudnn_error == message
    assert facts.cudnn_version is None
    assert parse({"installed": True, "imported": True, "cudnn_error": 7}, _run()).cudnn_error is None
