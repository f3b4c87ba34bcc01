"""`gpudoctor plan`: which release of a framework to install on a machine, and the exact commands.

Collect, then judge, then render, like `check`: `machine_from_facts` reads a machine's facts (or the
options that stand in for them), `make_plan` walks the matrix from the newest release down and
keeps the first candidate that fits, and `planned_facts` builds the machine as the plan would leave
it. The real engine (`engine.diagnose`) judges that planned machine: a candidate on which
`gpudoctor check` would report an error is never proposed, so the plan and the doctor agree by
construction. Everything comes from the facts and the matrix; nothing is looked up on the network.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from gpudoctor.facts import (
    CondaFacts,
    CondaPackage,
    Distribution,
    DriverFacts,
    EnvironmentFacts,
    Facts,
    GpuFacts,
    JaxFacts,
    LibrariesFacts,
    LibraryFile,
    LibraryLocation,
    PlatformFacts,
    PythonFacts,
    TargetFacts,
    TensorFlowFacts,
    TorchDevice,
    TorchFacts,
)
from gpudoctor.matrix import (
    DriverBranch,
    JaxCuda,
    JaxRelease,
    KernelSupport,
    Matrix,
    PluginRelease,
    System,
    TensorFlowBuild,
    TensorFlowRelease,
    TorchRelease,
    TorchVariant,
    driver_at_least,
    kernel_support,
    parse_version,
)
from gpudoctor.model import Finding, Fix, Report, Severity, Shell
from gpudoctor.rules.views import normalise_targets

Framework = Literal["tensorflow", "torch", "jax"]
FRAMEWORKS: tuple[Framework, ...] = ("tensorflow", "torch", "jax")
Flavor = Literal["linux", "wsl", "windows", "macos"]
Manager = Literal["pip", "conda"]
Status = Literal["ready", "after-changes", "none"]
StepKind = Literal["environment", "install", "configure", "check"]
Need = Literal["python", "driver", "gpu", "platform", "doctor"]
Support = Literal["native", "ptx", "unknown"]  # how this machine's GPUs run a build's kernels

FRAMEWORK_NAMES: dict[Framework, str] = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}
ALIASES: dict[str, Framework] = {
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "torch": "torch",
    "pytorch": "torch",
    "jax": "jax",
}
TORCH_WHL = "https://download.pytorch.org/whl"
JAX_CUDA_RELEASES = "https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"
CUDA_ARCHIVE = "https://developer.nvidia.com/cuda-toolkit-archive"
CUDNN_ARCHIVE = "https://developer.nvidia.com/rdp/cudnn-archive"
WINDOWS_CUDA_ROOT = "C:\\Program Files\\NVIDIA GPU Computing Toolkit\\CUDA"
CUDA_CACHE_BYTES = "4294967296"
ACTIVATE_D = "$CONDA_PREFIX/etc/conda/activate.d"
# single-quoted for printf: the activate script itself expands the variables, never adding an empty entry
CONDA_LIBRARY_PATH_LINE = (
    "'export LD_LIBRARY_PATH=\"$CONDA_PREFIX/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}\"'"
)
PLANNED_HOME = "/home/you"  # planned facts name folders; a real run replaces them
PLANNED_WINDOWS_HOME = "C:\\Users\\you"
# set by the environment the user is in now; the plan's own environment replaces them
ENVIRONMENT_OF_THE_OLD_SHELL = frozenset(
    {"VIRTUAL_ENV", "CONDA_PREFIX", "CONDA_DEFAULT_ENV", "CONDA_PYTHON_EXE"}
)
FIRST_NUMPY_2_TF = Version("2.18")  # TensorFlow before 2.18 breaks on NumPy 2 (older ones do not say so)


class PlanError(ValueError):
    """Bad input for a plan (an unknown framework, release, GPU or version): one clear line, exit 2."""


# ----------------------------------------------------------------------------------------------
# The machine a plan is for


@dataclass(frozen=True, kw_only=True)
class Machine:
    """What a plan depends on, each with where it came from (this machine, a facts file, an option)."""

    platform: PlatformFacts = field(default_factory=PlatformFacts)
    flavor: Flavor = "linux"
    driver: str | None = None  # "550.54.14"; None = no working NVIDIA driver
    driver_cuda: str | None = None  # the highest CUDA it supports, "12.4"
    gpus: tuple[tuple[str, str | None], ...] = ()  # (name, compute capability)
    python: str | None = None  # "3.11.7"
    manager: Manager = "pip"
    jetson: bool = False
    origins: dict[str, str] = field(default_factory=dict)  # "driver" -> "--driver", "NVML", ...
    driver_facts: DriverFacts | None = None  # the real driver facts, kept for the planned machine
    environment: dict[str, str] = field(default_factory=dict)
    seen_driver: DriverFacts | None = None  # the driver as the facts say, working or not

    @property
    def system(self) -> System:
        """Whose driver numbers apply: WSL 2 runs the Windows driver."""
        return "windows" if self.flavor in ("windows", "wsl") else "linux"

    @property
    def wheels(self) -> System:
        """Whose framework wheels apply: WSL 2 runs the Linux ones."""
        return "windows" if self.flavor == "windows" else "linux"

    @property
    def shell(self) -> Shell:
        return "powershell" if self.flavor == "windows" else "bash"

    @property
    def arch(self) -> str:
        return (self.platform.machine or "x86_64").lower()

    @property
    def python_series(self) -> str | None:
        return _series(self.python) if self.python else None

    @property
    def ccs(self) -> list[str]:
        return [cc for _, cc in self.gpus if cc]

    def describe(self) -> str:
        where = {"linux": "Linux", "wsl": "WSL 2", "windows": "native Windows", "macos": "macOS"}[self.flavor]
        if self.jetson:
            where = "Jetson (Linux for Tegra)"
        if self.flavor == "windows" and self.platform.windows_build:
            where += f" (build {self.platform.windows_build})"
        if self.platform.container:
            where += f" in a {self.platform.container} container"
        gpus = ", ".join(f"{n} ({cc})" if cc else n for n, cc in self.gpus) or "no NVIDIA GPU"
        driver = f"driver {self.driver}" if self.driver else "no NVIDIA driver"
        if self.driver and self.driver_cuda:
            driver += f" (CUDA {self.driver_cuda})"
        python = f"Python {self.python}" if self.python else "Python unknown"
        return f"{where} {self.platform.machine or self.arch}; {gpus}; {driver}; {python}; {self.manager}"


def _flavor(platform: PlatformFacts | None) -> Flavor:
    system = (platform.system if platform else "").lower()
    if system == "windows":
        return "windows"
    if system == "darwin":
        return "macos"
    if system == "linux" and platform is not None and platform.wsl:
        return "wsl"
    return "linux"


_JETSON_GPU = re.compile(r"\b(orin|xavier|jetson|thor|tegra|tx1|tx2)\b", re.IGNORECASE)


def _is_jetson(platform: PlatformFacts | None, gpus: Iterable[tuple[str, str | None]]) -> bool:
    """A Jetson: its integrated GPU's name says so (Orin, Xavier, Thor, TX2, Nano)."""
    if platform is not None and getattr(platform, "jetson", None):
        return True
    return any(_JETSON_GPU.search(name) for name, _ in gpus)


def _short(version: str) -> bool:
    """A driver typed as "535.54": any 535.54 release, so it meets a 535.54.03 minimum."""
    parts = version.strip().split(".")
    return len(parts) == 2 and all(p.isdigit() for p in parts)


def machine_from_facts(
    facts: Facts,
    matrix: Matrix,
    *,
    origin: str = "this machine",
    driver: str | None = None,
    gpu: str | None = None,
    compute_capability: str | None = None,
    python_version: str | None = None,
    manager: Manager | None = None,
    os_name: Flavor | None = None,
) -> Machine:
    """The machine to plan for: the facts, with each option replacing what the facts say."""
    origins: dict[str, str] = {}
    platform = facts.platform or PlatformFacts()
    if os_name is not None:
        system = {"linux": "Linux", "wsl": "Linux", "windows": "Windows", "macos": "Darwin"}[os_name]
        default_arch = {"macos": "arm64", "windows": "AMD64"}.get(os_name, "x86_64")
        machine = platform.machine if platform.machine and platform.system == system else default_arch
        platform = dataclasses.replace(
            platform,
            system=system,
            machine=machine,
            wsl=2 if os_name == "wsl" else 0,
            wsl_lib_dir=matrix.platform.wsl_lib_dir if os_name == "wsl" else None,
            wsl_libs=("libcuda.so", "libcuda.so.1", "libnvidia-ml.so.1") if os_name == "wsl" else (),
        )
        origins["os"] = "--os"
    elif facts.platform is not None:
        origins["os"] = origin
    flavor = _flavor(platform)

    d = facts.driver
    working = d is not None and d.nvml_state == "ok"
    driver_version = d.driver_version if working and d is not None else None
    driver_cuda = d.cuda_driver_version if working and d is not None else None
    if working:
        origins["driver"] = origin
    if driver is not None:
        if parse_version(driver) is None:
            raise PlanError(f"--driver {driver}: not a driver version like 550.54.14")
        driver_version = driver.strip()
        driver_cuda = matrix.newest_cuda_for_driver(
            f"{driver_version}.999" if _short(driver_version) else driver_version, _sys(flavor)
        )
        origins["driver"] = "--driver" + (
            f" (read as the first {driver_version}.x)" if _short(driver_version) else ""
        )

    gpus: list[tuple[str, str | None]] = []
    if d is not None and working:
        for g in d.gpus:
            gpus.append(
                (g.name or f"GPU {g.index}", g.compute_capability or matrix.compute_capability_for(g.name))
            )
        if gpus:
            origins["gpu"] = origin
    if gpu is not None or compute_capability is not None:
        cc = compute_capability
        if cc is not None and not re.fullmatch(r"\d+\.\d", cc.strip()):
            raise PlanError(f"--compute-capability {cc}: not a compute capability like 8.6")
        if cc is None and gpu is not None:
            cc = matrix.compute_capability_for(gpu)
            if cc is None:
                raise PlanError(
                    f"--gpu {gpu!r}: not a GPU model the matrix knows; give its compute capability with "
                    "--compute-capability (e.g. 8.6)"
                )
        name = gpu or (gpus[0][0] if gpus else f"a GPU of compute capability {cc}")
        gpus = [(name, cc.strip() if cc else None)]
        origins["gpu"] = "--gpu" if gpu is not None and compute_capability is None else "--compute-capability"

    py = facts.python.version if facts.python and facts.python.version and not facts.python.error else None
    if py:
        origins["python"] = origin
    if python_version is not None:
        if parse_version(python_version) is None or not re.fullmatch(
            r"3\.\d+(\.\d+)?", python_version.strip()
        ):
            raise PlanError(f"--python-version {python_version}: not a Python 3 version like 3.11")
        py = python_version.strip()
        origins["python"] = "--python-version"

    chosen: Manager = "conda" if facts.conda is not None and facts.conda.is_target else "pip"
    origins["manager"] = "the target interpreter's environment" if facts.conda is not None else "default"
    if manager is not None:
        chosen = manager
        origins["manager"] = "--manager"

    return Machine(
        platform=platform,
        flavor=flavor,
        driver=driver_version,
        driver_cuda=driver_cuda,
        gpus=tuple(gpus),
        python=py,
        manager=chosen,
        jetson=_is_jetson(platform, gpus),
        origins=origins,
        driver_facts=d if working and driver is None and gpu is None and compute_capability is None else None,
        environment=dict(facts.environment.variables) if facts.environment else {},
        seen_driver=d if driver is None and gpu is None and compute_capability is None else None,
    )


def _sys(flavor: Flavor) -> System:
    return "windows" if flavor in ("windows", "wsl") else "linux"


# ----------------------------------------------------------------------------------------------
# The plan


@dataclass(frozen=True, kw_only=True)
class Step:
    """One step of a plan: a sentence and the exact commands, in order (gpudoctor never runs them)."""

    summary: str
    commands: tuple[str, ...] = ()
    kind: StepKind = "install"
    language: Shell = "bash"
    needs_admin: bool = False
    needs_reboot: bool = False


@dataclass(frozen=True, kw_only=True)
class Requirement:
    """One thing a release needs, what this machine has, and whether that is enough."""

    need: Need
    text: str  # "NVIDIA driver ≥ 452.39"
    have: str  # "537.13"
    ok: bool | None  # None: not known for this machine
    change: tuple[Step, ...] = ()  # what would make it so, when it is not
    after: str | None = None  # the value once changed: the driver or Windows build the change installs


@dataclass(frozen=True, kw_only=True)
class Install:
    """What the plan installs: enough to build the machine as the plan leaves it."""

    release: str  # the series, "2.10", or a JAX run "0.7.2"
    version: str  # the version the planned machine records, "2.10.0"
    python: str  # the environment's Python series, "3.10"
    env_name: str
    pip: tuple[tuple[str, str], ...] = ()  # (distribution, version) pip installs
    conda: tuple[tuple[str, str], ...] = ()  # (package, version) conda installs
    variant: str | None = None  # torch "cu124", JAX "cuda12"
    cuda: str | None = None
    cudnn: str | None = None
    targets: tuple[str, ...] = ()
    device: Literal["cuda", "mps", "metal"] = "cuda"
    system_cuda: bool = False  # CUDA and cuDNN installed system-wide (native Windows, pip)


@dataclass(frozen=True, kw_only=True)
class Plan:
    framework: Framework
    requested: str | None
    machine: Machine
    status: Status
    install: Install | None = None
    requirements: tuple[Requirement, ...] = ()
    steps: tuple[Step, ...] = ()
    changes: tuple[Step, ...] = ()  # what must change on the machine before the steps work
    problems: tuple[str, ...] = ()  # why nothing (newer) fits
    ways_out: tuple[Step, ...] = ()
    notes: tuple[str, ...] = ()
    doctor: tuple[str, ...] = ()  # what `gpudoctor check` says about the planned machine (warnings)
    sources: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return FRAMEWORK_NAMES[self.framework]

    @property
    def headline(self) -> str:
        label = f"{self.name} {self.install.release}" if self.install else self.name
        if self.status == "ready":
            extra = f" ({self.install.variant})" if self.install and self.install.variant else ""
            return f"{label}{extra} will use the GPU on this machine"
        if self.status == "after-changes":
            return f"{label} needs changes to this machine first"
        return f"No {self.name} release will use a GPU on this machine" + (
            f" ({self.requested} asked)" if self.requested else ""
        )


def exit_code(plans: Sequence[Plan]) -> int:
    """0 when a plan is ready to run on this machine (for --all: at least one), else 1."""
    return 0 if any(p.status == "ready" for p in plans) else 1


def normalise_framework(name: str) -> Framework:
    found = ALIASES.get(name.strip().lower())
    if found is None:
        raise PlanError(f"{name!r} is not a framework gpudoctor plans for: tensorflow, torch or jax")
    return found


# ----------------------------------------------------------------------------------------------
# Candidates: one release (and build) of a framework, with what it needs


@dataclass(frozen=True, kw_only=True)
class _Candidate:
    framework: Framework
    release: str
    python: SpecifierSet
    cuda: str | None
    cudnn: str | None
    targets: tuple[str, ...]
    variant: str | None = None
    device: Literal["cuda", "mps", "metal"] = "cuda"
    min_driver: str | None = None  # None: from the CUDA version
    min_cc: str | None = None
    tf: TensorFlowRelease | None = None
    tf_row: TensorFlowBuild | None = None
    torch: TorchRelease | None = None
    torch_variant: TorchVariant | None = None
    jax: JaxRelease | None = None
    jax_plugin: JaxCuda | None = None
    metal: PluginRelease | None = None  # the tensorflow-metal release for a TensorFlow on macOS
    verified: bool = True
    source: str = ""


def _key(version: str) -> Version:
    try:
        return Version(version)
    except InvalidVersion:
        return Version("0")


def _series(version: str | None) -> str | None:
    parsed = parse_version(version or "")
    if parsed is None:
        return None
    release = (*parsed.release, 0)
    return f"{release[0]}.{release[1]}"


def _cuda_key(cuda: str | None) -> tuple[int, int]:
    parsed = parse_version(cuda or "")
    if parsed is None:
        return (0, 0)
    release = (*parsed.release, 0)
    return release[0], release[1]


def _tf_candidates(matrix: Matrix, machine: Machine, requested: str | None) -> list[_Candidate]:
    rows = sorted(matrix.tensorflow, key=lambda r: _key(r.version), reverse=True)
    if requested is not None:
        rows = [r for r in rows if r.version == _series(requested)]
    found = []
    for release in rows:
        if machine.flavor == "macos":
            plugin = next(iter(matrix.tensorflow_metal_for(f"{release.version}.0")), None)
            python = release.python
            if plugin is not None and plugin.python is not None:
                python = SpecifierSet(f"{release.python},{plugin.python}")
            found.append(
                _Candidate(
                    framework="tensorflow",
                    release=release.version,
                    python=python,
                    cuda=None,
                    cudnn=None,
                    targets=(),
                    device="metal",
                    tf=release,
                    metal=plugin,
                    verified=plugin is not None and plugin.verified,
                    source=plugin.source if plugin is not None else release.source,
                )
            )
            continue
        row = release.windows if machine.wheels == "windows" else release.linux
        if row is None:
            continue
        found.append(
            _Candidate(
                framework="tensorflow",
                release=release.version,
                python=row.python or release.python,
                cuda=row.cuda,
                cudnn=row.cudnn,
                targets=row.compute_capabilities,
                tf=release,
                tf_row=row,
                verified=release.verified and row.verified and row.compute_capabilities_verified,
                source=row.source,
            )
        )
    return found


def _torch_candidates(matrix: Matrix, machine: Machine, requested: str | None) -> list[_Candidate]:
    rows = sorted(matrix.torch, key=lambda r: _key(r.version), reverse=True)
    if requested is not None:
        rows = [r for r in rows if r.version == _series(requested)]
    found = []
    for release in rows:
        if machine.flavor == "macos":
            found.append(
                _Candidate(
                    framework="torch",
                    release=release.version,
                    python=release.python,
                    cuda=None,
                    cudnn=None,
                    targets=(),
                    device="mps",
                    torch=release,
                    source=release.source,
                )
            )
            continue
        variants = sorted(
            (v for v in release.variants if v.cuda), key=lambda v: _cuda_key(v.cuda), reverse=True
        )
        for variant in variants:
            targets = (
                variant.windows_arch_list
                if machine.flavor == "windows" and variant.windows_arch_list
                else variant.arch_list
            )
            found.append(
                _Candidate(
                    framework="torch",
                    release=release.version,
                    python=release.python,
                    cuda=variant.cuda,
                    cudnn=variant.cudnn,
                    targets=targets,
                    variant=variant.name,
                    torch=release,
                    torch_variant=variant,
                    verified=release.verified and variant.verified,
                    source=release.source,
                )
            )
    return found


def _jax_candidates(matrix: Matrix, machine: Machine, requested: str | None) -> list[_Candidate]:
    runs = sorted(matrix.jax, key=lambda r: _key(r.version), reverse=True)
    if requested is not None:
        run = matrix.jax_release(requested)
        runs = [run] if run is not None else []
    floor = matrix.jax_cuda(12)  # the doctor holds older CUDA wheels to the CUDA 12 floor too
    found = []
    for run in runs:
        for major in sorted(run.cuda, reverse=True):
            plugin = matrix.jax_cuda(major)
            extra = _jax_extra(run, major)
            if extra is None:
                continue
            python = run.python
            if plugin is not None and plugin.python is not None:
                python = SpecifierSet(f"{run.python},{plugin.python}")
            family = matrix.cuda_family(major)
            anchor = plugin or floor
            min_driver = None
            if plugin is not None and machine.system == "linux":
                min_driver = plugin.min_driver_linux
            elif family is not None:
                min_driver = family.linux if machine.system == "linux" else family.windows
            found.append(
                _Candidate(
                    framework="jax",
                    release=run.version,
                    python=python,
                    cuda=str(major),
                    cudnn=run.min_cudnn.get(major) or (plugin.min_cudnn if plugin else None),
                    targets=matrix.jax_targets(run.version, major),
                    variant=extra,
                    min_driver=min_driver,
                    min_cc=anchor.min_compute_capability if anchor else None,
                    jax=run,
                    jax_plugin=plugin,
                    verified=run.verified and (plugin.verified if plugin else True),
                    source=run.source,
                )
            )
    return found


def _jax_extra(run: JaxRelease, major: int) -> str | None:
    for extra in (f"cuda{major}", f"cuda{major}_pip"):
        if extra in run.extras:
            return extra
    return None


def _candidates(
    matrix: Matrix, machine: Machine, framework: Framework, requested: str | None
) -> list[_Candidate]:
    if framework == "tensorflow":
        return _tf_candidates(matrix, machine, requested)
    if framework == "torch":
        return _torch_candidates(matrix, machine, requested)
    return _jax_candidates(matrix, machine, requested)


def known_releases(matrix: Matrix, framework: Framework) -> list[str]:
    if framework == "tensorflow":
        rows = [r.version for r in matrix.tensorflow]
    elif framework == "torch":
        rows = [r.version for r in matrix.torch]
    else:
        rows = [r.version for r in matrix.jax]
    return sorted(rows, key=_key)


# ----------------------------------------------------------------------------------------------
# Judging a candidate against the machine


def _at_least(version: str, minimum: str) -> bool:
    return driver_at_least(version, minimum)


def _python_minors(spec: SpecifierSet, matrix: Matrix) -> list[str]:
    newest = _newest_python(matrix)
    return [f"3.{m}" for m in range(newest + 1) if spec.contains(f"3.{m}.0", prereleases=True)]


def _newest_python(matrix: Matrix) -> int:
    """The newest Python 3 minor any matrix row names as supported (from their upper bounds)."""
    newest = 11
    specs = [r.python for r in matrix.tensorflow] + [r.python for r in matrix.torch]
    for spec in specs:
        for s in spec:
            if s.operator == "<" and s.version.startswith("3."):
                newest = max(newest, int(s.version.split(".")[1]) - 1)
    return newest


def _python_text(minors: list[str]) -> str:
    if not minors:
        return "no Python 3"
    return minors[0] if len(minors) == 1 else f"{minors[0]}–{minors[-1]}"


def _min_driver(matrix: Matrix, candidate: _Candidate, machine: Machine, support: Support) -> str | None:
    """The oldest driver that runs this build on this machine; PTX-only GPUs need the full toolkit driver."""
    if candidate.min_driver is not None:
        return candidate.min_driver
    if candidate.cuda is None:
        return None
    requirement = matrix.driver_requirement(candidate.cuda, machine.system)
    if requirement is None:
        return None
    if support == "ptx" and requirement.toolkit_minimum:
        return requirement.toolkit_minimum
    return requirement.floor


def _support(candidate: _Candidate, cc: str) -> KernelSupport | None:
    try:
        return kernel_support(cc, normalise_targets(candidate.targets))
    except ValueError:
        return None


def _gpu_support(candidate: _Candidate, machine: Machine) -> tuple[Support, list[str]]:
    """The worst kernel support over this machine's GPUs ("ptx" beats "native"; "unknown" where the
    matrix lists no build targets or the GPU's compute capability is unknown), and the GPUs left out."""
    if candidate.device != "cuda":
        return "native", []
    worst: Support = "native"
    missing = []
    for name, cc in machine.gpus:
        support: KernelSupport | None
        if cc is None:
            worst = "unknown"
            continue
        if candidate.min_cc is not None and _cuda_key(cc) < _cuda_key(candidate.min_cc):
            support = None
        elif candidate.targets:
            support = _support(candidate, cc)
        elif candidate.min_cc is not None:
            support = "native"
        else:
            worst = "unknown"
            continue
        if support is None:
            missing.append(f"{name} ({cc})")
        elif support == "ptx" and worst == "native":
            worst = "ptx"
    return worst, missing


def _requirements(
    matrix: Matrix, candidate: _Candidate, machine: Machine, python: str
) -> tuple[list[Requirement], Support]:
    reqs: list[Requirement] = []
    minors = _python_minors(candidate.python, matrix)
    have_py = machine.python_series
    reqs.append(
        Requirement(
            need="python",
            text=f"Python {_python_text(minors)}",
            have=(have_py or "unknown")
            + ("" if have_py == python or have_py is None else f" (the plan's environment gets {python})"),
            ok=True if have_py is None or have_py == python or machine.manager == "conda" else None,
        )
    )
    support, missing = _gpu_support(candidate, machine)
    if candidate.device == "cuda":
        if not machine.gpus:
            reqs.append(Requirement(need="gpu", text="an NVIDIA GPU", have="none found", ok=False))
        elif missing:
            what = (
                f"compute capability ≥ {candidate.min_cc}"
                if candidate.min_cc
                else "kernels for " + ", ".join(candidate.targets)
            )
            reqs.append(Requirement(need="gpu", text=what, have="; ".join(missing) + ": none", ok=False))
        elif not machine.ccs:
            reqs.append(
                Requirement(
                    need="gpu", text="kernels for this GPU", have="compute capability unknown", ok=None
                )
            )
        else:
            text = (
                f"compute capability ≥ {candidate.min_cc}"
                if candidate.min_cc
                else (
                    "kernels for " + ", ".join(candidate.targets)
                    if candidate.targets
                    else "kernels for this GPU"
                )
            )
            have = ", ".join(f"{cc}" for cc in machine.ccs) + (" (through PTX)" if support == "ptx" else "")
            reqs.append(
                Requirement(
                    need="gpu",
                    text=text,
                    have=have,
                    ok=True if candidate.targets or candidate.min_cc else None,
                )
            )
        minimum = _min_driver(matrix, candidate, machine, support)
        if minimum is not None:
            reqs.append(_driver_requirement(matrix, candidate, machine, minimum))
    reqs.extend(_platform_requirements(matrix, candidate, machine))
    return reqs, support


def _legacy_branch(matrix: Matrix, machine: Machine) -> DriverBranch | None:
    """The oldest last driver branch among this machine's GPUs (Kepler: 470), or None when current
    drivers still support them all."""
    branches = [b for cc in machine.ccs if (b := matrix.last_driver_branch_for_cc(cc)) is not None]
    return min(branches, key=lambda b: int(b.last_branch), default=None)


def _driver_requirement(matrix: Matrix, candidate: _Candidate, machine: Machine, minimum: str) -> Requirement:
    where = "Windows " if machine.system == "windows" else ""
    cuda = f" (CUDA {candidate.cuda})" if candidate.cuda and "." in candidate.cuda else ""
    text = f"NVIDIA {where}driver ≥ {minimum}{cuda}"
    ok = machine.driver is not None and driver_at_least(machine.driver, minimum)
    have = machine.driver or "none"
    if ok:
        return Requirement(need="driver", text=text, have=have, ok=True)
    branch = _legacy_branch(matrix, machine)
    minimum_branch = parse_version(minimum)
    if (
        branch is not None
        and minimum_branch is not None
        and minimum_branch.release[0] > int(branch.last_branch)
    ):
        gpus = ", ".join(f"{n} ({cc})" for n, cc in machine.gpus if cc in branch.ccs)
        return Requirement(
            need="driver",
            text=text,
            have=f"{have}; {branch.generation} GPUs ({gpus}) stop at driver branch R{branch.last_branch}"
            + (f" (CUDA ≤ {branch.max_cuda})" if branch.max_cuda else ""),
            ok=False,
        )
    step = _driver_step(matrix, machine, minimum)
    if branch is not None:
        step = dataclasses.replace(
            step,
            summary=f"{step.summary} ({branch.generation} GPUs stop at branch R{branch.last_branch}: stay on it)",
        )
    return Requirement(need="driver", text=text, have=have, ok=False, change=(step,), after=minimum)


def _platform_requirements(matrix: Matrix, candidate: _Candidate, machine: Machine) -> list[Requirement]:
    reqs: list[Requirement] = []
    p = matrix.platform
    if machine.flavor == "wsl":
        build = machine.platform.windows_build
        minimum = p.wsl_gpu_min_windows_build
        ok = None if build is None else build >= minimum
        reqs.append(
            Requirement(
                need="platform",
                text=f"Windows build ≥ {minimum} for the GPU in WSL 2",
                have=str(build) if build is not None else "unknown",
                ok=ok,
                change=() if ok is not False else (_windows_update_step(),),
                after=None if ok is not False else str(minimum),
            )
        )
    if machine.flavor == "macos":
        arm = machine.arch in ("arm64", "aarch64")
        if candidate.framework == "jax":
            reqs.append(Requirement(need="platform", text="an NVIDIA GPU on Linux", have="macOS", ok=False))
        else:
            reqs.append(Requirement(need="platform", text="Apple silicon (Metal)", have=machine.arch, ok=arm))
            if candidate.framework == "tensorflow":
                reqs.append(
                    Requirement(
                        need="platform",
                        text=f"a tensorflow-metal release for TensorFlow {candidate.release}",
                        have=f"tensorflow-metal {candidate.metal.version}"
                        if candidate.metal
                        else "none in the matrix",
                        ok=candidate.metal is not None,
                    )
                )
    if machine.flavor == "windows" and candidate.framework == "jax":
        reqs.append(
            Requirement(
                need="platform",
                text="Linux or WSL 2 (JAX has no NVIDIA GPU wheels for native Windows)",
                have="native Windows",
                ok=False,
                change=(_wsl_step(),),
            )
        )
    if machine.jetson:
        reqs.append(
            Requirement(
                need="platform",
                text=f"{FRAMEWORK_NAMES[candidate.framework]} wheels built for Jetson (JetPack)",
                have="the matrix lists none; PyPI wheels are for SBSA servers and x86_64",
                ok=False,
            )
        )
    elif (
        machine.flavor in ("linux", "wsl")
        and machine.arch in ("aarch64", "arm64")
        and candidate.framework == "tensorflow"
    ):
        reqs.append(
            Requirement(
                need="platform",
                text="x86_64 (TensorFlow's CUDA wheels in the matrix are x86_64 builds)",
                have=machine.arch,
                ok=False,
            )
        )
    return reqs


def _driver_step(matrix: Matrix, machine: Machine, minimum: str) -> Step:
    from gpudoctor.rules.context import RuleContext
    from gpudoctor.rules.recipes import install_driver_fixes

    if machine.platform.container:
        return Step(
            summary=f"On the host, not in this {machine.platform.container} container (a container runs on the "
            f"host's driver): install NVIDIA driver {minimum} or newer there, then start the container again",
            kind="environment",
            needs_admin=True,
            needs_reboot=True,
        )
    ctx = RuleContext(facts=Facts(platform=machine.platform), matrix=matrix)
    fixes: tuple[Fix, ...] = install_driver_fixes(ctx, minimum=minimum)
    fix = fixes[0] if fixes else Fix(summary="Install the NVIDIA driver")
    return Step(
        summary=f"Install NVIDIA driver {minimum} or newer. {fix.summary}",
        commands=fix.commands,
        kind="environment",
        language=fix.shell,
        needs_admin=fix.needs_admin,
        needs_reboot=True,
    )


def _windows_update_step() -> Step:
    return Step(
        summary="In Windows, install the feature updates up to Windows 10 21H2 or Windows 11, then update WSL",
        commands=("Start-Process ms-settings:windowsupdate", "wsl --update"),
        kind="environment",
        language="powershell",
        needs_admin=True,
        needs_reboot=True,
    )


def _wsl_step() -> Step:
    return Step(
        summary="Install WSL 2 with Ubuntu (Windows 10 build 19044 or later), then run the Linux plan inside it; "
        "the Windows NVIDIA driver serves the GPU there (install no Linux driver in WSL)",
        commands=("wsl --install -d Ubuntu",),
        kind="environment",
        language="powershell",
        needs_admin=True,
        needs_reboot=True,
    )


def _pick_python(matrix: Matrix, candidate: _Candidate, machine: Machine) -> str | None:
    minors = _python_minors(candidate.python, matrix)
    if not minors:
        return None
    have = machine.python_series
    if have in minors:
        return have
    return minors[-1]


# ----------------------------------------------------------------------------------------------
# The install and its commands


def _env_name(framework: Framework, release: str) -> str:
    return {"tensorflow": "tf", "torch": "torch", "jax": "jax"}[framework] + "-" + release


def _lowest(spec: str) -> str:
    """The oldest version a pin admits ("==8.9.4.25" -> "8.9.4.25", ">=9.3.0.75,<10.0" -> "9.3.0.75")."""
    for s in SpecifierSet(spec):
        if s.operator in ("==", ">=", "~=", "==="):
            return s.version.removesuffix(".*")
    return "0"


def _pip_cmd(machine: Machine, *args: str) -> str:
    return " ".join(["python", "-m", "pip", *(_quote(a, machine.shell) for a in args)])


def _quote(arg: str, shell: Shell) -> str:
    if arg and all(c.isalnum() or c in "-_.=/:+@,%" for c in arg):
        return arg
    if shell == "bash":
        return "'" + arg.replace("'", "'\"'\"'") + "'"
    return '"' + arg.replace('"', '`"') + '"'


def _env_steps(machine: Machine, install: Install, conda_specs: Sequence[str] = ()) -> list[Step]:
    name = install.env_name
    if machine.manager == "conda":
        specs = [f"python={install.python}", *conda_specs]
        return [
            Step(
                summary=f"Create a conda environment {name} with Python {install.python}"
                + (" and the CUDA libraries this release loads" if conda_specs else ""),
                commands=(
                    f"conda create -y -n {name} -c conda-forge "
                    + " ".join(_quote(s, machine.shell) for s in specs),
                    f"conda activate {name}",
                ),
                kind="environment",
                language=machine.shell,
            )
        ]
    if machine.flavor == "windows":
        folder = f"$HOME\\.venvs\\{name}"
        return [
            Step(
                summary=f"Create a virtual environment with the 64-bit Python {install.python} (python.org's "
                "'Windows installer (64-bit)'; GPU wheels exist for no 32-bit Python) and activate it",
                commands=(f"py -{install.python}-64 -m venv {folder}", f"& {folder}\\Scripts\\Activate.ps1"),
                kind="environment",
                language="powershell",
            )
        ]
    folder = f"~/.venvs/{name}"
    return [
        Step(
            summary=f"Create a virtual environment with Python {install.python} and activate it",
            commands=(f"python{install.python} -m venv {folder}", f". {folder}/bin/activate"),
            kind="environment",
            language="bash",
        )
    ]


def _check_step(machine: Machine, install: Install, framework: Framework) -> Step:
    if framework == "torch":
        code = (
            "import torch; print(torch.backends.mps.is_available())"
            if install.device == "mps"
            else "import torch; assert torch.cuda.is_available(), 'no CUDA GPU'; "
            "print(torch.__version__, torch.cuda.get_device_name(0))"
        )
        command = f'python -c "{code}"'
    elif framework == "tensorflow":
        command = (
            "python -c \"import tensorflow as tf; gpus = tf.config.list_physical_devices('GPU'); "
            "assert gpus, 'no GPU'; print(tf.__version__, gpus)\""
        )
    else:
        code = 'python -c "import jax; print(jax.devices())"'
        command = (
            f"JAX_PLATFORMS=cuda {code}" if machine.shell == "bash" else f'$env:JAX_PLATFORMS="cuda"; {code}'
        )
    return Step(
        summary="Prove it: this fails loudly unless the GPU is used",
        commands=(command, "gpudoctor check"),
        kind="check",
        language=machine.shell,
    )


def _steps(
    matrix: Matrix, candidate: _Candidate, machine: Machine, python: str, support: Support
) -> tuple[Install, list[Step], list[str]]:
    if candidate.framework == "tensorflow":
        return _tf_steps(matrix, candidate, machine, python, support)
    if candidate.framework == "torch":
        return _torch_steps(candidate, machine, python)
    return _jax_steps(matrix, candidate, machine, python)


def _torch_steps(
    candidate: _Candidate, machine: Machine, python: str
) -> tuple[Install, list[Step], list[str]]:
    release = candidate.release
    version = f"{release}.0"
    notes: list[str] = []
    install = Install(
        release=release,
        version=version,
        python=python,
        env_name=_env_name("torch", release),
        pip=(("torch", version),),
        variant=candidate.variant,
        cuda=candidate.cuda,
        cudnn=candidate.cudnn,
        targets=candidate.targets,
        device=candidate.device,
    )
    steps = _env_steps(machine, install)
    spec = f"torch=={release}.*"
    if candidate.device == "mps":
        steps.append(
            Step(
                summary=f"Install PyTorch {release} (the macOS wheel uses the Apple GPU through 'mps')",
                commands=(_pip_cmd(machine, "install", spec),),
                language=machine.shell,
            )
        )
        return install, steps, notes
    assert candidate.torch is not None and candidate.variant is not None
    pypi_default = (
        machine.wheels == "linux"
        and machine.arch == "x86_64"
        and candidate.torch.pypi_default_linux == candidate.variant
    )
    if pypi_default:
        command = _pip_cmd(machine, "install", spec)
        where = "from PyPI, whose Linux wheel is this build"
    else:
        command = _pip_cmd(machine, "install", spec, "--index-url", f"{TORCH_WHL}/{candidate.variant}")
        where = "from PyTorch's own index"
        if machine.flavor == "windows":
            where += " (plain `pip install torch` on Windows is the CPU build)"
    steps.append(
        Step(
            summary=f"Install PyTorch {release} built for CUDA {candidate.cuda} ({candidate.variant}) {where}; "
            "it brings its own CUDA runtime and cuDNN",
            commands=(command,),
            language=machine.shell,
        )
    )
    if _key(release) < Version("2.0"):
        notes.append(
            f"PyTorch {release} predates the per-CUDA index form; if pip finds nothing there, take "
            f"torch=={release}.N+{candidate.variant} from {TORCH_WHL}/torch_stable.html"
        )
    if machine.manager == "conda":
        notes.append(
            "PyTorch is installed with pip inside the conda environment: its own conda channel ended with "
            "PyTorch 2.5, and mixing conda's pytorch with pip's torch breaks both"
        )
    return install, steps, notes


def _tf_steps(
    matrix: Matrix, candidate: _Candidate, machine: Machine, python: str, support: Support
) -> tuple[Install, list[Step], list[str]]:
    release = candidate.release
    version = f"{release}.0"
    numpy = ("numpy<2",) if _key(release) < FIRST_NUMPY_2_TF else ()
    notes: list[str] = []
    if numpy:
        notes.append(f"TensorFlow {release} was built against NumPy 1.x: the plan pins numpy<2")
    if candidate.device == "metal":
        metal = candidate.metal
        assert metal is not None  # a macOS candidate without a plug-in release fails its requirement
        package = metal.tensorflow_package
        install = Install(
            release=release,
            version=version,
            python=python,
            env_name=_env_name("tensorflow", release),
            pip=((package, version), ("tensorflow-metal", metal.version)),
            device="metal",
        )
        steps = _env_steps(machine, install)
        steps.append(
            Step(
                summary=f"Install TensorFlow {release} and Apple's Metal plug-in (the GPU on a Mac)",
                commands=(
                    _pip_cmd(
                        machine,
                        "install",
                        f"{package}=={release}.*",
                        f"tensorflow-metal=={metal.version}",
                        *numpy,
                    ),
                ),
                language=machine.shell,
            )
        )
        return install, steps, notes
    assert candidate.tf is not None and candidate.tf_row is not None
    row = candidate.tf_row
    gpu_package = next((p for p in candidate.tf.gpu_packages if p == "tensorflow"), None) or (
        candidate.tf.gpu_packages[0] if candidate.tf.gpu_packages else "tensorflow"
    )
    env = _env_name("tensorflow", release)
    first_and_cuda = _key(matrix.platform.tensorflow_first_and_cuda)
    if machine.wheels == "linux" and _key(release) >= first_and_cuda and gpu_package == "tensorflow":
        pins = tuple(
            (name, _lowest(spec))
            for name, spec in sorted(candidate.tf.and_cuda.items())
            if name.startswith("nvidia-")
        )
        install = Install(
            release=release,
            version=version,
            python=python,
            env_name=env,
            pip=(("tensorflow", version), *pins),
            cuda=row.cuda,
            cudnn=row.cudnn,
            targets=row.compute_capabilities,
        )
        steps = _env_steps(machine, install)
        wheel = next((n for n in candidate.tf.and_cuda if n.startswith("nvidia-cudnn")), None)
        cap = _cudnn_cap(
            matrix, machine, _cuda_key(row.cuda)[0], wheel, candidate.tf.and_cuda.get(wheel or "")
        )
        steps.append(
            Step(
                summary=f"Install TensorFlow {release} with the CUDA {row.cuda} and cuDNN {row.cudnn} wheels it pins "
                "(the [and-cuda] extra); TensorFlow finds them on its own" + (f"; {cap[1]}" if cap else ""),
                commands=(
                    _pip_cmd(machine, "install", f"tensorflow[and-cuda]=={release}.*", *numpy, *cap[:1]),
                ),
                language=machine.shell,
            )
        )
        if any(">=" in spec for spec in candidate.tf.and_cuda.values()):
            notes.append(
                f"TensorFlow {release}'s [and-cuda] pins are ranges: pip may take newer CUDA 12 wheels than the "
                f"CUDA {row.cuda} / cuDNN {row.cudnn} it was built with"
            )
    elif machine.wheels == "linux":
        cudnn = ".".join(row.cudnn.split(".")[:2])
        conda_specs = (f"cudatoolkit={row.cuda}", _conda_cudnn(cudnn))
        install = Install(
            release=release,
            version=version,
            python=python,
            env_name=env,
            pip=((gpu_package, version),),
            conda=(("cudatoolkit", row.cuda), ("cudnn", cudnn)),
            cuda=row.cuda,
            cudnn=row.cudnn,
            targets=row.compute_capabilities,
        )
        conda_machine = dataclasses.replace(machine, manager="conda")
        steps = _env_steps(conda_machine, install, conda_specs)
        steps.append(
            Step(
                summary="Put the environment's CUDA libraries on the loader path whenever it is activated, "
                "then activate it again",
                commands=(
                    f'mkdir -p "{ACTIVATE_D}"',
                    f"printf '%s\\n' {CONDA_LIBRARY_PATH_LINE} > \"{ACTIVATE_D}/gpudoctor-cuda.sh\"",
                    f"conda deactivate && conda activate {env}",
                ),
                kind="configure",
            )
        )
        steps.append(
            Step(
                summary=f"Install TensorFlow {release}"
                + (f" ({gpu_package})" if gpu_package != "tensorflow" else ""),
                commands=(_pip_cmd(machine, "install", f"{gpu_package}=={release}.*", *numpy),),
            )
        )
        if machine.manager == "pip":
            notes.append(
                f"TensorFlow {release} has no [and-cuda] extra (it came with 2.14): the plan takes CUDA "
                f"{row.cuda} and cuDNN {cudnn} from conda-forge, the simplest way to get these exact versions"
            )
    else:
        cudnn = row.cudnn if row.cudnn.count(".") >= 2 else f"{row.cudnn}.0"
        install = Install(
            release=release,
            version=version,
            python=python,
            env_name=env,
            pip=((gpu_package, version),),
            conda=(("cudatoolkit", row.cuda), ("cudnn", cudnn)) if machine.manager == "conda" else (),
            cuda=row.cuda,
            cudnn=row.cudnn,
            targets=row.compute_capabilities,
            system_cuda=machine.manager == "pip",
        )
        if machine.manager == "conda":
            steps = _env_steps(machine, install, (f"cudatoolkit={row.cuda}", f"cudnn={cudnn}"))
        else:
            bin_dir = f"{WINDOWS_CUDA_ROOT}\\v{row.cuda}\\bin"
            steps = [
                Step(
                    summary=f"Install CUDA {row.cuda} from NVIDIA's archive (toolkit only; it can sit next to other "
                    f"versions), then cuDNN {row.cudnn} for CUDA {row.cuda}: copy its bin\\cudnn*.dll into "
                    f"{bin_dir}",
                    commands=(f"Start-Process {CUDA_ARCHIVE}", f"Start-Process {CUDNN_ARCHIVE}"),
                    kind="environment",
                    language="powershell",
                    needs_admin=True,
                ),
                Step(
                    summary=f"Put CUDA {row.cuda}'s bin folder first on PATH, for this session and for new terminals",
                    commands=(
                        f'$env:PATH = "{bin_dir};$env:PATH"',
                        _user_path_command(bin_dir),
                    ),
                    kind="configure",
                    language="powershell",
                ),
                *_env_steps(machine, install),
            ]
            notes.append(
                "conda is TensorFlow's documented route on native Windows (`--manager conda`): it installs "
                f"CUDA {row.cuda} and cuDNN {row.cudnn} into the environment, with no system-wide download"
            )
        steps.append(
            Step(
                summary=f"Install TensorFlow {release}, the Windows CUDA build"
                + (f" ({gpu_package})" if gpu_package != "tensorflow" else ""),
                commands=(_pip_cmd(machine, "install", f"{gpu_package}=={release}.*", *numpy),),
                language="powershell",
            )
        )
    if support == "ptx":
        steps.append(
            Step(
                summary="Give the driver's JIT cache room, so TensorFlow's PTX kernels for this GPU compile once",
                commands=(f"export CUDA_CACHE_MAXSIZE={CUDA_CACHE_BYTES}",)
                if machine.shell == "bash"
                else (f'$env:CUDA_CACHE_MAXSIZE = "{CUDA_CACHE_BYTES}"',),
                kind="configure",
                language=machine.shell,
            )
        )
    return install, steps, notes


def _cudnn_cap(
    matrix: Matrix, machine: Machine, cuda_major: int, wheel: str | None, pinned: str | None
) -> tuple[str, str] | tuple[()]:
    """A cuDNN ceiling for a pin range that would let pip take a cuDNN too new for this GPU: newer cuDNN
    releases drop older GPUs (9.11 dropped everything below Turing). The requirement to add, and why."""
    if wheel is None or not machine.ccs or not pinned or ">" not in pinned:
        return ()
    lowest = min(machine.ccs, key=_cuda_key)
    floor = _key(_lowest(pinned))
    for row in sorted(matrix.cudnn_releases, key=lambda r: _key(_lowest(str(r.versions)))):
        start = _key(_lowest(str(row.versions)))
        if cuda_major not in row.cuda or start <= floor or row.min_compute_capability is None:
            continue
        if _cuda_key(lowest) < _cuda_key(row.min_compute_capability):
            return (
                f"{wheel}<{start}",
                (
                    f"{wheel} is held below {start}: cuDNN {start} and newer need compute capability "
                    f"{row.min_compute_capability}, this GPU is {lowest}"
                ),
            )
    return ()


# cuDNN series conda-forge publishes builds of (conda-forge/cudnn-feedstock); another series is asked
# for as "this minor or newer within the major", which TensorFlow accepts.
CONDA_FORGE_CUDNN = frozenset({"7.6", "8.0", "8.1", "8.2", "8.4", "8.8", "8.9"})


def _conda_cudnn(series: str) -> str:
    if series in CONDA_FORGE_CUDNN:
        return f"cudnn={series}"
    major = int(series.split(".")[0])
    return f"cudnn>={series},<{major + 1}"


def _user_path_command(folder: str) -> str:
    """PowerShell: put `folder` first on the user's PATH for new terminals."""
    user = '[Environment]::GetEnvironmentVariable("Path", "User")'
    return f'[Environment]::SetEnvironmentVariable("Path", "{folder};" + {user}, "User")'


def _jax_steps(
    matrix: Matrix, candidate: _Candidate, machine: Machine, python: str
) -> tuple[Install, list[Step], list[str]]:
    assert candidate.jax is not None and candidate.variant is not None
    run = candidate.jax
    version = run.version
    extra = candidate.variant
    major = int(candidate.cuda or "12")
    plugin = f"jax-cuda{major}-plugin"
    pins = [("jax", version), ("jaxlib", version)]
    if extra.endswith("_pip"):
        pins.append((f"nvidia-cudnn-cu{major}", candidate.cudnn or ""))
    else:
        pins += [(plugin, version), (f"jax-cuda{major}-pjrt", version)]
    pins.append(("nvidia-cuda-nvcc" if major >= 13 else f"nvidia-cuda-nvcc-cu{major}", f"{major}.0"))
    install = Install(
        release=run.version,
        version=version,
        python=python,
        env_name=_env_name("jax", run.version),
        pip=tuple(pins),
        variant=extra,
        cuda=candidate.cuda,
        cudnn=candidate.cudnn,
    )
    steps = _env_steps(machine, install)
    spec = f"jax[{extra}]>={run.version},<{run.until}"
    options: tuple[str, ...] = ("-f", JAX_CUDA_RELEASES) if extra.endswith("_pip") else ()
    cudnn_floor = f">={candidate.cudnn}" if candidate.cudnn else None
    cap = _cudnn_cap(matrix, machine, major, f"nvidia-cudnn-cu{major}", cudnn_floor)
    steps.append(
        Step(
            summary=f"Install JAX {run.version} up to {run.until} (not included) with its CUDA {major} plugin and "
            "NVIDIA's CUDA wheels" + (f"; {cap[1]}" if cap else ""),
            commands=(_pip_cmd(machine, "install", spec, *cap[:1], *options),),
            language=machine.shell,
        )
    )
    notes = []
    if machine.flavor == "wsl":
        notes.append("JAX calls its NVIDIA GPU support in WSL 2 experimental")
    return install, steps, notes


# ----------------------------------------------------------------------------------------------
# The planned machine


def planned_facts(plan: Plan, matrix: Matrix) -> Facts | None:
    """The facts `gpudoctor check` would collect once the plan's changes and steps have run, or None
    when the plan installs nothing."""
    install = plan.install
    if install is None:
        return None
    machine = plan.machine
    for r in plan.requirements:
        if r.ok is False and r.after is not None and r.need == "platform":
            platform = dataclasses.replace(machine.platform, windows_build=int(r.after))
            machine = dataclasses.replace(machine, platform=platform)
    return _planned(matrix, machine, plan.framework, install, _planned_driver(machine, plan))


def _planned_driver(machine: Machine, plan: Plan) -> DriverFacts | None:
    new = next((r.after for r in plan.requirements if r.need == "driver" and r.ok is False and r.after), None)
    if machine.flavor == "macos" or not machine.gpus or (machine.driver is None and new is None):
        return machine.driver_facts
    base = machine.driver_facts if machine.driver_facts is not None and new is None else None
    if base is not None:
        return base
    return DriverFacts(
        nvml_state="ok",
        source="nvml",
        driver_version=new or machine.driver,
        cuda_driver_version=machine.driver_cuda if new is None else None,
        gpus=tuple(
            GpuFacts(index=i, name=name, compute_capability=cc) for i, (name, cc) in enumerate(machine.gpus)
        ),
    )


def _planned(
    matrix: Matrix, machine: Machine, framework: Framework, install: Install, driver: DriverFacts | None
) -> Facts:
    windows = machine.flavor == "windows"
    conda = machine.manager == "conda" or bool(install.conda)
    home = PLANNED_WINDOWS_HOME if windows else PLANNED_HOME
    sep = "\\" if windows else "/"
    if conda:
        prefix = f"{home}{sep}miniconda3{sep}envs{sep}{install.env_name}"
    else:
        prefix = f"{home}{sep}.venvs{sep}{install.env_name}"
    python_exe = (
        f"{prefix}\\python.exe"
        if windows and conda
        else (f"{prefix}\\Scripts\\python.exe" if windows else f"{prefix}/bin/python")
    )
    site = (
        f"{prefix}\\Lib\\site-packages" if windows else f"{prefix}/lib/python{install.python}/site-packages"
    )
    py_version = (
        machine.python
        if machine.python_series == install.python and machine.python
        else f"{install.python}.0"
    )
    dists = tuple(
        Distribution(name=name, version=version, installer="pip", location=site)
        for name, version in install.pip
    )
    python = PythonFacts(
        executable=python_exe,
        version=py_version,
        prefix=prefix,
        base_prefix=prefix if conda else (f"{home}{sep}python{install.python}"),
        is_venv=not conda,
        origin="conda" if conda else "venv",
        site_packages=(site,),
        distributions=dists,
    )
    conda_facts = None
    libraries = None
    if conda:
        packages = [CondaPackage(name="python", version=py_version, build="h_cpython", channel="conda-forge")]
        packages += [
            CondaPackage(name=n, version=v, build="h0", channel="conda-forge") for n, v in install.conda
        ]
        packages += [CondaPackage(name=n, version=v, build="pypi_0", channel="pypi") for n, v in install.pip]
        conda_facts = CondaFacts(
            prefix=prefix,
            env_name=install.env_name,
            is_target=True,
            source="conda-meta",
            packages=tuple(packages),
            activate_scripts=("gpudoctor-cuda.sh",) if install.conda and not windows else (),
            activate_sets_library_path=bool(install.conda) and not windows,
        )
    if (
        install.cuda
        and "." in install.cuda
        and framework == "tensorflow"
        and (install.conda or install.system_cuda)
    ):
        libraries = _planned_libraries(matrix, machine, install, prefix)
    variables = {k: v for k, v in machine.environment.items() if k not in ENVIRONMENT_OF_THE_OLD_SHELL}
    facts = Facts(
        target=TargetFacts(python=python_exe, selected_by="CONDA_PREFIX" if conda else "VIRTUAL_ENV"),
        platform=machine.platform,
        environment=EnvironmentFacts(variables=variables),
        driver=driver,
        libraries=libraries,
        conda=conda_facts,
        python=python,
    )
    gpus_seen = driver is not None and bool(driver.gpus)
    if framework == "tensorflow":
        facts = dataclasses.replace(facts, tensorflow=_planned_tf(install, gpus_seen))
    elif framework == "torch":
        facts = dataclasses.replace(facts, torch=_planned_torch(machine, install, gpus_seen))
    else:
        facts = dataclasses.replace(facts, jax=_planned_jax(install, gpus_seen))
    return facts


def _planned_libraries(matrix: Matrix, machine: Machine, install: Install, prefix: str) -> LibrariesFacts:
    system: System = "windows" if machine.flavor == "windows" else "linux"
    cuda = install.cuda or ""
    cudart = matrix.cudart_name(cuda, system)
    cudnn_major = int((install.cudnn or "0").split(".")[0])
    cudnn_name = matrix.cudnn_library_name(cudnn_major, system)
    cudnn_version = ".".join(((install.cudnn or "0") + ".0.0").split(".")[:3])
    if machine.flavor == "windows":
        folder = f"{prefix}\\Library\\bin" if install.conda else f"{WINDOWS_CUDA_ROOT}\\v{cuda}\\bin"
        join = "\\"
    else:
        folder = f"{prefix}/lib"
        join = "/"
    location: LibraryLocation = "conda" if install.conda else "path"
    return LibrariesFacts(
        files=(
            LibraryFile(
                kind="cudart",
                name=cudart,
                path=f"{folder}{join}{cudart}",
                location=location,
                loader_default=True,
            ),
            LibraryFile(
                kind="cudnn",
                name=cudnn_name,
                path=f"{folder}{join}{cudnn_name}",
                location=location,
                version=cudnn_version,
                version_source="header",
                loader_default=True,
            ),
        ),
        searched=(folder,),
    )


def _planned_tf(install: Install, gpus_seen: bool) -> TensorFlowFacts:
    package = install.pip[0][0]
    return TensorFlowFacts(
        installed=True,
        imported=True,
        version=install.version,
        is_cuda_build=install.device == "cuda",
        build_cuda_version=install.cuda,
        build_cudnn_version=install.cudnn,
        build_compute_capabilities=install.targets,
        gpus=("/physical_device:GPU:0",) if gpus_seen or install.device == "metal" else (),
        distributions={package: install.version},
    )


def _planned_torch(machine: Machine, install: Install, gpus_seen: bool) -> TorchFacts:
    if install.device == "mps":
        return TorchFacts(
            installed=True,
            imported=True,
            version=install.version,
            installer="pip",
            dist_version=install.version,
        )
    version = f"{install.version}+{install.variant}"
    return TorchFacts(
        installed=True,
        imported=True,
        version=version,
        cuda_version=install.cuda,
        cuda_available=True if gpus_seen else None,
        device_count=len(machine.gpus) if gpus_seen else None,
        devices=tuple(
            TorchDevice(index=i, name=name, capability=cc) for i, (name, cc) in enumerate(machine.gpus)
        )
        if gpus_seen
        else (),
        arch_list=_normalise_arch(install.targets),
        dist_version=install.version,
        installer="pip",
    )


def _normalise_arch(targets: Sequence[str]) -> tuple[str, ...]:
    return tuple(t for t in targets if t.startswith(("sm_", "compute_")))


def _planned_jax(install: Install, gpus_seen: bool) -> JaxFacts:
    plugins = {n: v for n, v in install.pip if n.startswith("jax-cuda")}
    jaxlib = install.version if plugins else f"{install.version}+cuda{install.cuda}"
    return JaxFacts(
        installed=True,
        imported=True,
        jax_version=install.version,
        jaxlib_version=jaxlib,
        plugins=plugins,
        devices=("cuda:0",) if gpus_seen else ("cpu:0",),
        default_backend="gpu" if gpus_seen else "cpu",
    )


# ----------------------------------------------------------------------------------------------
# Making the plan


@dataclass(frozen=True, kw_only=True)
class _Judged:
    candidate: _Candidate
    python: str | None
    requirements: tuple[Requirement, ...]
    support: Support

    @property
    def failed(self) -> list[Requirement]:
        return [r for r in self.requirements if r.ok is False]

    @property
    def changeable(self) -> bool:
        """Every unmet need can be met by changing the machine (driver, Windows, WSL), not the GPU."""
        return bool(self.failed) and all(r.change for r in self.failed)


def _judge(matrix: Matrix, candidate: _Candidate, machine: Machine) -> _Judged:
    python = _pick_python(matrix, candidate, machine)
    reqs, support = _requirements(matrix, candidate, machine, python or "?")
    if python is None:
        reqs.insert(
            0, Requirement(need="python", text="a Python this release has wheels for", have="none", ok=False)
        )
    return _Judged(candidate=candidate, python=python, requirements=tuple(reqs), support=support)


def _ranked(judged: list[_Judged], machine: Machine) -> list[_Judged]:
    """Best first: what fits; native kernels, then PTX, then builds the matrix lists no targets for;
    this machine's Python (with pip a new Python is a step of its own); then newest first."""
    quality = {"native": 0, "ptx": 1, "unknown": 2}

    def rank(item: tuple[int, _Judged]) -> tuple[int, int, int, int]:
        index, j = item
        return (1 if j.failed else 0, quality[j.support], 0 if _same_python(j, machine) else 1, index)

    return [j for _, j in sorted(enumerate(judged), key=rank)]


def _same_python(j: _Judged, machine: Machine) -> bool:
    return machine.python is None or machine.manager == "conda" or j.python == machine.python_series


def _diagnose(facts: Facts, matrix: Matrix) -> Report:
    from gpudoctor.engine import diagnose

    return diagnose(facts, matrix)


def check_requested(matrix: Matrix, framework: Framework, requested: str) -> None:
    """Raise PlanError unless the matrix knows release `requested` of `framework`."""
    known = known_releases(matrix, framework)
    found = matrix.jax_release(requested) is not None if framework == "jax" else _series(requested) in known
    if not found:
        raise PlanError(
            f"{FRAMEWORK_NAMES[framework]} {requested} is not in gpudoctor's matrix; it knows "
            f"{', '.join(known)}"
        )


def make_plan(matrix: Matrix, machine: Machine, framework: Framework, requested: str | None = None) -> Plan:
    """The plan for `framework` on `machine`: the newest release that fits, or release `requested`."""
    if requested is not None:
        check_requested(matrix, framework, requested)
    if machine.flavor == "windows" and _needs_wsl(matrix, framework, requested):
        return _via_wsl(matrix, machine, framework, requested)
    judged = [_judge(matrix, c, machine) for c in _candidates(matrix, machine, framework, requested)]
    rejected: list[str] = []
    for j in _ranked(judged, machine):
        if j.failed:
            break
        plan = _build(matrix, machine, framework, requested, j, "ready")
        errors = _errors(plan, matrix)
        if not errors:
            return _with_context(matrix, framework, requested, plan, judged)
        if all(e.blocks_gpu for e in errors):  # the machine, not the release: any release would meet them
            plan = dataclasses.replace(plan, status="after-changes", changes=_doctor_changes(errors))
            return _with_context(matrix, framework, requested, plan, judged)
        rejected.append(_rejection(plan, errors))
    changeable = [j for j in judged if j.changeable]
    if changeable and machine.gpus:
        best = min(changeable, key=lambda j: (len(j.failed), judged.index(j)))
        plan = _build(matrix, machine, framework, requested, best, "after-changes")
        changes = tuple(dict.fromkeys(s for r in best.failed for s in r.change))
        errors = _errors(dataclasses.replace(plan, changes=changes), matrix)
        if all(e.blocks_gpu for e in errors):
            plan = dataclasses.replace(plan, changes=(*changes, *_doctor_changes(errors)))
            return _with_context(matrix, framework, requested, plan, judged, rejected)
        rejected.append(_rejection(plan, errors))
    return _nothing(matrix, machine, framework, requested, judged, rejected)


def _needs_wsl(matrix: Matrix, framework: Framework, requested: str | None) -> bool:
    if framework == "jax":
        return True
    last = _key(matrix.platform.tensorflow_last_windows_gpu)
    return framework == "tensorflow" and requested is not None and _key(_series(requested) or "0") > last


def as_wsl(machine: Machine, matrix: Matrix) -> Machine:
    """This Windows machine as seen from Ubuntu in WSL 2: the same GPU and Windows driver."""
    platform = dataclasses.replace(
        machine.platform,
        system="Linux",
        machine="x86_64",
        wsl=2,
        distro="Ubuntu 24.04 LTS",
        distro_id="ubuntu",
        distro_version_id="24.04",
        wsl_lib_dir=matrix.platform.wsl_lib_dir,
        wsl_libs=("libcuda.so", "libcuda.so.1", "libnvidia-ml.so.1"),
        wsl_distro="Ubuntu",
        display_adapters=(),
    )
    origins = {**machine.origins, "python": "Ubuntu 24.04's python3 (in WSL 2)"}
    return dataclasses.replace(
        machine, platform=platform, flavor="wsl", python="3.12", origins=origins, environment={}
    )


def _via_wsl(matrix: Matrix, machine: Machine, framework: Framework, requested: str | None) -> Plan:
    name = FRAMEWORK_NAMES[framework]
    why = (
        f"{name} has no NVIDIA GPU build for native Windows"
        if framework == "jax"
        else f"TensorFlow {requested} has no GPU build for native Windows (the last was "
        f"{matrix.platform.tensorflow_last_windows_gpu})"
    )
    inner = make_plan(matrix, as_wsl(machine, matrix), framework, requested)
    notes = (f"{why}: this plan is for Ubuntu in WSL 2 on this machine", *inner.notes)
    if inner.status == "none":
        return dataclasses.replace(inner, problems=(why, *inner.problems), notes=notes)
    return dataclasses.replace(
        inner,
        status="after-changes",
        changes=(_wsl_step(), *inner.changes),
        notes=notes,
    )


def _build(
    matrix: Matrix, machine: Machine, framework: Framework, requested: str | None, j: _Judged, status: Status
) -> Plan:
    install, steps, notes = _steps(matrix, j.candidate, machine, j.python or "3", j.support)
    steps.append(_check_step(machine, install, framework))
    name = FRAMEWORK_NAMES[framework]
    if j.python and machine.python_series and j.python != machine.python_series and machine.manager == "pip":
        notes.insert(
            0,
            f"This machine's Python is {machine.python}; {name} {j.candidate.release} needs Python "
            f"{_python_text(_python_minors(j.candidate.python, matrix))}: install Python {j.python} first "
            "(python.org, pyenv, uv or your distribution), or use --manager conda",
        )
    if j.support == "ptx":
        notes.append(
            f"This GPU runs {name} {j.candidate.release} only through PTX: the driver compiles its kernels "
            "at the first start (minutes), then caches them"
        )
    if not j.candidate.verified:
        notes.append(
            f"The matrix rows behind {name} {j.candidate.release} are not all confirmed by a primary source"
        )
    if machine.gpus and not machine.ccs:
        notes.append(
            "The GPU's compute capability is unknown: pass --compute-capability to check its kernels"
        )
    return Plan(
        framework=framework,
        requested=requested,
        machine=machine,
        status=status,
        install=install,
        requirements=j.requirements,
        steps=tuple(steps),
        notes=tuple(notes),
        sources=(j.candidate.source,) if j.candidate.source else (),
    )


def _errors(plan: Plan, matrix: Matrix) -> list[Finding]:
    """What `gpudoctor check` would report as errors on the machine the plan leaves behind."""
    facts = planned_facts(plan, matrix)
    if facts is None:
        return []
    return [f for f in _diagnose(facts, matrix).findings if f.severity is Severity.ERROR]


def _rejection(plan: Plan, errors: Sequence[Finding]) -> str:
    release = plan.install.release if plan.install else ""
    return f"{plan.name} {release}: gpudoctor check would report {errors[0].code}: {errors[0].message}"


def _machine_findings(machine: Machine, matrix: Matrix) -> list[Finding]:
    """What `gpudoctor check` says about the machine itself (driver, GPU, platform), frameworks aside."""
    if machine.seen_driver is None:
        return []
    facts = Facts(
        platform=machine.platform,
        driver=machine.seen_driver,
        environment=EnvironmentFacts(variables=machine.environment),
    )
    findings = _diagnose(facts, matrix).findings
    return [f for f in findings if f.severity in (Severity.ERROR, Severity.WARNING)]


def _doctor_changes(errors: Sequence[Finding]) -> tuple[Step, ...]:
    """The doctor's own fix for each error about the machine itself (a hidden GPU, a container without
    GPU access): what must be set or changed before any release can use the GPU."""
    steps = []
    for finding in errors:
        fix = finding.fixes[0] if finding.fixes else Fix(summary=finding.message)
        steps.append(
            Step(
                summary=f"{finding.message} ({finding.code}): {fix.summary}",
                commands=fix.commands,
                kind="configure",
                language=fix.shell,
                needs_admin=fix.needs_admin,
                needs_reboot=fix.needs_reboot,
            )
        )
    return tuple(steps)


def _doctor_notes(plan: Plan, matrix: Matrix) -> tuple[str, ...]:
    facts = planned_facts(plan, matrix)
    if facts is None:
        return ()
    findings = _diagnose(facts, matrix).findings
    return tuple(f"{f.code}: {f.message}" for f in findings if f.severity is Severity.WARNING)


def _with_context(
    matrix: Matrix,
    framework: Framework,
    requested: str | None,
    plan: Plan,
    judged: list[_Judged],
    rejected: Sequence[str] = (),
) -> Plan:
    """The plan, with what a newer release would need and the ways to it."""
    name = FRAMEWORK_NAMES[framework]
    notes = list(plan.notes)
    ways: list[Step] = []
    chosen = plan.install.release if plan.install else "0"
    newer = [j for j in judged if _key(j.candidate.release) > _key(chosen)]
    if newer and requested is None:
        newest = newer[0].candidate.release
        same = [j for j in newer if j.candidate.release == newest]
        fits = [j for j in same if not j.failed]
        if fits:
            notes.append(
                f"{name} {newest} needs Python {_python_text(_python_minors(fits[0].candidate.python, matrix))} "
                f"(this machine: {plan.machine.python_series}); --manager conda makes an environment with it"
            )
        else:
            reachable = [j for j in same if j.changeable]
            if reachable:
                best = min(reachable, key=lambda j: len(j.failed))
                what = "; ".join(f"{r.text} (this machine: {r.have})" for r in best.failed)
                notes.append(f"{name} {newest} would need {what}")
                ways.extend(dict.fromkeys(s for r in best.failed for s in r.change))
            else:
                gpu = next((r for j in same for r in j.failed if r.need == "gpu"), None)
                if gpu is not None:
                    notes.append(
                        f"{name} {newest} has no kernels for this GPU ({gpu.have}; it has {gpu.text})"
                    )
    machine = plan.machine
    if (
        plan.install is not None
        and machine.manager == "pip"
        and machine.python_series not in (None, plan.install.python)
    ):
        keep = next((j for j in judged if not j.failed and j.python == machine.python_series), None)
        if keep is not None:
            notes.append(
                f"To keep Python {machine.python_series}: {name} {keep.candidate.release} is the newest release for it "
                f"(`gpudoctor plan {framework} {keep.candidate.release}`)"
            )
    notes.extend(rejected)
    if framework == "tensorflow" and plan.machine.flavor == "windows":
        notes.append(
            f"TensorFlow {matrix.platform.tensorflow_last_windows_gpu} is the last release with GPU support on "
            f"native Windows; newer releases run in WSL 2 (Windows build ≥ {matrix.platform.wsl_gpu_min_windows_build}): "
            "`gpudoctor plan tensorflow --os wsl`"
        )
        ways.append(_wsl_step())
    if requested is not None and plan.status == "after-changes":
        nearest = make_plan(matrix, plan.machine, framework)
        if nearest.status == "ready" and nearest.install is not None:
            ways.append(
                Step(
                    summary=f"Or keep the machine as it is and take {name} {nearest.install.release}: "
                    f"`gpudoctor plan {framework}` gives its steps",
                )
            )
    return dataclasses.replace(
        plan, notes=tuple(notes), ways_out=tuple(ways), doctor=_doctor_notes(plan, matrix)
    )


JETSON_WAY = Step(
    summary="On Jetson, use NVIDIA's builds for your JetPack release: the l4t containers "
    "(nvcr.io/nvidia/l4t-pytorch, l4t-tensorflow, l4t-jax) or the wheels NVIDIA publishes under "
    "https://developer.download.nvidia.com/compute/redist/jp/",
)


def _jetson_way(matrix: Matrix, framework: Framework) -> Step:
    """NVIDIA's own builds for Jetson, naming the newest JetPack release the matrix knows wheels for."""
    releases = sorted(matrix.jetson, key=lambda j: _key(j.jetpack), reverse=True)
    for release in releases:
        wheels = (
            release.torch if framework == "torch" else release.tensorflow if framework == "tensorflow" else ()
        )
        if wheels:
            return dataclasses.replace(
                JETSON_WAY,
                summary=f"{JETSON_WAY.summary}; for JetPack {release.jetpack} (L4T R{release.l4t}, CUDA "
                f"{release.cuda}, Python {release.python}) NVIDIA lists {FRAMEWORK_NAMES[framework]} "
                f"{', '.join(wheels)} under {release.index_url} (see `cat /etc/nv_tegra_release` for yours)",
            )
    return JETSON_WAY


def _nothing(
    matrix: Matrix,
    machine: Machine,
    framework: Framework,
    requested: str | None,
    judged: list[_Judged],
    rejected: list[str],
) -> Plan:
    name = FRAMEWORK_NAMES[framework]
    problems: list[str] = []
    ways: list[Step] = []
    if machine.jetson:
        problems.append(
            f"This is a Jetson: {name}'s PyPI CUDA wheels in gpudoctor's matrix are x86_64 and SBSA server builds, "
            "not JetPack builds"
        )
        judged = []
    elif machine.flavor == "macos" and framework == "jax":
        problems.append(f"JAX on macOS: {matrix.platform.jax_macos}")
        judged = []
    elif machine.flavor != "macos" and not machine.gpus:
        found = _machine_findings(machine, matrix)
        if not found:
            problems.append(
                "No NVIDIA GPU was found"
                + (" and no NVIDIA driver works here" if machine.driver is None else "")
            )
        for finding in found:
            problems.append(f"{finding.message} ({finding.code})")
            if finding.fixes:
                ways.extend(_doctor_changes((finding,)))
    if not judged and not problems:
        problems.append(f"gpudoctor's matrix has no {name} GPU build for {machine.describe().split(';')[0]}")
    elif judged and (machine.gpus or machine.flavor == "macos"):
        first = judged[0]
        with_kernels = [j for j in judged if not any(r.need == "gpu" for r in j.failed)]
        if machine.gpus and not with_kernels:
            gpu = next(r for r in first.failed if r.need == "gpu")
            oldest = judged[-1].requirements
            floor = next((r.text for r in oldest if r.need == "gpu"), gpu.text)
            problems.append(
                f"No {name} release in gpudoctor's matrix has kernels for this GPU ({gpu.have.removesuffix(': none')}); "
                f"the oldest needs {floor}"
            )
        else:
            last = with_kernels[0] if machine.gpus else first
            problems.extend(
                f"{name} {last.candidate.release} needs {r.text}; this machine: {r.have}" for r in last.failed
            )
            if last is not first:
                problems.insert(
                    0, f"The newest {name} release with kernels for this GPU is {last.candidate.release}"
                )
    problems.extend(rejected)
    if machine.jetson:
        ways.append(_jetson_way(matrix, framework))
    if machine.flavor == "macos" and framework == "jax":
        runs = sorted(matrix.jax, key=lambda r: _key(r.version), reverse=True)
        run = next((r for r in runs if r.python.contains(machine.python or "3.99", prereleases=True)), None)
        if run is not None:
            ways.append(
                Step(
                    summary="JAX runs on the CPU on macOS (Apple's jax-metal plug-in is experimental)",
                    commands=(_pip_cmd(machine, "install", f"jax>={run.version},<{run.until}"),),
                )
            )
    if requested is not None:
        nearest = make_plan(matrix, machine, framework)
        if nearest.status != "none" and nearest.install is not None:
            ways.append(
                Step(
                    summary=f"Take {name} {nearest.install.release} instead: `gpudoctor plan {framework}` gives its steps"
                )
            )
    preview = (
        _build(matrix, machine, framework, requested, judged[0], "none")
        if judged and not machine.gpus and machine.flavor != "macos"
        else None
    )
    if preview is not None and not machine.platform.container:  # in a container the driver is the host's
        ways.extend(dict.fromkeys(s for r in judged[0].failed for s in r.change))
    return Plan(
        framework=framework,
        requested=requested,
        machine=machine,
        status="none",
        install=preview.install if preview else None,
        requirements=preview.requirements if preview else (judged[0].requirements if judged else ()),
        steps=preview.steps if preview else (),
        problems=tuple(dict.fromkeys(problems)),
        ways_out=tuple(ways),
        notes=preview.notes if preview else (),
        sources=preview.sources if preview else (),
    )


def plan_all(matrix: Matrix, machine: Machine) -> list[Plan]:
    return [make_plan(matrix, machine, f) for f in FRAMEWORKS]


__all__ = [
    "FRAMEWORKS",
    "Framework",
    "Install",
    "Machine",
    "Plan",
    "PlanError",
    "Requirement",
    "Step",
    "as_wsl",
    "check_requested",
    "exit_code",
    "machine_from_facts",
    "make_plan",
    "normalise_framework",
    "plan_all",
    "planned_facts",
]
