"""PyTorch as the target interpreter sees it: build, CUDA, devices, warnings, where it came from.

The import happens in a child process of the target interpreter (`probes/child/torch.py`), so a
hang, an abort or a segfault in torch's native libraries becomes facts instead of taking
gpudoctor down.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from gpudoctor.distributions import TORCH
from gpudoctor.facts import TorchDevice, TorchFacts
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun, run_child, strings
from gpudoctor.probes.libnames import loaded_libraries
from gpudoctor.probes.python import absent

# Lines worth keeping from what the framework printed; the rest is noise for the report.
TORCH_SIGNALS = (
    "driver on your system is too old",
    "is not compatible with the current PyTorch installation",
    "no kernel image is available",
    "which is of cuda capability",
    "which is of compute capability",
    "CUDA initialization",
    "no longer supports this GPU",
    "cuDNN version",
    "Torch not compiled with CUDA",
    "CUDA capabilit",
    "Maxwell and Pascal",
    "NumPy",  # env (#9.6): "Failed to initialize NumPy: _ARRAY_API not found", NumPy 1.x/2 ABI
    "_ARRAY_API",
)


def channel_name(channel: str) -> str:
    """conda's channel URL as the short name people type: "conda-forge", "pytorch", "defaults"."""
    channel = channel.strip().rstrip("/")
    if not channel:
        return ""
    if "/pkgs/main" in channel or "/pkgs/r" in channel or channel.startswith("pkgs/"):
        return "defaults"
    parts = [p for p in re.split(r"[/:]", channel) if p]
    platforms = ("linux-64", "linux-aarch64", "linux-ppc64le", "osx-64", "osx-arm64", "win-64", "noarch")
    while parts and parts[-1] in platforms:
        parts.pop()
    return parts[-1] if parts else channel


def text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def mapping(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def signal_lines(lines: Iterable[str], signals: tuple[str, ...]) -> tuple[str, ...]:
    """The framework's own warnings, once each, in order (a warning can span several lines)."""
    kept: list[str] = []
    for line in lines:
        clean = line.strip()
        if clean and clean not in kept and any(s.lower() in clean.lower() for s in signals):
            kept.append(clean)
    return tuple(kept)


def failure(run: ChildRun, what: str) -> str:
    """Why a child stopped early, naming the stage it was in."""
    result = run.result
    if result.error == "timeout":
        return f"{what} did not finish within {result.seconds:.0f} s and was stopped"
    if result.signal_name:
        return f"{what} crashed the interpreter ({result.signal_name})"
    if result.error is not None:
        return f"{what} could not run: {result.describe_failure()}"
    tail = [ln for ln in (result.stderr.strip() or result.stdout.strip()).splitlines() if ln.strip()][-1:]
    return f"{what} exited with status {result.returncode}" + (f": {tail[0].strip()}" if tail else "")


def stopped_early(run: ChildRun) -> bool:
    result = run.result
    return result.error is not None or result.signal_name is not None or result.returncode not in (0, None)


def collect(ctx: ProbeContext) -> TorchFacts:
    if absent(ctx, TORCH):
        raise ProbeUnavailable("PyTorch is not installed")
    run = run_child(ctx, "torch")
    if run.data is None:
        if run.result.error == "not-found":
            raise ProbeUnavailable(f"the target interpreter {ctx.target.python} does not exist")
        return TorchFacts(probe_error=run.problem or "the probe script printed no result")
    return parse(run.data, run)


def parse(data: Mapping[str, Any], run: ChildRun) -> TorchFacts:
    installed = data.get("installed") is True
    if not installed:
        raise ProbeUnavailable("PyTorch is not installed")
    stage = data.get("stage")
    dist = mapping(data.get("dist"))
    conda = mapping(data.get("conda"))
    imported = data.get("imported") is True
    import_error = text(data.get("import_error"))
    cuda_error = text(data.get("cuda_error"))
    if stage != "done" and stopped_early(run):
        if not imported:
            import_error = import_error or failure(run, "import torch")
        else:
            cuda_error = cuda_error or failure(run, "initialising CUDA in torch")
    warnings = signal_lines((*strings(data.get("warnings")), *run.log_lines), TORCH_SIGNALS)
    cudnn = data.get("cudnn_version")
    count = data.get("device_count")
    available = data.get("cuda_available")
    return TorchFacts(
        installed=True,
        imported=imported,
        import_error=import_error,
        version=text(data.get("version")),
        module_path=text(data.get("module_path")),
        cuda_version=text(data.get("cuda_version")),
        hip_version=text(data.get("hip_version")),
        cudnn_version=cudnn if isinstance(cudnn, int) and not isinstance(cudnn, bool) else None,
        cuda_available=available if isinstance(available, bool) else None,
        device_count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        devices=_devices(data.get("devices")),
        arch_list=strings(data.get("arch_list")),
        warnings=warnings,
        conda_build=text(conda.get("build")),
        conda_channel=channel_name(conda.get("channel") or "") or None if conda else None,
        conda_version=text(conda.get("version")),
        conda_cpuonly=data.get("cpuonly") is True,
        dist_version=text(dist.get("version")),
        installer=text(dist.get("installer")),
        loaded_libraries=loaded_libraries(data.get("loaded_libraries")),
        cuda_error=cuda_error,
        cudnn_error=text(data.get("cudnn_error")),
        mps_built=data["mps_built"] if isinstance(data.get("mps_built"), bool) else None,
        mps_available=data["mps_available"] if isinstance(data.get("mps_available"), bool) else None,
        mps_error=text(data.get("mps_error")),
    )


def _devices(raw: object) -> tuple[TorchDevice, ...]:
    if not isinstance(raw, list):
        return ()
    devices = []
    for item in raw:
        if not isinstance(item, dict) or not isinstance(item.get("index"), int):
            continue
        capability = item.get("capability")
        valid = isinstance(capability, str) and re.fullmatch(r"\d+\.\d+", capability)
        devices.append(
            TorchDevice(
                index=item["index"],
                name=str(item.get("name") or ""),
                capability=capability if valid else None,
                uuid=_identity(item.get("uuid"), r"(GPU|MIG)-[0-9a-fA-F-]{8,}"),
                pci_bus_id=_identity(
                    item.get("pci_bus_id"), r"[0-9a-fA-F]{4,8}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.\d"
                ),
            )
        )
    return tuple(devices)


def _identity(value: object, shape: str) -> str | None:
    return value if isinstance(value, str) and re.fullmatch(shape, value) else None


def cudnn_text(version: int) -> str:
    """torch.backends.cudnn.version() as "9.1" (cuDNN 9: 90100; cuDNN 8 and older: 8902)."""
    if version >= 10000:
        return f"{version // 10000}.{version % 10000 // 100}"
    return f"{version // 1000}.{version % 1000 // 100}"


def describe(facts: TorchFacts) -> Description:
    if facts.probe_error:
        return Description(mark="warn", summary=f"could not be examined: {facts.probe_error}")
    where = ", ".join(
        x
        for x in (
            f"conda {facts.conda_channel or ''} {facts.conda_build or ''}".strip()
            if facts.conda_build
            else "",
            f"pip {facts.dist_version}" if facts.installer in ("pip", "uv") and facts.dist_version else "",
        )
        if x
    )
    details = tuple(
        x
        for x in (
            f"module: {facts.module_path}" if facts.module_path else "",
            f"installed by: {where}" if where else "",
            f"arch list: {' '.join(facts.arch_list)}" if facts.arch_list else "",
            f"CUDA error: {facts.cuda_error}" if facts.cuda_error else "",
            *facts.warnings,
            *(f"loaded: {lib.path}" for lib in facts.loaded_libraries),
        )
        if x
    )
    if not facts.imported:
        name = f"PyTorch {facts.dist_version or facts.conda_version or ''}".rstrip()
        return Description(
            mark="fail",
            summary=f"{name} fails to import: {facts.import_error or 'unknown error'}",
            details=details,
        )
    build = []
    if facts.cuda_version:
        build.append(f"CUDA {facts.cuda_version}")
    elif facts.hip_version:
        build.append(f"ROCm {facts.hip_version}")
    else:
        build.append("CPU-only build")
    if facts.cudnn_version:
        build.append(f"cuDNN {cudnn_text(facts.cudnn_version)}")
    summary = f"PyTorch {facts.version or '?'} ({', '.join(build)})"
    usable = facts.devices if facts.cuda_available else ()
    mark: Mark
    if usable:
        gpus = ", ".join(f"{d.name} ({d.capability})" if d.capability else d.name for d in usable)
        summary += f" · {len(usable)} GPU{'s' * (len(usable) != 1)} usable: {gpus}"
        mark = "warn" if facts.warnings else "ok"
    elif facts.cuda_version or facts.hip_version:
        summary += " · no GPU usable"
        mark = "warn"
    elif cpu_only_build(facts):
        mark = "warn"  # a GPU machine needs a CUDA build; the rules say whether this one has a GPU
    else:
        mark = "warn" if facts.warnings else "ok"
    return Description(mark=mark, summary=summary, details=details)


def cpu_only_build(facts: TorchFacts) -> bool:
    """A build that says it is CPU-only (`+cpu`, a conda `cpu_*` build, `cpuonly`), unlike macOS's plain
    wheels, whose GPU backend is MPS."""
    local = (facts.version or facts.dist_version or "").partition("+")[2]
    conda_cpu = bool(facts.conda_build and facts.conda_build.startswith("cpu"))
    return local == "cpu" or conda_cpu or facts.conda_cpuonly


PROBE = Probe(name="torch", title="PyTorch", collect=collect, describe=describe, timeout=3600)
