"""All rules. A new rule goes into the family module for its code range; nothing else to register.

GD0xx gpudoctor itself (probes that failed) · GD1xx driver and GPU · GD2xx CUDA toolkit and
libraries · GD3xx environment · GD4xx TensorFlow · GD5xx platform (Windows, WSL, macOS,
containers) · GD6xx PyTorch · GD7xx JAX
"""

from __future__ import annotations

from gpudoctor.rules import gpudoctor as _gpudoctor  # noqa: F401
from gpudoctor.rules.registry import RULES, Rule, rule

__all__ = ["RULES", "Rule", "rule"]
