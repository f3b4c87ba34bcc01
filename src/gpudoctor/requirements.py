"""Every framework's own pins, evaluated for the target interpreter, against what is installed.

The survey child collects the raw `Requires-Dist` strings and the target's PEP 508 marker
environment; this module evaluates them with `packaging` here, in gpudoctor's process. A
requirement with extras (`cuda-toolkit[cublas,cudnn]==13.0.3`, `jax-cuda12-plugin[with-cuda]`) is
followed into that distribution's own metadata, one level down, so torch's and JAX's CUDA wheels
are judged against the versions the framework really asks for.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from packaging.markers import InvalidMarker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from gpudoctor import lazy_re
from gpudoctor.distributions import FRAMEWORK_DISTRIBUTIONS
from gpudoctor.facts import Distribution, PlatformFacts, PythonFacts

PinState = Literal["ok", "missing", "too-old", "too-new", "excluded"]

# The frameworks and plugins whose pins are judged, by canonical distribution name.
FRAMEWORKS: tuple[str, ...] = (
    *FRAMEWORK_DISTRIBUTIONS["tensorflow"],
    "torch",
    "torchvision",
    "torchaudio",
    "jax",
    "jaxlib",
)  # tensorflow-metal and tensorflow-directml-plugin: GD808/GD809 judge them with their TensorFlow
FRAMEWORK_PATTERN = lazy_re.compile(r"^jax-(cuda|rocm)\d+-(plugin|pjrt)$")
# Which requirements are judged: the CUDA library wheels, the compilers and ABI-bound packages.
CHECKED = lazy_re.compile(
    r"^(nvidia-.+|cuda-.+|triton|pytorch-triton|numpy|ml-dtypes|protobuf|jax|jaxlib|torch|"
    r"tensorflow(-cpu|-gpu|-intel|-macos)?|jax-(cuda|rocm)\d+-(plugin|pjrt))$"
)
NOT_CUDA = frozenset({"nvidia-ml-py", "nvidia-ml-py3"})
# CUDA 12 and CUDA 13 builds of these wheels write the same files (nvidia/cudnn/lib/libcudnn.so.9,
# nvidia/nccl/lib/libnccl.so.2, ...): read from the RECORDs of nvidia-cudnn-cu12 9.28 / -cu13 9.24,
# nvidia-nccl-cu12 / -cu13, nvidia-cusparselt-cu12 / -cu13, nvidia-nvshmem-cu12 / -cu13.
SAME_FILES_STEMS = ("nvidia-cudnn", "nvidia-nccl", "nvidia-cusparselt", "nvidia-nvshmem")
CUDA_SUFFIX = lazy_re.compile(r"^(?P<stem>.+)-cu(?P<major>\d+)$")
DEFAULT_ENVIRONMENT = {
    "implementation_name": "cpython",
    "implementation_version": "3.11.0",
    "os_name": "posix",
    "platform_machine": "x86_64",
    "platform_release": "",
    "platform_system": "Linux",
    "platform_version": "",
    "python_full_version": "3.11.0",
    "platform_python_implementation": "CPython",
    "python_version": "3.11",
    "sys_platform": "linux",
}


@dataclass(frozen=True, kw_only=True)
class Pin:
    """One requirement of one framework, and how the installed set meets it."""

    framework: str  # the framework distribution that asks, e.g. "torch"
    name: str  # the required distribution, canonical
    specifier: SpecifierSet
    line: str  # the Requires-Dist line as the metadata writes it
    extras: tuple[str, ...] = ()  # the requirement's own extras: cuda-toolkit[cublas,cudart]
    via: str | None = None  # "cuda-toolkit[cublas,cudart]" when it comes through another package's extra
    extra: str | None = None  # the framework's extra that adds it ("and-cuda", "cuda12")
    installed: str | None = None
    state: PinState = "ok"

    @property
    def spec_text(self) -> str:
        extras = f"[{','.join(self.extras)}]" if self.extras else ""
        return f"{self.name}{extras}{self.specifier}"

    @property
    def asked_by(self) -> str:
        head = f"{self.framework}[{self.extra}]" if self.extra else self.framework
        return f"{head} via {self.via}" if self.via else head


@dataclass(frozen=True, kw_only=True)
class FrameworkPins:
    framework: str
    version: str
    pins: tuple[Pin, ...] = ()

    @property
    def unmet(self) -> tuple[Pin, ...]:
        return tuple(p for p in self.pins if p.state != "ok")


def environment(python: PythonFacts | None, platform: PlatformFacts | None = None) -> dict[str, str]:
    """The target's marker environment as its own interpreter computed it; for facts without one (older
    or hand-written), derived from the platform facts and the Python version, else a plain Linux CPython."""
    env = dict(DEFAULT_ENVIRONMENT)
    if platform is not None and platform.system:
        env["platform_system"] = platform.system
        env["sys_platform"] = {"Windows": "win32", "Darwin": "darwin"}.get(platform.system, "linux")
        env["os_name"] = "nt" if platform.system == "Windows" else "posix"
        env["platform_machine"] = platform.machine or env["platform_machine"]
    if python is not None:
        if python.version:
            env["python_full_version"] = python.version
            env["python_version"] = ".".join(python.version.split(".")[:2])
        env.update(python.marker_environment)
    return env


def version_of(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def is_framework(name: str) -> bool:
    return name in FRAMEWORKS or bool(FRAMEWORK_PATTERN.match(name))


def _requirements(dist: Distribution) -> list[tuple[str, Requirement]]:
    parsed = []
    for line in dist.requires:
        try:
            parsed.append((line, Requirement(line)))
        except (InvalidRequirement, InvalidSpecifier, InvalidMarker):
            continue
    return parsed


def _applies(requirement: Requirement, env: Mapping[str, str], extra: str) -> bool:
    if requirement.marker is None:
        return extra == ""
    try:
        return requirement.marker.evaluate({**env, "extra": extra})
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return False


def _extras(parsed: Iterable[tuple[str, Requirement]]) -> list[str]:
    found: list[str] = []
    for _, requirement in parsed:
        for match in re.finditer(r"extra\s*==\s*['\"]([^'\"]+)['\"]", str(requirement.marker or "")):
            name = str(canonicalize_name(match.group(1)))
            if name not in found:
                found.append(name)
    return found


def _state(spec: SpecifierSet, installed: Distribution | None) -> PinState:
    if installed is None:
        return "missing"
    try:
        version = Version(installed.version)
    except InvalidVersion:
        return "ok"  # cannot judge a version that does not parse
    if spec.contains(version, prereleases=True):
        return "ok"
    floors, ceilings = [], []
    for s in spec:
        try:
            bound = Version(s.version.removesuffix(".*"))
        except InvalidVersion:
            continue
        if s.operator in (">=", ">", "==", "~=", "==="):
            floors.append(bound)
        if s.operator in ("<", "<=", "=="):
            ceilings.append(bound)
    if any(version < f for f in floors):
        return "too-old"
    if any(version > c for c in ceilings) or any(s.operator == "<" for s in spec):
        return "too-new"
    return "excluded"


def _active_extras(
    parsed: list[tuple[str, Requirement]], env: Mapping[str, str], installed: Mapping[str, Distribution]
) -> list[str]:
    """Extras in use: at least half of the checked wheels the extra adds to the base requirements are
    installed (pip records no extras).
    A requirement with extras of its own adds those extras' wheels too, so `jax[cuda12]`
    (`jax-cuda12-plugin[with-cuda]` and its nvidia-* wheels) is told apart from `jax[cuda12-local]`
    (the same plugin without them)."""
    base = {str(canonicalize_name(r.name)) for _, r in parsed if _applies(r, env, "")}
    active = []
    for extra in _extras(parsed):
        added = []
        for _, r in parsed:
            if not _applies(r, env, extra) or str(canonicalize_name(r.name)) in base:
                continue  # `jax[minimum-jaxlib]` only narrows the jaxlib every jax needs: it adds nothing
            if _checked(r.name):
                added.append(str(canonicalize_name(r.name)))
            target = installed.get(str(canonicalize_name(r.name)))
            if r.extras and target is not None:
                added += [
                    str(canonicalize_name(inner.name))
                    for _, inner in _requirements(target)
                    if _checked(inner.name)
                    and any(_applies(inner, env, str(canonicalize_name(e))) for e in r.extras)
                    and not _applies(inner, env, "")
                ]
        if added and 2 * sum(name in installed for name in added) >= len(added):
            active.append(extra)
    return active


def _checked(name: str) -> bool:
    canonical = str(canonicalize_name(name))
    return canonical not in NOT_CUDA and bool(CHECKED.match(canonical))


def framework_pins(
    python: PythonFacts | None, platform: PlatformFacts | None = None
) -> tuple[FrameworkPins, ...]:
    """Each installed framework's checked requirements for the target interpreter, with their state."""
    if python is None:
        return ()
    env = environment(python, platform)
    return tuple(
        FrameworkPins(
            framework=dist.name, version=dist.version, pins=distribution_pins(dist, python.distributions, env)
        )
        for dist in python.distributions
        if is_framework(dist.name)
    )


def distribution_pins(
    dist: Distribution, distributions: Iterable[Distribution], env: Mapping[str, str]
) -> tuple[Pin, ...]:
    """One distribution's checked requirements (with the extras in use) against these installed ones."""
    installed = {d.name: d for d in distributions}
    parsed = _requirements(dist)
    pins: dict[str, Pin] = {}
    for extra in ("", *_active_extras(parsed, env, installed)):
        for line, requirement in parsed:
            if not _applies(requirement, env, extra) or (extra and _applies(requirement, env, "")):
                continue
            _add(pins, dist.name, line, requirement, extra or None, None, installed, env)
    return tuple(pins.values())


def _add(
    pins: dict[str, Pin],
    framework: str,
    line: str,
    requirement: Requirement,
    extra: str | None,
    via: str | None,
    installed: Mapping[str, Distribution],
    env: Mapping[str, str],
) -> None:
    name = str(canonicalize_name(requirement.name))
    target = installed.get(name)
    key = f"{name}{requirement.specifier}"
    if _checked(name) and key not in pins:
        pins[key] = Pin(
            framework=framework,
            name=name,
            specifier=requirement.specifier,
            extras=tuple(sorted(requirement.extras)),
            line=line,
            via=via,
            extra=extra,
            installed=target.version if target else None,
            state=_state(requirement.specifier, target),
        )
    if via is None and requirement.extras and target is not None:
        label = f"{name}[{','.join(sorted(requirement.extras))}]{requirement.specifier}"
        for inner_line, inner in _requirements(target):
            if any(_applies(inner, env, str(canonicalize_name(e))) for e in requirement.extras):
                _add(pins, framework, inner_line, inner, extra, label, installed, env)


@dataclass(frozen=True, kw_only=True)
class Resolution:
    """One pip command that satisfies every framework at once, or why no single set exists."""

    specs: tuple[str, ...] = ()  # what to install, pinned
    conflicts: tuple[str, ...] = ()  # sentences: which frameworks want what cannot coexist
    move: str | None = None  # the framework to give its own virtual environment


def resolve(all_pins: Iterable[FrameworkPins], python: PythonFacts | None = None) -> Resolution:
    """Merge every framework's unmet pins into one install set, or find that none exists."""
    all_pins = tuple(all_pins)
    by_name: dict[str, list[Pin]] = {}
    for fw in all_pins:
        for pin in fw.pins:
            by_name.setdefault(pin.name, []).append(pin)
    conflicts: list[str] = []
    involved: set[str] = set()
    specs: list[str] = []
    for name, pins in sorted(by_name.items()):
        if all(p.state == "ok" for p in pins):
            continue
        merged = SpecifierSet()
        for pin in pins:
            merged &= pin.specifier
        choice = _choose(merged, pins)
        if choice is None:
            wants = "; ".join(f"{p.asked_by} wants {p.spec_text}" for p in pins)
            conflicts.append(f"no {name} satisfies every framework: {wants}")
            involved.update(p.framework for p in pins)
            continue
        specs.append(choice)
    for a, b in _same_file_pairs(by_name):
        frameworks_a = sorted({p.framework for p in by_name[a]})
        frameworks_b = sorted({p.framework for p in by_name[b]})
        if set(frameworks_a) == set(frameworks_b):
            continue
        conflicts.append(
            f"{', '.join(frameworks_a)} needs {a} and {', '.join(frameworks_b)} needs {b}; both wheels write "
            "the same files, so only one of them can be on disk"
        )
        involved.update(frameworks_a + frameworks_b)
    specs = _collapse(specs, by_name)
    if not conflicts:
        return Resolution(specs=tuple(specs))

    def burden(framework: str) -> tuple[int, int, int]:
        unmet = sum(len(fw.unmet) for fw in all_pins if fw.framework == framework)
        return unmet, _lost_files(python, framework, by_name), _rank(framework)

    move = max(sorted(involved), key=burden)
    moved = {p.name for p in _pins_of(all_pins, move)}
    keep = [s for s in specs if _spec_name(s) not in moved]
    return Resolution(specs=tuple(keep), conflicts=tuple(conflicts), move=move)


def _collapse(specs: list[str], by_name: Mapping[str, list[Pin]]) -> list[str]:
    """Wheels that only come through another package's extra are restored by that package's own line
    (`cuda-toolkit[cublas,cudart]==13.0.3`), as the framework's metadata writes it."""
    kept: list[str] = []
    for spec in specs:
        pins = by_name.get(_spec_name(spec), [])
        vias = {p.via for p in pins}
        if pins and None not in vias and len(vias) == 1:
            parent = next(iter(vias))
            if parent is not None and parent not in kept:
                kept.append(parent)
            continue
        kept.append(spec)
    return kept


def _spec_name(spec: str) -> str:
    return re.split(r"[=<>!~\[ ;]", spec, maxsplit=1)[0]


def _rank(framework: str) -> int:
    order = ("tensorflow", "jax", "jaxlib", "torch")
    return order.index(framework) if framework in order else -1


def _pins_of(all_pins: tuple[FrameworkPins, ...], framework: str | None) -> tuple[Pin, ...]:
    return next((fw.pins for fw in all_pins if fw.framework == framework), ())


def _lost_files(python: PythonFacts | None, framework: str, by_name: Mapping[str, list[Pin]]) -> int:
    """1 when a wheel this framework needs lost a shared file on disk to another wheel."""
    if python is None:
        return 0
    needed = {name for name, pins in by_name.items() if any(p.framework == framework for p in pins)}
    for shared in python.shared_files:
        if any(o.distribution in needed and not o.matches for o in shared.owners) and any(
            o.matches for o in shared.owners
        ):
            return 1
    return 0


def _same_file_pairs(by_name: Mapping[str, list[Pin]]) -> list[tuple[str, str]]:
    """Required wheels that are CUDA-12 and CUDA-13 builds of one library writing the same files."""
    stems: dict[str, list[str]] = {}
    for name in by_name:
        match = CUDA_SUFFIX.match(name)
        if match and match.group("stem") in SAME_FILES_STEMS:
            stems.setdefault(match.group("stem"), []).append(name)
    return [(names[0], names[1]) for names in (sorted(v) for v in stems.values()) if len(names) == 2]


def _choose(merged: SpecifierSet, pins: list[Pin]) -> str | None:
    """A requirement string that meets every pin: an exact pin when one is asked, else the merged range."""
    candidates: list[Version] = []
    for pin in pins:
        for s in pin.specifier:
            try:
                candidates.append(Version(s.version.removesuffix(".*")))
            except InvalidVersion:
                continue
        installed = version_of(pin.installed)
        if installed is not None:
            candidates.append(installed)
    extras = sorted({e for p in pins for e in p.extras})
    name = pins[0].name + (f"[{','.join(extras)}]" if extras else "")
    if not str(merged):
        return name
    fitting = [v for v in candidates if merged.contains(v, prereleases=True)]
    if not fitting:
        return None
    exact = [s for s in merged if s.operator in ("==", "===") and "*" not in s.version]
    if exact:
        return f"{name}=={exact[0].version}"
    ceilings = {version_of(s.version) for s in merged if s.operator == "<="}
    pinned = next((v for v in fitting if ceilings == {v}), None)
    if pinned is not None:  # "<=0.10.2,>=0.10.1,>=0.10.2" admits one release only: say which
        return f"{name}=={pinned}"
    return f"{name}{merged}"


def requirement_on(
    dist: Distribution, names: Iterable[str], env: Mapping[str, str]
) -> tuple[str, SpecifierSet, str | None] | None:
    """What `dist`'s own metadata asks of one of these distributions on this platform, under any of its
    extras (TensorFlow's `[and-cuda]`, a JAX plugin's `[with-cuda]`), installed or not: the required
    name, its specifier and the extra that adds it (None: always)."""
    wanted = {str(canonicalize_name(n)) for n in names}
    parsed = _requirements(dist)
    for extra in ("", *_extras(parsed)):
        for _, requirement in parsed:
            name = str(canonicalize_name(requirement.name))
            if name in wanted and _applies(requirement, env, extra):
                return name, requirement.specifier, extra or None
    return None


def lower_bound(spec: SpecifierSet) -> Version | None:
    """The lowest version a specifier admits, from its `>=`, `==`, `~=` or `>` clauses."""
    floors = []
    for s in spec:
        if s.operator in (">=", "==", "~=", ">", "==="):
            found = version_of(s.version.removesuffix(".*"))
            if found is not None:
                floors.append(found)
    return max(floors) if floors else None
