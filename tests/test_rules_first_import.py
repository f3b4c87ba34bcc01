"""GD811 beyond its machine files: pip venvs, TensorFlow's build info, and two copies each side accepts."""

from __future__ import annotations

from typing import Any

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Finding
from gpudoctor.serde import from_data

LINUX = {"system": "Linux", "release": "6.8.0", "machine": "x86_64", "distro_id": "ubuntu"}
DRIVER = {
    "nvml_state": "ok",
    "driver_version": "550.54.14",
    "cuda_driver_version": "12.4",
    "gpus": [{"index": 0, "name": "NVIDIA RTX A5000", "compute_capability": "8.6"}],
}
SITE = "/opt/venv/lib/python3.11/site-packages"
WHEEL_CUDNN = f"{SITE}/nvidia/cudnn/lib/libcudnn.so.8"
SYSTEM_CUDNN = "/usr/lib/x86_64-linux-gnu/libcudnn.so.8"
TORCH_PIN = 'nvidia-cudnn-cu12==8.9.2.26; platform_system == "Linux" and platform_machine == "x86_64"'


def library(path: str, version: str, location: str) -> dict[str, Any]:
    return {"kind": "cudnn", "name": "libcudnn.so.8", "path": path, "version": version, "location": location}


def findings(jax_version: str = "0.4.25", **slots: Any) -> list[Finding]:
    """torch 2.1.2+cu121 loads its nvidia-cudnn-cu12 wheel; jaxlib (cuda12 local) the system's 8.9.7."""
    python = {
        "version": "3.11.7",
        "site_packages": [SITE],
        "distributions": [
            {"name": "torch", "version": "2.1.2+cu121", "requires": [TORCH_PIN]},
            {"name": "nvidia-cudnn-cu12", "version": "8.9.2.26"},
            {"name": "jax", "version": jax_version},
            {"name": "jaxlib", "version": f"{jax_version}+cuda12.cudnn89"},
        ],
    }
    facts = {
        "platform": LINUX,
        "driver": DRIVER,
        "python": python,
        "target": {"python": "/opt/venv/bin/python", "selected_by": "VIRTUAL_ENV"},
        "libraries": {
            "files": [library(WHEEL_CUDNN, "8.9.2", "pip-wheel"), library(SYSTEM_CUDNN, "8.9.7", "system")]
        },
        "torch": {
            "installed": True,
            "imported": True,
            "version": "2.1.2+cu121",
            "cuda_version": "12.1",
            "cudnn_version": 8902,
            "cuda_available": True,
            "loaded_libraries": [{"path": WHEEL_CUDNN, "kind": "cudnn"}],
        },
        "jax": {
            "installed": True,
            "imported": True,
            "jax_version": jax_version,
            "jaxlib_version": f"{jax_version}+cuda12.cudnn89",
            "devices": ["cuda:0"],
            "default_backend": "gpu",
            "loaded_libraries": [{"path": SYSTEM_CUDNN, "kind": "cudnn"}],
        },
        **slots,
    }
    report = diagnose(from_data(Facts, facts), load_matrix())
    assert not [o for o in report.outcomes if o.state == "crash"], report.outcomes
    return [f for f in report.findings if f.code == "GD811"]


def commands(finding: Finding) -> list[str]:
    return [c for fix in finding.fixes for c in fix.commands]


def test_pip_venv_torch_wheel_cudnn_below_what_jaxlib_checks_for() -> None:
    """jaxlib 0.4.25 (CUDA 12) checks for cuDNN >= 8.9.7; torch's pinned wheel is 8.9.2."""
    (found,) = findings()
    assert "PyTorch and JAX in this environment load different copies of libcudnn.so.8" in found.message
    assert f"8.9.2 {WHEEL_CUDNN}; 8.9.7 {SYSTEM_CUDNN}" in found.message
    assert "JAX needs ≥ 8.9.7, so import jax first" in found.message
    assert "Found cuDNN version 8902, but JAX was built against version 8907, which is newer" in found.why
    cmds = commands(found)
    assert 'python -c "import jax; print(jax.devices()); import torch"' in cmds
    # the own venv gets JAX's CUDA wheels, never PyPI's CPU-only `jax==0.4.25`
    assert "$HOME/venvs/jax/bin/python -m pip install 'jax[cuda12]==0.4.25'" in cmds
    assert "python -m pip uninstall -y jax" in cmds


def test_copies_each_framework_accepts_are_left_alone() -> None:
    """jax 0.4.26 (cuDNN >= 8.9.2) accepts torch's 8.9.2; torch (built 8.9) accepts the system's 8.9.7."""
    assert findings(jax_version="0.4.26") == []


def test_one_copy_for_both_is_fine() -> None:
    same = {"path": WHEEL_CUDNN, "kind": "cudnn"}
    jax = {"installed": True, "imported": True, "jax_version": "0.4.25", "loaded_libraries": [same]}
    assert findings(jax=jax) == []


def test_tensorflow_build_info_is_its_minimum() -> None:
    """TF 2.15 (built with cuDNN 8.9) beside a torch whose bundled cuDNN is 8.7: importing torch first breaks TF."""
    torch_lib = f"{SITE}/torch/lib/libcudnn.so.8"
    libraries = {
        "files": [library(torch_lib, "8.7.0", "framework"), library(WHEEL_CUDNN, "8.9.7", "pip-wheel")]
    }
    torch = {
        "installed": True,
        "imported": True,
        "version": "2.0.1",
        "cudnn_version": 8700,
        "loaded_libraries": [{"path": torch_lib, "kind": "cudnn"}],
    }
    tensorflow = {
        "installed": True,
        "imported": True,
        "version": "2.15.1",
        "build_cudnn_version": "8.9",
        "loaded_libraries": [{"path": WHEEL_CUDNN, "kind": "cudnn"}],
    }
    (found,) = findings(libraries=libraries, torch=torch, tensorflow=tensorflow, jax=None)
    assert "PyTorch and TensorFlow" in found.message and "TensorFlow needs ≥ 8.9" in found.message
    assert "Loaded runtime CuDNN library: 8.7.0 but source was compiled with: 8.9" in found.why
    assert any("import tensorflow;" in c for c in commands(found))


def test_a_framework_that_rejects_its_own_copy_is_left_to_its_own_rules() -> None:
    """JAX with only the 8.9.2 wheel in reach fails alone: GD7xx says so; GD811 is about the import order."""
    jax = {
        "installed": True,
        "imported": True,
        "jax_version": "0.4.25",
        "jaxlib_version": "0.4.25+cuda12.cudnn89",
        "loaded_libraries": [{"path": SYSTEM_CUDNN, "kind": "cudnn"}],
    }
    libraries = {
        "files": [library(WHEEL_CUDNN, "8.9.2", "pip-wheel"), library(SYSTEM_CUDNN, "8.9.0", "system")]
    }
    assert findings(jax=jax, libraries=libraries) == []
