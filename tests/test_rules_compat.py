"""The TensorFlow/CUDA compatibility rules (GD111, GD2xx, GD41x, GD51x): parsers and cases that
machine files cannot express compactly."""

from __future__ import annotations

from typing import Any

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts, LibraryFile
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Finding, Report
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.cuda import runtime_version
from gpudoctor.rules.views import (
    and_cuda_pins,
    normalise_cuda,
    normalise_cudnn,
    normalise_targets,
    python_range,
    tf_build,
)
from gpudoctor.serde import from_data

LINUX = {"system": "Linux", "release": "6.5.0", "machine": "x86_64", "distro_id": "ubuntu"}
T4 = {
    "nvml_state": "ok",
    "driver_version": "550.54.14",
    "cuda_driver_version": "12.4",
    "gpus": [{"index": 0, "name": "Tesla T4", "compute_capability": "7.5"}],
}


def facts(**slots: Any) -> Facts:
    return from_data(Facts, slots)


def run(**slots: Any) -> Report:
    return diagnose(facts(**slots), load_matrix())


def found(report: Report, code: str) -> list[Finding]:
    assert not [o for o in report.outcomes if o.state == "crash"], report.outcomes
    return [f for f in report.findings if f.code == code]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("12.2", "12.2"),
        ("64_112", "11.2"),
        ("112", "11.2"),
        ("12.5.1", "12.5"),
        ("10", "10"),
        (" 11.8 ", "11.8"),
        ("", None),
        ("twelve", None),
        ("12.x", None),
        ("64_", None),
        (None, None),
    ],
)
def test_normalise_cuda(raw: str | None, expected: str | None) -> None:
    assert normalise_cuda(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("8", "8"),
        ("64_8", "8"),
        ("5105", "5.1.5"),
        ("6021", "6.0.21"),
        ("90300", "9.3.0"),
        ("8.9.4.", "8.9.4"),
        ("8.1.0", "8.1.0"),
        ("v8", None),
        ("", None),
        (None, None),
    ],
)
def test_normalise_cudnn(raw: str | None, expected: str | None) -> None:
    assert normalise_cudnn(raw) == expected


def test_normalise_targets_reads_both_spellings_and_drops_garbage() -> None:
    assert normalise_targets(("sm_35", "COMPUTE_80", "sm_90a")) == ("sm_35", "compute_80", "sm_90a")
    assert normalise_targets(("3.5", "70")) == ("sm_35", "compute_35", "sm_70", "compute_70")
    assert normalise_targets(("bogus", "sm_x", "", "sm_35", "sm_35")) == ("sm_35",)


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("cudart64_101.dll", None, "10.1"),
        ("cudart64_110.dll", None, "11.x"),
        ("CUDART64_100.DLL", None, "10.0"),
        ("libcudart.so.10.2", None, "10.2"),
        ("libcudart.so.11.0", None, "11.x"),
        ("libcudart.so.12", None, "12.x"),
        ("libcudart.so.12", "12.4.127", "12.4.127"),
        ("cudart.lib", None, "unknown version"),
    ],
)
def test_runtime_version(name: str, version: str | None, expected: str) -> None:
    assert runtime_version(LibraryFile(kind="cudart", name=name, version=version)) == expected


def test_python_range() -> None:
    from packaging.specifiers import SpecifierSet

    assert python_range(SpecifierSet(">=3.9,<3.13")) == "3.9–3.12"
    assert python_range(SpecifierSet("==3.11.*")) == "3.11"
    assert python_range(SpecifierSet(">=4")) == ">=4"


def _ctx(**slots: Any) -> RuleContext:
    return RuleContext(facts=facts(**slots), matrix=load_matrix())


def test_and_cuda_pins_come_from_the_installed_metadata_and_skip_bad_lines() -> None:
    requires = [
        'nvidia-cudnn-cu12==8.9.7.29; extra == "and-cuda"',
        'nvidia-nccl-cu12==2.19.3; extra == "and-cuda" and sys_platform == "linux"',
        'nvidia-cublas-cu12==12.3.4.1; extra == "other"',
        "nvidia-cufft-cu12==11.0.12.1",
        'nvidia-curand-cu12==10.3.4.107; extra == "and-cuda" and nonsense_name == "x"',
        "this is ;; not a requirement",
        'tensorrt==8.6.1; extra == "and-cuda"',
    ]
    ctx = _ctx(
        platform=LINUX,
        python={
            "version": "3.11.7",
            "distributions": [{"name": "tensorflow", "version": "2.16.1", "requires": requires}],
        },
        tensorflow={"installed": True, "version": "2.16.1"},
    )
    build = tf_build(ctx)
    assert build is not None
    pins, source = and_cuda_pins(ctx, build)
    assert {name: str(spec) for name, spec in pins.items()} == {
        "nvidia-cudnn-cu12": "==8.9.7.29",
        "nvidia-nccl-cu12": "==2.19.3",
    }
    assert "Requires-Dist of tensorflow 2.16.1" in source


def test_and_cuda_pins_fall_back_to_the_matrix() -> None:
    ctx = _ctx(
        platform=LINUX,
        python={"version": "3.11.7", "distributions": [{"name": "tensorflow", "version": "2.18.0"}]},
    )
    build = tf_build(ctx)
    assert build is not None
    pins, source = and_cuda_pins(ctx, build)
    assert str(pins["nvidia-cudnn-cu12"]) == "==9.3.0.75"
    assert "matrix" in source


def test_gd412_patch_drift_with_a_working_gpu_is_a_warning() -> None:
    """Facts without TensorFlow's Requires-Dist (a facts file saved before the survey kept it): GD412
    judges the wheels against the matrix's copy of the [and-cuda] pins."""
    report = run(
        platform=LINUX,
        driver=T4,
        python={
            "version": "3.11.7",
            "distributions": [
                {"name": "tensorflow", "version": "2.15.1"},
                {"name": "nvidia-cublas-cu12", "version": "12.2.5.7"},
                {"name": "nvidia-cuda-runtime-cu12", "version": "12.2.140"},
            ],
        },
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.15.1",
            "is_cuda_build": True,
            "gpus": ["/physical_device:GPU:0"],
        },
    )
    [finding] = found(report, "GD412")
    assert finding.severity.value == "warning"
    assert "nvidia-cublas-cu12 12.2.5.7" in finding.message
    assert "matrix" in " ".join(finding.seen)


def test_gd412_leaves_tensorflows_own_pins_to_gd801() -> None:
    """One root cause, one finding: with TensorFlow's own [and-cuda] Requires-Dist in the facts, GD801
    reports the drift (with every framework's pins in view) and GD412 says nothing."""
    report = run(
        platform=LINUX,
        driver=T4,
        python={
            "version": "3.11.7",
            "distributions": [
                {
                    "name": "tensorflow",
                    "version": "2.15.1",
                    "requires": [
                        'nvidia-cublas-cu12==12.2.5.6; extra == "and-cuda"',
                        'nvidia-cuda-runtime-cu12==12.2.140; extra == "and-cuda"',
                    ],
                },
                {"name": "nvidia-cublas-cu12", "version": "12.2.5.7"},
                {"name": "nvidia-cuda-runtime-cu12", "version": "12.2.140"},
            ],
        },
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.15.1",
            "is_cuda_build": True,
            "gpus": ["/physical_device:GPU:0"],
        },
    )
    assert found(report, "GD412") == []
    [finding] = found(report, "GD801")
    assert finding.severity.value == "warning"
    assert "nvidia-cublas-cu12 12.2.5.7" in finding.message


def test_gd111_trusts_cudas_own_complaint_over_the_table() -> None:
    report = run(
        platform=LINUX,
        driver={**T4, "driver_version": "560.35.03"},
        python={"version": "3.11.7", "distributions": [{"name": "tensorflow", "version": "2.15.1"}]},
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.15.1",
            "is_cuda_build": True,
            "build_cuda_version": "12.2",
            "log_lines": ["CUDA driver version is insufficient for CUDA runtime version"],
        },
    )
    [finding] = found(report, "GD111")
    assert finding.severity.value == "error"
    assert "CUDA itself reports NVIDIA driver 560.35.03" in finding.message
    assert "535.54.03" in finding.message


def test_gd111_in_wsl_uses_the_windows_driver_numbers() -> None:
    report = run(
        platform={**LINUX, "wsl": 2, "windows_build": 22631, "wsl_libs": ["libcuda.so.1"]},
        driver={**T4, "driver_version": "527.41", "cuda_driver_version": "12.0"},
        python={"version": "3.11.7", "distributions": [{"name": "tensorflow", "version": "2.15.1"}]},
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.15.1",
            "is_cuda_build": True,
            "build_cuda_version": "12.2",
            "gpus": ["/physical_device:GPU:0"],
        },
    )
    [finding] = found(report, "GD111")
    assert finding.severity.value == "info"
    assert "536.25" in finding.message  # CUDA 12.2's Windows minimum, not Linux's 535.54.03


@pytest.mark.parametrize("driver_version", ["", "garbage", "5xx.1"])
def test_gd111_ignores_unparseable_driver_versions(driver_version: str) -> None:
    report = run(
        platform=LINUX,
        driver={**T4, "driver_version": driver_version},
        tensorflow={"installed": True, "imported": True, "version": "2.15.1", "is_cuda_build": True},
    )
    assert found(report, "GD111") == []


def test_gd414_skips_garbage_compute_capabilities_and_unknown_gpu_names() -> None:
    report = run(
        platform=LINUX,
        driver={
            **T4,
            "gpus": [
                {"index": 0, "name": "Mystery GPU", "compute_capability": "x.y"},
                {"index": 1, "name": "Another Mystery"},
            ],
        },
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.17.0",
            "is_cuda_build": True,
            "build_compute_capabilities": ["sm_60", "compute_90"],
        },
    )
    assert found(report, "GD414") == []
    assert report.outcome("GD414") is not None and report.outcome("GD414").state == "pass"  # type: ignore[union-attr]


def test_gd414_uses_the_matrix_when_tensorflow_cannot_say_and_nvml_gives_no_capability() -> None:
    report = run(
        platform=LINUX,
        driver={**T4, "gpus": [{"index": 0, "name": "Tesla K80"}]},
        python={"version": "3.11.7", "distributions": [{"name": "tensorflow", "version": "2.15.1"}]},
        tensorflow={"installed": True, "imported": True, "version": "2.15.1", "is_cuda_build": True},
    )
    [finding] = found(report, "GD414")
    assert finding.severity.value == "error"
    assert "compute capability 3.7" in finding.message
    assert "TensorFlow 2.14" in finding.message  # its sm_35 SASS runs on 3.7


def test_gd413_info_when_no_release_supports_the_python_yet() -> None:
    report = run(platform=LINUX, python={"version": "3.20.1", "distributions": []})
    [finding] = found(report, "GD413")
    assert finding.severity.value == "info"
    assert "Python 3.20" in finding.message
    assert report.outcome("GD413").state == "fail"  # type: ignore[union-attr]


def test_gd413_is_quiet_when_tensorflow_imports_on_an_unlisted_python() -> None:
    report = run(
        platform=LINUX,
        python={"version": "3.13.1", "distributions": [{"name": "tensorflow", "version": "2.18.0"}]},
        tensorflow={"installed": True, "imported": True, "version": "2.18.0"},
    )
    assert found(report, "GD413") == []


def test_gd205_on_windows_puts_the_folder_on_path() -> None:
    report = run(
        platform={"system": "Windows", "machine": "AMD64", "windows_build": 19045},
        driver=T4,
        libraries={
            "files": [
                {
                    "kind": "cudnn",
                    "name": "cudnn64_8.dll",
                    "location": "other",
                    "path": "D:\\sdk\\cudnn-8.1\\bin\\cudnn64_8.dll",
                }
            ]
        },
        python={
            "version": "3.10.11",
            "origin": "system",
            "distributions": [{"name": "tensorflow", "version": "2.10.1"}],
        },
        tensorflow={
            "installed": True,
            "imported": True,
            "version": "2.10.1",
            "is_cuda_build": True,
            "missing_libraries": ["cudnn64_8.dll"],
        },
    )
    [finding] = found(report, "GD205")
    assert finding.fixes[0].shell == "powershell"
    assert '$env:PATH = "D:\\sdk\\cudnn-8.1\\bin;$env:PATH"' in finding.fix_commands
    assert found(report, "GD202") == []  # present on disk: a path problem, not a version problem


def test_gd206_on_windows_sets_cuda_path() -> None:
    v118 = "C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v11.8"
    v124 = "C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA\\v12.4"
    report = run(
        platform={"system": "Windows", "machine": "AMD64"},
        toolkit={
            "installs": [
                {"path": v118, "version": "11.8.89", "found_via": ["PATH"], "nvcc": v118 + "\\bin\\nvcc.exe"},
                {
                    "path": v124,
                    "version": "12.4.131",
                    "found_via": ["CUDA_PATH"],
                    "nvcc": v124 + "\\bin\\nvcc.exe",
                },
            ],
            "nvcc_on_path": v118 + "\\bin\\nvcc.exe",
            "cuda_home": v124,
            "cuda_home_var": "CUDA_PATH",
        },
    )
    [finding] = found(report, "GD206")
    assert f'$env:CUDA_PATH = "{v118}"' in finding.fix_commands


def test_gd206_is_quiet_when_every_role_names_the_same_toolkit() -> None:
    report = run(
        platform=LINUX,
        toolkit={
            "installs": [
                {"path": "/usr/local/cuda-12.4", "version": "12.4.131", "found_via": ["PATH", "CUDA_HOME"]},
                {"path": "/usr/local/cuda-11.8", "version": "11.8.89", "found_via": ["standard-location"]},
            ],
            "nvcc_on_path": "/usr/local/cuda-12.4/bin/nvcc",
            "cuda_home": "/usr/local/cuda-12.4/",
        },
    )
    assert found(report, "GD206") == []
    assert report.outcome("GD206").state == "pass"  # type: ignore[union-attr]


def test_rules_survive_garbage_versions_everywhere() -> None:
    report = run(
        platform={"system": "Linux", "wsl": 2, "windows_build": 1},
        driver={
            "nvml_state": "ok",
            "driver_version": "??",
            "cuda_driver_version": "x",
            "gpus": [{"name": "", "compute_capability": ""}],
        },
        toolkit={
            "installs": [{"path": "/a", "version": "?"}, {"path": "/b", "version": "!"}],
            "nvcc_on_path": "/a/bin/nvcc",
            "nvcc_version": "n/a",
            "cuda_home": "/b",
        },
        libraries={
            "files": [
                {
                    "kind": "cudnn",
                    "name": "libcudnn.so.x",
                    "version": "abc",
                    "loader_default": True,
                    "version_source": "call",
                }
            ]
        },
        conda={
            "is_target": True,
            "prefix": "/c",
            "packages": [{"name": "cudatoolkit", "version": "eleven"}, {"name": "cudnn", "version": ""}],
        },
        python={
            "version": "three",
            "distributions": [
                {
                    "name": "tensorflow",
                    "version": "2.15.1",
                    "requires": ["nvidia-cudnn-cu12==?; extra == 'and-cuda'"],
                }
            ],
        },
        tensorflow={
            "installed": True,
            "version": "2.15.1",
            "build_cuda_version": "cuda",
            "build_cudnn_version": "?",
            "build_compute_capabilities": ["sm_??"],
            "cudnn_loaded_version": "x",
            "cudnn_compiled_version": "y",
        },
    )
    crashed = [o for o in report.outcomes if o.state == "crash"]
    assert crashed == []
