"""The devices probe on fake roots (/dev, /sys, /proc) and on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpudoctor.facts import DeviceNode, KernelModule, PciDevice
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.devices import collect, describe, open_error
from tests.conftest import make_ctx
from tests.fakeroot import module, nodes, pci_function, write

MODULE_550 = "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.120  Fri Sep 13 10:10:01 UTC 2024\n"
UNREADABLE_SYSFS = Path("/sys/devices/system/cpu/online")  # mode 0444 and no store(): EACCES even for root


def test_hgx_node_with_gpus_nvswitches_and_modules(tmp_path: Path) -> None:
    root = tmp_path
    nodes(
        root,
        "nvidia0",
        "nvidia1",
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        "nvidia-nvswitch0",
        "nvidia-nvswitchctl",
    )
    write(root, "/dev/nvidia-caps/nvidia-cap1")
    write(root, "/dev/null-ish-not-nvidia")
    module(root, "nvidia", "550.120")
    module(root, "nvidia_uvm", "550.120")
    module(root, "nvidia_modeset", "550.120")
    write(
        root,
        "/proc/modules",
        "nvidia_uvm 1794048 0 - Live 0x0000000000000000\nnvidia_modeset 1441792 0 - Live 0x0\nnvidia 56807424 2 nvidia_uvm,nvidia_modeset, Live 0x0\n",
    )
    write(root, "/proc/driver/nvidia/version", MODULE_550)
    write(root, "/proc/driver/nvidia-nvswitch/devices/0000:05:00.0/information", "")
    pci_function(root, "0000:07:00.0", "20b2", "0x030200", "nvidia")
    pci_function(root, "0000:0f:00.0", "20b2", "0x030200", "nvidia")
    pci_function(root, "0000:05:00.0", "1af1", "0x068000", "nvidia-nvswitch")
    pci_function(root, "0000:07:00.1", "1aef", "0x040300", None)
    facts = collect(make_ctx(root=root, system="Linux"))
    assert [n.path for n in facts.nodes] == [
        "/dev/nvidia-nvswitch0",
        "/dev/nvidia-nvswitchctl",
        "/dev/nvidia-uvm",
        "/dev/nvidia-uvm-tools",
        "/dev/nvidia0",
        "/dev/nvidia1",
        "/dev/nvidiactl",
        "/dev/nvidia-caps/nvidia-cap1",
    ]
    assert all(n.opened for n in facts.nodes)
    assert facts.module("nvidia") == KernelModule(name="nvidia", loaded=True, version="550.120")
    assert facts.module("nvidia_drm") == KernelModule(name="nvidia_drm", loaded=False)
    assert facts.module("nouveau") == KernelModule(name="nouveau", loaded=False)
    assert facts.pci == (
        PciDevice(
            address="0000:05:00.0",
            device_id="10de:1af1",
            pci_class="0x068000",
            kind="nvswitch",
            driver="nvidia-nvswitch",
        ),
        PciDevice(
            address="0000:07:00.0", device_id="10de:20b2", pci_class="0x030200", kind="gpu", driver="nvidia"
        ),
        PciDevice(
            address="0000:07:00.1", device_id="10de:1aef", pci_class="0x040300", kind="other", driver=None
        ),
        PciDevice(
            address="0000:0f:00.0", device_id="10de:20b2", pci_class="0x030200", kind="gpu", driver="nvidia"
        ),
    )
    assert facts.nvswitch_proc == ("0000:05:00.0",)
    assert facts.proc_driver_version == MODULE_550.strip()
    assert describe(facts).summary == (
        "2 NVIDIA GPU(s) on PCI, 1 NVSwitch(es) · 8 device node(s) · modules: nvidia, nvidia_uvm, nvidia_modeset"
    )
    assert describe(facts).mark == "ok"


def test_uvm_never_loaded_and_a_gpu_no_driver_binds(tmp_path: Path) -> None:
    root = tmp_path
    nodes(root, "nvidia0", "nvidiactl")
    module(root, "nvidia", "550.120")
    pci_function(root, "0000:01:00.0", "1004", "0x030000", None)  # GTX 780: the 550 driver ignores it
    pci_function(root, "0000:02:00.0", "2204", "0x030000", "nvidia")
    facts = collect(make_ctx(root=root, system="Linux"))
    assert facts.node("/dev/nvidia-uvm") is None
    assert facts.module("nvidia_uvm") == KernelModule(name="nvidia_uvm", loaded=False)
    assert [d.driver for d in facts.pci] == [None, "nvidia"]
    assert describe(facts).mark == "warn"


@pytest.mark.skipif(open_error(UNREADABLE_SYSFS) is None, reason="this kernel lets us write that sysfs file")
def test_a_node_this_process_may_not_open(tmp_path: Path) -> None:
    nodes(tmp_path, "nvidiactl")
    (tmp_path / "dev/nvidia0").symlink_to(UNREADABLE_SYSFS)
    facts = collect(make_ctx(root=tmp_path, system="Linux"))
    assert facts.node("/dev/nvidia0") == DeviceNode(
        path="/dev/nvidia0", opened=False, error="EACCES: Permission denied"
    )
    assert facts.node("/dev/nvidiactl") == DeviceNode(path="/dev/nvidiactl", opened=True)
    assert "1 not openable" in describe(facts).summary


def test_a_dangling_node_is_recorded_not_raised(tmp_path: Path) -> None:
    (tmp_path / "dev").mkdir()
    (tmp_path / "dev/nvidia-uvm").symlink_to(tmp_path / "nowhere")
    facts = collect(make_ctx(root=tmp_path, system="Linux"))
    assert facts.nodes == (
        DeviceNode(path="/dev/nvidia-uvm", opened=False, error="ENOENT: No such file or directory"),
    )


def test_modules_from_sys_module_when_proc_modules_is_absent(tmp_path: Path) -> None:
    module(tmp_path, "nouveau")
    facts = collect(make_ctx(root=tmp_path, system="Linux"))
    assert facts.module("nouveau") == KernelModule(name="nouveau", loaded=True)
    assert facts.pci_scanned is False


def test_not_linux() -> None:
    with pytest.raises(ProbeUnavailable):
        collect(make_ctx(system="Darwin"))


def test_this_machine_says_unavailable_cleanly() -> None:
    facts = collect(make_ctx(system="Linux"))
    if facts.module("nvidia") and facts.module("nvidia").loaded:  # type: ignore[union-attr]
        pytest.skip("this machine has the NVIDIA driver")
    assert facts.nodes == () and not any(m.loaded for m in facts.modules if m.name.startswith("nvidia"))
    assert describe(facts).summary.startswith("unavailable: no NVIDIA device nodes, no NVIDIA kernel module")
