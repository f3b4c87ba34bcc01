"""GD41x–GD42x: the installed TensorFlow build against this machine (its CUDA wheels, Python, GPUs).

`tf_build` also serves the CUDA, driver and Windows families: it says what the installed
TensorFlow needs, in TensorFlow's own words where it said them (build info, log lines, its
`Requires-Dist` pins) and from the matrix only where it could not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from packaging.specifiers import SpecifierSet

from gpudoctor import lazy_re
from gpudoctor.facts import Distribution
from gpudoctor.matrix import (
    System,
    TensorFlowBuild,
    kernel_support,
)
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.requirements import framework_pins
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import (
    and_cuda_install,
    tf_crossing,
    tf_install_commands,
    tf_install_spec,
    tf_move_spec,
)
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import (
    TfBuild,
    and_cuda_pins,
    files_named,
    framework_signs,
    gpu_capabilities,
    normalise_targets,
    python_range,
    python_series,
    tf_build,
    tf_conda_managed,
)
from gpudoctor.versions import major_of, parse_version, series_key

PIP_INSTALL_PAGE = "https://www.tensorflow.org/install/pip"
CUDA_CACHE_BYTES = "4294967296"


# ----------------------------------------------------------------------------------------------
# GD411: TF >= 2.14 on Linux with no CUDA libraries at all


@rule(
    "GD411",
    "TensorFlow's CUDA libraries are installed",
    requires=causes.DRIVER,
    needs=("tensorflow",),
    problem="TensorFlow's CUDA libraries are not installed",
    part="tensorflow",
)
def no_cuda_libraries(ctx: RuleContext) -> Iterator[Verdict]:
    build = tf_build(ctx)
    if build is None or ctx.flavor not in ("linux", "wsl") or build.found_gpus or tf_conda_managed(ctx):
        return
    first = ctx.matrix.platform.tensorflow_first_and_cuda
    if not build.at_least(first) or build.gpu_build is False or build.cudart is None:
        return
    release = build.release
    runtime_wheels = [
        d
        for d in (ctx.distribution(name) for name in (release.and_cuda if release else {}))
        if d is not None and "cuda-runtime" in d.name
    ] or [d for d in _python_dists(ctx) if re.fullmatch(r"nvidia-cuda-runtime(-cu\d+)?", d.name)]
    copies = files_named(ctx, build.cudart)
    if runtime_wheels or copies:
        return
    tf = ctx.facts.tensorflow
    said = tf is not None and (
        build.cudart in tf.missing_libraries or tf.cuda_drivers_not_found or tf.cannot_dlopen_gpu_libraries
    )
    if not said and ctx.facts.libraries is None:
        return  # neither TensorFlow nor a library search says the runtime is missing
    others = [
        f"{f.name} ({f.location})"
        for f in (ctx.facts.libraries.files if ctx.facts.libraries else ())
        if f.kind == "cudart"
    ]
    seen = [
        f"{build.label} ({build.package}), built with CUDA {build.cuda} ({build.cuda_from})",
        f"it loads {build.cudart}",
        "nvidia-cuda-runtime wheel: not installed",
        f"{build.cudart}: not found on this machine"
        + (f" (other CUDA runtimes: {', '.join(others)})" if others else ""),
    ]
    if tf is not None and tf.missing_libraries:
        seen.append("TensorFlow could not load: " + ", ".join(tf.missing_libraries))
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{build.label} finds no CUDA {build.cuda_major} libraries: neither the nvidia-* wheels of "
        f"tensorflow[and-cuda] nor a system {build.cudart} are installed",
        why=(
            f"TensorFlow's Linux wheels do not contain CUDA; from {first} the `[and-cuda]` extra installs "
            "the exact CUDA and cuDNN wheels it was built with, which TensorFlow finds on its own. "
            "Without them it runs on the CPU."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                f"Install TensorFlow {build.version} together with the CUDA {build.cuda} and cuDNN wheels it "
                "pins",
                *and_cuda_install(ctx, build),
            ),
        ),
    )


def _python_dists(ctx: RuleContext) -> tuple[Distribution, ...]:
    return ctx.facts.python.distributions if ctx.facts.python else ()


# ----------------------------------------------------------------------------------------------
# GD412: nvidia-* wheels against TensorFlow's own [and-cuda] pins


_CRITICAL = lazy_re.compile(r"^nvidia-(cudnn|cuda-runtime)")


@rule(
    "GD412",
    "The nvidia-* wheels match TensorFlow's [and-cuda] pins",
    requires=(*causes.DRIVER, "GD411", *causes.WHEELS_IN_CONFLICT),
    needs=("tensorflow", "python"),
    problem="The nvidia-* wheels do not match TensorFlow's [and-cuda] pins",
    part="tensorflow",
)
def and_cuda_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    build = tf_build(ctx)
    if (
        build is None
        or ctx.flavor not in ("linux", "wsl")
        or tf_conda_managed(ctx)
        or build.gpu_build is False
    ):
        return
    if _judged_by_gd801(ctx, build):
        return
    pins, source = and_cuda_pins(ctx, build)
    if not pins:
        return
    installed = {name: ctx.distribution(name) for name in pins}
    if not any(installed.values()):
        return  # the wheel route is not in use; GD411 and the library rules judge the system route
    runtime_wheel = any(d is not None and "cuda-runtime" in name for name, d in installed.items())
    wrong: list[tuple[str, str, SpecifierSet, bool]] = []
    absent: list[str] = []
    for name, spec in sorted(pins.items()):
        dist = installed[name]
        if dist is None:
            if runtime_wheel:  # a lone wheel next to a system CUDA is not the wheel route
                absent.append(name)
            continue
        version = parse_version(dist.version)
        if version is not None and spec.contains(version, prereleases=True):
            continue
        wrong.append((name, dist.version, spec, _breaks(name, dist.version, spec)))
    if not wrong and not absent:
        return
    severe = any(b for *_, b in wrong) or any(_CRITICAL.match(n) for n in absent)
    if build.found_gpus:
        severe = False
    parts = [f"{name} {version} (TensorFlow wants {spec})" for name, version, spec, _ in wrong]
    parts += [f"{name} missing (TensorFlow wants {pins[name]})" for name in absent]
    fixes: list[Fix] = [
        ctx.fix(
            f"Reinstall the CUDA wheels TensorFlow {build.version} pins",
            *and_cuda_install(ctx, build),
        )
    ]
    exact = [f"{name}{pins[name]}" for name in [*(w[0] for w in wrong), *absent]]
    fixes.append(ctx.fix("Or set just these wheels to the pinned versions", ctx.pip_install(*exact)))
    torch = ctx.distribution("torch")
    if torch is not None:
        fixes.append(
            ctx.fix(
                f"torch {torch.version} pins its own nvidia-* wheels; keep TensorFlow and PyTorch in "
                "separate virtual environments so each gets its own",
                f"{ctx.python_cmd} -m venv tf-env",
            )
        )
    yield Verdict(
        severity=Severity.ERROR if severe else Severity.WARNING,
        message=f"{build.label} was installed with CUDA wheels it does not pin: " + "; ".join(parts),
        why=(
            "TensorFlow loads the cuDNN and CUDA libraries from the nvidia-* wheels next to it; its "
            "`[and-cuda]` extra pins the versions it was built and tested with. Another package (often "
            "torch or jax) or a manual upgrade replaced them: a different cuDNN major or an older cuDNN "
            "stops the GPU, other drift can fail at run time."
        ),
        seen=(f"pins from {source}", *parts),
        fixes=tuple(fixes),
    )


def _judged_by_gd801(ctx: RuleContext, build: TfBuild) -> bool:
    """TensorFlow's own metadata carries its [and-cuda] pins and the extra is in use: GD801 judges them,
    with every other framework's pins and the one install set that satisfies all (or the venv to split
    off), so this rule, which sees TensorFlow alone, keeps to facts that lack them (the matrix's table)."""
    pins = next(
        (fw for fw in framework_pins(ctx.facts.python, ctx.facts.platform) if fw.framework == build.package),
        None,
    )
    return pins is not None and any(p.extra == "and-cuda" for p in pins.pins)


def _breaks(name: str, version: str, spec: SpecifierSet) -> bool:
    """A wheel version that stops TensorFlow's GPU: another major than pinned, or an older cuDNN."""
    have = parse_version(version)
    floors = [parse_version(s.version) for s in spec if s.operator in ("==", ">=", "~=", "===")]
    floor = next((f for f in floors if f is not None), None)
    if have is None or floor is None:
        return bool(_CRITICAL.match(name))
    if have.release[0] != floor.release[0]:
        return True
    return name.startswith("nvidia-cudnn") and have.release[:2] < floor.release[:2]


# ----------------------------------------------------------------------------------------------
# GD413: a TensorFlow for this Python


@rule(
    "GD413",
    "TensorFlow has a wheel for this Python",
    needs=("python",),
    problem="TensorFlow has no wheel for this Python",
    part="tensorflow",
)
def python_unsupported_by_tensorflow(ctx: RuleContext) -> Iterator[Verdict]:
    series = python_series(ctx)
    if series is None:
        return
    build = tf_build(ctx)
    supporting = ctx.matrix.tensorflow_versions_for_python(series)
    if build is None:
        latest = max(ctx.matrix.tensorflow, key=lambda r: series_key(r.version), default=None)
        if latest is None or supporting or not _newer_than(series, latest.python):
            return
        yield Verdict(
            severity=Severity.INFO,
            message=f"No TensorFlow release has wheels for Python {series} yet: the newest, "
            f"{latest.version}, supports Python {python_range(latest.python)}",
            why="`pip install tensorflow` fails with 'No matching distribution found' on this Python.",
            seen=(f"Python {series}", "tensorflow: not installed"),
            fixes=_other_python_fixes(ctx, python_range(latest.python), f"tensorflow=={latest.version}.*"),
        )
        return
    if build.release is None or build.imported:
        return
    spec = (
        build.row.python if build.row is not None and build.row.python is not None else build.release.python
    )
    if spec.contains(f"{series}.0", prereleases=True):
        return
    tf = ctx.facts.tensorflow
    wanted = python_range(spec)
    seen = [
        f"Python {ctx.facts.python.version if ctx.facts.python else series}",
        f"{build.label} ({build.package}): wheels for Python {wanted}",
    ]
    if tf is not None and tf.import_error:
        seen.append("import tensorflow: " + tf.import_error.strip().splitlines()[-1][:200])
    fixes = list(_other_python_fixes(ctx, wanted, f"tensorflow=={build.version}"))
    if supporting:
        later = [s for s in supporting if series_key(s) > series_key(build.version)]
        nearest = min(later, key=series_key) if later else max(supporting, key=series_key)
        seen.append(f"TensorFlow releases for Python {series}: {', '.join(supporting)}")
        fixes.insert(
            0,
            ctx.fix(
                f"Or keep Python {series} and install TensorFlow {nearest}, the nearest release with wheels "
                "for it" + tf_crossing(ctx, nearest),
                *tf_install_commands(ctx, tf_move_spec(ctx, nearest)),
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{build.label} has no wheel for Python {series}: it supports Python {wanted}"
        + (
            f"; TensorFlow {', '.join(supporting)} support{'s' if len(supporting) == 1 else ''} {series}"
            if supporting
            else ""
        ),
        why=(
            "TensorFlow ships compiled extensions per Python minor version; pip refuses it on another Python "
            "('No matching distribution found'), and a copy installed anyway does not import."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _newer_than(series: str, spec: SpecifierSet) -> bool:
    major, minor = (int(x) for x in series.split("."))
    allowed = [m for m in range(25) if spec.contains(f"3.{m}.0", prereleases=True)]
    return major == 3 and bool(allowed) and minor > max(allowed)


def _other_python_fixes(ctx: RuleContext, wanted: str, spec: str) -> tuple[Fix, ...]:
    python = wanted.split("–")[-1]
    if ctx.in_conda:
        return (
            ctx.fix(
                f"Create a conda environment with Python {python} and install TensorFlow there",
                f"conda create -y -n tf python={python}",
                "conda activate tf",
                f'python -m pip install "{spec}"'
                if ctx.shell != "bash"
                else f"python -m pip install '{spec}'",
            ),
        )
    if ctx.flavor == "windows":
        return (
            ctx.fix(
                f"Install Python {python} from python.org (the py launcher comes with it), then make a "
                "virtual environment with it",
                f"winget install -e --id Python.Python.{python}",
                f"py -{python} -m venv .venv",
                ".venv\\Scripts\\Activate.ps1",
                f'python -m pip install "{spec}"',
            ),
        )
    return (
        ctx.fix(
            f"Make a virtual environment with Python {python} (install it with your package manager, pyenv or "
            "uv if missing) and install TensorFlow there",
            f"python{python} -m venv .venv",
            ". .venv/bin/activate",
            f"python -m pip install '{spec}'",
        ),
    )


# ----------------------------------------------------------------------------------------------
# GD414: kernels for this GPU


def releases_with_kernels(ctx: RuleContext, cc: str, system: System) -> list[str]:
    """TensorFlow series whose build for `system` has SASS for `cc` and wheels for this Python, oldest first."""
    series = python_series(ctx)
    found = []
    for release in ctx.matrix.tensorflow:
        row = release.windows if system == "windows" else release.linux
        if row is None or not row.compute_capabilities:
            continue
        spec = row.python or release.python
        if series is not None and not spec.contains(f"{series}.0", prereleases=True):
            continue
        if kernel_support(cc, normalise_targets(row.compute_capabilities)) == "native":
            found.append(release.version)
    return sorted(found, key=series_key)


def ignored_for_capability(ctx: RuleContext) -> dict[str, tuple[str, str]]:
    """TensorFlow's own log: compute capability -> (its minimum, the log line) for GPUs it ignored
    as too old ("Ignoring visible gpu device ... The minimum required Cuda capability is 3.5."), read
    through the frameworks' one map of explicit lines (views.FRAMEWORK_SIGNS, hardware #10.9)."""
    found: dict[str, tuple[str, str]] = {}
    for sign in framework_signs(ctx, "gpu-outside-build"):
        if sign.framework == "TensorFlow" and "cc" in sign.found and "minimum" in sign.found:
            found.setdefault(sign.found["cc"], (sign.found["minimum"], sign.text.strip()))
    return found


def _series_row(ctx: RuleContext, series: str, system: System) -> TensorFlowBuild | None:
    release = ctx.matrix.tensorflow_release(series)
    if release is None:
        return None
    return release.windows if system == "windows" else release.linux


def _keeps_libraries(row: TensorFlowBuild | None, build: TfBuild) -> bool:
    """`row` loads the same CUDA runtime and cuDNN major as the installed build: no library changes."""
    return (
        row is not None
        and build.cudart is not None
        and row.cudart == build.cudart
        and build.cudnn_major is not None
        and major_of(row.cudnn) == build.cudnn_major
    )


def _kernel_candidates(ctx: RuleContext, build: TfBuild, cc: str) -> tuple[str | None, str | None]:
    """(the newest release with kernels for `cc` that keeps this build's CUDA runtime and cuDNN major,
    preferring this TensorFlow major; the newest release with kernels for `cc` for this Python)."""
    installed = parse_version(build.version)
    series = releases_with_kernels(ctx, cc, build.system)
    if installed is None or not installed.is_prerelease:
        series = [s for s in series if s != build.release_series]
    keeping = [s for s in series if _keeps_libraries(_series_row(ctx, s, build.system), build)]
    same_major = [s for s in keeping if installed is not None and series_key(s).major == installed.major]
    preferred = same_major or keeping
    return (preferred[-1] if preferred else None), (series[-1] if series else None)


def _libraries_text(row: TensorFlowBuild | None) -> str:
    return f"CUDA {row.cuda} and cuDNN {row.cudnn}" if row is not None else "other CUDA libraries"


def _targets_verified(ctx: RuleContext, series: str, system: System) -> bool:
    row = _series_row(ctx, series, system)
    return row is None or row.compute_capabilities_verified


@rule(
    "GD414",
    "TensorFlow has kernels for this GPU",
    requires=(*causes.DRIVER, "GD413", "GD511"),
    needs=("driver", "tensorflow"),
    problem="TensorFlow has no kernels for this GPU",
    part="tensorflow",
)
def no_kernels_for_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    build = tf_build(ctx)
    if build is None or not build.targets or build.gpu_build is False:
        return
    from_table = build.targets_from != "TensorFlow's build info"
    table_unverified = from_table and build.row is not None and not build.row.compute_capabilities_verified
    ignored = ignored_for_capability(ctx)
    for name, cc in gpu_capabilities(ctx):
        support = kernel_support(cc, build.targets)
        if support == "native":
            continue
        logged = ignored.get(cc)
        targets_unverified = table_unverified and logged is None
        native = [s for s in releases_with_kernels(ctx, cc, build.system) if s != build.release_series]
        seen = (
            f"{name}: compute capability {cc}",
            *((f"TensorFlow's log: {logged[1]}",) if logged else ()),
            f"{build.label} targets {', '.join(build.targets)} ({build.targets_from}"
            + (
                ", taken from TensorFlow's release build scripts, not read from the wheel)"
                if targets_unverified
                else ")"
            ),
        )
        if support == "ptx":
            fixes = [
                ctx.fix(
                    "Give the driver's JIT cache room for TensorFlow's kernels so the compile happens once",
                    f'$env:CUDA_CACHE_MAXSIZE = "{CUDA_CACHE_BYTES}"'
                    if ctx.shell == "powershell"
                    else f"export CUDA_CACHE_MAXSIZE={CUDA_CACHE_BYTES}",
                )
            ]
            newer = [s for s in native if series_key(s) > series_key(build.release_series or "0")]
            if newer:
                fixes.insert(
                    0,
                    ctx.fix(
                        f"Install TensorFlow {newer[0]}, the nearest release with native kernels for compute "
                        f"capability {cc}" + tf_crossing(ctx, newer[0]),
                        *tf_install_commands(ctx, tf_install_spec(ctx, newer[0], build.package)),
                    ),
                )
            yield Verdict(
                severity=Severity.WARNING,
                message=f"{build.label} has no native kernels for the {name} (compute capability {cc}): the "
                "driver JIT-compiles them from PTX, so the first start takes minutes",
                why=(
                    "A build runs natively on GPUs of a major it compiled SASS for; newer GPUs run its PTX, "
                    "which the driver compiles at start-up and caches (CUDA_CACHE_MAXSIZE). It works but the "
                    "first start can take many minutes, and some kernels may be slower."
                ),
                seen=seen,
                fixes=tuple(fixes),
            )
            continue
        keep, newest = _kernel_candidates(ctx, build, cc)
        python = python_series(ctx)
        for_python = f" that has wheels for Python {python}" if python else ""
        fixes = []
        if keep is not None:
            fixes.append(
                ctx.fix(
                    f"Install TensorFlow {keep}: the same {_libraries_text(_series_row(ctx, keep, build.system))} "
                    f"as this build, with kernels for compute capability {cc}"
                    + (
                        ""
                        if _targets_verified(ctx, keep, build.system)
                        else " (per TensorFlow's release build scripts)"
                    )
                    + tf_crossing(ctx, keep),
                    *tf_install_commands(ctx, tf_install_spec(ctx, keep, build.package)),
                )
            )
        if newest is not None and newest != keep:
            fixes.append(
                ctx.fix(
                    f"{'Or install' if keep else 'Install'} TensorFlow {newest}, the newest release with kernels for "
                    f"compute capability {cc}{for_python}; it needs "
                    f"{_libraries_text(_series_row(ctx, newest, build.system))}" + tf_crossing(ctx, newest),
                    *tf_install_commands(ctx, tf_install_spec(ctx, newest, build.package)),
                )
            )
        fixes.append(
            ctx.fix(
                f"{'Or run' if fixes else 'Run'} on a GPU this build supports, or build TensorFlow from source "
                f"with TF_CUDA_COMPUTE_CAPABILITIES={cc}",
            )
        )
        if keep is not None:
            hint = (
                f"; TensorFlow {keep} {'has' if _targets_verified(ctx, keep, build.system) else 'should have'} "
                "them and keeps "
                f"{_libraries_text(_series_row(ctx, keep, build.system))}"
            )
        elif newest is not None:
            hint = (
                f"; TensorFlow {newest} is the newest release with them"
                + (f" for Python {python}" if python else "")
                + f" (it needs {_libraries_text(_series_row(ctx, newest, build.system))})"
            )
        else:
            hint = ""
        yield Verdict(
            severity=Severity.WARNING if targets_unverified else Severity.ERROR,
            # even when only likely, it is the best explanation of "TensorFlow lists no GPU" (GD402)
            settles_dependents=True,
            message=f"{build.label} {'probably has' if targets_unverified else 'has'} no kernels for the "
            f"{name} (compute capability {cc}){hint}",
            why=(
                "GPU code runs only on the architectures a build compiled it for (SASS of the same major "
                "and a lower or equal minor) or can JIT-compile from PTX of an older architecture; this "
                "build has neither for this GPU, so TensorFlow ignores it or fails with "
                "'device kernel image is invalid'."
                + (
                    " This build's targets come from TensorFlow's release build scripts, not from the wheel "
                    "itself, so treat them as likely rather than certain."
                    if targets_unverified
                    else ""
                )
            ),
            seen=seen,
            fixes=tuple(fixes),
        )
