"""The pip distributions that install each framework's import package (the child scripts keep copies)."""

from __future__ import annotations

TENSORFLOW = (
    "tensorflow",
    "tensorflow-gpu",
    "tensorflow-cpu",
    "tensorflow-intel",
    "tensorflow-macos",
    "tensorflow-cpu-aws",
    "tensorflow-rocm",
    "intel-tensorflow",
    "tf-nightly",
    "tf-nightly-gpu",
    "tf-nightly-cpu",
)
TORCH = ("torch",)
JAX = ("jax", "jaxlib")

FRAMEWORK_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {"tensorflow": TENSORFLOW, "torch": TORCH, "jax": JAX}
