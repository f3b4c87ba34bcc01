"""GD53x: WSL 2, where the GPU comes from the Windows driver through /dev/dxg and /usr/lib/wsl/lib."""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor.facts import PlatformFacts
from gpudoctor.model import Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import host_fix, prepend_path, wsl_container_toolkit_fixes
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import framework_cuda_errors
from gpudoctor.versions import major_of

WSL_LIB = "/usr/lib/wsl/lib"
# NVIDIA's CUDA on WSL guide: the WSL 2 kernel must be 5.10.43.3 or newer.
MIN_WSL_KERNEL = (5, 10, 43, 3)


def _platform(ctx: RuleContext) -> PlatformFacts:
    p = ctx.facts.platform
    assert p is not None  # needs=("platform",)
    return p


def wsl_kernel(release: str) -> tuple[int, ...] | None:
    """ "5.15.153.1-microsoft-standard-WSL2" -> (5, 15, 153, 1)."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)(?:\.(\d+))?", release)
    return tuple(int(g) for g in match.groups() if g is not None) if match else None


@rule(
    "GD531",
    "The loader finds the Windows driver's libcuda.so.1 in /usr/lib/wsl/lib",
    requires=("GD504", "GD505", "GD506"),
    needs=("platform",),
    blocks_gpu=True,
    problem="The loader does not find the Windows driver's libcuda.so.1 in /usr/lib/wsl/lib",
    part="platform",
)
def wsl_loader(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2 or "libcuda.so.1" not in p.wsl_libs:
        return
    resolved = p.loader_libcuda
    if resolved is not None and resolved.startswith(WSL_LIB + "/"):
        return
    if resolved is None and p.wsl_ld_conf is not False:
        return  # ldconfig could not be asked and nothing says the folder is missing from its list
    seen = [f"{WSL_LIB}: libcuda.so.1 present"]
    seen.append(f"ldconfig resolves libcuda.so.1 to: {resolved or 'nothing'}")
    if p.wsl_ld_conf is False:
        seen.append(f"no file in /etc/ld.so.conf.d lists {WSL_LIB}")
    if resolved is None:
        fixes = (
            ctx.fix(
                f"Put {WSL_LIB} back on the loader's list (WSL writes /etc/ld.so.conf.d/ld.wsl.conf unless "
                "/etc/wsl.conf turns it off) and rebuild its cache",
                f"echo {WSL_LIB} | sudo tee /etc/ld.so.conf.d/ld.wsl.conf",
                "sudo ldconfig",
                "grep -n ldconfig /etc/wsl.conf",
                needs_admin=True,
            ),
        )
        message = (
            f"The loader does not look in {WSL_LIB}: programs cannot load the Windows driver's libcuda.so.1"
        )
    else:
        fixes = (
            ctx.fix(
                f"Find out which package put {resolved} there and remove it (in WSL only the Windows driver's "
                "libcuda may be used), then rebuild the loader cache",
                f"ls -l {resolved}",
                f"dpkg -S {resolved}",
                "sudo ldconfig",
                needs_admin=True,
            ),
        )
        message = (
            f"The loader picks {resolved} instead of the Windows driver's {WSL_LIB}/libcuda.so.1: CUDA in WSL "
            "cannot reach the GPU through it"
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=message,
        why=(
            "In WSL 2, libcuda.so.1 must be the Windows driver's, mounted in /usr/lib/wsl/lib; it talks to the "
            "GPU through /dev/dxg. Any other libcuda (a Linux driver's, a CUDA forward-compatibility copy) "
            "finds no GPU."
        ),
        seen=tuple(seen),
        fixes=fixes,
    )


@rule(
    "GD533",
    "The WSL 2 kernel is new enough for CUDA",
    requires=causes.PLATFORM,
    needs=("platform",),
    blocks_gpu=True,
    problem="The WSL 2 kernel is too old for CUDA",
    part="platform",
)
def wsl_kernel_version(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2:
        return
    version = wsl_kernel(p.release)
    if version is None or version >= MIN_WSL_KERNEL:
        return
    needed = ".".join(str(n) for n in MIN_WSL_KERNEL)
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The WSL 2 kernel {p.release} is older than {needed}, the first that gives CUDA the GPU",
        why="CUDA on WSL needs the GPU paravirtualisation of WSL kernels 5.10.43.3 and later; older kernels have no CUDA device.",
        seen=(f"WSL 2 kernel: {p.release}", f"needed: {needed} or later"),
        fixes=(
            host_fix(
                "In Windows PowerShell, update WSL (it brings its own kernel), then restart it",
                "wsl --update",
                "wsl --shutdown",
                needs_admin=True,
                where="host",
            ),
        ),
    )


# What each of the Windows driver's WSL files is for, as the container toolkit's list names them.
WSL_CORE_FILES = (
    (("libdxcore.so",), "the DirectX core library through which CUDA and NVML reach /dev/dxg"),
    (("libcuda.so.1", "libcuda.so.1.1"), "the CUDA driver"),
    (("libnvidia-ml.so.1",), "NVML, which nvidia-smi and the frameworks' device queries use"),
)
DXGDMAL = "libnvdxgdmal.so.1"
DXGDMAL_SINCE = 555  # the first Windows driver branch whose CUDA needs libnvdxgdmal.so.1 (toolkit issue #520)


def _framework_saw_gpu(ctx: RuleContext) -> bool:
    torch, tf, jax = ctx.facts.torch, ctx.facts.tensorflow, ctx.facts.jax
    return bool(
        (torch is not None and torch.cuda_available)
        or (tf is not None and tf.gpus)
        or (jax is not None and any(d.startswith(("cuda", "gpu")) for d in jax.devices))
    )


@rule(
    "GD534",
    "A container on WSL 2 has /dev/dxg and the Windows driver's libraries CUDA needs",
    requires=("GD504",),
    needs=("platform",),
    blocks_gpu=True,
    problem="A container on WSL 2 lacks /dev/dxg or the Windows driver's libraries CUDA needs",
    part="platform",
)
def wsl_container_libraries(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2 or not p.container or p.wsl_driver_files is None or _framework_saw_gpu(ctx):
        return
    d = ctx.facts.driver
    nvml_ok = d is not None and d.nvml_state == "ok"
    why = (
        "In WSL 2 the GPU reaches Linux only through /dev/dxg and the Windows driver's own libraries; a "
        "container has neither unless the NVIDIA Container Toolkit (or Docker Desktop) mounts them, and each "
        "toolkit release mounts the list of files the Windows drivers of its day needed."
    )
    if "/dev/dxg" not in p.device_nodes:
        if nvml_ok:
            return
        yield Verdict(
            severity=Severity.ERROR,
            message=f"This {p.container} container on WSL 2 was started without the GPU: /dev/dxg is absent",
            why=why,
            seen=(f"container: {p.container}, WSL 2 kernel {p.release}", "/dev/dxg: absent"),
            fixes=(
                ctx.fix_on_host(
                    "Start the container with the GPU (Docker Desktop's WSL 2 backend, or the NVIDIA Container "
                    "Toolkit in the WSL distribution, then passes /dev/dxg and the driver's libraries)",
                    "docker run --gpus all <image> ...",
                ),
            ),
        )
        return
    found = {path.rsplit("/", 1)[-1]: path for path in p.wsl_driver_files}
    cuda_errors = framework_cuda_errors(ctx)
    missing = []
    if not nvml_ok or cuda_errors:  # a file this probe did not find may still be somewhere it did not look
        missing += [
            (names[0], purpose) for names, purpose in WSL_CORE_FILES if not any(n in found for n in names)
        ]
    driver = d.driver_version if d is not None else None
    branch = major_of(driver)
    said_500 = [(f, t) for f, t, e in cuda_errors if e.code == 500]
    if DXGDMAL not in found and ((branch is not None and branch >= DXGDMAL_SINCE) or said_500):
        missing.append((DXGDMAL, f"which CUDA needs with Windows drivers {DXGDMAL_SINCE} and later"))
    if not missing:
        return
    names = ", ".join(name for name, _ in missing)
    seen = [
        f"container: {p.container} on WSL 2, /dev/dxg present",
        *_by_folder(p.wsl_driver_files),
        *(f"missing: {name} ({purpose})" for name, purpose in missing),
    ]
    if driver:
        seen.append(f"Windows driver {driver}")
    seen += [f"{f}: {t.strip().splitlines()[0][:200]}" for f, t in said_500[:2]]
    yield Verdict(
        severity=Severity.ERROR,
        message=f"This container on WSL 2 lacks {names} from the Windows NVIDIA driver: its container toolkit "
        f"did not mount {'it' if len(missing) == 1 else 'them'}, so CUDA cannot start"
        + (" (CUDA says error 500, named symbol not found)" if said_500 else ""),
        why=why
        + " Windows drivers 555 and later added libnvdxgdmal.so.1, which NVIDIA Container Toolkit 1.14.4/1.15 and "
        "Docker Desktop 4.31 were the first to mount; older ones leave CUDA failing with error 500.",
        seen=tuple(seen),
        fixes=wsl_container_toolkit_fixes(ctx),
    )


def _by_folder(paths: tuple[str, ...]) -> tuple[str, ...]:
    """ "folder: name name" lines for the Windows driver files found; one line saying none when none."""
    folders: dict[str, list[str]] = {}
    for path in paths:
        folder, _, name = path.rpartition("/")
        folders.setdefault(folder, []).append(name)
    if not folders:
        return ("Windows driver files found: none",)
    return tuple(f"found in {folder}: {' '.join(names)}" for folder, names in folders.items())


CUDNN8_WHEELS = ("nvidia-cudnn-cu11", "nvidia-cudnn-cu12")


def _cudnn8_in_use(ctx: RuleContext) -> str | None:
    """What shows that cuDNN 8 is what a framework here loads: a line of evidence, or None."""
    torch, tf = ctx.facts.torch, ctx.facts.tensorflow
    if torch is not None and torch.cudnn_version and 8000 <= torch.cudnn_version < 9000:
        return f"PyTorch {torch.version or ''} uses cuDNN {torch.cudnn_version}".replace("  ", " ")
    if tf is not None and (tf.build_cudnn_version or "").split(".")[0] == "8":
        return f"TensorFlow {tf.version or ''} was built for cuDNN {tf.build_cudnn_version}".replace(
            "  ", " "
        )
    for name in CUDNN8_WHEELS:
        dist = ctx.distribution(name)
        if dist is not None and dist.version.startswith("8."):
            return f"{name} {dist.version} installed"
    libs = ctx.facts.libraries
    for f in libs.files if libs else ():
        if f.kind == "cudnn" and f.loader_default and (f.version or "").split(".")[0] == "8":
            return f"cuDNN {f.version} at {f.path}"
    return None


@rule(
    "GD535",
    "On WSL 2, cuDNN 8 can load the Windows driver's libcuda.so by its unversioned name",
    requires=("GD504", "GD505", "GD506", *causes.WSL),
    needs=("platform",),
    problem="On WSL 2, cuDNN 8 cannot load libcuda.so: convolutions will fail",
    part="platform",
)
def wsl_unversioned_libcuda(ctx: RuleContext) -> Iterator[Verdict]:
    p = _platform(ctx)
    if p.wsl != 2 or p.loader_libcuda is None or p.loader_libcuda_unversioned is not None:
        return  # ldconfig was not asked, or its cache resolves libcuda.so
    if not p.loader_libcuda.startswith(WSL_LIB + "/") or "libcuda.so" not in p.wsl_libs:
        return  # GD531 judges a libcuda.so.1 from elsewhere
    path = ctx.variables.get("LD_LIBRARY_PATH", "")
    if WSL_LIB in (folder.rstrip("/") for folder in path.split(":")):
        return  # dlopen looks in the folder itself and finds it
    d = ctx.facts.driver
    if not _framework_saw_gpu(ctx) and (d is None or d.nvml_state != "ok"):
        return  # no GPU reaches this machine yet: what stops that is the finding
    evidence = _cudnn8_in_use(ctx)
    if evidence is None:
        return
    yield Verdict(
        severity=Severity.WARNING,
        message="cuDNN 8 will fail at the first convolution on this WSL 2 machine: it loads libcuda.so by its "
        "unversioned name, and the loader cannot find that name",
        why=(
            "cuDNN 8's sub-libraries (libcudnn_cnn_infer.so.8 and others) dlopen `libcuda.so`. WSL puts "
            f"{WSL_LIB} on the loader's list, but the ldconfig cache holds only libcuda.so.1 from there, so "
            "`import` and `torch.cuda.is_available()` work and the first convolution aborts with "
            '"Could not load library libcudnn_cnn_infer.so.8. Error: libcuda.so: cannot open shared object file".'
        ),
        seen=(
            f"ldconfig resolves libcuda.so.1 to {p.loader_libcuda}, libcuda.so to nothing",
            f"{WSL_LIB}: libcuda.so present",
            f"LD_LIBRARY_PATH: {path or 'not set'}",
            evidence,
        ),
        fixes=(
            ctx.fix(
                f"Put {WSL_LIB} first on LD_LIBRARY_PATH, here and in every new shell (dlopen then finds "
                "libcuda.so in the folder itself)",
                prepend_path("LD_LIBRARY_PATH", WSL_LIB),
                f"echo '{prepend_path('LD_LIBRARY_PATH', WSL_LIB)}' >> ~/.bashrc",
            ),
        ),
    )
