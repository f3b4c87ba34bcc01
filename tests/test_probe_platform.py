"""The platform probe over fake filesystem roots: WSL, containers, Secure Boot, modules, PCI devices."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpudoctor.facts import PlatformFacts
from gpudoctor.probes.platform import (
    collect,
    describe,
    parse_os_release,
    secure_boot_state,
    windows_build,
    wsl_version,
)
from tests.conftest import make_ctx, write_executable

WSL1_PROC_VERSION = (
    "Linux version 4.4.0-19041-Microsoft (Microsoft@Microsoft.com) (gcc version 5.4.0 (GCC) ) "
    "#1237-Microsoft Sat Sep 11 14:32:00 PST 2021\n"
)
WSL2_PROC_VERSION = (
    "Linux version 5.15.133.1-microsoft-standard-WSL2 (root@1c602f52c2e4) (gcc (GCC) 11.2.0, GNU ld (GNU "
    "Binutils) 2.37) #1 SMP Thu Oct 5 21:02:42 UTC 2023\n"
)
UBUNTU_OS_RELEASE = """\
PRETTY_NAME="Ubuntu 22.04.3 LTS"
NAME="Ubuntu"
VERSION_ID="22.04"
ID=ubuntu
ID_LIKE=debian
"""
SECURE_BOOT_VAR = "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c"


def write(root: Path, path: str, text: str | bytes = "") -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        target.write_bytes(text)
    else:
        target.write_text(text, encoding="utf-8")
    return target


def linux(root: Path, **env: str) -> PlatformFacts:
    return collect(make_ctx(root=root, system="Linux", env=env))


def test_bare_metal_ubuntu_with_nvidia_driver(tmp_path: Path) -> None:
    release = "6.5.0-14-generic"
    write(tmp_path, "/proc/sys/kernel/osrelease", release + "\n")
    write(tmp_path, "/proc/version", f"Linux version {release} (buildd@lcy02-amd64-080) #14~22.04.1-Ubuntu\n")
    write(tmp_path, "/etc/os-release", UBUNTU_OS_RELEASE)
    write(
        tmp_path, "/proc/modules", "nvidia_uvm 1519616 0 - Live 0x0\nnvidia 56479744 1 nvidia_uvm, Live 0x0\n"
    )
    write(tmp_path, f"/sys/firmware/efi/efivars/{SECURE_BOOT_VAR}", b"\x06\x00\x00\x00\x01")
    for node in ("nvidia0", "nvidiactl", "nvidia-uvm", "nvidia-uvm-tools"):
        write(tmp_path, f"/dev/{node}")
    (tmp_path / "dev/nvidia-caps").mkdir()
    for addr, vendor, device, cls in (
        ("0000:00:02.0", "0x8086", "0x3e9b", "0x030000"),  # Intel iGPU
        ("0000:01:00.0", "0x10de", "0x1d10", "0x030200"),  # NVIDIA 3D controller
        ("0000:01:00.1", "0x10de", "0x10fa", "0x040300"),  # NVIDIA HDMI audio: not a GPU
    ):
        write(tmp_path, f"/sys/bus/pci/devices/{addr}/vendor", vendor + "\n")
        write(tmp_path, f"/sys/bus/pci/devices/{addr}/device", device + "\n")
        write(tmp_path, f"/sys/bus/pci/devices/{addr}/class", cls + "\n")
    write(
        tmp_path,
        f"/lib/modules/{release}/modules.dep",
        "kernel/drivers/video/fbdev/core/fb.ko.zst:\nupdates/dkms/nvidia.ko.zst:\nupdates/dkms/nvidia-uvm.ko.zst:\n",
    )
    (tmp_path / f"var/lib/dkms/nvidia/535.104.05/{release}/x86_64").mkdir(parents=True)
    (tmp_path / "var/lib/dkms/nvidia/535.86.05/6.2.0-39-generic").mkdir(parents=True)
    (tmp_path / "usr/src/nvidia-535.104.05").mkdir(parents=True)
    (tmp_path / "usr/src/linux-headers-6.5.0-14-generic").mkdir(parents=True)

    facts = linux(tmp_path)
    assert facts.release == release
    assert facts.distro == "Ubuntu 22.04.3 LTS"
    assert (facts.distro_id, facts.distro_id_like, facts.distro_version_id) == (
        "ubuntu",
        ("debian",),
        "22.04",
    )
    assert facts.wsl == 0 and facts.container is None
    assert facts.secure_boot is True
    assert facts.nvidia_module_loaded is True and facts.nouveau_loaded is False
    assert facts.device_nodes == (
        "/dev/nvidia-caps",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia0",
        "/dev/nvidiactl",
    )
    assert facts.nvidia_pci_devices == ("0000:01:00.0 10de:1d10",)
    assert facts.nvidia_module_for_kernel is True
    assert facts.dkms_nvidia_built == ("535.104.05",)
    assert facts.nvidia_module_sources == ("535.104.05",)
    desc = describe(facts)
    assert desc.summary.startswith("Ubuntu 22.04.3 LTS · ")
    assert "Secure Boot on" in desc.details
    assert "NVIDIA PCI devices: 0000:01:00.0 10de:1d10" in desc.details


def test_module_not_built_for_running_kernel_and_nouveau(tmp_path: Path) -> None:
    write(tmp_path, "/proc/sys/kernel/osrelease", "4.15.0-45-generic\n")
    write(
        tmp_path, "/lib/modules/4.15.0-45-generic/modules.dep", "kernel/drivers/gpu/drm/nouveau/nouveau.ko:\n"
    )
    write(tmp_path, "/proc/modules", "nouveau 1724416 3 - Live 0x0\n")
    facts = linux(tmp_path)
    assert facts.nvidia_module_for_kernel is False
    assert facts.nouveau_loaded is True and facts.nvidia_module_loaded is False
    assert facts.nvidia_pci_devices is None  # no /sys/bus/pci: not scanned, not "no GPU"


def test_wsl1(tmp_path: Path) -> None:
    write(tmp_path, "/proc/version", WSL1_PROC_VERSION)
    write(tmp_path, "/proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n")
    facts = linux(tmp_path, WSL_DISTRO_NAME="Ubuntu-20.04")
    assert facts.wsl == 1
    assert facts.wsl_distro == "Ubuntu-20.04"
    assert "WSL1" in describe(facts).summary


def test_wsl2_with_host_driver_libraries(tmp_path: Path) -> None:
    write(tmp_path, "/proc/version", WSL2_PROC_VERSION)
    write(tmp_path, "/proc/sys/kernel/osrelease", "5.15.133.1-microsoft-standard-WSL2\n")
    write(tmp_path, "/dev/dxg")
    for name in ("libcuda.so", "libcuda.so.1", "libnvidia-ml.so.1", "libd3d12.so", "nvidia-smi"):
        write(tmp_path, f"/usr/lib/wsl/lib/{name}")
    facts = linux(tmp_path, WSL_DISTRO_NAME="Ubuntu")
    assert facts.wsl == 2
    assert facts.device_nodes == ("/dev/dxg",)
    assert facts.wsl_lib_dir == "/usr/lib/wsl/lib"
    assert facts.wsl_libs == ("libcuda.so", "libcuda.so.1", "libd3d12.so", "libnvidia-ml.so.1", "nvidia-smi")
    assert facts.secure_boot is None and facts.nvidia_pci_devices is None


@pytest.mark.parametrize(
    ("proc_version", "release", "dxg", "interop", "expected"),
    [
        (WSL1_PROC_VERSION, "4.4.0-19041-Microsoft", False, False, 1),
        (WSL2_PROC_VERSION, "5.15.133.1-microsoft-standard-WSL2", False, False, 2),
        (
            "Linux version 4.19.104-microsoft-standard (oe-user@oe-host)",
            "4.19.104-microsoft-standard",
            False,
            False,
            2,
        ),
        ("Linux version 5.4.72-microsoft-custom", "5.4.72-microsoft-custom", True, False, 2),
        ("Linux version 5.4.72-microsoft-custom", "5.4.72-microsoft-custom", False, True, 2),
        ("Linux version 6.5.0-14-generic (buildd@ubuntu)", "6.5.0-14-generic", False, False, 0),
        ("", "", False, False, 0),
    ],
)
def test_wsl_version(proc_version: str, release: str, dxg: bool, interop: bool, expected: int) -> None:
    assert wsl_version(proc_version, release, has_dxg=dxg, wsl_interop=interop) == expected


@pytest.mark.parametrize(
    ("files", "env", "expected"),
    [
        ({"/.dockerenv": ""}, {}, "docker"),
        ({"/run/.containerenv": 'engine="podman-4.9.3"\n'}, {}, "podman"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.96.0.1"}, "kubernetes"),
        ({"/proc/1/cgroup": "12:memory:/docker/3f2a9c0e\n"}, {}, "docker"),
        (
            {"/proc/1/cgroup": "0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-ab.scope\n"},
            {},
            "kubernetes",
        ),
        ({"/proc/1/cgroup": "0::/\n"}, {"container": "lxc"}, "lxc"),
        ({"/proc/1/cgroup": "0::/init.scope\n"}, {}, None),
    ],
)
def test_container_detection(
    tmp_path: Path, files: dict[str, str], env: dict[str, str], expected: str | None
) -> None:
    for path, text in files.items():
        write(tmp_path, path, text)
    assert linux(tmp_path, **env).container == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\x06\x00\x00\x00\x01", True),
        (b"\x06\x00\x00\x00\x00", False),
        (b"", None),
        (b"\x06\x00\x00", None),
        (b"\x06\x00\x00\x00\x07", None),
        (b"\x06\x00\x00\x00\x01\x01", None),
    ],
)
def test_secure_boot_variable(tmp_path: Path, data: bytes, expected: bool | None) -> None:
    assert secure_boot_state(data) is expected
    write(tmp_path, f"/sys/firmware/efi/efivars/{SECURE_BOOT_VAR}", data)
    assert linux(tmp_path).secure_boot is expected


def test_secure_boot_legacy_bios_and_masked_firmware(tmp_path: Path) -> None:
    bios = tmp_path / "bios"
    write(bios, "/sys/firmware/acpi/tables/DSDT", b"x")
    assert linux(bios).secure_boot is False
    masked = tmp_path / "masked"
    (masked / "sys/firmware").mkdir(parents=True)
    assert linux(masked).secure_boot is None
    efi_unreadable = tmp_path / "efi"
    (efi_unreadable / "sys/firmware/efi/efivars").mkdir(parents=True)
    assert linux(efi_unreadable).secure_boot is None
    old_kernel = tmp_path / "old"
    write(old_kernel, f"/sys/firmware/efi/vars/{SECURE_BOOT_VAR}/data", b"\x01")
    assert linux(old_kernel).secure_boot is True


def test_os_release_parser_bad_inputs() -> None:
    assert parse_os_release("") == {}
    assert parse_os_release("garbage line\n=novalue\nlower=case\n") == {}
    values = parse_os_release(
        'NAME="Fedora Linux"\nID=fedora\nVERSION_ID=39\nPRETTY_NAME=\'Fedora 39\'\nBROKEN="x\n'
    )
    assert values == {
        "NAME": "Fedora Linux",
        "ID": "fedora",
        "VERSION_ID": "39",
        "PRETTY_NAME": "Fedora 39",
        "BROKEN": '"x',
    }
    assert parse_os_release('ID_LIKE="rhel centos fedora"')["ID_LIKE"] == "rhel centos fedora"


def test_os_release_fallback_and_modules_from_sys(tmp_path: Path) -> None:
    write(tmp_path, "/usr/lib/os-release", 'NAME="Arch Linux"\nID=arch\n')
    (tmp_path / "sys/module/nvidia").mkdir(parents=True)
    facts = linux(tmp_path)
    assert facts.distro == "Arch Linux" and facts.distro_id == "arch" and facts.distro_id_like == ()
    assert facts.nvidia_module_loaded is True and facts.nouveau_loaded is False


def test_empty_root_gives_defaults_not_errors(tmp_path: Path) -> None:
    facts = linux(tmp_path)
    assert facts.system == "Linux"
    assert facts.distro is None and facts.wsl == 0 and facts.container is None
    assert facts.nouveau_loaded is None and facts.nvidia_module_loaded is None
    assert facts.device_nodes == () and facts.wsl_lib_dir is None and facts.nvidia_module_for_kernel is None
    assert describe(facts).mark == "ok"


def test_windows_build() -> None:
    assert windows_build("10.0.19045") == 19045
    assert windows_build("10.0.22631.2861") == 22631
    assert windows_build("") is None
    assert windows_build("Windows 10") is None


def test_describe_other_systems() -> None:
    windows = PlatformFacts(system="Windows", release="10", machine="AMD64", windows_build=19045)
    assert describe(windows).summary == "Windows 10 (build 19045) · AMD64"
    mac = PlatformFacts(system="Darwin", version="14.1", machine="arm64")
    assert describe(mac).summary == "macOS 14.1 · arm64"


def test_real_machine() -> None:
    facts = collect(make_ctx())
    assert facts.system
    assert describe(facts).summary
    if not facts.wsl and facts.tegra_release is None:  # ldconfig is asked only on WSL 2 and Jetson
        assert facts.loader_libcuda is None and facts.loader_libcuda_unversioned is None


def test_windows_display_adapters_from_powershell(bin_dir: Path) -> None:
    from gpudoctor.probes.platform import collect

    write_executable(
        bin_dir, "powershell", stdout="Intel(R) Iris(R) Xe Graphics\r\nNVIDIA GeForce RTX 3050 Laptop GPU\r\n"
    )
    facts = collect(make_ctx(env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, system="Windows"))
    assert facts.display_adapters == ("Intel(R) Iris(R) Xe Graphics", "NVIDIA GeForce RTX 3050 Laptop GPU")
    assert facts.nvidia_pci_devices == ("NVIDIA GeForce RTX 3050 Laptop GPU",)


def test_windows_without_powershell_answer_is_not_scanned(bin_dir: Path) -> None:
    from gpudoctor.probes.platform import collect

    write_executable(bin_dir, "powershell", stderr="Get-CimInstance : Access denied", exit_code=1)
    facts = collect(make_ctx(env={"PATH": f"{bin_dir}:/usr/bin:/bin"}, system="Windows"))
    assert facts.nvidia_pci_devices is None and facts.display_adapters == ()
    assert collect(make_ctx(env={"PATH": "/nonexistent"}, system="Windows")).nvidia_pci_devices is None
