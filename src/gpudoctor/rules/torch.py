"""GD6xx: PyTorch — imports, is a CUDA build, runs on this driver, has kernels for this GPU."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.facts import CondaPackage, DriverFacts, TorchFacts
from gpudoctor.matrix import TorchRelease, TorchVariant, kernel_support
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import (
    TORCH_INDEX_VARIANT,
    TORCH_WHL,
    driver_upgrade_fix,
    same_build_install,
    torch_build_spec,
    torch_on_index,
    torch_release_for,
)
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import driver_system, gpu_seen, variable_set, working_driver
from gpudoctor.versions import local_part, major_minor, public_version, release_of, series_key

CONDA_PYTORCH_CUDA = ("11.6", "11.7", "11.8", "12.1", "12.4")  # pytorch-cuda on the pytorch channel


def torch_facts(ctx: RuleContext) -> TorchFacts:
    facts = ctx.facts.torch
    assert facts is not None  # every rule here has needs=("torch",)
    return facts


def cuda_tag(cuda: str) -> str:
    """ "12.4" -> "cu124"."""
    major, _, minor = cuda.partition(".")
    return f"cu{major}{minor.split('.')[0] or '0'}"


def local_variant(version: str | None) -> str | None:
    """The `+cu124` / `+cpu` / `+rocm6.2` local part of a torch version, if any."""
    if version and "+" in version:
        return version.split("+", 1)[1]
    return None


def is_cpu_build(t: TorchFacts) -> bool:
    if t.imported and t.version:
        return t.cuda_version is None and t.hip_version is None
    if local_variant(t.version or t.dist_version) == "cpu":
        return True
    # conda-forge names CPU builds "cpu_…", the pytorch channel "py3.8_cpu_0"
    return bool(t.conda_build and re.search(r"(?:^|_)cpu(?:_|$)", t.conda_build)) or t.conda_cpuonly


def torch_version(t: TorchFacts) -> str | None:
    return t.version or t.dist_version or t.conda_version


def pip_torch_fix(ctx: RuleContext, version: str, variant: str, summary: str) -> Fix:
    """The exact pip command for torch `version` in CUDA `variant`, in the form that release used (a
    pre-release build is replaced by the release it leads to: pip finds no "2.10.0a0" on the index); in a
    container it runs inside the container."""
    spec, index = torch_build_spec(torch_release_for(version), variant)
    return ctx.fix_in_container(summary, ctx.pip_install(spec, options=("--force-reinstall", *index)))


def runnable_variants(ctx: RuleContext, version: str, driver: DriverFacts) -> list[TorchVariant]:
    """CUDA variants of this torch release the driver runs, newest CUDA first."""
    if driver.driver_version:
        return ctx.matrix.torch_variants_for_driver(version, driver.driver_version, driver_system(ctx))
    limit = major_minor(driver.cuda_driver_version)
    release = ctx.matrix.torch_release(version)
    if release is None or limit is None:
        return []
    fits = [v for v in release.variants if v.cuda and (major_minor(v.cuda) or (99, 0)) <= limit]
    return sorted(fits, key=lambda v: major_minor(v.cuda) or (0, 0), reverse=True)


def variant_for_driver(ctx: RuleContext, version: str, driver: DriverFacts) -> tuple[str, bool] | None:
    """The newest CUDA variant tag of `version` this driver runs, and whether the matrix knows it
    (False: guessed from the driver's CUDA version for a release the matrix does not list)."""
    variants = runnable_variants(ctx, version, driver)
    if variants:
        return variants[0].name, True
    if ctx.matrix.torch_release(version) is None:
        cuda = driver.cuda_driver_version
        if cuda is None and driver.driver_version:
            cuda = ctx.matrix.newest_cuda_for_driver(driver.driver_version, driver_system(ctx))
        if cuda:
            return cuda_tag(cuda), False
    return None


@rule(
    "GD601",
    "PyTorch imports",
    requires=(*causes.BROKEN_PYTHON, *causes.SHADOWED_WHEELS, *causes.WHEELS_IN_CONFLICT, "GD521"),
    needs=("torch",),
    problem="PyTorch fails to import",
    part="torch",
)
def torch_import_fails(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    if t.probe_error:
        yield Verdict(
            severity=Severity.WARNING,
            message=f"gpudoctor could not examine PyTorch in this interpreter: {t.probe_error}",
            why="The target interpreter did not run gpudoctor's small PyTorch check, so nothing about PyTorch "
            "could be judged.",
            seen=(f"python: {ctx.facts.target.python or '?'}",),
            fixes=(
                ctx.fix(
                    "Run the same import by hand and read its error", f'{ctx.python_cmd} -c "import torch"'
                ),
            ),
        )
        return
    if not t.installed or t.imported:
        return
    version = torch_version(t) or "?"
    error = t.import_error or "unknown error"
    if version != "?" and not torch_on_index(version):
        fixes = [
            ctx.fix(
                f"This PyTorch ({version}) is not a build pip can fetch again (it came with a container image "
                "or was built from source): pull the image again, or rebuild it, rather than reinstall it "
                "with pip"
            )
        ]
    else:
        fixes = [
            ctx.fix(
                "Reinstall the same PyTorch release cleanly (a half-finished or mixed install is the usual cause)",
                same_build_install(ctx, version, options=("--force-reinstall", "--no-cache-dir"))
                if version != "?"
                else ctx.pip_install("torch", options=("--force-reinstall", "--no-cache-dir")),
            )
        ]
    known = ctx.matrix.known_issue("torch", public_version(version), ctx.flavor, "import_error")
    if known is not None and known.symptom in error:
        fixed, issue = known.fixed_in, known.issue
        variant = local_variant(version)
        fixes.insert(
            0,
            ctx.fix(
                f"Move to PyTorch {fixed}, which fixes this release's Windows wheels ({issue}), in the same "
                f"{variant or 'PyPI'} build",
                same_build_install(ctx, f"{fixed}+{variant}" if variant else fixed),
            ),
        )
    if (
        ctx.shell == "bash"
        and variable_set(ctx, "LD_LIBRARY_PATH")
        and re.search(r"lib\w+\.so|cannot open shared object", error)
    ):
        fixes.insert(
            0,
            ctx.fix(
                "A CUDA library torch links against is missing or a different one is found first: run without "
                "LD_LIBRARY_PATH overrides and try again",
                f'env -u LD_LIBRARY_PATH {ctx.python_cmd} -c "import torch"',
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch {version} is installed but `import torch` fails: {error}",
        why="Nothing that uses PyTorch can run until the import works.",
        seen=(
            f"torch {version}",
            f"import error: {error}",
            *(f"module: {t.module_path}",) * bool(t.module_path),
        ),
        fixes=tuple(fixes),
    )


def _minor(version: str) -> str | None:
    """ "11.3.1" -> "11.3"."""
    key = major_minor(version)
    return f"{key[0]}.{key[1]}" if key else None


def conda_cuda_package(ctx: RuleContext) -> CondaPackage | None:
    """The conda package that picks the CUDA of a pytorch-channel build: pytorch-cuda (1.13-2.5),
    else cudatoolkit (up to 1.12)."""
    conda = ctx.facts.conda
    if conda is None:
        return None
    by_name = {p.name: p for p in conda.packages if p.version and major_minor(p.version)}
    return by_name.get("pytorch-cuda") or by_name.get("cudatoolkit")


def conda_forge_env(ctx: RuleContext, t: TorchFacts) -> bool:
    """The environment is built from conda-forge (its PyTorch, or else its Python, came from there)."""
    if t.conda_channel:
        return t.conda_channel == "conda-forge"
    conda = ctx.facts.conda
    python = next((p for p in conda.packages if p.name == "python"), None) if conda else None
    return python is not None and python.channel == "conda-forge"


def built_cudas(release: TorchRelease) -> list[str]:
    """The CUDA versions a release was built for, oldest first."""
    cudas = [v.cuda for v in release.variants if v.cuda and major_minor(v.cuda)]
    return sorted(cudas, key=lambda c: major_minor(c) or (0, 0))


def on_pytorch_channel(ctx: RuleContext, release: Version) -> bool:
    last = release_of(ctx.matrix.platform.torch_last_conda_channel)
    return last is not None and release < Version(f"{last.major}.{last.minor + 1}")


def pytorch_channel_fix(ctx: RuleContext, version: str, cuda: str, summary: str) -> Fix | None:
    """PyTorch's own conda build of `version` (a release "1.9.0" or a series "1.10") for CUDA `cuda`,
    written the way the pytorch channel's install pages did for that release."""
    release = release_of(version)
    if release is None or not on_pytorch_channel(ctx, release):
        return None
    pinned = version if version.count(".") >= 2 else f"{version}.*"
    if release >= Version("1.13"):
        if cuda not in CONDA_PYTORCH_CUDA:
            return None
        command = ctx.conda_install(
            f"pytorch::pytorch={pinned}", f"pytorch-cuda={cuda}", channels=("pytorch", "nvidia")
        )
    else:
        # cudatoolkit 11.1 and 11.6 (and 11.3 before 1.11) were not on the defaults channel; and the
        # build pin makes conda fail loudly instead of falling back to the CPU build.
        needs_forge = cuda in ("11.1", "11.6") or (cuda == "11.3" and release < Version("1.11"))
        command = ctx.conda_install(
            f"pytorch::pytorch={pinned}=*cuda*",
            f"cudatoolkit={cuda}",
            channels=("pytorch", "conda-forge") if needs_forge else ("pytorch",),
        )
    return ctx.fix(summary, command)


def _driver_runs(ctx: RuleContext, driver: DriverFacts, cuda: str) -> bool:
    if driver.driver_version:
        return ctx.matrix.driver_runs_cuda(driver.driver_version, cuda, driver_system(ctx)) is not False
    have, need = major_minor(driver.cuda_driver_version), major_minor(cuda)
    return have is None or need is None or need <= have


def _closest_cuda(cudas: list[str], wanted: tuple[int, int] | None) -> str | None:
    """The newest of `cudas` not above `wanted`, else the oldest; the newest when nothing is wanted."""
    ordered = sorted(cudas, key=lambda c: major_minor(c) or (0, 0))
    if not ordered:
        return None
    if wanted is None:
        return ordered[-1]
    below = [c for c in ordered if (major_minor(c) or (0, 0)) <= wanted]
    return below[-1] if below else ordered[0]


def _nearest_release_for_cuda(ctx: RuleContext, version: Version, cuda: str) -> str | None:
    """The pytorch-channel release series nearest to `version` that was built for `cuda`: the first
    newer one, else the newest older one."""
    python = ctx.facts.python.version if ctx.facts.python else ""
    series: list[Version] = []
    for release in ctx.matrix.torch:
        number = release_of(release.version)
        if number is None or not on_pytorch_channel(ctx, number):
            continue
        if major_minor(cuda) not in {major_minor(c) for c in built_cudas(release)}:
            continue
        if python and not release.python.contains(python, prereleases=True):
            continue
        series.append(number)
    newer = sorted(s for s in series if s > version)
    older = sorted(s for s in series if s < version)
    pick = newer[0] if newer else (older[-1] if older else None)
    return None if pick is None else f"{pick.major}.{pick.minor}"


def channel_mismatch(
    ctx: RuleContext, t: TorchFacts, version: str
) -> tuple[CondaPackage, str, list[str]] | None:
    """A pytorch-channel CPU build next to a cudatoolkit / pytorch-cuda that release was never built
    for: the package, its CUDA ("11.3"), and the CUDA versions the release was built for."""
    if t.conda_channel != "pytorch" or t.conda_cpuonly:
        return None
    package = conda_cuda_package(ctx)
    release = ctx.matrix.torch_release(version)
    if package is None or release is None:
        return None
    cuda = _minor(package.version)
    built = built_cudas(release)
    if cuda is None or not built or major_minor(cuda) in {major_minor(c) for c in built}:
        return None
    return package, cuda, built


def _conda_cpu_build_fixes(ctx: RuleContext, t: TorchFacts, driver: DriverFacts, version: str) -> list[Fix]:
    public = public_version(version)
    release = release_of(public)
    matrix_release = ctx.matrix.torch_release(public)
    fixes: list[Fix] = []
    if t.conda_cpuonly:
        fixes.append(
            ctx.fix(
                "Remove the `cpuonly` package that pins PyTorch to CPU builds", ctx.conda_remove("cpuonly")
            )
        )
    forge = ctx.fix(
        "Install conda-forge's CUDA build of PyTorch (conda picks the CUDA version from the driver)",
        ctx.conda_install(f"pytorch={public}=cuda*", channels=("conda-forge",)),
    )
    if conda_forge_env(ctx, t) and release is not None:
        fixes.append(forge)
    if release is None:
        return fixes  # no version to name in a command
    if not on_pytorch_channel(ctx, release):
        choice = variant_for_driver(ctx, public, driver)
        if choice is not None:
            pip_fix = pip_torch_fix(
                ctx,
                public,
                choice[0],
                f"PyTorch {public} is not on the pytorch conda channel (it ended with "
                f"{ctx.matrix.platform.torch_last_conda_channel}): remove conda's CPU build, then install the "
                f"{choice[0]} build with pip",
            )
            fixes.append(
                dataclasses.replace(
                    pip_fix, commands=(ctx.conda_remove("pytorch", force=True), *pip_fix.commands)
                )
            )
        return fixes if fixes else [forge]
    mismatch = channel_mismatch(ctx, t, public)
    package = conda_cuda_package(ctx)
    wanted = major_minor(package.version) if package else None
    cudas = built_cudas(matrix_release) if matrix_release else []
    runnable = [c for c in cudas if _driver_runs(ctx, driver, c)]
    if release >= Version("1.13"):
        runnable = [c for c in runnable if c in CONDA_PYTORCH_CUDA]
    same = _closest_cuda(runnable, wanted)
    package_name = "pytorch-cuda" if release >= Version("1.13") else "cudatoolkit"
    if same is not None:
        summary = (
            f"Keep PyTorch {public} from the pytorch channel with {package_name} {same}, a CUDA it was built for"
            if mismatch
            else f"Take PyTorch's own conda build with CUDA {same} (the pytorch channel; releases up to "
            f"{ctx.matrix.platform.torch_last_conda_channel})"
        )
        fix = pytorch_channel_fix(ctx, public, same, summary)
        if fix is not None:
            fixes.append(fix)
    if mismatch is not None:
        package, cuda, _ = mismatch
        nearest = _nearest_release_for_cuda(ctx, release, cuda) if _driver_runs(ctx, driver, cuda) else None
        if nearest is not None:
            fix = pytorch_channel_fix(
                ctx,
                nearest,
                cuda,
                f"Or keep {package.name} {cuda} and take PyTorch {nearest}, the nearest release the pytorch "
                f"channel built for CUDA {cuda}",
            )
            if fix is not None:
                fixes.append(fix)
    return fixes if fixes else [forge]


def _cpu_build_fixes(ctx: RuleContext, t: TorchFacts, driver: DriverFacts, version: str) -> list[Fix]:
    conda_installed = t.conda_build is not None and t.installer not in ("pip", "uv")
    if conda_installed:
        return _conda_cpu_build_fixes(ctx, t, driver, version)
    fixes: list[Fix] = []
    choice = variant_for_driver(ctx, version, driver)
    if choice is None:
        return fixes
    tag, known = choice
    summary = (
        f"Install the {tag} build of PyTorch {public_version(version)} (the newest CUDA this driver runs)"
        if known
        else f"Install the {tag} build of PyTorch {public_version(version)}, matching the driver's CUDA "
        f"{driver.cuda_driver_version or ''}".rstrip()
    )
    if ctx.flavor == "windows":
        summary += "; plain `pip install torch` on Windows always gives the CPU build"
    fixes.append(pip_torch_fix(ctx, version, tag, summary))
    return fixes


@rule(
    "GD602",
    "PyTorch is a CUDA build on a machine with an NVIDIA GPU",
    requires=("GD601",),
    needs=("torch",),
    problem="PyTorch is a CPU-only build on a machine with an NVIDIA GPU",
    part="torch",
)
def torch_cpu_build(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not t.installed or not is_cpu_build(t) or ctx.flavor == "macos":
        return
    version = torch_version(t) or "?"
    seen = [f"torch {version}", f"torch.version.cuda: {t.cuda_version}" if t.imported else ""]
    if t.conda_build:
        seen.append(
            f"conda pytorch {t.conda_version or ''} build {t.conda_build} from {t.conda_channel or '?'}"
        )
    if t.conda_cpuonly:
        seen.append("conda package cpuonly is installed")
    seen.append(gpu_seen(driver))
    where = ""
    if t.conda_build and t.conda_channel:
        where = f" (conda build {t.conda_build} from {t.conda_channel})"
    elif ctx.flavor == "windows" and local_variant(t.version) in (None, "cpu"):
        where = " (on Windows the PyPI `torch` wheel is CPU-only)"
    message = f"PyTorch {version} is a CPU-only build{where}, so it cannot use the NVIDIA GPU"
    why = (
        "A CPU-only PyTorch has no CUDA code at all: torch.cuda.is_available() is False and every tensor "
        "stays on the CPU, however well the driver works."
    )
    mismatch = channel_mismatch(ctx, t, public_version(version)) if t.conda_build else None
    if mismatch is not None:
        package, cuda, built = mismatch
        series = ".".join(public_version(version).split(".")[:2])
        message = (
            f"PyTorch {version} is a CPU-only build{where}: the pytorch channel has no PyTorch {series} build "
            f"for {package.name} {cuda} (only CUDA {', '.join(built)}), so conda installed the CPU build"
        )
        why = (
            f"Asked for PyTorch {public_version(version)} next to {package.name} {cuda}, conda found no CUDA "
            f"build of that release that fits and silently took the CPU build, which goes with any "
            f"{package.name}. " + why
        )
        seen.insert(-1, f"conda {package.name} {package.version} from {package.channel or '?'}")
        seen.insert(-1, f"PyTorch {series} CUDA builds: {', '.join(built)}")
    yield Verdict(
        severity=Severity.ERROR,
        message=message,
        why=why,
        seen=tuple(s for s in seen if s),
        fixes=tuple(_cpu_build_fixes(ctx, t, driver, version)),
    )


@rule(
    "GD603",
    "The NVIDIA driver runs PyTorch's CUDA build",
    requires=(*causes.DRIVER, "GD601"),
    needs=("torch", "driver"),
    problem="The NVIDIA driver is too old for PyTorch's CUDA build",
    part="torch",
)
def torch_driver_too_old(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not t.cuda_version:
        return
    system = driver_system(ctx)
    runs = (
        ctx.matrix.driver_runs_cuda(driver.driver_version, t.cuda_version, system)
        if driver.driver_version
        else None
    )
    if runs is None:
        have, need = major_minor(driver.cuda_driver_version), major_minor(t.cuda_version)
        runs = None if have is None or need is None else need <= have
    said = [w for w in t.warnings if "driver on your system is too old" in w]
    if runs is not False and not said:
        return
    version = torch_version(t) or "?"
    requirement = ctx.matrix.driver_requirement(t.cuda_version, system)
    minimum = requirement and requirement.floor
    fixes: list[Fix] = []
    image_build = ctx.in_container and not torch_on_index(version)
    if image_build:
        fixes.append(
            ctx.fix_on_host(
                f"This PyTorch ({version}) came with the container image, built with CUDA {t.cuda_version}: "
                f"run a release of the image built with CUDA {driver.cuda_driver_version or 'the driver runs'} "
                "or older (NGC and NeMo images name their CUDA version in their release notes). Do not pip "
                "install another torch inside the image: its other packages are compiled against this one"
            )
        )
    choice = None if image_build else variant_for_driver(ctx, version, driver)
    if choice is not None and choice[0] != local_variant(t.version):
        tag, known = choice
        fixes.append(
            pip_torch_fix(
                ctx,
                version,
                tag,
                f"Keep this driver and install the {tag} build of PyTorch {torch_release_for(version)}"
                + ("" if known else f" (matching the driver's CUDA {driver.cuda_driver_version})")
                + ("" if torch_on_index(version) else f" in place of this build ({version})"),
            )
        )
    if minimum:
        fixes.append(driver_upgrade_fix(ctx, minimum))
    yield Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch {version} is built for CUDA {t.cuda_version}, which needs NVIDIA driver "
        f"{minimum or 'newer than this one'}"
        + (" or newer" if minimum else "")
        + f", but the driver is {driver.driver_version or '?'} (CUDA {driver.cuda_driver_version or '?'})",
        why="The CUDA runtime inside the PyTorch wheel refuses to start on a driver older than the CUDA it was "
        "built with, so torch.cuda.is_available() is False.",
        seen=(f"torch {version}, torch.version.cuda {t.cuda_version}", gpu_seen(driver), *said[:1]),
        fixes=tuple(fixes),
    )


def _targets(ctx: RuleContext, t: TorchFacts) -> tuple[str, ...]:
    if t.arch_list:
        return t.arch_list
    version = t.version or ""
    release = ctx.matrix.torch_release(version) if version else None
    tag = local_variant(version) or (cuda_tag(t.cuda_version) if t.cuda_version else None)
    variant = release.variant(tag) if release and tag else None
    if variant is None:
        return ()
    if ctx.flavor == "windows" and variant.windows_arch_list:
        return variant.windows_arch_list
    return variant.arch_list


def _device_capabilities(t: TorchFacts, driver: DriverFacts | None) -> list[tuple[str, str]]:
    if t.devices:
        return [(d.name, d.capability) for d in t.devices if d.capability]
    if driver is not None:
        return [(g.name, g.compute_capability) for g in driver.gpus if g.compute_capability]
    return []


_TOO_OLD_WARNING = lazy_re.compile(
    r"which is of (?:cuda|compute) capability (?:\(CC\) )?(\d+\.\d+)", re.IGNORECASE
)
_MINIMUM_WARNING = lazy_re.compile(
    r"minimum cuda capability supported by this library is (\d+\.\d+)", re.IGNORECASE
)


def _arch_fixes(ctx: RuleContext, t: TorchFacts, cc: str, driver: DriverFacts | None) -> list[Fix]:
    version = torch_version(t) or ""
    installed = ctx.matrix.torch_release(version) if version else None
    python = ctx.facts.python.version if ctx.facts.python else ""
    candidates: list[tuple[str, TorchVariant]] = []  # oldest release first
    for release_name, variant_name in ctx.matrix.torch_releases_supporting_arch(cc):
        release = ctx.matrix.torch_release(release_name)
        variant = release.variant(variant_name) if release else None
        if variant is None or kernel_support(cc, variant.arch_list) != "native":
            continue
        if python and release is not None and not release.python.contains(python, prereleases=True):
            continue
        candidates.append((release_name, variant))

    def driver_runs(variant: TorchVariant) -> bool:
        if driver is None or not driver.driver_version or variant.cuda is None:
            return True
        return (
            ctx.matrix.driver_runs_cuda(driver.driver_version, variant.cuda, driver_system(ctx)) is not False
        )

    runnable = [(r, v) for r, v in candidates if driver_runs(v)]
    same = [v for r, v in runnable if installed is not None and r == installed.version]
    sm = f"sm_{cc.replace('.', '')}"
    if same:
        pick = max(same, key=lambda v: major_minor(v.cuda) or (0, 0))
        summary = (
            f"Install the {pick.name} build of PyTorch {public_version(version)}, which has kernels for {sm}"
        )
        return [pip_torch_fix(ctx, version, pick.name, summary)]
    if runnable or candidates:
        pool = runnable or candidates
        # the least move: the first release after the installed one that has the kernels, else the newest
        later = [
            (r, v) for r, v in pool if installed is not None and series_key(r) > series_key(installed.version)
        ]
        release_name, pick = later[0] if later else pool[-1]
        fixes: list[Fix] = []
        if not runnable and pick.cuda:
            requirement = ctx.matrix.driver_requirement(pick.cuda, driver_system(ctx))
            minimum = requirement and requirement.floor
            if minimum:
                fixes.append(driver_upgrade_fix(ctx, minimum))
        fixes.append(
            ctx.fix(
                f"Install PyTorch {release_name} in its {pick.name} build, the "
                f"{'nearest' if later else 'newest'} release with kernels for {sm}",
                ctx.pip_install(
                    f"torch=={release_name}.*",
                    options=(
                        "--force-reinstall",
                        "--index-url",
                        pick.index_url or f"{TORCH_WHL}/{pick.name}",
                    ),
                ),
            )
        )
        return fixes
    tag = f"v{public_version(version)}" if version else "main"
    clone = f"git clone --recursive --branch {tag} https://github.com/pytorch/pytorch"
    build = f"{ctx.python_cmd} -m pip install --no-build-isolation -v ."
    if ctx.shell == "bash":
        commands: tuple[str, ...] = (clone, f'cd pytorch && TORCH_CUDA_ARCH_LIST="{cc}" {build}')
    else:
        commands = (clone, "cd pytorch", f'$env:TORCH_CUDA_ARCH_LIST="{cc}"', build)
    return [
        ctx.fix(
            f"No official PyTorch build has kernels for compute capability {cc}: build PyTorch from source for "
            "it (with a CUDA toolkit that still supports this GPU), or run on the CPU",
            *commands,
        )
    ]


@rule(
    "GD604",
    "PyTorch has kernels for this GPU's architecture",
    requires=(*causes.DRIVER, "GD601", "GD602"),
    needs=("torch",),
    problem="PyTorch has no kernels for this GPU's architecture",
    part="torch",
)
def torch_no_kernels_for_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    if not t.installed or not t.imported or t.cuda_version is None:
        return
    driver = working_driver(ctx)
    targets = _targets(ctx, t)
    warned = {m.group(1) for w in t.warnings for m in _TOO_OLD_WARNING.finditer(w)}
    minimum = next((m.group(1) for w in t.warnings for m in _MINIMUM_WARNING.finditer(w)), None)
    reported: set[str] = set()
    for name, cc in _device_capabilities(t, driver):
        if cc in reported:
            continue
        try:
            support = kernel_support(cc, targets) if targets else None
        except ValueError:
            continue
        if support is not None or (not targets and cc not in warned):
            continue
        reported.add(cc)
        version = torch_version(t) or "?"
        sm = f"sm_{cc.replace('.', '')}"
        built = " ".join(x for x in targets if x.startswith(("sm_", "compute_"))) or (
            f"a minimum of compute capability {minimum}" if minimum else "other architectures"
        )
        lowest = min((x for x in targets if x.startswith("sm_")), key=lambda x: int(x[3:]), default=None)
        too_old = bool(minimum) or (lowest is not None and int(sm[3:]) < int(lowest[3:]))
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{name} is {sm} (compute capability {cc}), but PyTorch {version} has kernels only for "
            f"{built}: the GPU is {'too old' if too_old else 'too new'} for this build",
            why="PyTorch ships compiled kernels (SASS) for a list of architectures; a kernel built for sm_XY runs "
            "only on GPUs of the same major X with minor ≥ Y. Without one, every CUDA call fails with "
            "'no kernel image is available for execution on the device'.",
            seen=(
                f"torch {version}",
                f"torch.cuda.get_arch_list(): {' '.join(targets) or 'unknown'}",
                f"{name}: {cc}",
            ),
            fixes=tuple(_arch_fixes(ctx, t, cc, driver)),
        )


@rule(
    "GD605",
    "PyTorch comes from one package manager",
    requires=("GD601",),
    needs=("torch",),
    problem="PyTorch is installed by both conda and pip",
    part="torch",
)
def torch_conda_and_pip(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    conda = ctx.facts.conda
    conda_pkg = None
    pip_torch = None
    if conda is not None and ctx.in_conda:  # another environment's packages say nothing about this one
        conda_pkg = next((p for p in conda.packages if p.name == "pytorch" and p.channel != "pypi"), None)
        pip_torch = next((p for p in conda.packages if p.name == "torch" and p.channel == "pypi"), None)
    conda_version = t.conda_version or (conda_pkg.version if conda_pkg else None)
    conda_build = t.conda_build or (conda_pkg.build if conda_pkg else None)
    pip_version = (
        t.dist_version if t.installer in ("pip", "uv") else (pip_torch.version if pip_torch else None)
    )
    if not conda_version or not pip_version:
        return
    channel = t.conda_channel or (conda_pkg.channel if conda_pkg else "")
    yield Verdict(
        severity=Severity.WARNING,
        message=f"PyTorch is installed twice in this environment: conda's pytorch {conda_version} "
        f"({conda_build}) and pip's torch {pip_version}",
        why="pip and conda do not know about each other's files: the second install overwrote parts of the "
        "first, conda still believes its build is there, and the next `conda install` or `conda update` can "
        "silently swap in a different (possibly CPU-only) PyTorch.",
        seen=(
            f"conda: pytorch {conda_version} {conda_build} from {channel or '?'}",
            f"pip: torch {pip_version}",
        ),
        fixes=(
            ctx.fix(
                "Keep one: remove both, then reinstall PyTorch with a single tool (pip shown)",
                ctx.pip("uninstall", "-y", "torch"),
                ctx.conda_remove("pytorch", force=True),
                same_build_install(
                    ctx,
                    t.version
                    if t.version and public_version(t.version) == public_version(pip_version)
                    else pip_version,
                ),
            ),
        ),
    )


@rule(
    "GD606",
    "PyTorch sees the GPU the driver reports",
    requires=(
        *causes.NO_GPU_FOR_ANY_FRAMEWORK,
        "GD601",
        "GD602",
        "GD603",
        "GD604",
        "GD607",
        "GD126",
        *causes.WHEELS_IN_CONFLICT,
    ),
    needs=("torch", "driver"),
    problem="PyTorch does not see the GPU the driver reports",
    part="torch",
)
def torch_no_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not t.imported or t.cuda_version is None:
        return
    if t.cuda_available is not False and not t.cuda_error:
        return
    reason = t.cuda_error or next(iter(t.warnings), "") or "torch gave no reason"
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The driver sees {len(driver.gpus)} GPU{'s' * (len(driver.gpus) != 1)}, but "
        + (
            f"torch.cuda.is_available() is {t.cuda_available}: {reason}"
            if t.cuda_available is not True
            else "PyTorch fails when it initialises CUDA"
            + (f" (it counts {t.device_count})" if t.device_count is not None else "")
            + f": {reason}"
        ),
        why="None of gpudoctor's known causes (driver, CUDA build, architecture, CUDA_VISIBLE_DEVICES) "
        "applies, so the reason is in what torch itself reported.",
        seen=(f"torch {t.version}, CUDA {t.cuda_version}", gpu_seen(driver), *t.warnings[:2]),
        fixes=(
            ctx.fix(
                "Ask torch directly and read the full error",
                f'{ctx.python_cmd} -c "import torch; torch.cuda.init(); print(torch.cuda.get_device_name(0))"',
            ),
        ),
    )


_CUDNN_TUPLES = lazy_re.compile(
    r"compiled\s+against\s+\(([\d, ]+)\)\s+but\s+found\s+runtime\s+version\s+\(([\d, ]+)\)"
)


def _dotted(numbers: str) -> str:
    return ".".join(p.strip() for p in numbers.split(",") if p.strip())


@rule(
    "GD607",
    "PyTorch loads the cuDNN it was built with",
    requires=(*causes.DRIVER, *causes.SHADOWED_WHEELS, "GD601", *causes.WHEELS_IN_CONFLICT),
    needs=("torch",),
    problem="PyTorch loads a cuDNN other than the one it was built with",
    part="torch",
)
def torch_cudnn_incompatible(ctx: RuleContext) -> Iterator[Verdict]:
    t = torch_facts(ctx)
    if not t.imported or not t.cudnn_error or "cudnn" not in t.cudnn_error.lower():
        return
    found = _CUDNN_TUPLES.search(t.cudnn_error)
    built, runtime = (_dotted(found.group(1)), _dotted(found.group(2))) if found else (None, None)
    what = (
        f"was built with cuDNN {built} but loads cuDNN {runtime}" if found else "rejects the cuDNN it loads"
    )
    dist = ctx.distribution("torch")
    pin = next(
        (
            r.split(";")[0].strip().replace(" ", "")
            for r in (dist.requires if dist else ())
            if r.lower().startswith("nvidia-cudnn")
        ),
        None,
    )
    fixes = []
    if ctx.flavor in ("linux", "wsl"):
        fixes.append(
            ctx.fix(
                "Let torch load its own cuDNN: take foreign cuDNN folders off LD_LIBRARY_PATH for good "
                "(~/.bashrc, module files, conda activate.d), or run without it",
                "unset LD_LIBRARY_PATH",
            )
        )
    if pin:
        fixes.append(
            ctx.fix(
                "Reinstall the cuDNN wheel this torch pins, and only it (`--force-reinstall` alone would move "
                "the CUDA wheels it requires to their newest releases, past torch's own pins)",
                ctx.pip_install("--force-reinstall", "--no-deps", pin),
            )
        )
    elif t.version:
        fixes.append(
            ctx.fix(
                "Reinstall this torch so its own cuDNN comes back",
                same_build_install(ctx, t.version, options=("--force-reinstall",)),
            )
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch {t.version or ''} {what}; convolutions and cuDNN-backed layers fail".replace(
            "  ", " "
        ),
        why=(
            "torch checks cuDNN when it first uses it and refuses a runtime of another major version or an "
            "older minor ('cuDNN version incompatibility'); the runtime comes from whatever the loader finds "
            "first, usually an older cuDNN on LD_LIBRARY_PATH."
        ),
        seen=(f"torch.backends.cudnn.version(): {t.cudnn_error}",),
        fixes=tuple(fixes),
    )


# ----------------------------------------------------------------------------------------------
# GD608: torchvision and torchaudio are builds of the installed torch

COMPANIONS = ("torchvision", "torchaudio")
_TORCH_PIN = lazy_re.compile(r"^torch\s*==\s*([\w.]+)")


def build_kind(variant: str | None) -> tuple[str, int | None]:
    """("cpu", None), ("cuda", 12), ("rocm", 6) for a variant tag ("cpu", "cu121", "rocm6.2")."""
    if not variant:
        return ("?", None)
    if variant.startswith("cpu"):
        return ("cpu", None)
    match = re.match(r"^cu(\d+?)(\d)$", variant)
    if match:
        return ("cuda", int(match.group(1)))
    match = re.match(r"^rocm(\d+)", variant)
    if match:
        return ("rocm", int(match.group(1)))
    return ("?", None)


def build_variant(
    ctx: RuleContext, version: str, torch_release: str, installer: str | None = "pip"
) -> tuple[str | None, str]:
    """The build a torch, torchvision or torchaudio wheel is, and how gpudoctor knows: its local tag
    ("2.2.1+cpu"), else PyPI's build for this platform (Linux x86_64: the CUDA variant the matrix names
    for that torch release; Windows and macOS: CPU only). None for a conda package (its build string,
    not its version, says the build) or a build of unknown origin."""
    local = local_part(version)
    if local is not None:
        return (local if TORCH_INDEX_VARIANT.match(local) else None), f"version tag +{local}"
    if installer == "conda":
        return None, ""
    platform = ctx.facts.platform
    machine = (platform.machine if platform else "") or ""
    if ctx.flavor in ("windows", "macos"):
        return "cpu", "no version tag: PyPI's build for this platform, CPU-only"
    if ctx.flavor in ("linux", "wsl") and machine in ("x86_64", "AMD64"):
        release = ctx.matrix.torch_release(torch_release)
        if release is not None and release.pypi_default_linux:
            return (
                release.pypi_default_linux,
                f"no version tag: PyPI's Linux build for torch {release.version} ({release.pypi_default_linux})",
            )
    return None, ""


def _companion_torch(dist_requires: tuple[str, ...]) -> str | None:
    """The torch release a torchvision/torchaudio wheel pins (`torch==2.2.1`)."""
    for line in dist_requires:
        match = _TORCH_PIN.match(line.split(";")[0].strip())
        if match:
            return match.group(1)
    return None


def _build_label(variant: str | None) -> str:
    return "CPU-only" if build_kind(variant)[0] == "cpu" else variant or "?"


def _companion_problem(name: str, kind: str, torch_kind: str) -> str:
    if kind == "cpu":
        return (
            f"{name}'s operators exist for the CPU only, so they fail on CUDA tensors (\"Could not run "
            f"'{name}::…' with arguments from the 'CUDA' backend\")"
        )
    if torch_kind == "cpu" or kind != torch_kind:
        nms = " (`operator torchvision::nms does not exist`)" if name == "torchvision" else ""
        return f"{name}'s compiled operators do not load against this torch{nms}"
    return f"{name} refuses to load: the two were compiled with different CUDA major versions"


@rule(
    "GD608",
    "The torchvision and torchaudio builds match the installed torch",
    requires=("GD601", "GD602", "GD605", *causes.SHADOWED_WHEELS),
    needs=("python",),
    problem="The torchvision or torchaudio build (CPU, CUDA major, ROCm) differs from the installed torch's",
    part="torch",
)
def companion_build_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    torch = ctx.distribution("torch")
    if torch is None or not torch.version:
        return
    torch_public = public_version(torch.version)
    torch_variant, torch_how = build_variant(ctx, torch.version, torch_public, torch.installer)
    torch_kind = build_kind(torch_variant)
    if torch_kind[0] == "?":
        return
    for name in COMPANIONS:
        dist = ctx.distribution(name)
        if dist is None or not dist.version:
            continue
        pinned = _companion_torch(dist.requires) or torch_public
        variant, how = build_variant(ctx, dist.version, public_version(pinned), dist.installer)
        kind = build_kind(variant)
        if kind[0] == "?" or kind == torch_kind:
            continue
        if kind[0] == torch_kind[0] == "cuda" and kind[1] == torch_kind[1]:
            continue  # another CUDA minor of the same major loads
        problem = _companion_problem(name, kind[0], torch_kind[0])
        spec, index = torch_build_spec(
            public_version(dist.version), local_part(torch.version), head=name, torch=torch_public
        )
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{name} {dist.version} is the {_build_label(variant)} build, but torch {torch.version} is the "
            f"{_build_label(torch_variant)} build: {problem}",
            why=(
                f"{name} ships C++/CUDA operators compiled against one torch build; pip matches only the "
                f"version (`torch=={public_version(pinned)}` is met by any +cpu or +cuXXX build), so installing "
                f"{name} from another index than torch, or torch after it, leaves two builds that cannot load "
                "each other's operators."
            ),
            seen=(
                f"torch {torch.version}: {torch_how}",
                f"{name} {dist.version}: {how}",
            ),
            fixes=(
                ctx.fix(
                    f"Reinstall {name} {public_version(dist.version)} as the same build as torch "
                    f"({_build_label(torch_variant)}), leaving torch as it is",
                    ctx.pip_install(spec, options=("--force-reinstall", "--no-deps", *index)),
                ),
            ),
        )
