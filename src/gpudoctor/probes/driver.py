"""The NVIDIA driver: NVML first (what the driver says about itself), `nvidia-smi` when NVML fails.

NVML's error code tells the failure states apart (no library, no kernel module, version
mismatch, no permission, GPU lost). On Linux the loaded kernel module's version comes from
`/proc/driver/nvidia/version` and the user-space version from the `libnvidia-ml.so.<version>`
file name, so a mismatch can say which side is stale.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gpudoctor.facts import DriverFacts, GpuFacts, GpuProcess, MigDevice, NvmlState
from gpudoctor.prestart import nvml_child
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.probes.child_process import parse_marker, string
from gpudoctor.probes.nvml_query import STEP, query
from gpudoctor.runner import CommandResult, which

NVML_STATES: dict[int, NvmlState] = {
    12: "library_not_found",  # NVML_ERROR_LIBRARY_NOT_FOUND
    9: "driver_not_loaded",  # NVML_ERROR_DRIVER_NOT_LOADED
    18: "lib_rm_version_mismatch",  # NVML_ERROR_LIB_RM_VERSION_MISMATCH
    4: "no_permission",  # NVML_ERROR_NO_PERMISSION
    15: "gpu_lost",  # NVML_ERROR_GPU_IS_LOST
    3: "not_supported",  # NVML_ERROR_NOT_SUPPORTED
}

# nvidia-smi's own words for the same states, most specific first.
SMI_STATES: tuple[tuple[str, NvmlState], ...] = (
    ("version mismatch", "lib_rm_version_mismatch"),
    ("couldn't communicate with the nvidia driver", "driver_not_loaded"),
    ("driver not loaded", "driver_not_loaded"),
    ("insufficient permissions", "no_permission"),
    ("no permission", "no_permission"),
    ("gpu is lost", "gpu_lost"),
    ("fallen off the bus", "gpu_lost"),
    ("couldn't find libnvidia-ml.so", "library_not_found"),
    ("nvml shared library not found", "library_not_found"),
    ("failed to initialize nvml", "unknown_error"),
)

SMI_FIELDS = ("index", "name", "compute_cap", "memory.total", "driver_version", "pci.bus_id")
SMI_TIMEOUT = 4.0
NVML_TIMEOUT = 15.0  # nvmlInit wakes every GPU without persistence mode: seconds on a big node
VERSION = r"\d+\.\d+(?:\.\d+)?"
LIBRARY_DIRS = (
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/x86_64-linux-gnu/nvidia/current",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu/nvidia/current",
    "/usr/lib64",
    "/usr/lib",
    "/usr/local/nvidia/lib64",
    "/usr/lib/wsl/lib",
)
LIBRARY_NAMES = ("libnvidia-ml.so.1", "libcuda.so.1")


@dataclass(frozen=True, kw_only=True)
class _NvmlResult:
    state: NvmlState
    message: str = ""
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    gpus: tuple[GpuFacts, ...] = ()
    failure: str | None = None  # the child crashed or hung
    call: str | None = None  # inside which NVML call


def cuda_version_string(value: int) -> str:
    """NVML's CUDA version integer (12020) as "12.2", by the NVML_CUDA_DRIVER_VERSION macros."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def _state(code: object) -> NvmlState:
    return NVML_STATES.get(code, "unknown_error") if isinstance(code, int) else "unknown_error"


def _pci_device_id(value: object) -> str | None:
    """NVML's pciDeviceId (device << 16 | vendor, 0x20B010DE) as "10de:20b0"."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        return None
    return f"{value & 0xFFFF:04x}:{(value >> 16) & 0xFFFF:04x}"


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _flag(value: object) -> bool | None:
    return bool(value) if isinstance(value, int) and value in (0, 1) else None


def process_name(ctx: ProbeContext, pid: int) -> str | None:
    """/proc/<pid>/comm, where this user may read it (another user's process in a container may not be)."""
    try:
        name = ctx.path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return None
    return name[:64] or None


def _mig_device(data: object) -> MigDevice | None:
    if not isinstance(data, dict) or _int(data.get("index")) is None:
        return None
    name = string(data.get("name"))
    profile = re.search(r"MIG (\d+g\.\d+gb(?:\+\w+)?)", name)
    return MigDevice(
        index=data["index"],
        uuid=string(data.get("uuid")) or None,
        name=name,
        profile=profile.group(1) if profile else None,
        memory_mib=_int(data.get("memory_mib")),
        error=string(data.get("error")) or None,
    )


def gpu_from_data(ctx: ProbeContext, data: object, index: int) -> GpuFacts:
    """One GPU from the NVML child's JSON; whatever is malformed is left out, never raised."""
    if not isinstance(data, dict):
        return GpuFacts(index=index, error="NVML gave no data for this GPU")
    mig = data.get("mig")
    current, pending = (mig[0], mig[1]) if isinstance(mig, list) and len(mig) == 2 else (None, None)
    processes = []
    for entry in data.get("processes") or ():
        if isinstance(entry, list) and len(entry) == 2 and _int(entry[0]) is not None:
            pid = entry[0]
            processes.append(GpuProcess(pid=pid, used_mib=_int(entry[1]), name=process_name(ctx, pid)))
    capability = string(data.get("compute_capability"))
    own_index = _int(data.get("index"))
    return GpuFacts(
        index=own_index if own_index is not None else index,
        name=string(data.get("name")),
        compute_capability=capability if re.fullmatch(r"\d+\.\d+", capability) else None,
        memory_mib=_int(data.get("memory_mib")),
        pci_bus_id=string(data.get("pci_bus_id")) or None,
        error=string(data.get("error")) or None,
        uuid=string(data.get("uuid")) or None,
        pci_device_id=_pci_device_id(data.get("pci_device_id")),
        memory_used_mib=_int(data.get("memory_used_mib")),
        processes=tuple(processes),
        persistence_mode=_flag(data.get("persistence_mode")),
        mig_current=_flag(current),
        mig_pending=_flag(pending),
        mig_devices=tuple(m for m in map(_mig_device, data.get("mig_devices") or ()) if m is not None),
    )


def nvml_from_data(ctx: ProbeContext, data: dict[str, Any]) -> _NvmlResult:
    """The NVML child's JSON (see nvml_query.query) as facts."""
    if data.get("init_error") is not None:
        return _NvmlResult(state=_state(data.get("init_error")), message=string(data.get("message")))
    driver = string(data.get("driver_version")) or None
    cuda = _int(data.get("cuda_version"))
    common: dict[str, Any] = {
        "driver_version": driver,
        "cuda_driver_version": cuda_version_string(cuda) if cuda else None,
    }
    if data.get("count_error") is not None:
        return _NvmlResult(state=_state(data["count_error"]), message=string(data.get("message")), **common)
    gpus = data.get("gpus")
    gpus = gpus if isinstance(gpus, list) else []
    return _NvmlResult(state="ok", gpus=tuple(gpu_from_data(ctx, g, i) for i, g in enumerate(gpus)), **common)


def _last_call(stderr: str) -> str | None:
    calls = [ln[len(STEP) :].strip() for ln in stderr.splitlines() if ln.startswith(STEP)]
    return calls[-1] if calls else None


def _from_nvml(ctx: ProbeContext) -> _NvmlResult:
    if ctx.nvml is not None:  # a stand-in binding, asked in-process by the same query code
        return nvml_from_data(ctx, query(ctx.nvml))
    timeout = min(ctx.child_timeout, NVML_TIMEOUT)
    argv, env = nvml_child(ctx.env)  # the entry point started the same program at once (prestart)
    result = ctx.runner.run(argv, timeout=timeout, env=env)
    data = parse_marker(result.stdout)
    if data is not None:
        return nvml_from_data(ctx, data)
    call = _last_call(result.stderr)
    inside = f" in {call}" if call else ""
    if result.error == "timeout":
        failure = f"gave no answer{inside} within {timeout:g} s"
        return _NvmlResult(state="hang", message=f"NVML {failure}", failure=failure, call=call)
    if result.signal_name:
        failure = f"crashed ({result.signal_name}){inside}"
        return _NvmlResult(state="crash", message=f"NVML {failure}", failure=failure, call=call)
    tail = [ln for ln in result.stderr.splitlines() if ln.strip() and not ln.startswith(STEP)][-1:]
    failure = result.describe_failure().replace(sys.executable, "python", 1)
    if tail and tail[0] not in failure:
        failure += f": {tail[0][:300]}"
    return _NvmlResult(state="crash", message=f"the NVML query {failure}", failure=failure, call=call)


def find_nvidia_smi(ctx: ProbeContext) -> str | None:
    found = which("nvidia-smi", ctx.env)
    if found:
        return found
    if ctx.os_name == "Windows":
        system_root = ctx.env.get("SystemRoot") or ctx.env.get("SYSTEMROOT") or r"C:\Windows"
        candidates = [
            Path(system_root) / "System32" / "nvidia-smi.exe",
            Path(ctx.env.get("ProgramFiles", r"C:\Program Files"))
            / "NVIDIA Corporation/NVSMI/nvidia-smi.exe",
        ]
    else:
        candidates = [ctx.path("/usr/lib/wsl/lib/nvidia-smi")]
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def smi_state(text: str) -> NvmlState | None:
    """The failure state nvidia-smi's error text names, if any."""
    lowered = text.lower()
    return next((state for needle, state in SMI_STATES if needle in lowered), None)


def _smi_value(text: str) -> str | None:
    text = text.strip()
    return None if not text or text.startswith("[") or text.upper() == "N/A" else text


def parse_smi_query(output: str, fields: tuple[str, ...]) -> tuple[tuple[GpuFacts, ...], str | None]:
    """GPUs and the driver version from `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits`.

    Returns no GPUs when a line does not have the shape asked for: garbage is not a GPU.
    """
    gpus: list[GpuFacts] = []
    driver: str | None = None
    for line in output.splitlines():
        if not line.strip():
            continue
        cells = [c.strip() for c in line.split(",")]
        if len(cells) < len(fields):
            return (), None
        extra = len(cells) - len(fields)
        name_at = fields.index("name")
        cells[name_at : name_at + extra + 1] = [", ".join(cells[name_at : name_at + extra + 1])]
        row = dict(zip(fields, cells, strict=True))
        version = _smi_value(row["driver_version"])
        capability = _smi_value(row.get("compute_cap", ""))
        memory = _smi_value(row["memory.total"])
        if not row["index"].isdigit() or version is None or not re.fullmatch(VERSION, version):
            return (), None
        if capability is not None and not re.fullmatch(r"\d+\.\d+", capability):
            return (), None
        if memory is not None and not memory.isdigit():
            return (), None
        driver = driver or version
        gpus.append(
            GpuFacts(
                index=int(row["index"]),
                name=row["name"],
                compute_capability=capability,
                memory_mib=int(memory) if memory is not None else None,
                pci_bus_id=_smi_value(row["pci.bus_id"]),
            )
        )
    return tuple(gpus), driver


def parse_smi_cuda_version(output: str) -> str | None:
    match = re.search(r"CUDA Version\s*:\s*(\d+\.\d+)", output)
    return match.group(1) if match else None


def _failure_text(result: CommandResult) -> str:
    if result.error is not None or result.signal_name:
        return result.describe_failure()
    text = "\n".join(ln.strip() for ln in (result.stderr + "\n" + result.stdout).splitlines() if ln.strip())
    return text[:500] or result.describe_failure()


@dataclass(frozen=True, kw_only=True)
class _SmiResult:
    gpus: tuple[GpuFacts, ...] = ()
    driver_version: str | None = None
    cuda_driver_version: str | None = None
    error: str | None = None
    works: bool = False


def _from_smi(ctx: ProbeContext, smi: str) -> _SmiResult:
    timeout = min(ctx.child_timeout, SMI_TIMEOUT)
    env = dict(ctx.env)
    fields: tuple[str, ...] = SMI_FIELDS
    result = ctx.runner.run(
        [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"], timeout=timeout, env=env
    )
    if not result.ok and result.error is None and "compute_cap" in (result.stdout + result.stderr):
        fields = tuple(f for f in SMI_FIELDS if f != "compute_cap")
        result = ctx.runner.run(
            [smi, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
            timeout=timeout,
            env=env,
        )
    if not result.ok:
        return _SmiResult(error=_failure_text(result))
    gpus, driver = parse_smi_query(result.stdout, fields)
    if not gpus:
        if "no devices were found" in result.stdout.lower():
            return _SmiResult(works=True)
        first = result.stdout.strip().splitlines()[:1] or ["(nothing)"]
        return _SmiResult(error=f"unexpected output from nvidia-smi: {first[0][:200]}")
    header = ctx.runner.run([smi], timeout=timeout, env=env)
    cuda = parse_smi_cuda_version(header.stdout) if header.ok else None
    return _SmiResult(gpus=gpus, driver_version=driver, cuda_driver_version=cuda, works=True)


def parse_kernel_module_version(text: str) -> str | None:
    """The version in /proc/driver/nvidia/version ("NVRM version: NVIDIA UNIX x86_64 Kernel Module  535.104.05 ...")."""
    match = re.search(rf"Kernel Module(?: for \S+)?\s+({VERSION})\b", text)
    return match.group(1) if match else None


def _resolve(ctx: ProbeContext, path: Path) -> Path:
    """Follow a chain of symbolic links, anchoring absolute targets at ctx.root."""
    for _ in range(20):
        try:
            target = str(path.readlink())
        except OSError:
            return path
        path = ctx.path(target) if target.startswith("/") else path.parent / target
    return path


def _virtual(ctx: ProbeContext, path: Path) -> str:
    root = Path(ctx.root)
    try:
        return "/" + path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def userspace_libraries(ctx: ProbeContext) -> tuple[tuple[str, ...], str | None]:
    """The driver's user-space libraries in the system directories, and the version their names carry."""
    found: list[str] = []
    seen: set[tuple[int, int]] = set()
    for directory in LIBRARY_DIRS:
        for name in LIBRARY_NAMES:
            resolved = _resolve(ctx, ctx.path(directory) / name)
            try:
                info = resolved.stat()
            except OSError:
                continue
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            found.append(_virtual(ctx, resolved))
    version = None
    for path in sorted(found, key=lambda p: ("libnvidia-ml" not in p, p.startswith("/usr/lib/wsl/"))):
        match = re.search(rf"\.so\.({VERSION})$", path)
        if match:
            version = match.group(1)
            break
    return tuple(found), version


def collect(ctx: ProbeContext) -> DriverFacts:
    if ctx.os_name == "Darwin":
        raise ProbeUnavailable("macOS has no NVIDIA CUDA driver")
    nvml = _from_nvml(ctx)
    facts = DriverFacts(
        nvml_state=nvml.state,
        nvml_message=nvml.message,
        source="nvml" if nvml.state == "ok" else None,
        driver_version=nvml.driver_version,
        cuda_driver_version=nvml.cuda_driver_version,
        gpus=nvml.gpus,
        nvidia_smi=find_nvidia_smi(ctx),
        nvml_failure=nvml.failure,
        nvml_call=nvml.call,
    )
    if ctx.os_name == "Linux":
        try:
            module_text = ctx.path("/proc/driver/nvidia/version").read_text(
                encoding="utf-8", errors="replace"
            )
        except OSError:
            module_text = ""
        libraries, library_version = userspace_libraries(ctx)
        facts = replace(
            facts,
            kernel_module_version=parse_kernel_module_version(module_text),
            userspace_libraries=libraries,
            userspace_version=library_version,
        )
    if nvml.state == "ok" or facts.nvidia_smi is None:
        return facts
    smi = _from_smi(ctx, facts.nvidia_smi)
    if smi.works:
        return replace(
            facts,
            nvml_state="ok",
            source="nvidia-smi",
            driver_version=smi.driver_version,
            cuda_driver_version=smi.cuda_driver_version,
            gpus=smi.gpus,
        )
    error = smi.error or ""
    said = smi_state(error)
    state = said if said is not None and nvml.state in ("library_not_found", "unknown_error") else nvml.state
    if facts.userspace_version is None:
        match = re.search(rf"NVML library version:\s*({VERSION})", error)
        if match:
            facts = replace(facts, userspace_version=match.group(1))
    return replace(facts, nvml_state=state, nvidia_smi_error=error or None)


STATE_SUMMARY: dict[str, str] = {
    "library_not_found": "no NVIDIA driver (NVML library not found)",
    "driver_not_loaded": "NVIDIA driver not loaded (kernel module absent)",
    "lib_rm_version_mismatch": "driver/library version mismatch",
    "no_permission": "no permission to use the NVIDIA devices",
    "gpu_lost": "a GPU has fallen off the bus",
    "not_supported": "NVML not supported on this device",
    "unknown_error": "NVML failed",
    "crash": "NVML crashed",
    "hang": "NVML hung",
}


def _size(mib: int | None) -> str:
    if mib is None:
        return ""
    return f"{mib} MiB" if mib < 1024 else f"{round(mib / 1024)} GiB"


def _gpu_summary(gpu: GpuFacts) -> str:
    parts = [gpu.name or f"GPU {gpu.index}"]
    if gpu.compute_capability:
        parts.append(f"compute {gpu.compute_capability}")
    if gpu.memory_mib is not None:
        parts.append(_size(gpu.memory_mib))
    return ", ".join(parts)


def _gpu_details(gpu: GpuFacts) -> list[str]:
    line = f"GPU {gpu.index}: {_gpu_summary(gpu)}"
    if gpu.pci_bus_id:
        line += f" · PCI {gpu.pci_bus_id}" + (f" [{gpu.pci_device_id}]" if gpu.pci_device_id else "")
    if gpu.uuid:
        line += f" · {gpu.uuid}"
    if gpu.error:
        line += f" · error: {gpu.error}"
    lines = [line]
    state = []
    if gpu.memory_used_mib is not None and gpu.memory_mib:
        state.append(f"memory used {_size(gpu.memory_used_mib) or '0 MiB'} of {_size(gpu.memory_mib)}")
    if gpu.persistence_mode is not None:
        state.append(f"persistence mode {'on' if gpu.persistence_mode else 'off'}")
    if gpu.mig_current is not None:
        mig = f"MIG {'on' if gpu.mig_current else 'off'}"
        if gpu.mig_pending is not None and gpu.mig_pending != gpu.mig_current:
            mig += f" ({'on' if gpu.mig_pending else 'off'} after reset)"
        state.append(mig)
    if state:
        lines.append(f"  GPU {gpu.index}: " + ", ".join(state))
    for mig_device in gpu.mig_devices:
        size = _size(mig_device.memory_mib)
        lines.append(
            f"  MIG {gpu.index}/{mig_device.index}: {mig_device.profile or mig_device.name or '?'}"
            + (f", {size}" if size else "")
            + (f" · {mig_device.uuid}" if mig_device.uuid else "")
            + (f" · error: {mig_device.error}" if mig_device.error else "")
        )
    for process in gpu.processes:
        used = _size(process.used_mib) if process.used_mib is not None else "memory unknown"
        lines.append(f"  process {process.pid} ({process.name or '?'}) holds {used or '0 MiB'}")
    return lines


def describe(facts: DriverFacts) -> Description:
    details: list[str] = []
    for gpu in facts.gpus:
        details += _gpu_details(gpu)
    if facts.nvml_failure and facts.source != "nvml":
        details.append(f"NVML child process {facts.nvml_failure}")
    if facts.source:
        details.append(
            f"source: {facts.source}" + (f" (NVML: {facts.nvml_message})" if facts.nvml_message else "")
        )
    elif facts.nvml_message:
        details.append(f"NVML: {facts.nvml_message}")
    if facts.kernel_module_version:
        details.append(f"kernel module {facts.kernel_module_version}")
    if facts.userspace_version:
        details.append(f"user-space libraries {facts.userspace_version}")
    details += [f"library {path}" for path in facts.userspace_libraries]
    if facts.nvidia_smi:
        details.append(f"nvidia-smi: {facts.nvidia_smi}")
    if facts.nvidia_smi_error:
        details.append(f"nvidia-smi said: {facts.nvidia_smi_error.splitlines()[0]}")
    if facts.nvml_state != "ok":
        summary = STATE_SUMMARY.get(facts.nvml_state, facts.nvml_state)
        if facts.nvml_state == "lib_rm_version_mismatch" and facts.kernel_module_version:
            summary += f" (kernel module {facts.kernel_module_version}"
            summary += f", libraries {facts.userspace_version})" if facts.userspace_version else ")"
        # Absent is not broken: on a machine without NVIDIA hardware it is simply right; GD101 says when not.
        mark: Mark = "none" if facts.nvml_state == "library_not_found" else "fail"
        return Description(mark=mark, summary=summary, details=tuple(details))
    head = f"NVIDIA driver {facts.driver_version or '(version unknown)'}"
    if facts.cuda_driver_version:
        head += f" (CUDA ≤ {facts.cuda_driver_version})"
    if not facts.gpus:
        return Description(mark="fail", summary=f"{head} · no GPU found", details=tuple(details))
    if len(facts.gpus) == 1:
        gpus = f"1 GPU: {_gpu_summary(facts.gpus[0])}"
    else:
        kinds = list(dict.fromkeys(_gpu_summary(g) for g in facts.gpus))  # 8 identical GPUs read as one
        counted = [f"{sum(_gpu_summary(g) == k for g in facts.gpus)} × {k}" for k in kinds]
        gpus = f"{len(facts.gpus)} GPUs: " + "; ".join(counted if len(kinds) < len(facts.gpus) else kinds)
    mark = "warn" if any(g.error for g in facts.gpus) else "ok"
    return Description(mark=mark, summary=f"{head} · {gpus}", details=tuple(details))


PROBE = Probe(name="driver", title="NVIDIA driver", collect=collect, describe=describe, timeout=30)
