"""The NVSwitch / Fabric Manager probe on fake HGX roots with fake systemctl and nv-fabricmanager programs."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.fabric import SHOW, collect, describe, parse_show, parse_version
from tests.conftest import OUTPUTS, FakeCall, fake_program, make_ctx
from tests.fakeroot import nodes, pci_function, write

FM_LOG = (
    "[Mar 15 2024 10:00:01] [INFO] [tid 2419] Fabric Manager version 550.54.14 is running with the following "
    "configuration options\n"
    "[Mar 15 2024 10:00:01] [ERROR] [tid 2419] fabric manager version is incompatible with NVSwitch driver. "
    "Please update with matching NVIDIA driver package\n"
)


def hgx_root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    nodes(root, "nvidia0", "nvidiactl", "nvidia-nvswitch0", "nvidia-nvswitch1", "nvidia-nvswitchctl")
    pci_function(root, "0000:05:00.0", "1af1", "0x068000", "nvidia-nvswitch")
    (root / "run/systemd/system").mkdir(parents=True)
    return root


def test_fabric_manager_failed_on_hgx(tmp_path: Path, bin_dir: Path) -> None:
    root = hgx_root(tmp_path)
    write(root, "/var/log/fabricmanager.log", FM_LOG)
    systemctl = fake_program(
        bin_dir, "systemctl", FakeCall(argv=SHOW, stdout=OUTPUTS / "systemctl-show-fabricmanager-failed.txt")
    )
    fm = fake_program(
        bin_dir,
        "nv-fabricmanager",
        FakeCall(argv=("--version",), stdout=OUTPUTS / "nv-fabricmanager-version-550.54.14.txt"),
    )
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=root, system="Linux"))
    assert systemctl.calls() == [SHOW] and fm.calls() == [("--version",)]
    assert facts.nvswitch_nodes == ("/dev/nvidia-nvswitch0", "/dev/nvidia-nvswitch1")
    assert facts.nvswitch_pci == ("0000:05:00.0",)
    assert facts.systemd and facts.unit_active_state == "failed" and facts.unit_file_state == "enabled"
    assert facts.version == "550.54.14" and facts.binary == str(fm)
    assert facts.log_errors == (FM_LOG.splitlines()[1],)
    assert describe(facts).summary == "2 NVSwitch(es) · Fabric Manager 550.54.14: failed"
    assert describe(facts).mark == "fail"


def test_fabric_manager_not_installed_on_an_nvswitch_node(tmp_path: Path, bin_dir: Path) -> None:
    root = hgx_root(tmp_path)
    not_found = "LoadState=not-found\nActiveState=inactive\nSubState=dead\nUnitFileState=\n"
    fake_program(bin_dir, "systemctl", FakeCall(argv=SHOW, stdout=not_found))
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=root, system="Linux"))
    assert facts.binary is None and facts.version is None
    assert facts.unit_load_state == "not-found" and facts.unit_file_state is None
    assert describe(facts).summary == "2 NVSwitch(es) · Fabric Manager not installed"


def test_a_hanging_systemctl_is_recorded(tmp_path: Path, bin_dir: Path) -> None:
    root = hgx_root(tmp_path)
    fake_program(bin_dir, "systemctl", FakeCall(argv=SHOW, sleep=30))
    facts = collect(make_ctx(env={"PATH": str(bin_dir)}, root=root, system="Linux"))
    assert facts.error is not None and "systemctl did not finish within 5 s" in facts.error


def test_no_nvswitch_no_fabric_manager_is_unavailable(tmp_path: Path) -> None:
    pci_function(tmp_path, "0000:01:00.0", "2204", "0x030000", "nvidia")
    with pytest.raises(ProbeUnavailable, match="not an NVSwitch system"):
        collect(make_ctx(env={"PATH": str(tmp_path / "bin")}, root=tmp_path, system="Linux"))


def test_parsers() -> None:
    assert parse_version((OUTPUTS / "nv-fabricmanager-version-550.54.14.txt").read_text()) == "550.54.14"
    assert parse_version("nv-fabricmanager: command not found") is None
    assert parse_show("garbage\n=x\nActiveState=active\n") == {"ActiveState": "active"}


def test_this_machine_says_unavailable() -> None:
    try:
        facts = collect(make_ctx(system="Linux"))
    except ProbeUnavailable as exc:
        assert str(exc).startswith("not an NVSwitch system")
        return
    assert facts.has_nvswitch or facts.binary
