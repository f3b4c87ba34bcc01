"""Typed facts gathered by the probes.

Facts are plain frozen data: probes fill them, rules read them, renderers show them, and
`gpudoctor check --save-facts` / `--facts` round-trip them through JSON (see `serde.py`).
Every field has a default so that a saved or hand-written partial facts file loads.
A probe slot on `Facts` is `None` when that probe did not run or failed; `Facts.probes`
says why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# 2: facts gained `collected_at`; the report's summary gained `exit_code` and `failed_because`.
# Files of every schema from MIN_SCHEMA_VERSION on load (what a version lacks takes its default).
SCHEMA_VERSION = 2
MIN_SCHEMA_VERSION = 1

ProbeState = Literal["ok", "unavailable", "error", "timeout", "crash", "skipped"]


@dataclass(frozen=True, kw_only=True)
class ProbeStatus:
    """How one probe went: `ok`, or why its facts are missing or partial."""

    name: str
    state: ProbeState = "ok"
    detail: str = ""
    seconds: float = 0.0


@dataclass(frozen=True, kw_only=True)
class TargetFacts:
    """The Python interpreter whose environment is diagnosed, and how it was chosen."""

    python: str = ""
    selected_by: Literal["--python", "VIRTUAL_ENV", "CONDA_PREFIX", "PATH", "self", "facts-file"] = "self"
    cwd: str = ""


@dataclass(frozen=True, kw_only=True)
class PlatformFacts:
    system: str = ""  # platform.system(): "Linux", "Windows", "Darwin"
    release: str = ""  # kernel release / Windows release
    version: str = ""
    machine: str = ""  # "x86_64", "AMD64", "arm64", "aarch64"
    distro: str | None = None  # Linux PRETTY_NAME
    windows_build: int | None = None  # e.g. 19045; also filled inside WSL from the host when known
    wsl: int = 0  # 0 = not WSL, 1 = WSL1, 2 = WSL2
    container: str | None = None  # "docker", "podman", "kubernetes", "lxc", "container"
    secure_boot: bool | None = None
    nouveau_loaded: bool | None = None
    nvidia_module_loaded: bool | None = None
    device_nodes: tuple[str, ...] = ()  # /dev/nvidia*, /dev/dxg
    wsl_lib_dir: str | None = None  # /usr/lib/wsl/lib when present
    wsl_libs: tuple[str, ...] = ()  # file names in wsl_lib_dir (libcuda.so.1, libnvidia-ml.so.1, ...)
    wsl_distro: str | None = None  # WSL_DISTRO_NAME, for `wsl --set-version <distro> 2`
    distro_id: str | None = None  # os-release ID: "ubuntu", "debian", "fedora"
    distro_id_like: tuple[str, ...] = ()  # os-release ID_LIKE
    distro_version_id: str | None = None  # os-release VERSION_ID: "22.04"
    nvidia_pci_devices: tuple[str, ...] | None = None  # "0000:01:00.0 10de:1d10"; None = not scanned
    display_adapters: tuple[str, ...] = ()  # Windows: every video controller's name, NVIDIA or not
    nvidia_module_for_kernel: bool | None = None  # modules.dep of the running kernel lists nvidia.ko
    dkms_nvidia_built: tuple[str, ...] = ()  # nvidia versions DKMS built for the running kernel
    nvidia_module_sources: tuple[str, ...] = ()  # versions of /usr/src/nvidia-<version> module sources
    # hardware: Jetson / Tegra (issue #10.6) and WSL 2 (issue #10.7)
    tegra_release: str | None = None  # L4T release from /etc/nv_tegra_release: "35.4.1"
    jetpack_version: str | None = None  # the nvidia-jetpack package's version: "5.1.2"
    jetson_model: str | None = None  # /proc/device-tree/model: "NVIDIA Jetson AGX Orin Developer Kit"
    tegra_libcuda: str | None = None  # the Tegra driver's libcuda.so.1
    wsl_ld_conf: bool | None = None  # an /etc/ld.so.conf.d file lists /usr/lib/wsl/lib (WSL 2)
    loader_libcuda: str | None = None  # where the ldconfig cache resolves libcuda.so.1 (WSL 2 and Jetson)
    windows_version: str | None = None  # inside WSL: `cmd.exe /c ver` -> "10.0.22631.4037"
    # WSL 2: where the Windows driver's files that CUDA and NVML need were found (full paths of the names in
    # probes.platform.WSL_DRIVER_FILES, in /usr/lib/wsl/lib, the driver store /usr/lib/wsl/drivers/*/, and the
    # system library folders a container toolkit may mount them into); None = not looked (not WSL 2).
    wsl_driver_files: tuple[str, ...] | None = None
    # where the same ldconfig cache resolves the unversioned libcuda.so, which cuDNN 8 and other libraries
    # dlopen by that name; None with loader_libcuda set = the cache has no such entry (WSL 2 and Jetson)
    loader_libcuda_unversioned: str | None = None


@dataclass(frozen=True, kw_only=True)
class GpuProcess:
    """A compute process holding memory on a GPU (hardware, NVML)."""

    pid: int = 0
    used_mib: int | None = None  # None where the OS does not say (WDDM)
    name: str | None = None  # from /proc/<pid>/comm where this user may read it


@dataclass(frozen=True, kw_only=True)
class MigDevice:
    """One MIG device of a GPU in MIG mode (hardware, NVML)."""

    index: int = 0
    uuid: str | None = None  # "MIG-…"
    name: str = ""  # "NVIDIA A100-SXM4-80GB MIG 1g.10gb"
    profile: str | None = None  # "1g.10gb"
    memory_mib: int | None = None
    error: str | None = None


@dataclass(frozen=True, kw_only=True)
class GpuFacts:
    index: int = 0
    name: str = ""
    compute_capability: str | None = None  # "8.6"
    memory_mib: int | None = None
    pci_bus_id: str | None = None
    error: str | None = None  # NVML's error for this GPU when it could not be queried
    # hardware: per-GPU NVML state (issue #10.1)
    uuid: str | None = None  # "GPU-5e1c…"
    pci_device_id: str | None = None  # "10de:20b0" (vendor:device)
    memory_used_mib: int | None = None
    processes: tuple[GpuProcess, ...] = ()  # compute processes holding memory on this GPU
    persistence_mode: bool | None = None
    mig_current: bool | None = None  # MIG mode now
    mig_pending: bool | None = None  # MIG mode after the next GPU reset
    mig_devices: tuple[MigDevice, ...] = ()


NvmlState = Literal[
    "ok",
    "library_not_found",
    "driver_not_loaded",
    "lib_rm_version_mismatch",
    "no_permission",
    "gpu_lost",
    "not_supported",
    "unknown_error",
    "crash",  # hardware: the NVML child process died inside the library (signal)
    "hang",  # hardware: the NVML child process gave no answer within its deadline
]


@dataclass(frozen=True, kw_only=True)
class DriverFacts:
    """The NVIDIA driver as NVML (or, failing that, `nvidia-smi`) reports it."""

    nvml_state: NvmlState = "library_not_found"
    nvml_message: str = ""
    source: Literal["nvml", "nvidia-smi"] | None = None
    driver_version: str | None = None  # "535.104.05"
    cuda_driver_version: str | None = None  # highest CUDA the driver supports, "12.2"
    gpus: tuple[GpuFacts, ...] = ()
    kernel_module_version: str | None = None  # from /proc/driver/nvidia/version
    nvidia_smi: str | None = None  # path of nvidia-smi, if found
    nvidia_smi_error: str | None = None  # its error output when it failed
    userspace_version: str | None = None  # of the user-space driver libraries (libnvidia-ml.so.<version>)
    userspace_libraries: tuple[
        str, ...
    ] = ()  # libnvidia-ml.so.1 / libcuda.so.1 in system dirs, links resolved
    # hardware: NVML runs in a child process with a deadline (issue #8.4)
    nvml_failure: str | None = None  # "crashed (SIGSEGV)" / "gave no answer within 15 s", even when
    # nvidia-smi then answered
    nvml_call: str | None = None  # the NVML call the child was inside when it crashed or hung


@dataclass(frozen=True, kw_only=True)
class CudaInstall:
    path: str = ""
    version: str | None = None  # "12.2.140" from version.json, "12.2" from nvcc
    found_via: tuple[
        str, ...
    ] = ()  # "PATH", "CUDA_HOME", "CUDA_PATH", "CUDA_PATH_V12_2", "standard-location", "conda"
    nvcc: str | None = None  # path of its nvcc
    nvcc_version: str | None = None
    version_source: Literal["version.json", "version.txt", "nvcc"] | None = None
    version_error: str | None = None  # a version.json / version.txt that could not be read or parsed


@dataclass(frozen=True, kw_only=True)
class ToolkitFacts:
    installs: tuple[CudaInstall, ...] = ()
    nvcc_on_path: str | None = None
    nvcc_version: str | None = None  # of the nvcc first on PATH
    nvcc_error: str | None = None  # nvcc found but unusable / unparseable
    cuda_home: str | None = None  # CUDA_HOME, else CUDA_PATH
    cuda_home_var: Literal["CUDA_HOME", "CUDA_PATH"] | None = None  # which variable cuda_home came from
    active: str | None = (
        None  # the install a build would use (nvcc on PATH, else CUDA_HOME, else /usr/local/cuda)
    )
    # hardware (QA case 4): the first ptxas on PATH and what its --version says, the one XLA in jaxlib < 0.4.24
    # runs before the nvidia-cuda-nvcc wheel's
    ptxas_on_path: str | None = None
    ptxas_version: str | None = None  # "12.1.66"
    ptxas_error: str | None = None  # ptxas found but its --version failed or named no release


LibraryKind = Literal[
    "cudart", "cudnn", "cublas", "cufft", "cusolver", "cusparse", "nccl", "nvrtc", "libcuda", "nvml", "other"
]
LibraryLocation = Literal[
    "system", "ld_library_path", "conda", "pip-wheel", "cuda-toolkit", "wsl", "path", "framework", "other"
]


@dataclass(frozen=True, kw_only=True)
class LibraryFile:
    """One copy of a CUDA library on disk, or the one the dynamic loader resolves."""

    kind: LibraryKind = "other"
    name: str = ""  # file name as found, e.g. "libcudart.so.12", "cudnn64_8.dll"
    path: str = ""
    location: LibraryLocation = "other"
    version: str | None = None  # "12.2.140" / "8.9.7"
    version_source: Literal["call", "header", "file-name", "package"] | None = None
    loader_default: bool = False  # what a plain dlopen(name) / LoadLibrary(name) gets in the target env
    load_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class LibrariesFacts:
    files: tuple[LibraryFile, ...] = ()
    ld_library_path: tuple[str, ...] = ()
    search_error: str | None = None
    searched: tuple[str, ...] = ()  # folders listed, in search order


@dataclass(frozen=True, kw_only=True)
class EnvironmentFacts:
    """Environment variables that change which GPU, library or interpreter is used."""

    variables: dict[str, str] = field(default_factory=dict)  # only those that are set


@dataclass(frozen=True, kw_only=True)
class CondaPackage:
    name: str = ""
    version: str = ""
    build: str = ""
    channel: str = ""  # "conda-forge", "pytorch", "nvidia", "pypi", "defaults", ...


@dataclass(frozen=True, kw_only=True)
class CondaFacts:
    prefix: str | None = None
    env_name: str | None = None
    is_target: bool = False  # the target interpreter lives in this prefix
    source: Literal["conda-meta", "conda list"] | None = None
    packages: tuple[CondaPackage, ...] = ()
    unreadable: tuple[str, ...] = ()  # conda-meta files that could not be parsed
    activate_scripts: tuple[str, ...] = ()  # etc/conda/activate.d/* file names
    activate_sets_library_path: bool = False  # an activate.d script adds $CONDA_PREFIX/lib to LD_LIBRARY_PATH
    conda_exe: str | None = None
    list_error: str | None = None  # `conda list --json` failed or printed something unusable


@dataclass(frozen=True, kw_only=True)
class DistributionCopy:
    """Another copy of a distribution further down sys.path, which the first one hides (env, #9)."""

    version: str = ""
    location: str | None = None


@dataclass(frozen=True, kw_only=True)
class Distribution:
    name: str = ""  # canonical (PEP 503) name
    version: str = ""
    requires: tuple[str, ...] = ()  # Requires-Dist lines, verbatim
    installer: str | None = None  # INSTALLER file: "pip", "conda", "uv"
    location: str | None = None
    shadowed: tuple[DistributionCopy, ...] = ()  # env (#9): same name again later on sys.path


@dataclass(frozen=True, kw_only=True)
class FileOwner:
    """One distribution whose RECORD lists a file, and whether the file on disk is the one it wrote."""

    distribution: str = ""
    hash: str | None = None  # "sha256=<urlsafe base64>" as RECORD writes it
    size: int | None = None
    matches: bool = False  # the file on disk has this owner's size (and hash, when sizes could not tell)


@dataclass(frozen=True, kw_only=True)
class SharedFile:
    """A path that two or more distributions' RECORD list: one overwrote the other's file (env, #9)."""

    path: str = ""
    owners: tuple[FileOwner, ...] = ()
    disk_size: int | None = None  # None: the file is not on disk


@dataclass(frozen=True, kw_only=True)
class FrameworkModule:
    """What `import <module>` would load, found without importing, and which distribution wrote it."""

    module: str = ""  # "tensorflow", "torch", "jax", "jaxlib"
    path: str = ""  # its __init__.py (or extension module)
    owners: tuple[str, ...] = ()  # distributions whose RECORD lists that file
    matches: tuple[str, ...] = ()  # the owners whose RECORD entry the file on disk matches


@dataclass(frozen=True, kw_only=True)
class WheelFile:
    """A file a wheel's RECORD lists: a compiler or device library (ptxas, libdevice.10.bc), a CUDA library."""

    name: str = ""
    path: str = ""
    distribution: str = ""
    exists: bool = False


CudaRootVia = Literal[
    "XLA_FLAGS",  # --xla_gpu_cuda_data_dir=...: XLA's preferred folder (TensorFlow; JAX without CUDA_ROOT or a wheel)
    "CUDA_ROOT",  # JAX's own override
    "CUDA_HOME",  # PyTorch's cpp_extension, CMake
    "CUDA_PATH",
    "ptxas on PATH",  # the folder above the first ptxas on PATH
    "nvcc on PATH",  # the folder above the first nvcc on PATH (PyTorch's second guess)
    "wheel nvidia/cu13",  # site-packages/nvidia/cu13: the CUDA 13 nvcc/nvvm wheels
    "wheel nvidia/cuda_nvcc",  # site-packages/nvidia/cuda_nvcc: nvidia-cuda-nvcc-cu12 / -cu11
    "tensorflow/cuda",  # the libdevice copy inside the TensorFlow package
    "/usr/local/cuda",
    "/opt/cuda",
    "prefix",  # the environment's own prefix (conda's cuda-nvcc puts bin/ptxas and nvvm/ there)
    "toolkit",  # another installed toolkit no framework searches by itself (a candidate for fixes)
]


@dataclass(frozen=True, kw_only=True)
class CudaRoot:
    """A folder where a framework looks for CUDA's run-time compiler tools (`bin/ptxas`, `bin/nvcc`,
    `nvvm/libdevice/libdevice.10.bc`), as the target's own environment names it (env, #9 item 5)."""

    path: str = ""
    via: CudaRootVia = "prefix"
    real: str | None = None  # the path with symlinks resolved, where it differs
    tool: str | None = None  # for the PATH entries: the ptxas / nvcc file found on PATH
    ptxas: bool = False
    nvcc: bool = False
    libdevice: bool = False
    version: str | None = None  # its version.json's cuda_nvcc (else cuda) version


@dataclass(frozen=True, kw_only=True)
class PythonFacts:
    """The target interpreter and the packages gpudoctor cares about in it."""

    executable: str = ""
    version: str = ""  # "3.11.7"
    implementation: str = "CPython"
    prefix: str = ""
    base_prefix: str = ""
    is_venv: bool = False
    origin: Literal["microsoft-store", "conda", "venv", "system", "pyenv", "other"] = "other"
    bits: int = 64
    site_packages: tuple[str, ...] = ()
    distributions: tuple[Distribution, ...] = ()
    shadowing: tuple[str, ...] = ()  # e.g. "tensorflow.py" in the working directory
    unreadable_metadata: tuple[str, ...] = ()  # *.dist-info folders without a usable METADATA
    error: str | None = None  # why the interpreter could not be examined (it would not run)
    # env (#9): the environment as a whole
    marker_environment: dict[str, str] = field(default_factory=dict)  # PEP 508 variables of the target
    shared_files: tuple[SharedFile, ...] = ()  # paths two distributions' RECORD list (bounded)
    shared_files_total: int = 0  # how many such paths there are in all
    framework_modules: tuple[FrameworkModule, ...] = ()
    wheel_tools: tuple[WheelFile, ...] = ()
    wheel_libraries: tuple[WheelFile, ...] = ()  # CUDA libraries the wheels' RECORDs list, and who wrote each
    cuda_roots: tuple[CudaRoot, ...] = ()  # where XLA, JAX and PyTorch look for ptxas/nvcc/libdevice


@dataclass(frozen=True, kw_only=True)
class LoadedLibrary:
    path: str = ""
    kind: LibraryKind = "other"


@dataclass(frozen=True, kw_only=True)
class FrameworkGpu:
    """A GPU as a framework itself names it (hardware, #10.8): TensorFlow's device-creation log line, JAX's
    device objects. Set beside NVML's list it says which physical GPU the framework really got."""

    index: int = 0  # the framework's own number: TensorFlow's /device:GPU:n, JAX's device id
    cuda_ordinal: int | None = None  # CUDA's number for it in that process (TensorFlow's "device: n")
    name: str = ""  # "NVIDIA GeForce RTX 3090", as CUDA names it (the same name NVML gives)
    pci_bus_id: str | None = None  # "0000:07:00.0"; None where the framework does not say (JAX)
    compute_capability: str | None = None  # "8.6"
    memory_mib: int | None = None  # the memory TensorFlow gave the device


@dataclass(frozen=True, kw_only=True)
class TensorFlowFacts:
    installed: bool = False
    imported: bool = False
    import_error: str | None = None
    version: str | None = None
    module_path: str | None = None
    is_cuda_build: bool | None = None
    is_rocm_build: bool | None = None
    build_cuda_version: str | None = None
    build_cudnn_version: str | None = None
    build_compute_capabilities: tuple[str, ...] = ()  # "sm_60", "compute_90"
    gpus: tuple[str, ...] = ()  # "/physical_device:GPU:0"
    log_lines: tuple[str, ...] = ()
    missing_libraries: tuple[str, ...] = ()  # names TF failed to dlopen
    loaded_libraries: tuple[LoadedLibrary, ...] = ()
    distributions: dict[str, str] = field(default_factory=dict)  # TF packages installed -> version
    cuda_drivers_not_found: bool = False  # "Could not find cuda drivers on your machine" (cudart failed)
    cannot_dlopen_gpu_libraries: bool = False  # "Cannot dlopen some GPU libraries"
    cuinit_error: str | None = None  # "CUDA_ERROR_NO_DEVICE", "UNKNOWN ERROR (303)"
    cudnn_loaded_version: str | None = None  # "Loaded runtime CuDNN library: X but source was ..."
    cudnn_compiled_version: str | None = None  # "... compiled with: Y"
    list_devices_error: str | None = None
    # hardware (#10.8): the GPUs TensorFlow created devices on, from its "Created device ..." log lines
    gpu_devices: tuple[FrameworkGpu, ...] = ()

    def no_gpu_reason(self) -> str | None:
        """Why TensorFlow's own log says it found no GPU, most specific first."""
        if self.missing_libraries:
            driver_last = sorted(self.missing_libraries, key=lambda m: m.startswith(("libcuda.so", "nvcuda")))
            return f"{', '.join(driver_last)} not found"
        if self.cuinit_error:
            return f"cuInit failed: {self.cuinit_error}"
        if self.cuda_drivers_not_found:
            return "the CUDA runtime library could not be loaded"
        if self.cannot_dlopen_gpu_libraries:
            return "some GPU libraries could not be loaded (TensorFlow did not say which)"
        if self.cudnn_loaded_version and self.cudnn_compiled_version:
            return f"cuDNN {self.cudnn_loaded_version} loaded, built for {self.cudnn_compiled_version}"
        if self.list_devices_error:
            return self.list_devices_error
        return None


@dataclass(frozen=True, kw_only=True)
class TorchDevice:
    index: int = 0
    name: str = ""
    capability: str | None = None  # "8.6"
    # hardware: which physical GPU this device is (issue #10.8)
    uuid: str | None = None  # "GPU-5e1c…" or "MIG-…", as NVML writes it
    pci_bus_id: str | None = None  # "0000:07:00.0"


@dataclass(frozen=True, kw_only=True)
class TorchFacts:
    installed: bool = False
    imported: bool = False
    import_error: str | None = None
    version: str | None = None  # torch.__version__, e.g. "2.5.1+cu124"
    module_path: str | None = None
    cuda_version: str | None = None  # torch.version.cuda
    hip_version: str | None = None
    cudnn_version: int | None = None  # torch.backends.cudnn.version()
    cuda_available: bool | None = None
    device_count: int | None = None
    devices: tuple[TorchDevice, ...] = ()
    arch_list: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    conda_build: str | None = None  # build string when conda installed it
    conda_channel: str | None = None
    loaded_libraries: tuple[LoadedLibrary, ...] = ()
    dist_version: str | None = None  # the torch distribution's metadata version (what `pip show` says)
    installer: str | None = None  # its INSTALLER file: "pip", "conda", "uv"
    conda_version: str | None = None  # version of the conda `pytorch` record, when there is one
    conda_cpuonly: bool = False  # the conda `cpuonly` package is installed
    cuda_error: str | None = None  # what failed (or crashed) while torch initialised CUDA
    cudnn_error: str | None = (
        None  # torch.backends.cudnn.version() raised: e.g. "cuDNN version incompatibility"
    )
    probe_error: str | None = None  # the probe learned nothing: the interpreter failed to run it
    # env (#10.10): the Metal route on Apple silicon; None when this torch has no torch.backends.mps
    mps_built: bool | None = None
    mps_available: bool | None = None
    mps_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class JaxLibraryCheck:
    """A CUDA library JAX's own start-up check rejected ("Outdated cuDNN installation found")."""

    name: str = ""  # "cuDNN", "CUDA", "cuBLAS", ...
    installed: str | None = None  # "8.9.7"
    minimum: str | None = None  # "9.1.0"
    built: str | None = None  # the version jaxlib was built against


@dataclass(frozen=True, kw_only=True)
class JaxFacts:
    installed: bool = False
    imported: bool = False
    import_error: str | None = None
    jax_version: str | None = None
    jaxlib_version: str | None = None
    module_path: str | None = None
    plugins: dict[str, str] = field(default_factory=dict)  # distribution name -> version
    devices: tuple[str, ...] = ()  # "cuda:0", "cpu:0"
    default_backend: str | None = None
    backend_error: str | None = None
    warnings: tuple[str, ...] = ()
    loaded_libraries: tuple[LoadedLibrary, ...] = ()
    library_checks: tuple[JaxLibraryCheck, ...] = ()
    jaxlib_conda_build: str | None = None  # build string of the conda `jaxlib` record ("cuda120py311h…")
    jaxlib_conda_channel: str | None = None
    probe_error: str | None = None  # the probe learned nothing: the interpreter failed to run it
    # hardware (#10.8): each GPU device's kind (its name) and compute capability, as jax.devices() gives them;
    # JAX names no PCI address or UUID
    gpu_devices: tuple[FrameworkGpu, ...] = ()


# --- hardware: the machine below the driver (issue #10 items 2-5) ------------------------------


@dataclass(frozen=True, kw_only=True)
class DeviceNode:
    path: str = ""  # "/dev/nvidia0"
    opened: bool | None = None  # this process could open it read-write; None = not tried
    error: str | None = None  # "EPERM: Operation not permitted" when it could not


@dataclass(frozen=True, kw_only=True)
class KernelModule:
    name: str = ""  # "nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset", "nouveau"
    loaded: bool = False
    version: str | None = None  # /sys/module/<name>/version


@dataclass(frozen=True, kw_only=True)
class PciDevice:
    address: str = ""  # "0000:01:00.0"
    device_id: str = ""  # "10de:1b80"
    pci_class: str = ""  # "0x030000"
    kind: Literal["gpu", "nvswitch", "other"] = "other"
    driver: str | None = None  # the kernel driver bound to it: "nvidia", "nouveau", "vfio-pci"; None = none


@dataclass(frozen=True, kw_only=True)
class DevicesFacts:
    """NVIDIA device nodes, kernel modules and PCI devices, read from /dev, /sys and /proc (Linux)."""

    nodes: tuple[DeviceNode, ...] = ()
    modules: tuple[KernelModule, ...] = ()
    pci_scanned: bool = False  # /sys/bus/pci/devices could be listed
    pci: tuple[PciDevice, ...] = ()  # NVIDIA (vendor 0x10de) functions only
    nvswitch_proc: tuple[str, ...] = ()  # /proc/driver/nvidia-nvswitch/devices/* entries
    proc_driver_version: str | None = None  # first line of /proc/driver/nvidia/version

    def module(self, name: str) -> KernelModule | None:
        return next((m for m in self.modules if m.name == name), None)

    def node(self, path: str) -> DeviceNode | None:
        return next((n for n in self.nodes if n.path == path), None)


@dataclass(frozen=True, kw_only=True)
class XidEvent:
    code: int = 0
    pci: str = ""  # "0000:3b:00"
    text: str = ""  # the line after "Xid (PCI:...): "


@dataclass(frozen=True, kw_only=True)
class KernelLogFacts:
    """The kernel's own NVRM/Xid lines for this boot (journalctl -k, else dmesg), read-only."""

    source: Literal["journalctl", "dmesg"] | None = None
    lines: tuple[str, ...] = ()  # NVIDIA-related lines, newest last, bounded
    xids: tuple[XidEvent, ...] = ()
    legacy_gpus: tuple[tuple[str, str], ...] = ()  # (GPU name, legacy branch "470") the driver ignores
    ignoring_driver: str | None = None  # the driver version that said it will ignore them
    open_module_unsupported: tuple[str, ...] = ()  # PCI ids the open kernel module cannot drive (no GSP)
    rm_init_failed: tuple[str, ...] = ()  # "0000:01:00.0": RmInitAdapter failed
    api_mismatch: tuple[str, str] | None = None  # (client version, kernel module version)
    module_rejected: str | None = None  # "Lockdown: ... unsigned module loading is restricted" etc.
    bar_problem: str | None = None  # "This PCI I/O region assigned to your NVIDIA device is invalid"


@dataclass(frozen=True, kw_only=True)
class FabricFacts:
    """NVSwitch systems: the switches and NVIDIA Fabric Manager (the service that sets up NVLink)."""

    nvswitch_nodes: tuple[str, ...] = ()  # /dev/nvidia-nvswitch0...
    nvswitch_pci: tuple[str, ...] = ()  # NVSwitch PCI functions (class 0x0680, vendor 0x10de)
    systemd: bool = False  # systemd is PID 1 here (/run/systemd/system)
    unit_load_state: str | None = None  # systemctl show: "loaded", "not-found"
    unit_active_state: str | None = None  # "active", "failed", "inactive", "activating"
    unit_sub_state: str | None = None  # "running", "dead", "failed"
    unit_file_state: str | None = None  # "enabled", "disabled"
    binary: str | None = None  # path of nv-fabricmanager
    version: str | None = None  # `nv-fabricmanager --version`
    log_errors: tuple[str, ...] = ()  # recent error lines of /var/log/fabricmanager.log
    error: str | None = None  # systemctl or nv-fabricmanager could not be asked

    @property
    def has_nvswitch(self) -> bool:
        return bool(self.nvswitch_nodes or self.nvswitch_pci)


@dataclass(frozen=True, kw_only=True)
class Facts:
    """Everything one `gpudoctor check` learned about one machine."""

    schema_version: int = SCHEMA_VERSION
    gpudoctor_version: str = ""
    target: TargetFacts = field(default_factory=TargetFacts)
    platform: PlatformFacts | None = None
    driver: DriverFacts | None = None
    toolkit: ToolkitFacts | None = None
    libraries: LibrariesFacts | None = None
    environment: EnvironmentFacts | None = None
    conda: CondaFacts | None = None
    python: PythonFacts | None = None
    tensorflow: TensorFlowFacts | None = None
    torch: TorchFacts | None = None
    jax: JaxFacts | None = None
    # hardware: device nodes/modules/PCI, the kernel log, NVSwitch and Fabric Manager
    devices: DevicesFacts | None = None
    kernel_log: KernelLogFacts | None = None
    fabric: FabricFacts | None = None
    probes: tuple[ProbeStatus, ...] = ()
    # pipeline: provenance of a saved facts file (shown in a --facts replay's header)
    collected_at: str = ""  # when the facts were gathered: UTC, ISO 8601 ("2026-12-01T09:30:00Z")

    def status(self, name: str) -> ProbeStatus | None:
        return next((p for p in self.probes if p.name == name), None)
