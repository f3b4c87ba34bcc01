"""GD2xx: the CUDA toolkit and libraries against what the installed framework loads."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import PurePosixPath, PureWindowsPath

from gpudoctor import lazy_re
from gpudoctor.facts import CudaInstall, LibraryFile
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import (
    and_cuda_install,
    ld_library_path_without,
    prepend_path,
    tf_crossing,
    tf_install_commands,
)
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import (
    TfBuild,
    and_cuda_pins,
    files_named,
    framework_errors,
    normalise_cudnn,
    tf_build,
    tf_conda_managed,
)
from gpudoctor.versions import numbers, series_key

CUDA_ARCHIVE = "https://developer.nvidia.com/cuda-toolkit-archive"
CUDNN_ARCHIVE = "https://developer.nvidia.com/rdp/cudnn-archive"
WINDOWS_CUDA_ROOT = "C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA"
ACTIVATE_D = "$CONDA_PREFIX/etc/conda/activate.d"
LIBRARY_PATH_LINE = "echo 'export LD_LIBRARY_PATH=$CONDA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}'"
EARLY = (*causes.DRIVER, *causes.TENSORFLOW_WITHOUT_CUDA)
XLA_SIGNS = (
    "can't find libdevice directory",
    "libdevice not found",
    "couldn't invoke ptxas",
    "ptxas not found",
)
DRIVER_LIBRARIES = ("libcuda.so", "nvcuda", "libnvidia-ml", "nvml")


# ----------------------------------------------------------------------------------------------
# Helpers


def runtime_version(f: LibraryFile) -> str:
    """The CUDA version of a runtime library, from its own word or its file name."""
    if f.version:
        return f.version
    name = f.name or re.split(r"[\\/]", f.path)[-1]
    dll = re.fullmatch(r"cudart64_(\d+)\.dll", name, re.IGNORECASE)
    if dll:
        digits = dll.group(1)
        if len(digits) >= 3:
            return (
                f"{int(digits[:-1])}.x"
                if digits.endswith("0") and int(digits[:-1]) >= 11
                else (f"{int(digits[:-1])}.{digits[-1]}")
            )
        return f"{digits}.x"
    so = re.fullmatch(r"libcudart\.so\.(\d+)(?:\.(\d+))?.*", name)
    if so:
        major = int(so.group(1))
        return (
            f"{major}.x"
            if so.group(2) is None or (major >= 11 and so.group(2) == "0")
            else (f"{major}.{so.group(2)}")
        )
    return "unknown version"


def cudnn_version(f: LibraryFile) -> str | None:
    if f.version:
        return f.version
    name = f.name or re.split(r"[\\/]", f.path)[-1]
    match = re.search(r"cudnn(?:64_|\.so\.)(\d+)", name, re.IGNORECASE)
    return match.group(1) if match else None


def _folder(ctx: RuleContext, path: str) -> str:
    if ctx.flavor == "windows" or "\\" in path:
        return str(PureWindowsPath(path).parent)
    return str(PurePosixPath(path).parent)


def _files_of_kind(ctx: RuleContext, kind: str) -> list[LibraryFile]:
    libs = ctx.facts.libraries
    return [f for f in libs.files if f.kind == kind] if libs else []


def _cudnn_spec(version: str) -> str:
    """A conda spec for a cuDNN series: `cudnn=8.1` matches every 8.1.x build."""
    return ".".join(version.split(".")[:2])


def _needed_from_log(ctx: RuleContext, build: TfBuild) -> list[str]:
    """Libraries TensorFlow failed to load: by name when it said, else the runtime and cuDNN it needs
    when it only said that some GPU library failed."""
    tf = ctx.facts.tensorflow
    if tf is None or build.found_gpus:
        return []
    named = [m for m in tf.missing_libraries if not m.lower().startswith(DRIVER_LIBRARIES)]
    if named:
        return named
    if tf.cannot_dlopen_gpu_libraries or tf.cuda_drivers_not_found:
        return [n for n in (build.cudart, build.cudnn_library) if n]
    return []


def _gpu_build(ctx: RuleContext) -> TfBuild | None:
    build = tf_build(ctx)
    if build is None or build.gpu_build is False or build.found_gpus:
        return None
    return build


def _runtime_install_fixes(ctx: RuleContext, build: TfBuild, cuda: str) -> list[Fix]:
    cudnn = _cudnn_spec(build.cudnn) if build.cudnn and "." in build.cudnn else None
    conda_specs = [f"cudatoolkit={cuda}", *([f"cudnn={cudnn}"] if cudnn else [])]
    fixes: list[Fix] = []
    if ctx.in_conda:
        conda = ctx.facts.conda
        path_step = (
            (f"mkdir -p {ACTIVATE_D} && {LIBRARY_PATH_LINE} > {ACTIVATE_D}/env_vars.sh",)
            if ctx.flavor in ("linux", "wsl") and conda is not None and not conda.activate_sets_library_path
            else ()
        )
        fixes.append(
            ctx.fix(
                f"Install the CUDA {cuda} runtime" + (f" and cuDNN {cudnn}" if cudnn else "") + " into this "
                "conda environment"
                + (" and put its lib folder on the loader path (re-activate after)" if path_step else ""),
                ctx.conda_install(*conda_specs),
                *path_step,
            )
        )
    if ctx.flavor == "windows":
        bin_dir = f"{WINDOWS_CUDA_ROOT}\\v{cuda}\\bin"
        fixes.append(
            ctx.fix(
                f"Install CUDA {cuda} from NVIDIA's archive (it can sit next to other versions) and put its bin "
                "folder first on your PATH; open a new terminal afterwards",
                f"Start-Process {CUDA_ARCHIVE}",
                f'[Environment]::SetEnvironmentVariable("Path", "{bin_dir};" + '
                '[Environment]::GetEnvironmentVariable("Path", "User"), "User")',
            )
        )
    else:
        fixes.append(
            ctx.fix(
                f"Install CUDA {cuda} from NVIDIA's archive (runfile: tick only the toolkit) and add its "
                "libraries to the loader path",
                f"xdg-open {CUDA_ARCHIVE}" if ctx.flavor == "linux" else f"echo {CUDA_ARCHIVE}",
                prepend_path("LD_LIBRARY_PATH", f"/usr/local/cuda-{cuda}/lib64"),
            )
        )
    if not ctx.in_conda:
        fixes.append(
            ctx.fix(
                "Or let conda provide it in a fresh environment",
                f"conda create -y -n tf-cuda{cuda.replace('.', '')} -c conda-forge {' '.join(conda_specs)}",
            )
        )
    return fixes


# ----------------------------------------------------------------------------------------------
# GD201


@rule(
    "GD201",
    "The CUDA runtime TensorFlow loads is installed",
    requires=(*EARLY, "GD203", "GD401", *causes.WHEELS_IN_CONFLICT),
    problem="The CUDA runtime TensorFlow loads is missing",
    part="libraries",
)
def cuda_runtime_missing(ctx: RuleContext) -> Iterator[Verdict]:
    build = _gpu_build(ctx)
    if build is None or build.cudart is None or tf_conda_managed(ctx):
        return
    if files_named(ctx, build.cudart):
        return  # present: where the loader looks is GD204/GD205
    tf = ctx.facts.tensorflow
    missing = [m.lower() for m in tf.missing_libraries] if tf else []
    said = build.cudart.lower() in missing
    if not said and (ctx.facts.libraries is None or (tf is not None and tf.imported and not missing)):
        return
    others = [f for f in _files_of_kind(ctx, "cudart") if f.name.lower() != build.cudart.lower()]
    found = ", ".join(sorted({f"CUDA {runtime_version(f)} ({f.name})" for f in others}))
    cuda = build.cuda if build.cuda and "." in build.cuda else "?"
    seen = [f"{build.label}: built with CUDA {cuda} ({build.cuda_from}), loads {build.cudart}"]
    if said:
        seen.append(f"TensorFlow could not load {build.cudart}")
    seen += [f"{f.name} at {f.path}" for f in others]
    fixes = _runtime_install_fixes(ctx, build, cuda) if cuda != "?" else []
    match = _build_for_runtimes(ctx, build, others)
    if match:
        fixes.append(
            ctx.fix(
                f"Or install TensorFlow {match}, which loads the CUDA runtime you already have",
                ctx.pip_install(f"{build.package}=={match}.*"),
            )
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{build.label} needs the CUDA {cuda} runtime ({build.cudart}), but "
        + (f"only {found} is installed" if others else "no CUDA runtime is installed"),
        why=(
            "A TensorFlow build loads the CUDA runtime of the exact version it was compiled with, by file "
            "name; another CUDA version has another file name and is never used, so TensorFlow runs on the "
            "CPU."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _build_for_runtimes(ctx: RuleContext, build: TfBuild, runtimes: list[LibraryFile]) -> str | None:
    names = {f.name.lower() for f in runtimes}
    series = None
    py = ctx.facts.python
    for release in ctx.matrix.tensorflow:
        row = release.windows if build.system == "windows" else release.linux
        if row is None or row.cudart.lower() not in names:
            continue
        spec = row.python or release.python
        if py is not None and py.version and not spec.contains(py.version, prereleases=True):
            continue
        series = release.version
    return series


# ----------------------------------------------------------------------------------------------
# GD202


@rule(
    "GD202",
    "The cuDNN version matches TensorFlow's build",
    requires=(*EARLY, "GD201", "GD203", "GD412", *causes.WHEELS_IN_CONFLICT),
    problem="The cuDNN does not match TensorFlow's build",
    part="libraries",
)
def cudnn_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    build = tf_build(ctx)  # a listed GPU proves nothing here: TensorFlow checks cuDNN at first use
    if build is None or build.gpu_build is False or tf_conda_managed(ctx):
        return
    tf = ctx.facts.tensorflow
    wanted = build.cudnn
    loaded: str | None = None
    seen: list[str] = []
    if tf is not None and tf.cudnn_loaded_version and tf.cudnn_compiled_version:
        loaded = normalise_cudnn(tf.cudnn_loaded_version)
        wanted = normalise_cudnn(tf.cudnn_compiled_version) or wanted
        seen.append(
            f"TensorFlow's log: loaded cuDNN {tf.cudnn_loaded_version}, compiled with {tf.cudnn_compiled_version}"
        )
    elif (
        build.cudnn_library
        and tf is not None
        and build.cudnn_library.lower() in (m.lower() for m in tf.missing_libraries)
    ):
        if files_named(ctx, build.cudnn_library):
            return  # present, not on the loader path: GD204/GD205
        others = [f for f in _files_of_kind(ctx, "cudnn") if f.name.lower() != build.cudnn_library.lower()]
        seen.append(f"TensorFlow could not load {build.cudnn_library}")
        seen += [
            f"{f.name}" + (f" (cuDNN {f.version})" if f.version else "") + f" at {f.path}" for f in others
        ]
        loaded = next((v for v in (cudnn_version(f) for f in others) if v), None)
        if loaded is None:
            yield _cudnn_verdict(ctx, build, wanted, None, seen, "no cuDNN is installed")
            return
    else:
        loaded_file = _loaded_cudnn(ctx)
        if loaded_file is None or loaded_file.version is None:
            return
        loaded = loaded_file.version
        seen.append(f"cuDNN {loaded} at {loaded_file.path} ({loaded_file.version_source or 'file'})")
    if loaded is None or wanted is None:
        return
    have, need = (numbers(loaded, 2) or None), (numbers(wanted, 2) or None)
    if have is None or need is None:
        return
    if have[0] == need[0] and (len(need) < 2 or len(have) < 2 or have[1] >= need[1]):
        return
    what = "a different major version" if have[0] != need[0] else "older than the build needs"
    yield _cudnn_verdict(ctx, build, wanted, loaded, seen, f"cuDNN {loaded} is {what}")


def _loaded_cudnn(ctx: RuleContext) -> LibraryFile | None:
    """The cuDNN TensorFlow loaded (its process map), else what the loader gives by default."""
    tf = ctx.facts.tensorflow
    libs = ctx.facts.libraries
    if libs is None:
        return None
    paths = {lib.path for lib in (tf.loaded_libraries if tf else ()) if lib.kind == "cudnn"}
    by_path = next((f for f in libs.files if f.kind == "cudnn" and f.path in paths), None)
    if by_path is not None:
        return by_path
    return next(
        (
            f
            for f in libs.files
            if f.kind == "cudnn" and f.loader_default and f.version_source in ("call", "header")
        ),
        None,
    )


def _cudnn_verdict(
    ctx: RuleContext, build: TfBuild, wanted: str | None, loaded: str | None, seen: list[str], problem: str
) -> Verdict:
    need = ".".join((wanted or "?").split(".")[:2])
    cuda = build.cuda or "?"
    seen.insert(0, f"{build.label}: cuDNN {wanted} ({build.cudnn_from}), CUDA {cuda}")
    fitting = _fitting_cudnn(ctx, need) if loaded is not None and ctx.flavor in ("linux", "wsl") else None
    if fitting is not None:
        seen.append(f"cuDNN {cudnn_version(fitting)} is installed at {fitting.path}, but not found first")
    fixes: list[Fix] = _first_on_path_fixes(ctx, fitting, loaded) if fitting is not None else []
    pins, _ = and_cuda_pins(ctx, build)
    wheel = next((n for n in pins if n.startswith("nvidia-cudnn")), None)
    if fitting is not None:
        pass  # the cuDNN the build needs is installed: nothing to install or download
    elif ctx.flavor in ("linux", "wsl") and wheel is not None:
        fixes.append(
            ctx.fix(
                f"Install the cuDNN wheel TensorFlow {build.version} pins",
                ctx.pip_install(f"{wheel}{pins[wheel]}"),
            )
        )
    elif ctx.flavor in ("linux", "wsl") and not ctx.in_conda and need[:1].isdigit() and cuda[:2].isdigit():
        major = need.split(".")[0]
        cudnn_dir = f'{ctx.python_cmd} -c "import nvidia.cudnn; print(list(nvidia.cudnn.__path__)[0])"'
        fixes.append(
            ctx.fix(
                f"Install cuDNN {need} or newer as a pip wheel and put its lib folder first on LD_LIBRARY_PATH "
                "(add the line to the venv's activate script to keep it)",
                ctx.pip_install(f"nvidia-cudnn-cu{cuda.split('.')[0]}>={need},<{int(major) + 1}"),
                prepend_path("LD_LIBRARY_PATH", f"$({cudnn_dir})/lib"),
            )
        )
    if ctx.in_conda and fitting is None:
        fixes.append(
            ctx.fix(f"Install cuDNN {need} into this conda environment", ctx.conda_install(f"cudnn={need}"))
        )
    placement = (
        f"copy its bin\\cudnn*.dll into {WINDOWS_CUDA_ROOT}\\v{cuda}\\bin"
        if ctx.flavor == "windows"
        else "put its lib folder first on LD_LIBRARY_PATH, ahead of any older cuDNN"
    )
    if fitting is None:
        fixes.append(
            ctx.fix(
                f"Or download cuDNN {need} for CUDA {cuda} from {CUDNN_ARCHIVE} and {placement}; do not rename "
                "another version's library to the expected name",
                *((f"Start-Process {CUDNN_ARCHIVE}",) if ctx.shell == "powershell" else ()),
            )
        )
    return Verdict(
        severity=Severity.ERROR,
        message=f"{build.label} needs cuDNN {need} ({build.cudnn_library or 'cuDNN ' + need}), but {problem}",
        why=(
            "cuDNN must have the major version a build was compiled with and at least its minor version; "
            "TensorFlow refuses anything else ('Loaded runtime CuDNN library ... but source was compiled "
            "with ...') and convolutions fail or the GPU is skipped."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _fitting_cudnn(ctx: RuleContext, need: str) -> LibraryFile | None:
    """An installed cuDNN of the build's major and at least its minor that the loader does not pick
    first (a pip wheel behind an older conda or system copy), the newest such."""
    want = numbers(need, 2)
    if len(want) < 2:
        return None
    candidates = []
    for f in _files_of_kind(ctx, "cudnn"):
        have = numbers(cudnn_version(f) or "", 2)
        if not f.loader_default and len(have) == 2 and have[0] == want[0] and have[1] >= want[1]:
            candidates.append((have, f))
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _first_on_path_fixes(ctx: RuleContext, fitting: LibraryFile, loaded: str | None) -> list[Fix]:
    """Put the fitting cuDNN's folder ahead of the older copy; in conda, or drop conda's older package."""
    folder = _folder(ctx, fitting.path)
    conda = ctx.facts.conda
    keep = (
        " (change the conda activate script that sets LD_LIBRARY_PATH, in $CONDA_PREFIX/etc/conda/activate.d, "
        "the same way so it stays first)"
        if conda is not None and conda.activate_sets_library_path
        else " (add the line where LD_LIBRARY_PATH is set, to keep it)"
    )
    fixes = [
        ctx.fix(
            f"The cuDNN this build needs ({cudnn_version(fitting)}) is installed: put its folder first on "
            f"LD_LIBRARY_PATH, ahead of cuDNN {loaded}{keep}",
            prepend_path("LD_LIBRARY_PATH", folder),
        )
    ]
    older = next(
        (f for f in _files_of_kind(ctx, "cudnn") if f.loader_default and f.location == "conda"), None
    )
    if (
        older is not None
        and ctx.in_conda
        and conda is not None
        and any(p.name == "cudnn" for p in conda.packages)
    ):
        fixes.append(
            ctx.fix(
                f"Or remove conda's older cudnn package (cuDNN {cudnn_version(older)} at {_folder(ctx, older.path)}), "
                "so the loader finds the installed one (--force keeps the packages that depend on it)",
                ctx.conda_remove("cudnn", force=True),
            )
        )
    return fixes


# ----------------------------------------------------------------------------------------------
# GD203


@rule(
    "GD203",
    "The conda CUDA packages match the installed TensorFlow",
    requires=(*causes.DRIVER, "GD413", "GD511"),
    needs=("conda",),
    problem="The conda CUDA packages do not match the installed TensorFlow",
    part="conda",
)
def conda_cuda_packages_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    conda = ctx.facts.conda
    build = tf_build(ctx)
    if (
        conda is None
        or not ctx.in_conda
        or build is None
        or build.gpu_build is False
        or tf_conda_managed(ctx)
    ):
        return
    packages = {p.name: p for p in conda.packages}
    cuda_mm, cudnn_mm = (numbers(build.cuda, 2) or None), (numbers(build.cudnn, 2) or None)
    problems: list[str] = []
    for name in ("cudatoolkit", "cuda-version", "cuda-cudart"):
        pkg = packages.get(name)
        have = (numbers(pkg.version, 2) or None) if pkg else None
        if pkg is None or have is None or cuda_mm is None:
            continue
        if have[0] != cuda_mm[0]:
            problems.append(f"{name} {pkg.version} is CUDA {have[0]}, {build.label} needs CUDA {build.cuda}")
        elif have[0] <= 10 and len(cuda_mm) > 1 and have[:2] != cuda_mm[:2]:
            problems.append(
                f"{name} {pkg.version}: CUDA {have[0]}.x libraries carry the minor in their names, "
                f"{build.label} loads CUDA {build.cuda}'s"
            )
        elif len(cuda_mm) > 1 and have[:2] < cuda_mm[:2]:
            problems.append(
                f"{name} {pkg.version} is older than the CUDA {build.cuda} {build.label} was built with"
            )
    cudnn = packages.get("cudnn")
    have_cudnn = (numbers(cudnn.version, 2) or None) if cudnn else None
    if (
        cudnn is not None
        and have_cudnn is not None
        and cudnn_mm is not None
        and (have_cudnn[0] != cudnn_mm[0] or (len(cudnn_mm) > 1 and have_cudnn[:2] < cudnn_mm[:2]))
        and _fitting_cudnn(ctx, ".".join(str(n) for n in cudnn_mm[:2])) is None  # a fitting wheel: GD202's
    ):
        problems.append(f"cudnn {cudnn.version}, {build.label} needs cuDNN {build.cudnn}")
    if not problems:
        return
    if ctx.flavor in ("linux", "wsl") and build.at_least(ctx.matrix.platform.tensorflow_first_and_cuda):
        present = [n for n in ("cudatoolkit", "cudnn", "cuda-version") if n in packages]
        fixes = (
            ctx.fix(
                f"TensorFlow {build.version} brings its CUDA as pip wheels: remove the conda CUDA packages and "
                "install the wheels it pins",
                ctx.conda_remove(*present, force=True),
                *and_cuda_install(ctx, build),
            ),
        )
    else:
        specs = [f"cudatoolkit={build.cuda}"] if build.cuda else []
        if build.cudnn:
            specs.append(f"cudnn={_cudnn_spec(build.cudnn)}")
        fixes = (
            ctx.fix(
                f"Install the CUDA and cuDNN versions {build.label} was built with", ctx.conda_install(*specs)
            ),
        )
    yield Verdict(
        severity=Severity.WARNING if build.found_gpus else Severity.ERROR,
        message=f"The conda environment's CUDA packages do not fit {build.label}: " + "; ".join(problems),
        why=(
            "A pip-installed TensorFlow loads the CUDA and cuDNN libraries of the conda environment by file "
            "name; another major version (or, before CUDA 11, another minor) is a different file and is "
            "not loaded, an older cuDNN is refused."
        ),
        seen=(
            f"{build.label}: CUDA {build.cuda} ({build.cuda_from}), cuDNN {build.cudnn} ({build.cudnn_from})",
            *(
                f"conda: {p.name} {p.version} ({p.channel})"
                for n, p in sorted(packages.items())
                if n in ("cudatoolkit", "cuda-version", "cuda-cudart", "cudnn")
            ),
        ),
        fixes=fixes,
    )


# ----------------------------------------------------------------------------------------------
# GD204 / GD205: on disk, not where the loader looks


def _stranded(ctx: RuleContext, build: TfBuild) -> list[tuple[str, list[LibraryFile]]]:
    stranded = []
    for name in _needed_from_log(ctx, build):
        copies = files_named(ctx, name)
        if copies and not any(c.loader_default for c in copies):
            stranded.append((name, copies))
    return stranded


def _in_conda_prefix(ctx: RuleContext, f: LibraryFile) -> bool:
    prefix = ctx.facts.conda.prefix if ctx.facts.conda else None
    return f.location == "conda" or bool(prefix and f.path.startswith(prefix.rstrip("/") + "/"))


@rule(
    "GD204",
    "The conda environment's CUDA libraries are on the loader path",
    requires=(*EARLY, "GD203"),
    needs=("conda", "libraries"),
    problem="The conda environment's CUDA libraries are not on the loader path",
    part="libraries",
)
def conda_libraries_off_path(ctx: RuleContext) -> Iterator[Verdict]:
    conda = ctx.facts.conda
    build = _gpu_build(ctx)
    if conda is None or build is None or not ctx.in_conda or ctx.flavor not in ("linux", "wsl"):
        return
    if conda.activate_sets_library_path:
        return
    stranded = [(n, c) for n, c in _stranded(ctx, build) if all(_in_conda_prefix(ctx, f) for f in c)]
    if not stranded:
        return
    folder = _folder(ctx, stranded[0][1][0].path)
    append = "env_vars.sh" in conda.activate_scripts
    script = f"{ACTIVATE_D}/env_vars.sh"
    export = "echo 'export LD_LIBRARY_PATH=$CONDA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}' " + (
        ">>" if append else ">"
    )
    env = conda.env_name or "<env>"
    names = ", ".join(n for n, _ in stranded)
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{names} {'is' if len(stranded) == 1 else 'are'} in the conda environment ({folder}) but not "
        f"on the loader path, so {build.label} cannot load {'it' if len(stranded) == 1 else 'them'}",
        why=(
            "conda installs cudatoolkit and cudnn into $CONDA_PREFIX/lib but does not add that folder to "
            "LD_LIBRARY_PATH; TensorFlow dlopens the CUDA libraries by name, so the loader never looks there."
        ),
        seen=(
            *(f"{n}: {', '.join(f.path for f in c)} (not what the loader finds)" for n, c in stranded),
            "LD_LIBRARY_PATH: "
            + (
                ":".join(ctx.facts.libraries.ld_library_path)
                if ctx.facts.libraries and ctx.facts.libraries.ld_library_path
                else "(unset)"
            ),
            "activate.d scripts: " + (", ".join(conda.activate_scripts) or "none"),
        ),
        fixes=(
            ctx.fix(
                "Make the environment put its lib folder on LD_LIBRARY_PATH whenever it is activated, then "
                "re-activate it",
                f"mkdir -p {ACTIVATE_D} && {export} {script}",
                f"conda deactivate && conda activate {env}",
            ),
        ),
    )


# TensorFlow 2.16 and 2.17 fail to load the CUDA libraries of their own [and-cuda] wheels
# (tensorflow/tensorflow#63362, "TF 2.17.0 RC0 Fails to work with GPUs (and TF 2.16 too)"); users there
# report 2.15.1 working.
LAST_SELF_FINDING_TF = "2.15.1"


def _own_wheels_fix(ctx: RuleContext, build: TfBuild) -> Fix:
    """Reinstall a release that finds its own CUDA wheels: this one when it does, else 2.15.1."""
    if series_key(build.version) < series_key("2.16"):
        return ctx.fix(
            f"Or reinstall TensorFlow {build.version} with the CUDA wheels it pins",
            *tf_install_commands(ctx, f"tensorflow[and-cuda]=={build.version}"),
        )
    return ctx.fix(
        f"Or go back to TensorFlow {LAST_SELF_FINDING_TF}, which finds its own CUDA wheels (2.16 and 2.17 "
        "do not: tensorflow#63362)" + tf_crossing(ctx, LAST_SELF_FINDING_TF),
        *tf_install_commands(ctx, f"tensorflow[and-cuda]=={LAST_SELF_FINDING_TF}"),
    )


@rule(
    "GD205",
    "The CUDA libraries TensorFlow loads are where the loader looks",
    requires=(*EARLY, "GD204"),
    needs=("libraries",),
    problem="The CUDA libraries TensorFlow loads are not where the loader looks",
    part="libraries",
)
def libraries_off_path(ctx: RuleContext) -> Iterator[Verdict]:
    build = _gpu_build(ctx)
    if build is None:
        return
    stranded = [
        (n, c)
        for n, c in _stranded(ctx, build)
        if not (ctx.in_conda and all(_in_conda_prefix(ctx, f) for f in c) and ctx.flavor != "windows")
    ]
    if not stranded:
        return
    folders = list(dict.fromkeys(_folder(ctx, c[0].path) for _, c in stranded))
    names = ", ".join(n for n, _ in stranded)
    fixes: tuple[Fix, ...]
    if ctx.flavor == "windows":
        joined = ";".join(folders)
        fixes = (
            ctx.fix(
                "Put the folder on PATH for this session, and for good for your user (new terminals)",
                f'$env:PATH = "{joined};$env:PATH"',
                f'[Environment]::SetEnvironmentVariable("Path", "{joined};" + '
                '[Environment]::GetEnvironmentVariable("Path", "User"), "User")',
            ),
        )
        where = "on PATH"
    elif any(f.location == "pip-wheel" for _, c in stranded for f in c):
        # TensorFlow needs every nvidia/*/lib folder of the [and-cuda] wheels, not just the ones it named
        every_wheel_lib = (
            f'{ctx.python_cmd} -c "import glob, os, nvidia; '
            "print(':'.join(sorted(glob.glob(os.path.join(list(nvidia.__path__)[0], '*', 'lib')))))\""
        )
        fixes = (
            ctx.fix(
                "Put every lib folder of the nvidia-* wheels on LD_LIBRARY_PATH (add the line to the venv's "
                "activate script to keep it)",
                prepend_path("LD_LIBRARY_PATH", f"$({every_wheel_lib})"),
            ),
            _own_wheels_fix(ctx, build),
        )
        where = "on the loader path"
    else:
        joined = ":".join(folders)
        fixes = (
            ctx.fix(
                "Add the folder to LD_LIBRARY_PATH (on a cluster: after your `module load` lines, in the job "
                "script too), then confirm with TensorFlow's verbose loader log",
                prepend_path("LD_LIBRARY_PATH", joined),
                'TF_CPP_MAX_VLOG_LEVEL=3 python -c "import tensorflow as tf; '
                "print(tf.config.list_physical_devices('GPU'))\"",
            ),
            ctx.fix(
                "Or register the folder with the system loader for every program",
                f"echo {' '.join(folders)} | sudo tee /etc/ld.so.conf.d/gpudoctor-cuda.conf",
                "sudo ldconfig",
                needs_admin=True,
            ),
        )
        where = "on the loader path"
    libs = ctx.facts.libraries
    search = (
        ("PATH" if ctx.flavor == "windows" else "LD_LIBRARY_PATH")
        + ": "
        + (":".join(libs.ld_library_path) if libs and libs.ld_library_path else "(as searched)")
    )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{names} {'is' if len(stranded) == 1 else 'are'} installed ({', '.join(folders)}) but not "
        f"{where}, so {build.label} cannot load {'it' if len(stranded) == 1 else 'them'}",
        why=(
            "TensorFlow loads CUDA and cuDNN by file name through the system loader, which searches only "
            "LD_LIBRARY_PATH and the ldconfig cache (PATH and the application folder on Windows); a copy "
            "elsewhere, or a path that a module system or shell profile reset, is never found."
        ),
        seen=(*(f"{n}: {', '.join(f.path for f in c)} (not loadable by name)" for n, c in stranded), search),
        fixes=fixes,
    )


# ----------------------------------------------------------------------------------------------
# GD206: several toolkits


def _install_at(installs: tuple[CudaInstall, ...], path: str | None) -> CudaInstall | None:
    if not path:
        return None
    path = path.rstrip("/\\")
    exact = next((i for i in installs if i.path.rstrip("/\\") == path), None)
    if exact is not None:
        return exact
    owners = [
        i
        for i in installs
        if i.path and path.startswith(i.path.rstrip("/\\") + ("\\" if "\\" in path else "/"))
    ]
    return max(owners, key=lambda i: len(i.path), default=None)


@rule(
    "GD206",
    "PATH, CUDA_HOME and the loader agree on one CUDA toolkit",
    needs=("toolkit",),
    problem="PATH, CUDA_HOME and the loader point at different CUDA toolkits",
    part="toolkit",
)
def toolkits_disagree(ctx: RuleContext) -> Iterator[Verdict]:
    tk = ctx.facts.toolkit
    if tk is None or len(tk.installs) < 2:
        return
    roles: list[tuple[str, CudaInstall]] = []
    on_path = _install_at(tk.installs, tk.nvcc_on_path) or next(
        (i for i in tk.installs if "PATH" in i.found_via), None
    )
    if on_path is not None:
        roles.append((f"nvcc on PATH ({tk.nvcc_on_path or on_path.nvcc})", on_path))
    home = _install_at(tk.installs, tk.cuda_home)
    if home is not None:
        roles.append((f"{tk.cuda_home_var or 'CUDA_HOME'}={tk.cuda_home}", home))
    loader = next((f for f in _files_of_kind(ctx, "cudart") if f.loader_default), None)
    loader_install = _install_at(tk.installs, _folder(ctx, _folder(ctx, loader.path))) if loader else None
    if loader is not None and loader_install is not None:
        roles.append((f"the loader's {loader.name} ({loader.path})", loader_install))
    versions = {(numbers(i.version or i.nvcc_version, 2) or None) for _, i in roles}
    if len({i.path for _, i in roles}) < 2 or len(versions) < 2:
        return
    target = on_path or roles[0][1]
    prefix = ctx.facts.conda.prefix if ctx.facts.conda and ctx.in_conda else None
    in_env = prefix is not None and target.path.rstrip("/") == prefix.rstrip("/")
    if ctx.flavor == "windows":
        fixes = (
            ctx.fix(
                f"Point CUDA_PATH at the toolkit whose nvcc you use (CUDA {target.version})",
                f'$env:CUDA_PATH = "{target.path}"',
                f'[Environment]::SetEnvironmentVariable("CUDA_PATH", "{target.path}", "User")',
            ),
        )
    elif in_env:
        fixes = (
            ctx.fix(
                f"Point CUDA_HOME at this conda environment's CUDA {target.version}, now and on every activation",
                "export CUDA_HOME=$CONDA_PREFIX",
                f"mkdir -p {ACTIVATE_D} && echo 'export CUDA_HOME=$CONDA_PREFIX' > {ACTIVATE_D}/cuda_home.sh",
            ),
        )
    else:
        fixes = (
            ctx.fix(
                f"Point CUDA_HOME at the toolkit whose nvcc you use (CUDA {target.version}) and put its "
                "libraries first",
                f"export CUDA_HOME={target.path}",
                prepend_path("LD_LIBRARY_PATH", f"{target.path}/lib64"),
            ),
        )
    described = [f"{role}: CUDA {i.version or i.nvcc_version} at {i.path}" for role, i in roles]
    yield Verdict(
        severity=Severity.WARNING,
        message="Several CUDA toolkits are in use at once: " + "; ".join(described),
        why=(
            "Builds of CUDA code (PyTorch C++/CUDA extensions, pip packages compiled on install) take the "
            "toolkit from CUDA_HOME/CUDA_PATH, compile with the first nvcc on PATH and load the runtime the "
            "loader finds; when these are different versions they fail with 'The detected CUDA version "
            "mismatches the version that was used to compile PyTorch' or link errors."
        ),
        seen=tuple(described),
        fixes=fixes,
    )


# ----------------------------------------------------------------------------------------------
# GD207: XLA's ptxas and libdevice


@rule(
    "GD207",
    "XLA finds ptxas and libdevice",
    requires=(*EARLY, "GD201", "GD805"),
    needs=("tensorflow",),
    problem="XLA cannot find ptxas or libdevice",
    part="toolkit",
)
def xla_toolchain_missing(ctx: RuleContext) -> Iterator[Verdict]:
    tf = ctx.facts.tensorflow
    build = tf_build(ctx)
    if tf is None or build is None:
        return
    text = [*tf.log_lines, *(tf.import_error or "").splitlines(), *(tf.list_devices_error or "").splitlines()]
    signs = [line for line in text if any(s in line.lower() for s in XLA_SIGNS)]
    if not signs:
        return
    cuda = build.cuda if build.cuda and "." in build.cuda else None
    fixes: list[Fix] = []
    if ctx.flavor in ("linux", "wsl") and build.at_least(ctx.matrix.platform.tensorflow_first_and_cuda):
        fixes.append(
            ctx.fix(
                "Install the CUDA wheels TensorFlow pins, which include ptxas and libdevice",
                *and_cuda_install(ctx, build),
            )
        )
    elif ctx.in_conda:
        nvcc = f"cuda-nvcc={cuda}" if cuda and (numbers(cuda, 2) or (0,)) >= (11, 3) else "cuda-nvcc=11.3.58"
        fixes.append(
            ctx.fix(
                "Install NVIDIA's nvcc package (ptxas and libdevice) into the environment, point XLA at it on "
                "every activation, and put libdevice where XLA looks",
                ctx.conda_install(nvcc, channels=("nvidia",)),
                f"mkdir -p {ACTIVATE_D}",
                "printf 'export XLA_FLAGS=--xla_gpu_cuda_data_dir=$CONDA_PREFIX/lib/\\n' >> "
                f"{ACTIVATE_D}/env_vars.sh",
                f"source {ACTIVATE_D}/env_vars.sh",
                "mkdir -p $CONDA_PREFIX/lib/nvvm/libdevice",
                "cp $CONDA_PREFIX/lib/libdevice.10.bc $CONDA_PREFIX/lib/nvvm/libdevice/",
            )
        )
    tk = ctx.facts.toolkit
    full = next((i for i in (tk.installs if tk else ()) if i.nvcc), None)
    if full is not None:
        fixes.append(
            ctx.fix(
                f"Point XLA at the full CUDA toolkit at {full.path} (it has nvvm/libdevice and bin/ptxas)",
                f'$env:XLA_FLAGS = "--xla_gpu_cuda_data_dir={full.path}"'
                if ctx.shell == "powershell"
                else f"export XLA_FLAGS=--xla_gpu_cuda_data_dir={full.path}",
            )
        )
    if not fixes:
        fixes.append(ctx.fix(f"Install the full CUDA {cuda or ''} toolkit (with nvcc) from {CUDA_ARCHIVE}"))
    yield Verdict(
        severity=Severity.ERROR,
        message=f"XLA in {build.label} cannot find ptxas or libdevice, so GPU kernels it compiles fail",
        why=(
            "TensorFlow's XLA compiler turns kernels into GPU code with ptxas and NVIDIA's libdevice bitcode; "
            "these come with the full toolkit (nvcc), not with the runtime-only conda cudatoolkit package."
        ),
        seen=tuple(s[:200] for s in signs[:3]),
        fixes=tuple(fixes),
    )


# ----------------------------------------------------------------------------------------------
# GD208: which CUDA is which


@rule(
    "GD208",
    "The CUDA versions of nvcc, the driver and the frameworks fit together",
    requires=(*causes.DRIVER, "GD707"),
    needs=("toolkit", "driver"),
    problem="The CUDA versions of nvcc, the driver and the frameworks do not fit together",
    part="toolkit",
)
def cuda_versions_clash(ctx: RuleContext) -> Iterator[Verdict]:
    tk, driver = ctx.facts.toolkit, ctx.facts.driver
    if tk is None or driver is None or not tk.nvcc_version or not driver.cuda_driver_version:
        return
    nvcc, top = (numbers(tk.nvcc_version, 2) or None), (numbers(driver.cuda_driver_version, 2) or None)
    if nvcc is None or top is None:
        return
    frameworks: list[str] = []
    build = tf_build(ctx)
    if build is not None and build.gpu_build and build.cuda and "." in build.cuda:
        frameworks.append(f"{build.label} uses its own CUDA {build.cuda} runtime")
    torch = ctx.facts.torch
    if torch is not None and torch.cuda_version:
        frameworks.append(f"PyTorch {torch.version} uses its own CUDA {torch.cuda_version} runtime")
    seen = (
        f"nvcc on PATH: CUDA {tk.nvcc_version} ({tk.nvcc_on_path})",
        f"driver {driver.driver_version}: CUDA {driver.cuda_driver_version} at most (what nvidia-smi shows)",
        *frameworks,
    )
    confirm = ctx.fix("Compare the two numbers yourself", "nvidia-smi", "nvcc --version")
    if nvcc > top:
        yield Verdict(
            severity=Severity.WARNING,
            message=f"nvcc is CUDA {tk.nvcc_version}, newer than the CUDA {driver.cuda_driver_version} driver "
            f"{driver.driver_version} supports: programs you compile with it may fail to start",
            why=(
                "Code compiled by a toolkit needs a driver that supports that CUDA version (within a major, "
                "CUDA 11 and newer run with limited features under minor-version compatibility, except PTX)."
            ),
            seen=seen,
            fixes=(
                ctx.fix(
                    f"Update the NVIDIA driver to one that supports CUDA {tk.nvcc_version}, or compile with a "
                    f"toolkit no newer than CUDA {driver.cuda_driver_version}"
                ),
                confirm,
            ),
        )
        return
    if nvcc == top and not frameworks:
        return
    yield Verdict(
        severity=Severity.INFO,
        message=f"Consistent: nvidia-smi's 'CUDA Version: {driver.cuda_driver_version}' is the newest CUDA "
        f"driver {driver.driver_version} supports, not an installed toolkit; nvcc {tk.nvcc_version} is the "
        "toolkit you compile with, and it is not newer than that"
        + (f"; {'; '.join(frameworks)}" if frameworks else ""),
        why=(
            "Three different numbers are all called 'the CUDA version': the driver's maximum, the toolkit's "
            "nvcc, and the runtime each framework ships (pip wheels bring their own and never use nvcc). "
            "They may differ; only a runtime or toolkit newer than the driver supports is a problem."
        ),
        seen=seen,
        fixes=(confirm,),
    )


# ----------------------------------------------------------------------------------------------
# GD209: LD_LIBRARY_PATH shadows the CUDA libraries a framework installed as pip wheels


def _shadowed(ctx: RuleContext) -> list[tuple[LibraryFile, LibraryFile]]:
    """(copy on LD_LIBRARY_PATH that the loader picks, newer copy from a pip wheel) pairs."""
    libs = ctx.facts.libraries
    if libs is None:
        return []
    pairs = []
    for first in libs.files:
        if not (first.loader_default and first.location == "ld_library_path" and first.version):
            continue
        wheel = next(
            (
                f
                for f in libs.files
                if f.location == "pip-wheel" and f.name == first.name and f.version and f.path != first.path
            ),
            None,
        )
        older = wheel is not None and numbers(first.version, 4) < numbers(wheel.version or "", 4)
        if wheel is not None and older:
            pairs.append((first, wheel))
    return pairs


@rule(
    "GD209",
    "LD_LIBRARY_PATH does not put older CUDA libraries ahead of the framework's own wheels",
    needs=("libraries",),
    problem="LD_LIBRARY_PATH puts older CUDA libraries ahead of the framework's own wheels",
    part="libraries",
)
def ld_library_path_shadows_wheels(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor not in ("linux", "wsl"):
        return
    pairs = _shadowed(ctx)
    if not pairs:
        return
    folders = list(dict.fromkeys(str(PurePosixPath(first.path).parent) for first, _ in pairs))
    names = ", ".join(dict.fromkeys(first.name for first, _ in pairs))
    yield Verdict(
        severity=Severity.ERROR,
        message=f"LD_LIBRARY_PATH makes the loader take older {names} from {', '.join(folders)} instead of "
        "the newer copies the framework installed as pip wheels",
        why=(
            "LD_LIBRARY_PATH is searched before a library's own RUNPATH, so an older CUDA library there is "
            "loaded into pip-installed PyTorch, JAX or TensorFlow instead of the wheel it was built against; "
            "the result is 'undefined symbol' import errors, 'Unable to load cuSPARSE' or a silent fall-back "
            "to the CPU."
        ),
        seen=tuple(
            f"{first.name}: {first.version} at {first.path} (loaded) vs {wheel.version} at {wheel.path}"
            for first, wheel in pairs
        ),
        fixes=(
            ctx.fix(
                "Take those folders out of LD_LIBRARY_PATH (and out of ~/.bashrc or the `module load` lines "
                "that add them)",
                ld_library_path_without(folders),
            ),
            ctx.fix(
                "Or run without LD_LIBRARY_PATH: pip wheels find their libraries themselves",
                "unset LD_LIBRARY_PATH",
            ),
        ),
    )


# ----------------------------------------------------------------------------------------------
# GD210: libcuda.so.1 resolves to the toolkit's link-time stub

STUB_SIGNS = lazy_re.compile(
    r"stub library|cuda_error_stub_library|cudaerrorstublibrary|\berror\W{0,3}34\b", re.IGNORECASE
)


def _is_stub(path: str) -> bool:
    return "stubs" in re.split(r"[\\/]", path)


@rule(
    "GD210",
    "The libcuda.so.1 programs load is the driver's, not the CUDA toolkit's stub",
    requires=causes.DRIVER,
    blocks_gpu=True,
    problem="Programs load the CUDA toolkit's stub libcuda.so.1, not the driver's",
    part="libraries",
)
def libcuda_is_stub(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor in ("windows", "macos"):
        return
    stubs = [f for f in _files_of_kind(ctx, "libcuda") if f.loader_default and _is_stub(f.path)]
    said = [(who, text) for who, text in framework_errors(ctx) if STUB_SIGNS.search(text)]
    if not stubs and not said:
        return
    libs = ctx.facts.libraries
    on_path = [p for p in (libs.ld_library_path if libs else ()) if _is_stub(p)]
    folders = list(dict.fromkeys([*(_folder(ctx, f.path) for f in stubs), *on_path]))
    in_ld_path = [f for f in folders if f in on_path] or [
        _folder(ctx, f.path) for f in stubs if f.location == "ld_library_path"
    ]
    seen = [f"libcuda.so.1 resolves to {f.path} (the toolkit's stub)" for f in stubs]
    seen += [f"LD_LIBRARY_PATH has {p}" for p in on_path]
    seen += [f"{who}: {text[:200]}" for who, text in said]
    fixes: list[Fix] = []
    if in_ld_path:
        fixes.append(
            ctx.fix_in_container(
                f"Take {', '.join(in_ld_path)} out of LD_LIBRARY_PATH (and out of ~/.bashrc, the Dockerfile's "
                "ENV line or the `module load` that adds it)",
                ld_library_path_without(in_ld_path),
            )
        )
    fixes.append(
        ctx.fix_in_container(
            "Take the stubs folder out of the loader's configuration and rebuild its cache; then "
            "libcuda.so.1 must point into the driver's folder",
            "grep -rl stubs /etc/ld.so.conf.d/",
            "grep -rl stubs /etc/ld.so.conf.d/ | xargs -r sudo sed -i '/stubs/d'",
            "sudo ldconfig",
            "ldconfig -p | grep libcuda.so.1",
            needs_admin=True,
        )
    )
    folder = folders[0] if folders else "/usr/local/cuda/lib64/stubs"
    platform = ctx.facts.platform
    fixes.append(
        ctx.fix_on_host(
            (
                "In this container's image"
                if platform is not None and platform.container
                else "In a container image"
            )
            + ", link against the stub only at build time (LIBRARY_PATH, -L), never put it on the runtime "
            "path; or drop it from the final image",
            f"ENV LIBRARY_PATH={folder}",
            f"RUN rm -rf {folder} && ldconfig",
        )
    )
    yield Verdict(
        severity=Severity.ERROR,
        message="The loader gives programs the CUDA toolkit's stub libcuda"
        + (f" from {folders[0]}" if folders else "")
        + " instead of the NVIDIA driver's, so CUDA fails to start (Error 34: CUDA driver is a stub library)",
        why=(
            "The toolkit ships an empty libcuda.so under lib64/stubs so that programs can be linked on machines "
            "without a driver; it is never meant to be loaded. When that folder is on LD_LIBRARY_PATH or in "
            "/etc/ld.so.conf.d, it is found before the driver's libcuda.so.1 and every CUDA call fails with "
            "CUDA_ERROR_STUB_LIBRARY."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )
