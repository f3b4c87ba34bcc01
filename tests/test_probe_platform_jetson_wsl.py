"""The platform probe's Jetson and WSL 2 facts, on fake roots with fake cmd.exe and ldconfig programs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gpudoctor.engine import diagnose
from gpudoctor.facts import DriverFacts, Facts, GpuFacts, TorchFacts
from gpudoctor.matrix import load_matrix
from gpudoctor.probes.platform import (
    WSL_DRIVER_FILES,
    collect,
    describe,
    dpkg_versions,
    parse_ldconfig_libcuda,
    parse_tegra_release,
    parse_windows_version,
)
from tests.conftest import OUTPUTS, FakeCall, fake_program, make_ctx
from tests.fakeroot import write

DPKG_STATUS = """Package: nvidia-l4t-core
Status: install ok installed
Architecture: arm64
Version: 35.4.1-20230801124926
Description: NVIDIA Core Package

Package: nvidia-jetpack
Status: install ok installed
Priority: standard
Architecture: arm64
Source: nvidia-jetpack (5.1.2)
Version: 5.1.2-b104
Depends: nvidia-jetpack-runtime (= 5.1.2-b104), nvidia-jetpack-dev (= 5.1.2-b104)
Description: NVIDIA Jetpack Meta Package
 A continuation line: Version: 9.9 must not count

Package: nvidia-removed
Status: deinstall ok config-files
Version: 1.0
"""


def test_jetson_agx_orin_jetpack_5(tmp_path: Path) -> None:
    write(tmp_path, "/etc/nv_tegra_release", (OUTPUTS / "nv_tegra_release-r35.4.1.txt").read_text())
    write(tmp_path, "/proc/device-tree/model", "NVIDIA Jetson AGX Orin Developer Kit\x00")
    write(tmp_path, "/var/lib/dpkg/status", DPKG_STATUS)
    write(tmp_path, "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1", "\x7fELF")
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.10.120-tegra\n")
    bin_dir = tmp_path / "bin"
    ldconfig = fake_program(
        bin_dir,
        "ldconfig",
        FakeCall(
            argv=("-p",),
            stdout="\tlibcuda.so.1 (libc6,AArch64) => /usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1\n",
        ),
    )
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=tmp_path, system="Linux"))
    assert ldconfig.calls() == [("-p",)]
    assert facts.tegra_release == "35.4.1" and facts.jetpack_version == "5.1.2"
    assert facts.jetson_model == "NVIDIA Jetson AGX Orin Developer Kit"
    assert facts.tegra_libcuda == "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1"
    assert facts.loader_libcuda == "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1"
    assert facts.wsl == 0 and facts.windows_build is None
    assert "NVIDIA Jetson AGX Orin Developer Kit · JetPack 5.1.2" in describe(facts).summary


def test_wsl2_windows_build_and_loader(tmp_path: Path) -> None:
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n")
    write(tmp_path, "/proc/version", "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1)\n")
    write(tmp_path, "/dev/dxg")
    write(tmp_path, "/usr/lib/wsl/lib/libcuda.so.1", "\x7fELF")
    write(tmp_path, "/etc/ld.so.conf.d/ld.wsl.conf", "/usr/lib/wsl/lib\n")
    bin_dir = tmp_path / "bin"
    cmd = fake_program(bin_dir, "cmd.exe", FakeCall(argv=("/c", "ver"), stdout=OUTPUTS / "cmd-ver-22631.txt"))
    fake_program(bin_dir, "ldconfig", FakeCall(argv=("-p",), stdout=OUTPUTS / "ldconfig-p-wsl.txt"))
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=tmp_path, system="Linux"))
    assert cmd.calls() == [("/c", "ver")]
    assert facts.wsl == 2
    assert facts.windows_version == "10.0.22631.4037" and facts.windows_build == 22631
    assert facts.wsl_ld_conf is True and facts.loader_libcuda == "/usr/lib/wsl/lib/libcuda.so.1"
    assert facts.loader_libcuda_unversioned == "/usr/lib/wsl/lib/libcuda.so"
    assert facts.tegra_release is None
    assert "Windows host 10.0.22631.4037" in describe(facts).details


def test_wsl2_with_interop_off_and_no_ld_conf(tmp_path: Path) -> None:
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n")
    write(tmp_path, "/usr/lib/wsl/lib/libcuda.so.1", "\x7fELF")
    (tmp_path / "etc/ld.so.conf.d").mkdir(parents=True)
    write(tmp_path, "/etc/ld.so.conf.d/libc.conf", "/usr/local/lib\n")
    bin_dir = tmp_path / "bin"
    fake_program(
        bin_dir,
        "cmd.exe",
        FakeCall(argv=("/c", "ver"), stderr="-bash: cmd.exe: cannot execute binary file\n", exit_code=126),
    )
    fake_program(
        bin_dir, "ldconfig", FakeCall(argv=("-p",), stdout="3 libs found in cache `/etc/ld.so.cache'\n")
    )
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=tmp_path, system="Linux"))
    assert facts.windows_build is None and facts.windows_version is None
    assert facts.wsl_ld_conf is False and facts.loader_libcuda is None
    assert "no /etc/ld.so.conf.d file lists /usr/lib/wsl/lib" in describe(facts).details


STORE = "/usr/lib/wsl/drivers/nvmii.inf_amd64_2a5e1b4c9f6d7e80"
# PyTorch 2.3 in a Docker container on WSL 2 with the 555.99 Windows driver (NVIDIA/nvidia-container-toolkit#520).
TORCH_500 = (
    "CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before "
    "calling NumCudaDevices() that might have already set an error? Error 500: named symbol not found "
    "(Triggered internally at ../c10/cuda/CUDAFunctions.cpp:108.)"
)


def wsl_container(tmp_path: Path, *store_files: str) -> Path:
    """A Docker container on WSL 2 as the container toolkit's CDI spec lays it out: /dev/dxg, libdxcore.so
    in /usr/lib/wsl/lib, the driver store folder with the files the toolkit mounted; an Intel driver
    store folder beside it."""
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.15.153.1-microsoft-standard-WSL2\n")
    write(tmp_path, "/proc/version", "Linux version 5.15.153.1-microsoft-standard-WSL2 (root@941d701f84f1)\n")
    write(tmp_path, "/.dockerenv")
    write(tmp_path, "/dev/dxg")
    write(tmp_path, "/usr/lib/wsl/lib/libdxcore.so", "\x7fELF")
    write(tmp_path, "/usr/lib/wsl/drivers/iigd_dch.inf_amd64_51f685305808e3a5/libigdgmm.so.12", "\x7fELF")
    for name in store_files:
        write(tmp_path, f"{STORE}/{name}", "\x7fELF")
    return tmp_path


def test_wsl2_container_records_the_windows_driver_files_it_was_given(tmp_path: Path) -> None:
    mounted = (
        "libcuda.so.1.1",
        "libcuda_loader.so",
        "libnvidia-ml.so.1",
        "libnvidia-ml_loader.so",
        "nvidia-smi",
    )
    root = wsl_container(tmp_path, *mounted)
    bin_dir = tmp_path / "bin"
    ldconfig = fake_program(
        bin_dir,
        "ldconfig",
        FakeCall(argv=("-p",), stdout=f"\tlibcuda.so.1 (libc6,x86-64) => {STORE}/libcuda.so.1\n"),
    )
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=root, system="Linux"))
    assert ldconfig.calls() == [("-p",)]
    assert facts.wsl == 2 and facts.container == "docker" and "/dev/dxg" in facts.device_nodes
    assert facts.wsl_driver_files == ("/usr/lib/wsl/lib/libdxcore.so", *(f"{STORE}/{n}" for n in mounted))
    assert "libnvdxgdmal.so.1" in WSL_DRIVER_FILES
    assert any(
        d.startswith("Windows driver files here: /usr/lib/wsl/lib/libdxcore.so")
        for d in describe(facts).details
    )

    # The real rules on these real facts: a 555 driver, PyTorch's error 500, libnvdxgdmal.so.1 not mounted.
    driver = DriverFacts(
        nvml_state="ok",
        source="nvml",
        driver_version="555.99",
        gpus=(GpuFacts(index=0, name="NVIDIA RTX A2000 8GB Laptop GPU", compute_capability="8.6"),),
    )
    torch = TorchFacts(
        installed=True,
        imported=True,
        version="2.3.0+cu118",
        cuda_version="11.8",
        cuda_available=False,
        device_count=0,
        warnings=(TORCH_500,),
    )
    report = diagnose(Facts(platform=facts, driver=driver, torch=torch), load_matrix())
    errors = [f for f in report.findings if f.severity.value == "error"]
    assert [f.code for f in errors] == ["GD534"], [f.code for f in report.findings]
    assert "libnvdxgdmal.so.1" in errors[0].message and "error 500" in errors[0].message

    # Once the toolkit mounts it, the same container is healthy.
    write(root, f"{STORE}/libnvdxgdmal.so.1", "\x7fELF")
    fixed = collect(make_ctx(env={"PATH": str(bin_dir)}, root=root, system="Linux"))
    healthy = dataclasses.replace(torch, cuda_available=True, device_count=1, warnings=())
    report = diagnose(Facts(platform=fixed, driver=driver, torch=healthy), load_matrix())
    assert [f.code for f in report.findings if f.severity.value == "error"] == []


def test_parsers_with_bad_input() -> None:
    assert parse_tegra_release("# R32 (release), REVISION: 7.4, GCID: 33514132") == "32.7.4"
    assert parse_tegra_release("# R36 (release), REVISION: 4") == "36.4.0"
    assert parse_tegra_release("garbage\x00") is None
    assert dpkg_versions(DPKG_STATUS, ("nvidia-jetpack", "nvidia-removed")) == {
        "nvidia-jetpack": "5.1.2-b104"
    }
    assert dpkg_versions("\x00\n\n:::", ("x",)) == {}
    assert parse_windows_version("Microsoft Windows [Version 10.0.19045.4529]") == ("10.0.19045.4529", 19045)
    assert parse_windows_version("Microsoft Windows [Versión 10.0.19045]") is None
    assert (
        parse_ldconfig_libcuda((OUTPUTS / "ldconfig-p-wsl.txt").read_text())
        == "/usr/lib/wsl/lib/libcuda.so.1"
    )
    assert parse_ldconfig_libcuda("libcuda.so.1 => ") is None


def test_this_machine_is_neither_jetson_nor_wsl() -> None:
    facts = collect(make_ctx(system="Linux"))
    assert facts.tegra_release is None and facts.jetpack_version is None
    if facts.wsl == 0:
        assert facts.windows_build is None and facts.loader_libcuda is None
        assert facts.wsl_driver_files is None  # not WSL 2: not looked for, rather than "none found"


def test_wsl2_cache_without_the_unversioned_libcuda(tmp_path: Path) -> None:
    """microsoft/WSL#8587: the cache lists libcuda.so.1 from /usr/lib/wsl/lib and no libcuda.so."""
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.15.90.1-microsoft-standard-WSL2\n")
    write(tmp_path, "/dev/dxg")
    for name in ("libcuda.so", "libcuda.so.1", "libcuda.so.1.1"):
        write(tmp_path, f"/usr/lib/wsl/lib/{name}", "\x7fELF")
    write(tmp_path, "/etc/ld.so.conf.d/ld.wsl.conf", "/usr/lib/wsl/lib\n")
    bin_dir = tmp_path / "bin"
    ldconfig = fake_program(
        bin_dir,
        "ldconfig",
        FakeCall(argv=("-p",), stdout=OUTPUTS / "ldconfig-p-wsl-no-unversioned-libcuda.txt"),
    )
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=tmp_path, system="Linux"))
    assert ldconfig.calls() == [("-p",)]
    assert facts.loader_libcuda == "/usr/lib/wsl/lib/libcuda.so.1"
    assert facts.loader_libcuda_unversioned is None
    assert "libcuda.so" in facts.wsl_libs
