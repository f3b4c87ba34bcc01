"""TensorFlow as it sees itself: import it in the target interpreter and read what it says and logs.

TensorFlow ≥ 2.11 hides which library it failed to load unless verbose logging is on, so the
child runs with `TF_CPP_MIN_LOG_LEVEL=0` and `TF_CPP_MAX_VLOG_LEVEL=1`; its log lines are kept
(bounded, ANSI stripped) and parsed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name

from gpudoctor import lazy_re
from gpudoctor.distributions import TENSORFLOW
from gpudoctor.facts import FrameworkGpu, LoadedLibrary, TensorFlowFacts
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun, run_child, string, strings
from gpudoctor.probes.libnames import library_kind
from gpudoctor.probes.python import absent

VERBOSE_LOGGING = {"TF_CPP_MIN_LOG_LEVEL": "0", "TF_CPP_MAX_VLOG_LEVEL": "1"}
# The child creates TensorFlow's GPU devices (so TensorFlow logs which GPU each one is); growing memory on
# demand keeps that from reserving most of every GPU's memory while it runs.
CHILD_ENV = {**VERBOSE_LOGGING, "TF_FORCE_GPU_ALLOW_GROWTH": "true"}
MAX_LOG_LINES = 200
MAX_LINE = 500

ANSI = lazy_re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
# TF ≤ 2.10 (W) and the VLOG(1) line of newer ones; Windows names a DLL.
COULD_NOT_LOAD = lazy_re.compile(r"Could not load dynamic library '([^']+)'")
# A library hard-linked into the extension (TF 1.x) or a dependency named by dlerror.
CANNOT_OPEN = lazy_re.compile(r"([\w.+-]+\.so(?:\.[\w.]+)?): cannot open shared object file")
# TF 2.0's own self-check on Windows: "Could not find 'cudart64_100.dll'".
COULD_NOT_FIND_DLL = lazy_re.compile(r"Could not find '([\w.-]+\.dll)'")
# TF <= 1.4's dso_loader (hardware, #10.9): "Couldn't open CUDA library libcudnn.so. LD_LIBRARY_PATH: ...",
# followed by cuda_dnn.cc's "Unable to load cuDNN DSO".
COULD_NOT_OPEN_CUDA = lazy_re.compile(r"Couldn't open CUDA library ([\w+-]+(?:\.so(?:\.\d+)*|\.dll))")
CUDA_DRIVERS = lazy_re.compile(r"Could not find cuda drivers on your machine")
CANNOT_DLOPEN = lazy_re.compile(r"Cannot dlopen some GPU libraries")
CUINIT = lazy_re.compile(r"failed call to cuInit:\s*(.*)$")
CUDA_ERROR_NAME = lazy_re.compile(r"(CUDA_ERROR_[A-Z_]+|UNKNOWN ERROR \(\d+\))")
CUDNN_MISMATCH = lazy_re.compile(
    r"Loaded runtime CuDNN library:\s*([\w.]+)(?:\s*\([^)]*\))?\s*but source was compiled with:?\s*([\w.]+)"
)
# gpu_device.cc logs each GPU device it creates, naming the physical GPU (hardware, #10.8). TF >= 2.5:
#   Created device /job:localhost/replica:0/task:0/device:GPU:0 with 22233 MB memory:  -> device: 0,
#   name: NVIDIA RTX A5000, pci bus id: 0000:84:00.0, compute capability: 8.6
# TF 1.x-2.4: Created TensorFlow device (/job:localhost/replica:0/task:0/device:GPU:0 with 7543 MB memory)
#   -> physical GPU (device: 0, name: GeForce GTX 1080, pci bus id: 0000:02:00.0, compute capability: 6.1)
# ROCm builds and PluggableDevices (tensorflow-metal) end at the PCI bus id ("<undefined>" for Metal).
CREATED_DEVICE = lazy_re.compile(
    r"Created (?:TensorFlow )?device \(?\S*?/device:GPU:(?P<index>\d+) with (?P<mib>\d+) MB memory\)?:?\s*"
    r"->\s*(?:physical \w+ \()?device: (?P<ordinal>\d+), name: (?P<name>.+?), pci bus id: (?P<pci>[^,)\s]+)"
    r"(?:,\s*compute capability: (?P<cc>\d+\.\d+))?"
)
PCI_ADDRESS = lazy_re.compile(r"[0-9a-f]{4,8}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
RELEVANT = lazy_re.compile(
    r"cuda|cudnn|cublas|gpu|dso_loader|dlopen|dlerror|could not|cannot|failed|error|\.so\b|\.dll|numpy",
    re.IGNORECASE,
)
NOTABLE = lazy_re.compile(
    r"Could not|cannot open|cuInit|Cannot dlopen|CuDNN|kernel driver|Error|Traceback|NumPy", re.IGNORECASE
)


@dataclass(frozen=True, kw_only=True)
class LogFacts:
    missing_libraries: tuple[str, ...] = ()
    cuda_drivers_not_found: bool = False
    cannot_dlopen_gpu_libraries: bool = False
    cuinit_error: str | None = None
    cudnn_loaded_version: str | None = None
    cudnn_compiled_version: str | None = None
    devices: tuple[FrameworkGpu, ...] = ()


def created_devices(lines: Sequence[str]) -> tuple[FrameworkGpu, ...]:
    """The GPU devices TensorFlow says it created, first line per device (TF 1 logs one per session)."""
    found: dict[int, FrameworkGpu] = {}
    for line in lines:
        match = CREATED_DEVICE.search(line)
        if match is None or int(match["index"]) in found:
            continue
        pci = match["pci"].lower()
        found[int(match["index"])] = FrameworkGpu(
            index=int(match["index"]),
            cuda_ordinal=int(match["ordinal"]),
            name=match["name"].strip()[:200],
            pci_bus_id=pci if PCI_ADDRESS.fullmatch(pci) else None,
            compute_capability=match["cc"],
            memory_mib=int(match["mib"]),
        )
    return tuple(found[i] for i in sorted(found))


def parse_log(lines: Sequence[str]) -> LogFacts:
    """Read TensorFlow's stderr (and an import error's text) for why the GPU was not used."""
    missing: list[str] = []
    cuinit: str | None = None
    cudnn: tuple[str, str] | None = None
    for line in lines:
        for pattern in (COULD_NOT_LOAD, COULD_NOT_FIND_DLL, COULD_NOT_OPEN_CUDA, CANNOT_OPEN):
            match = pattern.search(line)
            if match:
                if match.group(1) not in missing:
                    missing.append(match.group(1))
                break
        cuinit_match = CUINIT.search(line)
        if cuinit_match and cuinit is None:
            name = CUDA_ERROR_NAME.search(cuinit_match.group(1))
            cuinit = name.group(1) if name else cuinit_match.group(1).strip()[:MAX_LINE] or "unknown"
        cudnn_match = CUDNN_MISMATCH.search(line)
        if cudnn_match and cudnn is None:
            cudnn = (cudnn_match.group(1), cudnn_match.group(2).rstrip("."))
    text = "\n".join(lines)
    return LogFacts(
        missing_libraries=tuple(missing),
        cuda_drivers_not_found=bool(CUDA_DRIVERS.search(text)),
        cannot_dlopen_gpu_libraries=bool(CANNOT_DLOPEN.search(text)),
        cuinit_error=cuinit,
        cudnn_loaded_version=cudnn[0] if cudnn else None,
        cudnn_compiled_version=cudnn[1] if cudnn else None,
        devices=created_devices(lines),
    )


def clean_log(lines: Sequence[str], limit: int = MAX_LOG_LINES) -> tuple[str, ...]:
    """Strip ANSI codes and whitespace, drop blanks, and keep at most `limit` lines in their order,
    preferring those that mention CUDA, GPUs, libraries or errors."""
    cleaned = [ANSI.sub("", line).strip()[:MAX_LINE] for line in lines]
    cleaned = [line for line in cleaned if line]
    relevant = [i for i, line in enumerate(cleaned) if RELEVANT.search(line)][:limit]
    rest = [i for i, line in enumerate(cleaned) if not RELEVANT.search(line)][: limit - len(relevant)]
    return tuple(cleaned[i] for i in sorted(relevant + rest))


TF_DISTRIBUTIONS = TENSORFLOW  # the child script keeps the same list


def collect(ctx: ProbeContext) -> TensorFlowFacts:
    if absent(ctx, TF_DISTRIBUTIONS):
        raise ProbeUnavailable("TensorFlow is not installed")
    run = run_child(ctx, "tensorflow", extra_env=CHILD_ENV)
    if run.data is None:
        raise ProbeUnavailable(f"the target interpreter could not be examined: {run.problem}")
    if not run.data.get("installed"):
        raise ProbeUnavailable("TensorFlow is not installed")
    return parse(run.data, run)


def parse(data: dict[str, Any], run: ChildRun) -> TensorFlowFacts:
    log_lines = clean_log(run.log_lines)
    import_error = string(data.get("import_error")) or None
    list_devices_error = string(data.get("list_devices_error") or data.get("create_devices_error")) or None
    stage = data.get("stage")
    if stage == "devices":
        # The child died or was stopped while TensorFlow created its GPU devices: imported, GPUs listed.
        failure = run.result.describe_failure().replace(run.result.argv[0], "python", 1)
        list_devices_error = f"{failure} while TensorFlow created its GPU devices"
    elif stage in ("metadata", "imported"):
        # The child died or was stopped after its first report: during the import, or while listing devices.
        failure = run.result.describe_failure().replace(run.result.argv[0], "python", 1)
        where = "importing TensorFlow" if data.get("stage") == "metadata" else "listing TensorFlow's devices"
        import_error = f"{failure} while {where}"
    log = parse_log([*log_lines, *(import_error or "").splitlines()])
    raw_distributions = data.get("distributions")
    distributions = {
        str(canonicalize_name(str(name))): str(version)
        for name, version in (raw_distributions.items() if isinstance(raw_distributions, dict) else ())
    }
    version = string(data.get("version")) or _metadata_version(distributions) or None
    return TensorFlowFacts(
        installed=True,
        imported=data.get("imported") is True and stage in ("done", "devices"),
        import_error=import_error,
        version=version,
        module_path=string(data.get("module_path")) or None,
        is_cuda_build=_flag(data.get("is_cuda_build")),
        is_rocm_build=_flag(data.get("is_rocm_build")),
        build_cuda_version=_windows_build_version(_version_text(data.get("cuda_version")), dotted=True),
        build_cudnn_version=_windows_build_version(_version_text(data.get("cudnn_version")), dotted=False),
        build_compute_capabilities=strings(data.get("cuda_compute_capabilities")),
        gpus=strings(data.get("gpus")),
        log_lines=log_lines,
        missing_libraries=log.missing_libraries,
        loaded_libraries=tuple(
            LoadedLibrary(path=p, kind=library_kind(p)) for p in strings(data.get("loaded_libraries"))
        ),
        distributions=distributions,
        cuda_drivers_not_found=log.cuda_drivers_not_found,
        cannot_dlopen_gpu_libraries=log.cannot_dlopen_gpu_libraries,
        cuinit_error=log.cuinit_error,
        cudnn_loaded_version=log.cudnn_loaded_version,
        cudnn_compiled_version=log.cudnn_compiled_version,
        list_devices_error=list_devices_error,
        gpu_devices=log.devices,
    )


def _metadata_version(distributions: dict[str, str]) -> str | None:
    for name in ("tensorflow", "tensorflow-gpu", "tensorflow-cpu", "tensorflow-intel", "tensorflow-macos"):
        if distributions.get(name):
            return distributions[name]
    return next(iter(distributions.values()), None)


def _flag(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    return None


def _version_text(value: object) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _windows_build_version(value: str | None, *, dotted: bool) -> str | None:
    """Windows wheels (2.5–2.10) write the DLL suffix: cuda_version "64_112" is CUDA 11.2, cudnn "64_8" is 8."""
    match = re.fullmatch(r"64_(\d+)", value or "")
    if not match:
        return value
    digits = match.group(1)
    return f"{digits[:-1]}.{digits[-1]}" if dotted and len(digits) >= 2 else digits


def notable_lines(lines: Sequence[str], limit: int = 10) -> tuple[str, ...]:
    """The log lines worth showing under the summary: failures and what TensorFlow says about CUDA."""
    return tuple(line for line in lines if NOTABLE.search(line))[-limit:]


def describe(facts: TensorFlowFacts) -> Description:
    name = f"TensorFlow {facts.version}" if facts.version else "TensorFlow"
    if not facts.imported:
        error = (facts.import_error or "unknown error").strip().splitlines()
        return Description(
            mark="fail",
            summary=f"{name} · import fails: {error[-1] if error else 'unknown error'}"[:200],
            details=notable_lines(facts.log_lines),
        )
    if facts.is_cuda_build:
        parts = [f"CUDA {facts.build_cuda_version}" if facts.build_cuda_version else "CUDA"]
        if facts.build_cudnn_version:
            parts.append(f"cuDNN {facts.build_cudnn_version}")
        build = f"({', '.join(parts)} build)"
    elif facts.is_rocm_build:
        build = "(ROCm build)"
    elif facts.is_cuda_build is False:
        build = "(CPU-only build)"
    else:
        build = ""
    mark: Mark
    if facts.gpus:
        mark = "ok"
        devices = f"{len(facts.gpus)} GPU{'s' * (len(facts.gpus) != 1)}"
    else:
        mark = "warn" if facts.is_cuda_build else "none"
        reason = facts.no_gpu_reason()
        devices = f"no GPU: {reason}" if reason else "no GPU"
    created = {f"/physical_device:GPU:{d.index}": d for d in facts.gpu_devices}
    details = (
        *(f"GPU: {g}" + _created(created.get(g)) for g in facts.gpus),
        *(f"loaded: {lib.path}" for lib in facts.loaded_libraries),
        *(f"build targets: {', '.join(facts.build_compute_capabilities)}",)
        * bool(facts.build_compute_capabilities),
        *notable_lines(facts.log_lines),
    )
    return Description(
        mark=mark, summary=" ".join(p for p in (name, build) if p) + f" · {devices}", details=details
    )


def _created(device: FrameworkGpu | None) -> str:
    if device is None:
        return ""
    parts = [p for p in (device.name, device.pci_bus_id and f"PCI {device.pci_bus_id}") if p]
    parts += [f"compute capability {device.compute_capability}"] * bool(device.compute_capability)
    return f" = {', '.join(parts)}" if parts else ""


PROBE = Probe(name="tensorflow", title="TensorFlow", collect=collect, describe=describe, timeout=3600)
