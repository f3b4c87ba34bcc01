"""A whole HGX node faked at its outer edges only: a fake root (/dev, /sys, /proc, /run, /etc), fake
journalctl/systemctl/nv-fabricmanager programs that check their argv, and the gcc-built stand-in
libnvidia-ml.so.1. The real probes collect, the real rules judge: one root cause, one error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpudoctor.collect import collect
from gpudoctor.engine import diagnose
from gpudoctor.matrix import load_matrix
from gpudoctor.probes.devices import PROBE as DEVICES
from gpudoctor.probes.driver import PROBE as DRIVER
from gpudoctor.probes.fabric import PROBE as FABRIC
from gpudoctor.probes.fabric import SHOW
from gpudoctor.probes.kernel_log import JOURNALCTL
from gpudoctor.probes.kernel_log import PROBE as KERNEL_LOG
from gpudoctor.probes.platform import PROBE as PLATFORM
from tests.conftest import OUTPUTS, FakeCall, fake_program, make_ctx
from tests.fakeroot import module, nodes, pci_function, write
from tests.standin_nvml import build_standin_nvml, nvml_env

BUSES = ("18", "2a", "3a", "5d")


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_standin_nvml(tmp_path_factory.mktemp("standin-nvml"))


def hgx(tmp_path: Path, library: Path, fabric_state: str) -> object:
    root = tmp_path / "root"
    write(
        root,
        "/etc/os-release",
        'PRETTY_NAME="Ubuntu 22.04.4 LTS"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID="22.04"\n',
    )
    write(root, "/proc/sys/kernel/osrelease", "5.15.0-105-generic\n")
    write(
        root, "/proc/version", "Linux version 5.15.0-105-generic (buildd@lcy02-amd64-007) #115-Ubuntu SMP\n"
    )
    write(
        root,
        "/proc/driver/nvidia/version",
        "NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\n",
    )
    write(root, "/proc/modules", "nvidia_uvm 1794048 0 - Live 0x0\nnvidia 56807424 2 nvidia_uvm, Live 0x0\n")
    module(root, "nvidia", "550.54.15")
    module(root, "nvidia_uvm", "550.54.15")
    nodes(
        root,
        "nvidiactl",
        "nvidia-uvm",
        "nvidia-uvm-tools",
        *(f"nvidia{i}" for i in range(4)),
        *(f"nvidia-nvswitch{i}" for i in range(4)),
        "nvidia-nvswitchctl",
    )
    for bus in BUSES:
        pci_function(root, f"0000:{bus}:00.0", "2330", "0x030200", "nvidia")
    for i, bus in enumerate(("05", "06", "07", "08")):
        pci_function(root, f"0000:{bus}:00.0", "22a3", "0x068000", "nvidia-nvswitch")
        write(root, f"/proc/driver/nvidia-nvswitch/devices/0000:{bus}:00.0/information", f"Minor: {i}\n")
    (root / "run/systemd/system").mkdir(parents=True)
    bin_dir = tmp_path / "bin"
    fake_program(bin_dir, "journalctl", FakeCall(argv=JOURNALCTL, stdout=OUTPUTS / "journalctl-k-xid79.txt"))
    show = OUTPUTS / f"systemctl-show-fabricmanager-{fabric_state}.txt"
    fake_program(bin_dir, "systemctl", FakeCall(argv=SHOW, stdout=show))
    fake_program(
        bin_dir,
        "nv-fabricmanager",
        FakeCall(argv=("--version",), stdout="Fabric Manager version is : 550.54.15\n"),
    )
    spec: dict[str, object] = {"init": 0, "driver": "550.54.15", "cuda": 12040, "count": len(BUSES)}
    for i, bus in enumerate(BUSES):
        spec |= {
            f"gpu{i}.name": "NVIDIA H100 80GB HBM3",
            f"gpu{i}.uuid": f"GPU-0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f{i}",
            f"gpu{i}.bus": f"00000000:{bus.upper()}:00.0",
            f"gpu{i}.devid": "0x233010DE",
            f"gpu{i}.cc": "9.0",
            f"gpu{i}.total": 85520809984,
            f"gpu{i}.persist": 1,
            f"gpu{i}.mig": "0,0",
        }
    env = nvml_env(library, tmp_path / "spec.txt", spec)
    env["PATH"] = f"{bin_dir}:{os.defpath}"
    return make_ctx(env=env, root=root, system="Linux")


def run(ctx: object) -> list[tuple[str, str]]:
    facts = collect(ctx, (PLATFORM, DRIVER, DEVICES, FABRIC, KERNEL_LOG))  # type: ignore[arg-type]
    assert all(p.state == "ok" for p in facts.probes), facts.probes
    report = diagnose(facts, load_matrix())
    assert not [o for o in report.outcomes if o.state == "crash"]
    return [(f.code, f.severity.value) for f in report.findings]


def test_hgx_node_with_fabric_manager_failed(tmp_path: Path, library: Path) -> None:
    found = run(hgx(tmp_path, library, "failed"))
    errors = [code for code, severity in found if severity == "error"]
    # The stopped Fabric Manager is one error; the kernel log's Xid 79 this boot, on a bus address NVML
    # no longer lists, is a second root cause of its own.
    assert errors == ["GD137", "GD141"], found


def test_hgx_node_healthy_apart_from_its_logged_xid(tmp_path: Path, library: Path) -> None:
    found = run(hgx(tmp_path, library, "running"))
    assert [code for code, _ in found] == ["GD137"], found
