"""GD11x: the NVIDIA driver against the CUDA version a framework build needs."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.facts import LibraryFile
from gpudoctor.matrix import System, kernel_support
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import install_driver_fixes, ld_library_path_without, tf_install_spec
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import (
    distro_family,
    driver_system,
    framework_errors,
    gpu_capabilities,
    python_series,
    tf_build,
)
from gpudoctor.versions import at_least, older, parse_version

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
    compat_min = requirement.compat_minimum if requirement and requirement.through_compatibility else None
    floor = requirement.floor if requirement else None
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
    if floor is not None and not at_least(version, floor):
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
    if toolkit_min is not None and compat_min is not None and not at_least(version, toolkit_min):
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
            title="The NVIDIA driver runs this CUDA only through minor-version compatibility",
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
    below = minimum is not None and not at_least(version, minimum)
    fixes = list(install_driver_fixes(ctx, minimum=minimum if below else None))
    if fixes:
        first = fixes[0]
        fixes[0] = dataclasses.replace(
            first,
            summary=f"Update the NVIDIA driver (now {version}): {first.summary[0].lower()}{first.summary[1:]}",
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
    return bool(requirement and requirement.toolkit_minimum and at_least(driver, requirement.toolkit_minimum))


def tensorflow_cuda(ctx: RuleContext) -> FrameworkCuda | None:
    build = tf_build(ctx)
    if build is None or build.gpu_build is False:
        return None
    tf = ctx.facts.tensorflow
    log = tuple(tf.log_lines) if tf else ()
    if tf is not None:
        log += tuple(filter(None, (tf.import_error, tf.list_devices_error, tf.cuinit_error)))
    series = python_series(ctx)
    other_builds: list[tuple[str, str]] = []
    for release in sorted(ctx.matrix.tensorflow, key=lambda r: Version(r.version), reverse=True):
        row = release.windows if build.system == "windows" else release.linux
        spec = (row.python if row else None) or release.python
        if row is None or (series is not None and not spec.contains(f"{series}.0", prereleases=True)):
            continue
        if build.release is not None and release.version == build.release.version:
            continue
        other_builds.append((tf_install_spec(ctx, release.version), row.cuda))
    return FrameworkCuda(
        label=build.label,
        cuda=build.cuda if build.cuda and "." in build.cuda else None,
        cuda_from=build.cuda_from,
        log=log,
        targets=build.targets,
        older_builds=tuple(other_builds),
    )


@rule(
    "GD111",
    "The NVIDIA driver is new enough for TensorFlow's CUDA",
    requires=causes.DRIVER,
    needs=("driver", "tensorflow"),
    problem="The NVIDIA driver is too old for TensorFlow's CUDA",
    part="tensorflow",
)
def driver_too_old_for_tensorflow(ctx: RuleContext) -> Iterator[Verdict]:
    framework = tensorflow_cuda(ctx)
    if framework is None:
        return
    yield from driver_verdicts(ctx, framework)


# ----------------------------------------------------------------------------------------------
# GD112: a CUDA forward-compatibility libcuda is loaded instead of the driver's own

COMPAT_UNSUPPORTED = lazy_re.compile(
    r"\berror\W{0,3}804\b|forward compatibility was attempted|cuda_error_compat_not_supported_on_device"
    r"|cudaerrorcompatnotsupportedondevice",
    re.IGNORECASE,
)
DRIVER_MISMATCH = lazy_re.compile(
    r"\berror\W{0,3}803\b|unsupported display driver\s*/\s*cuda driver combination"
    r"|cuda_error_system_driver_mismatch|cudaerrorsystemdrivermismatch",
    re.IGNORECASE,
)
DATACENTER_MODEL = lazy_re.compile(
    r"^(?:[abhlt]\d{1,3}[a-z]?|gh\d{3}|gb\d{3}|[bv]\d{3}s?|[pkm]\d{1,3})$",
    re.IGNORECASE,
)
CONSUMER_WORDS = ("geforce", "quadro", "titan", "rtx", "gtx", "nvs")
COMPAT_CUDA = lazy_re.compile(r"cuda-(\d+)\.(\d+)[\\/]compat\b")


def is_datacenter_gpu(name: str) -> bool | None:
    """Whether a GPU model name is a data-center part, the only kind CUDA forward compatibility runs on;
    None when the name says neither."""
    words = [w for w in re.split(r"[^0-9a-z]+", name.lower()) if w]
    if "tesla" in words:
        return True
    if any(w in CONSUMER_WORDS for w in words):
        return False
    if any(DATACENTER_MODEL.match(w) for w in words):
        return True
    return None


def _is_compat(path: str) -> bool:
    return "compat" in re.split(r"[\\/]", path)


def _foreign_libcuda(ctx: RuleContext) -> LibraryFile | None:
    """The libcuda.so.1 a plain dlopen gets, when it is a forward-compatibility copy or another
    version than the running driver."""
    libs = ctx.facts.libraries
    driver = ctx.facts.driver
    running = driver.driver_version if driver is not None and driver.nvml_state == "ok" else None
    for f in libs.files if libs else ():
        if f.kind != "libcuda" or not f.loader_default:
            continue
        if _is_compat(f.path) and not (f.version and running and f.version == running):
            return f
        if (
            f.version
            and running
            and f.version != running
            and f.location in ("cuda-toolkit", "ld_library_path")
        ):
            return f
    return None


@rule(
    "GD112",
    "The loaded libcuda is the running NVIDIA driver's own, not a forward-compatibility copy",
    requires=causes.DRIVER,
    blocks_gpu=True,
    problem="A forward-compatibility libcuda is loaded instead of the running driver's own",
    part="libraries",
)
def forward_compat_libcuda_loaded(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor not in ("linux", "unknown"):
        return
    lib = _foreign_libcuda(ctx)
    errors = framework_errors(ctx)
    said_804 = [(who, t) for who, t in errors if COMPAT_UNSUPPORTED.search(t)]
    said_803 = [(who, t) for who, t in errors if DRIVER_MISMATCH.search(t)]
    driver = ctx.facts.driver
    running = driver.driver_version if driver is not None and driver.nvml_state == "ok" else None
    gpus = [g.name for g in driver.gpus] if driver is not None else []
    consumer = [name for name in gpus if is_datacenter_gpu(name) is False]
    lib_older = bool(lib and lib.version and running and older(lib.version, running))
    unsupported_hw = bool(said_804 or (lib is not None and consumer and not lib_older))
    mismatch = bool(said_803 or lib_older)
    if not (unsupported_hw or mismatch):
        return
    seen: list[str] = []
    if lib is not None:
        seen.append(
            f"libcuda.so.1 resolves to {lib.path}" + (f" (driver {lib.version})" if lib.version else "")
        )
    if running:
        seen.append(f"running NVIDIA driver {running}" + (f": {', '.join(gpus)}" if gpus else ""))
    seen += [f"{who}: {text[:200]}" for who, text in (*said_804, *said_803)]
    folder = str(PurePosixPath(lib.path).parent) if lib is not None else None
    cuda = _compat_cuda(lib.path) if lib is not None else None
    if unsupported_hw:
        what = (
            f"the {', '.join(consumer)} is not a data-center GPU"
            if consumer
            else "this GPU does not support it"
        )
        message = (
            "CUDA forward compatibility is in use"
            + (f" ({lib.path})" if lib is not None else "")
            + f", but {what}: CUDA fails with Error 804 (forward compatibility was attempted on non supported HW)"
        )
        why = (
            "A cuda-compat package replaces the driver's libcuda.so.1 with a newer one so that a new CUDA runs "
            "on an old driver; NVIDIA supports that only on data-center GPUs (and a few NGC-ready RTX cards). "
            "On a GeForce or Quadro the newer libcuda refuses to start."
        )
    else:
        message = (
            "The loader gives programs "
            + (
                "a forward-compatibility libcuda"
                if lib is None or _is_compat(lib.path)
                else "another driver's libcuda"
            )
            + (f" {lib.version}" if lib is not None and lib.version else "")
            + (f" older than the running driver {running}" if running and lib_older else "")
            + ": CUDA fails with Error 803 (unsupported display driver / cuda driver combination)"
        )
        why = (
            "The libcuda.so.1 of a cuda-compat package only works above an older kernel driver; next to a newer "
            "driver (the host was upgraded, or the image carries an old compat package) the user-space and "
            "kernel parts disagree and every CUDA call fails."
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=message,
        why=why,
        seen=tuple(seen),
        fixes=_compat_fixes(ctx, folder, cuda, upgrade=unsupported_hw, running=running, lib=lib),
    )


def _compat_cuda(path: str) -> str | None:
    match = COMPAT_CUDA.search(path)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def _compat_fixes(
    ctx: RuleContext,
    folder: str | None,
    cuda: str | None,
    *,
    upgrade: bool,
    running: str | None,
    lib: LibraryFile | None,
) -> tuple[Fix, ...]:
    fixes: list[Fix] = []
    libs = ctx.facts.libraries
    if folder and (
        (libs is not None and folder in libs.ld_library_path)
        or (lib is not None and lib.location == "ld_library_path")
    ):
        fixes.append(
            ctx.fix_in_container(f"Take {folder} out of LD_LIBRARY_PATH", ld_library_path_without([folder]))
        )
    pattern = folder or "compat"
    fixes.append(
        ctx.fix_in_container(
            "Take the compat folder out of the loader's configuration and rebuild its cache; then libcuda.so.1 "
            "must be the driver's own",
            f"grep -rlF '{pattern}' /etc/ld.so.conf.d/",
            f"grep -rlF '{pattern}' /etc/ld.so.conf.d/ | xargs -r sudo sed -i '\\#{pattern}#d'",
            "sudo ldconfig",
            "ldconfig -p | grep libcuda.so.1",
            needs_admin=True,
        )
    )
    if cuda is not None:
        package = f"cuda-compat-{cuda.replace('.', '-')}"
        family = distro_family(ctx.facts.platform)
        remove = (
            f"sudo dnf remove -y {package}"
            if family in ("rhel", "fedora")
            else f"sudo apt-get remove -y {package}"
        )
        platform = ctx.facts.platform
        if platform is not None and platform.container:
            manager = "dnf" if family in ("rhel", "fedora") else "apt-get"
            fixes.append(
                ctx.fix_in_container(
                    f"Or remove the {package} package in this container (until it is recreated from its image)",
                    f"{manager} remove -y {package}",
                    "ldconfig",
                )
            )
            fixes.append(
                ctx.fix_on_host(
                    "And for good, in the image: add this line to its Dockerfile, then rebuild it",
                    f"RUN {manager} remove -y {package} && ldconfig",
                )
            )
        else:
            fixes.append(
                ctx.fix(f"Or remove the {package} package", remove, "sudo ldconfig", needs_admin=True)
            )
    if upgrade:
        requirement = ctx.matrix.driver_requirement(cuda, "linux") if cuda else None
        minimum = requirement.toolkit_minimum if requirement else None
        if minimum is None and lib is not None and lib.version:
            minimum = lib.version
        if minimum is not None and (running is None or older(running, minimum)):
            for fix in install_driver_fixes(ctx, minimum=minimum):
                fixes.append(
                    dataclasses.replace(
                        fix,
                        summary=f"Or upgrade the host's NVIDIA driver to {minimum} or newer, which runs CUDA "
                        f"{cuda or 'this'} without the compat package (still remove it): "
                        f"{fix.summary[0].lower()}{fix.summary[1:]}",
                        needs_reboot=True,
                    )
                )
    return tuple(fixes)
