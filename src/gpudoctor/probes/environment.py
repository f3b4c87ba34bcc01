"""Environment variables that change which GPU, library or interpreter gets used."""

from __future__ import annotations

from gpudoctor.facts import EnvironmentFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext

WATCHED = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "NVIDIA_DRIVER_CAPABILITIES",
    "CUDA_DEVICE_ORDER",
    "LD_LIBRARY_PATH",
    "LD_PRELOAD",
    "PATH",
    "CUDA_HOME",
    "CUDA_PATH",
    "CUDA_ROOT",
    "CUDNN_PATH",
    "CONDA_PREFIX",
    "CONDA_DEFAULT_ENV",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "TF_CPP_MIN_LOG_LEVEL",
    "TF_CPP_MAX_VLOG_LEVEL",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "TF_USE_LEGACY_KERAS",
    "XLA_FLAGS",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "JAX_PLATFORMS",
    "JAX_SKIP_CUDA_CONSTRAINTS_CHECK",
    "PYTORCH_NVML_BASED_CUDA_CHECK",
    "PYTORCH_SKIP_CUDNN_COMPATIBILITY_CHECK",
    "WSL_DISTRO_NAME",
    "SLURM_JOB_ID",
    "SLURM_JOB_GPUS",
    "SLURM_STEP_GPUS",
    "SLURM_GPUS_ON_NODE",
)


def collect(ctx: ProbeContext) -> EnvironmentFacts:
    return EnvironmentFacts(variables={name: ctx.env[name] for name in WATCHED if name in ctx.env})


def describe(facts: EnvironmentFacts) -> Description:
    notable = [
        n for n in facts.variables if n not in ("PATH", "VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV")
    ]
    summary = ", ".join(f"{n}={facts.variables[n]!r}" for n in notable[:3] if n != "LD_LIBRARY_PATH")
    if "LD_LIBRARY_PATH" in facts.variables:
        count = len([p for p in facts.variables["LD_LIBRARY_PATH"].split(":") if p])
        summary = ", ".join(
            x for x in (summary, f"LD_LIBRARY_PATH has {count} folder{'s' * (count != 1)}") if x
        )
    details = tuple(f"{n}={v}" for n, v in facts.variables.items() if n != "PATH")
    return Description(
        mark="ok", summary=summary or "nothing that changes GPU selection is set", details=details
    )


PROBE = Probe(name="environment", title="environment", collect=collect, describe=describe, timeout=5)
