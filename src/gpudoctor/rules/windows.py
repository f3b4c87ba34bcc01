"""GD51x: native Windows (TensorFlow's last GPU release there, WSL 2, the Store Python)."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import FIRST_AND_CUDA_SERIES, tf_crossing, tf_install_commands
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import files_named, python_range, python_series, tf_build
from gpudoctor.versions import series_key

WSL_GPU_PAGE = "https://learn.microsoft.com/windows/wsl/tutorials/gpu-compute"


def _cudnn_spec(cudnn: str) -> str:
    return f"{cudnn}.0" if cudnn.count(".") == 1 else cudnn


@rule(
    "GD511",
    "TensorFlow has GPU support on this platform",
    requires=("GD413", "GD809"),
    needs=("platform",),
    problem="TensorFlow has no GPU support on this platform",
    part="tensorflow",
)
def tensorflow_without_gpu_support(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor != "windows":
        return
    build = tf_build(ctx)
    last = ctx.matrix.platform.tensorflow_last_windows_gpu
    if build is None or not build.at_least(_next_minor(last)):
        return
    last_release = ctx.matrix.tensorflow_release(last)
    last_row = last_release.windows if last_release else None
    series = python_series(ctx)
    seen = [
        f"native Windows (build {ctx.facts.platform.windows_build})"
        if ctx.facts.platform and ctx.facts.platform.windows_build
        else "native Windows",
        f"{build.label} ({build.package})" + (", a CPU-only build" if build.gpu_build is False else ""),
    ]
    toolkit = ctx.facts.toolkit
    for install in toolkit.installs if toolkit else ():
        if install.version:
            seen.append(
                f"CUDA {install.version} at {install.path}: no TensorFlow release uses it on native Windows"
            )
    # the same release inside WSL where it has the [and-cuda] extra, else the first release that has it
    wsl_version = (
        build.version
        if series_key(build.version) >= series_key(FIRST_AND_CUDA_SERIES)
        else f"{FIRST_AND_CUDA_SERIES}.*"
    )
    fixes: list[Fix] = [
        ctx.fix(
            "Use WSL 2 (Windows 10 21H2 build 19044 or later): install Ubuntu, then TensorFlow inside it",
            "wsl --install -d Ubuntu",
            needs_admin=True,
            needs_reboot=True,
        ),
        Fix(  # noqa: S604 - `shell` names the shell the commands are written for; nothing runs
            summary=f"Inside the Ubuntu (WSL 2) shell: install TensorFlow {wsl_version.removesuffix('.*')} with its CUDA wheels; the "
            "Windows NVIDIA driver provides the GPU (install no Linux driver there)"
            + tf_crossing(ctx, wsl_version.removesuffix(".*")),
            commands=(f"python3 -m pip install 'tensorflow[and-cuda]=={wsl_version}'",),
            shell="bash",
        ),
    ]
    if last_release is not None and last_row is not None:
        spec = last_row.python or last_release.python
        python = python_range(spec).split("–")[-1]
        pin = f"tensorflow=={last}.*"
        cuda = f"cudatoolkit={last_row.cuda}"
        cudnn = f"cudnn={_cudnn_spec(last_row.cudnn)}"
        fits = series is not None and spec.contains(f"{series}.0", prereleases=True)
        commands: tuple[str, ...]
        if ctx.in_conda and fits:
            commands = (ctx.conda_install(cuda, cudnn), *tf_install_commands(ctx, pin))
        else:
            commands = (
                f"conda create -y -n tf{last.replace('.', '')} -c conda-forge python={python} {cuda} {cudnn}",
                f"conda activate tf{last.replace('.', '')}",
                f'python -m pip install "{pin}"',
            )
        fixes.append(
            ctx.fix(
                f"Or stay on native Windows with TensorFlow {last} (Python {python_range(spec)}), built with "
                f"CUDA {last_row.cuda} and cuDNN {last_row.cudnn}",
                *commands,
            )
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"{build.label} has no GPU support on native Windows: the last Windows GPU release was "
        f"TensorFlow {last}",
        why=(
            f"From TensorFlow {_next_minor(last)} the Windows wheels are CPU-only (tensorflow-intel); CUDA "
            "builds exist only for Linux, which includes WSL 2. A CUDA toolkit installed on Windows is never "
            "loaded by them."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _next_minor(series: str) -> str:
    major, minor = series.split(".")[:2]
    return f"{major}.{int(minor) + 1}"


@rule(
    "GD512",
    "Windows is new enough for the GPU in WSL 2",
    needs=("platform",),
    problem="Windows is too old for the GPU in WSL 2",
    part="platform",
)
def windows_too_old_for_wsl_gpu(ctx: RuleContext) -> Iterator[Verdict]:
    p = ctx.facts.platform
    minimum = ctx.matrix.platform.wsl_gpu_min_windows_build
    if p is None or p.windows_build is None or p.windows_build >= minimum:
        return
    if ctx.flavor == "wsl" and p.wsl == 2:
        severity = Severity.ERROR
        message = (
            f"Windows build {p.windows_build} is too old for the GPU in WSL 2: CUDA in WSL needs build "
            f"{minimum} (Windows 10 21H2) or later"
        )
    elif ctx.flavor == "windows":
        build = tf_build(ctx)
        last = ctx.matrix.platform.tensorflow_last_windows_gpu
        if build is None or not build.at_least(_next_minor(last)):
            return
        severity = Severity.WARNING
        message = (
            f"Windows build {p.windows_build} cannot give WSL 2 the GPU, the route {build.label} needs: update "
            f"to build {minimum} (Windows 10 21H2) or later first"
        )
    else:
        return
    yield Verdict(
        severity=severity,
        message=message,
        why=(
            "The GPU reaches WSL 2 through the /dev/dxg paravirtualisation that Windows 10 gained in 21H2 "
            f"(build {minimum}) and Windows 11 has; on older builds CUDA in WSL finds no device."
        ),
        seen=(f"Windows build {p.windows_build}", f"needed: {minimum} or later"),
        fixes=(
            Fix(  # noqa: S604 - `shell` names the shell the commands are written for; nothing runs
                summary="In Windows, install the feature updates up to Windows 10 21H2 or Windows 11, then "
                "update WSL",
                commands=("Start-Process ms-settings:windowsupdate", "wsl --update"),
                shell="powershell",
                needs_admin=True,
                needs_reboot=True,
            ),
        ),
    )


@rule(
    "GD513",
    "Python loads CUDA DLLs from PATH",
    needs=("platform", "python"),
    problem="This Python does not load CUDA DLLs from PATH",
    part="python",
)
def store_python_ignores_path(ctx: RuleContext) -> Iterator[Verdict]:
    py = ctx.facts.python
    if ctx.flavor != "windows" or py is None or py.origin != "microsoft-store":
        return
    build = tf_build(ctx)
    if build is None or build.gpu_build is False or build.found_gpus:
        return
    tf = ctx.facts.tensorflow
    dlls = [m for m in (tf.missing_libraries if tf else ()) if m.lower().endswith(".dll")]
    on_path = [m for m in dlls if any(f.location == "path" for f in files_named(ctx, m))]
    series = python_series(ctx) or "3"
    seen = [f"Python {py.version} from the Microsoft Store: {py.executable}"]
    seen += [f"{m}: on PATH, yet TensorFlow could not load it" for m in on_path]
    seen += [f"{m}: TensorFlow could not load it" for m in dlls if m not in on_path]
    severity = Severity.ERROR if on_path or (dlls and ctx.facts.libraries is None) else Severity.WARNING
    message = f"The Microsoft Store Python does not load DLLs from PATH, so {build.label} cannot load " + (
        ", ".join(on_path or dlls) if dlls else "its CUDA DLLs"
    )
    if severity is Severity.WARNING:
        message = f"{build.label} runs on the Microsoft Store Python, which does not load CUDA DLLs from PATH"
    yield Verdict(
        severity=severity,
        message=message,
        why=(
            "Store apps run in a package sandbox whose DLL search does not include the user's PATH, so the "
            "CUDA and cuDNN DLLs TensorFlow loads by name are not found even though `where` finds them. "
            "Copying DLLs into System32 only hides the problem."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                f"Install Python {series} from python.org and recreate the virtual environment with it",
                f"winget install -e --id Python.Python.{series}",
                f"py -{series} -m venv .venv",
                ".venv\\Scripts\\Activate.ps1",
                f'python -m pip install "{build.package}=={build.version}"',
            ),
        ),
    )
