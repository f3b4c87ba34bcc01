"""GD806's way forward never moves a framework backwards: the first NumPy 2 release only when the
installed one predates it, a known fix release when one exists, else only `numpy<2`."""

from __future__ import annotations

import dataclasses
import re

from packaging.version import Version

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from tests.test_machines import MACHINES, load_machine


def _gd806_torch_pins(facts: Facts) -> list[Version]:
    report = diagnose(facts, load_matrix())
    commands = [c for f in report.findings if f.code == "GD806" for fix in f.fixes for c in fix.commands]
    assert commands, "GD806 did not fire"
    return [Version(m) for c in commands for m in re.findall(r"torch==(\d+(?:\.\d+)*)", c)]


def _machine(name: str) -> Facts:
    return load_machine(MACHINES / f"{name}.yaml")[0]


def test_an_old_torch_is_offered_the_first_numpy2_release() -> None:
    assert _gd806_torch_pins(_machine("pyenv-GD806-torch-2.2-with-numpy-2")) == [Version("2.3")]


def test_windows_torch_2_4_0_gets_2_4_1_not_a_downgrade() -> None:
    assert _gd806_torch_pins(_machine("pyenv-GD806-windows-torch-2.4.0-numpy2")) == [Version("2.4.1")]


def test_a_release_past_the_first_numpy2_one_gets_no_framework_move() -> None:
    facts = _machine("pyenv-GD806-windows-torch-2.4.0-numpy2")
    assert facts.torch is not None and facts.platform is not None
    linux = dataclasses.replace(facts, platform=dataclasses.replace(facts.platform, system="Linux"))
    assert _gd806_torch_pins(linux) == []


def _gd806_torch_commands(facts: Facts) -> list[str]:
    report = diagnose(facts, load_matrix())
    return [
        c
        for f in report.findings
        if f.code == "GD806"
        for fix in f.fixes
        for c in fix.commands
        if "torch" in c
    ]


def test_every_torch_build_keeps_its_own_index_not_only_cuda_ones() -> None:
    """A `+cpu` (or `+rocm…`) torch moved to the first NumPy 2 release comes from its own index on
    PyTorch's server: from PyPI, Linux would get the default CUDA build instead."""
    facts = _machine("pyenv-GD806-torch-2.2-with-numpy-2")
    assert facts.torch is not None and facts.torch.version == "2.2.2+cu121"
    for variant in ("cpu", "rocm5.7", "cu121"):
        torch = dataclasses.replace(facts.torch, version=f"2.2.2+{variant}")
        (command,) = _gd806_torch_commands(dataclasses.replace(facts, torch=torch))
        assert f"--index-url https://download.pytorch.org/whl/{variant} " in command, command
    plain = dataclasses.replace(facts.torch, version="2.2.2")
    (command,) = _gd806_torch_commands(dataclasses.replace(facts, torch=plain))
    assert "download.pytorch.org" not in command
