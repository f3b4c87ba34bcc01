"""The compatibility matrix: `compat_matrix.yaml`, validated into frozen rows, and lookups over them.

Rules ask the matrix, never the file. Every row carries the `source` it was taken from and a
`verified` flag: `False` marks a row that no primary source confirmed, so a rule should soften its
wording ("probably", a warning instead of an error) when it leans on one.
"""

from __future__ import annotations

import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from gpudoctor import lazy_re, matrix_cache
from gpudoctor.loading import UntrustedInputError, excerpt, parse_yaml, read_bounded

System = Literal["linux", "windows"]
KernelSupport = Literal["native", "ptx"]

MATRIX_FILE = "compat_matrix.yaml"
SCHEMA_VERSION = 1


class MatrixError(ValueError):
    """The matrix file is missing or invalid; the message names the entry."""


# ----------------------------------------------------------------------------------------------
# Row types


@dataclass(frozen=True, kw_only=True)
class TensorFlowBuild:
    """One CUDA build of a TensorFlow release for one operating system."""

    cuda: str  # "12.2": the toolkit it was built with (major.minor)
    cudnn: str  # "8.9": the cuDNN it was compiled with; a runtime needs this major and >= this minor
    compute_capabilities: tuple[str, ...] = ()  # the wheel's real targets ("sm_60", ..., "compute_90")
    compute_capabilities_verified: bool = True  # False: targets from release build scripts, not the wheel
    cudart: str = ""  # the CUDA runtime it dlopens: "libcudart.so.12", "cudart64_110.dll"
    cudnn_library: str = ""  # "libcudnn.so.8", "cudnn64_8.dll"
    cudart_build_info: str | None = None  # what build_info says when it differs from what is loaded
    python: SpecifierSet | None = None  # only when it differs from the release's Linux range
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class TensorFlowRelease:
    version: str  # "2.15"
    python: SpecifierSet  # Linux wheels
    linux: TensorFlowBuild | None = None
    windows: TensorFlowBuild | None = None  # native Windows GPU build (<= 2.10 only)
    and_cuda: dict[str, str] = field(default_factory=dict)  # `tensorflow[and-cuda]`: dist -> specifier
    gpu_packages: tuple[str, ...] = ()  # pip distributions of this release that are CUDA builds (Linux)
    # patch releases whose CUDA distributions differ from `gpu_packages` ("1.15.0": tensorflow too)
    gpu_packages_in: dict[str, tuple[str, ...]] = field(default_factory=dict)
    prerelease: str | None = None  # "2.22.0rc0": only a pre-release is out (`pip install --pre`)
    notes: str = ""
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class CudaToolkit:
    cuda: str  # "12.2"
    linux: str | None  # minimum driver of the toolkit's GA release
    windows: str | None  # None: NVIDIA publishes no Windows number (13.x)
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class CudaFamily:
    """CUDA minor-version compatibility floor of one CUDA major (11 and newer)."""

    major: int
    linux: str
    windows: str | None
    windows_recommended: str | None = None  # a higher number some NVIDIA/TF documents give
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class DriverRequirement:
    cuda: str  # "12.2"
    toolkit_minimum: str | None  # the driver the toolkit release itself requires; None where unpublished
    compat_minimum: str | None  # minor-version-compatibility floor of the major; None for <= 10.x
    source: str = ""
    verified: bool = True

    @property
    def floor(self) -> str | None:
        """The oldest driver that runs this CUDA at all: the toolkit's own minimum or the major's
        compatibility floor, whichever is lower (CUDA 11.0's own 450.51 is below 11.x's 450.80)."""
        known = [v for v in (self.toolkit_minimum, self.compat_minimum) if v and parse_version(v) is not None]
        if not known:
            return self.compat_minimum or self.toolkit_minimum
        return min(known, key=lambda v: parse_version(v) or Version("0"))

    @property
    def through_compatibility(self) -> bool:
        """Whether drivers below the toolkit's own minimum run it (minor-version compatibility)."""
        return self.floor is not None and self.floor == self.compat_minimum != self.toolkit_minimum


@dataclass(frozen=True, kw_only=True)
class Architecture:
    cc: str  # "8.6"
    name: str  # "Ampere"
    first_cuda: str | None  # first toolkit that can target it; None = before CUDA 9.0
    removed_in: str | None = None  # first toolkit that can no longer target it
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class GpuModel:
    cc: str
    names: tuple[str, ...]
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class CudnnMajor:
    major: int
    linux_library: str  # "libcudnn.so.8"
    windows_library: str  # "cudnn64_8.dll"
    version_header: str  # header with the CUDNN_MAJOR/MINOR/PATCHLEVEL macros
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class CudnnRelease:
    """Which CUDA majors a range of cuDNN releases was built for, and the GPUs it supports."""

    versions: SpecifierSet  # e.g. ">=9.0,<9.11"
    cuda: tuple[int, ...]  # CUDA majors
    min_compute_capability: str | None = None
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class CudaRuntime:
    cuda: str  # "10.1" (exact minor) or "12" (a whole major)
    linux: str
    windows: str
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class TorchVariant:
    name: str  # "cu124", "cpu"
    cuda: str | None  # "12.4"; None for cpu
    cudnn: str | None = None  # "9.1.0.70"
    arch_list: tuple[str, ...] = ()  # Linux x86_64 torch.cuda.get_arch_list(), ascending
    windows_arch_list: tuple[str, ...] = ()  # empty when unknown
    index_url: str = ""  # "https://download.pytorch.org/whl/cu124"
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class TorchRelease:
    version: str  # "2.5"
    python: SpecifierSet
    variants: tuple[TorchVariant, ...]
    pypi_default_linux: str  # the variant plain `pip install torch` gives on Linux x86_64
    free_threaded: tuple[str, ...] = ()  # free-threaded CPython builds with wheels: ("3.14t", "3.15t")
    notes: str = ""
    source: str = ""
    verified: bool = True

    def variant(self, name: str) -> TorchVariant | None:
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True, kw_only=True)
class JaxCuda:
    major: int  # CUDA major of the plugin
    extra: str  # "cuda12" -> pip install "jax[cuda12]"
    local_extra: str  # "cuda12-local": use the system CUDA
    min_driver_linux: str
    min_cudnn: str
    min_compute_capability: str
    min_jax: str  # first jax release where this extra installs a working plugin
    python: SpecifierSet | None = None
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class JaxRelease:
    """A run of jax releases with the same GPU story: `version` up to (not including) `until`."""

    version: str  # "0.4.31": first release of the run
    until: str  # "0.4.34"
    python: SpecifierSet
    cuda: tuple[int, ...]  # CUDA majors with NVIDIA GPU wheels
    min_cudnn: dict[int, str] = field(default_factory=dict)  # CUDA major -> minimum cuDNN
    extras: tuple[str, ...] = ()  # pip extras for NVIDIA GPUs
    # CUDA major -> the GPU targets jaxlib / the CUDA plugin is compiled for ("sm_80", "compute_120")
    targets: dict[int, tuple[str, ...]] = field(default_factory=dict)
    targets_source: str = ""
    notes: str = ""
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class DriverBranch:
    """The last NVIDIA driver branch that supports a GPU generation (a legacy branch)."""

    generation: str  # "Kepler", as in `architectures` and `pci_devices`
    ccs: tuple[str, ...]  # its compute capabilities
    last_branch: str  # "470": drivers of later branches do not load on it
    max_cuda: str | None = None  # the newest CUDA that branch's driver runs ("11.4")
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class PciGeneration:
    """NVIDIA PCI device ids (vendor 10de) of one GPU generation."""

    generation: str
    ids: frozenset[int]  # device ids, from a space-separated list of 4-digit hex numbers
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class JetsonRelease:
    """A JetPack release: its L4T, CUDA and Python, and where NVIDIA's framework wheels for it live."""

    jetpack: str  # "5.1.2"
    l4t: str  # "35.4.1" (the R35.4.1 of /etc/nv_tegra_release)
    cuda: str | None = None
    cudnn: str | None = None
    python: str = ""  # the system Python the wheels are built for ("3.8")
    torch: tuple[str, ...] = ()  # NVIDIA's torch wheels for it ("2.0.0+nv23.05")
    tensorflow: tuple[str, ...] = ()  # NVIDIA's TensorFlow wheels for it ("2.12.0+nv23.06")
    index_url: str = ""  # where the wheels are (pip --extra-index-url / -f)
    notes: str = ""
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class PluginRelease:
    """A release of a TensorFlow device plugin (tensorflow-metal, tensorflow-directml-plugin) and the
    TensorFlow it works with."""

    version: str  # the plugin's release ("1.1.0")
    tensorflow: SpecifierSet  # TensorFlow releases it works with
    tensorflow_package: str = "tensorflow"  # the distribution it needs ("tensorflow-cpu" for directml)
    python: SpecifierSet | None = None
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class KnownIssue:
    """A framework release whose wheels for one platform are broken in a known way, and the release that
    fixed them: `import_error` (the import fails naming `symptom`), `numpy1_build` (built against NumPy 1)."""

    framework: str  # the distribution ("torch")
    release: str  # the broken release ("2.4.0")
    platform: str  # linux | windows | macos | wsl
    kind: str  # import_error | numpy1_build
    fixed_in: str  # the first release without it ("2.4.1")
    issue: str  # where it was confirmed, short ("pytorch/pytorch#131662")
    symptom: str = ""  # import_error: text the import error names ("fbgemm.dll")
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class MpsFloor:
    """From torch `torch` on, the MPS backend needs macOS `macos` or newer."""

    torch: str  # the first torch release with this floor ("2.5")
    macos: str  # "13.0"
    source: str = ""
    verified: bool = True


@dataclass(frozen=True, kw_only=True)
class Platform:
    """Platform facts; `sources[field_name]` says where each came from."""

    tensorflow_last_windows_gpu: str = "2.10"
    tensorflow_first_and_cuda: str = "2.14"
    tensorflow_last_macos_gpu: str = "1.1"
    tensorflow_gpu_stub_from: str = "2.12"
    tensorflow_last_macos_x86: str = "2.16"
    tensorflow_wsl_min_driver_windows: str = "528.33"
    wsl_gpu_min_windows_build: int = 19044
    wsl_lib_dir: str = "/usr/lib/wsl/lib"
    torch_last_conda_channel: str = "2.5"
    jax_windows_native_gpu: str = "no"
    jax_wsl2_gpu: str = "experimental"
    jax_macos: str = "CPU only (Apple GPU: experimental jax-metal)"
    sources: dict[str, str] = field(default_factory=dict)


# ----------------------------------------------------------------------------------------------
# Pure helpers

_TARGET = lazy_re.compile(r"^(sm|compute)_(\d+)(\d)([af]?)$")
_CC = lazy_re.compile(r"^(\d+)\.(\d)$")


def _cc(cc: str) -> tuple[int, int]:
    match = _CC.match(cc.strip())
    if not match:
        raise ValueError(f"{excerpt(cc)} is not a compute capability like '8.6'")
    return int(match.group(1)), int(match.group(2))


def kernel_support(cc: str, targets: Sequence[str]) -> KernelSupport | None:
    """Whether code built for `targets` runs on a GPU of compute capability `cc` ("8.6").

    "native": some SASS target `sm_XY` runs on it (same major X, minor >= Y; an arch-specific
    `sm_XYa` only on exactly X.Y). "ptx": no SASS fits, but some PTX target `compute_XY` with
    X.Y <= cc can be JIT-compiled by the driver. None: nothing in `targets` runs on it.
    Unparseable targets are ignored; an unparseable `cc` raises ValueError.
    """
    major, minor = _cc(cc)
    ptx = False
    for target in targets:
        match = _TARGET.match(target.strip().lower())
        if not match:
            continue
        kind, t_major, t_minor, suffix = (
            match.group(1),
            int(match.group(2)),
            int(match.group(3)),
            match.group(4),
        )
        if suffix == "a":
            fits = (t_major, t_minor) == (major, minor)
        elif kind == "sm":
            fits = t_major == major and minor >= t_minor
        else:
            fits = (major, minor) >= (t_major, t_minor)
        if fits and kind == "sm":
            return "native"
        ptx = ptx or fits
    return "ptx" if ptx else None


def cudnn_version_from_int(n: int) -> str:
    """cuDNN's CUDNN_VERSION / cudnnGetVersion() integer as "major.minor.patch".

    cuDNN 9 encodes major*10000 + minor*100 + patch (90300 -> "9.3.0"); earlier majors
    major*1000 + minor*100 + patch (8907 -> "8.9.7").
    """
    if n < 0:
        raise ValueError(f"{n} is not a cuDNN version number")
    if n >= 90000:
        return f"{n // 10000}.{n % 10000 // 100}.{n % 100}"
    return f"{n // 1000}.{n % 1000 // 100}.{n % 100}"


def parse_version(version: str) -> Version | None:
    """A PEP 440 version, or None for garbage."""
    try:
        return Version(version.strip())
    except InvalidVersion:
        return None


def _series(version: str) -> str | None:
    parsed = parse_version(version)
    if parsed is None:
        return None
    release = (*parsed.release, 0)
    return f"{release[0]}.{release[1]}"


def _at_least(version: str, minimum: str) -> bool:
    """`version` >= `minimum`, where a short version names the lowest release of its series:
    "535.54" is a 535.54.x driver, so it meets "535.54.03" (the series' first release)."""
    left, right = parse_version(version), parse_version(minimum)
    if left is None or right is None:
        return False
    if len(left.release) < len(right.release):
        return left.release >= right.release[: len(left.release)]
    return left >= right


def driver_at_least(driver: str, minimum: str) -> bool:
    """Whether NVIDIA driver `driver` meets `minimum`; a short `driver` ("535.54") is read as the
    lowest release of its series, which meets any floor inside that series ("535.54.03")."""
    return _at_least(driver, minimum)


def is_short_driver(driver: str) -> bool:
    """Whether `driver` has fewer parts than NVIDIA's Linux versions (535.54 vs 535.54.03)."""
    parsed = parse_version(driver)
    return parsed is not None and len(parsed.release) < 3


def _cuda_key(cuda: str) -> tuple[int, int] | None:
    parsed = parse_version(cuda)
    if parsed is None:
        return None
    release = (*parsed.release, 0)
    return release[0], release[1]


_NAME_NOISE = frozenset({"nvidia", "geforce", "tesla", "quadro", "gpu", "graphics", "tm", "r", "corporation"})


def _name_tokens(name: str) -> tuple[str, ...]:
    return tuple(t for t in re.split(r"[^a-z0-9]+", name.lower()) if t and t not in _NAME_NOISE)


def _is_subsequence(needle: Sequence[str], haystack: Sequence[str]) -> bool:
    it = iter(haystack)
    return all(token in it for token in needle)


# ----------------------------------------------------------------------------------------------
# The matrix


@dataclass(frozen=True, kw_only=True)
class Matrix:
    source: str = ""  # the file this was loaded from
    last_verified: str = ""  # when tools/verify_matrix.py last checked it against the wheels, and its tally
    tensorflow: tuple[TensorFlowRelease, ...] = ()  # released series only: what rules recommend
    tensorflow_prereleases: tuple[TensorFlowRelease, ...] = ()  # rows with `prerelease:` (2.22.0rc0)
    cuda_toolkits: tuple[CudaToolkit, ...] = ()
    cuda_families: tuple[CudaFamily, ...] = ()
    architectures: tuple[Architecture, ...] = ()
    gpus: tuple[GpuModel, ...] = ()
    cudnn_majors: tuple[CudnnMajor, ...] = ()
    cudnn_releases: tuple[CudnnRelease, ...] = ()
    cuda_runtimes: tuple[CudaRuntime, ...] = ()
    torch: tuple[TorchRelease, ...] = ()
    jax_cuda_plugins: tuple[JaxCuda, ...] = ()
    jax: tuple[JaxRelease, ...] = ()
    driver_branches: tuple[DriverBranch, ...] = ()
    pci_devices: tuple[PciGeneration, ...] = ()
    jetson: tuple[JetsonRelease, ...] = ()
    tensorflow_metal: tuple[PluginRelease, ...] = ()
    tensorflow_directml: tuple[PluginRelease, ...] = ()
    known_issues: tuple[KnownIssue, ...] = ()
    torch_mps_macos: tuple[MpsFloor, ...] = ()
    platform: Platform = field(default_factory=Platform)

    # -- TensorFlow --------------------------------------------------------------------------

    def tensorflow_release(self, version: str) -> TensorFlowRelease | None:
        """The row of the release series `version` belongs to ("2.15.1", "2.15.0.post1" -> "2.15"),
        or None for an unknown series or an unparseable version."""
        series = _series(version)
        rows = (*self.tensorflow, *self.tensorflow_prereleases)
        return next((r for r in rows if r.version == series), None)

    def tensorflow_gpu_packages(self, version: str) -> tuple[str, ...]:
        """The pip distributions of release `version` ("2.1.3") whose Linux wheels are CUDA builds
        (build_info is_cuda_build, checked in every patch release): ("tensorflow", "tensorflow-gpu"),
        ("tensorflow-gpu",) for 1.13, 1.14 and 2.0; empty for an unknown release."""
        release = self.tensorflow_release(version)
        if release is None:
            return ()
        parsed = parse_version(version)
        public = parsed.public if parsed is not None else version
        return release.gpu_packages_in.get(public, release.gpu_packages)

    def tensorflow_versions_for_python(self, python_version: str) -> list[str]:
        """TensorFlow series ("2.12", ...) with Linux wheels for this Python ("3.11" or "3.11.4"),
        oldest first; empty for an unparseable version."""
        parsed = parse_version(python_version)
        if parsed is None:
            return []
        rows = [r for r in self.tensorflow if r.python.contains(parsed, prereleases=True)]
        return [r.version for r in sorted(rows, key=lambda r: Version(r.version))]

    # -- CUDA toolkit and driver -------------------------------------------------------------

    def cuda_toolkit(self, cuda: str) -> CudaToolkit | None:
        """The toolkit row of `cuda`'s major.minor ("12.2.140" -> the 12.2 row), or None."""
        key = _cuda_key(cuda)
        return next((t for t in self.cuda_toolkits if _cuda_key(t.cuda) == key), None)

    def cuda_family(self, major: int) -> CudaFamily | None:
        """The minor-version-compatibility floor of CUDA `major` (11, 12, 13); None for <= 10."""
        return next((f for f in self.cuda_families if f.major == major), None)

    def driver_requirement(self, cuda: str, system: System) -> DriverRequirement | None:
        """What driver CUDA `cuda` ("12.2", "12.2.140") needs on `system`, or None for an unknown
        toolkit. `toolkit_minimum` is the toolkit's own (GA) row; `compat_minimum` the floor under
        which nothing of that major runs (minor-version compatibility), None for <= 10.x."""
        toolkit = self.cuda_toolkit(cuda)
        if toolkit is None:
            return None
        family = self.cuda_family(_major(toolkit.cuda))
        compat = None
        if family is not None:
            compat = family.linux if system == "linux" else family.windows
        sources = [toolkit.source] + ([family.source] if family and family.source != toolkit.source else [])
        return DriverRequirement(
            cuda=toolkit.cuda,
            toolkit_minimum=toolkit.linux if system == "linux" else toolkit.windows,
            compat_minimum=compat,
            source="; ".join(sources),
            verified=toolkit.verified and (family is None or family.verified),
        )

    def driver_runs_cuda(self, driver: str, cuda: str, system: System) -> bool | None:
        """Whether a program built with CUDA `cuda` that ships its own runtime (pip wheels) runs on
        `driver`: driver >= the toolkit minimum, or (11.x and newer) >= the major's
        minor-version-compatibility floor. None when the toolkit or a needed number is unknown."""
        requirement = self.driver_requirement(cuda, system)
        if requirement is None:
            return None
        floor = requirement.floor
        if floor is None or parse_version(driver) is None:
            return None
        return _at_least(driver, floor)

    def newest_cuda_for_driver(self, driver: str, system: System) -> str | None:
        """The highest toolkit ("12.4") whose own minimum driver `driver` meets on `system`;
        None when it meets none or `driver` does not parse."""
        if parse_version(driver) is None:
            return None
        met = [
            t
            for t in self.cuda_toolkits
            if (minimum := t.linux if system == "linux" else t.windows) and _at_least(driver, minimum)
        ]
        if not met:
            return None
        return max(met, key=lambda t: _cuda_key(t.cuda) or (0, 0)).cuda

    # -- Compute capability --------------------------------------------------------------------

    def architecture(self, cc: str) -> Architecture | None:
        """The row of compute capability `cc` ("8.6"), or None."""
        return next((a for a in self.architectures if a.cc == cc.strip()), None)

    def toolkit_supports_arch(self, cuda: str, cc: str) -> bool:
        """Whether toolkit `cuda` can compile SASS for `cc`: first_cuda <= cuda < removed_in.
        False for an unknown `cc` or an unparseable `cuda`."""
        arch = self.architecture(cc)
        key = _cuda_key(cuda)
        if arch is None or key is None:
            return False
        if arch.first_cuda is not None and key < (_cuda_key(arch.first_cuda) or (0, 0)):
            return False
        return not (arch.removed_in is not None and key >= (_cuda_key(arch.removed_in) or (0, 0)))

    def compute_capability_for(self, gpu_name: str) -> str | None:
        """The compute capability ("8.6") of a GPU model name as NVML or nvidia-smi print it
        ("NVIDIA GeForce RTX 3090", "Tesla K80", "NVIDIA A100-SXM4-80GB"), or None when no known
        model matches or two models match equally well."""
        tokens = _name_tokens(gpu_name)
        if not tokens:
            return None
        best: list[tuple[int, str]] = []
        for model in self.gpus:
            for name in model.names:
                needle = _name_tokens(name)
                if needle and _is_subsequence(needle, tokens):
                    best.append((len(needle), model.cc))
        if not best:
            return None
        top = max(score for score, _ in best)
        ccs = {cc for score, cc in best if score == top}
        return ccs.pop() if len(ccs) == 1 else None

    # -- Library names and cuDNN ---------------------------------------------------------------

    def cudart_name(self, cuda: str, system: System) -> str:
        """The CUDA runtime file name a program built with `cuda` loads ("libcudart.so.11.0",
        "cudart64_110.dll"). Falls back to the naming pattern for toolkits without a row."""
        key = _cuda_key(cuda)
        if key is None:
            raise ValueError(f"{cuda!r} is not a CUDA version")
        exact = f"{key[0]}.{key[1]}"
        row = next((r for r in self.cuda_runtimes if r.cuda == exact), None) or next(
            (r for r in self.cuda_runtimes if r.cuda == str(key[0])), None
        )
        if row is not None:
            return row.linux if system == "linux" else row.windows
        if key[0] >= 12:
            return f"libcudart.so.{key[0]}" if system == "linux" else f"cudart64_{key[0]}.dll"
        return f"libcudart.so.{exact}" if system == "linux" else f"cudart64_{key[0]}{key[1]}.dll"

    def cudnn_major(self, major: int) -> CudnnMajor | None:
        return next((c for c in self.cudnn_majors if c.major == major), None)

    def cudnn_library_name(self, major: int, system: System) -> str:
        """The main cuDNN library of `major` ("libcudnn.so.9", "cudnn64_9.dll")."""
        row = self.cudnn_major(major)
        if row is not None:
            return row.linux_library if system == "linux" else row.windows_library
        return f"libcudnn.so.{major}" if system == "linux" else f"cudnn64_{major}.dll"

    def cudnn_release(self, cudnn: str) -> CudnnRelease | None:
        """The row covering cuDNN `cudnn` ("8.9.7", "9.3.0.75"), or None."""
        parsed = parse_version(cudnn)
        if parsed is None:
            return None
        return next((r for r in self.cudnn_releases if r.versions.contains(parsed, prereleases=True)), None)

    def cudnn_supports(self, cudnn: str, cuda: str) -> bool | None:
        """Whether cuDNN `cudnn` has builds for CUDA `cuda`'s major; None when either is unknown."""
        row = self.cudnn_release(cudnn)
        key = _cuda_key(cuda)
        if row is None or key is None:
            return None
        return key[0] in row.cuda

    # -- PyTorch ------------------------------------------------------------------------------

    def torch_release(self, version: str) -> TorchRelease | None:
        """The row of the series `version` belongs to ("2.5.1+cu124" -> "2.5"), or None."""
        series = _series(version)
        return next((r for r in self.torch if r.version == series), None)

    def torch_variants_for_driver(
        self, torch_version: str, driver: str, system: System
    ) -> list[TorchVariant]:
        """CUDA variants of that torch release that `driver` runs (see `driver_runs_cuda`), newest
        CUDA first; the cpu variant is never listed. Empty for an unknown release."""
        release = self.torch_release(torch_version)
        if release is None:
            return []
        runnable = [
            v
            for v in release.variants
            if v.cuda is not None and self.driver_runs_cuda(driver, v.cuda, system)
        ]
        return sorted(runnable, key=lambda v: _cuda_key(v.cuda or "") or (0, 0), reverse=True)

    def torch_releases_supporting_arch(self, cc: str) -> list[tuple[str, str]]:
        """(release, variant) pairs, e.g. ("2.5", "cu124"), whose Linux arch list runs on `cc`
        natively or through PTX, oldest release first."""
        pairs = []
        for release in sorted(self.torch, key=lambda r: Version(r.version)):
            for variant in release.variants:
                if variant.arch_list and kernel_support(cc, variant.arch_list) is not None:
                    pairs.append((release.version, variant.name))
        return pairs

    # -- JAX ----------------------------------------------------------------------------------

    def jax_cuda(self, major: int) -> JaxCuda | None:
        """The `jax[cudaNN]` plugin for CUDA `major` (12, 13), or None."""
        return next((j for j in self.jax_cuda_plugins if j.major == major), None)

    def jax_release(self, version: str) -> JaxRelease | None:
        """The row whose run [version, until) contains `version` ("0.4.31", "0.4.33"), or None."""
        parsed = parse_version(version)
        if parsed is None:
            return None
        return next((r for r in self.jax if Version(r.version) <= parsed < Version(r.until)), None)

    def jax_kernel_support(self, version: str, major: int, cc: str) -> KernelSupport | None:
        """Whether the jax release `version`'s CUDA `major` wheels (jaxlib / jax-cudaNN-plugin) have
        kernels for compute capability `cc`: "native", "ptx" (JIT from PTX at first start) or None.
        None too when the run or its target list is unknown (see `jax_targets`)."""
        targets = self.jax_targets(version, major)
        return kernel_support(cc, targets) if targets else None

    def jax_targets(self, version: str, major: int) -> tuple[str, ...]:
        """The GPU targets of that jax release's CUDA `major` build; empty when not recorded."""
        release = self.jax_release(version)
        return release.targets.get(major, ()) if release is not None else ()

    def jax_releases_supporting_arch(self, cc: str) -> list[tuple[str, int]]:
        """(first release of a run, CUDA major) pairs whose targets run on `cc`, oldest first."""
        pairs = []
        for run in sorted(self.jax, key=lambda r: Version(r.version)):
            for major, targets in sorted(run.targets.items()):
                if kernel_support(cc, targets) is not None:
                    pairs.append((run.version, major))
        return pairs

    # -- Legacy driver branches, PCI ids, Jetson ---------------------------------------------

    def pci_generation(self, device_id: str) -> str | None:
        """The GPU generation ("Pascal") of an NVIDIA PCI device id: "10de:1b80", "0x1B80", "1b80".
        None for an unknown id (newer than the PCI id list the matrix was built from) or garbage."""
        text = device_id.strip().lower()
        text = text.removeprefix("10de:")
        text = text.removeprefix("0x")
        if not re.fullmatch(r"[0-9a-f]{1,4}", text):
            return None
        number = int(text, 16)
        return next((row.generation for row in self.pci_devices if number in row.ids), None)

    def last_driver_branch(self, generation: str) -> DriverBranch | None:
        """The legacy branch row of a generation ("Kepler" -> 470), or None when current drivers
        still support it (or the generation is unknown)."""
        wanted = generation.strip().lower()
        return next((b for b in self.driver_branches if b.generation.lower() == wanted), None)

    def last_driver_branch_for_cc(self, cc: str) -> DriverBranch | None:
        """The legacy branch row of a compute capability ("3.7" -> Kepler, 470), or None."""
        return next((b for b in self.driver_branches if cc.strip() in b.ccs), None)

    def driver_supports_generation(self, driver: str, generation: str) -> bool | None:
        """Whether driver `driver` ("590.44.01") still supports GPUs of `generation`: its branch
        (major) is at most the generation's last branch. True for generations without a legacy
        branch; None for a driver that does not parse."""
        parsed = parse_version(driver)
        if parsed is None:
            return None
        branch = self.last_driver_branch(generation)
        return branch is None or parsed.release[0] <= int(branch.last_branch)

    def jetson_release(self, *, jetpack: str | None = None, l4t: str | None = None) -> JetsonRelease | None:
        """The JetPack row for a JetPack version ("5.1.2") or an L4T release ("35.4.1", "R35.4.1",
        or "35.4" for any 35.4.x); None when unknown."""
        if jetpack is not None:
            return next((j for j in self.jetson if j.jetpack == jetpack.strip()), None)
        if l4t is None:
            return None
        wanted = l4t.strip().upper().removeprefix("R")
        exact = next((j for j in self.jetson if j.l4t == wanted), None)
        return exact or next((j for j in self.jetson if j.l4t.startswith(wanted + ".")), None)

    # -- TensorFlow device plugins -------------------------------------------------------------

    def tensorflow_metal_for(self, tensorflow: str) -> list[PluginRelease]:
        """tensorflow-metal releases that work with TensorFlow `tensorflow` ("2.15.1"), newest first."""
        return _plugins_for(self.tensorflow_metal, tensorflow)

    def tensorflow_directml_for(self, tensorflow: str) -> list[PluginRelease]:
        """tensorflow-directml-plugin releases that work with TensorFlow `tensorflow`, newest first."""
        return _plugins_for(self.tensorflow_directml, tensorflow)

    def tensorflow_metal_release(self, version: str) -> PluginRelease | None:
        return next((p for p in self.tensorflow_metal if p.version == version.strip()), None)

    def tensorflow_directml_release(self, version: str) -> PluginRelease | None:
        return next((p for p in self.tensorflow_directml if p.version == version.strip()), None)

    def known_issue(self, framework: str, release: str, platform: str, kind: str) -> KnownIssue | None:
        """The known breakage of `kind` in `framework` `release` on `platform`, if the matrix lists one."""
        return next(
            (
                k
                for k in self.known_issues
                if (k.framework, k.release, k.platform, k.kind)
                == (framework, release.strip(), platform, kind)
            ),
            None,
        )

    def torch_mps_floor(self, torch_version: str) -> MpsFloor | None:
        """The macOS floor of the MPS backend in this torch release: the row of the newest torch at or
        before it; None before MPS existed (1.12) or for an unparsable version."""
        wanted = parse_version(torch_version.split("+")[0])
        if wanted is None:
            return None
        wanted = Version(wanted.base_version)
        rows = [(parse_version(r.torch), r) for r in self.torch_mps_macos]
        fitting = [(v, r) for v, r in rows if v is not None and v <= wanted]
        return max(fitting, key=lambda pair: pair[0])[1] if fitting else None

    def torch_last_for_macos(self, macos: str) -> str | None:
        """The last torch series whose MPS runs on macOS `macos`: the series before the first floor above it
        ("2.4" for macOS 12.7); None when every listed floor fits or the version is unparsable."""
        have = parse_version(macos)
        if have is None:
            return None
        above = sorted(
            (v, r)
            for v, r in ((parse_version(r.torch), r) for r in self.torch_mps_macos)
            if v is not None and (parse_version(r.macos) or Version("0")) > have
        )
        if not above:
            return None
        first = above[0][0]
        earlier = sorted(Version(r.version) for r in self.torch if Version(r.version) < first)
        return str(earlier[-1]) if earlier else None

    # -- Overview -----------------------------------------------------------------------------

    def sections(self) -> dict[str, int]:
        """Row counts per section, in file order."""
        return {name: len(rows) for name, rows in self.section_rows().items()}

    def section_rows(self) -> dict[str, tuple[Any, ...]]:
        """The rows of each section, in file order (TensorFlow pre-release rows included)."""
        rows = {section.name: getattr(self, section.attribute) for section in SECTIONS}
        rows["tensorflow"] = (*self.tensorflow, *self.tensorflow_prereleases)
        return rows


def _plugins_for(rows: tuple[PluginRelease, ...], tensorflow: str) -> list[PluginRelease]:
    parsed = parse_version(tensorflow)
    if parsed is None:
        return []
    fits = [p for p in rows if p.tensorflow.contains(parsed, prereleases=True)]
    return sorted(fits, key=lambda p: Version(p.version), reverse=True)


def _major(cuda: str) -> int:
    key = _cuda_key(cuda)
    return key[0] if key else 0


# ----------------------------------------------------------------------------------------------
# Loading and validation


class _Entry:
    """One mapping from the file; every read is checked and `close()` rejects unknown keys."""

    def __init__(self, raw: object, where: str, fail: Callable[[str], MatrixError]) -> None:
        self.where = where
        self.fail = fail
        if not isinstance(raw, dict):
            raise fail(f"{where}: expected a mapping, got {_kind(raw)}")
        self._raw: dict[Any, Any] = raw
        self._seen: set[str] = set()

    def error(self, message: str) -> MatrixError:
        return self.fail(f"{self.where}: {message}")

    def has(self, key: str) -> bool:
        return self._raw.get(key) is not None

    def get(self, key: str, required: bool = True) -> Any:
        self._seen.add(key)
        value = self._raw.get(key)
        if value is None and required:
            raise self.error(f"missing '{key}'")
        return value

    def text(self, key: str, required: bool = True) -> str:
        value = self.get(key, required)
        if value is None:
            return ""
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise self.error(f"{key}: expected text, got {_kind(value)}")
        text = str(value).strip()
        if required and not text:
            raise self.error(f"{key}: is empty")
        return text

    def optional_text(self, key: str) -> str | None:
        return self.text(key, required=False) or None

    def version(self, key: str, required: bool = True) -> str | None:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"{key}: {excerpt(value)} must be quoted text (YAML reads 12.10 as 12.1)")
        if parse_version(value) is None:
            raise self.error(f"{key}: {excerpt(value)} is not a version")
        return value.strip()

    def required_version(self, key: str) -> str:
        value = self.version(key)
        assert value is not None
        return value

    def spec(self, key: str, required: bool = True) -> SpecifierSet | None:
        value = self.get(key, required)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.error(f"{key}: {excerpt(value)} is not a version specifier")
        try:
            return SpecifierSet(value)
        except InvalidSpecifier:
            raise self.error(f"{key}: {excerpt(value)} is not a version specifier") from None

    def required_spec(self, key: str) -> SpecifierSet:
        value = self.spec(key)
        assert value is not None
        return value

    def integer(self, key: str, required: bool = True) -> int | None:
        value = self.get(key, required)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{key}: {excerpt(value)} is not a whole number")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.get(key, required=False)
        if value is None:
            return default
        if not isinstance(value, bool):
            raise self.error(f"{key}: {excerpt(value)} is not true or false")
        return value

    def items(self, key: str, required: bool = True) -> list[Any]:
        value = self.get(key, required)
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.error(f"{key}: expected a list, got {_kind(value)}")
        return value

    def texts(self, key: str, required: bool = True) -> tuple[str, ...]:
        values = self.items(key, required)
        for value in values:
            if not isinstance(value, str) or not value.strip():
                raise self.error(f"{key}: {excerpt(value)} is not text")
        return tuple(v.strip() for v in values)

    def source(self) -> str:
        return self.text("source")

    def close(self) -> None:
        unknown = sorted(str(k) for k in self._raw if str(k) not in self._seen)
        if unknown:
            raise self.error(f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}")


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "text", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


_TARGET_NAME = lazy_re.compile(r"^(sm|compute)_\d+[af]?$")


def _targets(entry: _Entry, key: str) -> tuple[str, ...]:
    targets = entry.texts(key, required=False)
    for target in targets:
        if not _TARGET_NAME.match(target):
            raise entry.error(f"{key}: {excerpt(target)} is not a CUDA target like 'sm_80' or 'compute_90'")
    return targets


def _arch_list(entry: _Entry, key: str) -> tuple[str, ...]:
    """A TORCH_CUDA_ARCH_LIST string ("5.0;6.0;8.6+PTX") as get_arch_list() entries, ascending."""
    raw = entry.text(key, required=False)
    if not raw:
        return ()
    sm: set[tuple[int, int]] = set()
    ptx: set[tuple[int, int]] = set()
    for item in raw.split(";"):
        cc, _, suffix = item.strip().partition("+")
        try:
            key_cc = _cc(cc)
        except ValueError:
            raise entry.error(f"{key}: {excerpt(cc)} in {excerpt(raw)} is not a compute capability") from None
        if suffix not in ("", "PTX"):
            raise entry.error(
                f"{key}: {excerpt(item)} in {excerpt(raw)}: only '+PTX' may follow a capability"
            )
        sm.add(key_cc)
        if suffix:
            ptx.add(key_cc)
    return tuple(f"sm_{a}{b}" for a, b in sorted(sm)) + tuple(f"compute_{a}{b}" for a, b in sorted(ptx))


def _cc_field(entry: _Entry, key: str, required: bool = True) -> str | None:
    value = entry.get(key, required)
    if value is None:
        return None
    if not isinstance(value, str) or not _CC.match(value.strip()):
        raise entry.error(f"{key}: {excerpt(value)} is not a compute capability like '8.6'")
    return value.strip()


def _section(document: dict[str, Any], name: str, fail: Callable[[str], MatrixError]) -> list[Any]:
    value = document.get(name)
    if not isinstance(value, list) or not value:
        raise fail(f"{name}: expected a non-empty list of rows")
    return value


LABEL_LIMIT = 60  # a row's name in an error message; a hostile value there must not flood the line


def _label(raw: object, *keys: str) -> str:
    if isinstance(raw, dict):
        for key in keys:
            value = raw.get(key)
            if isinstance(value, str | int | float) and not isinstance(value, bool):
                text = str(value)
                return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"
            if value is not None:
                return excerpt(value, LABEL_LIMIT)
    return "?"


def _unique(
    rows: Iterable[Any], key: Callable[[Any], object], what: str, fail: Callable[[str], MatrixError]
) -> None:
    seen: set[object] = set()
    for row in rows:
        k = key(row)
        if k in seen:
            raise fail(f"{what}[{k}]: listed twice")
        seen.add(k)


# ----------------------------------------------------------------------------------------------
# The file's layout: one declarative description per section
#
# A `Section` says which dataclass each entry of a section becomes and how each key is read
# (`Reader`: a function of the entry and the key). The generic `_rows` does the rest: every read
# is checked, unknown keys are refused, `check` adds the one-row rules that involve several keys,
# `unique` refuses a key listed twice and `whole` checks the section as a whole.

Reader = Callable[[_Entry, str], Any]


def _required(read: Callable[..., Any]) -> Reader:
    def reader(entry: _Entry, key: str) -> Any:
        value = read(entry, key)
        assert value is not None
        return value

    return reader


VERSION: Reader = _required(lambda e, k: e.version(k))
OPTIONAL_VERSION: Reader = lambda e, k: e.version(k, required=False)
TEXT: Reader = lambda e, k: e.text(k)
OPTIONAL_TEXT: Reader = lambda e, k: e.text(k, required=False)
TEXT_OR_NONE: Reader = lambda e, k: e.optional_text(k)
TEXTS: Reader = lambda e, k: e.texts(k)
OPTIONAL_TEXTS: Reader = lambda e, k: e.texts(k, required=False)
SPEC: Reader = _required(lambda e, k: e.spec(k))
OPTIONAL_SPEC: Reader = lambda e, k: e.spec(k, required=False)
INTEGER: Reader = _required(lambda e, k: e.integer(k))
OPTIONAL_INTEGER: Reader = lambda e, k: e.integer(k, required=False)
FLAG: Reader = lambda e, k: e.flag(k, True)
CC: Reader = _required(lambda e, k: _cc_field(e, k))
OPTIONAL_CC: Reader = lambda e, k: _cc_field(e, k, required=False)
SOURCE: Reader = lambda e, k: e.text(k)


def TARGETS(entry: _Entry, key: str) -> tuple[str, ...]:
    return _targets(entry, key)


def ARCH_LIST(entry: _Entry, key: str) -> tuple[str, ...]:
    return _arch_list(entry, key)


def _majors(required: bool) -> Reader:
    def reader(entry: _Entry, key: str) -> tuple[int, ...]:
        values = entry.items(key, required)
        bad = required and not values
        if bad or not all(isinstance(c, int) and not isinstance(c, bool) for c in values):
            raise entry.error(f"{key}: {excerpt(values)} is not a list of CUDA majors")
        return tuple(values)

    return reader


MAJORS = _majors(required=True)
OPTIONAL_MAJORS = _majors(required=False)


def SPEC_MAP(entry: _Entry, key: str) -> dict[str, str]:
    """A mapping of pip distribution to version specifier (`and_cuda`); empty when absent."""
    raw = entry.get(key, required=False) or {}
    if not isinstance(raw, dict):
        raise entry.error(f"{key}: expected a mapping, got {_kind(raw)}")
    specs = {}
    for dist, spec in raw.items():
        try:
            SpecifierSet(str(spec))
        except InvalidSpecifier:
            raise entry.error(f"{key}: {dist}: {excerpt(spec)} is not a version specifier") from None
        specs[str(dist)] = str(spec)
    return specs


def VERSION_BY_MAJOR(entry: _Entry, key: str) -> dict[int, str]:
    """A mapping of CUDA major to a version (`min_cudnn`); empty when absent."""
    raw = entry.get(key, required=False) or {}
    if not isinstance(raw, dict):
        raise entry.error(f"{key}: expected a mapping of CUDA major to cuDNN version, got {_kind(raw)}")
    versions: dict[int, str] = {}
    for major, version in raw.items():
        if not isinstance(major, int) or not isinstance(version, str) or parse_version(version) is None:
            raise entry.error(f"{key}: {excerpt(major)}: {excerpt(version)} is not a cuDNN version")
        versions[major] = version
    return versions


def TEXTS_BY_VERSION(entry: _Entry, key: str) -> dict[str, tuple[str, ...]]:
    """A mapping of release ("1.15.0") to a list of names; empty when absent."""
    raw = entry.get(key, required=False) or {}
    if not isinstance(raw, dict):
        raise entry.error(f"{key}: expected a mapping of release to names, got {_kind(raw)}")
    found: dict[str, tuple[str, ...]] = {}
    for version, names in raw.items():
        if not isinstance(version, str) or parse_version(version) is None:
            raise entry.error(f"{key}: {excerpt(version)} is not a quoted release")
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise entry.error(f"{key}: {version}: {excerpt(names)} is not a list of names")
        found[version] = tuple(names)
    return found


def TARGETS_BY_MAJOR(entry: _Entry, key: str) -> dict[int, tuple[str, ...]]:
    """A mapping of CUDA major to a list of CUDA targets (`targets` of a jax run); empty when absent."""
    raw = entry.get(key, required=False) or {}
    if not isinstance(raw, dict):
        raise entry.error(f"{key}: expected a mapping of CUDA major to targets, got {_kind(raw)}")
    targets: dict[int, tuple[str, ...]] = {}
    for major, values in raw.items():
        if not isinstance(major, int) or isinstance(major, bool) or not isinstance(values, list):
            raise entry.error(f"{key}: {excerpt(major)}: {excerpt(values)} is not a list of CUDA targets")
        for target in values:
            if not isinstance(target, str) or not _TARGET_NAME.match(target):
                raise entry.error(
                    f"{key}: {excerpt(target)} is not a CUDA target like 'sm_80' or 'compute_90'"
                )
        targets[major] = tuple(values)
    return targets


def PCI_IDS(entry: _Entry, key: str) -> frozenset[int]:
    """A space-separated list of 4-digit hex PCI device ids ("1b80 1b81")."""
    text = entry.text(key)
    ids = set()
    for word in text.split():
        if not re.fullmatch(r"[0-9a-fA-F]{4}", word):
            raise entry.error(f"{key}: {excerpt(word)} is not a 4-digit hex PCI device id")
        ids.add(int(word, 16))
    return frozenset(ids)


def CCS(entry: _Entry, key: str) -> tuple[str, ...]:
    values = entry.texts(key)
    for value in values:
        if not _CC.match(value):
            raise entry.error(f"{key}: {excerpt(value)} is not a compute capability like '8.6'")
    return values


def NESTED(section: Section) -> Reader:
    """One entry of another section inside this one (`linux:` of a TensorFlow release); None when absent."""

    def reader(entry: _Entry, key: str) -> Any:
        value = entry.get(key, required=False)
        return None if value is None else _row(section, value, f"{entry.where}: {key}", entry.fail)

    return reader


def NESTED_LIST(section: Section) -> Reader:
    """A list of entries of another section (`variants:` of a torch release)."""

    def reader(entry: _Entry, key: str) -> tuple[Any, ...]:
        rows = tuple(
            _row(section, raw, f"{entry.where}: {key}[{_label(raw, section.label)}]", entry.fail)
            for raw in entry.items(key)
        )
        if section.unique is not None:
            _unique(rows, section.unique, f"{entry.where}: {key}", entry.fail)
        return rows

    return reader


@dataclass(frozen=True)
class Section:
    name: str  # the key in the file
    row: type  # the dataclass each entry becomes
    label: str  # the key that names an entry in messages: tensorflow[2.15]
    fields: dict[str, Reader]  # key in the file -> reader; the dataclass field has the same name
    attr: str = ""  # the Matrix attribute, when not `name`
    derive: Callable[[dict[str, Any], _Entry], dict[str, Any]] | None = None  # computed fields
    check: Callable[[Any, _Entry], None] | None = None  # a rule over one built row
    unique: Callable[[Any], object] | None = None  # two rows with the same key: "listed twice"
    whole: Callable[[tuple[Any, ...], Callable[[str], MatrixError]], None] | None = None

    @property
    def attribute(self) -> str:
        return self.attr or self.name


def _row(section: Section, raw: object, where: str, fail: Callable[[str], MatrixError]) -> Any:
    entry = _Entry(raw, where, fail)
    values = {key: read(entry, key) for key, read in section.fields.items()}
    if section.derive is not None:
        values.update(section.derive(values, entry))
    row = section.row(**values)
    entry.close()
    if section.check is not None:
        section.check(row, entry)
    return row


def _rows(section: Section, document: dict[str, Any], fail: Callable[[str], MatrixError]) -> tuple[Any, ...]:
    rows = tuple(
        _row(section, raw, f"{section.name}[{_label(raw, section.label)}]", fail)
        for raw in _section(document, section.name, fail)
    )
    if section.unique is not None:
        _unique(rows, section.unique, section.name, fail)
    if section.whole is not None:
        section.whole(rows, fail)
    return rows


# -- One-row and whole-section rules -------------------------------------------------------------


def _toolkit_has_a_driver(row: CudaToolkit, entry: _Entry) -> None:
    if row.linux is None and row.windows is None and row.verified:
        raise entry.error(
            "needs a 'linux' or a 'windows' driver version (or verified: false: none published)"
        )


_VARIANT = lazy_re.compile(r"^cu(\d+)(\d)$")
TORCH_INDEX = "https://download.pytorch.org/whl/"


def _variant_name(entry: _Entry, key: str) -> str:
    name = entry.text(key)
    if name != "cpu" and not _VARIANT.match(name):
        raise entry.error(f"{key}: {excerpt(name)} is not 'cpu' or a CUDA variant like 'cu124'")
    return name


def _variant_derived(values: dict[str, Any], entry: _Entry) -> dict[str, Any]:
    match = _VARIANT.match(values["name"])
    cuda = f"{int(match.group(1))}.{match.group(2)}" if match else None
    return {"cuda": cuda, "index_url": TORCH_INDEX + values["name"]}


def _variant_has_arch_list(row: TorchVariant, entry: _Entry) -> None:
    if row.cuda is not None and not row.arch_list:
        raise entry.error("missing 'arch_list'")


def _pypi_default_is_a_variant(row: TorchRelease, entry: _Entry) -> None:
    if row.variant(row.pypi_default_linux) is None:
        raise entry.error(f"pypi_default_linux: {excerpt(row.pypi_default_linux)} is not one of its variants")


def _run_is_not_empty(row: JaxRelease, entry: _Entry) -> None:
    if Version(row.until) <= Version(row.version):
        raise entry.error(f"until: {excerpt(row.until)} is not after {excerpt(row.version)}")


def _jax_runs_do_not_overlap(rows: tuple[JaxRelease, ...], fail: Callable[[str], MatrixError]) -> None:
    runs = sorted(rows, key=lambda r: Version(r.version))
    for before, after in itertools.pairwise(runs):
        if Version(before.until) > Version(after.version):
            raise fail(f"jax[{after.version}]: overlaps jax[{before.version}] (until {before.until})")


_Bound = tuple[Version, bool]  # a version, and whether it is included


def _interval(spec: SpecifierSet) -> tuple[_Bound | None, _Bound | None] | None:
    """(lower, upper) of a range made of >=, >, <=, < and ==; None for other operators."""
    lower: _Bound | None = None
    upper: _Bound | None = None
    for s in spec:
        version = parse_version(s.version)
        if version is None or s.operator not in (">=", ">", "<=", "<", "=="):
            return None
        if s.operator in (">=", ">", "=="):
            bound = (version, s.operator != ">")
            if lower is None or bound[0] > lower[0] or (bound[0] == lower[0] and not bound[1]):
                lower = bound
        if s.operator in ("<=", "<", "=="):
            bound = (version, s.operator != "<")
            if upper is None or bound[0] < upper[0] or (bound[0] == upper[0] and not bound[1]):
                upper = bound
    return lower, upper


def _cudnn_ranges_do_not_overlap(rows: tuple[CudnnRelease, ...], fail: Callable[[str], MatrixError]) -> None:
    """Sorted by lower bound, each range is compared with the one reaching furthest so far:
    n log n, not n² (3,000 rows once took 138 s)."""
    spans = []
    for index, row in enumerate(rows):
        interval = _interval(row.versions)
        if interval is None:
            raise fail(
                f"cudnn_releases[{row.versions}]: versions: use a range made of >=, >, <=, < "
                "(like '>=9.0,<9.11')"
            )
        spans.append((interval, index))
    floor = Version("0")
    spans.sort(key=lambda s: (s[0][0] or (floor, True))[0])
    reach: tuple[_Bound | None, int] | None = None  # the furthest upper bound so far, and whose
    for (lower, upper), index in spans:
        if reach is not None and _below(lower, reach[0]):
            first, second = sorted((reach[1], index))
            shared = _shared_boundary(rows[first].versions, rows[second].versions)
            raise fail(
                f"cudnn_releases[{rows[second].versions}]: overlaps cudnn_releases[{rows[first].versions}]"
                f" at {shared}"
            )
        if reach is None or _beyond(upper, reach[0]):
            reach = (upper, index)


def _below(lower: _Bound | None, upper: _Bound | None) -> bool:
    """Whether a range starting at `lower` begins before another one ends at `upper`."""
    if upper is None or lower is None:
        return True
    return lower[0] < upper[0] or (lower[0] == upper[0] and lower[1] and upper[1])


def _beyond(upper: _Bound | None, reach: _Bound | None) -> bool:
    if reach is None:
        return False
    if upper is None:
        return True
    return upper[0] > reach[0] or (upper[0] == reach[0] and upper[1] and not reach[1])


def _shared_boundary(left: SpecifierSet, right: SpecifierSet) -> str:
    for candidate in (*(s.version for s in left), *(s.version for s in right)):
        if left.contains(candidate, prereleases=True) and right.contains(candidate, prereleases=True):
            return candidate
    return next(iter(right)).version if len(right) else "?"


def _pci_ids_are_disjoint(rows: tuple[PciGeneration, ...], fail: Callable[[str], MatrixError]) -> None:
    seen: dict[int, str] = {}
    for row in rows:
        for number in sorted(row.ids):
            if number in seen:
                raise fail(f"pci_devices[{row.generation}]: {number:04x} is listed under {seen[number]} too")
            seen[number] = row.generation


# -- The sections, in file order ------------------------------------------------------------------

TF_BUILD = Section(
    "build",
    TensorFlowBuild,
    label="cuda",
    fields={
        "cuda": VERSION,
        "cudnn": VERSION,
        "compute_capabilities": TARGETS,
        "compute_capabilities_verified": FLAG,
        "cudart": TEXT,
        "cudnn_library": TEXT,
        "cudart_build_info": TEXT_OR_NONE,
        "python": OPTIONAL_SPEC,
        "source": SOURCE,
        "verified": FLAG,
    },
)

TORCH_VARIANT = Section(
    "variants",
    TorchVariant,
    label="name",
    fields={
        "name": _variant_name,
        "cudnn": OPTIONAL_VERSION,
        "arch_list": ARCH_LIST,
        "windows_arch_list": ARCH_LIST,
        "verified": FLAG,
    },
    derive=_variant_derived,
    check=_variant_has_arch_list,
    unique=lambda v: v.name,
)


def _plugin_section(name: str) -> Section:
    """A TensorFlow device plug-in's releases (tensorflow-metal, tensorflow-directml-plugin)."""
    return Section(
        name,
        PluginRelease,
        label="version",
        fields={
            "version": VERSION,
            "tensorflow": SPEC,
            "tensorflow_package": OPTIONAL_TEXT,
            "python": OPTIONAL_SPEC,
            "source": SOURCE,
            "verified": FLAG,
        },
        derive=lambda values, entry: {"tensorflow_package": values["tensorflow_package"] or "tensorflow"},
        unique=lambda r: r.version,
    )


SECTIONS: tuple[Section, ...] = (
    Section(
        "tensorflow",
        TensorFlowRelease,
        label="version",
        fields={
            "version": VERSION,
            "linux": NESTED(TF_BUILD),
            "windows": NESTED(TF_BUILD),
            "and_cuda": SPEC_MAP,
            "python": SPEC,
            "gpu_packages": TEXTS,
            "gpu_packages_in": TEXTS_BY_VERSION,
            "prerelease": OPTIONAL_VERSION,
            "notes": OPTIONAL_TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.version,
    ),
    Section(
        "cuda_toolkits",
        CudaToolkit,
        label="cuda",
        fields={
            "cuda": VERSION,
            "linux": OPTIONAL_VERSION,
            "windows": OPTIONAL_VERSION,
            "source": SOURCE,
            "verified": FLAG,
        },
        check=_toolkit_has_a_driver,
        unique=lambda r: _cuda_key(r.cuda),
    ),
    Section(
        "cuda_families",
        CudaFamily,
        label="major",
        fields={
            "major": INTEGER,
            "linux": VERSION,
            "windows": OPTIONAL_VERSION,
            "windows_recommended": OPTIONAL_VERSION,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.major,
    ),
    Section(
        "architectures",
        Architecture,
        label="cc",
        fields={
            "cc": CC,
            "name": TEXT,
            "first_cuda": OPTIONAL_VERSION,
            "removed_in": OPTIONAL_VERSION,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.cc,
    ),
    Section(
        "gpus",
        GpuModel,
        label="cc",
        fields={"cc": CC, "names": TEXTS, "source": SOURCE, "verified": FLAG},
    ),
    Section(
        "cudnn_majors",
        CudnnMajor,
        label="major",
        fields={
            "major": INTEGER,
            "linux_library": TEXT,
            "windows_library": TEXT,
            "version_header": TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.major,
    ),
    Section(
        "cudnn_releases",
        CudnnRelease,
        label="versions",
        fields={
            "cuda": MAJORS,
            "versions": SPEC,
            "min_compute_capability": OPTIONAL_CC,
            "source": SOURCE,
            "verified": FLAG,
        },
        whole=_cudnn_ranges_do_not_overlap,
    ),
    Section(
        "cuda_runtimes",
        CudaRuntime,
        label="cuda",
        fields={"cuda": VERSION, "linux": TEXT, "windows": TEXT, "source": SOURCE, "verified": FLAG},
        unique=lambda r: r.cuda,
    ),
    Section(
        "torch",
        TorchRelease,
        label="version",
        fields={
            "version": VERSION,
            "variants": NESTED_LIST(TORCH_VARIANT),
            "python": SPEC,
            "pypi_default_linux": TEXT,
            "free_threaded": OPTIONAL_TEXTS,
            "notes": OPTIONAL_TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        check=_pypi_default_is_a_variant,
        unique=lambda r: r.version,
    ),
    Section(
        "jax_cuda",
        JaxCuda,
        attr="jax_cuda_plugins",
        label="major",
        fields={
            "major": INTEGER,
            "min_compute_capability": CC,
            "extra": TEXT,
            "local_extra": TEXT,
            "min_driver_linux": VERSION,
            "min_cudnn": VERSION,
            "min_jax": VERSION,
            "python": OPTIONAL_SPEC,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.major,
    ),
    Section(
        "jax",
        JaxRelease,
        label="version",
        fields={
            "cuda": OPTIONAL_MAJORS,
            "min_cudnn": VERSION_BY_MAJOR,
            "version": VERSION,
            "until": VERSION,
            "python": SPEC,
            "extras": OPTIONAL_TEXTS,
            "targets": TARGETS_BY_MAJOR,
            "targets_source": OPTIONAL_TEXT,
            "notes": OPTIONAL_TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        check=_run_is_not_empty,
        whole=_jax_runs_do_not_overlap,
    ),
)

KNOWN_ISSUE_KINDS = ("import_error", "numpy1_build")
KNOWN_ISSUE_PLATFORMS = ("linux", "windows", "macos", "wsl")


def _known_issue_is_complete(row: KnownIssue, entry: _Entry) -> None:
    if row.kind not in KNOWN_ISSUE_KINDS:
        raise entry.error(f"kind: {excerpt(row.kind)} is not one of {', '.join(KNOWN_ISSUE_KINDS)}")
    if row.platform not in KNOWN_ISSUE_PLATFORMS:
        raise entry.error(
            f"platform: {excerpt(row.platform)} is not one of {', '.join(KNOWN_ISSUE_PLATFORMS)}"
        )
    if row.kind == "import_error" and not row.symptom:
        raise entry.error("symptom: an import_error needs the text its import error names")
    fixed, broken = parse_version(row.fixed_in), parse_version(row.release)
    if fixed is not None and broken is not None and fixed <= broken:
        raise entry.error(f"fixed_in: {row.fixed_in} is not after {row.release}")


SECTIONS += (
    Section(
        "driver_branches",
        DriverBranch,
        label="generation",
        fields={
            "generation": TEXT,
            "ccs": CCS,
            "last_branch": TEXT,
            "max_cuda": OPTIONAL_VERSION,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.generation.lower(),
    ),
    Section(
        "pci_devices",
        PciGeneration,
        label="generation",
        fields={"generation": TEXT, "ids": PCI_IDS, "source": SOURCE, "verified": FLAG},
        unique=lambda r: r.generation.lower(),
        whole=_pci_ids_are_disjoint,
    ),
    Section(
        "jetson",
        JetsonRelease,
        label="jetpack",
        fields={
            "jetpack": VERSION,
            "l4t": VERSION,
            "cuda": OPTIONAL_VERSION,
            "cudnn": OPTIONAL_VERSION,
            "python": OPTIONAL_TEXT,
            "torch": OPTIONAL_TEXTS,
            "tensorflow": OPTIONAL_TEXTS,
            "index_url": OPTIONAL_TEXT,
            "notes": OPTIONAL_TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        unique=lambda r: r.jetpack,
    ),
    _plugin_section("tensorflow_metal"),
    _plugin_section("tensorflow_directml"),
    Section(
        "known_issues",
        KnownIssue,
        label="release",
        fields={
            "framework": TEXT,
            "release": VERSION,
            "platform": TEXT,
            "kind": TEXT,
            "fixed_in": VERSION,
            "issue": TEXT,
            "symptom": OPTIONAL_TEXT,
            "source": SOURCE,
            "verified": FLAG,
        },
        check=_known_issue_is_complete,
        unique=lambda r: (r.framework, r.release, r.platform, r.kind),
    ),
    Section(
        "torch_mps_macos",
        MpsFloor,
        label="torch",
        fields={"torch": VERSION, "macos": VERSION, "source": SOURCE, "verified": FLAG},
        unique=lambda r: r.torch,
    ),
)

# `platform:` is a mapping of named facts, each {value, source, verified}; the reader of each value.
PLATFORM_FIELDS: dict[str, Reader] = {
    "tensorflow_last_windows_gpu": VERSION,
    "tensorflow_first_and_cuda": VERSION,
    "tensorflow_last_macos_gpu": VERSION,
    "tensorflow_gpu_stub_from": VERSION,
    "tensorflow_last_macos_x86": VERSION,
    "tensorflow_wsl_min_driver_windows": VERSION,
    "torch_last_conda_channel": VERSION,
    "wsl_lib_dir": TEXT,
    "jax_windows_native_gpu": TEXT,
    "jax_wsl2_gpu": TEXT,
    "jax_macos": TEXT,
    "wsl_gpu_min_windows_build": INTEGER,
}


def _platform(raw: object, fail: Callable[[str], MatrixError]) -> Platform:
    if not isinstance(raw, dict):
        raise fail(f"platform: expected a mapping, got {_kind(raw)}")
    for name in raw:
        if name not in PLATFORM_FIELDS:
            raise fail(f"platform: unknown key {excerpt(str(name))}")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, read in PLATFORM_FIELDS.items():
        if name not in raw:
            raise fail(f"platform: missing '{name}'")
        entry = _Entry(raw[name], f"platform[{name}]", fail)
        values[name] = read(entry, "value")
        sources[name] = entry.text("source")
        entry.flag("verified", True)
        entry.close()
    return Platform(**values, sources=sources)


TOP_LEVEL = frozenset({"schema", "last_verified", "sources", "platform", *(s.name for s in SECTIONS)})


def parse_matrix(
    text: str, name: str = MATRIX_FILE, source: str | None = None, *, trusted: bool = False
) -> Matrix:
    """Validate matrix YAML `text`; `name` prefixes every error message. Only the packaged file is
    `trusted` (parsed without the depth and alias-expansion pre-pass, which doubles the time)."""

    def fail(message: str) -> MatrixError:
        return MatrixError(f"{name}: {message}")

    def parse() -> Any:
        try:
            return parse_yaml(text, bounded=not trusted)
        except UntrustedInputError as exc:
            raise fail(str(exc)) from None

    document, keep = matrix_cache.document(text, parse)  # the YAML's document, parsed once per text
    if not isinstance(document, dict):
        raise fail(f"expected a mapping of sections, got {_kind(document)}")
    schema = document.get("schema")
    if schema != SCHEMA_VERSION:
        raise fail(f"schema: {excerpt(schema)} is not {SCHEMA_VERSION}")
    unknown = sorted(str(k) for k in document if k not in TOP_LEVEL)
    if unknown:
        raise fail(f"unknown section {', '.join(excerpt(u) for u in unknown[:5])}")
    last_verified = document.get("last_verified") or ""
    if not isinstance(last_verified, str):
        raise fail(f"last_verified: {excerpt(last_verified)} is not text")
    platform = _platform(document.get("platform"), fail)
    rows: dict[str, Any] = {section.attribute: _rows(section, document, fail) for section in SECTIONS}
    rows["tensorflow_prereleases"] = tuple(r for r in rows["tensorflow"] if r.prerelease)
    rows["tensorflow"] = tuple(r for r in rows["tensorflow"] if not r.prerelease)
    matrix = Matrix(source=source or name, last_verified=last_verified, platform=platform, **rows)
    keep()
    return matrix


def default_matrix_path() -> Path:
    """The packaged matrix, or the repository-root file in a source checkout."""
    packaged = Path(__file__).resolve().parent / MATRIX_FILE
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / MATRIX_FILE


@functools.lru_cache(maxsize=1)
def _load_default() -> Matrix:
    path = default_matrix_path()
    return parse_matrix(path.read_text(encoding="utf-8"), name=path.name, source=str(path), trusted=True)


MAX_MATRIX_BYTES = 4 * 1024 * 1024  # the real file is about 100 KB


def load_matrix(path: str | None = None) -> Matrix:
    """Load and validate a matrix file (default: the packaged one, cached).

    Raises MatrixError (message names the file and entry) for an invalid file, OSError when it
    cannot be read.
    """
    if path is None:
        return _load_default()
    try:
        text = read_bounded(path, MAX_MATRIX_BYTES)
    except UntrustedInputError as exc:
        raise MatrixError(f"{path}: {exc}") from None
    return parse_matrix(text, name=path, source=str(Path(path).resolve()))


def clear_cache() -> None:
    _load_default.cache_clear()


__all__ = [
    "Architecture",
    "CudaFamily",
    "CudaRuntime",
    "CudaToolkit",
    "CudnnMajor",
    "CudnnRelease",
    "DriverBranch",
    "DriverRequirement",
    "GpuModel",
    "JaxCuda",
    "JaxRelease",
    "JetsonRelease",
    "KernelSupport",
    "Matrix",
    "MatrixError",
    "PciGeneration",
    "Platform",
    "PluginRelease",
    "System",
    "TensorFlowBuild",
    "TensorFlowRelease",
    "TorchRelease",
    "TorchVariant",
    "clear_cache",
    "cudnn_version_from_int",
    "default_matrix_path",
    "driver_at_least",
    "is_short_driver",
    "kernel_support",
    "load_matrix",
    "parse_matrix",
]
