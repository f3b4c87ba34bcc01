"""Compare the matrix with what the released wheels say about themselves.

`tools/verify_matrix.py --refresh` records, per package, which releases have Linux (macOS, Windows)
wheels for which Python and each release's METADATA and TensorFlow `build_info.py`, under
tests/data/matrix_recording/. `verify(matrix, recording)` compares every framework row with it and
counts each fact as agree, disagree or unverifiable (the wheels do not say). It reads no network and
runs in the test suite, so a row edited to contradict a wheel fails CI.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import InvalidVersion, Version

from gpudoctor.matrix import JaxRelease, Matrix, TensorFlowRelease, TorchRelease

RECORDING = "tests/data/matrix_recording"

# package -> where its wheels are read, the first release worth recording, every patch or not
PACKAGES: dict[str, dict[str, Any]] = {
    "tensorflow": {"platform": "linux", "first": "1.13.0", "patches": True},
    "tensorflow-gpu": {"platform": "linux", "first": "1.13.0", "patches": True},
    "torch": {"platform": "linux", "first": "1.8.0", "patches": False},
    "jax": {"platform": "linux", "first": "0.4.1", "patches": True},
    "jax-cuda12-plugin": {"platform": "linux", "first": "0.4.1", "patches": True},
    "jax-cuda13-plugin": {"platform": "linux", "first": "0.4.1", "patches": True},
    "tensorflow-metal": {"platform": "macos", "first": "0.1", "patches": True},
    "tensorflow-directml-plugin": {"platform": "windows", "first": "0.0.1.dev0", "patches": True},
}
PYTHON_MINORS = tuple(f"3.{m}" for m in range(5, 16))


def _v(text: str | None) -> Version | None:
    try:
        return Version(text) if text else None
    except InvalidVersion:
        return None


def releases_to_record(matrix: Matrix, package: str, by_python: dict[str, list[str]]) -> dict[str, str]:
    """version -> the newest Python with a wheel of it, for the releases worth recording: every final
    release (or the first and last of each series), and the newest pre-release beyond them."""
    del matrix  # every listed release is recorded, whether or not the matrix knows it yet
    spec = PACKAGES[package]
    first = Version(spec["first"])
    newest_python: dict[str, str] = {}
    for python in sorted(by_python, key=Version):
        for version in by_python[python]:
            newest_python[version] = python
    parsed = {v: p for v in newest_python if (p := _v(v)) is not None and p >= first}
    finals = sorted((p for p in parsed.values() if not p.is_prerelease), reverse=True)
    keep: set[Version] = set()
    if spec["patches"]:
        keep.update(finals)
    else:
        series: dict[tuple[int, ...], list[Version]] = {}
        for p in finals:
            series.setdefault(p.release[:2], []).append(p)
        for members in series.values():
            keep.update({min(members), max(members)})
    pre = [p for p in parsed.values() if p.is_prerelease and (not finals or p > finals[0])]
    if pre:
        keep.add(max(pre))
    if not finals:  # dev releases only (tensorflow-directml-plugin)
        keep.update(parsed.values())
    return {v: newest_python[v] for v, p in parsed.items() if p in keep}


# ----------------------------------------------------------------------------------------------
# The recording


@dataclass(frozen=True)
class PackageRecord:
    package: str
    recorded: str
    by_python: dict[str, list[str]]  # Python minor -> releases with a wheel for it
    releases: dict[str, dict[str, Any]]  # version -> what its wheel says

    def pythons(self, version: str) -> set[str]:
        return {py for py, versions in self.by_python.items() if version in versions}

    def series(self, series: str) -> list[str]:
        """Recorded final releases of a series ("2.15" -> 2.15.0, 2.15.0.post1, 2.15.1), oldest first."""
        found = [
            v
            for v in self.releases
            if (p := _v(v)) is not None
            and f"{p.release[0]}.{p.release[1]}" == series
            and "error" not in self.releases[v]
        ]
        finals = [v for v in found if not Version(v).is_prerelease]
        return sorted(finals or found, key=Version)

    def listed(self) -> list[str]:
        return sorted({v for versions in self.by_python.values() for v in versions}, key=Version)


@dataclass(frozen=True)
class Recording:
    packages: dict[str, PackageRecord]

    @property
    def recorded(self) -> str:
        return max((p.recorded for p in self.packages.values()), default="")

    def get(self, package: str) -> PackageRecord | None:
        return self.packages.get(package)


def load_recording(folder: str | Path) -> Recording:
    packages = {}
    for path in sorted(Path(folder).glob("*.json")):
        document = json.loads(path.read_text(encoding="utf-8"))
        packages[document["package"]] = PackageRecord(
            package=document["package"],
            recorded=document.get("recorded", ""),
            by_python=document.get("versions_by_python", {}),
            releases=document.get("releases", {}),
        )
    return Recording(packages)


# ----------------------------------------------------------------------------------------------
# Comparing


@dataclass
class Result:
    agree: int = 0
    disagree: int = 0
    unverifiable: int = 0
    lines: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)

    @property
    def checked(self) -> int:
        return self.agree + self.disagree + self.unverifiable

    @property
    def summary(self) -> str:
        return (
            f"checked {self.checked}, agree {self.agree}, disagree {self.disagree}, "
            f"unverifiable {self.unverifiable}"
        )

    def compare(self, what: str, matrix: object, wheels: object) -> None:
        if wheels is None:
            self.unverifiable += 1
            self.unverified.append(what)
        elif matrix == wheels:
            self.agree += 1
        else:
            self.disagree += 1
            self.lines.append(f"{what}: matrix {_show(matrix)}, wheels {_show(wheels)}")


def _show(value: object) -> str:
    if isinstance(value, set | frozenset | list | tuple):
        return "[" + ", ".join(sorted(str(v) for v in value)) + "]" if value else "[]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}{v}" for k, v in sorted(value.items())) + "}"
    return str(value)


def _requirements(record: dict[str, Any]) -> Iterator[Requirement]:
    for line in record.get("requires_dist") or ():
        try:
            yield Requirement(line)
        except InvalidRequirement:
            continue


def _extras_of(requirement: Requirement) -> set[str]:
    marker = str(requirement.marker or "")
    return {m.replace("_", "-") for m in re.findall(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)}


def _under_extra(record: dict[str, Any], extra: str) -> dict[str, str]:
    """Requirement name -> specifier of the requirements a pip extra adds."""
    wanted = extra.replace("_", "-")
    return {
        r.name.lower().replace("_", "-"): str(r.specifier)
        for r in _requirements(record)
        if wanted in _extras_of(r)
    }


def _python_set(spec: SpecifierSet) -> set[str]:
    return {py for py in PYTHON_MINORS if spec.contains(f"{py}.0", prereleases=True)}


def _same_specs(left: dict[str, str], right: dict[str, str]) -> bool:
    return left.keys() == right.keys() and all(SpecifierSet(left[k]) == SpecifierSet(right[k]) for k in left)


def verify(matrix: Matrix, recording: Recording) -> Result:
    """Every framework row against the recorded wheels."""
    result = Result()
    for release in matrix.section_rows()["tensorflow"]:
        _tensorflow(result, release, recording)
    for torch in matrix.torch:
        _torch(result, torch, recording)
    jax = recording.get("jax")
    for run in matrix.jax:
        _jax_run(result, run, jax, recording)
    for plugin in matrix.jax_cuda_plugins:
        _jax_plugin(result, matrix, plugin.major, recording)
    _plugins(result, "tensorflow-metal", matrix.tensorflow_metal, recording)
    _plugins(result, "tensorflow-directml-plugin", matrix.tensorflow_directml, recording)
    _platform(result, matrix, recording)
    return result


def _plugins(result: Result, package: str, rows: Iterable[Any], recording: Recording) -> None:
    """A TensorFlow device plugin's rows: Python wheels, and the TensorFlow it requires (where its
    METADATA says; tensorflow-metal declares none, so Apple's table is unverifiable here)."""
    record = recording.get(package)
    for row in rows:
        where = f"{package} {row.version}"
        entry = record.releases.get(row.version) if record else None
        if record is None or entry is None or "error" in entry:
            result.compare(f"{where} python", None, None)
            result.compare(f"{where} tensorflow", None, None)
            continue
        if row.python is not None:
            result.compare(f"{where} python", _python_set(row.python), record.pythons(row.version))
        pins = {
            r.name.lower(): str(r.specifier)
            for r in _requirements(entry)
            if r.name.lower() in ("tensorflow", "tensorflow-cpu", "tensorflow-macos") and not r.marker
        }
        wheel = pins.get(row.tensorflow_package)
        result.compare(
            f"{where} {row.tensorflow_package}",
            "same" if wheel is not None and SpecifierSet(wheel) == row.tensorflow else str(row.tensorflow),
            None if wheel is None else "same" if SpecifierSet(wheel) == row.tensorflow else wheel,
        )


def _tensorflow(result: Result, release: TensorFlowRelease, recording: Recording) -> None:
    where = f"tensorflow {release.version}"
    tf = recording.get("tensorflow")
    versions = tf.series(release.version) if tf else []
    if tf is None or not versions:
        for what in ("python", "gpu_packages", "linux build", "and_cuda"):
            result.compare(f"{where} {what}", None, None)
        return
    pythons = set().union(*(tf.pythons(v) for v in versions))
    result.compare(f"{where} python", _python_set(release.python), pythons)
    # Which distributions are CUDA builds, in every patch release of the series.
    patches: dict[str, set[str]] = {}
    known = True
    for package in ("tensorflow", "tensorflow-gpu"):
        record = recording.get(package)
        for version in record.series(release.version) if record else []:
            flag = (record.releases[version].get("build_info") or {}).get("is_cuda_build") if record else None
            if flag is None:
                known = False
            patches.setdefault(version, set())
            if flag:
                patches[version].add(package)
    odd = [
        v
        for v in sorted(patches, key=Version)
        if patches[v] != set(release.gpu_packages_in.get(v, release.gpu_packages))
    ]
    result.compare(
        f"{where} gpu_packages",
        set(release.gpu_packages)
        if not odd
        else f"{_show(release.gpu_packages_in.get(odd[0], release.gpu_packages))} in {odd[0]}",
        None
        if not known
        else set(release.gpu_packages)
        if not odd
        else f"{_show(patches[odd[0]])} in {odd[0]}",
    )
    newest = tf.releases[versions[-1]]
    info = newest.get("build_info") or {}
    build = release.linux
    if build is not None:
        cuda = info.get("cuda_version") or info.get("cuda_version_number")
        wheel_cuda = ".".join(str(cuda).split(".")[:2]) if cuda else None
        if wheel_cuda is not None and "." not in wheel_cuda and build.cuda.split(".")[0] == wheel_cuda:
            wheel_cuda = build.cuda  # "10": build_info names only the major (2.2, 1.x)
        result.compare(f"{where} linux cuda", build.cuda, wheel_cuda)
        cudnn = info.get("cudnn_version") or info.get("cudnn_version_number")
        result.compare(
            f"{where} linux cudnn major",
            build.cudnn.split(".")[0],
            str(cudnn).split(".")[0] if cudnn else None,
        )
        targets = info.get("cuda_compute_capabilities")
        result.compare(
            f"{where} linux compute capabilities",
            set(build.compute_capabilities),
            set(targets) if targets else None,
        )
    and_cuda = _under_extra(newest, "and-cuda")
    if "and-cuda" in (newest.get("provides_extra") or []) or and_cuda:
        same = _same_specs(release.and_cuda, and_cuda)
        result.compare(
            f"{where} and_cuda ({versions[-1]})",
            "same" if same else release.and_cuda,
            "same" if same else and_cuda,
        )
    else:
        result.compare(f"{where} and_cuda ({versions[-1]})", bool(release.and_cuda), False)


_CUDA_PIN = re.compile(r"^nvidia-cuda-runtime(?:-cu(\d+))?$|^cuda-toolkit$")


def _torch_default(record: dict[str, Any]) -> tuple[str | None, str | None]:
    """The CUDA variant ("cu128") and cuDNN a PyPI torch wheel pins, or (None, None) for a wheel that
    bundles its CUDA (<= 1.12: nothing in Requires-Dist says which)."""
    variant = cudnn = None
    for requirement in _requirements(record):
        name = requirement.name.lower().replace("_", "-")
        pins = [s.version for s in requirement.specifier if s.operator == "=="]
        if not pins:
            continue
        if _CUDA_PIN.match(name):
            major, minor = (*Version(pins[0]).release, 0)[:2]
            variant = f"cu{major}{minor}"
        elif name.startswith("nvidia-cudnn-cu"):
            cudnn = pins[0]
    return variant, cudnn


def _torch(result: Result, release: TorchRelease, recording: Recording) -> None:
    where = f"torch {release.version}"
    torch = recording.get("torch")
    versions = torch.series(release.version) if torch else []
    if torch is None or not versions:
        for what in ("python", "pypi default", "pypi default cudnn"):
            result.compare(f"{where} {what}", None, None)
        return
    pythons = set().union(*(torch.pythons(v) for v in versions))
    result.compare(f"{where} python", _python_set(release.python), pythons)
    variant, cudnn = _torch_default(torch.releases[versions[-1]])
    result.compare(f"{where} pypi_default_linux ({versions[-1]})", release.pypi_default_linux, variant)
    default = release.variant(release.pypi_default_linux)
    result.compare(f"{where} {release.pypi_default_linux} cudnn", default.cudnn if default else None, cudnn)


def _in_run(run: JaxRelease, versions: Iterable[str]) -> list[str]:
    low, high = Version(run.version), Version(run.until)
    return sorted(
        (v for v in versions if (p := _v(v)) is not None and low <= p < high and not p.is_prerelease),
        key=Version,
    )


def _lower_python(spec: str | None) -> str | None:
    if not spec:
        return None
    lows = [s.version for s in SpecifierSet(spec) if s.operator in (">=", ">")]
    return ".".join(lows[0].split(".")[:2]) if lows else None


def _cudnn_floor(specs: dict[str, str], major: int) -> str | None:
    spec = specs.get(f"nvidia-cudnn-cu{major}")
    if spec is None:
        return None
    lows = [s.version for s in SpecifierSet(spec) if s.operator in (">=", "==")]
    return lows[0] if lows else None


def _cuda_majors(extras: Iterable[str]) -> set[int]:
    """CUDA majors named by pip extras: "cuda12-local" -> 12, "cuda11-cudnn82" -> 11 ("cuda" alone: none)."""
    return {int(m.group(1)) for e in extras if (m := re.match(r"cuda(\d+)", e))}


def _installable_majors(record: dict[str, Any], recording: Recording) -> set[int]:
    """CUDA majors with an extra that installs: one naming a jax-cudaNN-plugin release that is on the
    index (jax[cuda13] of 0.7.0 named a plugin that was not), or one without a plugin (the
    monolithic jaxlib+cudaNN wheels)."""
    majors = set()
    for extra in record.get("provides_extra") or ():
        match = re.match(r"cuda(\d+)", extra)
        if not match:
            continue
        major = int(match.group(1))
        specs = _under_extra(record, extra)
        plugin = f"jax-cuda{major}-plugin"
        if plugin not in specs:
            majors.add(major)
            continue
        listed = recording.get(plugin)
        allowed = SpecifierSet(specs[plugin])
        if listed is not None and any(allowed.contains(v, prereleases=True) for v in listed.listed()):
            majors.add(major)
    return majors


def _jax_cudnn_floors(version: str, record: dict[str, Any], recording: Recording) -> dict[int, str]:
    floors: dict[int, str] = {}
    for major in (11, 12, 13):
        for extra in (f"cuda{major}-pip", f"cuda{major}"):
            specs = _under_extra(record, extra)
            floor = _cudnn_floor(specs, major)
            if floor is None and f"jax-cuda{major}-plugin" in specs:
                entry = _plugin_release(recording, major, specs[f"jax-cuda{major}-plugin"], version)
                floor = _cudnn_floor(_under_extra(entry, "with-cuda"), major) if entry else None
            if floor is not None:
                floors[major] = floor
                break
    return floors


def _plugin_release(recording: Recording, major: int, spec: str, version: str) -> dict[str, Any] | None:
    """The plugin release pip would pick for jax `version` (its pin; jax 0.4.37 pins plugin 0.4.36)."""
    plugin = recording.get(f"jax-cuda{major}-plugin")
    if plugin is None:
        return None
    if version in plugin.releases and "error" not in plugin.releases[version]:
        return plugin.releases[version]
    allowed = SpecifierSet(spec) if spec else SpecifierSet()
    fits = [
        v
        for v in plugin.releases
        if "error" not in plugin.releases[v] and allowed.contains(v, prereleases=True)
    ]
    return plugin.releases[max(fits, key=Version)] if fits else None


def _prefix_of(short: str, full: str) -> bool:
    """Whether the matrix floor `short` ("9.10.2", "8.9.4") holds for the wheel floor `full`
    ("9.10.2.21", "8.9"): the same major, and not below it. (A stricter floor than pip's pin is the
    runtime's own requirement, e.g. jaxlib built with cuDNN 8.9.4 while its extra pins >= 8.9.)"""
    left, right = Version(short).release, Version(full).release
    return left[0] == right[0] and left >= right[: len(left)]


def _jax_run(result: Result, run: JaxRelease, jax: PackageRecord | None, recording: Recording) -> None:
    where = f"jax {run.version}…<{run.until}"
    versions = _in_run(run, jax.releases) if jax else []
    versions = [v for v in versions if jax and "error" not in jax.releases[v]]
    if jax is None or not versions:
        for what in ("python", "extras", "cuda", "min_cudnn"):
            result.compare(f"{where} {what}", None, None)
        return
    lows = {v: _lower_python(jax.releases[v].get("requires_python")) for v in versions}
    want = _lower_python(str(run.python))
    odd = sorted((v for v, low in lows.items() if low != want), key=Version)
    result.compare(f"{where} python", want, want if not odd else f"{lows[odd[0]]} in {', '.join(odd)}")
    extras = {
        v: {e.replace("_", "-") for e in jax.releases[v].get("provides_extra") or () if e.startswith("cuda")}
        for v in versions
    }
    mine = {e.replace("_", "-") for e in run.extras}
    odd = [v for v in versions if extras[v] != mine]
    result.compare(
        f"{where} extras", mine, mine if not odd else f"{_show(extras[odd[0]])} in {', '.join(odd)}"
    )
    floors = {v: _jax_cudnn_floors(v, jax.releases[v], recording) for v in versions}
    majors = {v: _installable_majors(jax.releases[v], recording) for v in versions}
    odd = [v for v in versions if majors[v] != set(run.cuda)]
    result.compare(
        f"{where} cuda",
        set(run.cuda),
        set(run.cuda) if not odd else f"{_show(majors[odd[0]])} in {', '.join(odd)}",
    )
    for major in sorted({m for f in floors.values() for m in f} | set(run.min_cudnn)):
        mine_floor = run.min_cudnn.get(major)
        seen = {v: f[major] for v, f in floors.items() if major in f}
        if not seen:
            result.compare(f"{where} min_cudnn cuda{major}", mine_floor, None)
            continue
        odd = [v for v, floor in seen.items() if mine_floor is None or not _prefix_of(mine_floor, floor)]
        shown = sorted(set(seen.values()), key=Version)
        result.compare(
            f"{where} min_cudnn cuda{major}",
            mine_floor,
            mine_floor if not odd else f"{', '.join(shown)} ({', '.join(odd)})",
        )


def _jax_plugin(result: Result, matrix: Matrix, major: int, recording: Recording) -> None:
    plugin = matrix.jax_cuda(major)
    jax = recording.get("jax")
    record = recording.get(f"jax-cuda{major}-plugin")
    where = f"jax_cuda {major}"
    if plugin is None or jax is None or record is None:
        result.compare(f"{where} min_jax", None, None)
        return
    listed = set(record.listed())
    firsts = [
        v
        for v in sorted(jax.releases, key=Version)
        if v in listed
        and f"cuda{major}" in {e.replace("_", "-") for e in jax.releases[v].get("provides_extra") or ()}
        and f"jax-cuda{major}-plugin" in _under_extra(jax.releases[v], f"cuda{major}")
    ]
    result.compare(f"{where} min_jax", plugin.min_jax, firsts[0] if firsts else None)
    newest = [v for v in sorted(record.releases, key=Version) if "error" not in record.releases[v]]
    floor = _cudnn_floor(_under_extra(record.releases[newest[-1]], "with-cuda"), major) if newest else None
    if floor is not None and _prefix_of(plugin.min_cudnn, floor):
        floor = plugin.min_cudnn
    result.compare(f"{where} min_cudnn ({newest[-1] if newest else '-'})", plugin.min_cudnn, floor)


def _platform(result: Result, matrix: Matrix, recording: Recording) -> None:
    tf = recording.get("tensorflow")
    if tf is None:
        return
    with_extra = [
        v
        for v in sorted(tf.releases, key=Version)
        if "and-cuda" in (tf.releases[v].get("provides_extra") or [])
    ]
    first = ".".join(with_extra[0].split(".")[:2]) if with_extra else None
    result.compare("platform tensorflow_first_and_cuda", matrix.platform.tensorflow_first_and_cuda, first)
    gpu = recording.get("tensorflow-gpu")
    if gpu is not None:
        stubs = [v for v in sorted(gpu.releases, key=Version) if "error" in gpu.releases[v]]
        wheels = [v for v in gpu.releases if "error" not in gpu.releases[v]]
        last = max(wheels, key=Version) if wheels else None
        stub = (
            ".".join(stubs[0].split(".")[:2])
            if stubs and (last is None or Version(stubs[0]) > Version(last))
            else None
        )
        result.compare(
            "platform tensorflow_gpu_stub_from (no wheel)", matrix.platform.tensorflow_gpu_stub_from, stub
        )


def newer_releases(matrix: Matrix, recording: Recording) -> list[str]:
    """One line per framework whose index lists releases beyond what the matrix knows."""
    lines = []
    known = {
        "tensorflow": max((Version(r.version) for r in matrix.section_rows()["tensorflow"]), default=None),
        "torch": max((Version(r.version) for r in matrix.torch), default=None),
    }
    for name, newest in known.items():
        record = recording.get(name)
        if record is None or newest is None:
            continue
        beyond = [
            v for v in record.listed() if Version(f"{Version(v).release[0]}.{Version(v).release[1]}") > newest
        ]
        if beyond:
            lines.append(f"newer on the index than the matrix knows: {name} {', '.join(beyond)}")
    jax = recording.get("jax")
    until = max((Version(r.until) for r in matrix.jax), default=None)
    if jax is not None and until is not None:
        beyond = [v for v in jax.listed() if Version(v) >= until]
        if beyond:
            lines.append(f"newer on the index than the matrix knows: jax {', '.join(beyond)}")
    return lines


_LAST_VERIFIED = re.compile(r"^last_verified: .*$", re.MULTILINE)


def set_last_verified(path: Path, recorded: str, summary: str) -> None:
    """Write `last_verified:` into the matrix file (one line, replaced in place)."""
    day = recorded or datetime.date.today().isoformat()
    line = f'last_verified: "{day} (tools/verify_matrix.py: {summary})"'
    text = path.read_text(encoding="utf-8")
    if _LAST_VERIFIED.search(text):
        text = _LAST_VERIFIED.sub(line, text, count=1)
    else:
        text = text.replace("schema: 1\n", f"schema: 1\n{line}\n", 1)
    path.write_text(text, encoding="utf-8")
