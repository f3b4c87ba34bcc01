"""GD805 and GD810 on cases machine files cannot express compactly: each framework's own search order for
ptxas, libdevice and the extension-build toolkit (XLA, JAX's `_cuda_path`, PyTorch's `_find_cuda_home`)."""

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
    "driver_version": "575.57.08",
    "cuda_driver_version": "12.9",
    "gpus": [{"index": 0, "name": "NVIDIA GeForce RTX 4090", "compute_capability": "8.9"}],
}
SITE = "/home/me/.venv/lib/python3.11/site-packages"
JAX_CU12 = 'nvidia-cuda-nvcc-cu12>=12.6.85; sys_platform == "linux" and extra == "with-cuda"'
JAX: Any = [
    {"name": "jax", "version": "0.10.2"},
    {"name": "jaxlib", "version": "0.10.2"},
    {"name": "jax-cuda12-plugin", "version": "0.10.2", "requires": [JAX_CU12]},
]
PREFIX: Any = {"via": "prefix", "path": "/home/me/.venv"}
WHEEL12: Any = {
    "via": "wheel nvidia/cuda_nvcc",
    "path": f"{SITE}/nvidia/cuda_nvcc",
    "ptxas": True,
    "libdevice": True,
}
TOOLKIT: Any = {
    "path": "/usr/local/cuda-12.8",
    "ptxas": True,
    "nvcc": True,
    "libdevice": True,
    "version": "12.8.93",
}


def findings(
    code: str, roots: list[dict[str, Any]], dists: list[dict[str, Any]], **slots: Any
) -> list[Finding]:
    python = {"version": "3.11.7", "site_packages": [SITE], "distributions": dists, "cuda_roots": roots}
    facts = from_data(Facts, {"platform": LINUX, "driver": DRIVER, "python": python, **slots})
    report = diagnose(facts, load_matrix())
    assert not [o for o in report.outcomes if o.state == "crash"], report.outcomes
    return [f for f in report.findings if f.code == code]


def test_jax_takes_cuda_root_first() -> None:
    roots = [{"via": "CUDA_ROOT", **TOOLKIT}, PREFIX]
    assert findings("GD805", roots, JAX) == []


def test_jax_overrides_xla_flags_with_the_wheel() -> None:
    """JAX sets xla_gpu_cuda_data_dir to the nvcc wheel: an XLA_FLAGS folder without ptxas does not matter."""
    roots = [{"via": "XLA_FLAGS", "path": "/home/me/.venv/lib"}, WHEEL12, PREFIX]
    assert findings("GD805", roots, JAX) == []


def test_a_cuda13_namespace_without_ptxas_hides_the_cuda12_wheel_from_jaxs_preference() -> None:
    """`import nvidia.cu13` succeeds with any CUDA 13 wheel (torch's nvidia-cuda-runtime); JAX then takes no
    wheel as its preferred folder, and XLA's own roots still reach nvidia/cuda_nvcc for a CUDA 12 plugin."""
    cu13 = {"via": "wheel nvidia/cu13", "path": f"{SITE}/nvidia/cu13"}
    assert findings("GD805", [cu13, WHEEL12, PREFIX], JAX) == []
    [finding] = findings("GD805", [cu13, PREFIX], JAX)
    assert finding.severity.value == "error" and "ptxas" in finding.message


def test_xla_passes_over_a_ptxas_older_than_11_8_and_12_3_103() -> None:
    for version in ("11.4.152", "12.3.103"):
        roots = [{"via": "ptxas on PATH", **TOOLKIT, "libdevice": False, "version": version}, PREFIX]
        dists = [*JAX[:2], {"name": "jax-cuda12-plugin", "version": "0.10.2"}]  # no pin: jax[cuda12-local]
        [finding] = findings(
            "GD805", [*roots, {"via": "/usr/local/cuda", "path": "/usr/local/cuda", "libdevice": True}], dists
        )
        assert "ptxas" in finding.message and "libdevice" not in finding.message
        assert any("passed over" in s for s in finding.seen), finding.seen
        assert "nvidia-cuda-nvcc-cu12" in "\n".join(finding.fix_commands)


def test_a_missing_pinned_nvcc_wheel_is_gd801s() -> None:
    """jax[cuda12] with every wheel but the nvcc one: GD801 names it, GD805 stays silent."""
    pins = [
        f'{name}>=1; sys_platform == "linux" and extra == "with-cuda"'
        for name in ("nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12")
    ]
    dists = [
        *JAX[:2],
        {"name": "jax-cuda12-plugin", "version": "0.10.2", "requires": [*pins, JAX_CU12]},
        *(
            {"name": n, "version": "12.9.0"}
            for n in ("nvidia-cublas-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cudnn-cu12")
        ),
    ]
    assert findings("GD805", [PREFIX], dists) == []
    [gd801] = findings("GD801", [PREFIX], dists)
    assert "nvidia-cuda-nvcc-cu12" in gd801.message


def test_tensorflow_follows_xla_flags_to_a_full_toolkit() -> None:
    tf = [{"name": "tensorflow", "version": "2.21.0"}]
    tf_facts = {
        "installed": True,
        "imported": True,
        "version": "2.21.0",
        "is_cuda_build": True,
        "build_cuda_version": "12.5.1",
        "gpus": ["/physical_device:GPU:0"],
    }
    assert findings("GD805", [{"via": "XLA_FLAGS", **TOOLKIT}, PREFIX], tf, tensorflow=tf_facts) == []
    [finding] = findings("GD805", [{"via": "toolkit", **TOOLKIT}, PREFIX], tf, tensorflow=tf_facts)
    assert any("--xla_gpu_cuda_data_dir=/usr/local/cuda-12.8" in c for c in finding.fix_commands)


def test_a_machine_without_an_nvidia_gpu_gets_no_gd805() -> None:
    """Like this one: no NVIDIA device on the PCI bus, no driver (GD106): XLA never compiles for a GPU here."""
    facts = from_data(
        Facts,
        {
            "platform": {**LINUX, "nvidia_pci_devices": []},
            "driver": {"nvml_state": "library_not_found"},
            "python": {"version": "3.11.7", "distributions": JAX, "cuda_roots": [PREFIX]},
        },
    )
    report = diagnose(facts, load_matrix())
    assert [f.code for f in report.findings if f.code in ("GD106", "GD805")] == ["GD106"]


TORCH = [{"name": "torch", "version": "2.14.1"}]
TORCH_FACTS = {"installed": True, "imported": True, "version": "2.14.1+cu130", "cuda_version": "13.0"}


def test_torch_takes_cuda_home_over_the_nvcc_on_path() -> None:
    roots = [
        {"via": "CUDA_HOME", "path": "/usr/local/cuda-13.0", "nvcc": True, "version": "13.0.88"},
        {"via": "nvcc on PATH", **TOOLKIT},
    ]
    assert findings("GD810", roots, TORCH, torch=TORCH_FACTS) == []
    [finding] = findings("GD810", roots[::-1][:1], TORCH, torch=TORCH_FACTS)
    assert "The detected CUDA version (12.8) mismatches" in finding.message


def test_torch_minor_difference_is_not_reported() -> None:
    roots = [{"via": "nvcc on PATH", **TOOLKIT, "version": "13.1.80"}]
    assert findings("GD810", roots, TORCH, torch=TORCH_FACTS) == []


def test_no_toolkit_at_all_is_not_an_extension_problem() -> None:
    assert findings("GD810", [PREFIX], TORCH, torch=TORCH_FACTS) == []


def test_a_framework_that_does_not_import_or_see_the_gpu_is_judged_first_by_other_rules() -> None:
    tf = [{"name": "tensorflow", "version": "2.21.0"}]
    base = {"installed": True, "version": "2.21.0", "is_cuda_build": True, "build_cuda_version": "12.5.1"}
    for tf_facts in (
        {**base, "imported": False, "import_error": "ImportError: x"},
        {**base, "imported": True},
    ):
        assert findings("GD805", [PREFIX], tf, tensorflow=tf_facts) == []
    jax = {"installed": True, "imported": True, "jax_version": "0.10.2", "devices": ["cpu:0"]}
    assert findings("GD805", [PREFIX], JAX, jax=jax) == []


def test_a_tensorflow_without_an_nvcc_pin_gets_the_toolkit_of_its_build() -> None:
    tf = [{"name": "tensorflow", "version": "2.12.0"}]
    tf_facts = {
        "installed": True,
        "imported": True,
        "version": "2.12.0",
        "is_cuda_build": True,
        "build_cuda_version": "11.8",
        "gpus": ["/physical_device:GPU:0"],
    }
    [finding] = findings("GD805", [PREFIX], tf, tensorflow=tf_facts)
    commands = "\n".join(finding.fix_commands)
    assert "nvidia-cuda-nvcc" not in commands
    assert "--xla_gpu_cuda_data_dir=/usr/local/cuda-11.8" in commands


def test_a_ptxas_of_a_newer_cuda_major_than_the_driver_is_an_error() -> None:
    dists = [*JAX[:2], {"name": "jax-cuda12-plugin", "version": "0.10.2"}]
    roots = [{"via": "/usr/local/cuda", **TOOLKIT, "path": "/usr/local/cuda", "version": "13.0.88"}, PREFIX]
    [finding] = findings("GD805", roots, dists)
    assert finding.severity.value == "error"
    assert "CUDA 13.0.88 ptxas at /usr/local/cuda/bin/ptxas" in finding.message and "12.9" in finding.message
    assert "nvidia-cuda-nvcc-cu12" in "\n".join(finding.fix_commands)
    # The same root a minor version ahead of the driver: XLA only slows down (no parallel compilation).
    assert findings("GD805", [{**roots[0], "version": "12.9.86"}, PREFIX], dists) == []


def test_gd707s_ptxas_newer_than_the_driver_explains_gd805() -> None:
    """JAX's PATH ptxas newer than the driver is GD707's (the jax family rule): GD805 does not say it again."""
    dists = [*JAX[:2], {"name": "jax-cuda12-plugin", "version": "0.10.2"}]
    roots = [
        {"via": "ptxas on PATH", **TOOLKIT, "path": "/usr/local/cuda-13.0", "version": "13.0.88"},
        PREFIX,
    ]
    jax = {
        "installed": True,
        "imported": True,
        "jax_version": "0.10.2",
        "jaxlib_version": "0.10.2",
        "plugins": {"jax-cuda12-plugin": "0.10.2"},
        "devices": ["cuda:0"],
    }
    toolkit = {"nvcc_on_path": "/usr/local/cuda-13.0/bin/nvcc", "nvcc_version": "13.0.88"}
    assert findings("GD805", roots, dists, jax=jax, toolkit=toolkit) == []
    assert findings("GD707", roots, dists, jax=jax, toolkit=toolkit)


def test_gd806_pins_the_first_numpy2_jax_with_the_installed_plugins_extra() -> None:
    dists = [
        {"name": "jax", "version": "0.4.23"},
        {"name": "jaxlib", "version": "0.4.23"},
        {"name": "jax-cuda12-plugin", "version": "0.4.23"},
        {"name": "numpy", "version": "2.0.1"},
    ]
    jax = {
        "installed": True,
        "imported": False,
        "import_error": "ImportError: numpy.core.multiarray failed to import",
        "jax_version": "0.4.23",
    }
    [finding] = findings("GD806", [PREFIX], dists, jax=jax)
    commands = "\n".join(finding.fix_commands)
    assert "python -m pip install 'jax[cuda12]==0.4.26'" in commands, commands


def test_jax_without_jaxlib_is_gd801s_error_and_explains_gd701() -> None:
    """`pip install jax` alone: jax's own import error names jaxlib, which its Requires-Dist pins."""
    from pathlib import Path

    lines = (
        (Path(__file__).parent / "outputs" / "metadata" / "jax-0.10.2.requires.txt").read_text().splitlines()
    )
    dists: list[dict[str, Any]] = [
        {"name": "jax", "version": "0.10.2", "requires": lines},
        {"name": "numpy", "version": "2.3.5"},
        {"name": "ml-dtypes", "version": "0.5.4"},
    ]
    error = (
        "ModuleNotFoundError: jax requires jaxlib to be installed. See https://github.com/jax-ml/jax#installation "
        "for installation instructions."
    )
    jax = {"installed": True, "imported": False, "import_error": error, "jax_version": "0.10.2"}
    [finding] = findings("GD801", [PREFIX], dists, jax=jax)
    assert finding.severity.value == "error"
    assert finding.message.startswith("import jax fails without jaxlib<=0.10.2,>=0.10.1")
    assert "python -m pip install jaxlib==0.10.2" in finding.fix_commands
    assert findings("GD701", [PREFIX], dists, jax=jax) == []
