"""NVIDIA device nodes (and whether this process may open them), kernel modules, PCI functions.

Everything here is read from /dev, /sys and /proc without NVML, so it still answers when the driver
does not: a GPU on the PCI bus that no driver binds, an nvidia_uvm module never loaded, a container
whose device cgroup no longer lets it open /dev/nvidia0.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from gpudoctor import lazy_re
from gpudoctor.facts import DeviceNode, DevicesFacts, KernelModule, PciDevice
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable

MODULES = ("nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nvidia_peermem", "nouveau")
NVIDIA_VENDOR = "0x10de"
NODE_NAMES = lazy_re.compile(r"^nvidia(\d+|ctl|-uvm|-uvm-tools|-modeset|-nvswitch\d+|-nvswitchctl|-nvlink)$")
MAX_PCI_ENTRIES = 4096


def _read(path: Path, limit: int = 4096) -> str:
    try:
        with path.open("rb") as handle:
            return handle.read(limit).decode("utf-8", errors="replace")
    except OSError:
        return ""


def open_error(path: Path) -> str | None:
    """Open a device node read-write as CUDA does and close it again; the errno when that fails."""
    try:
        fd = os.open(
            path, os.O_RDWR | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOCTTY", 0)
        )
    except OSError as exc:
        name = errno.errorcode.get(exc.errno or 0, "error")
        return f"{name}: {exc.strerror or exc}"
    os.close(fd)
    return None


def _nodes(ctx: ProbeContext) -> tuple[DeviceNode, ...]:
    dev = ctx.path("/dev")
    try:
        names = sorted(p.name for p in dev.iterdir() if NODE_NAMES.match(p.name))
    except OSError:
        names = []
    paths = [f"/dev/{name}" for name in names]
    with contextlib.suppress(OSError):
        paths += sorted(f"/dev/nvidia-caps/{p.name}" for p in ctx.path("/dev/nvidia-caps").iterdir())
    nodes = []
    for path in paths:
        error = open_error(ctx.path(path))
        nodes.append(DeviceNode(path=path, opened=error is None, error=error))
    return tuple(nodes)


def _modules(ctx: ProbeContext) -> tuple[KernelModule, ...]:
    listed = _read(ctx.path("/proc/modules"), 1 << 20)
    loaded_names = {line.split(" ", 1)[0] for line in listed.splitlines() if line.strip()}
    modules = []
    for name in MODULES:
        folder = ctx.path(f"/sys/module/{name}")
        loaded = name in loaded_names if listed else folder.is_dir()
        version = _read(folder / "version", 200).strip() or None
        modules.append(KernelModule(name=name, loaded=loaded or (version is not None), version=version))
    return tuple(modules)


def _kind(pci_class: str) -> str:
    if pci_class.startswith("0x03"):
        return "gpu"  # display controllers: VGA (0x0300) and 3D (0x0302)
    if pci_class.startswith("0x0680"):
        return "nvswitch"  # "other bridge": how NVSwitches enumerate
    return "other"


def _pci(ctx: ProbeContext) -> tuple[bool, tuple[PciDevice, ...]]:
    root = ctx.path("/sys/bus/pci/devices")
    try:
        entries = sorted(root.iterdir())[:MAX_PCI_ENTRIES]
    except OSError:
        return False, ()
    found = []
    for entry in entries:
        if _read(entry / "vendor", 16).strip().lower() != NVIDIA_VENDOR:
            continue
        device = _read(entry / "device", 16).strip().lower().removeprefix("0x")
        pci_class = _read(entry / "class", 16).strip().lower()
        try:
            driver: str | None = (entry / "driver").readlink().name
        except OSError:
            driver = None
        found.append(
            PciDevice(
                address=entry.name,
                device_id=f"10de:{device}" if device else "",
                pci_class=pci_class,
                kind=_kind(pci_class),  # type: ignore[arg-type]
                driver=driver,
            )
        )
    return True, tuple(found)


def collect(ctx: ProbeContext) -> DevicesFacts:
    if ctx.os_name != "Linux":
        raise ProbeUnavailable(
            f"device nodes and kernel modules are read on Linux only (this is {ctx.os_name})"
        )
    scanned, pci = _pci(ctx)
    try:
        nvswitch = tuple(sorted(p.name for p in ctx.path("/proc/driver/nvidia-nvswitch/devices").iterdir()))
    except OSError:
        nvswitch = ()
    version = _read(ctx.path("/proc/driver/nvidia/version"), 1000).strip().splitlines()
    return DevicesFacts(
        nodes=_nodes(ctx),
        modules=_modules(ctx),
        pci_scanned=scanned,
        pci=pci,
        nvswitch_proc=nvswitch,
        proc_driver_version=version[0][:300] if version else None,
    )


def describe(facts: DevicesFacts) -> Description:
    gpus = [d for d in facts.pci if d.kind == "gpu"]
    switches = [d for d in facts.pci if d.kind == "nvswitch"]
    loaded = [m for m in facts.modules if m.loaded]
    denied = [n for n in facts.nodes if n.opened is False]
    details = [
        f"PCI {d.address} {d.device_id} ({d.kind}): driver {d.driver or 'none bound'}" for d in facts.pci
    ]
    details += [f"{n.path}: " + ("opens" if n.opened else f"cannot open ({n.error})") for n in facts.nodes]
    details += [f"module {m.name}" + (f" {m.version}" if m.version else "") for m in loaded]
    if facts.proc_driver_version:
        details.append(facts.proc_driver_version)
    if not facts.nodes and not loaded and not gpus:
        scanned = "no NVIDIA PCI device" if facts.pci_scanned else "PCI bus not readable"
        return Description(
            mark="none",
            summary=f"unavailable: no NVIDIA device nodes, no NVIDIA kernel module, {scanned}",
            details=tuple(details),
        )
    parts = []
    if facts.pci_scanned:
        parts.append(
            f"{len(gpus)} NVIDIA GPU(s) on PCI" + (f", {len(switches)} NVSwitch(es)" if switches else "")
        )
    parts.append(f"{len(facts.nodes)} device node(s)" + (f", {len(denied)} not openable" if denied else ""))
    parts.append("modules: " + (", ".join(m.name for m in loaded) or "none loaded"))
    mark: Mark = "warn" if denied or any(g.driver is None for g in gpus) else "ok"
    return Description(mark=mark, summary=" · ".join(parts), details=tuple(details))


PROBE = Probe(name="devices", title="GPU devices", collect=collect, describe=describe, timeout=10)
