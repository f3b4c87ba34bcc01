"""All rules. A new rule goes into the family module for its code range; nothing else to register.

GD0xx gpudoctor itself · GD10x driver and GPU · GD11x driver vs the CUDA a framework needs ·
GD2xx CUDA toolkit and libraries · GD3xx environment variables · GD40x TensorFlow installation ·
GD41x–GD42x TensorFlow builds vs this machine · GD50x platform (macOS, containers, WSL) ·
GD51x native Windows · GD6xx PyTorch · GD7xx JAX · GD8xx the Python environment as a whole
"""

from __future__ import annotations

from gpudoctor.rules import (  # noqa: F401 - importing a family module registers its rules
    containers,
    cuda,
    cuda_errors,
    devices,
    driver,
    driver_cuda,
    environment,
    fabric,
    gpudoctor,
    gpus,
    interpreter,
    jax,
    jetson,
    platform,
    pythonenv,
    pythonstack,
    pythontools,
    tensorflow,
    tensorflow_builds,
    torch,
    windows,
    wsl,
)
from gpudoctor.rules.registry import RULES, Rule, rule

__all__ = ["RULES", "Rule", "rule"]
