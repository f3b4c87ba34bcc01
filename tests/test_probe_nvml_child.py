"""NVML in a child process: the real driver probe against a gcc-built stand-in libnvidia-ml.so.1.

The stand-in is found the way the real library is (the loader, through LD_LIBRARY_PATH); it answers
the per-GPU, MIG and process queries, fails one GPU, crashes in nvmlInit or hangs there.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from gpudoctor.facts import GpuProcess, MigDevice
from gpudoctor.prestart import nvml_child
from gpudoctor.probes.child_process import parse_marker
from gpudoctor.probes.driver import collect, describe
from gpudoctor.probes.nvml_query import STEP
from tests.conftest import OUTPUTS, make_ctx, write_executable
from tests.standin_nvml import build_standin_nvml, nvml_env

A100 = {
    "driver": "550.54.15",
    "cuda": 12040,
    "count": 2,
    "gpu0.name": "NVIDIA A100-SXM4-80GB",
    "gpu0.uuid": "GPU-5e1c3b2a-7d1f-4c3e-9a41-2b6f0e8d9c17",
    "gpu0.bus": "00000000:07:00.0",
    "gpu0.devid": "0x20B210DE",
    "gpu0.cc": "8.0",
    "gpu0.total": 85899345920,
    "gpu0.used": 1073741824,
    "gpu0.persist": 1,
    "gpu0.mig": "1,1",
    "gpu0.mig0.name": "NVIDIA A100-SXM4-80GB MIG 3g.40gb",
    "gpu0.mig0.uuid": "MIG-8f2d6c41-3b7a-5e90-a1c4-7d3e2f1b0a96",
    "gpu0.mig0.total": 42949672960,
    "gpu0.mig1.name": "NVIDIA A100-SXM4-80GB MIG 1g.10gb",
    "gpu0.mig1.uuid": "MIG-0c5b9e27-41d8-5f63-b2a0-9e8d7c6b5a41",
    "gpu0.mig1.total": 10737418240,
    "gpu0.procs": "4242:1073741824",
    "gpu1.handle": 15,  # NVML_ERROR_GPU_IS_LOST
}


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin_nvml(tmp_path_factory.mktemp("standin-nvml"))


def ctx_for(tmp_path: Path, library: Path, spec: dict[str, object], **kw: object) -> object:
    root = tmp_path / "root"
    (root / "proc/4242").mkdir(parents=True, exist_ok=True)
    (root / "proc/4242/comm").write_text("python3\n", encoding="utf-8")
    env = nvml_env(library, tmp_path / "spec.txt", spec)
    path = str(kw.pop("bin_dir", tmp_path / "no-bin"))
    env["PATH"] = f"{path}:{os.defpath}"
    return make_ctx(env=env, root=root, system="Linux", **kw)  # type: ignore[arg-type]


def test_per_gpu_state_mig_processes_and_one_lost_gpu(tmp_path: Path, library: Path) -> None:
    facts = collect(ctx_for(tmp_path, library, {"init": 0, **A100}))  # type: ignore[arg-type]
    assert facts.nvml_state == "ok" and facts.source == "nvml" and facts.nvml_failure is None
    assert facts.driver_version == "550.54.15" and facts.cuda_driver_version == "12.4"
    first, lost = facts.gpus
    assert first.uuid == "GPU-5e1c3b2a-7d1f-4c3e-9a41-2b6f0e8d9c17"
    assert first.pci_bus_id == "00000000:07:00.0" and first.pci_device_id == "10de:20b2"
    assert (first.memory_mib, first.memory_used_mib, first.compute_capability) == (81920, 1024, "8.0")
    assert first.persistence_mode is True and first.mig_current is True and first.mig_pending is True
    assert first.mig_devices == (
        MigDevice(
            index=0,
            uuid="MIG-8f2d6c41-3b7a-5e90-a1c4-7d3e2f1b0a96",
            name="NVIDIA A100-SXM4-80GB MIG 3g.40gb",
            profile="3g.40gb",
            memory_mib=40960,
        ),
        MigDevice(
            index=1,
            uuid="MIG-0c5b9e27-41d8-5f63-b2a0-9e8d7c6b5a41",
            name="NVIDIA A100-SXM4-80GB MIG 1g.10gb",
            profile="1g.10gb",
            memory_mib=10240,
        ),
    )
    assert first.processes == (GpuProcess(pid=4242, used_mib=1024, name="python3"),)
    assert first.error is None
    assert lost.index == 1 and lost.error == "GPU is lost" and lost.name == ""
    details = describe(facts).details
    assert "  MIG 0/1: 1g.10gb, 10 GiB · MIG-0c5b9e27-41d8-5f63-b2a0-9e8d7c6b5a41" in details
    assert "  process 4242 (python3) holds 1 GiB" in details
    assert describe(facts).mark == "warn"


def test_a_gpu_without_mig_or_persistence_is_no_fault(tmp_path: Path, library: Path) -> None:
    spec = {
        "init": 0,
        "count": 1,
        "gpu0.name": "NVIDIA GeForce RTX 3090",
        "gpu0.bus": "00000000:01:00.0",
        "gpu0.devid": "0x220410DE",
        "gpu0.cc": "8.6",
        "gpu0.total": 25769803776,
    }
    facts = collect(ctx_for(tmp_path, library, spec))  # type: ignore[arg-type]
    (gpu,) = facts.gpus
    assert gpu.error is None and gpu.uuid is None
    assert gpu.mig_current is None and gpu.persistence_mode is None and gpu.processes == ()
    assert describe(facts).mark == "ok"


def test_nvml_crashing_in_init_is_a_fact_not_a_dead_gpudoctor(tmp_path: Path, library: Path) -> None:
    facts = collect(ctx_for(tmp_path, library, {"init": "crash"}))  # type: ignore[arg-type]
    assert facts.nvml_state == "crash"
    assert facts.nvml_failure == "crashed (SIGSEGV) in nvmlInit"
    assert facts.nvml_call == "nvmlInit"
    assert facts.gpus == () and facts.source is None
    assert describe(facts).summary == "NVML crashed"


def test_nvml_crash_is_kept_when_nvidia_smi_still_answers(tmp_path: Path, library: Path) -> None:
    bin_dir = tmp_path / "bin"
    write_executable(bin_dir, "nvidia-smi", stdout=(OUTPUTS / "nvidia-smi-query-1gpu.csv").read_text())
    ctx = ctx_for(tmp_path, library, {"init": "crash"}, bin_dir=bin_dir)
    facts = collect(ctx)  # type: ignore[arg-type]
    assert facts.nvml_state == "ok" and facts.source == "nvidia-smi"
    assert facts.nvml_failure == "crashed (SIGSEGV) in nvmlInit"
    assert "NVML child process crashed (SIGSEGV) in nvmlInit" in describe(facts).details


def test_nvml_hanging_in_init_costs_its_deadline_only(tmp_path: Path, library: Path) -> None:
    started = time.monotonic()
    facts = collect(ctx_for(tmp_path, library, {"init": "hang"}, child_timeout=1.5))  # type: ignore[arg-type]
    assert time.monotonic() - started < 10
    assert facts.nvml_state == "hang"
    assert facts.nvml_failure == "gave no answer in nvmlInit within 1.5 s"


def test_nvml_error_code_from_the_library(tmp_path: Path, library: Path) -> None:
    facts = collect(ctx_for(tmp_path, library, {"init": 18}))  # type: ignore[arg-type]
    assert facts.nvml_state == "lib_rm_version_mismatch"
    assert facts.nvml_message == "RM has detected an NVML/RM version mismatch."
    assert facts.nvml_failure is None


def test_gpu_lost_while_counting(tmp_path: Path, library: Path) -> None:
    facts = collect(ctx_for(tmp_path, library, {"init": 0, "count": 2, "count_error": 15}))  # type: ignore[arg-type]
    assert facts.nvml_state == "gpu_lost" and facts.nvml_message == "GPU is lost"


def test_child_does_not_run_code_from_the_working_directory(tmp_path: Path, library: Path) -> None:
    cwd = tmp_path / "work"
    cwd.mkdir()
    (cwd / "pynvml.py").write_text("raise SystemExit('shadowed')\n", encoding="utf-8")
    (cwd / "json.py").write_text("raise SystemExit('shadowed')\n", encoding="utf-8")
    here = Path.cwd()
    os.chdir(cwd)
    try:
        facts = collect(ctx_for(tmp_path, library, {"init": 0, **A100}))  # type: ignore[arg-type]
    finally:
        os.chdir(here)
    assert facts.nvml_state == "ok" and len(facts.gpus) == 2


def test_without_the_library_pynvml_is_not_even_imported(tmp_path: Path, library: Path) -> None:
    """No libnvidia-ml.so.1 for the loader: the child answers pynvml's own "library not found" without
    importing pynvml (the child run with -X importtime, which lists every module it imports)."""
    env = {"PATH": os.defpath, "LD_LIBRARY_PATH": str(tmp_path / "nothing-here")}
    argv, child_env = nvml_child(env)
    argv = (argv[0], "-X", "importtime", *argv[1:])

    def imported(result: subprocess.CompletedProcess[str]) -> set[str]:
        return {
            ln.rpartition("|")[2].strip()
            for ln in result.stderr.splitlines()
            if ln.startswith("import time:")
        }

    missing = subprocess.run(argv, env=child_env, capture_output=True, text=True, timeout=60, check=False)
    assert parse_marker(missing.stdout) == {"init_error": 12, "message": "NVML Shared Library Not Found"}
    assert STEP + "nvmlInit" in missing.stderr.splitlines()
    assert "pynvml" not in imported(missing)
    child_env.update(nvml_env(library, tmp_path / "spec.txt", {"init": 0, "count": 0}))
    found = subprocess.run(argv, env=child_env, capture_output=True, text=True, timeout=60, check=False)
    assert "pynvml" in imported(found)
    assert parse_marker(found.stdout) == {
        "init_error": None,
        "driver_version": "535.104.05",
        "cuda_version": 12020,
        "gpus": [],
    }


def test_real_machine_without_a_driver() -> None:
    facts = collect(make_ctx(system="Linux"))
    if facts.source == "nvml":
        pytest.skip("this machine has a working NVIDIA driver")
    assert facts.nvml_state == "library_not_found", facts
    assert facts.nvml_message == "NVML Shared Library Not Found"
    assert facts.nvml_failure is None
