"""One map from every framework's explicit lines to the root cause they name (hardware, #10.9).

Each sample is what the framework printed, where it prints it (quoted from users' logs and the frameworks'
sources: gpu_device.cc, torch/cuda/__init__.py, torch/backends/cudnn, jax/_src/xla_bridge.py,
xla/stream_executor/cuda/cuda_dnn.cc, tsl dso_loader.cc).
"""

from __future__ import annotations

from typing import Any

import pytest

from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.probes.jax import library_checks
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.views import FRAMEWORK_SIGNS, framework_cuda_errors, framework_signs
from gpudoctor.serde import from_data

REAL_LINES: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "TensorFlow",
        "gpu-outside-build",
        (
            "2019-03-08 10:40:24.349457: I tensorflow/core/common_runtime/gpu/gpu_device.cc:1469] Ignoring visible "
            "gpu device (device: 0, name: GeForce GT 730, pci bus id: 0000:01:00.0, compute capability: 3.5) with Cuda "
            "compute capability 3.5. The minimum required Cuda capability is 3.7."
        ),
        {"cc": "3.5", "minimum": "3.7"},
    ),
    (
        "PyTorch",
        "gpu-outside-build",
        (
            "\n    Found GPU0 Tesla K40m which is of cuda capability 3.5.\n    PyTorch no longer supports this GPU because "
            "it is too old.\n    The minimum cuda capability supported by this library is 3.7.\n    "
        ),
        {"cc": "3.5", "minimum": "3.7"},
    ),
    (
        "PyTorch",
        "gpu-outside-build",
        (
            "\nNVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current PyTorch "
            "installation.\nThe current PyTorch install supports CUDA capabilities sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 "
            "sm_90.\n"
        ),
        {"sm": "120"},
    ),
    (
        "JAX",
        "gpu-outside-build",
        (
            "Device 0 has CUDA compute capability 3.5 which is lower than the minimum supported compute capability 5.2. "
            "See https://jax.readthedocs.io/en/latest/installation.html#nvidia-gpu for more details"
        ),
        {"cc": "3.5", "minimum": "5.2"},
    ),
    (
        "PyTorch",
        "no-kernel-image",
        (
            "CUDA error: no kernel image is available for execution on the device\nCUDA kernel errors might be "
            "asynchronously reported at some other API call, so the stacktrace below might be incorrect."
        ),
        {},
    ),
    (
        "JAX",
        "no-kernel-image",
        (
            "INTERNAL: Failed to load in-memory CUBIN: CUDA_ERROR_NO_BINARY_FOR_GPU: no kernel image is available for "
            "execution on the device"
        ),
        {},
    ),
    (
        "TensorFlow",
        "cudnn-not-loaded",
        (
            "2021-03-02 12:11:53.226440: W tensorflow/stream_executor/platform/default/dso_loader.cc:60] Could not load "
            "dynamic library 'libcudnn.so.8'; dlerror: libcudnn.so.8: cannot open shared object file: No such file or "
            "directory"
        ),
        {"library": "libcudnn.so.8"},
    ),
    (
        "PyTorch",
        "cudnn-not-loaded",
        (
            "Could not load library libcudnn_cnn_infer.so.8. Error: libcuda.so: cannot open shared object file: No such "
            "file or directory"
        ),
        {"library": "libcudnn_cnn_infer.so.8"},
    ),
    ("JAX", "cudnn-not-loaded", "RuntimeError: Unable to load cuDNN. Is it installed?", {}),
    (
        "TensorFlow",
        "cudnn-version",
        (
            "2023-05-10 10:40:29.347210: E tensorflow/compiler/xla/stream_executor/cuda/cuda_dnn.cc:417] Loaded runtime "
            "CuDNN library: 8.1.0 but source was compiled with: 8.6.0.  CuDNN library needs to have matching major "
            "version and equal or higher minor version."
        ),
        {"loaded": "8.1.0", "built": "8.6.0"},
    ),
    (
        "JAX",
        "cudnn-version",
        (
            "RuntimeError: Found cuDNN version 8600, but JAX was built against version 8907, which is newer. The copy "
            "of cuDNN that is installed must be at least as new as the version against which JAX was built."
        ),
        {"found": "8600", "jax_built": "8907"},
    ),
    (
        "PyTorch",
        "cudnn-version",
        (
            "RuntimeError: cuDNN version incompatibility: PyTorch was compiled  against (8, 9, 2) but found runtime "
            "version (8, 7, 0). PyTorch already comes bundled with cuDNN. One option to resolving this error is to "
            "ensure PyTorch can find the bundled cuDNN. Looks like your LD_LIBRARY_PATH contains incompatible version "
            "of cudnn. Please either remove it from the path or install cudnn (8, 9, 2)"
        ),
        {"built": "(8, 9, 2)", "loaded": "(8, 7, 0)"},
    ),
]


@pytest.mark.parametrize(("framework", "cause", "line", "groups"), REAL_LINES)
def test_each_framework_line_maps_to_its_cause(
    framework: str, cause: str, line: str, groups: dict[str, str]
) -> None:
    rows = [s for s in FRAMEWORK_SIGNS if s.framework == framework and s.cause == cause]
    matches = [m for m in (row.pattern.search(line) for row in rows) if m is not None]
    assert matches, f"no {framework} row for {cause} reads: {line[:80]}"
    assert {k: v for k, v in matches[0].groupdict().items() if v is not None} == groups
    others = {
        s.cause
        for s in FRAMEWORK_SIGNS
        if s.framework == framework and s.cause != cause and s.pattern.search(line)
    }
    assert others <= {"cuda-error"}, f"{line[:60]} also maps to {others}"  # CUDA_ERROR_* names a code too


def test_every_cause_has_a_row_for_every_framework() -> None:
    table = {(s.framework, s.cause) for s in FRAMEWORK_SIGNS}
    causes = {s.cause for s in FRAMEWORK_SIGNS}
    assert causes == {
        "cuda-error",
        "gpu-outside-build",
        "no-kernel-image",
        "cudnn-not-loaded",
        "cudnn-version",
    }
    for framework in ("TensorFlow", "PyTorch", "JAX"):
        assert {c for f, c in table if f == framework} == causes, framework
    assert all(s.where for s in FRAMEWORK_SIGNS)


def context(slots: dict[str, Any]) -> RuleContext:
    return RuleContext(from_data(Facts, slots), load_matrix())


def test_one_cause_said_by_three_frameworks_is_read_once_per_framework() -> None:
    ctx = context(
        {
            "torch": {"installed": True, "imported": True, "cudnn_error": REAL_LINES[-1][2]},
            "tensorflow": {"installed": True, "imported": True, "log_lines": [REAL_LINES[-3][2]]},
            "jax": {"installed": True, "imported": True, "warnings": [REAL_LINES[-2][2]]},
        }
    )
    seen = framework_signs(ctx, "cudnn-version")
    assert [s.framework for s in seen] == ["TensorFlow", "JAX", "PyTorch"]
    assert framework_signs(ctx, "gpu-outside-build") == []
    assert framework_cuda_errors(ctx) == []  # a cuDNN check is no CUDA start-up error


def test_cuda_errors_come_only_from_what_a_framework_said_while_starting_cuda() -> None:
    ctx = context(
        {
            "torch": {
                "installed": True,
                "imported": False,
                "import_error": "OSError: CUDA_ERROR_UNKNOWN in an import path",  # not CUDA starting
                "warnings": [
                    (
                        "CUDA initialization: Unexpected error from cudaGetDeviceCount(). Did you run some cuda "
                        "functions before calling NumCudaDevices() that might have already set an error? Error 802: "
                        "system not yet initialized"
                    )
                ],
            },
            "jax": {
                "installed": True,
                "imported": True,
                "warnings": [
                    (
                        "Jax plugin configuration error: Exception when calling jax_plugins.xla_cuda12.initialize(): "
                        "RuntimeError: jaxlib/cuda/versions_helpers.cc:113: operation cuInit(0) failed: "
                        "CUDA_ERROR_NO_DEVICE"
                    )
                ],
            },
        }
    )
    assert [(f, e.code) for f, _, e in framework_cuda_errors(ctx)] == [("PyTorch", 802), ("JAX", 100)]


def test_jax_older_cudnn_spelling_is_a_library_check() -> None:
    (check,) = library_checks([REAL_LINES[10][2]])
    assert (check.name, check.installed, check.minimum, check.built) == ("cuDNN", "8.6.0", "8.9.7", "8.9.7")
    assert library_checks(["Found cuDNN version, but nothing"]) == ()
