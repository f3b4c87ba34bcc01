"""GD41x–GD42x: the installed TensorFlow build against this machine (its CUDA wheels, Python, GPUs).

`tf_build` also serves the CUDA, driver and Windows families: it says what the installed
TensorFlow needs, in TensorFlow's own words where it said them (build info, log lines, its
`Requires-Dist` pins) and from the matrix only where it could not.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gpudoctor.facts import Distribution, LibraryFile
from gpudoctor.matrix import (
    System,
    TensorFlowBuild,
    TensorFlowRelease,
    cudnn_version_from_int,
    kernel_support,
    parse_version,
)
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule

DRIVER_ROOT_CAUSES = ("GD101", "GD102", "GD103", "GD104", "GD105", "GD106", "GD107")
TF_PACKAGES = ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel", "tensorflow-cpu-aws")
CPU_PACKAGES = ("tensorflow-cpu", "tensorflow-intel", "tensorflow-cpu-aws")
PIP_INSTALL_PAGE = "https://www.tensorflow.org/install/pip"
CUDA_CACHE_BYTES = "4294967296"


# ----------------------------------------------------------------------------------------------
# What the installed TensorFlow needs


@dataclass(frozen=True, kw_only=True)
class TfBuild:
    version: str  # "2.15.1"
    package: str  # the distribution that provides it: "tensorflow", "tensorflow-gpu", ...
    release: TensorFlowRelease | None
    row: TensorFlowBuild | None  # the matrix's CUDA build of that release for this OS
    system: System  # whose builds apply: WSL runs the Linux wheels
    gpu_build: bool | None
    cuda: str | None  # "12.2"; a bare major ("10") only when nothing better is known
    cuda_from: str
    cudnn: str | None  # "8.9.4", "8.9" or "8"
    cudnn_from: str
    cudart: str | None  # the runtime file it loads: "libcudart.so.12", "cudart64_110.dll"
    cudnn_library: str | None  # "libcudnn.so.8", "cudnn64_8.dll"
    targets: tuple[str, ...]  # "sm_60", "compute_90"
    targets_from: str
    imported: bool
    found_gpus: bool

    @property
    def label(self) -> str:
        return f"TensorFlow {self.version}"

    @property
    def release_series(self) -> str | None:
        if self.release is not None:
            return self.release.version
        parsed = parse_version(self.version)
        return f"{parsed.release[0]}.{(*parsed.release, 0)[1]}" if parsed else None

    @property
    def cuda_major(self) -> int | None:
        return _major(self.cuda)

    @property
    def cudnn_major(self) -> int | None:
        return _major(self.cudnn)

    def at_least(self, version: str) -> bool:
        mine, other = parse_version(self.version), parse_version(version)
        return mine is not None and other is not None and mine.release[:2] >= other.release[:2]


def normalise_cuda(raw: str | None) -> str | None:
    """A CUDA version as TensorFlow's build info writes it ("12.2", "64_112", "11.2.2", "10") as
    "major.minor", or a bare major; None for garbage."""
    if raw is None:
        return None
    text = raw.strip().lower().removeprefix("64_")
    if re.fullmatch(r"\d{3,4}", text):
        return f"{int(text[:-1])}.{text[-1]}"
    if re.fullmatch(r"\d+", text):
        return str(int(text))
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*", text)
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


def normalise_cudnn(raw: str | None) -> str | None:
    """A cuDNN version as TensorFlow says it ("8", "64_8", "8.1.0", "8100", "5105") as dotted text."""
    if raw is None:
        return None
    text = raw.strip().lower().removeprefix("64_").rstrip(".")
    if re.fullmatch(r"\d{4,5}", text):
        return cudnn_version_from_int(int(text))
    if re.fullmatch(r"\d+(?:\.\d+){0,3}", text):
        return text
    return None


def normalise_targets(raw: tuple[str, ...]) -> tuple[str, ...]:
    """Build targets as `kernel_support` reads them; a bare "3.5" / "35" means SASS and PTX for it."""
    targets: list[str] = []
    for item in raw:
        text = item.strip().lower()
        bare = re.fullmatch(r"(\d+)\.?(\d)", text)
        if bare:
            targets += [f"sm_{bare.group(1)}{bare.group(2)}", f"compute_{bare.group(1)}{bare.group(2)}"]
        elif re.fullmatch(r"(sm|compute)_\d+[af]?", text):
            targets.append(text)
    return tuple(dict.fromkeys(targets))


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def tf_distribution(ctx: RuleContext) -> Distribution | None:
    for name in TF_PACKAGES:
        dist = ctx.distribution(name)
        if dist is not None:
            return dist
    return None


def tf_build(ctx: RuleContext) -> TfBuild | None:
    """The installed TensorFlow and what it needs, or None when none is installed."""
    tf = ctx.facts.tensorflow
    dist = tf_distribution(ctx)
    version = (tf.version if tf is not None and tf.installed else None) or (dist.version if dist else None)
    if not version or parse_version(version) is None:
        return None
    package = dist.name if dist else "tensorflow"
    if tf is not None and tf.distributions:
        package = next((p for p in TF_PACKAGES if p in tf.distributions), package)
    system: System = "windows" if ctx.flavor == "windows" else "linux"
    release = ctx.matrix.tensorflow_release(version)
    row = (release.windows if system == "windows" else release.linux) if release else None

    gpu_build: bool | None = None
    if tf is not None and tf.is_cuda_build is not None:
        gpu_build = tf.is_cuda_build
    elif package in CPU_PACKAGES:
        gpu_build = False
    elif release is not None:
        gpu_build = row is not None and package in (*release.gpu_packages, "tensorflow-gpu")

    where = "Windows" if system == "windows" else "Linux"
    table = f"gpudoctor's matrix (TensorFlow {release.version if release else ''} {where} build)"
    said_cuda = normalise_cuda(tf.build_cuda_version if tf else None)
    cuda, cuda_from = None, ""
    if said_cuda and "." in said_cuda:
        cuda, cuda_from = said_cuda, "TensorFlow's build info"
    elif row is not None and (said_cuda is None or _major(row.cuda) == _major(said_cuda)):
        cuda, cuda_from = row.cuda, table
    elif said_cuda:
        cuda, cuda_from = said_cuda, "TensorFlow's build info"
    if cuda is None and tf is not None and tf.imported:
        runtime = _loaded_runtime(ctx)
        if runtime is not None:
            cuda, cuda_from = runtime, "the CUDA runtime TensorFlow loads"

    logged_cudnn = normalise_cudnn(tf.cudnn_compiled_version if tf else None)
    said_cudnn = normalise_cudnn(tf.build_cudnn_version if tf else None)
    cudnn, cudnn_from = None, ""
    if logged_cudnn:
        cudnn, cudnn_from = logged_cudnn, "TensorFlow's log"
    elif said_cudnn and "." in said_cudnn:
        cudnn, cudnn_from = said_cudnn, "TensorFlow's build info"
    elif row is not None and (said_cudnn is None or _major(row.cudnn) == _major(said_cudnn)):
        cudnn, cudnn_from = row.cudnn, table
    elif said_cudnn:
        cudnn, cudnn_from = said_cudnn, "TensorFlow's build info"

    missing = tf.missing_libraries if tf else ()
    cudart = next((m for m in missing if _kind_of(m) == "cudart"), None)
    if cuda is None and cudart is not None:
        cuda = _cuda_of_runtime_name(cudart)
        cuda_from = f"the runtime TensorFlow asked for ({cudart})" if cuda else ""
    if cudart is None and row is not None and row.cudart:
        cudart = row.cudart
    if cudart is None and cuda and "." in cuda:
        cudart = ctx.matrix.cudart_name(cuda, system)
    cudnn_library = next((m for m in missing if _kind_of(m) == "cudnn"), None)
    if cudnn_library is None and row is not None and row.cudnn_library:
        cudnn_library = row.cudnn_library
    if cudnn_library is None and _major(cudnn) is not None:
        cudnn_library = ctx.matrix.cudnn_library_name(_major(cudnn) or 0, system)

    said_targets = normalise_targets(tf.build_compute_capabilities) if tf else ()
    if said_targets:
        targets, targets_from = said_targets, "TensorFlow's build info"
    elif row is not None:
        targets, targets_from = normalise_targets(row.compute_capabilities), table
    else:
        targets, targets_from = (), ""
    return TfBuild(
        version=version,
        package=package,
        release=release,
        row=row,
        system=system,
        gpu_build=gpu_build,
        cuda=cuda,
        cuda_from=cuda_from,
        cudnn=cudnn,
        cudnn_from=cudnn_from,
        cudart=cudart,
        cudnn_library=cudnn_library,
        targets=targets,
        targets_from=targets_from,
        imported=tf is not None and tf.imported,
        found_gpus=tf is not None and bool(tf.gpus),
    )


def _cuda_of_runtime_name(name: str) -> str | None:
    """ "10.0" from libcudart.so.10.0 / cudart64_100.dll; None where the name carries only a major."""
    match = re.fullmatch(r"libcudart\.so\.(\d+)\.(\d+)", name) or re.fullmatch(
        r"cudart64_(\d+)(\d)\.dll", name.lower()
    )
    if match is None or (int(match.group(1)) >= 11 and match.group(2) == "0"):
        return None  # libcudart.so.11.0 and cudart64_110.dll serve every CUDA 11.x
    return f"{int(match.group(1))}.{int(match.group(2))}"


def _loaded_runtime(ctx: RuleContext) -> str | None:
    """The CUDA version of the runtime an imported TensorFlow loaded (its process map), else of the one
    the loader gives by default: for builds that cannot say what they were built with (TF 1.x)."""
    tf, libs = ctx.facts.tensorflow, ctx.facts.libraries
    if libs is None:
        return None
    loaded = {lib.path for lib in (tf.loaded_libraries if tf else ()) if lib.kind == "cudart"}
    runtime = next((f for f in libs.files if f.kind == "cudart" and f.path in loaded), None) or next(
        (f for f in libs.files if f.kind == "cudart" and f.loader_default), None
    )
    if runtime is None:
        return None
    version = runtime.version or ""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)*", version) or re.fullmatch(
        r"cudart64_(\d+)(\d)\.dll", runtime.name.lower()
    )
    return f"{int(match.group(1))}.{int(match.group(2))}" if match else None


_KINDS = (
    ("libcudart", "cudart"),
    ("cudart64_", "cudart"),
    ("libcudnn", "cudnn"),
    ("cudnn64_", "cudnn"),
)


def _kind_of(name: str) -> str:
    base = re.split(r"[\\/]", name)[-1].lower()
    return next((kind for prefix, kind in _KINDS if base.startswith(prefix)), "other")


def tf_conda_managed(ctx: RuleContext) -> bool:
    """TensorFlow itself came from a conda channel, whose solver picked its CUDA libraries."""
    conda = ctx.facts.conda
    if conda is None or not ctx.in_conda:
        return False
    return any(
        p.name in ("tensorflow", "tensorflow-base", "tensorflow-gpu") and p.channel not in ("pypi", "")
        for p in conda.packages
    )


def files_named(ctx: RuleContext, name: str) -> list[LibraryFile]:
    """Copies of the library `name` on disk (Windows names compare case-insensitively)."""
    libs = ctx.facts.libraries
    if libs is None:
        return []
    wanted = name.lower() if ctx.flavor == "windows" else name
    found = []
    for f in libs.files:
        names = {f.name, re.split(r"[\\/]", f.path)[-1]}
        if ctx.flavor == "windows":
            names = {n.lower() for n in names}
        if wanted in names:
            found.append(f)
    return found


def python_series(ctx: RuleContext) -> str | None:
    py = ctx.facts.python
    parsed = parse_version(py.version) if py and py.version else None
    return f"{parsed.release[0]}.{(*parsed.release, 0)[1]}" if parsed else None


def python_range(spec: SpecifierSet) -> str:
    """The Python minors a specifier admits, as "3.9–3.12"."""
    minors = [f"3.{m}" for m in range(25) if spec.contains(f"3.{m}.0", prereleases=True)]
    if spec.contains("2.7.0"):
        minors.insert(0, "2.7")
    if not minors:
        return str(spec)
    return minors[0] if len(minors) == 1 else f"{minors[0]}–{minors[-1]}"


def _series_key(series: str) -> Version:
    try:
        return Version(series)
    except InvalidVersion:
        return Version("0")


# ----------------------------------------------------------------------------------------------
# GD411: TF >= 2.14 on Linux with no CUDA libraries at all


def and_cuda_install(ctx: RuleContext, build: TfBuild) -> str:
    return ctx.pip_install(f"tensorflow[and-cuda]=={build.version}")


@rule(
    "GD411",
    "TensorFlow's CUDA libraries are installed",
    requires=DRIVER_ROOT_CAUSES,
    needs=("tensorflow",),
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
                and_cuda_install(ctx, build),
            ),
        ),
    )


def _python_dists(ctx: RuleContext) -> tuple[Distribution, ...]:
    return ctx.facts.python.distributions if ctx.facts.python else ()


# ----------------------------------------------------------------------------------------------
# GD412: nvidia-* wheels against TensorFlow's own [and-cuda] pins


def and_cuda_pins(ctx: RuleContext, build: TfBuild) -> tuple[dict[str, SpecifierSet], str]:
    """TensorFlow's `[and-cuda]` requirements on nvidia-* wheels, from its own metadata when the
    facts carry it, else from the matrix; and where they came from."""
    dist = ctx.distribution(build.package) or tf_distribution(ctx)
    environment = _marker_environment(ctx)
    pins: dict[str, SpecifierSet] = {}
    for line in dist.requires if dist else ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if requirement.marker is None or not requirement.name.lower().startswith("nvidia-"):
            continue
        try:
            wanted = requirement.marker.evaluate({**environment, "extra": "and-cuda"})
            always = requirement.marker.evaluate({**environment, "extra": ""})
        except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
            continue
        if wanted and not always:
            pins[str(canonicalize_name(requirement.name))] = requirement.specifier
    if pins:
        return pins, f"the Requires-Dist of {build.package} {dist.version if dist else build.version}"
    release = build.release
    table = {
        str(canonicalize_name(name)): SpecifierSet(spec)
        for name, spec in (release.and_cuda.items() if release else ())
        if name.startswith("nvidia-")
    }
    return table, f"gpudoctor's matrix (TensorFlow {release.version if release else build.version})"


def _marker_environment(ctx: RuleContext) -> dict[str, str]:
    p = ctx.facts.platform
    series = python_series(ctx) or "3.11"
    full = ctx.facts.python.version if ctx.facts.python and ctx.facts.python.version else f"{series}.0"
    system = p.system if p and p.system else "Linux"
    return {
        "python_version": series,
        "python_full_version": full,
        "platform_system": system,
        "sys_platform": {"Windows": "win32", "Darwin": "darwin"}.get(system, "linux"),
        "os_name": "nt" if system == "Windows" else "posix",
        "platform_machine": (p.machine if p and p.machine else "x86_64"),
    }


_CRITICAL = re.compile(r"^nvidia-(cudnn|cuda-runtime)")


@rule(
    "GD412",
    "The nvidia-* wheels match TensorFlow's [and-cuda] pins",
    requires=(*DRIVER_ROOT_CAUSES, "GD411"),
    needs=("tensorflow", "python"),
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
            and_cuda_install(ctx, build),
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


@rule("GD413", "TensorFlow has a wheel for this Python", needs=("python",))
def python_supported(ctx: RuleContext) -> Iterator[Verdict]:
    series = python_series(ctx)
    if series is None:
        return
    build = tf_build(ctx)
    supporting = ctx.matrix.tensorflow_versions_for_python(series)
    if build is None:
        latest = max(ctx.matrix.tensorflow, key=lambda r: _series_key(r.version), default=None)
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
        newest = max(supporting, key=_series_key)
        seen.append(f"TensorFlow releases for Python {series}: {', '.join(supporting)}")
        fixes.insert(
            0,
            ctx.fix(
                f"Or keep Python {series} and install TensorFlow {newest}, which has wheels for it",
                ctx.pip_install(f"tensorflow=={newest}.*", options=("--upgrade",)),
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


def gpu_capabilities(ctx: RuleContext) -> list[tuple[str, str]]:
    """(GPU name, compute capability) of every GPU the driver lists, from the matrix when NVML
    did not say."""
    driver = ctx.facts.driver
    found: list[tuple[str, str]] = []
    for gpu in driver.gpus if driver else ():
        cc = gpu.compute_capability or ctx.matrix.compute_capability_for(gpu.name)
        if cc and re.fullmatch(r"\d+\.\d", cc.strip()):
            found.append((gpu.name or f"GPU {gpu.index}", cc.strip()))
    return found


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
    return sorted(found, key=_series_key)


def tf_install_spec(ctx: RuleContext, series: str, installed_package: str = "tensorflow") -> str:
    """What to pip install for TensorFlow `series` with GPU support: the installed distribution when that
    series publishes it as a CUDA build, else the series' first CUDA distribution."""
    release = ctx.matrix.tensorflow_release(series)
    package = "tensorflow"
    if release is not None and release.gpu_packages:
        package = installed_package if installed_package in release.gpu_packages else release.gpu_packages[0]
    extra = (
        "[and-cuda]"
        if package == "tensorflow"
        and ctx.flavor in ("linux", "wsl")
        and _series_key(series) >= Version("2.14")
        else ""
    )
    return f"{package}{extra}=={series}.*"


_IGNORED_GPU = re.compile(
    r"Ignoring visible gpu device .*compute capability: (\d+\.\d+)\).*"
    r"minimum required Cuda capability is (\d+\.\d+)"
)


def ignored_for_capability(ctx: RuleContext) -> dict[str, tuple[str, str]]:
    """TensorFlow's own log: compute capability -> (its minimum, the log line) for GPUs it ignored
    as too old ("Ignoring visible gpu device ... The minimum required Cuda capability is 3.5.")."""
    tf = ctx.facts.tensorflow
    found: dict[str, tuple[str, str]] = {}
    for line in tf.log_lines if tf else ():
        match = _IGNORED_GPU.search(line)
        if match:
            found.setdefault(match.group(1), (match.group(2), line.strip()))
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
        and _major(row.cudnn) == build.cudnn_major
    )


def _kernel_candidates(ctx: RuleContext, build: TfBuild, cc: str) -> tuple[str | None, str | None]:
    """(the newest release with kernels for `cc` that keeps this build's CUDA runtime and cuDNN major,
    preferring this TensorFlow major; the newest release with kernels for `cc` for this Python)."""
    installed = parse_version(build.version)
    series = releases_with_kernels(ctx, cc, build.system)
    if installed is None or not installed.is_prerelease:
        series = [s for s in series if s != build.release_series]
    keeping = [s for s in series if _keeps_libraries(_series_row(ctx, s, build.system), build)]
    same_major = [s for s in keeping if installed is not None and _series_key(s).major == installed.major]
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
    requires=(*DRIVER_ROOT_CAUSES, "GD413", "GD511"),
    needs=("driver", "tensorflow"),
)
def kernels_for_gpu(ctx: RuleContext) -> Iterator[Verdict]:
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
            newer = [s for s in native if _series_key(s) > _series_key(build.release_series or "0")]
            if newer:
                fixes.insert(
                    0,
                    ctx.fix(
                        f"Install TensorFlow {newer[-1]}, which has native kernels for compute capability {cc}",
                        ctx.pip_install(tf_install_spec(ctx, newer[-1], build.package)),
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
                    ),
                    ctx.pip_install(tf_install_spec(ctx, keep, build.package)),
                )
            )
        if newest is not None and newest != keep:
            fixes.append(
                ctx.fix(
                    f"{'Or install' if keep else 'Install'} TensorFlow {newest}, the newest release with kernels for "
                    f"compute capability {cc}{for_python}; it needs "
                    f"{_libraries_text(_series_row(ctx, newest, build.system))}",
                    ctx.pip_install(tf_install_spec(ctx, newest, build.package)),
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
