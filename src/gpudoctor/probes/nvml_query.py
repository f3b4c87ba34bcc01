"""Ask NVML everything gpudoctor wants, as plain JSON data; run as a script in a child process.

A libnvidia-ml that crashes in nvmlInit (a half-installed driver) or hangs on a wedged GPU must not
take gpudoctor down, so the driver probe runs this file with gpudoctor's own interpreter in
isolated mode (`python -I`: no working directory, no PYTHON* variables on sys.path) and a
deadline. Before each NVML call the script names it on stderr, so a crash says where it happened.
Standard library only, plus the NVML binding it is handed (`pynvml`, or a stand-in in tests).
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

MARKER = "@@GPUDOCTOR@@ "
STEP = "@@NVML-CALL@@ "
MIB = 1024 * 1024
ABSENT_FEATURE = (3, 13)  # NVML_ERROR_NOT_SUPPORTED, NVML_ERROR_FUNCTION_NOT_FOUND (an older driver)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace").strip("\x00").strip()
    return str(value).strip()


def _code(exc: BaseException) -> int | None:
    value = getattr(exc, "value", None)
    return value if isinstance(value, int) else None


def _message(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # noqa: BLE001 - pynvml's __str__ itself calls into the library
        text = ""
    return text or type(exc).__name__


def _mib(value: object) -> int | None:
    return value // MIB if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class _Asker:
    """Calls NVML functions, turning each failure into a recorded problem instead of an exception."""

    def __init__(self, nvml: Any, step: Callable[[str], None]) -> None:
        self.nvml = nvml
        self.step = step
        self.problems: list[str] = []

    def __call__(self, call: str, *args: Any, optional: bool = False) -> Any:
        """`optional`: a feature some GPUs or drivers lack (MIG, persistence): its absence is no fault."""
        function = getattr(self.nvml, call, None)
        if function is None:
            if not optional:
                self.problems.append(f"{call}: not in this NVML binding")
            return None
        self.step(call)
        try:
            return function(*args)
        except self.nvml.NVMLError as exc:
            if not (optional and _code(exc) in ABSENT_FEATURE):
                self.problems.append(f"{call}: {_message(exc)}")
        except (AttributeError, TypeError, ValueError, OSError) as exc:
            self.problems.append(f"{call}: {type(exc).__name__}: {exc}")
        return None


def _mig_devices(ask: _Asker, handle: Any) -> list[dict[str, Any]]:
    count = ask("nvmlDeviceGetMaxMigDeviceCount", handle, optional=True)
    devices: list[dict[str, Any]] = []
    for index in range(count if isinstance(count, int) else 0):
        try:
            ask.step("nvmlDeviceGetMigDeviceHandleByIndex")
            mig = ask.nvml.nvmlDeviceGetMigDeviceHandleByIndex(handle, index)
        except ask.nvml.NVMLError as exc:
            if _code(exc) != 6:  # NVML_ERROR_NOT_FOUND: an empty slot
                devices.append({"index": index, "error": _message(exc)})
            continue
        mine = _Asker(ask.nvml, ask.step)
        name = mine("nvmlDeviceGetName", mig)
        uuid = mine("nvmlDeviceGetUUID", mig, optional=True)
        memory = mine("nvmlDeviceGetMemoryInfo", mig)
        devices.append(
            {
                "index": index,
                "name": _text(name) if name is not None else "",
                "uuid": _text(uuid) if uuid is not None else None,
                "memory_mib": _mib(getattr(memory, "total", None)),
                "error": "; ".join(mine.problems) or None,
            }
        )
    return devices


def _processes(ask: _Asker, handle: Any) -> list[list[int | None]]:
    found = ask("nvmlDeviceGetComputeRunningProcesses", handle, optional=True)
    processes: list[list[int | None]] = []
    for process in found if isinstance(found, list | tuple) else ():
        pid = getattr(process, "pid", None)
        if isinstance(pid, int):
            processes.append([pid, _mib(getattr(process, "usedGpuMemory", None))])
    return processes


def _gpu(nvml: Any, step: Callable[[str], None], index: int) -> dict[str, Any]:
    try:
        step("nvmlDeviceGetHandleByIndex")
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as exc:
        return {"index": index, "error": _message(exc), "error_code": _code(exc)}
    ask = _Asker(nvml, step)
    name = ask("nvmlDeviceGetName", handle)
    uuid = ask("nvmlDeviceGetUUID", handle, optional=True)
    capability = ask("nvmlDeviceGetCudaComputeCapability", handle)
    memory = ask("nvmlDeviceGetMemoryInfo", handle)
    pci = ask("nvmlDeviceGetPciInfo", handle)
    persistence = ask("nvmlDeviceGetPersistenceMode", handle, optional=True)
    mig = ask("nvmlDeviceGetMigMode", handle, optional=True)
    gpu: dict[str, Any] = {
        "index": index,
        "name": _text(name) if name is not None else "",
        "uuid": _text(uuid) if uuid is not None else None,
        "compute_capability": f"{capability[0]}.{capability[1]}"
        if isinstance(capability, tuple | list) and len(capability) == 2
        else None,
        "memory_mib": _mib(getattr(memory, "total", None)),
        "memory_used_mib": _mib(getattr(memory, "used", None)),
        "pci_bus_id": (_text(getattr(pci, "busId", "")) or None) if pci is not None else None,
        "pci_device_id": getattr(pci, "pciDeviceId", None) if pci is not None else None,
        "persistence_mode": persistence if isinstance(persistence, int) else None,
        "mig": list(mig) if isinstance(mig, tuple | list) and len(mig) == 2 else None,
    }
    if gpu["mig"] is not None and gpu["mig"][0] == 1:
        gpu["mig_devices"] = _mig_devices(ask, handle)
    gpu["processes"] = _processes(ask, handle)
    gpu["error"] = "; ".join(ask.problems) or None
    return gpu


def query(nvml: Any, step: Callable[[str], None] = lambda _call: None) -> dict[str, Any]:
    """Everything NVML says, as JSON-ready data; NVML's failures are data too (code and message)."""
    errors = nvml.NVMLError
    try:
        step("nvmlInit")
        nvml.nvmlInit()
    except errors as exc:
        return {"init_error": _code(exc), "message": _message(exc)}
    except OSError as exc:
        return {"init_error": 12, "message": str(exc)}  # NVML_ERROR_LIBRARY_NOT_FOUND
    data: dict[str, Any] = {"init_error": None}
    try:
        ask = _Asker(nvml, step)
        version = ask("nvmlSystemGetDriverVersion")
        data["driver_version"] = _text(version) if version is not None else None
        for call in ("nvmlSystemGetCudaDriverVersion_v2", "nvmlSystemGetCudaDriverVersion"):
            value = ask(call)
            if isinstance(value, int) and value > 0:
                data["cuda_version"] = value
                break
        try:
            step("nvmlDeviceGetCount")
            count = int(nvml.nvmlDeviceGetCount())
        except errors as exc:
            data["count_error"] = _code(exc)
            data["message"] = _message(exc)
            return data
        data["gpus"] = [_gpu(nvml, step, index) for index in range(count)]
        return data
    finally:
        step("nvmlShutdown")
        with contextlib.suppress(Exception):  # shutting down a half-initialised NVML may fail
            nvml.nvmlShutdown()


def _announce(call: str) -> None:
    sys.stderr.write(STEP + call + "\n")
    sys.stderr.flush()


def library_missing() -> bool:
    """True when the loader cannot open libnvidia-ml.so.1 (Linux): nvmlInit would fail with
    NVML_ERROR_LIBRARY_NOT_FOUND, as pynvml loads nothing else there. Asked before importing pynvml,
    whose import costs more than the rest of this script on a machine without a driver."""
    if not sys.platform.startswith("linux"):
        return False  # Windows: pynvml looks in System32 and Program Files; macOS has no NVML
    import ctypes

    _announce("nvmlInit")  # a library that crashes as it loads crashes in pynvml's nvmlInit too
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
    except OSError:
        return True
    return False


def main(argv: list[str]) -> int:
    for folder in argv[1:2]:
        if folder and folder not in sys.path:
            sys.path.append(folder)  # where gpudoctor's own pynvml lives; never the working directory
    data: dict[str, Any]
    if library_missing():
        data = {"init_error": 12, "message": "NVML Shared Library Not Found"}  # pynvml's words for it
    else:
        try:
            import pynvml
        except ImportError as exc:
            data = {"init_error": 12, "message": f"nvidia-ml-py is not importable: {exc}"}
        else:
            data = query(pynvml, _announce)
    sys.stdout.write(MARKER + json.dumps(data) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
