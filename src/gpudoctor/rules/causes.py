"""Root causes, as data: named groups of rule codes for `@rule(..., requires=...)`.

`requires=` names the rules whose finding *explains* this rule's: when one of them found its problem
(an error, or a finding marked `settles_dependents`), this rule is skipped, because reporting its
symptom too would be a second error for one root cause. Every rule lists its explanations here, by
group, so that two families never keep two copies of the same list that drift apart. A new root cause
that explains what a group explains joins the group here, and every rule that uses the group follows.
"""

from __future__ import annotations

# The platform gives this system no NVIDIA GPU at all: macOS, a container started without GPUs,
# WSL 1, WSL 2 without the Windows driver's libraries.
PLATFORM = ("GD501", "GD503", "GD504", "GD505")

# The NVIDIA driver gives no CUDA program the GPU: no GPU, no driver, module not loaded, module and
# libraries of two versions, no permission, GPU lost, NVML broken. Every GD10x rule belongs here
# (tests/test_registry.py checks it).
DRIVER = ("GD101", "GD102", "GD103", "GD104", "GD105", "GD106", "GD107")

# Programs load a libcuda that is not the running driver's: a forward-compatibility package on a
# GPU or driver it does not serve (GD112), the toolkit's link-time stub (GD210).
WRONG_LIBCUDA = ("GD112", "GD210")

# CUDA_VISIBLE_DEVICES hides every GPU from the process: an index list CUDA cannot use (GD301), or a
# first entry that is a UUID this machine does not have (GD127, hardware).
HIDDEN_GPUS = ("GD301", "GD127")

# The installed TensorFlow cannot load CUDA on this machine for a reason found before its libraries
# are looked at: no CUDA libraries at all (GD411), no wheel for this Python (GD413), no GPU support
# on native Windows (GD511), a Store Python that ignores PATH for DLLs (GD513).
TENSORFLOW_WITHOUT_CUDA = ("GD411", "GD413", "GD511", "GD513")

# The target interpreter does not run, so nothing can be imported in it.
BROKEN_PYTHON = ("GD003",)

# LD_LIBRARY_PATH puts older CUDA libraries ahead of the framework's own wheels.
SHADOWED_WHEELS = ("GD209",)

# hardware: the kernel driver refuses the GPU itself: a driver branch that dropped it (GD135), open
# kernel modules on a GPU without GSP (GD136), a GPU that does not initialise (GD138), a module Secure
# Boot refused (GD139).
KERNEL_REFUSES_GPU = ("GD135", "GD136", "GD138", "GD139")

# hardware: the driver runs but CUDA still cannot start on this machine: NVML crashes or hangs (GD121),
# MIG without MIG devices (GD124), no nvidia_uvm (GD131), device nodes this process may not open
# (GD133), an NVSwitch system without a matching, running Fabric Manager (GD141, GD142), WSL 2 whose
# loader misses the Windows driver's libcuda (GD531) or whose kernel is too old (GD533), a container on
# WSL 2 without /dev/dxg or the Windows driver's libraries (GD534).
# A container given the GPU without the `compute` driver capability has NVML but no libcuda (GD507).
CUDA_CANNOT_START = ("GD121", "GD124", "GD131", "GD133", "GD141", "GD142", "GD507", "GD531", "GD533", "GD534")

# hardware: WSL 2 cannot give CUDA the GPU: the loader misses /usr/lib/wsl/lib (GD531), the WSL kernel is
# too old (GD533), a container lacks /dev/dxg or the driver's libraries (GD534). They explain "no driver" /
# "driver not loaded" / "no Windows driver libraries" inside WSL.
WSL = ("GD531", "GD533", "GD534")

# hardware: a framework's own CUDA error names a machine-level cause no other rule found (GD151).
FRAMEWORK_CUDA_ERROR = ("GD151",)

# hardware: this is a Jetson: an integrated GPU with the Tegra driver, no NVML and no PCI GPU (GD522).
JETSON = ("GD522",)

# The environment's own wheels do not fit its frameworks: a framework's pinned CUDA wheels missing or of
# another version (GD801), two wheels that wrote the same library files (GD802). They explain an import
# that fails on a missing libcudnn.so.9, a cuDNN other than pinned, CUDA libraries of another major.
# Each of their findings names the frameworks it hurts and explains only those frameworks' rules
# (`wheel_symptoms`, through Verdict.explains), never another framework's.
WHEELS_IN_CONFLICT = ("GD801", "GD802")

# Everything that keeps any framework from seeing a GPU the driver reports, whatever the framework.
NO_GPU_FOR_ANY_FRAMEWORK = tuple(
    sorted(
        {
            *DRIVER,
            *WRONG_LIBCUDA,
            *HIDDEN_GPUS,
            *SHADOWED_WHEELS,
            *KERNEL_REFUSES_GPU,
            *CUDA_CANNOT_START,
            *FRAMEWORK_CUDA_ERROR,
        }
    )
)

# What a finding about a framework's own wheels explains: its import failure, and the wrong libraries
# it loads or the GPU it does not see because of them.
WHEEL_SYMPTOMS: dict[str, tuple[str, ...]] = {
    "tensorflow": ("GD401", "GD402", "GD201", "GD202", "GD803"),
    "torch": ("GD601", "GD606", "GD607", "GD803"),
    "jax": ("GD701", "GD704", "GD708", "GD803"),
}

GROUPS: dict[str, tuple[str, ...]] = {
    "PLATFORM": PLATFORM,
    "DRIVER": DRIVER,
    "WRONG_LIBCUDA": WRONG_LIBCUDA,
    "HIDDEN_GPUS": HIDDEN_GPUS,
    "TENSORFLOW_WITHOUT_CUDA": TENSORFLOW_WITHOUT_CUDA,
    "BROKEN_PYTHON": BROKEN_PYTHON,
    "SHADOWED_WHEELS": SHADOWED_WHEELS,
    "KERNEL_REFUSES_GPU": KERNEL_REFUSES_GPU,
    "CUDA_CANNOT_START": CUDA_CANNOT_START,
    "WSL": WSL,
    "JETSON": JETSON,
    "FRAMEWORK_CUDA_ERROR": FRAMEWORK_CUDA_ERROR,
    "WHEELS_IN_CONFLICT": WHEELS_IN_CONFLICT,
    "NO_GPU_FOR_ANY_FRAMEWORK": NO_GPU_FOR_ANY_FRAMEWORK,
}


def wheel_symptoms(*frameworks: str) -> tuple[str, ...]:
    """The rules a finding about these frameworks' wheels explains; a framework is named by any of its
    distributions ("tensorflow-cpu", "jax-cuda12-plugin", "jaxlib")."""
    explained: list[str] = []
    for name in frameworks:
        family = next((f for f in WHEEL_SYMPTOMS if name == f or name.startswith((f"{f}-", f"{f}lib"))), None)
        explained += WHEEL_SYMPTOMS.get(family or "", ())
    return tuple(dict.fromkeys(explained))
