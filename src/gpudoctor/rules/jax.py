"""GD7xx: JAX — imports, has a CUDA plugin that matches jaxlib, finds new enough CUDA libraries."""

from __future__ import annotations

import re
from collections.abc import Iterator

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.facts import DriverFacts, JaxFacts, JaxLibraryCheck
from gpudoctor.matrix import JaxCuda
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import driver_upgrade_fix, jax_cuda_spec, prepend_path
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import (
    NVCC_WHEEL_NAMES,
    XLA_PREFERS_CUDA_DIR,
    JaxPtxas,
    JaxPtxasChoice,
    driver_system,
    gpu_capabilities,
    gpu_seen,
    jax_ptxas,
    working_driver,
)
from gpudoctor.versions import major_minor, parse_version

JAX_CUDA_RELEASES = "https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"
# jaxlib 0.4.26 dropped CUDA 11, so 0.4.25 is the last release with CUDA 11 wheels (jax CHANGELOG);
# its wheels exist for CPython 3.9 to 3.12.
LAST_CUDA11_JAX = "0.4.25"
LAST_CUDA11_PYTHON = "3.13"
_PLUGIN = lazy_re.compile(r"^jax-(cuda|rocm)(\d+)-(plugin|pjrt)$")
_LOCAL_CUDA = lazy_re.compile(r"cuda(1\d)")


def jax_facts(ctx: RuleContext) -> JaxFacts:
    facts = ctx.facts.jax
    assert facts is not None  # every rule here has needs=("jax",)
    return facts


def cuda_plugins(j: JaxFacts) -> dict[str, str]:
    return {name: v for name, v in j.plugins.items() if (m := _PLUGIN.match(name)) and m.group(1) == "cuda"}


def has_cuda_jaxlib(j: JaxFacts) -> bool:
    """A CUDA plugin, an old monolithic `jaxlib==x+cudaNN` wheel, or a conda-forge CUDA jaxlib."""
    local = (j.jaxlib_version or "").partition("+")[2]
    conda_cuda = bool(j.jaxlib_conda_build and j.jaxlib_conda_build.startswith("cuda"))
    return bool(cuda_plugins(j)) or "cuda" in local or conda_cuda


def capabilities(driver: DriverFacts) -> list[tuple[str, str]]:
    return [(g.name, g.compute_capability) for g in driver.gpus if g.compute_capability]


def below(cc: str, minimum: str) -> bool:
    have, need = major_minor(cc), major_minor(minimum)
    return have is not None and need is not None and have < need


def extra_for_machine(
    ctx: RuleContext, driver: DriverFacts, jax_version: str | None = None
) -> JaxCuda | None:
    """`jax[cuda13]` where the driver (≥ 580), every GPU and the Python allow it, else `jax[cuda12]`;
    given the installed `jax_version`, the plugin that version already has first (the least change)."""
    python = ctx.facts.python.version if ctx.facts.python else ""
    ccs = [cc for _, cc in capabilities(driver)]
    have = parse_version(jax_version)

    def has_plugin(major: int) -> bool:
        plugin = ctx.matrix.jax_cuda(major)
        first = parse_version(plugin.min_jax) if plugin else None
        return have is not None and first is not None and first <= have

    order = sorted((13, 12), key=lambda major: not has_plugin(major))
    for major in order:
        plugin = ctx.matrix.jax_cuda(major)
        if plugin is None:
            continue
        have, need = parse_version(driver.driver_version), parse_version(plugin.min_driver_linux)
        if have is not None and need is not None and have < need:
            continue
        if any(below(cc, plugin.min_compute_capability) for cc in ccs):
            continue
        if python and plugin.python is not None and not plugin.python.contains(python, prereleases=True):
            continue
        return plugin
    return None


def jax_install_fix(ctx: RuleContext, plugin: JaxCuda, summary: str, version: str | None) -> Fix:
    """JAX `version` (the installed one where it has this plugin) with its CUDA plugin."""
    return ctx.fix(summary, ctx.pip_install(jax_cuda_spec(ctx, plugin.extra, version, plugin.min_jax)))


@rule(
    "GD701",
    "JAX imports",
    requires=(*causes.BROKEN_PYTHON, *causes.WHEELS_IN_CONFLICT),
    needs=("jax",),
    problem="JAX fails to import",
    part="jax",
)
def jax_import_fails(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    if j.probe_error:
        yield Verdict(
            severity=Severity.WARNING,
            message=f"gpudoctor could not examine JAX in this interpreter: {j.probe_error}",
            why="The target interpreter did not run gpudoctor's small JAX check, so nothing about JAX could be "
            "judged.",
            seen=(f"python: {ctx.facts.target.python or '?'}",),
            fixes=(
                ctx.fix(
                    "Run the same import by hand and read its error", f'{ctx.python_cmd} -c "import jax"'
                ),
            ),
        )
        return
    if not j.installed or j.imported:
        return
    error = j.import_error or "unknown error"
    pins = [f"jax=={j.jax_version}", f"jaxlib=={j.jax_version}"] if j.jax_version else ["jax", "jaxlib"]
    pins += [f"{name}=={j.jax_version}" for name in sorted(cuda_plugins(j))] if j.jax_version else []
    yield Verdict(
        severity=Severity.ERROR,
        message=f"JAX {j.jax_version or '?'} is installed but `import jax` fails: {error}",
        why="Nothing that uses JAX can run until the import works; jax, jaxlib and the CUDA plugins are "
        "released together and must be the same version.",
        seen=(
            f"jax {j.jax_version or 'not installed'}, jaxlib {j.jaxlib_version or 'not installed'}",
            *(f"{n} {v}" for n, v in sorted(j.plugins.items())),
            f"import error: {error}",
        ),
        fixes=(
            ctx.fix(
                "Reinstall jax, jaxlib and the plugins at one version",
                ctx.pip_install(*pins, options=("-U",)),
            ),
        ),
    )


@rule(
    "GD702",
    "JAX has CUDA support on a machine with an NVIDIA GPU",
    requires=("GD701", "GD705", "GD706"),
    needs=("jax",),
    problem="JAX has no CUDA support on a machine with an NVIDIA GPU",
    part="jax",
)
def jax_cpu_only(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not j.installed or has_cuda_jaxlib(j) or ctx.flavor in ("windows", "macos"):
        return
    plugin = extra_for_machine(ctx, driver, j.jax_version)
    fixes: list[Fix] = []
    if j.jaxlib_conda_build is not None and ctx.in_conda:
        version = (j.jaxlib_version or "").partition("+")[0]
        fixes.append(
            ctx.fix(
                "Install conda-forge's CUDA build of jaxlib",
                ctx.conda_install(
                    f"jaxlib={version}=*cuda*" if version else "jaxlib=*=*cuda*",
                    f"jax={j.jax_version}" if j.jax_version else "jax",
                    channels=("conda-forge",),
                ),
            )
        )
    if plugin is not None:
        fixes.append(
            jax_install_fix(
                ctx,
                plugin,
                f"Install JAX with its CUDA {plugin.major} plugin and NVIDIA's CUDA wheels "
                f"(needs driver ≥ {plugin.min_driver_linux} and compute capability ≥ {plugin.min_compute_capability})",
                j.jax_version,
            )
        )
    said = [w for w in j.warnings if "CUDA-enabled jaxlib is not installed" in w]
    yield Verdict(
        severity=Severity.ERROR,
        message=f"JAX {j.jax_version or '?'} has only the CPU jaxlib {j.jaxlib_version or ''}".rstrip()
        + " and no CUDA plugin, so it runs on the CPU although an NVIDIA GPU is present",
        why="Since jaxlib 0.4.30 plain `pip install jax` installs the CPU build only; the GPU backend is a "
        "separate plugin that comes with the `jax[cuda12]` or `jax[cuda13]` extra.",
        seen=(
            f"jax {j.jax_version or '?'}, jaxlib {j.jaxlib_version or '?'}, plugins: "
            + (", ".join(f"{n} {v}" for n, v in sorted(j.plugins.items())) or "none"),
            f"devices: {', '.join(j.devices) or 'none'}",
            gpu_seen(driver),
            *said[:1],
        ),
        fixes=tuple(fixes),
    )


@rule(
    "GD703",
    "JAX's CUDA plugin is the same version as jaxlib",
    requires=("GD701",),
    needs=("jax",),
    problem="JAX's CUDA plugin and jaxlib are different versions",
    part="jax",
)
def jax_plugin_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    if not j.installed or not j.jaxlib_version:
        return
    jaxlib = j.jaxlib_version.partition("+")[0]
    mismatched = {n: v for n, v in j.plugins.items() if _PLUGIN.match(n) and v.partition("+")[0] != jaxlib}
    if not mismatched:
        return
    families = sorted({(m.group(1), m.group(2)) for n in mismatched if (m := _PLUGIN.match(n))})
    pins = [f"jax-{kind}{major}-{part}=={jaxlib}" for kind, major in families for part in ("plugin", "pjrt")]
    listed = ", ".join(f"{n} {v}" for n, v in sorted(mismatched.items()))
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{listed} installed with jaxlib {j.jaxlib_version}: JAX ignores a plugin of another version "
        "and falls back to the CPU",
        why="jaxlib, the CUDA plugin and its PJRT runtime are built together; JAX refuses a plugin whose version "
        "differs from jaxlib's ('is not compatible with the installed jaxlib version'), and loose requirement "
        "pins let pip or pixi pick them separately.",
        seen=(f"jaxlib {j.jaxlib_version}", *(f"{n} {v}" for n, v in sorted(j.plugins.items()))),
        fixes=(
            ctx.fix(
                f"Pin the plugin and its PJRT runtime to jaxlib's version {jaxlib}", ctx.pip_install(*pins)
            ),
        ),
    )


def _newest_jax_for_cudnn(ctx: RuleContext, installed: str, major: int) -> str | None:
    """The first jax release whose CUDA wheels need a newer cuDNN than `installed`: pin below it."""
    have = parse_version(installed)
    if have is None:
        return None
    for row in sorted(ctx.matrix.jax, key=lambda r: Version(r.version)):
        minimum = row.min_cudnn.get(major)
        if minimum is not None and (need := parse_version(minimum)) is not None and need > have:
            return row.version
    return None


def _library_fixes(ctx: RuleContext, j: JaxFacts, check: JaxLibraryCheck) -> list[Fix]:
    fixes: list[Fix] = []
    plugins = cuda_plugins(j)
    local = re.match(r"cuda(\d+)", (j.jaxlib_version or "").partition("+")[2])
    majors = sorted({int(m.group(2)) for n in plugins if (m := _PLUGIN.match(n))})
    majors = majors or ([int(local.group(1))] if local else [12])
    if j.jaxlib_conda_build is not None:
        if check.name.lower() == "cudnn" and check.minimum:
            fixes.append(
                ctx.fix(
                    f"Install cuDNN {check.minimum} or newer from conda-forge",
                    ctx.conda_install(f"cudnn>={check.minimum}", channels=("conda-forge",)),
                )
            )
            if check.installed and (first := _newest_jax_for_cudnn(ctx, check.installed, majors[0])):
                fixes.append(
                    ctx.fix(
                        f"Or keep cuDNN {check.installed} and use a JAX release from before {first}",
                        ctx.conda_install(f"jax<{first}", f"jaxlib<{first}", channels=("conda-forge",)),
                    )
                )
        return fixes
    release = ctx.matrix.jax_release(j.jax_version or "")
    extras = release.extras if release else ()
    if plugins or f"cuda{majors[0]}" in extras:
        fixes.append(
            ctx.fix(
                "Reinstall JAX with NVIDIA's CUDA wheels so it loads their libraries",
                ctx.pip_install(jax_cuda_spec(ctx, f"cuda{majors[0]}", j.jax_version)),
            )
        )
    else:
        pip_extra = f"cuda{majors[0]}_pip" if f"cuda{majors[0]}_pip" in extras else None
        if pip_extra:
            fixes.append(
                ctx.fix(
                    "Reinstall JAX with NVIDIA's CUDA wheels (fresh virtual environment recommended)",
                    ctx.pip_install(
                        jax_cuda_spec(ctx, pip_extra, j.jax_version), options=("-f", JAX_CUDA_RELEASES)
                    ),
                )
            )
    env = ctx.facts.environment
    if env is not None and "LD_LIBRARY_PATH" in env.variables and ctx.shell == "bash":
        fixes.append(
            ctx.fix("Stop an older copy on LD_LIBRARY_PATH from being found first", "unset LD_LIBRARY_PATH")
        )
    return fixes


@rule(
    "GD704",
    "The CUDA libraries JAX loads are as new as jaxlib needs",
    requires=("GD701", *causes.SHADOWED_WHEELS, *causes.WHEELS_IN_CONFLICT),
    needs=("jax",),
    problem="The CUDA libraries JAX loads are older than jaxlib needs",
    part="jax",
)
def jax_libraries_too_old(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    for check in j.library_checks:
        if check.installed is None:
            message = f"JAX could not load {check.name}, which its CUDA backend needs"
        else:
            message = (
                f"JAX loaded {check.name} {check.installed}, but jaxlib {j.jaxlib_version or '?'} needs "
                f"{check.minimum or check.built} or newer"
            )
        yield Verdict(
            severity=Severity.ERROR,
            message=message,
            why="jaxlib checks the CUDA libraries it loads against the versions it was built with and refuses "
            "to start its CUDA backend on older ones, so JAX falls back to the CPU or fails with 'DNN library "
            "initialization failed'.",
            seen=(
                f"jaxlib {j.jaxlib_version or '?'}"
                + (
                    f" (conda {j.jaxlib_conda_channel or ''} {j.jaxlib_conda_build})"
                    if j.jaxlib_conda_build
                    else ""
                ),
                (
                    f"{check.name}: installed {check.installed or 'not found'}, "
                    f"minimum {check.minimum or '?'}, built against {check.built or '?'}"
                ),
            ),
            fixes=tuple(_library_fixes(ctx, j, check)),
        )


@rule(
    "GD705",
    "JAX can use the GPU on this operating system",
    needs=("jax",),
    problem="JAX cannot use the GPU on this operating system",
    part="jax",
)
def jax_without_gpu_on_this_os(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    if not j.installed:
        return
    if ctx.flavor == "windows" and working_driver(ctx) is not None:
        yield Verdict(
            severity=Severity.WARNING,
            message="JAX has no NVIDIA GPU support on native Windows; it runs on the CPU here",
            why="JAX publishes CUDA wheels for Linux only. On Windows its GPU route is WSL 2 (experimental), "
            "where the Windows driver serves CUDA to Linux programs.",
            seen=(f"Windows, jax {j.jax_version or '?'}", f"devices: {', '.join(j.devices) or 'none'}"),
            fixes=(
                ctx.fix(
                    "Install WSL 2 with Ubuntu (then restart)", "wsl --install -d Ubuntu", needs_admin=True
                ),
                ctx.fix(
                    "Inside WSL, install JAX with CUDA",
                    f'wsl -d Ubuntu -- python3 -m pip install "{jax_cuda_spec(ctx, "cuda12", j.jax_version)}"',
                ),
            ),
        )
    metal = ctx.distribution("jax-metal")
    if ctx.flavor == "macos" and metal is not None:
        yield Verdict(
            severity=Severity.INFO,
            message=f"jax-metal {metal.version} drives the Apple GPU, but Apple and JAX call it experimental",
            why="Many JAX operations are missing or slower on Metal; JAX's supported macOS backend is the CPU.",
            seen=(f"jax {j.jax_version or '?'}, jax-metal {metal.version}",),
            fixes=(
                ctx.fix(
                    "Compare with the CPU backend when results look wrong",
                    "JAX_PLATFORMS=cpu python3 your_script.py",
                ),
            ),
        )


@rule(
    "GD706",
    "The GPU is supported by JAX's CUDA wheels",
    requires=("GD701",),
    needs=("jax",),
    problem="JAX's CUDA wheels do not support this GPU",
    part="jax",
)
def jax_gpu_too_old(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not j.installed or ctx.flavor in ("windows", "macos"):
        return
    cuda12 = ctx.matrix.jax_cuda(12)
    cuda13 = ctx.matrix.jax_cuda(13)
    installed_majors = {int(m.group(2)) for n in cuda_plugins(j) if (m := _PLUGIN.match(n))}
    for name, cc in capabilities(driver):
        if cuda12 is not None and below(cc, cuda12.min_compute_capability):
            yield Verdict(
                severity=Severity.ERROR,
                message=f"{name} has compute capability {cc}; JAX's CUDA wheels need "
                f"{cuda12.min_compute_capability} or newer, so JAX cannot use this GPU",
                why="Released jaxlib CUDA wheels carry no kernels for Kepler (3.x) or older GPUs, and CUDA 12 "
                "toolkits cannot compile for them any more; the CUDA backend fails ('DNN library initialization "
                "failed') or JAX runs on the CPU.",
                seen=(gpu_seen(driver), f"jax {j.jax_version or '?'}, jaxlib {j.jaxlib_version or '?'}"),
                fixes=(
                    ctx.fix(
                        "Run JAX on the CPU explicitly (or move to a GPU with compute capability "
                        f"{cuda12.min_compute_capability} or newer)",
                        "export JAX_PLATFORMS=cpu",
                    ),
                ),
            )
            return
        if (
            13 in installed_majors
            and cuda13 is not None
            and below(cc, cuda13.min_compute_capability)
            and cuda12
        ):
            yield Verdict(
                severity=Severity.ERROR,
                message=f"{name} has compute capability {cc}, but the installed jax CUDA 13 plugin needs "
                f"{cuda13.min_compute_capability} or newer",
                why="JAX's CUDA 13 wheels are built for Turing (7.5) and newer only; older GPUs need the CUDA 12 "
                "wheels.",
                seen=(gpu_seen(driver), *(f"{n} {v}" for n, v in sorted(cuda_plugins(j).items()))),
                fixes=(
                    ctx.fix(
                        "Switch to the CUDA 12 plugin",
                        ctx.pip("uninstall", "-y", "jax-cuda13-plugin", "jax-cuda13-pjrt"),
                        ctx.pip_install(jax_cuda_spec(ctx, "cuda12", j.jax_version, cuda12.min_jax)),
                    ),
                ),
            )
            return


def _cuda_of(version: str | None) -> str | None:
    """ "12.2" from a ptxas or nvcc wheel version ("12.2.140")."""
    parsed = major_minor(version)
    return f"{parsed[0]}.{parsed[1]}" if parsed is not None else None


def _describe_ptxas(p: JaxPtxas) -> str:
    version = f"CUDA {p.version}" if p.version else "version unknown"
    return f"{p.source}: {p.path} ({version}" + (f", from {p.version_from})" if p.version_from else ")")


@rule(
    "GD707",
    "The ptxas JAX compiles with builds code this GPU and driver run",
    requires=(*causes.DRIVER, "GD701", "GD706"),
    needs=("jax", "driver"),
    problem="The ptxas JAX compiles with cannot build code for this GPU or driver",
    part="jax",
)
def jax_ptxas_unusable(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not j.installed or not has_cuda_jaxlib(j):
        return
    choice = jax_ptxas(ctx)
    if choice is None:
        return
    ptxas = choice.chosen
    cuda = _cuda_of(ptxas.version)
    if cuda is None:
        return
    unsupported = [
        (name, cc)
        for name, cc in gpu_capabilities(ctx)
        if ctx.matrix.architecture(cc) is not None and not ctx.matrix.toolkit_supports_arch(cuda, cc)
    ]
    if unsupported:
        yield _ptxas_cannot_target(ctx, j, choice, cuda, unsupported)
        return
    if ptxas.source == "PATH":
        yield from _ptxas_newer_than_driver(ctx, j, ptxas, driver)


def _ptxas_cannot_target(
    ctx: RuleContext, j: JaxFacts, choice: JaxPtxasChoice, cuda: str, unsupported: list[tuple[str, str]]
) -> Verdict:
    ptxas = choice.chosen
    name, cc = unsupported[0]
    arch = ctx.matrix.architecture(cc)
    since = f"CUDA {arch.first_cuda}" if arch is not None and arch.first_cuda else None
    until = f"CUDA {arch.removed_in}" if arch is not None and arch.removed_in else None
    which = " to ".join(
        x for x in (f"from {since}" if since else "", f"before {until}" if until else "") if x
    )
    able = [
        p
        for p in choice.passed_over
        if (c := _cuda_of(p.version)) is not None
        and all(ctx.matrix.toolkit_supports_arch(c, k) for _, k in unsupported)
    ]
    over = (
        f"; jaxlib {choice.xla_version} runs the first ptxas on PATH before {able[0].path} (CUDA {able[0].version})"
        if choice.path_first and ptxas.source == "PATH" and able
        else ""
    )
    fixes: list[Fix] = []
    if choice.path_first and ptxas.source == "PATH" and able and able[0].folder:
        fixes.append(
            ctx.fix(
                f"Put the {able[0].source}'s ptxas first on PATH where JAX runs (jaxlib {choice.xla_version} takes "
                "the first ptxas on PATH; CUDA_ROOT and XLA_FLAGS=--xla_gpu_cuda_data_dir only count when PATH has "
                "none)",
                prepend_path("PATH", able[0].folder),
            )
        )
    plugin_major = (
        12 if "cuda12" in (j.jaxlib_version or "") or any("cuda12" in p for p in j.plugins) else None
    )
    if choice.path_first and plugin_major == 12:
        spec = jax_cuda_spec(
            ctx, "cuda12", XLA_PREFERS_CUDA_DIR, XLA_PREFERS_CUDA_DIR
        )  # the nearest such release
        fixes.append(
            ctx.fix(
                f"Or move to {spec}, whose XLA takes JAX's own nvidia-cuda-nvcc ptxas before PATH's (jaxlib 0.4.24 "
                "and later)",
                ctx.pip_install(spec),
            )
        )
    if not able and arch is not None and arch.first_cuda and _cuda_of(arch.first_cuda):
        wheel = next(
            (n for n in NVCC_WHEEL_NAMES if ctx.distribution(n) is not None), "nvidia-cuda-nvcc-cu12"
        )
        first = _cuda_of(arch.first_cuda) or arch.first_cuda
        major = int(first.split(".")[0])
        wanted = {11: "nvidia-cuda-nvcc-cu11", 12: "nvidia-cuda-nvcc-cu12"}.get(major, "nvidia-cuda-nvcc")
        if wheel.endswith(f"cu{major}") or wanted == "nvidia-cuda-nvcc" or wheel == wanted:
            fixes.append(
                ctx.fix(
                    f"Install a ptxas that knows compute capability {cc} ({since} or newer) for JAX, then run "
                    "gpudoctor check again",
                    ctx.pip_install(f"{wanted}=={first}.*"),
                )
            )
    if not fixes:
        fixes.append(
            ctx.fix(
                "See which ptxas JAX runs and what it supports; put one that knows this GPU first",
                "ptxas --version",
                f"ptxas --list-gpu-arch | grep sm_{cc.replace('.', '')}",
            )
        )
    return Verdict(
        severity=Severity.ERROR,
        message=f"JAX will compile with the CUDA {ptxas.version} ptxas at {ptxas.path}, which cannot build code for "
        f"the {name} (compute capability {cc}): the first JAX operation on the GPU will fail{over}",
        why=(
            "XLA turns every JAX computation into PTX and assembles it with ptxas for the GPU's architecture; a "
            f"ptxas that does not know sm_{cc.replace('.', '')} (ptxas can target it "
            f"{which or 'in no CUDA release gpudoctor knows'}) makes XLA fall back to the driver "
            f"('ptxas does not support CC {cc}'), and the kernels then fail to load (CUDA_ERROR_INVALID_IMAGE) "
            "although jax.devices() lists the GPU. XLA in jaxlib 0.4.23 and older runs the first ptxas on PATH "
            "before anything else; from 0.4.24 it tries JAX's own folder first (CUDA_ROOT, else the "
            "nvidia-cuda-nvcc wheel)."
        ),
        seen=(
            f"ptxas XLA runs: {_describe_ptxas(ptxas)}",
            *(f"passed over: {_describe_ptxas(p)}" for p in choice.passed_over),
            f"jaxlib {choice.xla_version}: "
            + ("the first ptxas on PATH wins" if choice.path_first else "JAX's own folder first, then PATH"),
            *(f"{n}: compute capability {c}" for n, c in unsupported),
        ),
        fixes=tuple(fixes),
    )


def _ptxas_newer_than_driver(
    ctx: RuleContext, j: JaxFacts, ptxas: JaxPtxas, driver: DriverFacts
) -> Iterator[Verdict]:
    have, need = major_minor(driver.cuda_driver_version), major_minor(ptxas.version)
    if have is None or need is None or need <= have:
        return
    requirement = ctx.matrix.driver_requirement(
        ptxas.version or "", "windows" if ctx.flavor in ("windows", "wsl") else "linux"
    )
    driver_cuda = f"{have[0]}.{have[1]}"
    fixes = [
        ctx.fix(
            f"Put a CUDA {driver_cuda} ptxas first on PATH for JAX",
            ctx.conda_install(f"cuda-nvcc={driver_cuda}", channels=("nvidia",))
            if ctx.in_conda
            else prepend_path("PATH", f"/usr/local/cuda-{driver_cuda}/bin"),
        )
    ]
    if requirement and requirement.toolkit_minimum:
        fixes.append(driver_upgrade_fix(ctx, requirement.toolkit_minimum))
    toolkit = ctx.facts.toolkit
    yield Verdict(
        severity=Severity.ERROR,
        message=f"JAX compiles GPU code with the CUDA {ptxas.version} ptxas on PATH, but driver "
        f"{driver.driver_version or '?'} only runs code from CUDA {driver_cuda} or older",
        why="XLA turns every JAX computation into PTX and assembles it with ptxas; code from a ptxas newer than "
        "the driver cannot be loaded ('no kernel image is available for execution on the device'), even though "
        "jax.devices() lists the GPU. CUDA's minor-version compatibility does not cover this path.",
        seen=(
            f"nvcc on PATH: {toolkit.nvcc_on_path or '?'} ({toolkit.nvcc_version})"
            if toolkit is not None and ptxas.version_from == "the nvcc beside it on PATH"
            else f"ptxas on PATH: {ptxas.path} ({ptxas.version})",
            gpu_seen(driver),
            f"jaxlib {j.jaxlib_version or '?'}",
        ),
        fixes=tuple(fixes),
    )


@rule(
    "GD708",
    "JAX sees the GPU the driver reports",
    requires=(
        *causes.NO_GPU_FOR_ANY_FRAMEWORK,
        "GD701",
        "GD702",
        "GD703",
        "GD704",
        "GD705",
        "GD706",
        "GD707",
        "GD709",
        *causes.WHEELS_IN_CONFLICT,
    ),
    needs=("jax", "driver"),
    problem="JAX does not see the GPU the driver reports",
    part="jax",
)
def jax_no_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not j.imported or not has_cuda_jaxlib(j):
        return
    if any(d.startswith(("cuda", "gpu")) for d in j.devices):
        return
    reason = j.backend_error or next(iter(j.warnings), "") or "JAX gave no reason"
    yield Verdict(
        severity=Severity.ERROR,
        message=f"JAX has CUDA support installed and the driver sees {len(driver.gpus)} "
        f"GPU{'s' * (len(driver.gpus) != 1)}, but JAX's devices are {', '.join(j.devices) or 'none'}: {reason}",
        why="None of gpudoctor's known causes applies, so the reason is in what JAX itself reported.",
        seen=(
            f"jax {j.jax_version or '?'}, jaxlib {j.jaxlib_version or '?'}",
            gpu_seen(driver),
            *j.warnings[:2],
        ),
        fixes=(
            ctx.fix(
                "Make JAX fail loudly on the CUDA backend and read the full error",
                f'JAX_PLATFORMS=cuda {ctx.python_cmd} -c "import jax; print(jax.devices())"'
                if ctx.shell == "bash"
                else f'$env:JAX_PLATFORMS="cuda"; {ctx.python_cmd} -c "import jax; print(jax.devices())"',
            ),
        ),
    )


def installed_cuda_majors(j: JaxFacts) -> dict[int, str]:
    """CUDA major -> what brought it: a `jax-cudaNN-plugin`/`-pjrt`, a monolithic `jaxlib+cudaNN`, or a
    conda-forge `cudaNNN` jaxlib build."""
    majors: dict[int, str] = {}
    for name, version in sorted(cuda_plugins(j).items(), key=lambda item: item[0].endswith("pjrt")):
        if (m := _PLUGIN.match(name)) is not None:
            major = int(m.group(2))
            majors[major] = ", ".join(filter(None, (majors.get(major), f"{name} {version}")))
    if (m := _LOCAL_CUDA.match((j.jaxlib_version or "").partition("+")[2])) is not None:
        majors.setdefault(int(m.group(1)), f"jaxlib {j.jaxlib_version}")
    if j.jaxlib_conda_build and (m := _LOCAL_CUDA.match(j.jaxlib_conda_build)) is not None:
        majors.setdefault(int(m.group(1)), f"jaxlib {j.jaxlib_version or '?'} (conda {j.jaxlib_conda_build})")
    return majors


def jax_min_driver(ctx: RuleContext, major: int) -> str | None:
    """The oldest driver that runs JAX's CUDA `major` wheels: JAX's own documented floor on Linux, else the
    major's minor-version-compatibility floor (what the bundled runtime accepts)."""
    system = driver_system(ctx)
    plugin = ctx.matrix.jax_cuda(major)
    if plugin is not None and system == "linux":
        return plugin.min_driver_linux
    family = ctx.matrix.cuda_family(major)
    if family is None:
        return None
    return family.linux if system == "linux" else family.windows


def _driver_too_old(driver: DriverFacts, major: int, minimum: str | None) -> bool:
    have, need = parse_version(driver.driver_version), parse_version(minimum)
    if have is not None and need is not None:
        return have < need
    reported = major_minor(driver.cuda_driver_version)
    return reported is not None and reported[0] < major


def _cuda11_fix(ctx: RuleContext, driver: DriverFacts, j: JaxFacts, installed: list[int]) -> Fix | None:
    """The last JAX with CUDA 11 wheels, where this driver and Python can run it."""
    python = ctx.facts.python.version if ctx.facts.python else ""
    if python and (parse_version(python) or Version("0")) >= Version(LAST_CUDA11_PYTHON):
        return None
    if _driver_too_old(driver, 11, jax_min_driver(ctx, 11)):
        return None
    uninstall = [f"jax-cuda{m}-{part}" for m in installed for part in ("plugin", "pjrt")]
    uninstall = [name for name in uninstall if name in j.plugins]
    commands = [ctx.pip("uninstall", "-y", *uninstall)] if uninstall else []
    commands.append(ctx.pip_install(f"jax[cuda11_pip]=={LAST_CUDA11_JAX}", options=("-f", JAX_CUDA_RELEASES)))
    return ctx.fix(
        f"Or keep this driver and install JAX {LAST_CUDA11_JAX}, the last release with CUDA 11 wheels, which "
        f"driver {driver.driver_version or '?'} runs (a fresh virtual environment is cleanest)",
        *commands,
    )


@rule(
    "GD709",
    "The NVIDIA driver is new enough for JAX's CUDA plugin",
    requires=(*causes.DRIVER, "GD701", "GD705"),
    needs=("jax", "driver"),
    problem="The NVIDIA driver is too old for JAX's CUDA plugin",
    part="jax",
)
def jax_driver_too_old(ctx: RuleContext) -> Iterator[Verdict]:
    j = jax_facts(ctx)
    driver = working_driver(ctx)
    if driver is None or not j.installed or ctx.flavor in ("windows", "macos"):
        return
    majors = installed_cuda_majors(j)
    needs = {major: jax_min_driver(ctx, major) for major in majors}
    old = sorted(major for major in majors if _driver_too_old(driver, major, needs[major]))
    if not old:
        return
    major = old[-1]
    minimum = needs[major]
    fixes = [driver_upgrade_fix(ctx, minimum)] if minimum else []
    runnable = extra_for_machine(ctx, driver)
    if runnable is not None and runnable.major < major:
        stale = [
            f"jax-cuda{m}-{part}"
            for m in old
            for part in ("plugin", "pjrt")
            if f"jax-cuda{m}-{part}" in j.plugins
        ]
        fixes.append(
            ctx.fix(
                f"Or keep driver {driver.driver_version or '?'} and switch to JAX's CUDA {runnable.major} wheels "
                f"(they need driver {runnable.min_driver_linux} or newer)",
                *([ctx.pip("uninstall", "-y", *stale)] if stale else []),
                ctx.pip_install(jax_cuda_spec(ctx, runnable.extra, j.jax_version, runnable.min_jax)),
            )
        )
    elif runnable is None and ctx.flavor == "linux" and (fix := _cuda11_fix(ctx, driver, j, old)) is not None:
        fixes.append(fix)
    seen = [gpu_seen(driver), *(majors[m] for m in sorted(majors))]
    if j.backend_error:
        seen.append(f"JAX: {j.backend_error.splitlines()[0][:200]}")
    need = f"{minimum} or newer" if minimum else f"a driver that supports CUDA {major}"
    yield Verdict(
        severity=Severity.ERROR,
        message=f"NVIDIA driver {driver.driver_version or '?'} (CUDA {driver.cuda_driver_version or '?'}) is too "
        f"old for JAX's CUDA {major} wheels ({majors[major]}): they need driver {need}",
        why=f"JAX's CUDA {major} plugin carries its own CUDA {major} runtime, which refuses to start on an older "
        "driver; JAX then cannot initialise its CUDA backend and falls back to the CPU (or fails with "
        "JAX_PLATFORMS=cuda).",
        seen=tuple(seen),
        fixes=tuple(fixes),
    )
