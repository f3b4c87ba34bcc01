"""GD12x: each GPU's own state as NVML reports it (NVML itself, MIG, memory held by other processes)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from packaging.version import Version

from gpudoctor.facts import DriverFacts, GpuFacts
from gpudoctor.model import Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import reinstall_driver_library_fix
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import driver_system

NVML_LIBRARY = "/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1"
MEMORY_HELD_SHARE = 0.7  # other processes hold this share of a GPU's memory or more
LIST_PROCESSES = "nvidia-smi --query-compute-apps=gpu_bus_id,pid,process_name,used_memory --format=csv"


def _driver(ctx: RuleContext) -> DriverFacts:
    driver = ctx.facts.driver
    assert driver is not None  # every rule here has needs=("driver",)
    return driver


def _label(gpu: GpuFacts) -> str:
    return f"GPU {gpu.index}" + (f" ({gpu.name})" if gpu.name else "")


def _library(d: DriverFacts) -> str:
    return next((lib for lib in d.userspace_libraries if "libnvidia-ml" in lib), NVML_LIBRARY)


@rule(
    "GD121",
    "NVML answers without crashing or hanging",
    needs=("driver",),
    blocks_gpu=True,
    problem="NVML crashes or hangs",
    part="driver",
)
def nvml_crash_or_hang(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_failure is None:
        return
    hung = d.nvml_state == "hang" or d.nvml_failure.startswith("gave no answer")
    where = f" in {d.nvml_call}" if d.nvml_call else ""
    seen = [f"NVML child process: {d.nvml_failure}"]
    seen += [f"library: {lib}" for lib in d.userspace_libraries]
    if d.kernel_module_version:
        seen.append(f"kernel module: {d.kernel_module_version}")
    if d.source == "nvidia-smi":
        seen.append(f"nvidia-smi still answered: driver {d.driver_version}, {len(d.gpus)} GPU(s)")
    elif d.nvidia_smi_error:
        seen.append(f"nvidia-smi: {d.nvidia_smi_error.splitlines()[0]}")
    severity = Severity.WARNING if d.source == "nvidia-smi" else Severity.ERROR
    if hung:
        yield Verdict(
            severity=severity,
            message=f"NVML hung{where}: the NVIDIA driver does not answer (a GPU or the driver is stuck)",
            why=(
                "nvmlInit waits on the kernel driver; when it never returns, a GPU is wedged or the driver is "
                "deadlocked, and every CUDA program, nvidia-smi and monitoring agent will hang the same way."
            ),
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Read the driver's last messages (Xid errors name the stuck GPU) and look for processes "
                    "stuck in the driver (state D), then reboot",
                    "sudo dmesg | grep -i -E 'nvrm|xid' | tail -20",
                    "ps -eo pid,stat,comm | awk '$2 ~ /D/'",
                    "sudo reboot",
                    needs_admin=True,
                    needs_reboot=True,
                ),
            ),
        )
        return
    yield Verdict(
        severity=severity,
        message=f"The NVIDIA management library (libnvidia-ml) crashes{where}: its installation is broken",
        why=(
            "A libnvidia-ml that crashes instead of returning an error is almost always a half-installed or "
            "mixed driver (files of two releases, or a .run install over packages); nvidia-smi, monitoring "
            "and the frameworks' GPU checks load the same library and crash the same way."
        ),
        seen=tuple(seen),
        fixes=(reinstall_driver_library_fix(ctx, _library(d)),),
    )


@rule(
    "GD122",
    "No other process holds most of a GPU's memory",
    needs=("driver",),
    problem="Another process holds most of a GPU's memory",
    part="driver",
)
def memory_held(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    for gpu in d.gpus:
        if not gpu.memory_mib or gpu.memory_used_mib is None or gpu.mig_current:
            continue  # a MIG GPU's memory belongs to its instances, judged by GD126
        if gpu.memory_used_mib < gpu.memory_mib * MEMORY_HELD_SHARE:
            continue
        free = gpu.memory_mib - gpu.memory_used_mib
        spare = _other_gpu(d, gpu)
        other = (
            ctx.fix_in_container("Or run on another GPU", f"export CUDA_VISIBLE_DEVICES={spare}")
            if spare is not None
            else ctx.fix_in_container(
                "Or let the program start with less memory (TensorFlow: grow on demand)",
                "export TF_FORCE_GPU_ALLOW_GROWTH=true",
            )
        )
        why = (
            "A new program gets only the memory left over: it fails with 'CUDA out of memory' (or "
            "CUDA_ERROR_OUT_OF_MEMORY at start-up) although nothing is wrong with it or the GPU."
        )
        used = f"GPU {gpu.index} memory used: {gpu.memory_used_mib} of {gpu.memory_mib} MiB"
        if not gpu.processes:
            yield Verdict(
                severity=Severity.WARNING,
                message=f"{_label(gpu)} has only {free} MiB of {gpu.memory_mib} MiB free, held by processes "
                "this environment cannot see (another container, another user, or a process left over)",
                why=why
                + " NVML lists only the processes of this PID namespace, so the holder is outside it: "
                "inside a container `nvidia-smi` shows no process at all.",
                seen=(used, "processes visible here: none"),
                fixes=(
                    ctx.fix_on_host(
                        "List every process holding the GPU where all of them are visible (the host, or ask its "
                        "administrator) and end the leftover one",
                        LIST_PROCESSES,
                        "sudo fuser -v /dev/nvidia*",
                        needs_admin=True,
                    ),
                    other,
                ),
            )
            continue
        holders = sorted(gpu.processes, key=lambda p: -(p.used_mib or 0))
        listed = ", ".join(
            f"{p.pid} ({p.name or 'name not readable'}, "
            + (f"{p.used_mib} MiB" if p.used_mib is not None else "memory unknown")
            + ")"
            for p in holders
        )
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{_label(gpu)} has only {free} MiB of {gpu.memory_mib} MiB free: "
            f"{len(holders)} process(es) hold the rest",
            why=why,
            seen=(used, f"processes: {listed}"),
            fixes=(
                # NVML gives the host's PIDs: inside a container they name other processes, or none
                (ctx.fix_on_host if ctx.in_container else ctx.fix)(
                    "See which processes hold the memory; wait for them, or end the ones that are yours "
                    "(a leftover notebook kernel or a crashed training run)",
                    LIST_PROCESSES,
                    f"ps -o pid,user,etime,args -p {','.join(str(p.pid) for p in holders)}",
                    f"kill {holders[0].pid}",
                ),
                other,
            ),
        )


def _other_gpu(d: DriverFacts, busy: GpuFacts) -> int | None:
    for gpu in d.gpus:
        mostly_free = (
            gpu.memory_mib and gpu.memory_used_mib is not None and gpu.memory_used_mib < gpu.memory_mib / 2
        )
        if gpu.index != busy.index and not gpu.error and mostly_free:
            return gpu.index
    return None


@rule(
    "GD123",
    "Each GPU's MIG mode is what it will be after a reset",
    needs=("driver",),
    problem="A GPU's MIG mode changes at the next reset",
    part="driver",
)
def mig_pending(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    for gpu in d.gpus:
        if gpu.mig_current is None or gpu.mig_pending is None or gpu.mig_current == gpu.mig_pending:
            continue
        now, then = ("on", "off") if gpu.mig_current else ("off", "on")
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{_label(gpu)}: MIG mode was switched {then} but is still {now} until the GPU is reset",
            why=(
                "A MIG mode change takes effect only after a GPU reset or a reboot; until then CUDA sees the GPU "
                f"as it was (MIG {now}), which is rarely what whoever switched it wanted."
            ),
            seen=(f"GPU {gpu.index}: MIG current {now}, pending {then}",),
            fixes=(
                ctx.fix(
                    "Stop the processes using the GPU, then reset it (or reboot)",
                    LIST_PROCESSES,
                    f"sudo nvidia-smi --gpu-reset -i {gpu.index}",
                    needs_admin=True,
                ),
            ),
        )


@rule(
    "GD124",
    "A GPU in MIG mode has MIG devices for CUDA to use",
    needs=("driver",),
    blocks_gpu=True,
    problem="A GPU in MIG mode has no MIG devices for CUDA to use",
    part="driver",
)
def mig_without_instances(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    empty = [g for g in d.gpus if g.mig_current and not g.mig_devices and not g.error]
    if not empty:
        return
    usable = [g for g in d.gpus if not g.error and not (g.mig_current and not g.mig_devices)]
    names = ", ".join(_label(g) for g in empty)
    index = empty[0].index
    yield Verdict(
        severity=Severity.ERROR if not usable else Severity.WARNING,
        message=f"{names} {'is' if len(empty) == 1 else 'are'} in MIG mode with no MIG devices created: "
        "CUDA cannot run anything there",
        why=(
            "In MIG mode a GPU runs CUDA work only inside GPU instances with compute instances; with none "
            "created, CUDA finds no device there ('no CUDA-capable device is detected')."
        ),
        seen=tuple(f"GPU {g.index}: MIG on, 0 MIG devices" for g in empty),
        fixes=(
            ctx.fix(
                "List the GPU instance profiles this GPU offers, then create instances with their compute "
                "instances (-C); pick the profile that fits your jobs",
                f"nvidia-smi mig -i {index} -lgip",
                f"sudo nvidia-smi mig -i {index} -cgi {_default_profile(empty[0])} -C",
                "nvidia-smi -L",
                needs_admin=True,
            ),
            ctx.fix(
                "Or turn MIG off to use the whole GPU (takes effect after a GPU reset)",
                f"sudo nvidia-smi -i {index} -mig 0",
                f"sudo nvidia-smi --gpu-reset -i {index}",
                needs_admin=True,
            ),
        ),
    )


def _default_profile(gpu: GpuFacts) -> str:
    """The smallest GPU-instance profile's ID: 1g.6gb is 14 on the A30; 1g.5gb/1g.10gb/1g.12gb/1g.18gb
    is 19 on the A100, H100, H200 and B200 (the MIG user guide's profile tables)."""
    return "14" if " A30" in f" {gpu.name}" else "19"


def _bus(address: str | None) -> str | None:
    """ "00000000:07:00.0" and "0000:07:00.0" as "07:00" (bus:device), to compare NVML's and a framework's."""
    if not address:
        return None
    parts = address.lower().split(":")
    return ":".join(parts[-2:]).split(".")[0] if len(parts) >= 2 else None


def _visible_indices(value: str | None, count: int) -> list[int] | None:
    """CUDA_VISIBLE_DEVICES as GPU indices in CUDA's order; None when it names GPUs by UUID (unambiguous)."""
    if value is None:
        return list(range(count))
    indices: list[int] = []
    for item in value.split(","):
        item = item.strip()
        if not item.isdigit():
            return None if item.startswith(("GPU-", "MIG-")) else indices
        if int(item) >= count:
            break  # CUDA stops at the first index that does not exist (GD301 reports it)
        indices.append(int(item))
    return indices


@dataclass(frozen=True)
class FrameworkDevice:
    """One GPU device a framework lists, with whatever identity it gives (hardware, #10.8)."""

    framework: str  # "PyTorch", "TensorFlow", "JAX"
    label: str  # the framework's own name for it: "cuda:0", "GPU:0"
    ordinal: int  # CUDA's device number in that process: the position in CUDA_VISIBLE_DEVICES' list
    name: str = ""
    uuid: str | None = None
    pci_bus_id: str | None = None


def framework_devices(ctx: RuleContext) -> list[FrameworkDevice]:
    """Every framework's GPU devices: PyTorch's (UUID, PCI address), TensorFlow's device-creation log (PCI
    address), JAX's device objects (name only: JAX names no PCI address or UUID)."""
    found: list[FrameworkDevice] = []
    torch, tf, jax = ctx.facts.torch, ctx.facts.tensorflow, ctx.facts.jax
    for t in torch.devices if torch is not None else ():
        found.append(FrameworkDevice("PyTorch", f"cuda:{t.index}", t.index, t.name, t.uuid, t.pci_bus_id))
    for g in tf.gpu_devices if tf is not None else ():
        ordinal = g.index if g.cuda_ordinal is None else g.cuda_ordinal
        found.append(FrameworkDevice("TensorFlow", f"GPU:{g.index}", ordinal, g.name, None, g.pci_bus_id))
    for j in jax.gpu_devices if jax is not None else ():
        ordinal = j.index if j.cuda_ordinal is None else j.cuda_ordinal
        found.append(FrameworkDevice("JAX", f"cuda:{j.index}", ordinal, j.name))
    return found


def physical_gpu(device: FrameworkDevice, gpus: list[GpuFacts]) -> tuple[GpuFacts, str] | None:
    """The NVML GPU a framework's device is, and how that was told: by UUID, by PCI address, or by a name
    only one of the GPUs has."""
    for gpu in gpus:
        if device.uuid and gpu.uuid == device.uuid:
            return gpu, "UUID"
    for gpu in gpus:
        if device.pci_bus_id and gpu.pci_bus_id and _bus(gpu.pci_bus_id) == _bus(device.pci_bus_id):
            return gpu, "PCI address"
    named = [g for g in gpus if device.name and g.name == device.name]
    return (named[0], "name") if len(named) == 1 else None


@rule(
    "GD125",
    "A framework's GPU n is the GPU nvidia-smi numbers n (or CUDA_DEVICE_ORDER=PCI_BUS_ID is set)",
    needs=("driver", "environment"),
    problem="A framework's GPU n is another GPU than nvidia-smi's GPU n",
    part="environment",
)
def device_order(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    env = ctx.variables
    if env.get("CUDA_DEVICE_ORDER", "").strip().upper() == "PCI_BUS_ID":
        return
    gpus = {g.index: g for g in d.gpus if not g.error}
    if len(gpus) < 2:
        return
    indices = _visible_indices(env.get("CUDA_VISIBLE_DEVICES"), len(d.gpus))
    if indices is None:
        return
    wrong = []
    for device in framework_devices(ctx):
        expected = gpus.get(indices[device.ordinal]) if 0 <= device.ordinal < len(indices) else None
        matched = physical_gpu(device, list(gpus.values()))
        if expected is not None and matched is not None and matched[0].index != expected.index:
            wrong.append((device, expected, *matched))
    if not wrong:
        return
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    shown = "; ".join(
        f"{device.framework}'s {device.label} is nvidia-smi's GPU {got.index} ({got.name}), not GPU "
        f"{expected.index} ({expected.name})"
        for device, expected, got, _ in wrong
    )
    yield Verdict(
        severity=Severity.WARNING,
        message=f"GPU numbers differ between CUDA and nvidia-smi: {shown}",
        why=(
            "CUDA numbers GPUs fastest first by default (CUDA_DEVICE_ORDER=FASTEST_FIRST), nvidia-smi and NVML by "
            "PCI bus; on a machine with different GPUs "
            + (f"CUDA_VISIBLE_DEVICES={cvd} " if cvd is not None else "an index ")
            + "then selects another GPU than the one nvidia-smi shows under that number."
        ),
        seen=(
            *tuple(
                f"{device.framework} {device.label} = {got.name} at PCI {got.pci_bus_id} (told by {how}); "
                f"nvidia-smi GPU {expected.index} = {expected.name} at PCI {expected.pci_bus_id}"
                for device, expected, got, how in wrong
            ),
            f"CUDA_VISIBLE_DEVICES={cvd}" if cvd is not None else "CUDA_VISIBLE_DEVICES unset",
        ),
        fixes=(
            ctx.fix(
                "Make CUDA number the GPUs in PCI order, as nvidia-smi does (set it where CUDA_VISIBLE_DEVICES is set)",
                "export CUDA_DEVICE_ORDER=PCI_BUS_ID",
            ),
            ctx.fix("Or select GPUs by UUID, which means the same GPU everywhere", "nvidia-smi -L"),
        ),
    )


@rule(
    "GD126",
    "Each process is given the one MIG device it can use",
    needs=("driver", "environment"),
    problem="A CUDA process can use only one of this machine's MIG devices",
    part="environment",
)
def mig_one_per_process(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    env = ctx.variables
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    migs = [m for g in d.gpus if g.mig_current for m in g.mig_devices if m.uuid]
    if len(migs) < 2:
        return
    listed = [item.strip() for item in (cvd or "").split(",") if item.strip().startswith("MIG-")]
    torch = ctx.facts.torch
    sees = torch.device_count if torch is not None and torch.cuda_available else None
    if cvd is not None and len(listed) < 2:
        return  # one MIG device chosen, or GPUs chosen by index: nothing to say here
    nvml_count = env.get("PYTORCH_NVML_BASED_CUDA_CHECK", "") not in ("", "0")
    if sees is not None and sees > 1 and not nvml_count:
        return  # CUDA itself enumerated them (not MIG devices after all, or a newer CUDA): trust it
    asked = (
        f"CUDA_VISIBLE_DEVICES lists {len(listed)} MIG devices" if listed else "CUDA_VISIBLE_DEVICES is unset"
    )
    crashed = torch is not None and "num_gpus" in (torch.cuda_error or "")  # torch asked CUDA for device 1
    yield Verdict(
        severity=Severity.ERROR if crashed else Severity.WARNING,
        message=f"This machine has {len(migs)} MIG devices but a CUDA process uses only one of them ({asked})"
        + (
            f"; PyTorch counts {sees} through NVML (PYTORCH_NVML_BASED_CUDA_CHECK), but CUDA gives it one"
            if sees is not None and sees > 1
            else (f"; PyTorch sees {sees}" if sees is not None else "")
        ),
        why=(
            "CUDA enumerates at most one MIG device per process; more MIG devices need more processes (one "
            "per device), each started with its own CUDA_VISIBLE_DEVICES=MIG-<uuid>."
        ),
        seen=tuple(f"MIG device {m.profile or m.name}: {m.uuid}" for m in migs[:6])
        + (
            (f"PyTorch: {torch.cuda_error[:200]}",)
            if crashed and torch is not None and torch.cuda_error
            else ()
        ),
        fixes=(
            ctx.fix(
                "Start one process per MIG device, each pinned to its device by UUID",
                *(f"CUDA_VISIBLE_DEVICES={m.uuid} python train.py &" for m in migs[:2]),
            ),
        ),
    )


def _uuid_entries(value: str | None) -> list[str]:
    """The CUDA_VISIBLE_DEVICES entries up to the first that is not a GPU-/MIG- UUID (CUDA reads no further)."""
    entries = []
    for item in (value or "").split(","):
        item = item.strip()
        if not item.startswith(("GPU-", "MIG-")):
            break
        entries.append(item)
    return entries


def _matches(entry: str, d: DriverFacts) -> GpuFacts | None:
    """The GPU an entry names, as CUDA matches it: a GPU UUID or its unique prefix, a MIG device UUID, or the
    R450/R460 form MIG-GPU-<GPU UUID>/<GI>/<CI> (its GPU must be in MIG mode)."""
    lowered = entry.lower()
    if lowered.startswith("mig-gpu-"):
        parent = lowered.removeprefix("mig-").split("/")[0]
        return next((g for g in d.gpus if g.mig_current and (g.uuid or "").lower() == parent), None)
    if lowered.startswith("mig-"):
        return next(
            (g for g in d.gpus for m in g.mig_devices if (m.uuid or "").lower().startswith(lowered)), None
        )
    found = [g for g in d.gpus if (g.uuid or "").lower().startswith(lowered)]
    return found[0] if len(found) == 1 else None


def _redacted(uuid: str | None) -> bool:
    return "…" in (uuid or "")  # redact.py keeps only the tail ("GPU-…5551"): prefixes cannot be compared


def _decidable(entry: str, d: DriverFacts) -> bool:
    """Whether an entry can be matched here: against redacted UUIDs only a redacted full UUID can."""
    uuids = [g.uuid for g in d.gpus] + [m.uuid for g in d.gpus for m in g.mig_devices]
    return _redacted(entry) or not any(_redacted(u) for u in uuids)


def _uuids_known(d: DriverFacts) -> bool:
    """NVML answered for every GPU with its UUID, and for every GPU in MIG mode with its MIG devices' UUIDs."""
    return (
        d.nvml_state == "ok"
        and bool(d.gpus)
        and all(g.uuid and not g.error for g in d.gpus)
        and all(m.uuid and not m.error for g in d.gpus if g.mig_current for m in g.mig_devices)
    )


@rule(
    "GD127",
    "Every UUID in CUDA_VISIBLE_DEVICES names a GPU or MIG device of this machine",
    needs=("driver", "environment"),
    blocks_gpu=True,
    problem="CUDA_VISIBLE_DEVICES names a GPU UUID this machine does not have",
    part="environment",
)
def visible_uuid_unknown(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    env = ctx.variables
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    entries = _uuid_entries(cvd)
    if not entries or not _uuids_known(d) or not all(_decidable(e, d) for e in entries):
        return
    position = next((i for i, e in enumerate(entries) if _matches(e, d) is None), None)
    if position is None:
        return
    unknown = entries[position]
    hidden_all = position == 0
    known = [f"{_label(g)}: {g.uuid}" for g in d.gpus] + [
        f"GPU {g.index} MIG {m.profile or m.name}: {m.uuid}"
        for g in d.gpus
        if g.mig_current
        for m in g.mig_devices
    ]
    ambiguous = (
        not unknown.lower().startswith("mig-")
        and sum((g.uuid or "").lower().startswith(unknown.lower()) for g in d.gpus) > 1
    )
    what = "matches more than one GPU" if ambiguous else "matches no GPU or MIG device here"
    yield Verdict(
        severity=Severity.ERROR if hidden_all else Severity.WARNING,
        message=f"CUDA_VISIBLE_DEVICES entry {unknown} {what}: CUDA ignores it and every entry after it"
        + (", so no program sees a GPU" if hidden_all else f", so only the {position} before it are visible"),
        why=(
            "CUDA reads CUDA_VISIBLE_DEVICES in order and stops at the first entry that names no device; a UUID "
            "copied from another machine, a MIG device that was destroyed and created again (it gets a new UUID), "
            "or an abbreviated UUID that fits two GPUs all end the list there."
        ),
        seen=(f"CUDA_VISIBLE_DEVICES={cvd}", *known[:8]),
        fixes=(
            ctx.fix(
                "List this machine's GPU and MIG device UUIDs and set CUDA_VISIBLE_DEVICES to ones it has",
                "nvidia-smi -L",
            ),
        ),
    )


@rule(
    "GD128",
    "PyTorch counts the GPUs that CUDA_VISIBLE_DEVICES names by UUID",
    requires=("GD127", "GD301"),
    needs=("environment", "torch"),
    problem="PyTorch counts no GPU although CUDA_VISIBLE_DEVICES names it by UUID",
    part="torch",
)
def torch_ignores_visible_uuids(ctx: RuleContext) -> Iterator[Verdict]:
    env = ctx.variables
    cvd = env.get("CUDA_VISIBLE_DEVICES")
    entries = _uuid_entries(cvd)
    torch = ctx.facts.torch
    if not entries or torch is None or not torch.cuda_available or torch.device_count != 0:
        return
    version = torch.version or "?"
    fixes = []
    d = ctx.facts.driver
    gpus = [_matches(e, d) for e in entries] if d is not None else []
    if d is not None and gpus and all(g is not None for g in gpus) and not entries[0].startswith("MIG-"):
        indices = ",".join(str(g.index) for g in gpus if g is not None)
        fixes.append(
            ctx.fix(
                "Name the same GPUs by nvidia-smi's index instead, in nvidia-smi's (PCI) order",
                "export CUDA_DEVICE_ORDER=PCI_BUS_ID",
                f"export CUDA_VISIBLE_DEVICES={indices}",
            )
        )
    upgrade = _newest_torch_for(ctx)
    if upgrade is not None:
        release, variant, index = upgrade
        fixes.append(
            ctx.fix(
                f"Install PyTorch {release} ({variant}, which this driver runs): current releases map GPU UUIDs "
                "through NVML and leave MIG UUIDs to CUDA's own count; then run gpudoctor check again",
                ctx.pip_install(f"torch=={release}.*", options=("--index-url", index)),
            )
        )
    kind = ("MIG device" if entries[0].startswith("MIG-") else "GPU") + (
        " UUIDs" if len(entries) > 1 else " UUID"
    )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch {version} counts 0 GPUs although torch.cuda.is_available() is True: it does not read "
        f"the {kind} in CUDA_VISIBLE_DEVICES",
        why=(
            "PyTorch counts devices itself, through NVML and its own reading of CUDA_VISIBLE_DEVICES, so that "
            "counting does not start CUDA; releases around 1.13 and 2.0 read only GPU indices there and count 0 "
            "devices for a UUID (pytorch/pytorch#90543, #95784), while CUDA itself still offers the device. Code "
            "that loops over torch.cuda.device_count() (DataParallel, Lightning, Accelerate) then runs on the CPU."
        ),
        seen=(
            f"CUDA_VISIBLE_DEVICES={cvd}",
            f"torch {version}: torch.cuda.is_available() True, torch.cuda.device_count() 0",
        ),
        fixes=tuple(fixes),
    )


def _newest_torch_for(ctx: RuleContext) -> tuple[str, str, str] | None:
    """(release, CUDA variant, index URL) of the matrix's newest PyTorch that this driver runs and this Python
    installs; None when the matrix or the facts cannot say."""
    d = ctx.facts.driver
    python = ctx.facts.python.version if ctx.facts.python else ""
    if d is None or not d.driver_version:
        return None
    system = driver_system(ctx)
    for release in sorted(ctx.matrix.torch, key=lambda r: Version(r.version), reverse=True):
        if python and not release.python.contains(python, prereleases=True):
            continue
        variants = ctx.matrix.torch_variants_for_driver(release.version, d.driver_version, system)
        if variants:
            v = variants[0]
            return release.version, v.name, v.index_url or f"https://download.pytorch.org/whl/{v.name}"
    return None
