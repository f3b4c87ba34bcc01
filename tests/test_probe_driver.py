"""The driver probe against a stand-in NVML, fake nvidia-smi programs and a fake /proc and /usr tree."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pynvml
import pytest

from gpudoctor.facts import DriverFacts, GpuFacts
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.driver import (
    collect,
    cuda_version_string,
    describe,
    find_nvidia_smi,
    parse_kernel_module_version,
    parse_smi_cuda_version,
    parse_smi_query,
    smi_state,
)
from tests.conftest import OUTPUTS, FakeCall, FakeProgram, fake_program, make_ctx, write_executable

MODULE_520 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  520.56.06  Thu Oct  6 21:38:55 UTC 2022\n"
MODULE_535_OPEN = (
    "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  535.104.05  Release Build  "
    "(dvs-builder@U16-T02-35-3)  Sat Aug 19 01:13:42 UTC 2023\nGCC version:  gcc version 12.3.0\n"
)


def output(name: str) -> str:
    return (OUTPUTS / name).read_text(encoding="utf-8")


class Gpu:
    def __init__(
        self,
        name: str | bytes,
        capability: tuple[int, int] | int = (6, 1),
        total: int = 2048 * 1024 * 1024,
        bus_id: str | bytes = "00000000:01:00.0",
        *,
        uuid: str | None = None,
        used: int = 0,
        device_id: int = 0x1D1010DE,
        persistence: int | None = None,
        mig: tuple[int, int] | None = None,
        migs: tuple[Gpu, ...] = (),
        processes: tuple[tuple[int, int | None], ...] = (),
    ) -> None:
        self.name, self.capability, self.total, self.bus_id = name, capability, total, bus_id
        self.uuid, self.used, self.device_id, self.persistence = uuid, used, device_id, persistence
        self.mig, self.migs, self.processes = mig, migs, processes


def fake_nvml(
    *,
    init_error: int | None = None,
    count_error: int | None = None,
    gpus: tuple[Gpu | int, ...] = (),
    driver: str | bytes = "535.104.05",
    cuda: int = 12020,
) -> Any:
    """A stand-in pynvml module; an int in `gpus` is the NVML error code that GPU's handle raises.

    A feature a Gpu leaves at None (UUID, persistence, MIG) raises NVML_ERROR_NOT_SUPPORTED, as NVML does.
    """
    calls: list[str] = []

    def raising(code: int | None, value: Any) -> Callable[..., Any]:
        def call(*_: Any) -> Any:
            if code is not None:
                raise pynvml.NVMLError(code)
            return value

        return call

    def handle(index: int) -> Gpu:
        gpu = gpus[index]
        if isinstance(gpu, int):
            raise pynvml.NVMLError(gpu)
        return gpu

    def capability(gpu: Gpu) -> tuple[int, int]:
        if isinstance(gpu.capability, int):
            raise pynvml.NVMLError(gpu.capability)
        return gpu.capability

    def supported(attribute: str) -> Callable[[Gpu], Any]:
        def call(gpu: Gpu) -> Any:
            value = getattr(gpu, attribute)
            if value is None:
                raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_SUPPORTED)
            return value

        return call

    def mig_handle(gpu: Gpu, index: int) -> Gpu:
        if index >= len(gpu.migs):
            raise pynvml.NVMLError(pynvml.NVML_ERROR_NOT_FOUND)
        return gpu.migs[index]

    def init() -> None:
        calls.append("init")
        if init_error is not None:
            raise pynvml.NVMLError(init_error)

    return SimpleNamespace(
        NVMLError=pynvml.NVMLError,
        calls=calls,
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlSystemGetDriverVersion=raising(None, driver),
        nvmlSystemGetCudaDriverVersion_v2=raising(None, cuda),
        nvmlDeviceGetCount=raising(count_error, len(gpus)),
        nvmlDeviceGetHandleByIndex=handle,
        nvmlDeviceGetName=lambda g: g.name,
        nvmlDeviceGetUUID=supported("uuid"),
        nvmlDeviceGetCudaComputeCapability=capability,
        nvmlDeviceGetMemoryInfo=lambda g: SimpleNamespace(total=g.total, free=g.total - g.used, used=g.used),
        nvmlDeviceGetPciInfo=lambda g: SimpleNamespace(busId=g.bus_id, pciDeviceId=g.device_id),
        nvmlDeviceGetPersistenceMode=supported("persistence"),
        nvmlDeviceGetMigMode=supported("mig"),
        nvmlDeviceGetMaxMigDeviceCount=lambda g: 7,
        nvmlDeviceGetMigDeviceHandleByIndex=mig_handle,
        nvmlDeviceGetComputeRunningProcesses=lambda g: [
            SimpleNamespace(pid=pid, usedGpuMemory=used) for pid, used in g.processes
        ],
    )


QUERY = (
    "--query-gpu=index,name,compute_cap,memory.total,driver_version,pci.bus_id",
    "--format=csv,noheader,nounits",
)
QUERY_WITHOUT_COMPUTE_CAP = (
    "--query-gpu=index,name,memory.total,driver_version,pci.bus_id",
    "--format=csv,noheader,nounits",
)


def write_smi(
    bin_dir: Path, *, query: str, header: str = "", old_driver: bool = False, exit_code: int = 0
) -> FakeProgram:
    """A fake nvidia-smi that answers the CSV query, the plain header, and (old drivers) rejects compute_cap."""
    calls: tuple[FakeCall, ...]
    if old_driver:
        calls = (
            FakeCall(argv=QUERY, stdout=OUTPUTS / "nvidia-smi-invalid-field-compute-cap.txt", exit_code=2),
            FakeCall(argv=QUERY_WITHOUT_COMPUTE_CAP, stdout=query, exit_code=exit_code),
        )
    else:
        calls = (FakeCall(argv=QUERY, stdout=query, exit_code=exit_code),)
    return fake_program(bin_dir, "nvidia-smi", *calls, FakeCall(argv=(), stdout=header, exit_code=exit_code))


def smi_query(bin_dir: Path, **answer: Any) -> FakeProgram:
    """A fake nvidia-smi that is expected to be asked the CSV query only."""
    return fake_program(bin_dir, "nvidia-smi", FakeCall(argv=QUERY, **answer))


def linux_ctx(tmp_path: Path, nvml: Any, bin_dir: Path | None = None, **kw: Any) -> Any:
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    path = str(bin_dir) if bin_dir else str(tmp_path / "empty-bin")
    return make_ctx(env={"PATH": f"{path}:{os.defpath}"}, root=root, nvml=nvml, system="Linux", **kw)


# --- NVML ---------------------------------------------------------------------------------------


def test_healthy_single_gpu_from_nvml_with_bytes_returns(tmp_path: Path, bin_dir: Path) -> None:
    smi = write_smi(bin_dir, query=output("nvidia-smi-query-1gpu.csv"))
    nvml = fake_nvml(gpus=(Gpu(b"NVIDIA GeForce MX150", bus_id=b"00000000:01:00.0"),), driver=b"535.104.05")
    facts = collect(linux_ctx(tmp_path, nvml, bin_dir))
    assert facts.nvml_state == "ok"
    assert facts.source == "nvml"
    assert facts.driver_version == "535.104.05"
    assert facts.cuda_driver_version == "12.2"
    assert facts.gpus == (
        GpuFacts(
            index=0,
            name="NVIDIA GeForce MX150",
            compute_capability="6.1",
            memory_mib=2048,
            pci_bus_id="00000000:01:00.0",
            pci_device_id="10de:1d10",
            memory_used_mib=0,
        ),
    )
    assert facts.nvidia_smi == str(smi)
    assert smi.calls() == [], "nvidia-smi must not run when NVML answered"
    assert nvml.calls == ["init", "shutdown"]
    desc = describe(facts)
    assert desc.mark == "ok"
    assert (
        desc.summary
        == "NVIDIA driver 535.104.05 (CUDA ≤ 12.2) · 1 GPU: NVIDIA GeForce MX150, compute 6.1, 2 GiB"
    )
    assert (
        "GPU 0: NVIDIA GeForce MX150, compute 6.1, 2 GiB · PCI 00000000:01:00.0 [10de:1d10]" in desc.details
    )


def test_two_gpus_and_a_per_device_error_keeps_the_others(tmp_path: Path) -> None:
    nvml = fake_nvml(
        gpus=(
            Gpu("NVIDIA A100-SXM4-80GB", (8, 0), 81920 * 1024 * 1024),
            pynvml.NVML_ERROR_GPU_IS_LOST,
            Gpu("Tesla K80", pynvml.NVML_ERROR_NOT_SUPPORTED, 11441 * 1024 * 1024),
        ),
        cuda=12040,
    )
    facts = collect(linux_ctx(tmp_path, nvml))
    assert facts.nvml_state == "ok"
    assert facts.cuda_driver_version == "12.4"
    assert [g.index for g in facts.gpus] == [0, 1, 2]
    assert facts.gpus[0].compute_capability == "8.0" and facts.gpus[0].memory_mib == 81920
    assert facts.gpus[1].error == "GPU is lost" and facts.gpus[1].name == ""
    assert facts.gpus[2].name == "Tesla K80" and facts.gpus[2].compute_capability is None
    assert facts.gpus[2].error is not None and "Not Supported" in facts.gpus[2].error
    desc = describe(facts)
    assert desc.mark == "warn"
    assert desc.summary.startswith(
        "NVIDIA driver 535.104.05 (CUDA ≤ 12.4) · 3 GPUs: NVIDIA A100-SXM4-80GB, compute 8.0, 80 GiB"
    )


@pytest.mark.parametrize(
    ("code", "state"),
    [
        (pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "library_not_found"),
        (pynvml.NVML_ERROR_DRIVER_NOT_LOADED, "driver_not_loaded"),
        (pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH, "lib_rm_version_mismatch"),
        (pynvml.NVML_ERROR_NO_PERMISSION, "no_permission"),
        (pynvml.NVML_ERROR_GPU_IS_LOST, "gpu_lost"),
        (pynvml.NVML_ERROR_UNKNOWN, "unknown_error"),
        (pynvml.NVML_ERROR_TIMEOUT, "unknown_error"),
    ],
)
def test_each_nvml_failure_state_without_nvidia_smi(tmp_path: Path, code: int, state: str) -> None:
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=code)))
    assert facts.nvml_state == state
    assert facts.nvml_message == str(pynvml.NVMLError(code))
    assert facts.source is None and facts.gpus == () and facts.nvidia_smi is None
    # no driver at all is neutral (nothing may be wrong); every other failure state is a failure
    assert describe(facts).mark == ("none" if state == "library_not_found" else "fail")


def test_gpu_lost_while_counting_devices(tmp_path: Path) -> None:
    nvml = fake_nvml(count_error=pynvml.NVML_ERROR_GPU_IS_LOST, gpus=(Gpu("x"),))
    facts = collect(linux_ctx(tmp_path, nvml))
    assert facts.nvml_state == "gpu_lost"
    assert facts.driver_version == "535.104.05"
    assert nvml.calls == ["init", "shutdown"]
    assert describe(facts).summary == "a GPU has fallen off the bus"


def test_driver_running_with_no_gpu(tmp_path: Path) -> None:
    facts = collect(linux_ctx(tmp_path, fake_nvml(gpus=())))
    assert facts.nvml_state == "ok" and facts.gpus == ()
    desc = describe(facts)
    assert desc.mark == "fail" and desc.summary.endswith("no GPU found")


# --- nvidia-smi fallback ------------------------------------------------------------------------


def test_nvml_missing_but_nvidia_smi_works(tmp_path: Path, bin_dir: Path) -> None:
    write_smi(bin_dir, query=output("nvidia-smi-query-2gpus.csv"), header=output("nvidia-smi-535.txt"))
    nvml = fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND)
    facts = collect(linux_ctx(tmp_path, nvml, bin_dir))
    assert facts.nvml_state == "ok"
    assert facts.source == "nvidia-smi"
    assert facts.nvml_message == "NVML Shared Library Not Found"
    assert facts.driver_version == "550.54.15"
    assert facts.cuda_driver_version == "12.2"
    assert [(g.index, g.name, g.compute_capability, g.memory_mib, g.pci_bus_id) for g in facts.gpus] == [
        (0, "NVIDIA A100-SXM4-80GB", "8.0", 81920, "00000000:07:00.0"),
        (1, "NVIDIA A100-SXM4-80GB", "8.0", 81920, "00000000:0F:00.0"),
    ]
    assert "source: nvidia-smi (NVML: NVML Shared Library Not Found)" in describe(facts).details


def test_old_driver_without_compute_cap_is_queried_again(tmp_path: Path, bin_dir: Path) -> None:
    smi = write_smi(
        bin_dir,
        query=output("nvidia-smi-query-418-no-compute-cap.csv"),
        header=output("nvidia-smi-418.txt"),
        old_driver=True,
    )
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), bin_dir))
    assert facts.nvml_state == "ok" and facts.source == "nvidia-smi"
    assert facts.driver_version == "418.56" and facts.cuda_driver_version == "10.1"
    assert facts.gpus == (
        GpuFacts(index=0, name="GeForce GTX 1080", memory_mib=8119, pci_bus_id="00000000:01:00.0"),
    )
    assert smi.calls() == [QUERY, QUERY_WITHOUT_COMPUTE_CAP, ()]


def test_nvidia_smi_garbage_is_recorded_not_trusted(tmp_path: Path, bin_dir: Path) -> None:
    write_smi(bin_dir, query=output("nvidia-smi-garbage.txt"))
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), bin_dir))
    assert facts.nvml_state == "library_not_found"
    assert facts.gpus == () and facts.source is None
    assert facts.nvidia_smi_error is not None
    assert facts.nvidia_smi_error.startswith("unexpected output from nvidia-smi:")


def test_nvidia_smi_hang_is_stopped(tmp_path: Path, bin_dir: Path) -> None:
    smi_query(bin_dir, stdout=output("nvidia-smi-query-1gpu.csv"), sleep=30)
    ctx = linux_ctx(
        tmp_path, fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), bin_dir, child_timeout=0.5
    )
    facts = collect(ctx)
    assert facts.nvml_state == "library_not_found"
    assert facts.nvidia_smi_error is not None and "did not finish" in facts.nvidia_smi_error


def test_nvidia_smi_crash_is_recorded(tmp_path: Path, bin_dir: Path) -> None:
    smi_query(bin_dir, signal="SEGV")
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), bin_dir))
    assert facts.nvidia_smi_error == "nvidia-smi crashed (SIGSEGV)"


@pytest.mark.parametrize(
    ("recorded", "nvml_code", "state"),
    [
        ("nvidia-smi-no-driver.txt", pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "driver_not_loaded"),
        ("nvidia-smi-version-mismatch.txt", pynvml.NVML_ERROR_UNKNOWN, "lib_rm_version_mismatch"),
        ("nvidia-smi-insufficient-permissions.txt", pynvml.NVML_ERROR_LIBRARY_NOT_FOUND, "no_permission"),
        # NVML's own code wins over nvidia-smi's wording when NVML knew what was wrong.
        ("nvidia-smi-no-driver.txt", pynvml.NVML_ERROR_NO_PERMISSION, "no_permission"),
    ],
)
def test_nvidia_smi_error_text_names_the_state(
    tmp_path: Path, bin_dir: Path, recorded: str, nvml_code: int, state: str
) -> None:
    smi_query(bin_dir, stdout=output(recorded), exit_code=9)
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=nvml_code), bin_dir))
    assert facts.nvml_state == state
    assert facts.nvidia_smi_error == output(recorded).strip()


def test_nvidia_smi_no_devices_means_driver_without_gpu(tmp_path: Path, bin_dir: Path) -> None:
    smi_query(bin_dir, stdout=output("nvidia-smi-no-devices.txt"))
    facts = collect(linux_ctx(tmp_path, fake_nvml(init_error=pynvml.NVML_ERROR_LIBRARY_NOT_FOUND), bin_dir))
    assert facts.nvml_state == "ok" and facts.gpus == () and facts.source == "nvidia-smi"


# --- kernel module and user-space versions ------------------------------------------------------


def test_version_mismatch_reads_module_and_library_versions(tmp_path: Path, bin_dir: Path) -> None:
    root = tmp_path / "root"
    (root / "proc/driver/nvidia").mkdir(parents=True)
    (root / "proc/driver/nvidia/version").write_text(MODULE_520, encoding="utf-8")
    lib = root / "usr/lib/x86_64-linux-gnu"
    (lib / "nvidia/current").mkdir(parents=True)
    (lib / "nvidia/current/libnvidia-ml.so.525.85.12").write_bytes(b"\x7fELF")
    (root / "etc/alternatives").mkdir(parents=True)
    # Debian's chain: absolute link into /etc/alternatives, then on to the versioned file.
    (root / "etc/alternatives/nvidia--libnvidia-ml.so.1").symlink_to(
        "/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-ml.so.525.85.12"
    )
    (lib / "libnvidia-ml.so.1").symlink_to("/etc/alternatives/nvidia--libnvidia-ml.so.1")
    (lib / "libcuda.so.525.85.12").write_bytes(b"\x7fELF")
    (lib / "libcuda.so.1").symlink_to("libcuda.so.525.85.12")
    smi_query(bin_dir, stdout=output("nvidia-smi-version-mismatch.txt"), exit_code=18)
    nvml = fake_nvml(init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH)
    facts = collect(make_ctx(env={"PATH": f"{bin_dir}:{os.defpath}"}, root=root, nvml=nvml, system="Linux"))
    assert facts.nvml_state == "lib_rm_version_mismatch"
    assert facts.kernel_module_version == "520.56.06"
    assert facts.userspace_version == "525.85.12"
    assert facts.userspace_libraries == (
        "/usr/lib/x86_64-linux-gnu/nvidia/current/libnvidia-ml.so.525.85.12",
        "/usr/lib/x86_64-linux-gnu/libcuda.so.525.85.12",
    )
    assert describe(facts).summary == (
        "driver/library version mismatch (kernel module 520.56.06, libraries 525.85.12)"
    )


def test_userspace_version_from_nvidia_smi_when_no_library_names_it(tmp_path: Path, bin_dir: Path) -> None:
    smi_query(bin_dir, stdout=output("nvidia-smi-version-mismatch.txt"), exit_code=18)
    nvml = fake_nvml(init_error=pynvml.NVML_ERROR_LIB_RM_VERSION_MISMATCH)
    facts = collect(linux_ctx(tmp_path, nvml, bin_dir))
    assert facts.userspace_version == "525.85"


def test_wsl_libraries_and_nvidia_smi_outside_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    wsl = root / "usr/lib/wsl/lib"
    wsl.mkdir(parents=True)
    (wsl / "libcuda.so.1").write_bytes(b"\x7fELF")
    (wsl / "libnvidia-ml.so.1").write_bytes(b"\x7fELF")
    write_smi(wsl, query=output("nvidia-smi-query-1gpu.csv"))
    ctx = make_ctx(
        env={"PATH": f"{tmp_path / 'nothing'}:{os.defpath}"},
        root=root,
        nvml=fake_nvml(init_error=pynvml.NVML_ERROR_DRIVER_NOT_LOADED),
        system="Linux",
    )
    assert find_nvidia_smi(ctx) == str(wsl / "nvidia-smi")
    facts = collect(ctx)
    assert facts.userspace_libraries == (
        "/usr/lib/wsl/lib/libnvidia-ml.so.1",
        "/usr/lib/wsl/lib/libcuda.so.1",
    )
    assert facts.userspace_version is None
    assert facts.nvml_state == "ok" and facts.source == "nvidia-smi" and facts.driver_version == "535.104.05"


def test_windows_finds_nvidia_smi_in_system32(tmp_path: Path) -> None:
    system32 = tmp_path / "Windows" / "System32"
    write_executable(system32, "nvidia-smi.exe")
    ctx = make_ctx(
        env={"PATH": str(tmp_path / "nothing"), "SystemRoot": str(tmp_path / "Windows")}, system="Windows"
    )
    assert find_nvidia_smi(ctx) == str(system32 / "nvidia-smi.exe")


def test_macos_has_no_driver_probe() -> None:
    with pytest.raises(ProbeUnavailable):
        collect(make_ctx(system="Darwin", nvml=fake_nvml()))


def test_real_probe_on_this_machine_does_not_raise() -> None:
    facts = collect(make_ctx())
    assert isinstance(facts, DriverFacts)
    if facts.nvml_state != "ok":
        assert facts.nvml_state == "library_not_found"
        assert facts.gpus == ()
        assert describe(facts).mark == "none"


# --- parsers ------------------------------------------------------------------------------------


def test_parse_smi_query_bad_inputs() -> None:
    fields = ("index", "name", "compute_cap", "memory.total", "driver_version", "pci.bus_id")
    assert parse_smi_query("", fields) == ((), None)
    assert parse_smi_query("0, GPU, 8.6, 1024", fields) == ((), None)  # too few cells
    assert parse_smi_query("x, GPU, 8.6, 1024, 535.1, 0:1", fields) == ((), None)  # index
    assert parse_smi_query("0, GPU, 8.6, lots, 535.1, 0:1", fields) == ((), None)  # memory
    assert parse_smi_query("0, GPU, eight, 1024, 535.1, 0:1", fields) == ((), None)  # capability
    assert parse_smi_query("0, GPU, 8.6, 1024, [N/A], 0:1", fields) == ((), None)  # driver version
    gpus, driver = parse_smi_query("0, Quadro RTX 4000, with Max-Q, [N/A], [N/A], 535.1, [N/A]\n", fields)
    assert driver == "535.1"
    assert gpus == (GpuFacts(index=0, name="Quadro RTX 4000, with Max-Q"),)


def test_parse_kernel_module_version() -> None:
    assert parse_kernel_module_version(MODULE_520) == "520.56.06"
    assert parse_kernel_module_version(MODULE_535_OPEN) == "535.104.05"
    assert (
        parse_kernel_module_version("NVRM version: NVIDIA UNIX aarch64 Kernel Module  470.82.01 ...")
        == "470.82.01"
    )
    assert parse_kernel_module_version("") is None
    assert parse_kernel_module_version("NVRM version: garbage\x00\x01") is None


def test_small_parsers() -> None:
    assert cuda_version_string(12020) == "12.2"
    assert cuda_version_string(11080) == "11.8"
    assert cuda_version_string(13000) == "13.0"
    assert parse_smi_cuda_version(output("nvidia-smi-535.txt")) == "12.2"
    assert parse_smi_cuda_version("CUDA Version: N/A") is None
    assert parse_smi_cuda_version(output("nvidia-smi-garbage.txt")) is None
    assert smi_state(output("nvidia-smi-no-driver.txt")) == "driver_not_loaded"
    assert smi_state(output("nvidia-smi-version-mismatch.txt")) == "lib_rm_version_mismatch"
    assert smi_state("Unable to determine the device handle for GPU0000:01:00.0: GPU is lost.") == "gpu_lost"
    assert smi_state("Failed to initialize NVML: Unknown Error") == "unknown_error"
    assert smi_state(output("nvidia-smi-garbage.txt")) is None
