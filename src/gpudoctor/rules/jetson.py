"""GD52x: NVIDIA Jetson (Tegra): an integrated GPU driven by L4T, and framework wheels built per JetPack."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor import lazy_re
from gpudoctor.facts import PlatformFacts, TorchFacts
from gpudoctor.matrix import JetsonRelease
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule

JETSON_PYTORCH_PAGE = (
    "https://docs.nvidia.com/deeplearning/frameworks/install-pytorch-jetson-platform/index.html"
)


def jetson(ctx: RuleContext) -> PlatformFacts | None:
    p = ctx.facts.platform
    return p if p is not None and p.system == "Linux" and (p.tegra_release or p.jetson_model) else None


def _release(ctx: RuleContext, p: PlatformFacts) -> JetsonRelease | None:
    if p.jetpack_version:
        found = ctx.matrix.jetson_release(jetpack=p.jetpack_version)
        if found is not None:
            return found
    return ctx.matrix.jetson_release(l4t=p.tegra_release) if p.tegra_release else None


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


def _torch_fixes(ctx: RuleContext, p: PlatformFacts, release: JetsonRelease | None) -> tuple[Fix, ...]:
    python = ctx.facts.python.version if ctx.facts.python else ""
    if release is None or not release.index_url:
        return (
            ctx.fix(
                f"Install NVIDIA's PyTorch wheel for {_label(p)} (NVIDIA's 'Installing PyTorch for Jetson "
                f"Platform' lists one per JetPack: {JETSON_PYTORCH_PAGE}), after removing this one",
                ctx.pip("uninstall", "-y", "torch"),
            ),
        )
    steps = [
        ctx.pip("uninstall", "-y", "torch"),
        ctx.pip(
            "install",
            "--no-cache-dir",
            "--no-index",
            "--no-deps",
            "--pre",
            "-f",
            f"{release.index_url}/pytorch/",
            "torch",
        ),
    ]
    note = ""
    if release.python and python and not python.startswith(release.python + "."):
        note = f" (NVIDIA builds them for JetPack {release.jetpack}'s system Python {release.python}; this is Python {python}: use python{release.python})"
    return (
        ctx.fix(
            f"Replace it with NVIDIA's PyTorch for JetPack {release.jetpack} (torch {', '.join(release.torch) or 'as listed'})"
            + note,
            *steps,
        ),
    )


# A CUDA library the wheel links against and the loader cannot find: "libcudart.so.10.0: cannot open ..."
MISSING_CUDA_LIBRARY = lazy_re.compile(
    r"(lib(?:cudart|cublas|cublasLt|cudnn|cufft|curand|cusparse|cusolver|nvrtc|nvToolsExt)\.so\.[\d.]+)"
    r": cannot open shared object file"
)


def _same_cuda(library: str, cuda: str | None) -> bool:
    """Whether a missing libcudart.so.X[.Y] is this JetPack's own CUDA runtime (10.x: X.Y; 11+: X)."""
    found = re.fullmatch(r"libcudart\.so\.(\d+)(?:\.(\d+))?", library)
    if found is None or not cuda:
        return False
    major, minor = found.group(1), found.group(2)
    want = cuda.split(".")
    if int(major) >= 11:
        return want[0] == major
    return want[:2] == [major, minor or "0"]


def _wheel_for_another_jetpack(
    ctx: RuleContext, p: PlatformFacts, torch: TorchFacts, release: JetsonRelease | None
) -> Verdict | None:
    """torch does not import because it links a CUDA library this JetPack does not ship."""
    error = torch.import_error or ""
    match = MISSING_CUDA_LIBRARY.search(error)
    if match is None:
        return None
    library = match.group(1)
    version = torch.dist_version or torch.version or "?"
    seen = [f"torch {version}: {error.splitlines()[0][:200]}"]
    if release is not None:
        seen.append(f"JetPack {release.jetpack} (L4T {release.l4t}) ships CUDA {release.cuda or '?'}")
    if release is not None and _same_cuda(library, release.cuda):
        return Verdict(
            severity=Severity.ERROR,
            title="This Jetson lacks its JetPack's CUDA libraries",
            message=f"PyTorch {version} needs {library}, JetPack {release.jetpack}'s own CUDA runtime, and the "
            "loader cannot find it: the JetPack's CUDA components are not installed",
            why="A Jetson flashed without the JetPack SDK components has the Tegra driver but no CUDA runtime, "
            "cuDNN or TensorRT; NVIDIA's framework wheels link against them.",
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Install the JetPack components (CUDA, cuDNN, TensorRT) for this L4T release",
                    "sudo apt update",
                    "sudo apt install -y nvidia-jetpack",
                    needs_admin=True,
                ),
            ),
        )
    return Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch {version} on this Jetson ({_label(p)}) was built for another JetPack: it needs "
        f"{library}, which this JetPack does not ship",
        why=(
            "NVIDIA builds a PyTorch wheel for each JetPack, linked against that JetPack's CUDA and cuDNN. A "
            "wheel for another JetPack (or an installer script that picked the wrong one) fails to import on "
            "the first library of another version; reinstalling the same wheel does not help."
        ),
        seen=tuple(seen),
        fixes=_torch_fixes(ctx, p, release),
    )


@rule(
    "GD521",
    "PyTorch on this Jetson is NVIDIA's build for its JetPack",
    needs=("platform", "torch"),
    problem="PyTorch on this Jetson is not NVIDIA's build for its JetPack",
    part="torch",
)
def jetson_torch(ctx: RuleContext) -> Iterator[Verdict]:
    p = jetson(ctx)
    torch = ctx.facts.torch
    if p is None or torch is None or not torch.installed:
        return
    if p.tegra_libcuda is None and p.loader_libcuda is None:
        return  # no Tegra driver at all: GD522 says so, and no wheel can help
    release = _release(ctx, p)
    if not torch.imported:
        verdict = _wheel_for_another_jetpack(ctx, p, torch, release)
        if verdict is not None:
            yield verdict
        return
    if torch.cuda_available:
        return
    version = torch.version or "?"
    if torch.cuda_version is None:
        problem = f"PyTorch {version} on this Jetson ({_label(p)}) is a CPU-only build: it cannot use the GPU"
    else:
        problem = (
            f"PyTorch {version} is built for CUDA {torch.cuda_version} on server Arm (SBSA) GPUs, not for this "
            f"Jetson's integrated GPU ({_label(p)})"
        )
    seen = [
        f"torch {version}",
        f"torch.version.cuda: {torch.cuda_version}",
        f"torch.cuda.is_available(): {torch.cuda_available}",
    ]
    if torch.cuda_error:
        seen.append(f"PyTorch said: {torch.cuda_error.splitlines()[0][:200]}")
    if release is not None:
        seen.append(
            f"JetPack {release.jetpack}: CUDA {release.cuda or '?'}, NVIDIA torch wheels {', '.join(release.torch) or '?'}"
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=problem,
        why=(
            "The torch wheels on PyPI and download.pytorch.org for aarch64 are CPU-only or built for server Arm "
            "GPUs; a Jetson needs NVIDIA's build for its JetPack's CUDA and Python."
        ),
        seen=tuple(seen),
        fixes=_torch_fixes(ctx, p, release),
    )
