"""The target interpreter and the GPU-relevant distributions installed in it (one child process)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, get_args

from packaging.utils import canonicalize_name

from gpudoctor.facts import (
    CudaRoot,
    CudaRootVia,
    Distribution,
    DistributionCopy,
    FileOwner,
    FrameworkModule,
    PythonFacts,
    SharedFile,
    WheelFile,
)
from gpudoctor.prestart import in_own_prefix
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext
from gpudoctor.probes.child_process import run_child, string, strings

Origin = Literal["microsoft-store", "conda", "venv", "system", "pyenv", "other"]
ORIGINS: tuple[Origin, ...] = get_args(Origin)
SUMMARY_ORDER = (
    "tensorflow",
    "tensorflow-gpu",
    "tensorflow-cpu",
    "tensorflow-intel",
    "torch",
    "jax",
    "jaxlib",
    "nvidia-cudnn",
    "nvidia-cuda-runtime",
    "nvidia-",
)
SUMMARY_PACKAGES = 4
MARKER_NAMES = frozenset(
    {
        "implementation_name",
        "implementation_version",
        "os_name",
        "platform_machine",
        "platform_release",
        "platform_system",
        "platform_version",
        "python_full_version",
        "platform_python_implementation",
        "python_version",
        "sys_platform",
    }
)
CHILD_TIMEOUT = 25.0  # reading metadata is quick; stay inside the probe's own deadline


def collect(ctx: ProbeContext) -> PythonFacts:
    return ctx.memo.get("python", lambda: _survey(ctx))


def _survey(ctx: ProbeContext) -> PythonFacts:
    run = run_child(ctx, "python", timeout=min(ctx.child_timeout, CHILD_TIMEOUT))
    if run.data is None:
        return PythonFacts(executable=ctx.target.python, error=run.problem)
    return parse(run.data)


def surely_installed(ctx: ProbeContext, names: Iterable[str]) -> bool:
    """True when one of these distributions sits in the target's own prefix (a venv or conda env).

    A cheap look at `<prefix>/lib/python3.*/site-packages` (`Lib/site-packages` on Windows) that lets a
    framework probe start at once instead of waiting for the package survey; False proves nothing.
    """
    return in_own_prefix(ctx.target.python, names)  # shared with gpudoctor/prestart.py, which starts it early


def absent(ctx: ProbeContext, names: Iterable[str]) -> bool:
    """None of these distributions is installed: a quick look at the prefix first, then the survey."""
    names = tuple(names)
    return not surely_installed(ctx, names) and none_installed(ctx, names)


def none_installed(ctx: ProbeContext, names: Iterable[str]) -> bool:
    """True when the package survey ran and found none of these distributions.

    Framework probes use it to skip starting a child process of their own; when the survey
    failed they cannot tell and look for themselves.
    """
    facts = collect(ctx)
    if facts.error:
        return False
    wanted = {canonicalize_name(n) for n in names}
    return not any(canonicalize_name(d.name) in wanted for d in facts.distributions)


def parse(data: dict[str, Any]) -> PythonFacts:
    """Build facts from the child's JSON, tolerating missing or mistyped fields."""
    origin: Origin = next((o for o in ORIGINS if o == data.get("origin")), "other")
    return PythonFacts(
        executable=string(data.get("executable")),
        version=string(data.get("version")),
        implementation=_implementation(string(data.get("implementation"))),
        prefix=string(data.get("prefix")),
        base_prefix=string(data.get("base_prefix")),
        is_venv=data.get("is_venv") is True,
        origin=origin,
        bits=data["bits"] if isinstance(data.get("bits"), int) else 64,
        site_packages=strings(data.get("site_packages")),
        distributions=_distributions(data.get("distributions")),
        shadowing=strings(data.get("shadowing")),
        unreadable_metadata=strings(data.get("unreadable_metadata")),
        marker_environment=_marker_environment(data.get("marker_environment")),
        shared_files=_shared_files(data.get("shared_files")),
        shared_files_total=_count(data.get("shared_files_total")),
        framework_modules=_framework_modules(data.get("framework_modules")),
        wheel_tools=_wheel_files(data.get("wheel_tools")),
        wheel_libraries=_wheel_files(data.get("wheel_libraries")),
        cuda_roots=_cuda_roots(data.get("cuda_roots")),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _dicts(raw: object) -> list[dict[str, Any]]:
    return [item for item in raw if isinstance(item, dict)] if isinstance(raw, list) else []


def _marker_environment(raw: object) -> dict[str, str]:
    if not isinstance(raw, dict):
        return {}
    return {k: v for k, v in raw.items() if isinstance(k, str) and isinstance(v, str) and k in MARKER_NAMES}


def _shared_files(raw: object) -> tuple[SharedFile, ...]:
    found = []
    for item in _dicts(raw):
        owners = tuple(
            FileOwner(
                distribution=str(canonicalize_name(string(o.get("name")))),
                hash=string(o.get("hash")) or None,
                size=_size(o.get("size")),
                matches=o.get("matches") is True,
            )
            for o in _dicts(item.get("owners"))
            if string(o.get("name"))
        )
        if string(item.get("path")) and len(owners) > 1:
            found.append(
                SharedFile(
                    path=string(item.get("path")), owners=owners, disk_size=_size(item.get("disk_size"))
                )
            )
    return tuple(found)


def _framework_modules(raw: object) -> tuple[FrameworkModule, ...]:
    return tuple(
        FrameworkModule(
            module=string(item.get("module")),
            path=string(item.get("path")),
            owners=tuple(str(canonicalize_name(n)) for n in strings(item.get("owners"))),
            matches=tuple(str(canonicalize_name(n)) for n in strings(item.get("matches"))),
        )
        for item in _dicts(raw)
        if string(item.get("module")) and string(item.get("path"))
    )


def _wheel_files(raw: object) -> tuple[WheelFile, ...]:
    return tuple(
        WheelFile(
            name=string(item.get("name")),
            path=string(item.get("path")),
            distribution=str(canonicalize_name(string(item.get("distribution")))),
            exists=item.get("exists") is True,
        )
        for item in _dicts(raw)
        if string(item.get("name")) and string(item.get("path")) and string(item.get("distribution"))
    )


CUDA_ROOT_VIAS: tuple[CudaRootVia, ...] = get_args(CudaRootVia)


def _cuda_roots(raw: object) -> tuple[CudaRoot, ...]:
    found = []
    for item in _dicts(raw):
        via = next((v for v in CUDA_ROOT_VIAS if v == item.get("via")), None)
        if via is None or not string(item.get("path")):
            continue
        found.append(
            CudaRoot(
                path=string(item.get("path")),
                via=via,
                real=string(item.get("real")) or None,
                tool=string(item.get("tool")) or None,
                ptxas=item.get("ptxas") is True,
                nvcc=item.get("nvcc") is True,
                libdevice=item.get("libdevice") is True,
                version=string(item.get("version")) or None,
            )
        )
    return tuple(found)


def _distributions(raw: object) -> tuple[Distribution, ...]:
    if not isinstance(raw, list):
        return ()
    found: dict[str, Distribution] = {}
    for item in raw:
        if not isinstance(item, dict) or not string(item.get("name")):
            continue
        name = canonicalize_name(string(item.get("name")))
        if name in found:
            continue
        found[name] = Distribution(
            name=name,
            version=string(item.get("version")),
            requires=strings(item.get("requires")),
            installer=string(item.get("installer")) or None,
            location=string(item.get("location")) or None,
            shadowed=tuple(
                DistributionCopy(version=string(c.get("version")), location=string(c.get("location")) or None)
                for c in _dicts(item.get("shadowed"))
            ),
        )
    return tuple(sorted(found.values(), key=lambda d: d.name))


def _implementation(name: str) -> str:
    known = {"cpython": "CPython", "pypy": "PyPy", "graalpy": "GraalPy", "ironpython": "IronPython"}
    return known.get(name.lower(), name or "CPython")


def describe(facts: PythonFacts) -> Description:
    if facts.error:
        return Description(mark="fail", summary=f"could not run {facts.executable}: {facts.error}")
    where = "venv" if facts.is_venv and facts.origin == "venv" else facts.origin
    head = f"Python {facts.version} ({where})" if facts.version else f"Python ({where})"
    if facts.implementation != "CPython":
        head += f" {facts.implementation}"
    if facts.bits != 64:
        head += f", {facts.bits}-bit"
    ranked = sorted(facts.distributions, key=_summary_rank)
    shown = [f"{d.name} {d.version}" for d in ranked if d.name != "numpy"]
    packages = ", ".join(shown[:SUMMARY_PACKAGES]) + (", …" if len(shown) > SUMMARY_PACKAGES else "")
    summary = " · ".join(part for part in (head, packages or "no GPU framework installed") if part)
    mark: Mark = "ok"
    if facts.shadowing:
        summary += f" · {', '.join(facts.shadowing)} in the working directory"
        mark = "warn"
    details = (
        f"executable: {facts.executable}",
        f"prefix: {facts.prefix}" + (f" (base {facts.base_prefix})" if facts.is_venv else ""),
        *(f"site-packages: {p}" for p in facts.site_packages),
        *(f"{d.name}=={d.version}" + (f" via {d.installer}" if d.installer else "") for d in ranked),
        *(f"unreadable metadata: {p}" for p in facts.unreadable_metadata),
        *(_root_detail(r) for r in facts.cuda_roots if r.ptxas or r.nvcc or r.libdevice),
    )
    return Description(mark=mark, summary=summary, details=details)


def _root_detail(root: CudaRoot) -> str:
    tools = ", ".join(
        name
        for name, has in (("ptxas", root.ptxas), ("nvcc", root.nvcc), ("libdevice", root.libdevice))
        if has
    )
    where = root.path + (f" -> {root.real}" if root.real else "")
    return f"{tools} in {where} ({root.via})" + (f", CUDA {root.version}" if root.version else "")


def _summary_rank(dist: Distribution) -> tuple[int, str]:
    rank = next(
        (
            i
            for i, p in enumerate(SUMMARY_ORDER)
            if dist.name == p or (p.startswith("nvidia-") and dist.name.startswith(p))
        ),
        len(SUMMARY_ORDER),
    )
    return rank, dist.name


PROBE = Probe(name="python", title="Python packages", collect=collect, describe=describe, timeout=30)
