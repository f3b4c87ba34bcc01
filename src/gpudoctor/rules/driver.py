"""GD10x: the NVIDIA driver and the GPUs it sees."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.facts import DriverFacts, PlatformFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import DRIVERS_PAGE, host_fix, install_driver_fixes, wsl_host_driver_fix
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import distro_family


def _kernel(p: PlatformFacts | None) -> str:
    return p.release if p is not None and p.release and p.wsl == 0 else "$(uname -r)"


# NVML's own messages, for the NVML line when nvidia-smi's words decided the state.
_NVML_MESSAGES = (
    ("library not found", "library not found"),
    ("driver not loaded", "driver not loaded"),
    ("version mismatch", "driver/library version mismatch"),
    ("insufficient permissions", "no permission"),
    ("no permission", "no permission"),
    ("gpu is lost", "GPU lost"),
    ("not supported", "not supported"),
)


def _nvml_line(d: DriverFacts) -> str:
    """What NVML itself said: its message names its own state, which may differ from the state judged
    from nvidia-smi's words."""
    if not d.nvml_message:
        return f"NVML: {d.nvml_state.replace('_', ' ')}"
    lowered = d.nvml_message.lower()
    own = next((state for words, state in _NVML_MESSAGES if words in lowered), None)
    return f"NVML: {own} ({d.nvml_message})" if own else f"NVML: {d.nvml_message}"


def _seen(d: DriverFacts) -> list[str]:
    seen = [_nvml_line(d)]
    if d.nvidia_smi_error:
        seen.append(f"nvidia-smi: {d.nvidia_smi_error.splitlines()[0]}")
    elif d.nvidia_smi is None:
        seen.append("nvidia-smi: not found")
    return seen


def _driver(ctx: RuleContext) -> DriverFacts:
    driver = ctx.facts.driver
    assert driver is not None  # every rule here has needs=("driver",)
    return driver


def _is_container(ctx: RuleContext) -> bool:
    return ctx.facts.platform is not None and ctx.facts.platform.container is not None


@rule(
    "GD106",
    "An NVIDIA GPU is present",
    requires=(*causes.PLATFORM, "GD302", *causes.KERNEL_REFUSES_GPU, *causes.JETSON),
    needs=("driver",),
    blocks_gpu=True,
    problem="No NVIDIA GPU is present",
    part="driver",
)
def no_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    p = ctx.facts.platform
    if ctx.flavor in ("macos", "wsl"):
        return
    if d.nvml_state == "ok" and not d.gpus:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"NVIDIA driver {d.driver_version or ''} is running but reports no GPU".replace(
                "  ", " "
            ),
            why="With no GPU visible to the driver, TensorFlow, PyTorch and JAX fall back to the CPU.",
            seen=(f"driver {d.driver_version} via {d.source}: 0 GPUs",),
            fixes=(
                ctx.fix(
                    "Check that the GPU is seated, powered and enabled in the firmware setup (an eGPU must be "
                    "connected before boot), then look for driver errors",
                    "lspci -nn | grep -i nvidia",
                    "sudo dmesg | grep -i -E 'nvrm|nvidia'",
                )
                if ctx.flavor == "linux"
                else host_fix(
                    "Check in Device Manager that the NVIDIA GPU is listed and enabled",
                    "Get-PnpDevice -Class Display",
                    needs_admin=False,
                ),
            ),
        )
        return
    if (
        d.nvml_state == "library_not_found"
        and ctx.flavor in ("linux", "windows")
        and p is not None
        and p.nvidia_pci_devices == ()
    ):
        where = (
            "Windows lists no NVIDIA display adapter"
            + (f" (only {', '.join(p.display_adapters)})" if p.display_adapters else "")
            if ctx.flavor == "windows"
            else "none is on the PCI bus"
        )
        yield Verdict(
            severity=Severity.WARNING,  # nothing is broken; --require-gpu turns "no usable GPU" into a failure
            settles_dependents=True,
            message="This machine has no NVIDIA GPU: TensorFlow, PyTorch and JAX can only use the CPU here",
            why=(
                f"CUDA needs an NVIDIA GPU; {where}, and no NVIDIA driver is installed, "
                "so every framework runs on the CPU."
            ),
            seen=(
                "display adapters: " + (", ".join(p.display_adapters) or "none")
                if ctx.flavor == "windows"
                else "PCI bus: no NVIDIA display device",
                *_seen(d),
            ),
            fixes=(
                ctx.fix_on_host(
                    "If the host has an NVIDIA GPU, start this container with it (NVIDIA Container Toolkit)",
                    "docker run --gpus all <image> ...",
                )
                if p.container
                else ctx.fix(
                    "Use the CPU, or another GPU through DirectML: PyTorch has a DirectML build for Windows",
                    ctx.pip_install("torch-directml"),
                )
                if ctx.flavor == "windows"
                else ctx.fix(
                    "Run on a machine with an NVIDIA GPU; if this one should have one, check it is enabled in "
                    "the firmware setup (hybrid laptops can switch the dGPU off) and visible on the bus",
                    "lspci -nn | grep -i nvidia",
                ),
            ),
        )


@rule(
    "GD101",
    "NVIDIA driver is installed",
    requires=(*causes.PLATFORM, "GD106", *causes.JETSON, *causes.WSL),
    needs=("driver",),
    blocks_gpu=True,
    problem="No NVIDIA driver is installed",
    part="driver",
)
def driver_missing(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_state != "library_not_found" or ctx.flavor == "macos":
        return
    p = ctx.facts.platform
    if ctx.flavor in ("linux", "windows") and p is not None and p.nvidia_pci_devices == ():
        return  # no NVIDIA hardware at all: GD106 says so, there is no driver to install
    seen = _seen(d)
    if p is not None and p.nvidia_pci_devices:
        seen.append("NVIDIA GPU on the PCI bus: " + ", ".join(p.nvidia_pci_devices))
    yield Verdict(
        severity=Severity.ERROR,
        message="No NVIDIA driver is installed: the NVML library (libnvidia-ml / nvml.dll) was not found",
        why=(
            "Every CUDA program talks to the GPU through the driver's libraries (libcuda, NVML); without "
            "them TensorFlow, PyTorch and JAX see no GPU and run on the CPU."
        ),
        seen=tuple(seen),
        fixes=install_driver_fixes(ctx),
    )


def _kernel_module_fixes(ctx: RuleContext, d: DriverFacts, p: PlatformFacts) -> tuple[str, tuple[Fix, ...]]:
    """The likely cause of an absent kernel module, and its fixes."""
    family = distro_family(p)
    version = p.nvidia_module_sources[-1] if p.nvidia_module_sources else d.userspace_version
    if p.nvidia_pci_devices == ():
        fixes: list[Fix] = []
        if p.container:
            fixes.append(
                ctx.fix_on_host(
                    "In a container the GPU must be passed in: start it with the NVIDIA Container Toolkit",
                    "docker run --gpus all <image> ...",
                )
            )
        fixes.append(
            ctx.fix(
                "Check that the GPU is seated, powered and enabled in the firmware setup (hybrid laptops can "
                "switch the dGPU off; a VM needs the GPU passed through), then look for it on the bus",
                "lspci -nn | grep -i nvidia",
                "sudo dmesg | grep -i -E 'nvrm|nvidia|pci' | tail -20",
            )
        )
        cause = (
            "No NVIDIA GPU is visible on the PCI bus, so the kernel module has nothing to drive "
            "(`modprobe nvidia` would fail with 'No such device')"
        )
        return cause, tuple(fixes)
    if p.secure_boot:
        if family == "fedora":
            sign = ctx.fix(
                "Secure Boot refuses the unsigned NVIDIA module: let akmods sign it with your own key, enrol "
                "the key (you choose a one-time password, then confirm it in the blue MOK screen at boot), "
                "and rebuild",
                "sudo dnf install kmodtool akmods mokutil openssl",
                "sudo kmodgenca -a",
                "sudo mokutil --import /etc/pki/akmods/certs/public_key.der",
                "sudo akmods --force --rebuild",
                needs_admin=True,
                needs_reboot=True,
            )
        else:
            sign = ctx.fix(
                "Secure Boot refuses the unsigned NVIDIA module: enrol the key DKMS signs modules with (you "
                "choose a one-time password, then confirm it in the blue MOK screen at boot); re-enrol it if "
                "another OS or a firmware update cleared it",
                "mokutil --sb-state",
                "sudo mokutil --import /var/lib/shim-signed/mok/MOK.der",
                needs_admin=True,
                needs_reboot=True,
            )
        disable = ctx.fix(
            "Or turn Secure Boot off in the firmware setup, then reinstall the driver so the module is built",
            needs_admin=True,
            needs_reboot=True,
        )
        cause = "Secure Boot is on and the NVIDIA kernel module is not loaded, so it was most likely refused as unsigned"
        if p.nouveau_loaded:
            cause += " (nouveau drives the GPU instead)"
        return cause, (sign, disable)
    if p.nouveau_loaded:
        blacklist = ctx.fix(
            "Blacklist the open-source nouveau driver so the NVIDIA module can bind to the GPU, rebuild the "
            "initramfs and reboot",
            "printf 'blacklist nouveau\\noptions nouveau modeset=0\\n' | sudo tee /etc/modprobe.d/blacklist-nouveau.conf",
            "sudo dracut --force" if family in ("fedora", "rhel") else "sudo update-initramfs -u",
            needs_admin=True,
            needs_reboot=True,
        )
        return "The open-source nouveau driver holds the GPU", (blacklist,)
    kernel = _kernel(p)
    if p.nvidia_module_for_kernel is False:
        if family in ("fedora",):
            build = ctx.fix(
                "Build the NVIDIA module for the running kernel with akmods",
                f"sudo dnf install kernel-devel-{kernel}",
                "sudo akmods --force --kernels " + kernel,
                "sudo modprobe nvidia",
                needs_admin=True,
            )
        elif family in ("ubuntu", "debian"):
            build = ctx.fix(
                "Build the NVIDIA module for the running kernel with DKMS (the source is in /usr/src)",
                f"sudo apt install dkms linux-headers-{kernel}",
                f"sudo dkms install -m nvidia -v {version}"
                if version
                else f"sudo dkms autoinstall -k {kernel}",
                "sudo modprobe nvidia",
                needs_admin=True,
            )
        else:
            build = ctx.fix(
                "Install the kernel headers for the running kernel and rebuild the NVIDIA module with DKMS",
                f"sudo dkms autoinstall -k {kernel}",
                "sudo modprobe nvidia",
                needs_admin=True,
            )
        return f"No NVIDIA kernel module is installed for the running kernel {p.release}", (build,)
    return "", (
        ctx.fix(
            "Load the module and read the kernel's reason if it refuses",
            "sudo modprobe nvidia",
            "sudo dmesg | grep -i -E 'nvrm|nvidia' | tail -20",
            needs_admin=True,
        ),
    )


@rule(
    "GD102",
    "NVIDIA kernel module is loaded",
    requires=("GD501", "GD504", "GD506", *causes.KERNEL_REFUSES_GPU, *causes.WSL),
    needs=("driver",),
    blocks_gpu=True,
    problem="The NVIDIA kernel module is not loaded",
    part="driver",
)
def driver_not_loaded(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_state != "driver_not_loaded":
        return
    p = ctx.facts.platform or PlatformFacts()
    seen = _seen(d)
    if ctx.flavor == "wsl":
        yield Verdict(
            severity=Severity.ERROR,
            message="WSL cannot reach the Windows NVIDIA driver (NVML: driver not loaded)",
            why="In WSL 2 the GPU is driven by the Windows driver; its libraries in /usr/lib/wsl/lib talk to it.",
            seen=tuple(seen),
            fixes=(wsl_host_driver_fix(),),
        )
        return
    if ctx.flavor == "windows":
        yield Verdict(
            severity=Severity.ERROR,
            message="The NVIDIA driver is installed but not running",
            why="Without the running driver no framework can use the GPU.",
            seen=tuple(seen),
            fixes=install_driver_fixes(ctx),
        )
        return
    if p.nvidia_module_loaded or d.kernel_module_version:
        yield _module_loaded_but_unreachable(ctx, d, p, seen)
        return
    cause, fixes = _kernel_module_fixes(ctx, d, p)
    if p.secure_boot is not None:
        seen.append(f"Secure Boot: {'on' if p.secure_boot else 'off'}")
    if p.nouveau_loaded:
        seen.append("nouveau kernel module: loaded")
    if p.nvidia_module_for_kernel is not None:
        seen.append(
            f"nvidia.ko for kernel {p.release}: {'installed' if p.nvidia_module_for_kernel else 'missing'}"
        )
    if p.nvidia_module_sources:
        seen.append("module sources: " + ", ".join(f"/usr/src/nvidia-{v}" for v in p.nvidia_module_sources))
    if p.nvidia_pci_devices is not None:
        seen.append("NVIDIA GPU on the PCI bus: " + (", ".join(p.nvidia_pci_devices) or "none"))
    yield Verdict(
        severity=Severity.ERROR,
        message="The NVIDIA driver is installed but its kernel module is not loaded"
        + (f". {cause}." if cause else ""),
        why=(
            "The user-space driver (nvidia-smi, libcuda) needs the nvidia kernel module; until it loads, no "
            "program can use the GPU."
        ),
        seen=tuple(seen),
        fixes=fixes,
    )


@rule(
    "GD103",
    "NVIDIA kernel module and driver libraries are the same version",
    needs=("driver",),
    blocks_gpu=True,
    problem="The NVIDIA kernel module and driver libraries are different versions",
    part="driver",
)
def driver_version_mismatch(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_state != "lib_rm_version_mismatch":
        return
    p = ctx.facts.platform or PlatformFacts()
    module, libs = d.kernel_module_version, d.userspace_version
    seen = _seen(d)
    if module:
        seen.append(f"kernel module: {module}")
    if libs:
        seen.append(f"user-space libraries: {libs}")
    versions = f" (kernel module {module or 'unknown'}, libraries {libs or 'unknown'})"
    why = (
        "The user-space driver libraries and the loaded kernel module must come from the same driver "
        "release; NVML and CUDA refuse to start otherwise."
    )
    if p.container:
        yield Verdict(
            severity=Severity.ERROR,
            message="Driver libraries inside this container do not match the host's kernel module" + versions,
            why=why + " A container always uses the host's kernel module; a driver installed inside it only "
            "adds mismatching libraries.",
            seen=(*seen, f"container: {p.container}"),
            fixes=(
                ctx.fix_in_container(
                    "Remove the driver installed inside the container (the NVIDIA Container Toolkit mounts the "
                    "host's libraries); pick a framework build the host driver supports instead of upgrading "
                    "the driver",
                    "apt purge -y 'nvidia-*' 'libnvidia-*' 'cuda-drivers*'",
                ),
                ctx.fix_on_host("Then restart the container", "docker restart <container>"),
            ),
        )
        return
    if module and libs and module != libs and libs not in p.dkms_nvidia_built and p.dkms_nvidia_built:
        family = distro_family(p)
        finish = (
            ctx.fix(
                f"The {libs} kernel module was never built for this kernel, so a reboot brings {module} back: "
                "finish the interrupted upgrade, check that DKMS built the module, then reboot",
                "sudo apt update",
                "sudo apt install --fix-broken",
                "dkms status",
                needs_admin=True,
                needs_reboot=True,
            )
            if family in ("ubuntu", "debian")
            else ctx.fix(
                f"The {libs} kernel module was never built for this kernel: finish the upgrade and rebuild it",
                "sudo dnf distro-sync 'nvidia*' 'akmod-nvidia*'"
                if family in ("fedora", "rhel")
                else "dkms status",
                "dkms status",
                needs_admin=True,
                needs_reboot=True,
            )
        )
        yield Verdict(
            severity=Severity.ERROR,
            message="The driver was upgraded but its kernel module was not" + versions,
            why=why,
            seen=(*seen, "DKMS built for this kernel: " + ", ".join(p.dkms_nvidia_built)),
            fixes=(finish,),
        )
        return
    fixes = [
        ctx.fix(
            "The driver was updated while the old kernel module stayed loaded: reboot to load the new one",
            "sudo reboot",
            needs_admin=True,
            needs_reboot=True,
        )
    ]
    if ctx.flavor == "linux" and distro_family(p) in ("ubuntu", "debian"):
        fixes.append(
            ctx.fix(
                "If the mismatch survives the reboot, the upgrade is unfinished: complete it and check DKMS",
                "sudo apt update",
                "sudo apt install --fix-broken",
                "dkms status",
                needs_admin=True,
                needs_reboot=True,
            )
        )
    yield Verdict(
        severity=Severity.ERROR,
        message="The NVIDIA driver libraries and the loaded kernel module are different versions" + versions,
        why=why,
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


@rule(
    "GD104",
    "This user may use the NVIDIA devices",
    requires=("GD133",),
    needs=("driver",),
    blocks_gpu=True,
    problem="This user may not use the NVIDIA devices",
    part="driver",
)
def devices_not_permitted(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_state != "no_permission":
        return
    seen = _seen(d)
    if ctx.flavor == "windows":
        fixes: tuple[Fix, ...] = (
            host_fix(
                "Run the program from an account allowed to use the GPU", "nvidia-smi", needs_admin=True
            ),
        )
    elif _is_container(ctx):
        fixes = (
            ctx.fix_on_host(
                "The container's device cgroup does not allow the GPU: start it through the NVIDIA runtime",
                "docker run --gpus all <image> ...",
            ),
        )
    else:
        fixes = (
            ctx.fix(
                "Check the device nodes' permissions (normally crw-rw-rw- root) and give your user access",
                "ls -l /dev/nvidia*",
                "sudo usermod -aG video $USER",
                needs_admin=True,
            ),
        )
    p = ctx.facts.platform
    if p is not None and p.device_nodes:
        seen.append("device nodes: " + " ".join(p.device_nodes))
    yield Verdict(
        severity=Severity.ERROR,
        message="The NVIDIA driver is running but this user has no permission to use the GPU devices",
        why="CUDA opens /dev/nvidia* (Linux) for every program; without access the GPU is invisible to it.",
        seen=tuple(seen),
        fixes=fixes,
    )


@rule(
    "GD105",
    "Every GPU is reachable",
    needs=("driver",),
    blocks_gpu=True,
    problem="A GPU is unreachable",
    part="driver",
)
def gpu_lost(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    lost = [g for g in d.gpus if g.error and "lost" in g.error.lower()]
    if d.nvml_state != "gpu_lost" and not lost:
        return
    which = ", ".join(f"GPU {g.index}" + (f" ({g.pci_bus_id})" if g.pci_bus_id else "") for g in lost)
    seen = _seen(d) + [f"GPU {g.index}: {g.error}" for g in lost]
    if ctx.flavor == "windows":
        fixes: tuple[Fix, ...] = (
            host_fix(
                "Restart the machine; if the GPU drops out again, check its power cables, seating and temperature",
                "Restart-Computer",
                needs_reboot=True,
            ),
        )
    else:
        fixes = (
            ctx.fix(
                "Read the driver's Xid errors (79 = fallen off the bus), then reboot; if it happens again, "
                "check the GPU's power cables, seating, riser and temperature",
                "sudo dmesg | grep -i -E 'xid|fallen off'",
                "sudo reboot",
                needs_admin=True,
                needs_reboot=True,
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{which or 'A GPU'} has fallen off the bus: the driver lost contact with it",
        why="A lost GPU cannot run anything until the machine is rebooted; programs touching it hang or fail.",
        seen=tuple(seen),
        fixes=fixes,
    )


@rule(
    "GD107",
    "NVML initialises",
    requires=("GD133",),
    needs=("driver",),
    blocks_gpu=True,
    problem="NVML fails to initialise",
    part="driver",
)
def nvml_fails(ctx: RuleContext) -> Iterator[Verdict]:
    d = _driver(ctx)
    if d.nvml_state not in ("unknown_error", "not_supported"):
        return
    text = d.nvidia_smi_error or d.nvml_message or d.nvml_state
    if _is_container(ctx):
        fixes: tuple[Fix, ...] = (
            ctx.fix_on_host(
                "The container lost its GPU devices (typically after `systemctl daemon-reload` on a host using "
                "the systemd cgroup driver): restart it, and on the host let the NVIDIA Container Toolkit "
                "create the device symlinks",
                "docker restart <container>",
                "sudo nvidia-ctk system create-dev-char-symlinks --create-all",
                needs_admin=True,
            ),
        )
    elif ctx.flavor == "windows":
        fixes = install_driver_fixes(ctx)
    elif ctx.flavor == "wsl":
        yield _wsl_nvml_fails(ctx, d, text)
        return
    else:
        fixes = (
            ctx.fix(
                "Read the driver's messages, then reboot; reinstall the driver if the error stays",
                "sudo dmesg | grep -i -E 'nvrm|nvidia' | tail -20",
                "sudo reboot",
                needs_admin=True,
                needs_reboot=True,
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"NVML could not start: {text.splitlines()[0]}",
        why="NVML is how nvidia-smi and the frameworks' device checks reach the driver; CUDA fails the same way.",
        seen=tuple(_seen(d)),
        fixes=fixes,
    )


WDDM_BLOCKED = "blocked by the operating system"  # NVML_ERROR_NO_PERMISSION's text under WSL 2


def _wsl_nvml_fails(ctx: RuleContext, d: DriverFacts, text: str) -> Verdict:
    """Inside WSL 2 the GPU is the Windows driver's: every fix is on the Windows side, never a Linux driver."""
    seen = tuple(_seen(d))
    if WDDM_BLOCKED in text.lower():
        return Verdict(
            severity=Severity.ERROR,
            title="Windows does not give this GPU to WSL 2: it runs in TCC or MCDM mode, not WDDM",
            message=f"NVML could not start inside WSL 2: {text.splitlines()[0]} — the Windows driver runs the "
            "GPU in TCC/MCDM mode, and WSL 2 reaches only GPUs in WDDM mode",
            why="WSL 2 gets the GPU through the Windows display driver model (WDDM) and /dev/dxg. A GPU that "
            "Windows drives in TCC or MCDM mode (the default on many data-center boards) is hidden from WSL, "
            "and NVML inside answers 'GPU access blocked by the operating system'.",
            seen=seen,
            fixes=(
                host_fix(
                    "In Windows, as administrator: see each GPU's driver model, switch GPU 0 to WDDM, then "
                    "reboot Windows (boards that support only TCC/MCDM cannot be used from WSL 2: run Linux "
                    "natively or in a VM with the GPU passed through)",
                    "nvidia-smi --query-gpu=index,name,driver_model.current --format=csv",
                    "nvidia-smi -i 0 -dm 0",
                    needs_reboot=True,
                    where="host",
                ),
            ),
        )
    return Verdict(
        severity=Severity.ERROR,
        message=f"NVML could not start inside WSL 2: {text.splitlines()[0]}",
        why="Inside WSL 2 NVML and CUDA are the Windows driver's (/usr/lib/wsl/lib over /dev/dxg); a Linux "
        "NVIDIA driver installed in the distribution does not help and breaks it.",
        seen=seen,
        fixes=(
            host_fix(
                "In Windows: update WSL and the NVIDIA driver, then restart WSL",
                "wsl --update",
                f"Start-Process {DRIVERS_PAGE}",
                "wsl --shutdown",
                where="host",
            ),
        ),
    )


def _module_loaded_but_unreachable(
    ctx: RuleContext, d: DriverFacts, p: PlatformFacts, seen: list[str]
) -> Verdict:
    """NVML says "driver not loaded" although the module is there: this process may not open the GPU."""
    env = ctx.variables
    seen = [
        *seen,
        f"nvidia kernel module: loaded{f' ({d.kernel_module_version})' if d.kernel_module_version else ''}",
    ]
    seen.append("device nodes: " + (" ".join(p.device_nodes) or "none visible"))
    slurm_gpus = [n for n in ("SLURM_JOB_GPUS", "SLURM_STEP_GPUS", "SLURM_GPUS_ON_NODE") if env.get(n)]
    if env.get("SLURM_JOB_ID") and not slurm_gpus:
        seen.append(f"Slurm job {env['SLURM_JOB_ID']}: no GPU allocated (SLURM_JOB_GPUS unset)")
        return Verdict(
            severity=Severity.ERROR,
            message=f"This Slurm job ({env['SLURM_JOB_ID']}) was given no GPU: the node's NVIDIA driver is "
            "loaded, but the job may not open the GPU devices",
            why=(
                "Slurm hides the GPUs of a node from jobs that did not request them (device cgroups), so NVML and "
                "CUDA see no usable driver inside the job although the node has one."
            ),
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Resubmit asking for a GPU (or add the line `#SBATCH --gres=gpu:1` to the batch script)",
                    "sbatch --gres=gpu:1 job.sh",
                ),
                ctx.fix("Or for an interactive session", "srun --gres=gpu:1 --pty bash"),
            ),
        )
    fixes = [
        ctx.fix(
            "Check that the GPU device files exist and that you may open them",
            "ls -l /dev/nvidia*",
            "id -nG",
        )
    ]
    if p.container:
        fixes.insert(
            0,
            ctx.fix_on_host(
                "The host's driver is loaded but the container was given no GPU devices: start it with them",
                "docker run --gpus all <image> ...",
            ),
        )
    else:
        fixes.append(
            ctx.fix(
                "Create missing device files (needs admin)", "sudo nvidia-modprobe -u -c=0", needs_admin=True
            )
        )
    return Verdict(
        severity=Severity.ERROR,
        message="The nvidia kernel module is loaded, but this process cannot reach the GPU through it",
        why=(
            "NVML reports 'driver not loaded' when it cannot open /dev/nvidiactl and /dev/nvidia0: missing device "
            "files, a container or scheduler that withholds them, or permissions."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )
