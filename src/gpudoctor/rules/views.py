"""Views over facts that several rule families read: what the installed TensorFlow needs, the
working driver, whose driver numbering applies, what the frameworks said about CUDA.

A view is a pure function of the facts (and the matrix); it never judges. `tf_build` is "the
machine's word beats the table" for TensorFlow: what it needs, in TensorFlow's own words where it
said them (build info, log lines, its `Requires-Dist` pins) and from the matrix only where it could
not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from gpudoctor import lazy_re
from gpudoctor.facts import Distribution, DriverFacts, LibraryFile, PlatformFacts, PythonFacts
from gpudoctor.matrix import System, TensorFlowBuild, TensorFlowRelease, cudnn_version_from_int
from gpudoctor.probes.libnames import library_kind
from gpudoctor.rules.context import RuleContext
from gpudoctor.versions import major_of, parse_version

# ----------------------------------------------------------------------------------------------
# The driver and the platform


def surveyed_python(ctx: RuleContext) -> PythonFacts | None:
    """The package survey of the target interpreter, when that interpreter ran (None: no survey, or the
    interpreter would not start, which GD003 reports)."""
    python = ctx.facts.python
    return python if python is not None and not python.error else None


def working_driver(ctx: RuleContext) -> DriverFacts | None:
    """The driver facts when NVML works and sees at least one GPU."""
    d = ctx.facts.driver
    return d if d is not None and d.nvml_state == "ok" and d.gpus else None


def driver_system(ctx: RuleContext) -> System:
    # WSL runs the Windows driver, so the Windows driver numbers apply.
    return "windows" if ctx.flavor in ("windows", "wsl") else "linux"


def gpu_seen(driver: DriverFacts) -> str:
    gpus = ", ".join(
        f"{g.name} ({g.compute_capability})" if g.compute_capability else g.name for g in driver.gpus
    )
    return f"driver {driver.driver_version or '?'} (CUDA {driver.cuda_driver_version or '?'}): {gpus}"


def distro_family(p: PlatformFacts | None) -> str:
    """ "ubuntu", "debian", "fedora", "rhel", "arch" or "other", from os-release ID and ID_LIKE."""
    if p is None or p.system != "Linux":
        return "other"
    ids = (p.distro_id or "", *p.distro_id_like)
    for family, members in (
        ("ubuntu", ("ubuntu",)),
        ("debian", ("debian",)),
        ("fedora", ("fedora",)),
        ("rhel", ("rhel", "centos", "rocky", "almalinux")),
        ("arch", ("arch",)),
    ):
        if family == "fedora" and p.distro_id != "fedora":
            continue  # RHEL clones list fedora in ID_LIKE but have no RPM Fusion akmods
        if any(i in members for i in ids):
            return family
    return "other"


def variable_set(ctx: RuleContext, name: str) -> bool:
    """The environment variable `name` is set to something other than nothing in the diagnosed
    environment (the loader path also counts when the libraries probe saw folders on it)."""
    if ctx.variables.get(name, "").strip(":"):
        return True
    libs = ctx.facts.libraries
    return name == "LD_LIBRARY_PATH" and libs is not None and bool(libs.ld_library_path)


def framework_errors(ctx: RuleContext) -> list[tuple[str, str]]:
    """(framework, text) for everything a framework said went wrong while it started CUDA."""
    said: list[tuple[str, str]] = []
    torch, tf, jax = ctx.facts.torch, ctx.facts.tensorflow, ctx.facts.jax
    if torch is not None:
        said += [("PyTorch", t) for t in (torch.cuda_error, *torch.warnings) if t]
    if tf is not None:
        said += [("TensorFlow", t) for t in (tf.cuinit_error, tf.list_devices_error, *tf.log_lines) if t]
    if jax is not None:
        said += [("JAX", t) for t in (jax.backend_error, *jax.warnings) if t]
    return said


# CUDA's own error codes, as the frameworks report them: TensorFlow logs `failed call to cuInit:
# CUDA_ERROR_SYSTEM_NOT_READY: ...`, PyTorch warns `Error 802: system not yet initialized`, JAX says
# `cuInit(0) failed: CUDA_ERROR_...`: one driver error in three spellings.


@dataclass(frozen=True)
class CudaError:
    code: int
    name: str
    text: str  # CUDA's own cuGetErrorString text


# The driver API's CUresult values (cuda.h) that name a machine-level cause.
CUDA_ERRORS = (
    CudaError(3, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"),
    CudaError(34, "CUDA_ERROR_STUB_LIBRARY", "CUDA driver is a stub library"),
    CudaError(100, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"),
    CudaError(303, "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED", "shared object initialization failed"),
    CudaError(304, "CUDA_ERROR_OPERATING_SYSTEM", "OS call failed or operation not supported on this OS"),
    CudaError(802, "CUDA_ERROR_SYSTEM_NOT_READY", "system not yet initialized"),
    CudaError(
        803,
        "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
        "system has unsupported display driver / cuda driver combination",
    ),
    CudaError(
        804,
        "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        "forward compatibility was attempted on non supported HW",
    ),
    CudaError(500, "CUDA_ERROR_NOT_FOUND", "named symbol not found"),
    CudaError(999, "CUDA_ERROR_UNKNOWN", "unknown error"),
)
BY_CODE = {e.code: e for e in CUDA_ERRORS}
BY_NAME = {e.name: e for e in CUDA_ERRORS}
# PyTorch: "Error 802: system not yet initialized"; TensorFlow: "UNKNOWN ERROR (303)"; everyone: the name.
NUMBERED = lazy_re.compile(r"\b[Ee]rror (\d{1,3}): |UNKNOWN ERROR \((\d{1,3})\)")
NAMED = lazy_re.compile(r"\b(CUDA_ERROR_[A-Z_]+)\b")
# PyTorch's own words for cudaErrorUnknown when it falls back to zero devices.
TORCH_UNKNOWN = "CUDA unknown error - this may be due to an incorrectly set up environment"


def cuda_error_in(text: str) -> CudaError | None:
    """The CUDA error a framework's message names, by name or by number."""
    named = NAMED.search(text)
    if named and named.group(1) in BY_NAME:
        return BY_NAME[named.group(1)]
    for match in NUMBERED.finditer(text):
        code = int(match.group(1) or match.group(2))
        if code in BY_CODE:
            return BY_CODE[code]
    return BY_CODE[999] if TORCH_UNKNOWN in text else None


def framework_cuda_errors(ctx: RuleContext) -> list[tuple[str, str, CudaError]]:
    """(framework, its text, the CUDA error it names) for each framework message that names one: the
    "cuda-error" rows of FRAMEWORK_SIGNS."""
    found = []
    for sign in framework_signs(ctx, "cuda-error"):
        error = cuda_error_in(sign.text)
        if error is not None:
            found.append((sign.framework, sign.text, error))
    return found


# ----------------------------------------------------------------------------------------------
# hardware (#10.9): one map from every framework's own explicit lines to the root-cause class they name.
# Each row is what that framework really prints, where it prints it; a rule asks for a cause and gets the
# lines of every framework that said it, so one root cause is one finding whichever framework reported it.

SignCause = Literal[
    "cuda-error",  # CUDA's driver API refused to start: a CUresult by number or name (CUDA_ERRORS)
    "gpu-outside-build",  # the GPU's compute capability is outside what the framework build supports
    "no-kernel-image",  # a kernel for this GPU's architecture is missing from the build (or unloadable)
    "cudnn-not-loaded",  # cuDNN could not be loaded at all
    "cudnn-version",  # a cuDNN was loaded, but not the version the framework was built against
]


@dataclass(frozen=True)
class FrameworkSign:
    framework: str  # "TensorFlow", "PyTorch", "JAX"
    cause: SignCause
    pattern: (
        lazy_re.LazyPattern
    )  # named groups where the line carries them: cc, minimum, loaded, built, library
    where: str  # the source that prints it


FRAMEWORK_SIGNS: tuple[FrameworkSign, ...] = (
    # cuInit / cudaGetDeviceCount errors: the code is read by cuda_error_in (NUMBERED, NAMED, TORCH_UNKNOWN).
    FrameworkSign(
        "TensorFlow",
        "cuda-error",
        lazy_re.compile(
            r"failed call to cuInit|CUDA_ERROR_[A-Z_]+|UNKNOWN ERROR \(\d+\)|\b[Ee]rror \d{1,3}: "
        ),
        "stream_executor cuda_diagnostics / cuda_driver.cc: 'failed call to cuInit: CUDA_ERROR_...'",
    ),
    FrameworkSign(
        "PyTorch",
        "cuda-error",
        lazy_re.compile(
            r"\b[Ee]rror \d{1,3}: |CUDA_ERROR_[A-Z_]+|UNKNOWN ERROR \(\d+\)|" + re.escape(TORCH_UNKNOWN)
        ),
        "torch/cuda/__init__.py: 'CUDA initialization: ... Error 802: system not yet initialized'",
    ),
    FrameworkSign(
        "JAX",
        "cuda-error",
        lazy_re.compile(r"cuInit\(0\) failed|CUDA_ERROR_[A-Z_]+|UNKNOWN ERROR \(\d+\)|\b[Ee]rror \d{1,3}: "),
        "xla/stream_executor/cuda: 'INTERNAL: cuInit(0) failed: CUDA_ERROR_...' (the backend error)",
    ),
    # The GPU is older (or newer) than the build supports.
    FrameworkSign(
        "TensorFlow",
        "gpu-outside-build",
        lazy_re.compile(
            r"Ignoring visible gpu device .*compute capability: (?P<cc>\d+\.\d+)\).*"
            r"minimum required Cuda capability is (?P<minimum>\d+\.\d+)"
        ),
        "tensorflow/core/common_runtime/gpu/gpu_device.cc: 'Ignoring visible gpu device (...) with Cuda compute "
        "capability X. The minimum required Cuda capability is Y.'",
    ),
    FrameworkSign(
        "PyTorch",
        "gpu-outside-build",
        lazy_re.compile(
            r"Found GPU\d+ .* which is of cuda capability (?P<cc>\d+\.\d+)\.\s*"
            r"PyTorch no longer supports this GPU because it is too old\.\s*"
            r"The minimum cuda capability supported by this library is (?P<minimum>\d+\.\d+)",
            re.DOTALL,
        ),
        "torch/cuda/__init__.py _check_capability: old_gpu_warn",
    ),
    FrameworkSign(
        "PyTorch",
        "gpu-outside-build",
        lazy_re.compile(
            r"with CUDA capability sm_(?P<sm>\d+) is not compatible with the current PyTorch installation"
        ),
        "torch/cuda/__init__.py _check_cubins: '... with CUDA capability sm_120 is not compatible with the current "
        "PyTorch installation.'",
    ),
    FrameworkSign(
        "JAX",
        "gpu-outside-build",
        lazy_re.compile(
            r"has CUDA compute capability (?P<cc>\d+\.\d+) which is lower than the minimum supported compute "
            r"capability (?P<minimum>\d+\.\d+)"
        ),
        "jax/_src/xla_bridge.py _check_cuda_compute_capability (a RuntimeWarning)",
    ),
    # No kernel for this GPU: CUDA's cudaErrorNoKernelImageForDevice (209) in each framework's words.
    FrameworkSign(
        "PyTorch",
        "no-kernel-image",
        lazy_re.compile(r"no kernel image is available for execution on the device"),
        "CUDA runtime cudaGetErrorString(209), raised as 'CUDA error: no kernel image is available ...'",
    ),
    FrameworkSign(
        "TensorFlow",
        "no-kernel-image",
        lazy_re.compile(
            r"no kernel image is available for execution on the device|CUDA_ERROR_NO_BINARY_FOR_GPU"
        ),
        "stream_executor: 'CUDA_ERROR_NO_BINARY_FOR_GPU' / the runtime's text",
    ),
    FrameworkSign(
        "JAX",
        "no-kernel-image",
        lazy_re.compile(
            r"no kernel image is available for execution on the device|CUDA_ERROR_NO_BINARY_FOR_GPU"
        ),
        "xla/stream_executor/cuda/cuda_driver.cc: 'CUDA_ERROR_NO_BINARY_FOR_GPU: no kernel image is available ...'",
    ),
    # cuDNN not loaded at all.
    FrameworkSign(
        "TensorFlow",
        "cudnn-not-loaded",
        lazy_re.compile(
            r"Could not load dynamic library '(?P<library>(?:lib)?cudnn\w*(?:\.so(?:\.\d+)*|\.dll))'|"
            r"Couldn't open CUDA library (?P<old>libcudnn\w*\.so(?:\.\d+)*)|Unable to load cuDNN DSO"
        ),
        "tsl/platform/default/dso_loader.cc ('Could not load dynamic library ...'); TF <= 1.4 cuda_dnn.cc",
    ),
    FrameworkSign(
        "PyTorch",
        "cudnn-not-loaded",
        lazy_re.compile(r"Could not load library (?P<library>libcudnn\w*\.so(?:\.\d+)*)"),
        "cuDNN 8's own loader, on stderr: 'Could not load library libcudnn_cnn_infer.so.8. Error: ...'",
    ),
    FrameworkSign(
        "JAX",
        "cudnn-not-loaded",
        lazy_re.compile(r"Unable to load cuDNN\. Is it installed\?"),
        "jax/_src/xla_bridge.py _check_cuda_versions: 'Unable to load cuDNN. Is it installed?'",
    ),
    # cuDNN of another version than the build's.
    FrameworkSign(
        "TensorFlow",
        "cudnn-version",
        lazy_re.compile(
            r"Loaded runtime CuDNN library:\s*(?P<loaded>\d+(?:\.\d+)*).*?but source was compiled with:\s*(?P<built>\d+(?:\.\d+)*)"
        ),
        "xla/stream_executor/cuda/cuda_dnn.cc (shared by TensorFlow and JAX)",
    ),
    FrameworkSign(
        "JAX",
        "cudnn-version",
        lazy_re.compile(
            r"Loaded runtime CuDNN library:\s*(?P<loaded>\d+(?:\.\d+)*).*?but source was compiled with:\s*(?P<built>\d+(?:\.\d+)*)|"
            r"Found cuDNN version (?P<found>\d+), but JAX was built against version (?P<jax_built>\d+)|"
            r"Outdated cuDNN installation found"
        ),
        "cuda_dnn.cc; jax/_src/xla_bridge.py _check_cuda_versions ('Found cuDNN version X, but JAX was built "
        "against version Y', later 'Outdated cuDNN installation found')",
    ),
    FrameworkSign(
        "PyTorch",
        "cudnn-version",
        lazy_re.compile(
            r"cuDNN version incompatibility: PyTorch was compiled\s+against (?P<built>\(.*?\)) but found "
            r"runtime version (?P<loaded>\(.*?\))"
        ),
        "torch/backends/cudnn/__init__.py _init: 'cuDNN version incompatibility: PyTorch was compiled  against ...'",
    ),
)


@dataclass(frozen=True)
class SignSeen:
    framework: str
    cause: SignCause
    text: str  # the whole line (or error) that said it
    found: dict[str, str]  # the pattern's groups that matched


def _framework_texts(ctx: RuleContext) -> list[tuple[str, str, bool]]:
    """Everything each framework said, and whether it said it while starting CUDA (framework_errors: the
    only texts a "cuda-error" row reads); then PyTorch's cuDNN check and each framework's import error."""
    said = [(framework, text, True) for framework, text in framework_errors(ctx)]
    torch, tf, jax = ctx.facts.torch, ctx.facts.tensorflow, ctx.facts.jax
    if torch is not None:
        said += [("PyTorch", t, False) for t in (torch.cudnn_error, torch.import_error) if t]
    if tf is not None and tf.import_error:
        said.append(("TensorFlow", tf.import_error, False))
    if jax is not None and jax.import_error:
        said.append(("JAX", jax.import_error, False))
    return said


def framework_signs(ctx: RuleContext, cause: SignCause | None = None) -> list[SignSeen]:
    """Every framework line that FRAMEWORK_SIGNS maps to a root-cause class (only `cause`, if given), in
    the order the frameworks said them, one per line and cause."""
    seen: list[SignSeen] = []
    for framework, text, starting in _framework_texts(ctx):
        for sign in FRAMEWORK_SIGNS:
            if sign.framework != framework or (cause is not None and sign.cause != cause):
                continue
            if sign.cause == "cuda-error" and not starting:
                continue
            match = sign.pattern.search(text)
            if match is None or any(s.text == text and s.cause == sign.cause for s in seen):
                continue
            groups = {k: v for k, v in match.groupdict().items() if v is not None}
            seen.append(SignSeen(framework, sign.cause, text, groups))
    return seen


# ----------------------------------------------------------------------------------------------
# What the installed TensorFlow needs

TF_PACKAGES = ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel", "tensorflow-cpu-aws")
CPU_PACKAGES = ("tensorflow-cpu", "tensorflow-intel", "tensorflow-cpu-aws")


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
        return major_of(self.cuda)

    @property
    def cudnn_major(self) -> int | None:
        return major_of(self.cudnn)

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
    elif row is not None and (said_cuda is None or major_of(row.cuda) == major_of(said_cuda)):
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
    elif row is not None and (said_cudnn is None or major_of(row.cudnn) == major_of(said_cudnn)):
        cudnn, cudnn_from = row.cudnn, table
    elif said_cudnn:
        cudnn, cudnn_from = said_cudnn, "TensorFlow's build info"

    missing = tf.missing_libraries if tf else ()
    cudart = next((m for m in missing if library_kind(m) == "cudart"), None)
    if cuda is None and cudart is not None:
        cuda = _cuda_of_runtime_name(cudart)
        cuda_from = f"the runtime TensorFlow asked for ({cudart})" if cuda else ""
    if cudart is None and row is not None and row.cudart:
        cudart = row.cudart
    if cudart is None and cuda and "." in cuda:
        cudart = ctx.matrix.cudart_name(cuda, system)
    cudnn_library = next((m for m in missing if library_kind(m) == "cudnn"), None)
    if cudnn_library is None and row is not None and row.cudnn_library:
        cudnn_library = row.cudnn_library
    if cudnn_library is None and major_of(cudnn) is not None:
        cudnn_library = ctx.matrix.cudnn_library_name(major_of(cudnn) or 0, system)

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


def and_cuda_pins(ctx: RuleContext, build: TfBuild) -> tuple[dict[str, SpecifierSet], str]:
    """TensorFlow's `[and-cuda]` requirements on nvidia-* wheels, from its own metadata when the
    facts carry it, else from the matrix; and where they came from."""
    pins = metadata_and_cuda_pins(ctx, build)
    if pins:
        dist = ctx.distribution(build.package) or tf_distribution(ctx)
        return pins, f"the Requires-Dist of {build.package} {dist.version if dist else build.version}"
    release = build.release
    table = {
        str(canonicalize_name(name)): SpecifierSet(spec)
        for name, spec in (release.and_cuda.items() if release else ())
        if name.startswith("nvidia-")
    }
    return table, f"gpudoctor's matrix (TensorFlow {release.version if release else build.version})"


def metadata_and_cuda_pins(ctx: RuleContext, build: TfBuild) -> dict[str, SpecifierSet]:
    """TensorFlow's `[and-cuda]` pins on nvidia-* wheels as its own installed metadata writes them."""
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
    return pins


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


# ----------------------------------------------------------------------------------------------
# hardware (QA case 4): which ptxas XLA will run for JAX
#
# XLA's FindCudaExecutable in jaxlib (and jax-cudaNN-pjrt) up to 0.4.23 runs the first ptxas on PATH
# before it looks anywhere else ("Try searching in the default PATH first": tsl's PreferPtxasFromPath()
# is true), so a system toolkit's ptxas beats the nvidia-cuda-nvcc wheel JAX points it at. openxla/xla
# PR #7884 (for jax-ml/jax#18578) made the preferred folder come first: JAX's CUDA_ROOT, else the wheel
# (jax._src.lib.cuda_path, passed as xla_gpu_cuda_data_dir), then PATH, then /usr/local/cuda..., and it
# passes over a ptxas older than 11.8 or 12.3.103. jax-cuda12-pjrt 0.4.23's xla_cuda_plugin.so still has
# the old code, 0.4.24's the new ("The following locations were considered").
XLA_PREFERS_CUDA_DIR = "0.4.24"
XLA_PREFERS_CUDA_DIR_RELEASE = (0, 4, 24)
XLA_PTXAS_FLOOR = (11, 8)  # the new search passes over older ptxas ...
XLA_PTXAS_SKIPPED = ("12.3.103",)  # ... and this known-bad release
NVCC_WHEEL_NAMES = ("nvidia-cuda-nvcc-cu12", "nvidia-cuda-nvcc-cu11", "nvidia-cuda-nvcc")


@dataclass(frozen=True, kw_only=True)
class JaxPtxas:
    """A ptxas XLA may run for JAX."""

    path: str  # "/usr/bin/ptxas", ".../site-packages/nvidia/cuda_nvcc/bin/ptxas"
    version: str | None  # its CUDA version: "11.5", "12.2.140"
    version_from: str  # "its own --version", "the nvidia-cuda-nvcc-cu12 wheel", "the toolkit's nvcc"
    source: str  # "PATH", "nvidia-cuda-nvcc wheel", "CUDA_ROOT"
    folder: str | None = None  # the bin folder it is in, where known


@dataclass(frozen=True, kw_only=True)
class JaxPtxasChoice:
    chosen: JaxPtxas
    path_first: bool  # this jaxlib runs PATH's ptxas before the wheel's (< 0.4.24)
    xla_version: str  # the jaxlib / jax-cudaNN-pjrt version whose XLA searches
    passed_over: tuple[JaxPtxas, ...] = ()  # the ptxas it would have found later


def jax_xla_version(ctx: RuleContext) -> str | None:
    """The release whose XLA compiles for JAX on the GPU: the CUDA PJRT plugin's, else jaxlib's."""
    jax = ctx.facts.jax
    plugins = dict(jax.plugins) if jax is not None else {}
    for name in ("jax-cuda13-pjrt", "jax-cuda12-pjrt", "jax-cuda13-plugin", "jax-cuda12-plugin"):
        dist = ctx.distribution(name)
        version = plugins.get(name) or (dist.version if dist is not None else None)
        if version:
            return version
    dist = ctx.distribution("jaxlib")
    return (jax.jaxlib_version if jax is not None else None) or (dist.version if dist else None)


def _path_ptxas(ctx: RuleContext) -> JaxPtxas | None:
    """The first ptxas on PATH and its version: its own --version (toolkit probe), else the folder's
    version.json (survey), else what the nvcc first on PATH says (facts from before the ptxas fields)."""
    toolkit, python = ctx.facts.toolkit, surveyed_python(ctx)
    root = next(
        (r for r in (python.cuda_roots if python else ()) if r.via == "ptxas on PATH" and r.ptxas), None
    )
    if toolkit is not None and toolkit.ptxas_on_path and (toolkit.ptxas_version or root is None):
        path = toolkit.ptxas_on_path
        return JaxPtxas(
            path=path,
            version=toolkit.ptxas_version,
            version_from="its own --version" if toolkit.ptxas_version else "",
            source="PATH",
            folder=path.rsplit("/", 1)[0],
        )
    if root is not None:
        path = root.tool or f"{root.path.rstrip('/')}/bin/ptxas"
        version, source = root.version, "the folder's version.json"
        for install in toolkit.installs if toolkit is not None and version is None else ():
            if install.path in (root.path, root.real):
                version, source = install.version or install.nvcc_version, "the toolkit it belongs to"
        return JaxPtxas(
            path=path, version=version, version_from=source, source="PATH", folder=path.rsplit("/", 1)[0]
        )
    if toolkit is not None and toolkit.nvcc_on_path and toolkit.nvcc_version:
        folder = toolkit.nvcc_on_path.rsplit("/", 1)[0]
        return JaxPtxas(
            path=f"{folder}/ptxas",
            version=toolkit.nvcc_version,
            version_from="the nvcc beside it on PATH",
            source="PATH",
            folder=folder,
        )
    return None


def _preferred_ptxas(ctx: RuleContext) -> JaxPtxas | None:
    """JAX's own folder for XLA (jax._src.lib.cuda_path): CUDA_ROOT, else the nvidia-cuda-nvcc wheel."""
    python = surveyed_python(ctx)
    roots = python.cuda_roots if python is not None else ()
    if ctx.variables.get("CUDA_ROOT"):
        root = next((r for r in roots if r.via == "CUDA_ROOT"), None)
        top = (root.path if root else ctx.variables["CUDA_ROOT"]).rstrip("/")
        if root is not None and not root.ptxas:
            return None
        return JaxPtxas(
            path=f"{top}/bin/ptxas",
            version=root.version if root else None,
            version_from="the folder's version.json",
            source="CUDA_ROOT",
            folder=f"{top}/bin",
        )
    wheel = next((ctx.distribution(n) for n in NVCC_WHEEL_NAMES if ctx.distribution(n) is not None), None)
    if wheel is None:
        return None
    root = next(
        (r for r in roots if r.via in ("wheel nvidia/cuda_nvcc", "wheel nvidia/cu13") and r.ptxas), None
    )
    site = python.site_packages[0] if python is not None and python.site_packages else None
    folder: str | None
    if root is not None:
        folder = f"{root.path.rstrip('/')}/bin"
    elif site is not None:
        folder = f"{site}/nvidia/{'cu13' if wheel.name == 'nvidia-cuda-nvcc' else 'cuda_nvcc'}/bin"
    else:
        folder = None
    return JaxPtxas(
        path=f"{folder}/ptxas" if folder else f"the {wheel.name} wheel's bin/ptxas",
        version=wheel.version,
        version_from=f"the {wheel.name} wheel",
        source="nvidia-cuda-nvcc wheel",
        folder=folder,
    )


def _standard_ptxas(ctx: RuleContext) -> list[JaxPtxas | None]:
    """XLA's generic CUDA roots last: /usr/local/cuda, /opt/cuda (as the survey found them)."""
    python = surveyed_python(ctx)
    found: list[JaxPtxas | None] = []
    for root in python.cuda_roots if python is not None else ():
        if root.via in ("/usr/local/cuda", "/opt/cuda") and root.ptxas:
            folder = f"{root.path.rstrip('/')}/bin"
            found.append(
                JaxPtxas(
                    path=f"{folder}/ptxas",
                    version=root.version,
                    version_from="the folder's version.json" if root.version else "",
                    source=root.via,
                    folder=folder,
                )
            )
    return found


def _xla_takes(ptxas: JaxPtxas) -> bool:
    """The ptxas version test of XLA's new search: 11.8 or newer and not a known-bad release."""
    if ptxas.version is None:
        return True
    parsed = parse_version(ptxas.version)
    return (
        parsed is not None
        and parsed.release[:2] >= XLA_PTXAS_FLOOR
        and ptxas.version not in XLA_PTXAS_SKIPPED
    )


def jax_ptxas(ctx: RuleContext) -> JaxPtxasChoice | None:
    """The ptxas XLA will run when JAX first compiles for the GPU, in the order this jaxlib searches:
    PATH first up to 0.4.23, JAX's own folder (CUDA_ROOT or the nvcc wheel) first from 0.4.24. None when
    nothing says which (no version known, or no ptxas found)."""
    xla = jax_xla_version(ctx)
    parsed = parse_version(xla)
    if xla is None or parsed is None:
        return None
    path_first = parsed.release[:3] < XLA_PREFERS_CUDA_DIR_RELEASE
    on_path, preferred = _path_ptxas(ctx), _preferred_ptxas(ctx)
    order = [on_path, preferred] if path_first else [preferred, on_path]
    order += _standard_ptxas(ctx)
    found = [p for p in order if p is not None and (path_first or _xla_takes(p))]
    if not found:
        return None
    return JaxPtxasChoice(
        chosen=found[0], path_first=path_first, xla_version=xla, passed_over=tuple(found[1:])
    )
