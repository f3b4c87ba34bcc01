"""GD507: a container that was given the GPU, but not the driver's CUDA library.

The NVIDIA Container Toolkit mounts the host driver's user-space libraries by capability
(NVIDIA_DRIVER_CAPABILITIES): `utility` brings nvidia-smi and libnvidia-ml, `compute` brings
libcuda.so.1. Unset, the toolkit's default is `utility` only, so NVML works inside while every CUDA
program finds no driver. NVIDIA's CUDA images set `compute,utility`; other images do not.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.model import Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule

CAPABILITIES = "NVIDIA_DRIVER_CAPABILITIES"


def _has_compute(value: str) -> bool:
    wanted = {c.strip().lower() for c in value.split(",")}
    return bool(wanted & {"compute", "all"})


@rule(
    "GD507",
    "The container has the driver's CUDA library (libcuda.so.1)",
    requires=(*causes.PLATFORM, *causes.DRIVER, *causes.WRONG_LIBCUDA),
    needs=("platform", "driver", "libraries"),
    blocks_gpu=True,
    problem="The container was given the GPU without the driver's CUDA library (libcuda.so.1)",
    part="libraries",
)
def container_without_compute(ctx: RuleContext) -> Iterator[Verdict]:
    p, d, libs = ctx.facts.platform, ctx.facts.driver, ctx.facts.libraries
    assert p is not None and d is not None and libs is not None  # needs=
    if not p.container or ctx.flavor not in ("linux", "wsl") or d.nvml_state != "ok" or not d.gpus:
        return
    if libs.search_error is not None or any(f.kind == "libcuda" for f in libs.files):
        return
    capabilities = ctx.variables.get(CAPABILITIES)
    if capabilities is not None and _has_compute(capabilities):
        return  # asked for and still absent: not this cause (GD503 / the toolkit's own log say more)
    seen = (
        f"NVML works: driver {d.driver_version or '?'}, {len(d.gpus)} GPU(s)",
        "libcuda.so.1: not found in the container (searched: "
        + (
            ", ".join(libs.searched[:4]) + (", ..." if len(libs.searched) > 4 else "")
            if libs.searched
            else "the loader's paths"
        )
        + ")",
        f"{CAPABILITIES}="
        + (
            repr(capabilities)
            if capabilities is not None
            else "(unset: the toolkit's default is utility only)"
        ),
        f"container: {p.container}",
    )
    if p.container == "kubernetes":
        fix = ctx.fix(
            f"Set {CAPABILITIES}=compute,utility in the container's env of the pod spec (or build the image "
            "FROM an nvidia/cuda base image, which sets it), then recreate the pod",
            "kubectl set env deployment/<name> NVIDIA_DRIVER_CAPABILITIES=compute,utility",
            where="host",
        )
    else:
        fix = ctx.fix(
            f"Start the container with the compute capability: add -e {CAPABILITIES}=compute,utility (with "
            "docker compose: `NVIDIA_DRIVER_CAPABILITIES: compute,utility` under environment, and "
            "`capabilities: [gpu]` in the device reservation), or build the image FROM nvidia/cuda",
            f"docker run --gpus all -e {CAPABILITIES}=compute,utility <image> ...",
            where="host",
        )
    yield Verdict(
        severity=Severity.ERROR,
        message="This container sees the GPU through NVML but has no libcuda.so.1: it was started without "
        f"the `compute` driver capability ({CAPABILITIES}"
        + (f"={capabilities}" if capabilities is not None else " unset")
        + ")",
        why="The NVIDIA Container Toolkit mounts the host driver's libraries by capability: `utility` gives "
        "nvidia-smi and NVML, `compute` gives libcuda.so.1, which every CUDA program needs. Without it "
        "nvidia-smi works inside while TensorFlow, PyTorch and JAX find no driver.",
        seen=seen,
        fixes=(fix,),
    )
