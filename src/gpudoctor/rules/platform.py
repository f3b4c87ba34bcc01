"""GD50x: platforms where the usual CUDA route does not apply (macOS, containers, WSL)."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor import lazy_re
from gpudoctor.facts import PlatformFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import host_fix, metal_fix, wsl_host_driver_fix
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import distro_family

GPU_NODE = lazy_re.compile(r"^/dev/nvidia\d+$")


def _platform(ctx: RuleContext) -> PlatformFacts:
    p = ctx.facts.platform
    assert p is not None  # every rule here has needs=("platform",)
    return p


def _driver_works(ctx: RuleContext) -> bool:
    d = ctx.facts.driver
    return d is not None and d.nvml_state == "ok"


@rule(
    "GD501",
    "On macOS the GPU is used through Metal",
    needs=("platform",),
    blocks_gpu=True,
    problem="There is no CUDA on macOS: the GPU is used through Metal",
    part="platform",
)
def macos_has_no_cuda(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor != "macos":
        return
    tf = ctx.distribution("tensorflow") or ctx.distribution("tensorflow-macos")
    tf_facts = ctx.facts.tensorflow
    tf_version = tf.version if tf else (tf_facts.version if tf_facts and tf_facts.installed else None)
    metal = ctx.distribution("tensorflow-metal")
    why = (
        "Apple stopped shipping NVIDIA GPUs and CUDA for macOS ended with CUDA 10.2; on a Mac the GPU is "
        "reached through Apple's Metal: TensorFlow via the tensorflow-metal plug-in, PyTorch via the 'mps' "
        "device."
    )
    if tf_version is not None and metal is None:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"TensorFlow {tf_version} on macOS uses the GPU only through tensorflow-metal, "
            "which is not installed",
            why=why,
            seen=(f"tensorflow {tf_version}", "tensorflow-metal: not installed"),
            fixes=(metal_fix(ctx, tf_version),),
        )
        return
    routes = []
    if tf_version is not None and metal is not None:
        routes.append(f"TensorFlow {tf_version} with tensorflow-metal {metal.version}")
    if ctx.distribution("torch") is not None:
        routes.append("PyTorch through torch.device('mps')")
    if ctx.distribution("jax") is not None:
        routes.append("JAX on the CPU (jax-metal is experimental)")
    yield Verdict(
        severity=Severity.INFO,
        message="macOS has no CUDA; the GPU is reached through Metal"
        + (": " + "; ".join(routes) if routes else ""),
        why=why,
        seen=(f"macOS {ctx.facts.platform.version if ctx.facts.platform else ''}".strip(),),
        fixes=(
            ctx.fix(
                "Check that PyTorch sees the Apple GPU",
                f'{ctx.python_cmd} -c "import torch; print(torch.backends.mps.is_available())"',
            )
            if ctx.distribution("torch") is not None
            else metal_fix(ctx, tf_version),
        ),
    )


@rule(
    "GD502",
    "The container has the CUDA device node /dev/nvidia-uvm",
    needs=("platform",),
    blocks_gpu=True,
    problem="The container lacks the CUDA device node /dev/nvidia-uvm",
    part="platform",
)
def container_without_uvm(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if ctx.flavor != "linux" or not p.container:
        return
    gpu_nodes = [n for n in p.device_nodes if GPU_NODE.match(n)]
    if not gpu_nodes or "/dev/nvidia-uvm" in p.device_nodes:
        return
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The {p.container} container has {', '.join(gpu_nodes)} but no /dev/nvidia-uvm: "
        "nvidia-smi works, CUDA does not",
        why=(
            "nvidia-smi needs only /dev/nvidiactl and /dev/nvidiaN, but every CUDA program also opens "
            "/dev/nvidia-uvm (unified memory); without it torch.cuda.is_available() is False."
        ),
        seen=("device nodes: " + " ".join(p.device_nodes),),
        fixes=(
            ctx.fix_on_host(
                "On the host, load nvidia-uvm and create its device node, then start the container with "
                "--gpus all",
                "sudo nvidia-modprobe -u -c=0",
                "docker run --gpus all <image> ...",
                needs_admin=True,
            ),
            ctx.fix_on_host(
                "Or pass the nodes in yourself",
                "docker run --device /dev/nvidia-uvm:/dev/nvidia-uvm --device /dev/nvidia-uvm-tools:"
                "/dev/nvidia-uvm-tools <other options> <image> ...",
            ),
        ),
    )


@rule(
    "GD503",
    "The container was started with GPU access",
    needs=("platform",),
    blocks_gpu=True,
    problem="The container was started without GPU access",
    part="platform",
)
def container_without_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if ctx.flavor != "linux" or not p.container or _driver_works(ctx):
        return
    if any(GPU_NODE.match(n) for n in p.device_nodes) or p.nvidia_pci_devices == ():
        return  # the GPU is there (other rules judge it), or the host has no NVIDIA GPU at all (GD106)
    d = ctx.facts.driver
    seen = ["device nodes: none (/dev/nvidia* absent)", f"container: {p.container}"]
    if d is not None:
        seen.append(f"NVML: {d.nvml_state}; nvidia-smi: {d.nvidia_smi or 'not found'}")
    if p.nvidia_pci_devices:
        seen.append("host GPUs on the PCI bus: " + ", ".join(p.nvidia_pci_devices))
    if p.container == "kubernetes":
        fix = ctx.fix_on_host(
            "Request a GPU in the pod spec (the NVIDIA device plugin must run on the node): "
            "resources.limits nvidia.com/gpu: 1",
            "kubectl describe node <node> | grep nvidia.com/gpu",
        )
    elif p.container == "podman":
        fix = ctx.fix_on_host(
            "Generate the CDI spec on the host (NVIDIA Container Toolkit), then start the container with the GPUs",
            "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
            "podman run --device nvidia.com/gpu=all <image> ...",
            needs_admin=True,
        )
    else:
        fix = ctx.fix_on_host(
            "Restart the container with GPU access; the host needs the NVIDIA Container Toolkit configured "
            "for Docker",
            "docker run --gpus all <image> ...",
            "sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker",
            needs_admin=True,
        )
    fixes = [fix]
    why = (
        "A container sees the GPU only when the NVIDIA Container Toolkit passes in the device nodes "
        "and the host driver's libraries; installing a driver inside the container does not help."
    )
    toolkit = _container_toolkit(ctx)
    if toolkit is not None and p.container != "kubernetes":
        path, nvcc_version = toolkit
        seen.append(f"CUDA toolkit: {path}" + (f" (nvcc {nvcc_version})" if nvcc_version else ""))
        why += (
            " With a CUDA toolkit here this may be an image build: build steps get no GPU unless the "
            "builder is set up for it (`docker build` has no --gpus), so a build that asks "
            "torch.cuda.is_available() or probes the GPU for its architectures finds none, although "
            "compiling CUDA code needs no GPU."
        )
        fixes += _build_without_gpu_fixes(ctx, p.container, nvcc_version)
    yield Verdict(
        severity=Severity.ERROR,
        message=f"This {p.container} container was started without GPU access: no /dev/nvidia* devices "
        "and no NVIDIA driver libraries inside",
        why=why,
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _container_toolkit(ctx: RuleContext) -> tuple[str, str | None] | None:
    """The CUDA toolkit in the container (its folder and nvcc version), when nvcc or CUDA_HOME is there."""
    tk = ctx.facts.toolkit
    env = ctx.variables
    home = (tk.cuda_home if tk else None) or env.get("CUDA_HOME") or env.get("CUDA_PATH")
    if tk is None or not (tk.nvcc_on_path or home or any(i.nvcc for i in tk.installs)):
        return (home, None) if home else None
    path = tk.active or home or tk.nvcc_on_path or tk.installs[0].path
    version = tk.nvcc_version or next((i.nvcc_version or i.version for i in tk.installs if i.nvcc), None)
    return path, version


# (oldest nvcc, the architectures it compiles), newest nvcc first; the lists skip GPUs older than Volta/Turing.
_ARCHS_BY_NVCC: tuple[tuple[tuple[int, int], str], ...] = (
    ((12, 8), "7.5;8.0;8.6;8.9;9.0;10.0;12.0"),
    ((11, 8), "7.5;8.0;8.6;8.9;9.0"),
    ((11, 1), "7.5;8.0;8.6"),
    ((11, 0), "7.0;7.5;8.0"),
    ((10, 0), "6.0;7.0;7.5"),
)
_DEFAULT_ARCHS = "7.5;8.0;8.6;8.9;9.0"


def build_arch_list(nvcc_version: str | None) -> str:
    """A TORCH_CUDA_ARCH_LIST of current data-centre and desktop GPUs that this nvcc can compile for."""
    match = re.match(r"^(\d+)\.(\d+)", nvcc_version or "")
    if match is None:
        return _DEFAULT_ARCHS
    key = (int(match.group(1)), int(match.group(2)))
    return next((archs for floor, archs in _ARCHS_BY_NVCC if key >= floor), _DEFAULT_ARCHS)


def _build_without_gpu_fixes(ctx: RuleContext, container: str, nvcc_version: str | None) -> list[Fix]:
    archs = build_arch_list(nvcc_version)
    fixes = [
        ctx.fix_on_host(
            f"If this runs in a `{'podman' if container == 'podman' else 'docker'} build` step: building CUDA "
            "extensions needs no GPU, only the target architectures named in advance. Add these two "
            "Dockerfile lines before the step that compiles them (trim the list to your GPUs)",
            f'ENV TORCH_CUDA_ARCH_LIST="{archs}"',
            "ENV FORCE_CUDA=1",
        )
    ]
    if container == "docker":
        fixes.append(
            ctx.fix_on_host(
                "Or give build steps the GPU: on the host make the NVIDIA runtime Docker's default "
                '("default-runtime": "nvidia" in /etc/docker/daemon.json), restart dockerd and build with the '
                "classic builder (BuildKit ignores the default runtime)",
                "sudo nvidia-ctk runtime configure --runtime=docker --set-as-default",
                "sudo systemctl restart docker",
                "DOCKER_BUILDKIT=0 docker build .",
                needs_admin=True,
            )
        )
    return fixes


@rule(
    "GD504",
    "WSL 2 is used (WSL 1 has no GPU support)",
    needs=("platform",),
    blocks_gpu=True,
    problem="WSL 1 has no GPU support",
    part="platform",
)
def wsl1_has_no_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 1:
        return
    distro = p.wsl_distro or "<distro>"
    yield Verdict(
        severity=Severity.ERROR,
        message=f"This Linux distribution{f' ({p.wsl_distro})' if p.wsl_distro else ''} runs under WSL 1, "
        "which has no GPU support",
        why="CUDA in WSL needs the WSL 2 virtual machine and its /dev/dxg GPU bridge; WSL 1 cannot reach the GPU.",
        seen=(f"kernel {p.release}: WSL 1",),
        fixes=(
            host_fix(
                "In Windows PowerShell, convert the distribution to WSL 2 (and make WSL 2 the default)",
                "wsl -l -v",
                f"wsl --set-version {distro} 2",
                "wsl --set-default-version 2",
                needs_admin=False,
                where="host",
            ),
        ),
    )


@rule(
    "GD505",
    "The Windows driver's CUDA libraries are visible in WSL 2",
    requires=("GD512", "GD534"),
    needs=("platform",),
    blocks_gpu=True,
    problem="The Windows driver's CUDA libraries are not visible in WSL 2",
    part="platform",
)
def wsl_without_host_libs(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2 or "libcuda.so.1" in p.wsl_libs or _driver_works(ctx):
        return
    listed = " ".join(p.wsl_libs) if p.wsl_libs else "nothing"
    yield Verdict(
        severity=Severity.ERROR,
        message=f"WSL 2 has no libcuda.so.1 from the Windows NVIDIA driver ({p.wsl_lib_dir or '/usr/lib/wsl/lib'} "
        f"holds {listed})",
        why=(
            "Inside WSL 2, libcuda and libnvidia-ml come from the Windows NVIDIA driver, mounted under "
            "/usr/lib/wsl/lib; without a WSL-capable Windows driver (and Windows 10 21H2 or later) there is "
            "no CUDA in Linux."
        ),
        seen=(
            f"/usr/lib/wsl/lib: {listed}",
            "/dev/dxg: " + ("present" if "/dev/dxg" in p.device_nodes else "absent"),
        ),
        fixes=(
            wsl_host_driver_fix(),
            host_fix("Update WSL itself", "wsl --update", needs_admin=True, where="host"),
        ),
    )


@rule(
    "GD506",
    "No Linux NVIDIA driver is installed inside WSL",
    needs=("platform",),
    blocks_gpu=True,
    problem="A Linux NVIDIA driver is installed inside WSL",
    part="platform",
)
def linux_driver_in_wsl(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    d = ctx.facts.driver
    if p.wsl not in (1, 2):
        return
    libraries = d.userspace_libraries if d is not None else ()
    foreign = [lib for lib in libraries if not lib.startswith("/usr/lib/wsl/")]
    # Module sources or DKMS builds come only from Linux driver packages; WSL 2 shows them too, but
    # there its shadowing libraries are the harm, so only they count.
    packages = [*p.nvidia_module_sources, *p.dkms_nvidia_built] if p.wsl == 1 else []
    if not foreign and not packages:
        return
    if distro_family(p) in ("ubuntu", "debian"):
        commands: tuple[str, ...] = (
            "sudo apt purge 'nvidia-*' 'libnvidia-*'",
            "sudo ldconfig",
        )
    else:
        commands = ("sudo ldconfig",)
    evidence = ", ".join(foreign) if foreign else "driver " + ", ".join(sorted(set(packages)))
    seen = [*(f"library: {lib}" for lib in libraries)]
    if packages:
        seen.append("Linux driver module sources / DKMS builds: nvidia " + ", ".join(sorted(set(packages))))
    fix = ctx.fix(
        "Inside WSL, remove the Linux driver packages (keep the CUDA toolkit: install it as cuda-toolkit-XX-Y, "
        "never the 'cuda' or 'cuda-drivers' meta-packages)",
        *commands,
        needs_admin=True,
    )
    if p.wsl == 1:
        yield Verdict(
            severity=Severity.WARNING,
            message="A Linux NVIDIA driver is installed inside this WSL 1 distribution "
            f"({evidence}): once it runs under WSL 2, it will shadow the Windows driver's libraries",
            why=(
                "WSL 1 cannot reach the GPU at all (GD504), but converting it to WSL 2 is not enough: in WSL 2 "
                "libcuda and libnvidia-ml must come from /usr/lib/wsl/lib (the Windows driver), and a Linux "
                "driver's copies found first fail with 'driver not loaded'."
            ),
            seen=(f"kernel {p.release}: WSL 1", *seen),
            fixes=(fix,),
        )
        return
    state = d.nvml_state if d is not None else "?"
    yield Verdict(
        severity=Severity.WARNING if state == "ok" else Severity.ERROR,
        message="A Linux NVIDIA driver is installed inside WSL and shadows the Windows driver's libraries: "
        + ", ".join(foreign),
        why=(
            "In WSL 2 libcuda and libnvidia-ml must come from /usr/lib/wsl/lib (the Windows driver); a Linux "
            "driver's copies cannot reach the GPU and typically fail with 'driver not loaded'."
        ),
        seen=(f"NVML: {state}", *seen),
        fixes=(fix,),
    )
