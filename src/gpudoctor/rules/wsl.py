"""GD53x: WSL 2, where the GPU comes from the Windows driver through /dev/dxg and /usr/lib/wsl/lib."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor.facts import PlatformFacts
from gpudoctor.model import Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import host_fix
from gpudoctor.rules.registry import rule

WSL_LIB = "/usr/lib/wsl/lib"
# NVIDIA's CUDA on WSL guide: the WSL 2 kernel must be 5.10.43.3 or newer.
MIN_WSL_KERNEL = (5, 10, 43, 3)


def _platform(ctx: RuleContext) -> PlatformFacts:
    p = ctx.facts.platform
    assert p is not None  # needs=("platform",)
    return p


def wsl_kernel(release: str) -> tuple[int, ...] | None:
    """ "5.15.153.1-microsoft-standard-WSL2" -> (5, 15, 153, 1)."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


@rule(
    "GD531",
    "The loader finds the Windows driver's libcuda.so.1 in /usr/lib/wsl/lib",
    requires=("GD504", "GD505", "GD506"),
    needs=("platform",),
    blocks_gpu=True,
    problem="The loader does not find the Windows driver's libcuda.so.1 in /usr/lib/wsl/lib",
    part="platform",
)
def wsl_loader(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2 or "libcuda.so.1" not in p.wsl_libs:
        return
    resolved = p.loader_libcuda
    if resolved is not None and resolved.startswith(WSL_LIB + "/"):
        return
    if resolved is None and p.wsl_ld_conf is not False:
        return  # ldconfig could not be asked and nothing says the folder is missing from its list
    seen = [f"{WSL_LIB}: libcuda.so.1 present"]
    seen.append(f"ldconfig resolves libcuda.so.1 to: {resolved or 'nothing'}")
    if p.wsl_ld_conf is False:
        seen.append(f"no file in /etc/ld.so.conf.d lists {WSL_LIB}")
    if resolved is None:
        fixes = (
            ctx.fix(
                f"Put {WSL_LIB} back on the loader's list (WSL writes /etc/ld.so.conf.d/ld.wsl.conf unless "
                "/etc/wsl.conf turns it off) and rebuild its cache",
                f"echo {WSL_LIB} | sudo tee /etc/ld.so.conf.d/ld.wsl.conf",
                "sudo ldconfig",
                "grep -n ldconfig /etc/wsl.conf",
                needs_admin=True,
            ),
        )
        message = (
            f"The loader does not look in {WSL_LIB}: programs cannot load the Windows driver's libcuda.so.1"
        )
    else:
        fixes = (
            ctx.fix(
                f"Find out which package put {resolved} there and remove it (in WSL only the Windows driver's "
                "libcuda may be used), then rebuild the loader cache",
                f"ls -l {resolved}",
                f"dpkg -S {resolved}",
                "sudo ldconfig",
                needs_admin=True,
            ),
        )
        message = (
            f"The loader picks {resolved} instead of the Windows driver's {WSL_LIB}/libcuda.so.1: CUDA in WSL "
            "cannot reach the GPU through it"
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=message,
        why=(
            "In WSL 2, libcuda.so.1 must be the Windows driver's, mounted in /usr/lib/wsl/lib; it talks to the "
            "GPU through /dev/dxg. Any other libcuda (a Linux driver's, a CUDA forward-compatibility copy) "
            "finds no GPU."
        ),
        seen=tuple(seen),
        fixes=fixes,
    )


@rule(
    "GD533",
    "The WSL 2 kernel is new enough for CUDA",
    requires=causes.PLATFORM,
    needs=("platform",),
    blocks_gpu=True,
    problem="The WSL 2 kernel is too old for CUDA",
    part="platform",
)
def wsl_kernel_version(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2:
        return
    version = wsl_kernel(p.release)
    if version is None or version >= MIN_WSL_KERNEL:
        return
    needed = ".".join(str(n) for n in MIN_WSL_KERNEL)
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The WSL 2 kernel {p.release} is older than {needed}, the first that gives CUDA the GPU",
        why="CUDA on WSL needs the GPU paravirtualisation of WSL kernels 5.10.43.3 and later; older kernels have no CUDA device.",
        seen=(f"WSL 2 kernel: {p.release}", f"needed: {needed} or later"),
        fixes=(
            host_fix(
                "In Windows PowerShell, update WSL (it brings its own kernel), then restart it",
                "wsl --update",
                "wsl --shutdown",
                needs_admin=True,
                where="host",
            ),
        ),
    )
