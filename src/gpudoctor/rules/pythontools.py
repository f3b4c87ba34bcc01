"""GD805, GD810: the CUDA tools frameworks call at run time, found where each framework really looks
and in its own order, before the user meets the error: XLA's ptxas and libdevice (TensorFlow, JAX) and
the toolkit PyTorch builds C++/CUDA extensions with.

The search orders are the frameworks' own: XLA's `FindCudaExecutable` (the preferred folder, then PATH,
then `CandidateCudaRoots`: /usr/local/cuda, /opt/cuda, the nvidia-cuda-nvcc wheel next to the framework,
the environment's prefix) and `GetLibdeviceDir` (the same roots, no PATH); JAX's `_cuda_path`, which
makes CUDA_ROOT or the nvcc wheel XLA's preferred folder over XLA_FLAGS; PyTorch's `_find_cuda_home`
(CUDA_HOME or CUDA_PATH, then the nvcc on PATH, then /usr/local/cuda). The survey child says which of
those folders hold bin/ptxas, bin/nvcc and nvvm/libdevice/libdevice.10.bc in the target environment.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.specifiers import SpecifierSet

from gpudoctor.facts import CudaRoot, Distribution, DriverFacts, PythonFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.requirements import environment, framework_pins, lower_bound, requirement_on
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import driver_upgrade_fix, prepend_path, set_variable
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import surveyed_python, tf_build, working_driver
from gpudoctor.versions import numbers

XLA_PTXAS_MINIMUM = (11, 8)  # FindPtxAsExecutable passes over an older ptxas
XLA_PTXAS_EXCLUDED = ("12.3.103",)  # ... and these, known to miscompile
# The wheels that ship ptxas/libdevice, by CUDA major: CUDA 13 splits libdevice into nvidia-nvvm.
NVCC_WHEELS = {11: "nvidia-cuda-nvcc-cu11", 12: "nvidia-cuda-nvcc-cu12", 13: "nvidia-cuda-nvcc"}
TOOL_WHEELS = (*NVCC_WHEELS.values(), "nvidia-nvvm")
JAX_PLUGINS = {"jax-cuda13-plugin": 13, "jax-cuda12-plugin": 12}
ARCHIVE = "https://developer.nvidia.com/cuda-toolkit-archive"
MAX_SEEN = 8
ToolPin = tuple[str, SpecifierSet, str | None]  # the nvcc wheel a framework pins, its specifier, the extra
CUDA_MISMATCH = (
    "The detected CUDA version ({found}) mismatches the version that was used to compilePyTorch ({torch}). "
    "Please make sure to use the same CUDA versions."
)  # torch.utils.cpp_extension.CUDA_MISMATCH_MESSAGE, its missing space included


@dataclass(frozen=True, kw_only=True)
class XlaUser:
    """A framework that compiles its GPU kernels with XLA, and whose metadata may pin the nvcc wheel."""

    label: str  # "TensorFlow 2.21.0", "JAX (jax-cuda12-plugin 0.10.2)"
    dist: Distribution  # the distribution whose Requires-Dist names the nvcc wheel
    major: int  # the CUDA major it was built for
    jax: bool
    cuda: str | None = None  # the CUDA major.minor of its build, where known ("12.5")


def _xla_users(ctx: RuleContext) -> list[XlaUser]:
    """The XLA frameworks whose GPU route is otherwise in place: installed as a CUDA build and, where their
    probe ran, imported with a GPU in sight (an import error or missing CUDA libraries are other rules' and
    come first; the compiler is needed only once the framework reaches the GPU)."""
    users = []
    build = tf_build(ctx)
    tf_dist = ctx.distribution(build.package) if build is not None else None
    tf = ctx.facts.tensorflow
    tf_ready = tf is None or not tf.installed or (tf.imported and bool(tf.gpus))
    if build is not None and tf_dist is not None and build.gpu_build and build.cuda_major and tf_ready:
        cuda = ".".join(map(str, numbers(build.cuda, 2))) if len(numbers(build.cuda, 2)) == 2 else None
        users.append(XlaUser(label=build.label, dist=tf_dist, major=build.cuda_major, jax=False, cuda=cuda))
    jax = ctx.facts.jax
    jax_ready = (
        jax is None
        or not jax.installed
        or (jax.imported and any(d.startswith(("cuda", "gpu")) for d in jax.devices))
    )
    for name, major in JAX_PLUGINS.items():
        plugin = ctx.distribution(name)
        if plugin is not None and ctx.distribution("jax") is not None and jax_ready:
            users.append(XlaUser(label=f"JAX ({name} {plugin.version})", dist=plugin, major=major, jax=True))
    return users


def _by(python: PythonFacts, via: str) -> list[CudaRoot]:
    return [r for r in python.cuda_roots if r.via == via]


def _preferred(python: PythonFacts, user: XlaUser) -> list[CudaRoot]:
    """XLA's preferred folder: for JAX, CUDA_ROOT, else the nvcc wheel `import nvidia.cu13` (else
    `nvidia.cuda_nvcc`) finds, over XLA_FLAGS; for TensorFlow, XLA_FLAGS' --xla_gpu_cuda_data_dir."""
    if user.jax:
        if root := _by(python, "CUDA_ROOT"):
            return root[:1]
        if cu13 := _by(python, "wheel nvidia/cu13"):
            return [r for r in cu13 if r.ptxas][:1]  # the namespace package's folder that has bin/ptxas
        if cuda_nvcc := _by(python, "wheel nvidia/cuda_nvcc"):
            return cuda_nvcc[:1]
    return _by(python, "XLA_FLAGS")[:1]


def _search(python: PythonFacts, user: XlaUser, tool: str) -> list[CudaRoot]:
    """The folders XLA tries for `tool` ("ptxas" or "libdevice"), in its order."""
    wheel = "wheel nvidia/cu13" if user.major >= 13 else "wheel nvidia/cuda_nvcc"
    order = [*_preferred(python, user)]
    if tool == "ptxas":
        order += _by(python, "ptxas on PATH")
    order += [*_by(python, "/usr/local/cuda"), *_by(python, "/opt/cuda"), *_by(python, wheel)]
    if tool == "libdevice" and not user.jax:
        order += _by(python, "tensorflow/cuda")
    order += _by(python, "prefix")
    unique: dict[str, CudaRoot] = {}
    for root in order:
        unique.setdefault(root.real or root.path, root)
    return list(unique.values())


def _root_version(ctx: RuleContext, root: CudaRoot) -> str | None:
    """A folder's CUDA version: its version.json, the wheel that wrote its ptxas, or the toolkit probe's."""
    if root.version:
        return root.version
    python = surveyed_python(ctx)
    prefix = root.path.rstrip("/\\")
    for wheel in python.wheel_tools if python is not None else ():
        if wheel.name.startswith(("ptxas", "nvcc")) and wheel.path.startswith((prefix + "/", prefix + "\\")):
            dist = ctx.distribution(wheel.distribution)
            if dist is not None:
                return dist.version
    toolkit = ctx.facts.toolkit
    for install in toolkit.installs if toolkit is not None else ():
        if install.path in (root.path, root.real):
            return install.version or install.nvcc_version
    return None


def _accepted(version: str | None) -> bool:
    """XLA's own test for a ptxas: 11.8 or newer and not a known-bad release (an unknown version passes)."""
    if version is None:
        return True
    return numbers(version, 2) >= XLA_PTXAS_MINIMUM and version not in XLA_PTXAS_EXCLUDED


def _missing_tool_wheels(python: PythonFacts, ctx: RuleContext, user: XlaUser) -> list[str]:
    """The nvcc/nvvm wheels the framework's active extra pins and that are missing: GD801's error says so."""
    pins = next(
        (fw for fw in framework_pins(python, ctx.facts.platform) if fw.framework == user.dist.name), None
    )
    return [p.name for p in pins.pins if p.name in TOOL_WHEELS and p.state == "missing"] if pins else []


def _ptxas_file(root: CudaRoot) -> str:
    return root.tool or f"{root.path.rstrip('/')}/bin/ptxas"


def _describe(ctx: RuleContext, root: CudaRoot, tool: str) -> str:
    inside = "bin/ptxas" if tool == "ptxas" else "nvvm/libdevice/libdevice.10.bc"
    where = root.tool if tool == "ptxas" and root.tool else f"{root.path.rstrip('/')}/{inside}"
    has = root.ptxas if tool == "ptxas" else root.libdevice
    if not has:
        return f"{root.via}: {where} absent"
    version = _root_version(ctx, root)
    label = f"{root.via}: {where}" + (f" (CUDA {version})" if version else "")
    if tool == "ptxas" and not _accepted(version):
        label += " passed over: XLA takes ptxas 11.8 or newer, not 12.3.103"
    return label


# ----------------------------------------------------------------------------------------------
# GD805: XLA's ptxas and libdevice


@rule(
    "GD805",
    "XLA finds a ptxas and libdevice it can use",
    problem="XLA will not find a usable ptxas or libdevice",
    part="python",
    requires=("GD106", *causes.PLATFORM, "GD707"),
    needs=("python",),
)
def xla_tools(ctx: RuleContext) -> Iterator[Verdict]:
    python = surveyed_python(ctx)
    if python is None or ctx.flavor not in ("linux", "wsl") or not python.cuda_roots:
        return  # XLA's GPU backend runs on Linux (and WSL 2); facts without cuda_roots cannot tell
    env = environment(python, ctx.facts.platform)
    for user in _xla_users(ctx):
        if _missing_tool_wheels(python, ctx, user):
            continue  # GD801: the framework's own pin on the nvcc wheel is missing
        ptxas_search, lib_search = _search(python, user, "ptxas"), _search(python, user, "libdevice")
        ptxas = next((r for r in ptxas_search if r.ptxas and _accepted(_root_version(ctx, r))), None)
        libdevice = next((r for r in lib_search if r.libdevice), None)
        pin = requirement_on(user.dist, NVCC_WHEELS.values(), env)
        explains = () if user.jax else ("GD207",)
        if ptxas is None or libdevice is None:
            yield _tools_missing(ctx, user, ptxas, libdevice, pin, explains)
            continue
        floor = lower_bound(pin[1]) if pin else None
        version = _root_version(ctx, ptxas)
        have = numbers(version, 2) if version else None
        from_wheel = ptxas.via.startswith("wheel")
        driver = working_driver(ctx)
        top = numbers(driver.cuda_driver_version, 2) if driver is not None else ()
        if have and top and have[0] > top[0]:
            yield _ptxas_beyond_driver(ctx, user, ptxas, version or "", driver, pin, ptxas_search, explains)
            continue
        if floor is None or not have or from_wheel or have >= floor.release[:2]:
            continue
        yield Verdict(
            severity=Severity.WARNING,
            explains=(),
            message=f"XLA in {user.label} compiles with the CUDA {version} ptxas at {_ptxas_file(ptxas)}, "
            f"older than the {pin[0] if pin else 'nvcc'} {floor} its own metadata pins",
            why=(
                "XLA targets the PTX version of the older of its own CUDA and the ptxas it finds, so an older "
                "ptxas works but produces slower code and cannot compile for GPUs newer than it knows; XLA then "
                "falls back to the driver's JIT compiler."
            ),
            seen=tuple(_describe(ctx, r, "ptxas") for r in ptxas_search[:MAX_SEEN]),
            fixes=tuple(_install_fixes(ctx, user, pin, need_libdevice=False, ahead=ptxas)),
        )


def _ptxas_beyond_driver(
    ctx: RuleContext,
    user: XlaUser,
    ptxas: CudaRoot,
    version: str,
    driver: DriverFacts | None,
    pin: ToolPin | None,
    search: list[CudaRoot],
    explains: tuple[str, ...],
) -> Verdict:
    assert driver is not None
    fixes = _install_fixes(ctx, user, pin, need_libdevice=False, ahead=None if user.jax else ptxas)
    requirement = ctx.matrix.driver_requirement(version, "linux")
    if requirement is not None and requirement.toolkit_minimum:
        fixes.append(driver_upgrade_fix(ctx, requirement.toolkit_minimum))
    return Verdict(
        severity=Severity.ERROR,
        explains=explains,
        message=f"XLA in {user.label} would assemble its GPU code with the CUDA {version} ptxas at "
        f"{_ptxas_file(ptxas)}, but driver {driver.driver_version} runs CUDA {driver.cuda_driver_version} "
        "at most: the kernels it builds will not load",
        why=(
            "ptxas writes machine code for the CUDA version it comes from; a driver of an older CUDA major cannot "
            "load it (CUDA's minor-version compatibility spans one major only). XLA takes the first ptxas in "
            "its search order, whatever the framework was built with."
        ),
        seen=(
            *(_describe(ctx, r, "ptxas") for r in search[: search.index(ptxas) + 1]),
            f"driver {driver.driver_version}: CUDA {driver.cuda_driver_version} at most",
        ),
        fixes=tuple(fixes),
    )


def _tools_missing(
    ctx: RuleContext,
    user: XlaUser,
    ptxas: CudaRoot | None,
    libdevice: CudaRoot | None,
    pin: ToolPin | None,
    explains: tuple[str, ...],
) -> Verdict:
    python = surveyed_python(ctx)
    assert python is not None
    missing = [name for name, found in (("ptxas", ptxas), ("libdevice", libdevice)) if found is None]
    searched = {tool: _search(python, user, tool) for tool in missing}
    seen = [_describe(ctx, r, tool) for tool in missing for r in searched[tool]][:MAX_SEEN]
    tf = ctx.facts.tensorflow
    if not user.jax and tf is not None:
        seen += [line[:200] for line in tf.log_lines if "ptxas" in line or "libdevice" in line][:2]
    what = " and ".join(
        "ptxas" if m == "ptxas" else "libdevice (nvvm/libdevice/libdevice.10.bc)" for m in missing
    )
    return Verdict(
        severity=Severity.ERROR,
        explains=explains,
        message=f"XLA in {user.label} will find no usable {what}: "
        + (
            "every JAX computation on the GPU will fail to compile"
            if user.jax
            else "functions TensorFlow compiles with XLA (jit_compile=True, Keras' jit_compile) will fail on the GPU"
        ),
        why=(
            "XLA turns each computation into PTX with LLVM, linking NVIDIA's libdevice bitcode for math "
            "functions, and assembles the PTX with ptxas. It looks in its preferred folder (XLA_FLAGS' "
            "--xla_gpu_cuda_data_dir; for JAX, CUDA_ROOT or the nvidia-cuda-nvcc wheel), then PATH for ptxas, "
            "then /usr/local/cuda, /opt/cuda, the nvcc wheel next to the framework and the environment's "
            "prefix. The CUDA runtime wheels and conda's cudatoolkit do not include either."
        ),
        seen=tuple(seen),
        fixes=tuple(_install_fixes(ctx, user, pin, need_libdevice=libdevice is None)),
    )


def _wheel_folder(python: PythonFacts, user: XlaUser) -> str:
    """Where the nvcc wheel puts bin/ptxas and nvvm/ (CUDA 12: nvidia/cuda_nvcc; CUDA 13: nvidia/cu13)."""
    site = (
        python.site_packages[0]
        if python.site_packages
        else "$(python -c 'import site; print(site.getsitepackages()[0])')"
    )
    return f"{site}/nvidia/{'cu13' if user.major >= 13 else 'cuda_nvcc'}"


def _point_xla(ctx: RuleContext, user: XlaUser, folder: str) -> str:
    """The command that makes `folder` XLA's preferred one: JAX's CUDA_ROOT, TensorFlow's XLA_FLAGS."""
    if user.jax:
        return set_variable(ctx, "CUDA_ROOT", folder)
    return f'export XLA_FLAGS="${{XLA_FLAGS:+$XLA_FLAGS }}--xla_gpu_cuda_data_dir={folder}"'


def _install_fixes(
    ctx: RuleContext,
    user: XlaUser,
    pin: ToolPin | None,
    *,
    need_libdevice: bool,
    ahead: CudaRoot | None = None,
) -> list[Fix]:
    """Fixes that give XLA a ptxas and libdevice; `ahead` is a ptxas XLA would still find before the wheel's
    (one on PATH, for TensorFlow), so the wheel's folder must become XLA's preferred one."""
    python = surveyed_python(ctx)
    assert python is not None
    fixes: list[Fix] = []
    wheel = pin[0] if pin else (NVCC_WHEELS.get(user.major) if user.jax else None)
    floor = lower_bound(pin[1]) if pin else None
    if wheel is None and user.cuda:  # a TensorFlow whose metadata names no nvcc wheel: the system toolkit
        fixes.append(
            ctx.fix(
                f"Install the CUDA {user.cuda} toolkit (it brings bin/ptxas and nvvm/libdevice) from {ARCHIVE}, "
                "then point XLA at it",
                _point_xla(ctx, user, f"/usr/local/cuda-{user.cuda}"),
            )
        )
    if wheel is not None:
        specs = [f"{wheel}{pin[1]}" if pin else wheel]
        if user.major >= 13 and need_libdevice:
            specs.append("nvidia-nvvm")
        commands = [ctx.pip_install(*specs)]
        summary = f"Install the nvcc wheel {user.label} " + ("pins" if pin else "needs")
        if ahead is not None and not user.jax:
            commands.append(_point_xla(ctx, user, _wheel_folder(python, user)))
            summary += f", and make its folder XLA's first choice over {ahead.tool or ahead.path}"
        else:
            summary += ", which puts ptxas and libdevice where XLA looks, next to the framework"
        fixes.append(ctx.fix(summary, *commands))
    series = f"{floor.major}.{floor.minor}" if floor else None
    if ctx.in_conda and series and ahead is None:
        fixes.append(
            ctx.fix(
                f"Or, in this conda environment, install conda-forge's CUDA {series} compiler (bin/ptxas and "
                "nvvm/libdevice in the environment's prefix, where XLA also looks)",
                ctx.conda_install(f"cuda-nvcc={series}"),
            )
        )
    for root in python.cuda_roots:
        version = _root_version(ctx, root)
        have = numbers(version, 2)
        if not (root.via == "toolkit" and root.ptxas and root.libdevice and _accepted(version)):
            continue
        if (have[:1] or (user.major,))[0] != user.major or (
            floor is not None and have and have < floor.release[:2]
        ):
            continue
        if ahead is not None and (root.real or root.path) in (ahead.real, ahead.path):
            continue
        fixes.append(
            ctx.fix(
                f"Or point XLA at the CUDA {version or ''} toolkit at {root.path} (it has bin/ptxas and "
                "nvvm/libdevice)".replace("CUDA  ", "CUDA "),
                _point_xla(ctx, user, root.path),
            )
        )
        break
    return fixes


# ----------------------------------------------------------------------------------------------
# GD810: the toolkit PyTorch builds extensions with


def _torch_cuda_home(python: PythonFacts) -> CudaRoot | None:
    """PyTorch's `_find_cuda_home`: CUDA_HOME or CUDA_PATH, else the folder above the nvcc on PATH, else
    /usr/local/cuda (on Windows the first installed toolkit)."""
    for via in ("CUDA_HOME", "CUDA_PATH", "nvcc on PATH", "/usr/local/cuda"):
        if roots := _by(python, via):
            return roots[0]
    return None


@rule(
    "GD810",
    "PyTorch builds CUDA extensions with a toolkit of its own CUDA major",
    problem="PyTorch would build CUDA extensions with a toolkit of another CUDA major",
    part="torch",
    requires=("GD303",),
    needs=("python", "torch"),
)
def extension_toolkit(ctx: RuleContext) -> Iterator[Verdict]:
    python, torch = surveyed_python(ctx), ctx.facts.torch
    if python is None or torch is None or not torch.cuda_version or not python.cuda_roots:
        return
    home = _torch_cuda_home(python)
    if home is None or not home.nvcc:
        return  # no toolkit at all: nothing is built with one until the user installs it (GD303: a bad CUDA_HOME)
    found = _root_version(ctx, home)
    have, want = numbers(found, 2), numbers(torch.cuda_version, 2)
    if len(have) < 2 or len(want) < 2 or have[0] == want[0]:
        return  # a minor difference only: PyTorch itself says "Most likely this shouldn't be a problem"
    series = f"{want[0]}.{want[1]}"
    found_series = f"{have[0]}.{have[1]}"
    matching = next(
        (
            r
            for r in python.cuda_roots
            if r.nvcc and r is not home and numbers(_root_version(ctx, r), 2) == want
        ),
        None,
    )
    fixes: list[Fix] = []
    if matching is not None:
        fixes.append(
            ctx.fix(
                f"Build with the CUDA {series} toolkit already at {matching.path}",
                set_variable(ctx, "CUDA_HOME", matching.path),
                *(() if ctx.shell == "powershell" else (prepend_path("PATH", f"{matching.path}/bin"),)),
            )
        )
    elif ctx.in_conda:
        fixes.append(
            ctx.fix(
                f"Install conda-forge's CUDA {series} compiler and headers into this environment and build with them",
                ctx.conda_install(f"cuda-nvcc={series}", f"cuda-cudart-dev={series}"),
                set_variable(ctx, "CUDA_HOME", "$CONDA_PREFIX"),
            )
        )
    else:
        fixes.append(
            ctx.fix(
                f"Install the CUDA {series} toolkit from {ARCHIVE} (it installs beside the others), then build with it",
                set_variable(ctx, "CUDA_HOME", f"/usr/local/cuda-{series}"),
                prepend_path("PATH", f"/usr/local/cuda-{series}/bin"),
            )
        )
    yield Verdict(
        severity=Severity.WARNING,
        message=f"PyTorch {torch.version} is built for CUDA {torch.cuda_version}, but its extension builder "
        f"would use the CUDA {found} toolkit at {home.path} (from {home.via}): "
        + CUDA_MISMATCH.format(found=found_series, torch=torch.cuda_version),
        why=(
            "torch.utils.cpp_extension (setup.py builds, torch.utils.cpp_extension.load, packages compiled on "
            "install such as flash-attn or apex) takes the toolkit from CUDA_HOME or CUDA_PATH, else from the "
            "nvcc on PATH, else /usr/local/cuda, and refuses a CUDA major other than PyTorch's own; a minor "
            "difference only warns. PyTorch itself runs; building CUDA code against it fails."
        ),
        seen=(
            f"torch {torch.version}: torch.version.cuda = {torch.cuda_version}",
            f"{home.via}: {home.path} -> nvcc CUDA {found}",
        ),
        fixes=tuple(fixes),
    )
