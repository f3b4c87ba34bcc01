"""Fix commands that machine files cannot pin down: versioned driver installs per distribution, what
GD102 must not suggest, fixes that are separate alternatives, and options a re-run must keep."""

from __future__ import annotations

from typing import Any

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Finding, Fix
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import install_driver_fixes
from gpudoctor.serde import from_data


def facts(**slots: Any) -> Facts:
    return from_data(Facts, slots)


def findings(code: str, **slots: Any) -> list[Finding]:
    return [f for f in diagnose(facts(**slots), load_matrix()).findings if f.code == code]


def driver_fixes(platform: dict[str, Any], minimum: str | None) -> tuple[Fix, ...]:
    return install_driver_fixes(RuleContext(facts(platform=platform), load_matrix()), minimum=minimum)


UBUNTU = {"system": "Linux", "machine": "x86_64", "distro_id": "ubuntu", "distro_version_id": "24.04"}
DEBIAN12 = {"system": "Linux", "machine": "x86_64", "distro_id": "debian", "distro_version_id": "12"}


def test_ubuntu_installs_the_branch_a_minimum_needs() -> None:
    (fix,) = driver_fixes(UBUNTU, "580.65.06")
    assert fix.commands == ("sudo apt update", "sudo ubuntu-drivers install nvidia:580")
    assert "580.65.06" in fix.summary and fix.needs_reboot


def test_ubuntu_without_a_minimum_keeps_the_recommended_driver() -> None:
    (fix,) = driver_fixes(UBUNTU, None)
    assert fix.commands == ("sudo apt update", "sudo ubuntu-drivers install")


@pytest.mark.parametrize("minimum", ["580.65.06", "550.54.14"])
def test_debian_12_packages_only_535_so_newer_comes_from_nvidia(minimum: str) -> None:
    (fix,) = driver_fixes(DEBIAN12, minimum)
    assert fix.commands == (
        "wget https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/cuda-keyring_1.1-1_all.deb",
        "sudo dpkg -i cuda-keyring_1.1-1_all.deb",
        "sudo apt update",
        "sudo apt install cuda-drivers",
    )
    assert "535 series" in fix.summary and minimum in fix.summary


def test_debian_package_is_enough_when_its_series_meets_the_minimum() -> None:
    (fix,) = driver_fixes(DEBIAN12, "525.60.13")
    assert "nvidia-driver" in fix.commands[-1] and "cuda-drivers" not in " ".join(fix.commands)
    (trixie,) = driver_fixes({**DEBIAN12, "distro_version_id": "13"}, "550.54.14")
    assert "nvidia-driver" in trixie.commands[-1]


def test_debian_arm64_uses_nvidia_sbsa_repository() -> None:
    (fix,) = driver_fixes({**DEBIAN12, "machine": "aarch64"}, "580.65.06")
    assert "/repos/debian12/sbsa/cuda-keyring" in fix.commands[0]


@pytest.mark.parametrize("minimum", ["", "latest", "r580"])
def test_a_minimum_that_names_no_branch_falls_back_to_the_plain_install(minimum: str) -> None:
    (fix,) = driver_fixes(UBUNTU, minimum)
    assert fix.commands[-1] == "sudo ubuntu-drivers install"


def test_other_distributions_state_the_minimum() -> None:
    (fix,) = driver_fixes({"system": "Linux", "distro_id": "gentoo"}, "580.65.06")
    assert "580.65.06 or newer" in fix.summary


NO_PCI_GPU: dict[str, Any] = {
    "platform": {
        "system": "Linux",
        "release": "6.1.0",
        "distro_id": "debian",
        "secure_boot": False,
        "nvidia_pci_devices": [],
    },
    "driver": {
        "nvml_state": "driver_not_loaded",
        "nvml_message": "NVML Shared Library Not Found",
        "nvidia_smi": "/usr/bin/nvidia-smi",
        "nvidia_smi_error": "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.",
    },
}


def test_gd102_without_a_gpu_on_the_bus_does_not_suggest_modprobe() -> None:
    (finding,) = findings("GD102", **NO_PCI_GPU)
    assert "No NVIDIA GPU is visible on the PCI bus" in finding.message
    assert finding.message.count("not loaded") == 1
    assert not any("modprobe" in c for c in finding.fix_commands)
    assert "lspci -nn | grep -i nvidia" in finding.fix_commands


def test_gd102_shows_nvml_and_nvidia_smi_each_in_their_own_words() -> None:
    (finding,) = findings("GD102", **NO_PCI_GPU)
    assert finding.seen[0] == "NVML: library not found (NVML Shared Library Not Found)"
    assert finding.seen[1].startswith("nvidia-smi: NVIDIA-SMI has failed because it couldn't communicate")
    assert "NVIDIA GPU on the PCI bus: none" in finding.seen


def test_gd102_with_a_gpu_on_the_bus_loads_the_module_without_repeating_itself() -> None:
    slots = {
        **NO_PCI_GPU,
        "platform": {**NO_PCI_GPU["platform"], "nvidia_pci_devices": ["0000:01:00.0 10de:2204"]},
    }
    (finding,) = findings("GD102", **slots)
    assert finding.message == "The NVIDIA driver is installed but its kernel module is not loaded"
    assert "sudo modprobe nvidia" in finding.fix_commands


def test_gd102_unknown_nvml_message_is_shown_as_nvml_said_it() -> None:
    driver = {**NO_PCI_GPU["driver"], "nvml_message": "Something odd"}
    (finding,) = findings("GD102", platform=NO_PCI_GPU["platform"], driver=driver)
    assert finding.seen[0] == "NVML: Something odd"


@pytest.mark.parametrize(
    ("system", "unset", "keep"),
    [
        ("Linux", "unset CUDA_VISIBLE_DEVICES", "export CUDA_VISIBLE_DEVICES=0"),
        ("Windows", "Remove-Item Env:CUDA_VISIBLE_DEVICES", '$env:CUDA_VISIBLE_DEVICES = "0"'),
    ],
)
def test_gd301_unset_and_set_are_separate_alternatives(system: str, unset: str, keep: str) -> None:
    (finding,) = findings(
        "GD301",
        platform={"system": system},
        driver={"nvml_state": "ok", "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 3090"}]},
        environment={"variables": {"CUDA_VISIBLE_DEVICES": "-1"}},
    )
    assert finding.fixes[0].commands == (unset,)
    assert finding.fixes[1].commands == (keep,)


PROBE_TIMEOUT = [{"name": "torch", "state": "timeout", "detail": "no answer in 60 s", "seconds": 60.0}]


def test_gd001_rerun_keeps_the_python_the_user_chose() -> None:
    (finding,) = findings(
        "GD001",
        target={"python": "/opt/my envs/py311/bin/python", "selected_by": "--python"},
        platform={"system": "Linux"},
        probes=PROBE_TIMEOUT,
    )
    rerun = "gpudoctor check --python '/opt/my envs/py311/bin/python' --timeout 300 -v --save-facts gpudoctor-facts.json"
    assert finding.fixes[0].commands == (rerun,)


def test_gd001_rerun_needs_no_python_when_the_environment_chose_it() -> None:
    (finding,) = findings(
        "GD001",
        target={"python": "/home/me/venv/bin/python", "selected_by": "VIRTUAL_ENV"},
        probes=PROBE_TIMEOUT,
    )
    assert finding.fixes[0].commands == (
        "gpudoctor check --timeout 300 -v --save-facts gpudoctor-facts.json",
    )
