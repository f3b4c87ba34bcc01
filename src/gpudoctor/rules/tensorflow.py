"""GD40x: TensorFlow installation — it imports, it is a GPU build, nothing shadows it, it sees the GPU."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import PurePosixPath, PureWindowsPath

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.distributions import FRAMEWORK_DISTRIBUTIONS
from gpudoctor.facts import Distribution, GpuFacts, TensorFlowFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import (
    FIRST_AND_CUDA_SERIES,
    prepend_path,
    tf_crossing,
    tf_install_commands,
    tf_install_spec,
    tf_move_spec,
)
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import TF_PACKAGES
from gpudoctor.versions import parse_version, series_key

FIRST_AND_CUDA = Version("2.14")  # first release with the `[and-cuda]` extra
FIRST_GPU_BY_DEFAULT = Version("2.1")  # `tensorflow` itself became the GPU build (1.15 too)
NUMPY_2_SERIES = "2.18"  # first release compiled against NumPy 2
FIRST_NO_WINDOWS_GPU = Version("2.11")
LAST_REAL_GPU_PACKAGE = Version("2.11.0")  # tensorflow-gpu 2.12.0 is an empty stub that fails to install
STUB = "tensorflow-gpu"
VERBOSE_CHECK = "TF_CPP_MAX_VLOG_LEVEL=1 python -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\""

NUMPY_ABI = lazy_re.compile(
    r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found"
    r"|numpy\.core\.(?:_?multiarray(?:_umath)?) failed to import|numpy\.dtype size changed"
)
MISSING_SO = lazy_re.compile(
    r"(lib(cudart|cublas|cudnn|cufft|curand|cusolver|cusparse)\.so\.(\d+)(?:\.(\d+))?)"
)
MISSING_DLL = lazy_re.compile(
    r"((cudart|cublas|cudnn|cufft|curand|cusolver|cusparse)64_(\d+)\.dll)", re.IGNORECASE
)
CONDA_ACTIVATE_LIBRARY_PATH = "echo 'export LD_LIBRARY_PATH=$CONDA_PREFIX/lib/${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}' > $CONDA_PREFIX/etc/conda/activate.d/env_vars.sh"
TOOLKIT_ARCHIVE = "https://developer.nvidia.com/cuda-toolkit-archive"
CUDNN_ARCHIVE = "https://developer.nvidia.com/rdp/cudnn-archive"


def _tf_version(ctx: RuleContext) -> str | None:
    tf = ctx.facts.tensorflow
    if tf is not None and tf.version:
        return tf.version
    for name in ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel"):
        dist = ctx.distribution(name)
        if dist is not None and dist.version:
            return dist.version
    return None


def _arg(ctx: RuleContext, text: str) -> str:
    if ctx.shell == "bash":
        return shlex.quote(text)
    return "'" + text.replace("'", "''") + "'"


def _installed_by_conda(ctx: RuleContext, name: str) -> bool:
    dist = ctx.distribution(name)
    if dist is not None and dist.installer == "conda":
        return True
    conda = ctx.facts.conda
    return ctx.in_conda and conda is not None and any(p.name == name for p in conda.packages)


def _gpu_tensorflow_fix(ctx: RuleContext, version: str | None) -> Fix:
    """Commands that leave this environment with the GPU build of TensorFlow `version` and no other
    TensorFlow build next to it."""
    parsed = parse_version(version)
    if ctx.in_conda and _installed_by_conda(ctx, "tensorflow"):
        leftovers = [n for n in TF_PACKAGES if n != "tensorflow" and ctx.distribution(n) is not None]
        uninstall = (ctx.pip("uninstall", "-y", *leftovers),) if leftovers else ()
        spec = f"tensorflow={version}=cuda*" if version else "tensorflow=*=cuda*"
        return ctx.fix("Install conda-forge's CUDA build of TensorFlow", *uninstall, ctx.conda_install(spec))
    if parsed is None:
        newest = max((r.version for r in ctx.matrix.tensorflow if not r.prerelease), key=series_key)
        return ctx.fix(
            f"Install the GPU build of TensorFlow {newest}",
            *tf_install_commands(ctx, tf_install_spec(ctx, newest)),
        )
    if parsed < FIRST_GPU_BY_DEFAULT and not (parsed.major == 1 and parsed.minor == 15):
        return ctx.fix(
            f"Install the GPU package of TensorFlow {version} (before 2.1 it is named tensorflow-gpu)",
            *tf_install_commands(ctx, f"tensorflow-gpu=={version}"),
        )
    if parsed >= FIRST_AND_CUDA and ctx.flavor in ("linux", "wsl"):
        return ctx.fix(
            f"Install TensorFlow {version} with the CUDA libraries it was built for (the [and-cuda] extra)",
            *tf_install_commands(ctx, f"tensorflow[and-cuda]=={version}"),
        )
    return ctx.fix(
        f"Install the GPU-enabled tensorflow {version} package",
        *tf_install_commands(ctx, f"tensorflow=={version}"),
    )


def _framework_of(entry: str) -> str:
    return entry.rstrip("/\\").removesuffix(".py")


def _framework_installed(ctx: RuleContext, name: str) -> bool:
    return any(ctx.distribution(d) is not None for d in FRAMEWORK_DISTRIBUTIONS.get(name, (name,)))


# --- GD405 -----------------------------------------------------------------------------------------


@rule(
    "GD405",
    "No file in the working directory shadows a framework package",
    needs=("python",),
    problem="A file in the working directory shadows a framework package",
    part="python",
)
def shadowing_file(ctx: RuleContext) -> Iterator[Verdict]:
    python = ctx.facts.python
    assert python is not None
    cwd = ctx.facts.target.cwd
    path_type = PureWindowsPath if ctx.flavor == "windows" else PurePosixPath
    for entry in python.shadowing:
        name = _framework_of(entry)
        if not _framework_installed(ctx, name):
            continue  # nothing to shadow: most likely the user's own project folder
        is_folder = entry.endswith(("/", "\\"))
        here = path_type(cwd) if cwd else path_type(".")
        original = here / (name if is_folder else f"{name}.py")
        renamed = here / (f"my_{name}" if is_folder else f"my_{name}.py")
        cache = here / "__pycache__"
        if ctx.shell == "bash":
            commands = (
                f"mv {_arg(ctx, str(original))} {_arg(ctx, str(renamed))}",
                f"rm -rf {_arg(ctx, str(cache))}",
            )
        else:
            commands = (
                f"Rename-Item -Path {_arg(ctx, str(original))} -NewName {_arg(ctx, renamed.name)}",
                f"Remove-Item -Recurse -Force -ErrorAction SilentlyContinue {_arg(ctx, str(cache))}",
            )
        kind = "folder" if is_folder else "file"
        yield Verdict(
            severity=Severity.ERROR,
            message=(
                f"The {kind} {entry} in {cwd or 'the working directory'} is imported instead of the installed "
                f"{name} package when Python runs from there"
            ),
            why=(
                "Python puts the script's folder (or the working directory) first on sys.path, so "
                f"`import {name}` loads this {kind}; the framework then seems broken or to lack attributes "
                "such as `config` or `cuda`."
            ),
            seen=(f"{original} is what `import {name}` finds",),
            fixes=(
                ctx.fix(
                    f"Rename the {kind} (and update your imports of it), then delete the stale bytecode cache",
                    *commands,
                ),
            ),
        )


# --- GD401 -----------------------------------------------------------------------------------------


def _numpy_abi(ctx: RuleContext, tf: TensorFlowFacts, text: str) -> bool:
    if NUMPY_ABI.search(text):
        return True
    numpy = parse_version(getattr(ctx.distribution("numpy"), "version", None))
    tf_version = parse_version(tf.version)
    return (
        numpy is not None
        and numpy.major >= 2
        and tf_version is not None
        and tf_version < Version(NUMPY_2_SERIES)
        and "numpy" in text.lower()
    )


def _cuda_archive_fix(ctx: RuleContext, library: str, cuda: str | None, cudnn: str | None) -> tuple[Fix, ...]:
    if ctx.in_conda:
        specs = [f"cudatoolkit={cuda}"] if cuda else []
        specs += [f"cudnn={cudnn}"] if cudnn else []
        return (
            ctx.fix(
                f"Install the {library} this TensorFlow needs into the conda environment",
                ctx.conda_install(*specs),
            ),
        )
    what = f"CUDA {cuda}" if cuda else f"cuDNN {cudnn}"
    page = TOOLKIT_ARCHIVE if cuda else CUDNN_ARCHIVE
    if ctx.flavor == "windows":
        folder = (
            rf"C:\Program Files\NVIDIA GPU Computing Toolkit\CUDA\v{cuda}\bin"
            if cuda
            else r"C:\tools\cuda\bin"
        )
        command = (
            '[Environment]::SetEnvironmentVariable("Path", '
            f'"{folder};" + [Environment]::GetEnvironmentVariable("Path", "User"), "User")'
        )
        return (
            ctx.fix(
                f"Install {what} from {page}, then put its bin folder on PATH and open a new terminal",
                command,
            ),
        )
    lib_dir = f"/usr/local/cuda-{cuda}/lib64" if cuda else "/usr/local/cuda/lib64"
    return (
        ctx.fix(
            f"Install {what} from {page} (side by side with other versions), then put its libraries on the "
            "loader path (add the line to ~/.bashrc to keep it)",
            prepend_path("LD_LIBRARY_PATH", lib_dir),
        ),
    )


def _missing_cuda_library(text: str) -> tuple[str, str | None, str | None] | None:
    """(library, CUDA version, cuDNN major) for the first CUDA library an import error names."""
    so = MISSING_SO.search(text)
    if so:
        library, kind, major, minor = so.group(1), so.group(2), so.group(3), so.group(4)
        if kind == "cudnn":
            return library, None, major
        return library, f"{major}.{minor}" if minor else major, None
    dll = MISSING_DLL.search(text)
    if dll:
        library, kind, digits = dll.group(1), dll.group(2).lower(), dll.group(3)
        if kind == "cudnn":
            return library, None, digits
        cuda = f"{digits[:-1]}.{digits[-1]}" if len(digits) >= 2 else digits  # "100" -> 10.0, "110" -> 11.0
        return library, cuda, None
    return None


@rule(
    "GD401",
    "TensorFlow imports",
    needs=("tensorflow",),
    requires=(*causes.BROKEN_PYTHON, "GD405", "GD413", "GD513", *causes.WHEELS_IN_CONFLICT),
    problem="TensorFlow fails to import",
    part="tensorflow",
)
def tensorflow_import_fails(ctx: RuleContext) -> Iterator[Verdict]:
    tf = ctx.facts.tensorflow
    assert tf is not None
    if not tf.installed or tf.imported:
        return
    error = (tf.import_error or "").strip()
    last = error.splitlines()[-1] if error else "no error text"
    name = f"TensorFlow {tf.version}" if tf.version else "TensorFlow"
    seen = (f"import tensorflow: {last}"[:300],)
    text = "\n".join([error, *tf.log_lines])
    if _numpy_abi(ctx, tf, text):
        numpy = ctx.distribution("numpy")
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{name} was compiled against NumPy 1.x and cannot load with NumPy {numpy.version if numpy else '2'}",
            why="NumPy 2 changed its C ABI; TensorFlow releases before 2.18 were built for NumPy 1.x and fail on import.",
            seen=(*seen, *((f"numpy {numpy.version} installed",) if numpy else ())),
            fixes=(
                ctx.fix(
                    "Go back to NumPy 1.x",
                    ctx.conda_install("numpy<2")
                    if _installed_by_conda(ctx, "numpy")
                    else ctx.pip_install("numpy<2"),
                ),
                ctx.fix(
                    f"Or move to TensorFlow {NUMPY_2_SERIES}, the first release built for NumPy 2"
                    + tf_crossing(ctx, NUMPY_2_SERIES),
                    *tf_install_commands(ctx, tf_move_spec(ctx, NUMPY_2_SERIES)),
                ),
            ),
        )
        return
    if "did not finish within" in error:
        yield Verdict(
            severity=Severity.WARNING,
            message=f"Importing {name} did not finish in time: {last}",
            why="A hanging import usually waits on a wedged driver or a slow network file system; it may also just be slow.",
            seen=seen,
            fixes=(
                ctx.fix(
                    "Run the check again with a longer limit",
                    "gpudoctor check"
                    + (f" --python {ctx.python_cmd}" if ctx.facts.target.selected_by == "--python" else "")
                    + " --timeout 300",
                ),
            ),
        )
        return
    if re.search(r"crashed \(SIG", error):
        yield Verdict(
            severity=Severity.ERROR,
            message=f"Importing {name} crashed the interpreter: {last}",
            why=(
                "A crash inside the import is a native library failing: SIGILL means the CPU lacks instructions "
                "(AVX) the wheel was built for; SIGSEGV/SIGABRT usually mean mismatched CUDA or system libraries."
            ),
            seen=seen,
            fixes=(
                ctx.fix(
                    "Run the import with a native traceback to see which library crashes",
                    'python -X faulthandler -c "import tensorflow"',
                ),
            ),
        )
        return
    missing = _missing_cuda_library(error)
    if missing is not None:
        library, cuda, cudnn = missing
        built_for = f"CUDA {cuda}" if cuda else f"cuDNN {cudnn}"
        fixes = _cuda_archive_fix(ctx, library, cuda, cudnn)
        if ctx.flavor in ("linux", "wsl"):
            series = FIRST_AND_CUDA_SERIES
            fixes += (
                ctx.fix(
                    f"Or move to TensorFlow {series}, the first release that installs its CUDA libraries as "
                    "wheels (the [and-cuda] extra)" + tf_crossing(ctx, series),
                    *tf_install_commands(ctx, f"tensorflow[and-cuda]=={series}.*"),
                ),
            )
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{name} was linked against {built_for} and cannot start without {library}",
            why=f"This TensorFlow loads {library} when it is imported; no folder on the loader path has it.",
            seen=seen,
            fixes=fixes,
        )
        return
    if "DLL load failed" in error:
        python = ctx.facts.python
        if python is not None and python.origin == "microsoft-store":
            short = ".".join(python.version.split(".")[:2]) or "3"
            yield Verdict(
                severity=Severity.ERROR,
                message=f"{name} cannot load its DLLs inside the Microsoft Store Python",
                why="The Store build of Python runs sandboxed and does not resolve DLLs from PATH as TensorFlow expects.",
                seen=(*seen, f"Python is the Microsoft Store build ({python.executable})"),
                fixes=(
                    ctx.fix(
                        "Install Python from python.org and recreate the environment with it",
                        f"winget install -e --id Python.Python.{short}",
                        f"py -{short} -m venv .venv",
                    ),
                ),
            )
            return
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{name} cannot load its native library on Windows: {last}"[:300],
            why=(
                "TensorFlow's Windows build needs the Microsoft Visual C++ 2015–2022 redistributable "
                "(msvcp140_1.dll); a CPU without AVX or a missing CUDA DLL gives the same error."
            ),
            seen=seen,
            fixes=(
                ctx.fix(
                    "Install the Visual C++ redistributable",
                    "winget install -e --id Microsoft.VCRedist.2015+.x64",
                    needs_admin=True,
                ),
            ),
        )
        return
    dist = next(
        (d for d in ("tensorflow", "tensorflow-gpu", "tensorflow-cpu") if d in tf.distributions), "tensorflow"
    )
    version = tf.distributions.get(dist) or _tf_version(ctx)
    spec = f"{dist}=={version}" if version else dist
    yield Verdict(
        severity=Severity.ERROR,
        message=f"`import tensorflow` fails: {last}"[:300],
        why="Until it imports, TensorFlow cannot use the CPU or the GPU.",
        seen=seen,
        fixes=(
            ctx.fix(
                "Reinstall TensorFlow's own files, then whatever it requires that is missing (`--force-reinstall` "
                "alone would also move every dependency, NumPy included, to its newest allowed release)",
                ctx.pip_install(spec, options=("--force-reinstall", "--no-deps")),
                ctx.pip_install(spec),
            ),
        ),
    )


# --- GD403 -----------------------------------------------------------------------------------------


def _requires_stub(dist: Distribution) -> str | None:
    for line in dist.requires:
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != STUB:
            continue
        if requirement.marker is not None and "extra" in str(requirement.marker):
            continue
        return line
    return None


@rule(
    "GD403",
    "No installed package depends on the removed tensorflow-gpu package",
    needs=("python",),
    problem="An installed package depends on the removed tensorflow-gpu package",
    part="python",
)
def tensorflow_gpu_stub_required(ctx: RuleContext) -> Iterator[Verdict]:
    python = ctx.facts.python
    assert python is not None
    stub = ctx.distribution(STUB)
    stub_version = parse_version(stub.version) if stub else None
    if stub is not None and stub_version is not None and stub_version > LAST_REAL_GPU_PACKAGE:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"tensorflow-gpu {stub.version} is installed: an empty placeholder with no TensorFlow in it",
            why="tensorflow-gpu was retired in December 2022; from 2.12 it is a stub, and `tensorflow` itself is the GPU build.",
            seen=(f"tensorflow-gpu=={stub.version}",),
            fixes=(_gpu_tensorflow_fix(ctx, stub.version),),
        )
    for dist in python.distributions:
        if dist.name == STUB:
            continue
        line = _requires_stub(dist)
        if line is None:
            continue
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{dist.name} {dist.version} requires tensorflow-gpu, which now exists only as a stub that fails to install",
            why=(
                "Any `pip install` or `pip check` that resolves this requirement tries the removed tensorflow-gpu "
                "package and fails, even with tensorflow installed; the two have been identical since TF 2.1."
            ),
            seen=(f"{dist.name}: Requires-Dist: {line}",),
            fixes=(
                ctx.fix(
                    f"Install {dist.name} without its dependencies and TensorFlow itself; ask its maintainers "
                    "to depend on tensorflow instead of tensorflow-gpu",
                    ctx.pip_install(f"{dist.name}=={dist.version}", options=("--no-deps",)),
                    *_gpu_tensorflow_fix(ctx, _tf_version(ctx)).commands,
                ),
            ),
        )


# --- GD404 -----------------------------------------------------------------------------------------


def _is_tf_2_0(dist: Distribution) -> bool:
    parsed = parse_version(dist.version)
    return parsed is not None and parsed.release[:2] == (2, 0)


@rule(
    "GD404",
    "The installed TensorFlow package is a GPU build",
    needs=("python", "driver"),
    requires=("GD809",),
    problem="The installed TensorFlow package is a CPU-only build",
    part="tensorflow",
)
def tensorflow_cpu_package(ctx: RuleContext) -> Iterator[Verdict]:
    driver = ctx.facts.driver
    assert driver is not None
    if not driver.gpus or ctx.flavor == "macos":
        return
    version = _tf_version(ctx)
    parsed = parse_version(version)
    if ctx.flavor == "windows" and (parsed is None or parsed >= FIRST_NO_WINDOWS_GPU):
        return  # native Windows has no GPU TensorFlow after 2.10: the GD51x rules say so
    plain = ctx.distribution("tensorflow")
    gpu = ctx.distribution("tensorflow-gpu")
    cpu = ctx.distribution("tensorflow-cpu")
    intel = ctx.distribution("tensorflow-intel")
    gpu_name = f"{len(driver.gpus)} NVIDIA GPU{'s' * (len(driver.gpus) != 1)}"
    if plain is not None and gpu is not None:
        plain_version = parse_version(plain.version)
        cpu_only = (
            plain_version is not None
            and plain_version < FIRST_GPU_BY_DEFAULT
            and not (plain_version.major == 1 and plain_version.minor == 15)
        )
        yield Verdict(
            severity=Severity.ERROR if cpu_only else Severity.WARNING,
            message=(
                f"Both tensorflow {plain.version} and tensorflow-gpu {gpu.version} are installed"
                + (
                    ": the CPU-only tensorflow package is the one imported"
                    if cpu_only
                    else " into the same folder"
                )
            ),
            why=(
                "Both packages install the same `tensorflow` import folder, so whichever was installed last wins "
                "and uninstalling one deletes files of the other."
            ),
            seen=(f"tensorflow=={plain.version}", f"tensorflow-gpu=={gpu.version}"),
            fixes=(_gpu_tensorflow_fix(ctx, gpu.version),),
        )
        return
    tf = ctx.facts.tensorflow
    reason: str | None = None
    if gpu is None and plain is None and cpu is not None:
        reason = f"tensorflow-cpu {cpu.version} is installed: the CPU-only package"
    elif gpu is None and plain is None and intel is not None:
        reason = f"tensorflow-intel {intel.version} is installed on its own: Intel's CPU-only build"
    elif gpu is None and plain is not None and _is_tf_2_0(plain) and ctx.flavor in ("linux", "wsl"):
        reason = f"tensorflow {plain.version} is installed: before 2.1 that package is CPU-only on Linux"
    elif tf is not None and tf.imported and tf.is_cuda_build is False and not tf.is_rocm_build:
        reason = f"TensorFlow {tf.version} reports is_cuda_build=False: it was built without CUDA"
    if reason is None:
        return
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{reason}, so TensorFlow will not use the {gpu_name} on this machine",
        why="A CPU-only TensorFlow build contains no CUDA kernels; it never lists a GPU, whatever drivers and libraries are installed.",
        seen=(reason, f"driver sees {gpu_name}"),
        fixes=(_gpu_tensorflow_fix(ctx, version),),
    )


# --- GD402 -----------------------------------------------------------------------------------------


def _cudart_name(cuda: str | None) -> str:
    parsed = parse_version(cuda)
    if parsed is None:
        return "the CUDA runtime"
    return f"libcudart.so.{parsed.major}" if parsed.major >= 12 else f"libcudart.so.{parsed.major}.0"


def _library_fixes(ctx: RuleContext, tf: TensorFlowFacts) -> tuple[Fix, ...]:
    version = parse_version(tf.version)
    cuda = ".".join((tf.build_cuda_version or "").split(".")[:2]) or None
    cudnn = (tf.build_cudnn_version or "").split(".")[0] or None
    if ctx.flavor in ("linux", "wsl") and version is not None and version >= FIRST_AND_CUDA:
        return (
            ctx.fix(
                f"Install the CUDA libraries TensorFlow {tf.version} was built for as pip wheels (the [and-cuda] extra)",
                ctx.pip_install(f"tensorflow[and-cuda]=={tf.version}"),
            ),
        )
    if ctx.in_conda and cuda:
        specs = [f"cudatoolkit={cuda}", *([f"cudnn={cudnn}"] if cudnn else [])]
        commands = [ctx.conda_install(*specs)]
        if ctx.flavor in ("linux", "wsl"):
            commands += [
                "mkdir -p $CONDA_PREFIX/etc/conda/activate.d",
                CONDA_ACTIVATE_LIBRARY_PATH,
            ]
        return (
            ctx.fix(
                f"Install CUDA {cuda} and cuDNN {cudnn or ''} into the conda environment".rstrip(), *commands
            ),
        )
    if cuda:
        return _cuda_archive_fix(ctx, f"CUDA {cuda}", cuda, None) + (
            (ctx.fix(f"Also install cuDNN {cudnn} for CUDA {cuda} from {CUDNN_ARCHIVE}"),) if cudnn else ()
        )
    return (ctx.fix("See which library TensorFlow fails to load", VERBOSE_CHECK),)


def _gpu_fixes(ctx: RuleContext, tf: TensorFlowFacts) -> tuple[Fix, ...]:
    framework_libs = [m for m in tf.missing_libraries if not m.startswith(("libcuda.so", "nvcuda"))]
    if framework_libs or tf.cuda_drivers_not_found or tf.cannot_dlopen_gpu_libraries:
        return _library_fixes(ctx, tf)
    if any(m.startswith("libcuda.so") for m in tf.missing_libraries):
        if ctx.flavor == "wsl":
            return (
                ctx.fix(
                    "Put WSL's driver libraries on the loader path",
                    prepend_path("LD_LIBRARY_PATH", "/usr/lib/wsl/lib"),
                ),
            )
        return (
            ctx.fix(
                "Refresh the loader cache so libcuda.so.1 from the driver is found",
                "sudo ldconfig",
                needs_admin=True,
            ),
        )
    if tf.cuinit_error == "CUDA_ERROR_NO_DEVICE":
        command = (
            "unset CUDA_VISIBLE_DEVICES" if ctx.shell == "bash" else "Remove-Item Env:CUDA_VISIBLE_DEVICES"
        )
        return (ctx.fix("Make every GPU visible to CUDA again", command),)
    if tf.cuinit_error:
        return (ctx.fix("Reload the NVIDIA driver (CUDA could not initialise it)", needs_reboot=True),)
    if tf.cudnn_loaded_version and tf.cudnn_compiled_version:
        return _library_fixes(ctx, tf)
    return (ctx.fix("See which library TensorFlow fails to load", VERBOSE_CHECK),)


def _gpu_names(gpus: tuple[GpuFacts, ...]) -> str:
    if len(gpus) == 1:
        return f"the {gpus[0].name}" if gpus[0].name else "one GPU"
    return f"{len(gpus)} GPUs"


@rule(
    "GD402",
    "TensorFlow sees the GPU",
    needs=("tensorflow", "driver"),
    requires=(
        *causes.DRIVER,
        *causes.HIDDEN_GPUS,
        *("GD403", "GD404", "GD405", "GD111", "GD201", "GD202", "GD203", "GD204", "GD205"),
        *("GD411", "GD412", "GD413", "GD414", "GD511", "GD513"),
        *causes.NO_GPU_FOR_ANY_FRAMEWORK,
        *causes.WHEELS_IN_CONFLICT,
    ),
    problem="TensorFlow sees no GPU",
    part="tensorflow",
)
def tensorflow_sees_no_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    tf = ctx.facts.tensorflow
    driver = ctx.facts.driver
    assert tf is not None and driver is not None
    if not (tf.imported and tf.is_cuda_build and driver.gpus) or tf.gpus:
        return
    reason = tf.no_gpu_reason()
    build = f"CUDA {tf.build_cuda_version}" if tf.build_cuda_version else "CUDA"
    if tf.build_cudnn_version:
        build += f" / cuDNN {tf.build_cudnn_version}"
    cause = reason or "its log does not say why"
    if not reason and not tf.missing_libraries:
        cause += f" (expected {_cudart_name(tf.build_cuda_version)} and cuDNN {tf.build_cudnn_version or ''})".replace(
            " )", ")"
        )
    evidence = [line for line in tf.log_lines if re.search(r"Could not|cuInit|Cannot dlopen|CuDNN", line)][:5]
    yield Verdict(
        severity=Severity.ERROR,
        message=(
            f"TensorFlow {tf.version} ({build} build) lists no GPU although the driver sees "
            f"{_gpu_names(driver.gpus)}: {cause}"
        ),
        why="TensorFlow silently falls back to the CPU when a CUDA library fails to load or CUDA cannot initialise.",
        seen=(
            "tf.config.list_physical_devices('GPU') == []",
            f"driver: {', '.join(g.name for g in driver.gpus)}",
            *evidence,
        ),
        fixes=_gpu_fixes(ctx, tf),
    )
