"""`gpudoctor matrix`: look things up in the compatibility matrix.

`query` returns plain text (the CLI prints it) and JSON-ready data; it never prints.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from gpudoctor.matrix import (
    JaxRelease,
    KnownIssue,
    Matrix,
    System,
    TensorFlowBuild,
    TensorFlowRelease,
    TorchRelease,
    TorchVariant,
    driver_at_least,
    is_short_driver,
    kernel_support,
    parse_version,
)

FRAMEWORKS = {
    "tensorflow": "tensorflow",
    "tf": "tensorflow",
    "tensorflow-gpu": "tensorflow",
    "torch": "torch",
    "pytorch": "torch",
    "jax": "jax",
    "jaxlib": "jax",
}
SYSTEMS: tuple[System, ...] = ("linux", "windows")


class MatrixQueryError(ValueError):
    """A query the matrix cannot answer (unknown framework or release, bad driver version)."""


@dataclass(frozen=True)
class QueryResult:
    text: str
    data: Any


def query(matrix: Matrix, *, framework: str | None, version: str | None, driver: str | None) -> QueryResult:
    """Answer `gpudoctor matrix [FRAMEWORK [VERSION]] [--driver VERSION]`."""
    if driver is not None and parse_version(driver) is None:
        raise MatrixQueryError(f"--driver {driver!r} is not a driver version like 535.104.05")
    if framework is None:
        if version is not None:
            raise MatrixQueryError(
                "name a framework before the version, e.g. `gpudoctor matrix tensorflow 2.10`"
            )
        return _driver(matrix, driver) if driver else _overview(matrix)
    name = FRAMEWORKS.get(framework.strip().lower())
    if name is None:
        raise MatrixQueryError(f"unknown framework {framework!r}: use tensorflow, torch or jax")
    if version is None:
        return _releases(matrix, name)
    if name == "tensorflow":
        return _tensorflow(matrix, version, driver)
    if name == "torch":
        return _torch(matrix, version, driver)
    return _jax(matrix, version, driver)


# ----------------------------------------------------------------------------------------------
# Overview and release lists


_PYTHON_MINORS = tuple(f"3.{m}" for m in range(30))


def python_text(spec: SpecifierSet) -> str:
    """The Python versions a specifier admits, as people write them: "2.7, 3.5–3.7", "3.10+"."""
    minors = [v for v in ("2.7", *_PYTHON_MINORS) if spec.contains(f"{v}.0", prereleases=True)]
    if not minors:
        return str(spec) or "any"
    runs: list[list[str]] = []
    for minor in minors:
        if runs and _adjacent(runs[-1][-1], minor):
            runs[-1].append(minor)
        else:
            runs.append([minor])
    parts = [run[0] if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs]
    if minors[-1] == _PYTHON_MINORS[-1]:
        last = runs[-1]
        parts[-1] = f"{last[0]}+"
    return ", ".join(parts)


def _adjacent(left: str, right: str) -> bool:
    (l_major, l_minor), (r_major, r_minor) = (tuple(int(x) for x in v.split(".")) for v in (left, right))
    return l_major == r_major and r_minor == l_minor + 1


def _span(versions: list[str]) -> str:
    ordered = sorted(versions, key=Version)
    return f"{ordered[0]} … {ordered[-1]}" if len(ordered) > 1 else ordered[0]


def _overview(matrix: Matrix) -> QueryResult:
    counts = matrix.sections()
    unverified = _unverified_counts(matrix)
    spans = {
        "tensorflow": _span([r.version for r in (*matrix.tensorflow, *matrix.tensorflow_prereleases)]),
        "cuda_toolkits": _span([t.cuda for t in matrix.cuda_toolkits]),
        "torch": _span([r.version for r in matrix.torch]),
        "jax": _span([r.version for r in matrix.jax]),
    }
    lines = [f"Compatibility matrix: {matrix.source}", ""]
    width = max(len(name) for name in counts) + 2
    for section, count in counts.items():
        extra = f"  ({spans[section]})" if section in spans else ""
        flag = f"  [{unverified[section]} unverified]" if unverified.get(section) else ""
        lines.append(f"  {section:<{width}}{count:>4} rows{extra}{flag}")
    lines += [
        "",
        f"Last verified against the released wheels: {matrix.last_verified or 'never'}",
        "Look up: gpudoctor matrix tensorflow 2.10 | torch 2.5 | jax 0.4.31 | --driver 470.82",
    ]
    data = {
        "source": matrix.source,
        "last_verified": matrix.last_verified or None,
        "sections": {s: {"rows": c, "unverified": unverified.get(s, 0)} for s, c in counts.items()},
        "ranges": spans,
    }
    return QueryResult("\n".join(lines), data)


def _unverified_counts(matrix: Matrix) -> dict[str, int]:
    return {
        name: sum(1 for r in rows if not getattr(r, "verified", True))
        for name, rows in matrix.section_rows().items()
    }


def _releases(matrix: Matrix, framework: str) -> QueryResult:
    rows: list[dict[str, Any]]
    if framework == "tensorflow":
        releases = (*matrix.tensorflow, *matrix.tensorflow_prereleases)
        rows = [
            {
                "version": r.version,
                "python": str(r.python),
                "linux_cuda": r.linux.cuda if r.linux else None,
                "windows_gpu": r.windows is not None,
                "prerelease": r.prerelease,
            }
            for r in releases
        ]
        lines = ["TensorFlow releases (Linux CUDA / native Windows GPU):"] + [
            f"  {row.version:<6} Python {python_text(row.python):<16} CUDA {r['linux_cuda'] or '-':<5}"
            f"{'  + Windows GPU' if r['windows_gpu'] else ''}"
            f"{f'  (pre-release {row.prerelease})' if row.prerelease else ''}"
            for row, r in zip(releases, rows, strict=True)
        ]
    elif framework == "torch":
        rows = [
            {
                "version": r.version,
                "python": str(r.python),
                "variants": [v.name for v in r.variants],
                "pypi_default_linux": r.pypi_default_linux,
            }
            for r in matrix.torch
        ]
        lines = ["PyTorch releases (variants; * = plain `pip install torch` on Linux):"] + [
            f"  {row.version:<6} Python {python_text(row.python):<16} "
            + " ".join(v + ("*" if v == r["pypi_default_linux"] else "") for v in r["variants"])
            for row, r in zip(matrix.torch, rows, strict=True)
        ]
    else:
        rows = [
            {"version": r.version, "until": r.until, "python": str(r.python), "cuda": list(r.cuda)}
            for r in matrix.jax
        ]
        lines = ["JAX releases (runs of releases with the same GPU support):"] + [
            f"  {row.version:<7}… <{row.until:<7} Python {python_text(row.python):<8} CUDA "
            + (", ".join(str(c) for c in row.cuda) or "-")
            for row in matrix.jax
        ]
    return QueryResult("\n".join(lines), {"framework": framework, "releases": rows})


# ----------------------------------------------------------------------------------------------
# Shared pieces


def _gpu_support(matrix: Matrix, targets: tuple[str, ...]) -> dict[str, list[str]]:
    native: list[str] = []
    ptx: list[str] = []
    for arch in sorted(matrix.architectures, key=lambda a: Version(a.cc)):
        support = kernel_support(arch.cc, targets)
        if support == "native":
            native.append(arch.cc)
        elif support == "ptx":
            ptx.append(arch.cc)
    return {"native": native, "ptx": ptx}


def _gpu_lines(support: dict[str, list[str]], targets: tuple[str, ...]) -> list[str]:
    if not targets:
        return ["GPUs: not recorded for this build"]
    lines = [f"GPUs: kernels for CC {', '.join(support['native']) or 'none'}"]
    if support["ptx"]:
        lines.append(f"      PTX JIT at first start for CC {', '.join(support['ptx'])}")
    lines.append(f"      (targets {' '.join(targets)})")
    return lines


def _driver_data(matrix: Matrix, cuda: str, system: System) -> dict[str, Any]:
    requirement = matrix.driver_requirement(cuda, system)
    if requirement is None:
        return {
            "cuda": cuda,
            "toolkit_minimum": None,
            "compat_minimum": None,
            "floor": None,
            "verified": False,
        }
    return {
        "cuda": requirement.cuda,
        "toolkit_minimum": requirement.toolkit_minimum,
        "compat_minimum": requirement.compat_minimum,
        "floor": requirement.floor,
        "verified": requirement.verified,
    }


def _driver_text(info: dict[str, Any]) -> str:
    compat, toolkit, lowest = info["compat_minimum"], info["toolkit_minimum"], info["floor"]
    if toolkit and lowest == compat != toolkit:
        text = f">= {compat} (CUDA {info['cuda'].split('.')[0]}.x minor-version compatibility; {toolkit} for the {info['cuda']} toolkit itself)"
    elif lowest:
        text = f">= {lowest}"
    else:
        text = "unknown"
    return text + ("" if info["verified"] else "  [unverified]")


def _fits(matrix: Matrix, driver: str | None, cuda: str | None, system: System) -> bool | None:
    if driver is None or cuda is None:
        return None
    return matrix.driver_runs_cuda(driver, cuda, system)


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "NO", None: "unknown"}[value]


def _unknown(framework: str, version: str, known: list[str]) -> MatrixQueryError:
    return MatrixQueryError(f"{framework} {version} is not in the matrix; known releases: {_span(known)}")


# ----------------------------------------------------------------------------------------------
# TensorFlow


def _tensorflow(matrix: Matrix, version: str, driver: str | None) -> QueryResult:
    release = matrix.tensorflow_release(version)
    if release is None:
        raise _unknown("tensorflow", version, [r.version for r in matrix.section_rows()["tensorflow"]])
    lines = [
        f"TensorFlow {release.version}   Python {python_text(release.python)}"
        + (f"   [PRE-RELEASE {release.prerelease}]" if release.prerelease else "")
        + ("" if release.verified else "   [unverified]"),
        f"  GPU packages (Linux): {', '.join(release.gpu_packages) or 'none'}",
    ]
    if release.prerelease:
        lines.append(
            f"  Only a pre-release is out: pip install --pre 'tensorflow=={release.prerelease}'"
            " (a plain `pip install tensorflow` does not pick it)"
        )
    builds: dict[str, Any] = {}
    pairs: tuple[tuple[System, TensorFlowBuild | None], ...] = (
        ("linux", release.linux),
        ("windows", release.windows),
    )
    for system, build in pairs:
        label = "Linux" if system == "linux" else "Windows"
        if build is None:
            lines.append(f"  {label}: no CUDA build" + _no_build_hint(matrix, release, system))
            builds[system] = None
            continue
        builds[system] = _tf_build_data(matrix, build, system, driver)
        lines += _tf_build_lines(label, build, builds[system], driver)
    if release.and_cuda:
        lines.append("  pip install 'tensorflow[and-cuda]' pins:")
        lines += [f"    {dist}{spec}" for dist, spec in release.and_cuda.items()]
    if release.notes:
        lines.append(f"  Note: {release.notes}")
    lines.append(f"  Source: {release.source}")
    data = {
        "framework": "tensorflow",
        "version": release.version,
        "python": str(release.python),
        "gpu_packages": list(release.gpu_packages),
        "prerelease": release.prerelease,
        "linux": builds["linux"],
        "windows": builds["windows"],
        "and_cuda": dict(release.and_cuda),
        "notes": release.notes,
        "source": release.source,
        "verified": release.verified,
    }
    if driver is not None:
        data["driver"] = driver
    return QueryResult("\n".join(lines), data)


def _no_build_hint(matrix: Matrix, release: TensorFlowRelease, system: str) -> str:
    last = matrix.platform.tensorflow_last_windows_gpu
    if system == "windows" and Version(release.version) > Version(last):
        return f" (native Windows GPU ended with {last}: use WSL2, or tensorflow<{_next_minor(last)})"
    return ""


def _next_minor(version: str) -> str:
    major, minor = Version(version).release[:2]
    return f"{major}.{minor + 1}"


def _tf_build_data(
    matrix: Matrix, build: TensorFlowBuild, system: System, driver: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "cuda": build.cuda,
        "cudnn": build.cudnn,
        "cudart": build.cudart,
        "cudnn_library": build.cudnn_library,
        "cudart_build_info": build.cudart_build_info,
        "python": str(build.python) if build.python else None,
        "compute_capabilities": list(build.compute_capabilities),
        "compute_capabilities_verified": build.compute_capabilities_verified,
        "gpus": _gpu_support(matrix, build.compute_capabilities),
        "driver": _driver_data(matrix, build.cuda, system),
        "source": build.source,
        "verified": build.verified,
    }
    if driver is not None:
        data["driver_ok"] = _fits(matrix, driver, build.cuda, system)
    return data


def _tf_build_lines(
    label: str, build: TensorFlowBuild, data: dict[str, Any], driver: str | None
) -> list[str]:
    pad = " " * (len(label) + 4)
    lines = [
        f"  {label}: CUDA {build.cuda}, cuDNN {build.cudnn} (same major, minor >= {build.cudnn.split('.')[1]})"
        + (f", Python {python_text(build.python)}" if build.python else "")
        + ("" if build.verified else "  [unverified]"),
        f"{pad}loads {build.cudart} and {build.cudnn_library}"
        + (f" (build_info says {build.cudart_build_info})" if build.cudart_build_info else ""),
        f"{pad}driver {_driver_text(data['driver'])}",
    ]
    if driver is not None:
        lines.append(f"{pad}driver {driver} is enough: {_yes_no(data['driver_ok'])}")
    lines += [pad + line for line in _gpu_lines(data["gpus"], build.compute_capabilities)]
    if build.compute_capabilities and not build.compute_capabilities_verified:
        lines.append(
            f"{pad}      [targets unverified: from TensorFlow's release build scripts, not the wheel]"
        )
    return lines


# ----------------------------------------------------------------------------------------------
# PyTorch


def _torch(matrix: Matrix, version: str, driver: str | None) -> QueryResult:
    release = matrix.torch_release(version)
    if release is None:
        raise _unknown("torch", version, [r.version for r in matrix.torch])
    parsed = parse_version(version)
    wanted = parsed.local if parsed is not None else None
    shown = release.variants
    if wanted:
        shown = tuple(v for v in release.variants if v.name == wanted)
        if not shown:
            raise MatrixQueryError(
                f"torch {release.version} has no {wanted} variant in the matrix; its variants: "
                + ", ".join(v.name for v in release.variants)
            )
    pin = parsed.public if parsed is not None and len(parsed.release) >= 3 else f"{release.version}.*"
    lines = [
        f"PyTorch {release.version}   Python {python_text(release.python)}"
        + ("" if release.verified else "   [unverified]"),
        f"  plain `pip install torch`: {release.pypi_default_linux} on Linux x86_64, cpu on Windows and macOS",
    ]
    if release.free_threaded:
        lines.append(f"  free-threaded CPython wheels: {', '.join(release.free_threaded)}")
    variants = [_torch_variant_data(matrix, release, v, driver) for v in shown]
    for variant, variant_data in zip(shown, variants, strict=True):
        lines += _torch_variant_lines(pin, variant, variant_data, driver)
    if release.notes:
        lines.append(f"  Note: {release.notes}")
    known = [
        k for k in matrix.known_issues if k.framework == "torch" and _in_series(k.release, release.version)
    ]
    lines += [f"  Known issue: {_known_issue_text(k)}" for k in known]
    lines.append(f"  Source: {release.source}")
    data: dict[str, Any] = {
        "framework": "torch",
        "version": release.version,
        "python": str(release.python),
        "pypi_default_linux": release.pypi_default_linux,
        "free_threaded": list(release.free_threaded),
        "variant": wanted or None,
        "variants": variants,
        "notes": release.notes,
        "known_issues": [dataclasses.asdict(k) for k in known],
        "source": release.source,
        "verified": release.verified,
    }
    if driver is not None:
        data["driver"] = driver
        data["runnable_variants"] = [
            v.name for v in matrix.torch_variants_for_driver(release.version, driver, "linux") if v in shown
        ]
    return QueryResult("\n".join(lines), data)


KNOWN_ISSUE_WORDS = {
    "import_error": "`import` fails naming {symptom}",
    "numpy1_build": "built against NumPy 1 (fails with NumPy 2)",
}


def _in_series(release: str, series: str) -> bool:
    return release == series or release.startswith(f"{series}.")


def _known_issue_text(issue: KnownIssue) -> str:
    what = KNOWN_ISSUE_WORDS[issue.kind].format(symptom=issue.symptom)
    return f"{issue.release} on {issue.platform}: {what}; fixed in {issue.fixed_in} ({issue.issue})"


def _torch_variant_data(
    matrix: Matrix, release: TorchRelease, variant: TorchVariant, driver: str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": variant.name,
        "cuda": variant.cuda,
        "cudnn": variant.cudnn,
        "arch_list": list(variant.arch_list),
        "windows_arch_list": list(variant.windows_arch_list),
        "index_url": variant.index_url,
        "pypi_default_linux": variant.name == release.pypi_default_linux,
        "gpus": _gpu_support(matrix, variant.arch_list),
        "driver": {s: _driver_data(matrix, variant.cuda, s) for s in SYSTEMS} if variant.cuda else None,
        "verified": variant.verified,
    }
    if driver is not None and variant.cuda:
        data["driver_ok"] = _fits(matrix, driver, variant.cuda, "linux")
    return data


def _torch_variant_lines(
    pin: str, variant: TorchVariant, data: dict[str, Any], driver: str | None
) -> list[str]:
    star = "  (PyPI default on Linux)" if data["pypi_default_linux"] else ""
    flag = "  [unverified]" if not variant.verified else ""
    if variant.cuda is None:
        return [f"  cpu: {variant.index_url}{star}"]
    lines = [
        f"  {variant.name}: CUDA {variant.cuda}, cuDNN {variant.cudnn or 'unknown'}{star}{flag}",
        f'      pip install "torch=={pin}" --index-url {variant.index_url}',
        f"      Linux driver {_driver_text(data['driver']['linux'])}",
    ]
    if driver is not None:
        lines.append(f"      driver {driver} is enough (Linux): {_yes_no(data.get('driver_ok'))}")
    lines += ["      " + line for line in _gpu_lines(data["gpus"], variant.arch_list)]
    if variant.windows_arch_list:
        lines.append(f"      Windows targets: {' '.join(variant.windows_arch_list)}")
    return lines


# ----------------------------------------------------------------------------------------------
# JAX


JAX_CUDA_RELEASES = "https://storage.googleapis.com/jax-releases/jax_cuda_releases.html"


def _jax(matrix: Matrix, version: str, driver: str | None) -> QueryResult:
    release = matrix.jax_release(version)
    if release is None:
        raise _unknown("jax", version, [r.version for r in matrix.jax])
    lines = [
        f"JAX {version} (releases {release.version} … <{release.until})   Python {python_text(release.python)}"
        + ("" if release.verified else "   [unverified]"),
        f"  NVIDIA GPU extras: {', '.join(release.extras) or 'none (see note)'}",
    ]
    plugins = []
    for major in release.cuda:
        entry, text = _jax_cuda_entry(matrix, release, version, major, driver)
        targets = release.targets.get(major, ())
        entry["targets"] = list(targets)
        entry["gpus"] = _gpu_support(matrix, targets)
        plugins.append(entry)
        lines.append(text)
        lines += ["      " + line for line in _gpu_lines(entry["gpus"], targets)]
    platform = matrix.platform
    lines.append(
        f"  Windows native GPU: {platform.jax_windows_native_gpu}; WSL2 GPU: {platform.jax_wsl2_gpu};"
        f" macOS: {platform.jax_macos}"
    )
    if release.notes:
        lines.append(f"  Note: {release.notes}")
    lines.append(f"  Source: {release.source}")
    if release.targets_source:
        lines.append(f"  Targets: {release.targets_source}")
    data = _jax_data(release, version, plugins)
    if driver is not None:
        data["driver"] = driver
    return QueryResult("\n".join(lines), data)


def _jax_cuda_entry(
    matrix: Matrix, release: JaxRelease, version: str, major: int, driver: str | None
) -> tuple[dict[str, Any], str]:
    """One CUDA major of a jax run: what it needs and how to install that exact release."""
    plugin = matrix.jax_cuda(major)
    family = matrix.cuda_family(major)
    cudnn = release.min_cudnn.get(major)
    entry: dict[str, Any] = {"cuda": major, "min_cudnn": cudnn}
    needs = [f"cuDNN >= {cudnn}"] if cudnn else []
    if plugin is not None and Version(version) >= Version(plugin.min_jax):
        entry.update(
            extra=plugin.extra,
            local_extra=plugin.local_extra,
            min_driver_linux=plugin.min_driver_linux,
            min_compute_capability=plugin.min_compute_capability,
        )
        needs += [f"Linux driver >= {plugin.min_driver_linux}", f"GPU CC >= {plugin.min_compute_capability}"]
        install = f'pip install "jax[{plugin.extra}]=={version}"'
    else:
        extras = [e for e in release.extras if e.replace("-", "_").startswith(f"cuda{major}_")]
        entry["extras"] = extras
        if family is not None:
            entry["min_driver_linux"] = family.linux
            needs.append(f"Linux driver >= {family.linux} (CUDA {major}.x minor-version compatibility)")
        if extras:
            install = f'pip install "jax[{extras[0]}]=={version}" -f {JAX_CUDA_RELEASES}'
        else:
            install = f"a jaxlib=={version}+cuda{major}.cudnnNN wheel from {JAX_CUDA_RELEASES}"
    text = f"  CUDA {major}: " + ", ".join(needs or ["no driver floor recorded"]) + f"; {install}"
    if driver is not None and "min_driver_linux" in entry:
        entry["driver_ok"] = driver_at_least(driver, entry["min_driver_linux"])
        text += f"; driver {driver}: {_yes_no(entry['driver_ok'])}"
    return entry, text


def _jax_data(release: JaxRelease, version: str, plugins: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "framework": "jax",
        "version": version,
        "row": {"from": release.version, "until": release.until},
        "python": str(release.python),
        "extras": list(release.extras),
        "cuda": plugins,
        "notes": release.notes,
        "source": release.source,
        "verified": release.verified,
    }


# ----------------------------------------------------------------------------------------------
# What a driver can run


def _driver(matrix: Matrix, driver: str) -> QueryResult:
    data: dict[str, Any] = {"driver": driver}
    lines = [f"NVIDIA driver {driver}"]
    if is_short_driver(driver):
        lines.append(
            f"  (Linux: read as the lowest {driver}.x release, so it meets a floor inside that series"
            f" such as {driver}.03, not one above it)"
        )
        data["read_as"] = f"the lowest {driver}.x release"
    for system in SYSTEMS:
        newest = matrix.newest_cuda_for_driver(driver, system)
        families = [
            f.major
            for f in matrix.cuda_families
            if (floor := f.linux if system == "linux" else f.windows) and driver_at_least(driver, floor)
        ]
        tensorflow = [
            r.version
            for r in matrix.tensorflow
            if (build := r.linux if system == "linux" else r.windows) is not None
            and matrix.driver_runs_cuda(driver, build.cuda, system)
        ]
        torch = {
            r.version: [v.name for v in variants]
            for r in matrix.torch
            if (variants := matrix.torch_variants_for_driver(r.version, driver, system))
        }
        jax = [
            p.extra
            for p in matrix.jax_cuda_plugins
            if system == "linux" and driver_at_least(driver, p.min_driver_linux)
        ]
        legacy = _jax_without_plugin(matrix, driver) if system == "linux" and not jax else None
        data[system] = {
            "newest_cuda_toolkit": newest,
            "cuda_majors_by_compatibility": families,
            "tensorflow": tensorflow,
            "torch": torch,
            "jax": jax,
        }
        if legacy is not None:
            data[system]["jax_before_plugins"] = legacy
        label = "Linux" if system == "linux" else "Windows (numbers as Windows drivers count them)"
        lines += ["", f"{label}:"]
        if newest is None and not families:
            lines.append(f"  runs no CUDA release gpudoctor knows{_oldest_toolkit_text(matrix, system)}")
            data[system]["runs_known_cuda"] = False
            continue
        data[system]["runs_known_cuda"] = True
        lines += [
            f"  newest CUDA toolkit: {newest or 'none in the matrix'}",
            "  runs any CUDA "
            + (
                ", ".join(f"{m}.x" for m in families) + " build that ships its own runtime"
                if families
                else f"build up to {newest} (no minor-version compatibility below "
                f"{_lowest_family_floor(matrix, system)})"
            ),
            f"  TensorFlow GPU builds: {_compact(tensorflow)}",
            f"  PyTorch CUDA builds: {_torch_compact(torch)}",
        ]
        if system == "linux":
            lines.append(f"  JAX: {_jax_driver_text(matrix, jax, legacy)}")
        else:
            lines.append(f"  JAX: no native Windows GPU support ({matrix.platform.jax_wsl2_gpu} under WSL2)")
    return QueryResult("\n".join(lines), data)


def _jax_without_plugin(matrix: Matrix, driver: str) -> dict[str, Any] | None:
    """The jax runs that `driver` runs through CUDA majors with no `jax[cudaNN]` plugin (CUDA 11: up to
    0.4.25), judged by the minor-version-compatibility floor of that major."""
    plugin_majors = {p.major for p in matrix.jax_cuda_plugins}
    runs = []
    for run in sorted(matrix.jax, key=lambda r: Version(r.version)):
        majors = [
            m
            for m in run.cuda
            if m not in plugin_majors
            and (family := matrix.cuda_family(m)) is not None
            and driver_at_least(driver, family.linux)
        ]
        if majors:
            runs.append((run, majors))
    if not runs:
        return None
    majors = sorted({m for _, ms in runs for m in ms})
    extras = list(
        dict.fromkeys(
            e
            for run, ms in runs
            for e in run.extras
            for m in ms
            if e.replace("-", "_").startswith(f"cuda{m}_")
        )
    )
    floors = {str(m): family.linux for m in majors if (family := matrix.cuda_family(m)) is not None}
    with_extras = next((run.version for run, _ in runs if run.extras), None)
    return {
        "from": runs[0][0].version,
        "until": runs[-1][0].until,
        "cuda": majors,
        "extras": extras,
        "extras_from": with_extras,
        "min_driver_linux": floors,
    }


def _jax_driver_text(matrix: Matrix, jax: list[str], legacy: dict[str, Any] | None) -> str:
    if jax:
        return ", ".join(f"jax[{e}]" for e in jax)
    plugins = ", ".join(f"jax[{p.extra}] needs >= {p.min_driver_linux}" for p in matrix.jax_cuda_plugins)
    if legacy is None:
        return f"no CUDA plugin ({plugins})"
    cuda = ", ".join(f"CUDA {m} (driver >= {floor})" for m, floor in legacy["min_driver_linux"].items())
    extras = " / ".join(f"jax[{e}]" for e in legacy["extras"]) or "monolithic jaxlib CUDA wheels"
    if legacy["extras"] and legacy["extras_from"] != legacy["from"]:
        extras += f" from {legacy['extras_from']}, monolithic jaxlib CUDA wheels before"
    return f"releases {legacy['from']} … <{legacy['until']} with {cuda}: {extras}; no CUDA plugin ({plugins})"


def _oldest_toolkit_text(matrix: Matrix, system: System) -> str:
    known = [
        (t.cuda, minimum)
        for t in matrix.cuda_toolkits
        if (minimum := t.linux if system == "linux" else t.windows) is not None
    ]
    if not known:
        return ""
    cuda, minimum = min(known, key=lambda item: Version(item[0]))
    return f" (the oldest, CUDA {cuda}, needs >= {minimum})"


def _lowest_family_floor(matrix: Matrix, system: System) -> str:
    floors = [floor for f in matrix.cuda_families if (floor := f.linux if system == "linux" else f.windows)]
    return min(floors, key=Version) if floors else "any driver"


def _compact(versions: list[str]) -> str:
    return ", ".join(versions) if versions else "none"


def _torch_compact(torch: dict[str, list[str]]) -> str:
    if not torch:
        return "none"
    return "; ".join(f"{version} ({' '.join(names)})" for version, names in torch.items())
