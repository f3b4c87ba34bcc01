"""GD52x: NVIDIA Jetson (Tegra): an integrated GPU driven by L4T, and framework wheels built per JetPack."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.facts import PlatformFacts
from gpudoctor.model import Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule

JETSON_PYTORCH_PAGE = (
    "https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/index.html"
)


def jetson(ctx: RuleContext) -> PlatformFacts | None:
    p = ctx.facts.platform
    return p if p is not None and p.system == "Linux" and (p.tegra_release or p.jetson_model) else None


def _label(p: PlatformFacts) -> str:
    parts = [
        f"JetPack {p.jetpack_version}" if p.jetpack_version else None,
        f"L4T {p.tegra_release}" if p.tegra_release else None,
    ]
    return ", ".join(x for x in parts if x) or "version unknown"


@rule(
    "GD522",
    "The Jetson's integrated GPU has its Tegra driver",
    needs=("platform",),
    blocks_gpu=True,
    problem="The Jetson's integrated GPU lacks its Tegra driver",
    part="platform",
)
def tegra_driver(ctx: RuleContext) -> Iterator[Verdict]:
    p = jetson(ctx)
    if p is None:
        return
    board = p.jetson_model or "NVIDIA Jetson"
    if p.tegra_libcuda is None and p.loader_libcuda is None:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"This {board} ({_label(p)}) has no Tegra libcuda.so.1: nothing can use its GPU",
            why=(
                "A Jetson's GPU is driven by the L4T (Tegra) driver, whose libcuda.so.1 comes with the "
                "nvidia-l4t-cuda package; without it CUDA cannot start."
            ),
            seen=(f"L4T: {p.tegra_release or 'unknown'}", "Tegra libcuda.so.1: not found"),
            fixes=(
                ctx.fix(
                    "Reinstall the L4T CUDA driver package, then reboot",
                    "sudo apt update",
                    "sudo apt install --reinstall nvidia-l4t-cuda",
                    needs_admin=True,
                    needs_reboot=True,
                ),
            ),
        )
        return
    yield Verdict(
        severity=Severity.INFO,
        settles_dependents=True,  # no NVML and no PCI GPU here is how a Jetson is, not a missing driver
        message=f"This is an {board} ({_label(p)}): its integrated GPU is driven by the Tegra driver, "
        "which nvidia-smi and NVML do not report on",
        why=(
            "Jetson modules have no discrete GPU on a PCI bus and (before JetPack 6) no NVML; frameworks need "
            "builds made for the board's JetPack, not the PyPI or download.pytorch.org wheels for servers."
        ),
        seen=tuple(
            x
            for x in (
                f"L4T {p.tegra_release}" if p.tegra_release else None,
                f"Tegra libcuda: {p.tegra_libcuda}" if p.tegra_libcuda else None,
            )
            if x
        ),
        fixes=(ctx.fix("See the GPU's load and memory the Jetson way", "sudo tegrastats --interval 1000"),),
    )
