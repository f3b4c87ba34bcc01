"""The parsers behind GD112 and GD210: GPU model names and CUDA error texts."""

from __future__ import annotations

import pytest

from gpudoctor.rules.cuda import STUB_SIGNS
from gpudoctor.rules.driver_cuda import COMPAT_UNSUPPORTED, DRIVER_MISMATCH, _compat_cuda, is_datacenter_gpu


@pytest.mark.parametrize(
    ("name", "datacenter"),
    [
        ("NVIDIA A100-SXM4-80GB", True),
        ("NVIDIA H100 80GB HBM3", True),
        ("NVIDIA L4", True),
        ("Tesla T4", True),
        ("Tesla K80", True),
        ("NVIDIA GeForce RTX 3090", False),
        ("GeForce GTX 1650", False),
        ("Quadro RTX 6000", False),
        ("NVIDIA RTX A6000", False),
        ("NVIDIA TITAN V", False),
        ("", None),
        ("NVIDIA Graphics Device", None),
        ("!!@@##", None),
    ],
)
def test_datacenter_gpu_names(name: str, datacenter: bool | None) -> None:
    assert is_datacenter_gpu(name) is datacenter


@pytest.mark.parametrize(
    "text",
    [
        "Error 34: CUDA driver is a stub library",
        "failed call to cuInit: CUDA_ERROR_STUB_LIBRARY: CUDA driver is a stub library",
        "cudaErrorStubLibrary",
    ],
)
def test_stub_signs(text: str) -> None:
    assert STUB_SIGNS.search(text)


@pytest.mark.parametrize("text", ["Error 340: something", "error 3: not initialized", "", "stubborn library"])
def test_not_stub_signs(text: str) -> None:
    assert not STUB_SIGNS.search(text)


def test_compat_and_mismatch_signs() -> None:
    assert COMPAT_UNSUPPORTED.search("Error 804: forward compatibility was attempted on non supported HW")
    assert COMPAT_UNSUPPORTED.search("CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE")
    assert DRIVER_MISMATCH.search(
        "Error 803: system has unsupported display driver / cuda driver combination"
    )
    assert DRIVER_MISMATCH.search("cuInit(0) failed: CUDA_ERROR_SYSTEM_DRIVER_MISMATCH")
    for text in ("Error 8040", "error 80", "", "driver 803.1 installed"):
        assert not COMPAT_UNSUPPORTED.search(text)
    assert not DRIVER_MISMATCH.search("Error 8031")


@pytest.mark.parametrize(
    ("path", "cuda"),
    [
        ("/usr/local/cuda-11.3/compat/libcuda.so.465.19.01", "11.3"),
        ("/usr/local/cuda-12.2/compat/lib.real/libcuda.so.1", "12.2"),
        ("/usr/local/cuda/compat/libcuda.so.1", None),
        ("/usr/local/cuda-11.3/compatibility/libcuda.so.1", None),
        ("", None),
    ],
)
def test_compat_cuda_from_path(path: str, cuda: str | None) -> None:
    assert _compat_cuda(path) == cuda
