"""GD13x: below the driver: device nodes, kernel modules, PCI functions and the kernel's own log."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor import lazy_re
from gpudoctor.facts import DevicesFacts, GpuFacts, KernelLogFacts, PciDevice, XidEvent
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import LEGACY_DRIVERS_PAGE, legacy_driver_fix, secure_boot_enrol_fix
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import distro_family
from gpudoctor.versions import major_of

CUDA_NODES = lazy_re.compile(r"^/dev/(nvidiactl|nvidia\d+|nvidia-uvm)$")


def _devices(ctx: RuleContext) -> DevicesFacts:
    facts = ctx.facts.devices
    assert facts is not None  # every rule here that reads it has needs=("devices",)
    return facts


def _log(ctx: RuleContext) -> KernelLogFacts:
    facts = ctx.facts.kernel_log
    assert facts is not None
    return facts


def _module_loaded(d: DevicesFacts, name: str) -> bool:
    module = d.module(name)
    return module is not None and module.loaded


def pci_key(address: str) -> str:
    """ "0000:3B:00.0", "00000000:3b:00.0" and "0000:3b:00" all as "3b:00" (bus:device)."""
    parts = address.lower().split(":")
    return ":".join(parts[-2:]).split(".")[0] if len(parts) >= 2 else address.lower()


def _gpu_at(ctx: RuleContext, address: str) -> GpuFacts | None:
    driver = ctx.facts.driver
    if driver is None:
        return None
    return next((g for g in driver.gpus if g.pci_bus_id and pci_key(g.pci_bus_id) == pci_key(address)), None)


@rule(
    "GD131",
    "CUDA's unified-memory module nvidia_uvm is loaded",
    requires=(*causes.DRIVER, *causes.PLATFORM, *causes.KERNEL_REFUSES_GPU),
    needs=("devices",),
    blocks_gpu=True,
    problem="CUDA's unified-memory module nvidia_uvm is not loaded",
    part="devices",
)
def uvm_missing(ctx: RuleContext) -> Iterator[Verdict]:
    d = _devices(ctx)
    if ctx.flavor != "linux" or ctx.in_container or not _module_loaded(d, "nvidia"):
        return
    uvm_loaded = _module_loaded(d, "nvidia_uvm")
    node = d.node("/dev/nvidia-uvm")
    if uvm_loaded and node is not None:
        return
    seen = [
        f"nvidia module: loaded{f' ({v})' if (v := d.module('nvidia').version) else ''}",  # type: ignore[union-attr]
        f"nvidia_uvm module: {'loaded' if uvm_loaded else 'not loaded'}",
        f"/dev/nvidia-uvm: {'present' if node is not None else 'absent'}",
    ]
    yield Verdict(
        severity=Severity.ERROR,
        message="The nvidia_uvm kernel module is not "
        + ("loaded" if not uvm_loaded else "reachable (no /dev/nvidia-uvm)")
        + ": nvidia-smi works, but every CUDA program fails to start",
        why=(
            "CUDA needs the unified-memory module nvidia_uvm and its device node /dev/nvidia-uvm; nvidia-smi "
            "does not, so the GPU looks fine while cuInit fails (CUDA_ERROR_UNKNOWN, 999, or 'no CUDA-capable "
            "device') and every framework falls back to the CPU."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                "Load the module and create its device node, and load it at every boot",
                "sudo modprobe nvidia-uvm",
                "sudo nvidia-modprobe -u -c=0",
                "echo nvidia-uvm | sudo tee /etc/modules-load.d/nvidia-uvm.conf",
                needs_admin=True,
            ),
            ctx.fix(
                "If modprobe refuses, read the kernel's reason (a module of another driver version needs a reboot)",
                "sudo dmesg | grep -i -E 'nvidia.uvm|nvrm' | tail -20",
                needs_admin=True,
            ),
        ),
    )


@rule(
    "GD133",
    "This process may open the NVIDIA device nodes",
    needs=("devices",),
    blocks_gpu=True,
    problem="This process may not open the NVIDIA device nodes",
    part="devices",
)
def nodes_denied(ctx: RuleContext) -> Iterator[Verdict]:
    d = _devices(ctx)
    denied = [
        n
        for n in d.nodes
        if n.opened is False and CUDA_NODES.match(n.path) and (n.error or "").startswith(("EPERM", "EACCES"))
    ]
    if not denied:
        return
    listed = ", ".join(f"{n.path} ({n.error})" for n in denied)
    seen = [f"{n.path}: {n.error}" for n in denied]
    env = ctx.variables
    if ctx.in_container and any((n.error or "").startswith("EPERM") for n in denied):
        yield Verdict(
            severity=Severity.ERROR,
            message=f"This container may no longer open its GPU devices: {listed}",
            why=(
                "The device nodes are in the container but its device cgroup refuses them. On hosts using "
                "systemd's cgroup driver this happens to running containers after `systemctl daemon-reload` "
                "(a package upgrade does it): NVML then says 'Unknown Error' and CUDA finds no device."
            ),
            seen=(*seen, f"container: {ctx.facts.platform.container}"),  # type: ignore[union-attr]
            fixes=(
                ctx.fix_on_host(
                    "Restart the container: it gets its device permissions back", "docker restart <container>"
                ),
                ctx.fix_on_host(
                    "On the host, stop it recurring: let the NVIDIA Container Toolkit create the /dev/char "
                    "symlinks systemd needs (or use CDI)",
                    "sudo nvidia-ctk system create-dev-char-symlinks --create-all",
                    needs_admin=True,
                ),
            ),
        )
        return
    if env.get("SLURM_JOB_ID"):
        fixes: tuple[Fix, ...] = (
            ctx.fix("The job was not given this GPU: ask Slurm for one", "srun --gres=gpu:1 --pty bash"),
        )
    else:
        fixes = (
            ctx.fix(
                "See who may open the device nodes (normally crw-rw-rw- root root, or the video group) and "
                "join that group; log out and in again",
                "ls -l /dev/nvidia*",
                "sudo usermod -aG video $USER",
                needs_admin=True,
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"This user may not open the NVIDIA device nodes: {listed}",
        why="Every CUDA program opens /dev/nvidiactl, /dev/nvidiaN and /dev/nvidia-uvm; refused, it sees no GPU.",
        seen=tuple(seen),
        fixes=fixes,
    )


def _unbound_gpus(d: DevicesFacts) -> list[PciDevice]:
    return [p for p in d.pci if p.kind == "gpu" and p.driver is None]


@rule(
    "GD134",
    "The NVIDIA driver drives every NVIDIA GPU on the PCI bus",
    requires=("GD135", "GD136", "GD138", *causes.PLATFORM),
    needs=("devices",),
    problem="An NVIDIA GPU on the PCI bus has no driver bound to it",
    part="devices",
)
def gpu_not_bound(ctx: RuleContext) -> Iterator[Verdict]:
    d = _devices(ctx)
    if ctx.flavor != "linux" or not _module_loaded(d, "nvidia"):
        return  # no driver at all: GD101/GD102 say so
    unbound = _unbound_gpus(d)
    if not unbound:
        return
    driven = [p for p in d.pci if p.kind == "gpu" and p.driver == "nvidia"]
    listed = ", ".join(f"{p.address} ({p.device_id})" for p in unbound)
    yield Verdict(
        severity=Severity.WARNING if driven else Severity.ERROR,
        message=f"The NVIDIA driver is loaded but does not drive {listed}",
        why=(
            "A GPU that no kernel driver binds is invisible to nvidia-smi and CUDA. The usual reason is a driver "
            "branch that no longer supports it (the kernel log says which legacy branch does); a GPU whose "
            "initialisation failed is the other."
        ),
        seen=tuple(f"PCI {p.address} {p.device_id}: no driver bound" for p in unbound)
        + tuple(f"PCI {p.address} {p.device_id}: nvidia" for p in driven),
        fixes=(
            ctx.fix(
                "Read the driver's reason (as root: the kernel log is not readable to other users) and look the "
                f"PCI ID up in the driver README's supported-GPU list ({LEGACY_DRIVERS_PAGE})",
                "sudo dmesg | grep NVRM",
                "lspci -nn | grep -i nvidia",
                needs_admin=True,
            ),
        ),
    )


def _installed_driver(ctx: RuleContext) -> str | None:
    d = ctx.facts.driver
    if d is None:
        return None
    return d.driver_version or d.kernel_module_version or d.userspace_version


def _legacy_from_table(ctx: RuleContext) -> list[tuple[PciDevice, str, str]]:
    """(PCI function, generation, last branch) of unbound GPUs whose generation the installed branch dropped."""
    devices, driver = ctx.facts.devices, _installed_driver(ctx)
    installed = major_of(driver)
    if devices is None or installed is None:
        return []
    found = []
    for pci in _unbound_gpus(devices):
        generation = ctx.matrix.pci_generation(pci.device_id)
        branch = ctx.matrix.last_driver_branch(generation) if generation else None
        last = major_of(branch.last_branch) if branch is not None else None
        if generation and branch is not None and last is not None and last < installed:
            found.append((pci, generation, branch.last_branch))
    return found


@rule(
    "GD135",
    "The installed driver branch supports every GPU",
    requires=causes.PLATFORM,
    blocks_gpu=True,
    problem="The installed driver branch does not support this GPU",
    part="devices",
)
def legacy_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    log = ctx.facts.kernel_log
    usable = (
        ctx.facts.driver is not None and ctx.facts.driver.nvml_state == "ok" and bool(ctx.facts.driver.gpus)
    )
    why = (
        "NVIDIA moves older GPU generations to legacy driver branches; a newer driver loads, says in the "
        "kernel log that it will ignore the GPU, and nothing can use it. The legacy branch supports only "
        "older CUDA versions, so current framework releases may still not run on it."
    )
    unbound = len(_unbound_gpus(ctx.facts.devices)) if ctx.facts.devices is not None else 0

    def explains(count: int) -> tuple[str, ...] | None:
        # A warning (another GPU works) still explains GD134's "no driver bound" when it names every such GPU.
        return ("GD134",) if usable and count >= unbound else None

    if log is not None and log.legacy_gpus:  # the driver's own word
        driver = log.ignoring_driver or "installed"
        names = ", ".join(
            f"{name} (last supported by the {branch}.xx branch)" for name, branch in log.legacy_gpus
        )
        branches = sorted(
            {b for _, b in log.legacy_gpus}, key=lambda b: [int(x) for x in re.findall(r"\d+", b)]
        )
        yield Verdict(
            severity=Severity.WARNING if usable else Severity.ERROR,
            message=f"The {driver} NVIDIA driver ignores {names}",
            why=why,
            seen=tuple(
                ln for ln in log.lines if "Legacy" in ln or "will ignore" in ln or "No NVIDIA GPU" in ln
            )[:6]
            or (f"kernel log: {names}",),
            fixes=(legacy_driver_fix(ctx, branches[0]),),  # an older branch still drives the newer GPUs
            settles_dependents=explains(len(log.legacy_gpus)) is not None,
            explains=explains(len(log.legacy_gpus)),
        )
        return
    dropped = _legacy_from_table(ctx)
    if not dropped:
        return
    installed = _installed_driver(ctx)
    listed = ", ".join(
        f"at {pci.address} ({pci.device_id}, {generation}, last supported by the {branch}.xx branch)"
        for pci, generation, branch in dropped
    )
    branches = sorted({b for _, _, b in dropped}, key=int)
    yield Verdict(
        severity=Severity.WARNING if usable else Severity.ERROR,
        message=f"The {installed} NVIDIA driver no longer supports the GPU {listed}",
        why=why
        + " (Read from the GPU's PCI id and NVIDIA's legacy-branch list: the kernel log was not available.)",
        seen=(
            *tuple(
                f"PCI {pci.address} {pci.device_id}: {generation}, no driver bound"
                for pci, generation, _ in dropped
            ),
            f"installed driver: {installed}",
        ),
        fixes=(legacy_driver_fix(ctx, branches[0]),),
        settles_dependents=explains(len(dropped)) is not None,
        explains=explains(len(dropped)),
    )


@rule(
    "GD136",
    "The kernel module flavour suits the GPU (the open modules need a GSP: Turing or newer)",
    requires=causes.PLATFORM,
    needs=("kernel_log",),
    blocks_gpu=True,
    problem="The open kernel modules cannot drive a GPU without GSP (older than Turing)",
    part="devices",
)
def open_module_without_gsp(ctx: RuleContext) -> Iterator[Verdict]:
    log = _log(ctx)
    if not log.open_module_unsupported:
        return
    ids = ", ".join(log.open_module_unsupported)
    version = ctx.facts.driver.kernel_module_version if ctx.facts.driver else None
    branch = (version or "").split(".")[0]
    family = distro_family(ctx.facts.platform)
    if family in ("ubuntu", "debian") and branch.isdigit():
        fix = ctx.fix(
            f"Install the proprietary kernel modules of the same {branch} branch instead of the open ones, "
            "then reboot",
            f"sudo apt install nvidia-driver-{branch}",
            needs_admin=True,
            needs_reboot=True,
        )
    elif family in ("fedora", "rhel"):
        fix = ctx.fix(
            "Switch the akmod build to the proprietary kernel modules (negativo17 packages; RPM Fusion's "
            "akmod-nvidia builds them by default), then reboot",
            "sudo sed -i -e 's/kernel-open$/kernel/g' /etc/nvidia/kernel.conf",
            "sudo akmods --rebuild",
            needs_admin=True,
            needs_reboot=True,
        )
    else:
        fix = ctx.fix(
            "Reinstall the driver with its proprietary kernel modules (.run installer: -m=kernel), then reboot",
            "sudo sh NVIDIA-Linux-$(uname -m)-<version>.run -m=kernel",
            needs_admin=True,
            needs_reboot=True,
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The open NVIDIA kernel modules cannot drive the GPU {ids}: it has no GSP (older than Turing)",
        why=(
            "Since the 560 drivers the open kernel modules are the default, and they run only on GPUs with a GPU "
            "System Processor (Turing and newer); for Maxwell, Pascal and Volta the driver refuses to load. "
            "The proprietary modules of the same driver still support them (up to the 580 branch)."
        ),
        seen=tuple(
            ln
            for ln in log.lines
            if any(i in ln.lower() for i in log.open_module_unsupported)
            or "not supported by open" in ln
            or "GSP" in ln
            or "probe" in ln
        )[:6],
        fixes=(fix,),
    )


# Xid codes that mean the GPU or its memory, NVLink or firmware failed (NVIDIA's Xid catalog), with
# what the catalog says and how serious it is. Application faults (13, 31, 43, 45) are left out.
XID_MEANING: dict[int, tuple[str, Severity]] = {
    48: ("double-bit ECC error", Severity.ERROR),
    61: ("internal micro-controller breakpoint", Severity.WARNING),
    62: ("internal micro-controller halt", Severity.ERROR),
    63: ("ECC page retirement / row remapping recorded (a reset applies it)", Severity.WARNING),
    64: ("ECC page retirement / row remapping failed", Severity.ERROR),
    74: ("NVLink error", Severity.ERROR),
    79: ("GPU has fallen off the bus", Severity.ERROR),
    92: ("high single-bit ECC error rate", Severity.WARNING),
    94: ("contained ECC error (the affected application was stopped)", Severity.WARNING),
    95: ("uncontained ECC error", Severity.ERROR),
    119: ("GSP RPC timeout", Severity.ERROR),
    120: ("GSP error", Severity.ERROR),
    140: ("unrecovered ECC error", Severity.ERROR),
}


def _lost_in_nvml(ctx: RuleContext, event: XidEvent) -> bool:
    """GD105 already reports a GPU NVML calls lost; its Xid 79 is the same root cause."""
    driver = ctx.facts.driver
    if driver is None:
        return False
    if driver.nvml_state == "gpu_lost":
        return True
    gpu = _gpu_at(ctx, event.pci)
    return gpu is not None and bool(gpu.error) and "lost" in (gpu.error or "").lower()


@rule(
    "GD137",
    "No GPU reported a hardware or firmware fault (Xid) this boot",
    needs=("kernel_log",),
    problem="A GPU reported a hardware or firmware fault (Xid) this boot",
    part="kernel_log",
)
def xid_faults(ctx: RuleContext) -> Iterator[Verdict]:
    log = _log(ctx)
    by_gpu: dict[str, list[XidEvent]] = {}
    for event in log.xids:
        if event.code not in XID_MEANING or (event.code == 79 and _lost_in_nvml(ctx, event)):
            continue
        by_gpu.setdefault(pci_key(event.pci), []).append(event)
    for events in by_gpu.values():
        codes = sorted({e.code for e in events})
        gpu = _gpu_at(ctx, events[0].pci)
        label = f"GPU {gpu.index} ({events[0].pci})" if gpu else f"The GPU at PCI {events[0].pci}"
        worst = min((XID_MEANING[c][1] for c in codes), key=lambda s: s.rank)
        meaning = "; ".join(f"Xid {c}: {XID_MEANING[c][0]}" for c in codes)
        index = str(gpu.index) if gpu else "<index>"
        fixes = [
            ctx.fix(
                "Stop the work on that GPU and reset it (or reboot); then read its ECC and row-remapping state",
                f"sudo nvidia-smi --gpu-reset -i {index}",
                f"nvidia-smi -q -d ECC,ROW_REMAPPER,PAGE_RETIREMENT -i {index}",
                needs_admin=True,
            ),
            ctx.fix(
                "If it recurs, collect the driver's report for the hardware vendor (a GPU with uncorrectable or "
                "recurring errors is replaced under warranty)",
                "sudo nvidia-bug-report.sh",
                needs_admin=True,
            ),
        ]
        if 79 in codes:
            fixes.insert(
                0,
                ctx.fix(
                    "Reboot (a GPU that fell off the bus does not come back otherwise); if it recurs, check its "
                    "power cables, seating, riser and temperature",
                    "sudo reboot",
                    needs_admin=True,
                    needs_reboot=True,
                ),
            )
        yield Verdict(
            severity=worst,
            message=f"{label} reported {meaning}",
            why=(
                "Xid errors are the driver's record of GPU faults. These codes point at the GPU's hardware, "
                "memory, NVLink or firmware, not at a program: jobs on that GPU fail or hang until it is reset, "
                "and recurring ones mean failing hardware."
            ),
            seen=tuple(f"Xid {e.code} (PCI:{e.pci}): {e.text}" for e in events[-5:]),
            fixes=tuple(fixes),
        )


@rule(
    "GD138",
    "Every NVIDIA GPU initialises",
    requires=causes.PLATFORM,
    needs=("kernel_log",),
    blocks_gpu=True,
    problem="An NVIDIA GPU failed to initialise",
    part="devices",
)
def rm_init_failed(ctx: RuleContext) -> Iterator[Verdict]:
    log = _log(ctx)
    if not log.rm_init_failed and not log.bar_problem:
        return
    where = ", ".join(log.rm_init_failed) or "a GPU"
    seen = [ln for ln in log.lines if "RmInitAdapter" in ln or "PCI I/O region" in ln or "BAR" in ln][:6]
    fixes = []
    if log.bar_problem:
        fixes.append(
            ctx.fix(
                "The firmware gave the GPU no usable memory window: in the BIOS/UEFI setup enable 'Above 4G "
                "decoding' (and Resizable BAR where offered), then boot again",
                "sudo dmesg | grep -i -E 'nvrm.*(bar|region)'",
                needs_admin=True,
            )
        )
    fixes.append(
        ctx.fix(
            "Power the machine off completely (not a reboot) and check the GPU's power connectors; if it still "
            "fails, update the system BIOS and the driver, then collect the driver's report",
            "sudo nvidia-bug-report.sh",
            needs_admin=True,
            needs_reboot=True,
        )
    )
    usable = (
        ctx.facts.driver is not None and ctx.facts.driver.nvml_state == "ok" and bool(ctx.facts.driver.gpus)
    )
    yield Verdict(
        severity=Severity.WARNING if usable else Severity.ERROR,
        message=f"The NVIDIA driver could not initialise {where} (RmInitAdapter failed)",
        why=(
            "The kernel module found the GPU but could not bring it up: missing power, a PCI memory window the "
            "firmware did not assign, GPU firmware (GSP) that failed to boot, or a GPU left in a bad state. "
            "No program can use it until it initialises."
        ),
        seen=tuple(seen) or (f"kernel log: RmInitAdapter failed for {where}",),
        fixes=tuple(fixes),
    )


@rule(
    "GD139",
    "The kernel accepts the NVIDIA module (Secure Boot signature)",
    needs=("kernel_log",),
    blocks_gpu=True,
    problem="The kernel refused the NVIDIA module (Secure Boot signature)",
    part="devices",
)
def module_rejected(ctx: RuleContext) -> Iterator[Verdict]:
    log = _log(ctx)
    devices = ctx.facts.devices
    said = log.module_rejected or ""
    if "Lockdown" not in said and "Key was rejected" not in said:
        return
    if devices is not None and _module_loaded(devices, "nvidia"):
        return  # refused once, loaded since (a signed module was installed)
    enrol = secure_boot_enrol_fix(ctx)
    yield Verdict(
        severity=Severity.ERROR,
        message="Secure Boot refused the NVIDIA kernel module: it is not signed with a key the firmware trusts",
        why=(
            "With Secure Boot on, the kernel loads only modules signed by an enrolled key; an unsigned or "
            "self-signed nvidia.ko whose key was never enrolled (or was cleared, e.g. by another OS) is refused, "
            "so the driver never starts."
        ),
        seen=(f"kernel log: {log.module_rejected}",),
        fixes=(
            enrol,
            ctx.fix(
                "Or turn Secure Boot off in the firmware setup and reboot",
                "mokutil --sb-state",
                needs_reboot=True,
            ),
        ),
    )
