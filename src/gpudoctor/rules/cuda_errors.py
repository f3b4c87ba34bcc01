"""GD15x: the CUDA error a framework reports, mapped to the machine-level cause it names.

TensorFlow logs `failed call to cuInit: CUDA_ERROR_SYSTEM_NOT_READY: ...`, PyTorch warns `Error 802:
system not yet initialized`, JAX says `cuInit(0) failed: CUDA_ERROR_...`: the same driver error in three
spellings. When no more specific rule has named the cause, this one does, once for all frameworks.
"""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import host_fix, reload_uvm_fix, wsl_container_toolkit_fixes
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import BY_CODE, CudaError, framework_cuda_errors


def _cause(ctx: RuleContext, error: CudaError) -> tuple[str, str, tuple[Fix, ...]]:
    """(cause, why, fixes) for this machine."""
    flavor = ctx.flavor
    if error.code == 802:
        return (
            (
                "the GPUs are not initialised yet: on an NVSwitch system (HGX/DGX) NVIDIA Fabric Manager has not "
                "set up the NVLink fabric"
            ),
            (
                "CUDA reports 802 until Fabric Manager, of the driver's exact version, is running; gpudoctor saw no "
                "NVSwitch device itself (a container, or the switches are not exposed here), so check it on the host."
            ),
            (
                ctx.fix_on_host(
                    "On the host, check and start Fabric Manager (its version must equal the driver's)",
                    "nvidia-smi -q | grep -i -A2 fabric",
                    "systemctl status nvidia-fabricmanager",
                    "sudo systemctl enable --now nvidia-fabricmanager",
                    needs_admin=True,
                ),
            ),
        )
    if error.code in (999, 304) and flavor == "wsl":
        return (
            "CUDA in WSL 2 could not reach the Windows driver through /dev/dxg",
            (
                "In WSL 2 these errors come from the GPU paravirtualisation: an outdated WSL or Windows driver, or "
                "a GPU the Windows driver has reset."
            ),
            (
                host_fix(
                    "In Windows, update WSL and the NVIDIA driver, then restart WSL",
                    "wsl --update",
                    "wsl --shutdown",
                    needs_admin=True,
                    where="host",
                ),
            ),
        )
    if error.code in (999, 304):
        if ctx.in_container:
            return (
                "CUDA could not initialise the GPU the container was given",
                (
                    "An unknown error from cuInit inside a container usually means the host's nvidia_uvm is in a bad "
                    "state (after suspend, or a driver update without reboot) or the container lost its devices."
                ),
                (
                    ctx.fix_on_host("Restart the container first", "docker restart <container>"),
                    reload_uvm_fix(ctx),
                ),
            )
        return (
            (
                "CUDA could not initialise the driver although NVML works: typically nvidia_uvm after a "
                "suspend/resume or a driver update without a reboot"
            ),
            (
                "nvidia-smi only needs the nvidia module; cuInit also needs a working nvidia_uvm, and after a "
                "suspend/resume cycle that module often answers only 'unknown error' until it is reloaded."
            ),
            (reload_uvm_fix(ctx), ctx.fix("Or reboot", "sudo reboot", needs_admin=True, needs_reboot=True)),
        )
    if error.code == 803:
        return (
            "the libcuda programs load is from another driver release than the running kernel module",
            (
                "CUDA refuses a user-space driver (libcuda) that does not belong to the loaded kernel module: a "
                "CUDA forward-compatibility package on the loader path, or a container image with its own driver "
                "libraries."
            ),
            (
                ctx.fix(
                    "See which libcuda the loader resolves and which driver runs; remove the other one (or the "
                    "cuda-compat folder) from the loader path",
                    "ldconfig -p | grep libcuda.so.1",
                    "cat /proc/driver/nvidia/version",
                    'echo "$LD_LIBRARY_PATH"',
                ),
            ),
        )
    if error.code == 804:
        return (
            (
                "a CUDA forward-compatibility libcuda is used on a GPU that does not support it (only data-centre "
                "GPUs do)"
            ),
            (
                "The cuda-compat package's libcuda works only on data-centre GPUs; on GeForce and most workstation "
                "GPUs CUDA refuses it."
            ),
            (
                ctx.fix(
                    "Take the compatibility folder off the loader path and use the installed driver's libcuda",
                    "ldconfig -p | grep libcuda.so.1",
                    'echo "$LD_LIBRARY_PATH"',
                ),
            ),
        )
    if error.code == 34:
        return (
            "the libcuda the framework loaded is the CUDA toolkit's link-time stub",
            "The toolkit's lib64/stubs/libcuda.so only lets programs link; loaded at run time it fails every call.",
            (ctx.fix("Remove the stubs folder from the loader path", 'echo "$LD_LIBRARY_PATH"'),),
        )
    if error.code == 303:
        return (
            "the driver's libcuda failed to initialise",
            (
                "CUDA_ERROR_SHARED_OBJECT_INIT_FAILED at cuInit means libcuda itself could not start: typically a "
                "libcuda of another driver release, or (WSL) one that is not the Windows driver's."
            ),
            (ctx.fix("See which libcuda the loader resolves", "ldconfig -p | grep libcuda.so.1"),),
        )
    if error.code == 500 and flavor == "wsl" and ctx.in_container:
        return (
            (
                "this container on WSL 2 lacks libnvdxgdmal.so.1, which Windows drivers 555 and later need: its "
                "NVIDIA Container Toolkit (or Docker Desktop) is older than those drivers"
            ),
            (
                "Windows drivers 555 and later split part of CUDA into libnvdxgdmal.so.1; a container toolkit "
                "that does not mount it leaves libcuda without a symbol, and cuInit fails with 500."
            ),
            wsl_container_toolkit_fixes(ctx),
        )
    if error.code == 500:
        return (
            "libcuda lacks a function the CUDA runtime looks up: driver libraries of two releases are mixed",
            (
                "CUDA_ERROR_NOT_FOUND at start-up means the libcuda loaded is not the one the rest of the driver "
                "(or the runtime) was built against: a copied or partly upgraded libcuda."
            ),
            (ctx.fix("See which libcuda the loader resolves", "ldconfig -p | grep libcuda.so.1"),),
        )
    if error.code == 100:
        return (
            "CUDA sees no GPU in this process",
            (
                "The driver lists GPUs, but the process sees none: CUDA_VISIBLE_DEVICES, a container or job without "
                "the GPU, or MIG without MIG devices."
            ),
            (
                ctx.fix(
                    "Compare what the driver sees with what this process is allowed",
                    "nvidia-smi -L",
                    'echo "CUDA_VISIBLE_DEVICES=$CUDA_VISIBLE_DEVICES NVIDIA_VISIBLE_DEVICES=$NVIDIA_VISIBLE_DEVICES"',
                ),
            ),
        )
    return (
        "CUDA could not be initialised",
        (
            "CUDA reported an initialisation error before any device was used (CUDA used in a parent process "
            "before fork() gives the same)."
        ),
        (ctx.fix("Read the framework's full message with CUDA's own logging", "nvidia-smi"),),
    )


@rule(
    "GD151",
    "The frameworks start CUDA without a machine-level error",
    requires=(
        *causes.DRIVER,
        *causes.PLATFORM,
        *causes.WRONG_LIBCUDA,
        *causes.HIDDEN_GPUS,
        *causes.KERNEL_REFUSES_GPU,
        *causes.CUDA_CANNOT_START,
        *causes.WSL,
        *causes.BROKEN_PYTHON,
        "GD111",
        "GD502",
    ),
    blocks_gpu=True,
    problem="A framework cannot start CUDA because of a machine-level error",
    part="driver",
)
def framework_cuda_error(ctx: RuleContext) -> Iterator[Verdict]:
    found: dict[int, list[tuple[str, str]]] = {}
    for framework, text, error in framework_cuda_errors(ctx):
        if error.code != 3:
            found.setdefault(error.code, []).append((framework, text))
    for code, said in sorted(found.items()):
        error = BY_CODE[code]
        cause, why, fixes = _cause(ctx, error)
        frameworks = ", ".join(dict.fromkeys(f for f, _ in said))
        lines = list(dict.fromkeys(f"{f}: {t.strip().splitlines()[0][:240]}" for f, t in said))
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{frameworks} cannot start CUDA ({error.name}, {code}: {error.text}): {cause}",
            why=why,
            seen=tuple(lines[:4]),
            fixes=fixes,
        )
