"""Probes, in report order. Add a probe here and a slot for its facts in `facts.Facts`."""

from __future__ import annotations

from typing import Any

from gpudoctor.probes.base import Description, Probe, ProbeContext
from gpudoctor.probes.conda import PROBE as CONDA
from gpudoctor.probes.devices import PROBE as DEVICES
from gpudoctor.probes.driver import PROBE as DRIVER
from gpudoctor.probes.environment import PROBE as ENVIRONMENT
from gpudoctor.probes.fabric import PROBE as FABRIC
from gpudoctor.probes.jax import PROBE as JAX
from gpudoctor.probes.kernel_log import PROBE as KERNEL_LOG
from gpudoctor.probes.libraries import PROBE as LIBRARIES
from gpudoctor.probes.platform import PROBE as PLATFORM
from gpudoctor.probes.python import PROBE as PYTHON
from gpudoctor.probes.tensorflow import PROBE as TENSORFLOW
from gpudoctor.probes.toolkit import PROBE as TOOLKIT
from gpudoctor.probes.torch import PROBE as TORCH

PROBES: tuple[Probe[Any], ...] = (
    PLATFORM,
    DRIVER,
    DEVICES,  # hardware
    FABRIC,  # hardware
    KERNEL_LOG,  # hardware
    TOOLKIT,
    LIBRARIES,
    ENVIRONMENT,
    CONDA,
    PYTHON,
    TENSORFLOW,
    TORCH,
    JAX,
)

__all__ = ["PROBES", "Description", "Probe", "ProbeContext"]
