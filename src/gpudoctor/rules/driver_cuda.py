"""GD11x: the NVIDIA driver against the CUDA version a framework build needs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import Version

from gpudoctor.matrix import System, kernel_support, parse_version
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.driver import install_driver_fixes
from gpudoctor.rules.registry import rule
from gpudoctor.rules.tensorflow_builds import (
    DRIVER_ROOT_CAUSES,
    gpu_capabilities,
    python_series,
    tf_build,
    tf_install_spec,
)

INSUFFICIENT = (
    "driver version is insufficient",
    "cuda_error_insufficient_driver",
    "cudaerrorinsufficientdriver",
)


@dataclass(frozen=True, kw_only=True)
class FrameworkCuda:
    """A framework build and the CUDA it was built with, for the driver check."""

    label: str  # "TensorFlow 2.15.1"
    cuda: str | None  # "12.2"
    cuda_from: str
    log: tuple[str, ...]  # what the framework printed about CUDA
    targets: tuple[str, ...]  # its build targets, for the PTX caveat
    older_builds: tuple[tuple[str, str], ...] = ()  # (install spec, CUDA) of builds this driver runs


def driver_system(ctx: RuleContext) -> System:
    """Whose driver numbering applies: in WSL 2 the driver is the Windows one."""
    return "windows" if ctx.flavor in ("windows", "wsl") else "linux"


def _at_least(version: str, minimum: str) -> bool:
    left, right = parse_version(version), parse_version(minimum)
    return left is not None and right is not None and left >= right


def driver_verdicts(ctx: RuleContext, framework: FrameworkCuda) -> Iterator[Verdict]:
    """Whether the running driver is new enough for `framework`'s CUDA; reads right for any framework."""
    driver = ctx.facts.driver
    if driver is None or driver.nvml_state != "ok" or not driver.driver_version:
        return
    version = driver.driver_version
    if parse_version(version) is None:
        return
    system = driver_system(ctx)
    complaint = next((line for line in framework.log if any(k in line.lower() for k in INSUFFICIENT)), None)
    requirement = ctx.matrix.driver_requirement(framework.cuda, system) if framework.cuda else None
    toolkit_min = requirement.toolkit_minimum if requirement else None
    compat_min = requirement.compat_minimum if requirement else None
    floor = compat_min or toolkit_min
    where = "Windows" if system == "windows" else "Linux"
    seen = [
        f"NVIDIA driver {version}"
        + (f" (supports CUDA up to {driver.cuda_driver_version})" if driver.cuda_driver_version else ""),
        f"{framework.label}: CUDA {framework.cuda or 'unknown'}"
        + (f" ({framework.cuda_from})" if framework.cuda_from else ""),
    ]
    if requirement is not None:
        seen.append(
            f"CUDA {requirement.cuda} needs driver >= {toolkit_min or 'unpublished'} on {where}"
            + (f"; minor-version compatibility from {compat_min}" if compat_min else "")
        )
    if complaint:
        seen.append(f"log: {complaint[:200]}")
    cuda = requirement.cuda if requirement else framework.cuda
    upgrade = _upgrade_fixes(ctx, framework, version, system, toolkit_min or floor)
    why_old = (
        "Every CUDA runtime asks the driver for a minimum version; below it, initialisation fails with "
        "'CUDA driver version is insufficient for CUDA runtime version' and the framework runs on the CPU."
    )
    if floor is not None and not _at_least(version, floor):
        yield Verdict(
            severity=Severity.ERROR,
            message=f"NVIDIA driver {version} is too old for {framework.label}, built with CUDA {cuda}: it "
            f"needs driver {toolkit_min or floor} or newer"
            + (f" ({compat_min} at the least, with minor-version compatibility)" if compat_min else ""),
            why=why_old,
            seen=tuple(seen),
            fixes=upgrade,
        )
        return
    if toolkit_min is not None and compat_min is not None and not _at_least(version, toolkit_min):
        ptx_gpus = [
            f"{name} ({cc})"
            for name, cc in gpu_capabilities(ctx)
            if framework.targets and _safe_support(cc, framework.targets) == "ptx"
        ]
        caveat = (
            f"; but the {', '.join(ptx_gpus)} runs its kernels only from PTX, which driver {version} cannot "
            "JIT-compile"
            if ptx_gpus
            else ""
        )
        yield Verdict(
            severity=Severity.ERROR
            if ptx_gpus or complaint
            else Severity.INFO,  # it runs; say why it may not stay so
            message=f"NVIDIA driver {version} is older than CUDA {cuda} needs ({toolkit_min}); {framework.label} "
            f"runs only through CUDA minor-version compatibility{caveat}",
            why=(
                f"Drivers from {compat_min} run any CUDA {_major_of(cuda)}.x program with a limited feature set; "
                "PTX produced by the newer toolkit cannot be JIT-compiled by an older driver "
                "(cudaErrorUnsupportedPtxVersion), so GPUs served only through PTX, and some features, need "
                f"the full {toolkit_min}."
            ),
            seen=tuple(seen),
            fixes=upgrade,
        )
        return
    if complaint:
        known = f"; gpudoctor's matrix expected {toolkit_min or floor} to be enough" if floor else ""
        yield Verdict(
            severity=Severity.ERROR,
            message=f"CUDA itself reports NVIDIA driver {version} too old for the runtime {framework.label} "
            f"loads{known}",
            why=why_old + " The runtime's own check beats any table.",
            seen=tuple(seen),
            fixes=upgrade,
        )


def _major_of(cuda: str | None) -> str:
    return (cuda or "?").split(".")[0]


def _safe_support(cc: str, targets: tuple[str, ...]) -> str | None:
    try:
        return kernel_support(cc, targets)
    except ValueError:
        return None


def _upgrade_fixes(
    ctx: RuleContext, framework: FrameworkCuda, version: str, system: System, minimum: str | None
) -> tuple[Fix, ...]:
    below = minimum is not None and not _at_least(version, minimum)
    fixes = list(install_driver_fixes(ctx, minimum=minimum if below else None))
    if fixes:
        first = fixes[0]
        fixes[0] = Fix(
            summary=f"Update the NVIDIA driver (now {version}): {first.summary[0].lower()}{first.summary[1:]}",
            commands=first.commands,
            shell=first.shell,
            needs_admin=first.needs_admin,
            needs_reboot=True,
        )
    fully = [
        (spec, cuda) for spec, cuda in framework.older_builds if _fully_supports(ctx, version, cuda, system)
    ]
    runnable = fully or [
        (spec, cuda)
        for spec, cuda in framework.older_builds
        if ctx.matrix.driver_runs_cuda(version, cuda, system)
    ]
    if runnable:
        spec, cuda = runnable[0]
        fixes.append(
            ctx.fix(
                f"Or keep driver {version} and install a build made with CUDA {cuda}, which it runs",
                ctx.pip_install(spec),
            )
        )
    return tuple(fixes)


def _fully_supports(ctx: RuleContext, driver: str, cuda: str, system: System) -> bool:
    requirement = ctx.matrix.driver_requirement(cuda, system)
    return bool(
        requirement and requirement.toolkit_minimum and _at_least(driver, requirement.toolkit_minimum)
    )


def tensorflow_cuda(ctx: RuleContext) -> FrameworkCuda | None:
    build = tf_build(ctx)
    if build is None or build.gpu_build is False:
        return None
    tf = ctx.facts.tensorflow
    log = tuple(tf.log_lines) if tf else ()
    if tf is not None:
        log += tuple(filter(None, (tf.import_error, tf.list_devices_error, tf.cuinit_error)))
    series = python_series(ctx)
    older: list[tuple[str, str]] = []
    for release in sorted(ctx.matrix.tensorflow, key=lambda r: Version(r.version), reverse=True):
        row = release.windows if build.system == "windows" else release.linux
        spec = (row.python if row else None) or release.python
        if row is None or (series is not None and not spec.contains(f"{series}.0", prereleases=True)):
            continue
        if build.release is not None and release.version == build.release.version:
            continue
        older.append((tf_install_spec(ctx, release.version), row.cuda))
    return FrameworkCuda(
        label=build.label,
        cuda=build.cuda if build.cuda and "." in build.cuda else None,
        cuda_from=build.cuda_from,
        log=log,
        targets=build.targets,
        older_builds=tuple(older),
    )


@rule(
    "GD111",
    "The NVIDIA driver is new enough for TensorFlow's CUDA",
    requires=DRIVER_ROOT_CAUSES,
    needs=("driver", "tensorflow"),
)
def driver_for_tensorflow(ctx: RuleContext) -> Iterator[Verdict]:
    framework = tensorflow_cuda(ctx)
    if framework is None:
        return
    yield from driver_verdicts(ctx, framework)
