"""The matrix against the recorded metadata of the released wheels (offline, on every run)."""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.specifiers import SpecifierSet

from gpudoctor.matrix import Matrix, load_matrix, parse_matrix
from gpudoctor.matrix_verify import (
    PackageRecord,
    Recording,
    load_recording,
    newer_releases,
    releases_to_record,
    set_last_verified,
    verify,
)

ROOT = Path(__file__).resolve().parents[1]
RECORDING = ROOT / "tests" / "data" / "matrix_recording"
TOOL = ROOT / "tools" / "verify_matrix.py"


@pytest.fixture(scope="module")
def recording() -> Recording:
    return load_recording(RECORDING)


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def test_the_recording_covers_every_framework(recording: Recording) -> None:
    assert {"tensorflow", "tensorflow-gpu", "torch", "jax", "jax-cuda12-plugin", "jax-cuda13-plugin"} <= set(
        recording.packages
    )
    tf = recording.get("tensorflow")
    assert tf is not None
    assert tf.releases["2.15.0"]["build_info"]["cuda_compute_capabilities"] == [
        "sm_50",
        "sm_60",
        "sm_70",
        "sm_75",
        "compute_80",
    ]
    for record in recording.packages.values():
        for version, release in record.releases.items():
            assert "+" not in version
            assert len(str(release)) < 16_000, f"{record.package} {version}: a few KB per release"


def test_the_matrix_agrees_with_the_recorded_wheels(matrix: Matrix, recording: Recording) -> None:
    result = verify(matrix, recording)
    assert result.lines == []
    assert result.disagree == 0
    assert result.agree > 250
    assert result.checked == result.agree + result.unverifiable


def _one_disagreement(matrix: Matrix, recording: Recording, pattern: str) -> None:
    result = verify(matrix, recording)
    assert result.disagree >= 1, result.lines
    assert len(result.lines) == result.disagree
    assert re.search(pattern, result.lines[0]), result.lines[0]


def test_an_edited_row_in_the_file_is_caught(recording: Recording) -> None:
    text = (ROOT / "compat_matrix.yaml").read_text(encoding="utf-8")
    assert text.count('nvidia-cudnn-cu12: "==8.9.4.25"') == 1
    edited = parse_matrix(text.replace('nvidia-cudnn-cu12: "==8.9.4.25"', 'nvidia-cudnn-cu12: "==8.9.5.30"'))
    _one_disagreement(
        edited, recording, r"^tensorflow 2\.15 and_cuda \(2\.15\.1\): .*==8\.9\.5\.30.*==8\.9\.4\.25"
    )


@pytest.mark.parametrize(
    ("section", "version", "change", "pattern"),
    [
        (
            "tensorflow",
            "2.15",
            {"python": SpecifierSet(">=3.9,<3.13")},
            r"^tensorflow 2\.15 python: matrix \[.*3\.12",
        ),
        (
            "tensorflow",
            "2.0",
            {"gpu_packages": ("tensorflow", "tensorflow-gpu")},
            r"^tensorflow 2\.0 gpu_packages",
        ),
        ("torch", "2.15", {"python": SpecifierSet(">=3.11,<3.15")}, r"^torch 2\.15 python"),
        (
            "torch",
            "2.11",
            {"pypi_default_linux": "cu126"},
            r"^torch 2\.11 pypi_default_linux \(2\.11\.0\): matrix cu126",
        ),
        (
            "jax",
            "0.11.2",
            {"min_cudnn": {12: "9.8", 13: "9.12"}},
            r"^jax 0\.11\.2…<0\.12\.0 min_cudnn cuda12: matrix 9\.8",
        ),
    ],
)
def test_a_row_changed_to_contradict_a_wheel_is_one_disagreement(
    matrix: Matrix, recording: Recording, section: str, version: str, change: dict[str, object], pattern: str
) -> None:
    rows = getattr(matrix, section)
    changed = tuple(dataclasses.replace(r, **change) if r.version == version else r for r in rows)
    assert changed != rows
    rows_changed: dict[str, Any] = {section: changed}
    _one_disagreement(dataclasses.replace(matrix, **rows_changed), recording, pattern)


def test_a_tensorflow_build_changed_to_contradict_build_info(matrix: Matrix, recording: Recording) -> None:
    rows = tuple(
        dataclasses.replace(
            r, linux=dataclasses.replace(r.linux, compute_capabilities=("sm_60", "compute_80"))
        )
        if r.version == "2.17" and r.linux
        else r
        for r in matrix.tensorflow
    )
    _one_disagreement(
        dataclasses.replace(matrix, tensorflow=rows), recording, r"^tensorflow 2\.17 linux compute"
    )


def test_releases_newer_than_the_matrix_are_listed(matrix: Matrix) -> None:
    fake = Recording(
        {
            "torch": PackageRecord("torch", "2026-12-01", {"3.12": ["2.15.0", "2.16.0"]}, {}),
            "jax": PackageRecord("jax", "2026-12-01", {"3.12": ["0.12.0", "0.13.1"]}, {}),
        }
    )
    assert newer_releases(matrix, fake) == [
        "newer on the index than the matrix knows: torch 2.16.0",
        "newer on the index than the matrix knows: jax 0.13.1",
    ]


def test_which_releases_are_recorded(matrix: Matrix) -> None:
    listed = {"3.11": ["2.0.0", "2.0.1", "2.1.0", "2.2.0rc1"], "3.12": ["2.1.0", "2.2.0rc1", "1.0.0"]}
    assert releases_to_record(matrix, "torch", listed) == {
        "2.0.0": "3.11",
        "2.0.1": "3.11",
        "2.1.0": "3.12",
        "2.2.0rc1": "3.12",
    }
    assert set(releases_to_record(matrix, "jax", {"3.12": ["0.4.1", "0.4.2", "0.3.9"]})) == {"0.4.1", "0.4.2"}


def test_set_last_verified_rewrites_one_line(tmp_path: Path) -> None:
    copy = tmp_path / "compat_matrix.yaml"
    copy.write_text((ROOT / "compat_matrix.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    set_last_verified(copy, "2031-01-02", "checked 3, agree 3, disagree 0, unverifiable 0")
    text = copy.read_text(encoding="utf-8")
    assert text.count("last_verified:") == 1
    assert load_matrix(str(copy)).last_verified == (
        "2031-01-02 (tools/verify_matrix.py: checked 3, agree 3, disagree 0, unverifiable 0)"
    )


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_matrix_tool", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_info_is_read_without_running_it() -> None:
    tool = _tool()
    new = tool._build_info(
        "import collections\nbuild_info = collections.OrderedDict([('cuda_version', '12.2'), "
        "('cuda_compute_capabilities', ['sm_50', 'compute_80']), ('is_cuda_build', True)])\n"
    )
    assert new == {
        "cuda_version": "12.2",
        "cuda_compute_capabilities": ["sm_50", "compute_80"],
        "is_cuda_build": True,
    }
    old = tool._build_info("is_rocm_build = False\nis_cuda_build = True\n\ncuda_version_number = '10'\n")
    assert old == {"is_rocm_build": False, "is_cuda_build": True, "cuda_version_number": "10"}
    assert tool._build_info("import os\nos.system('echo no')\nx = os.getcwd()\n") == {}


def test_the_tool_offline_ends_with_the_tally() -> None:
    done = subprocess.run(
        [sys.executable, str(TOOL)], capture_output=True, text=True, timeout=300, check=False, cwd=ROOT
    )
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"checked (\d+), agree (\d+), disagree 0, unverifiable (\d+)", last), done.stdout
    assert done.returncode == 0, done.stderr
