"""GD3xx: environment variables that hide GPUs, point builds at the wrong CUDA, or put the working
directory on the loader's path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from gpudoctor import lazy_re
from gpudoctor.facts import CudaInstall, EnvironmentFacts, ToolkitFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import ld_library_path_without
from gpudoctor.rules.registry import rule

_LEADING_INT = lazy_re.compile(r"^[+-]?\d+")


@dataclass(frozen=True, kw_only=True)
class VisibleDevices:
    """How CUDA reads CUDA_VISIBLE_DEVICES: entries in order until the first one it cannot use."""

    visible: tuple[int, ...] = ()
    stopped_at: str | None = None  # the entry that ended the list
    reason: str = ""  # why that entry ended it
    by_uuid: bool = False  # GPU-/MIG- identifiers, which the facts cannot check


def parse_visible_devices(value: str, gpu_count: int | None) -> VisibleDevices:
    """CUDA's reading (as PyTorch's `_parse_visible_devices` mirrors it): each entry is parsed like strtoul
    ('1gpu' is 1), a negative or non-numeric entry ends the list, a repeated one hides everything, and an
    index the machine does not have ends the list too."""
    stripped = value.strip()
    if stripped.startswith(("GPU-", "MIG-")):
        entries = [e.strip() for e in stripped.split(",")]
        if len(set(entries)) != len(entries):
            return VisibleDevices(stopped_at=stripped, reason="a device is listed twice", by_uuid=True)
        return VisibleDevices(by_uuid=True)
    visible: list[int] = []
    for raw in value.split(","):
        entry = raw.strip()
        match = _LEADING_INT.match(entry)
        if match is None:
            reason = "it is empty" if not entry else "it is not a GPU index"
            return VisibleDevices(visible=tuple(visible), stopped_at=entry, reason=reason)
        index = int(match.group())
        if index < 0:
            return VisibleDevices(visible=tuple(visible), stopped_at=entry, reason="it is negative")
        if index in visible:
            return VisibleDevices(
                stopped_at=entry, reason=f"GPU {index} is listed twice, which hides every GPU"
            )
        if gpu_count is not None and index >= gpu_count:
            have = f"{gpu_count} GPU{'s' * (gpu_count != 1)}"
            reason = f"there is no GPU {index} (the driver sees {have}: index 0" + (
                f" to {gpu_count - 1})" if gpu_count > 1 else ")"
            )
            return VisibleDevices(visible=tuple(visible), stopped_at=entry, reason=reason)
        visible.append(index)
    return VisibleDevices(visible=tuple(visible))


def _env(ctx: RuleContext) -> EnvironmentFacts:
    facts = ctx.facts.environment
    assert facts is not None  # every rule here has needs=("environment",)
    return facts


def _toolkit(ctx: RuleContext) -> ToolkitFacts:
    facts = ctx.facts.toolkit
    assert facts is not None
    return facts


def _gpu_count(ctx: RuleContext) -> int | None:
    driver = ctx.facts.driver
    if driver is None or driver.nvml_state != "ok" or not driver.gpus:
        return None
    return len(driver.gpus)


def _set_variable(ctx: RuleContext, name: str, value: str) -> str:
    if ctx.shell == "powershell":
        return f'$env:{name} = "{value}"'
    return f"export {name}={value}"


def _unset_variable(ctx: RuleContext, name: str) -> str:
    return f"Remove-Item Env:{name}" if ctx.shell == "powershell" else f"unset {name}"


def _find_where_set(ctx: RuleContext, name: str) -> Fix:
    if ctx.shell == "powershell":
        return ctx.fix(
            f"Find where {name} is set permanently (user or machine environment) and remove it there",
            f'[Environment]::GetEnvironmentVariable("{name}", "User")',
            f'[Environment]::SetEnvironmentVariable("{name}", $null, "User")',
        )
    commands = [f"grep -n {name} ~/.bashrc ~/.profile ~/.bash_profile ~/.zshrc /etc/environment 2>/dev/null"]
    if ctx.in_conda:
        commands.append("conda env config vars list")
    return ctx.fix(
        f"Find where {name} is set (shell start-up files, the conda environment) and fix it there", *commands
    )


@rule(
    "GD301",
    "CUDA_VISIBLE_DEVICES does not hide the GPUs",
    needs=("environment",),
    blocks_gpu=True,
    problem="CUDA_VISIBLE_DEVICES hides the GPUs",
    part="environment",
)
def cuda_visible_devices_hides_gpus(ctx: RuleContext) -> Iterator[Verdict]:
    value = _env(ctx).variables.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return
    count = _gpu_count(ctx)
    parsed = parse_visible_devices(value, count)
    if parsed.by_uuid and parsed.stopped_at is None:
        return  # GPU UUIDs: the facts carry none to compare with
    gpus = ctx.facts.driver.gpus if ctx.facts.driver is not None and count is not None else ()
    seen = [f"CUDA_VISIBLE_DEVICES={value!r}"]
    if count is not None:
        seen.append("GPUs the driver sees: " + ", ".join(f"{g.index} {g.name}".strip() for g in gpus))
    keep = ",".join(str(i) for i in parsed.visible) or "0"
    fixes = (
        ctx.fix("Unset it to use every GPU", _unset_variable(ctx, "CUDA_VISIBLE_DEVICES")),
        ctx.fix(
            "Or set it to the GPUs you mean (indices as nvidia-smi numbers them)",
            _set_variable(ctx, "CUDA_VISIBLE_DEVICES", keep),
        ),
        _find_where_set(ctx, "CUDA_VISIBLE_DEVICES"),
    )
    if not parsed.visible:
        what = f"{parsed.stopped_at!r}" if parsed.stopped_at else "the value"
        if parsed.reason.startswith("GPU ") or parsed.reason.startswith("a device"):
            because = parsed.reason
        elif value.strip() == "":
            because = "it is empty"
        else:
            because = f"{what} is the first entry and {parsed.reason}"
        hint = ""
        if parsed.stopped_at and re.fullmatch(r"-?[a-z]*sh", parsed.stopped_at):
            hint = f" ({parsed.stopped_at!r} is a shell's name: a typed $0 expands to it)"
        yield Verdict(
            severity=Severity.ERROR,
            title="CUDA_VISIBLE_DEVICES hides every GPU",
            message=f"CUDA_VISIBLE_DEVICES={value!r} hides every GPU: {because}{hint}",
            why=(
                "CUDA reads CUDA_VISIBLE_DEVICES before anything else and stops at the first entry it cannot "
                "use, so TensorFlow, PyTorch and JAX report no GPU even though nvidia-smi lists them."
            ),
            seen=tuple(seen),
            fixes=fixes,
        )
        return
    shown = ", ".join(str(i) for i in parsed.visible)
    if parsed.stopped_at is not None:
        yield Verdict(
            severity=Severity.WARNING,
            title="CUDA_VISIBLE_DEVICES hides GPUs past an entry CUDA cannot read",
            message=f"CUDA_VISIBLE_DEVICES={value!r} shows only GPU {shown}: CUDA stops reading at "
            f"{parsed.stopped_at!r} because {parsed.reason}",
            why=(
                "Everything from the first unusable entry on is silently dropped, so fewer GPUs are used "
                "than the variable seems to ask for."
            ),
            seen=tuple(seen),
            fixes=fixes,
        )
    elif count is not None and len(set(parsed.visible)) < count:
        yield Verdict(
            severity=Severity.INFO,
            title="CUDA_VISIBLE_DEVICES shows only some of the GPUs",
            message=f"CUDA_VISIBLE_DEVICES={value!r} shows {len(parsed.visible)} of {count} GPUs "
            f"(index {shown}); the framework numbers them from 0",
            why="Choosing GPUs this way is normal on shared machines; it is reported so the choice is visible.",
            seen=tuple(seen),
            fixes=fixes[:2],
        )


@rule(
    "GD302",
    "The container's NVIDIA_VISIBLE_DEVICES passes GPUs in",
    requires=("GD503",),
    needs=("environment", "platform"),
    blocks_gpu=True,
    problem="The container's NVIDIA_VISIBLE_DEVICES passes no GPU in",
    part="environment",
)
def nvidia_visible_devices_hides_gpus(ctx: RuleContext) -> Iterator[Verdict]:
    value = _env(ctx).variables.get("NVIDIA_VISIBLE_DEVICES")
    platform = ctx.facts.platform
    if value is None or platform is None or platform.container is None:
        return
    if value.strip().lower() not in ("none", "void", ""):
        return
    driver = ctx.facts.driver
    if driver is not None and driver.nvml_state == "ok" and driver.gpus:
        return  # GPUs arrived some other way (--device); nothing is hidden
    shown = value if value.strip() else "(empty)"
    meaning = (
        "'none' gives the container the driver's libraries but no GPU"
        if value.strip().lower() == "none"
        else f"{shown!r} turns the NVIDIA container runtime off for this container"
    )
    fixes: tuple[Fix, ...]
    if platform.container == "kubernetes":
        fixes = (
            ctx.fix_on_host(
                "Request a GPU in the pod spec instead of setting the variable (resources.limits "
                "nvidia.com/gpu: 1); then check the pod sees it",
                "kubectl exec <pod> -- nvidia-smi -L",
            ),
        )
    elif platform.container == "podman":
        fixes = (
            ctx.fix_on_host(
                "Start the container with the GPUs through CDI",
                "podman run --device nvidia.com/gpu=all <image> ...",
            ),
        )
    else:
        fixes = (
            ctx.fix_on_host(
                "Start the container with the GPUs; --gpus sets NVIDIA_VISIBLE_DEVICES for you",
                "docker run --gpus all <image> ...",
            ),
            ctx.fix_on_host(
                "Or name the NVIDIA runtime and the GPUs yourself",
                "docker run --runtime=nvidia -e NVIDIA_VISIBLE_DEVICES=all <image> ...",
            ),
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"This {platform.container} container has NVIDIA_VISIBLE_DEVICES={shown}: {meaning}",
        why=(
            "The NVIDIA Container Toolkit reads NVIDIA_VISIBLE_DEVICES when the container starts and injects "
            "only the GPUs it names; with none or void no GPU is passed in, whatever the image expects."
        ),
        seen=(
            f"NVIDIA_VISIBLE_DEVICES={value!r}",
            f"container: {platform.container}",
            f"GPUs seen by the driver: {len(driver.gpus) if driver is not None else 'unknown'}",
        ),
        fixes=fixes,
    )


def _install_for(toolkit: ToolkitFacts, via: str) -> CudaInstall | None:
    return next((i for i in toolkit.installs if via in i.found_via), None)


def _minor(version: str | None) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version or "")
    return f"{match.group(1)}.{match.group(2)}" if match else None


@rule(
    "GD303",
    "CUDA_HOME and CUDA_PATH point at a CUDA toolkit",
    needs=("environment", "toolkit"),
    problem="CUDA_HOME or CUDA_PATH points at no CUDA toolkit",
    part="environment",
)
def cuda_home_missing(ctx: RuleContext) -> Iterator[Verdict]:
    toolkit = _toolkit(ctx)
    variables = _env(ctx).variables
    for name in ("CUDA_HOME", "CUDA_PATH"):
        value = variables.get(name)
        if not value or _install_for(toolkit, name) is not None:
            continue
        candidate = next((i for i in toolkit.installs if i.path == toolkit.active), None) or (
            toolkit.installs[0] if toolkit.installs else None
        )
        fixes = []
        if candidate is not None:
            fixes.append(
                ctx.fix(
                    f"Point {name} at the CUDA {candidate.version or ''} toolkit that is installed".replace(
                        "  ", " "
                    ),
                    _set_variable(ctx, name, candidate.path),
                )
            )
        fixes.append(ctx.fix("Or unset it and let tools find CUDA themselves", _unset_variable(ctx, name)))
        fixes.append(_find_where_set(ctx, name))
        found = ", ".join(f"{i.path} ({i.version or '?'})" for i in toolkit.installs) or "none"
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{name}={value} is not a CUDA toolkit: no bin/nvcc, version.json or libcudart there",
            why=(
                f"Build tools trust {name} before anything else (PyTorch's cpp_extension, CMake, Bazel "
                "configure scripts), so building CUDA code fails even though a toolkit may be installed."
            ),
            seen=(f"{name}={value}", f"CUDA toolkits found: {found}"),
            fixes=tuple(fixes),
        )


@rule(
    "GD304",
    "CUDA_HOME and the nvcc on PATH are the same CUDA version",
    requires=("GD303",),
    needs=("environment", "toolkit"),
    problem="CUDA_HOME and the nvcc on PATH are different CUDA versions",
    part="environment",
)
def cuda_home_disagrees(ctx: RuleContext) -> Iterator[Verdict]:
    toolkit = _toolkit(ctx)
    name = toolkit.cuda_home_var
    home = _install_for(toolkit, name) if name else None
    on_path = _install_for(toolkit, "PATH")
    if home is None or on_path is None or home.path == on_path.path:
        return
    home_version, path_version = _minor(home.version), _minor(on_path.version or toolkit.nvcc_version)
    if home_version is None or path_version is None or home_version == path_version:
        return
    fixes = []
    if "conda" in on_path.found_via and ctx.shell == "bash":
        fixes.append(
            ctx.fix(
                f"Make the conda environment's CUDA {path_version} the one builds use, for this environment only "
                "(re-activate it afterwards)",
                f'conda env config vars set {name}="$CONDA_PREFIX"',
            )
        )
    fixes.append(
        ctx.fix(
            f"Point {name} at the toolkit whose nvcc is on PATH (CUDA {path_version})",
            _set_variable(ctx, name or "CUDA_HOME", on_path.path),
        )
    )
    separator = ";" if ctx.shell == "powershell" else ":"
    new_path = (
        f"{home.path}\\bin{separator}$env:PATH"
        if ctx.shell == "powershell"
        else f"{home.path}/bin${{PATH:+:$PATH}}"
    )
    fixes.append(
        ctx.fix(
            f"Or put CUDA {home_version}'s nvcc first on PATH instead",
            _set_variable(ctx, "PATH", new_path),
        )
    )
    yield Verdict(
        severity=Severity.WARNING,
        message=f"{name} points at CUDA {home_version} ({home.path}) but the nvcc on PATH is CUDA {path_version} "
        f"({toolkit.nvcc_on_path or on_path.path})",
        why=(
            f"PyTorch's cpp_extension and CMake take the toolkit from {name}, while `nvcc` in the shell comes "
            "from PATH: an extension then builds against one CUDA and is checked against another "
            "('The detected CUDA version mismatches the version that was used to compile PyTorch')."
        ),
        seen=(
            f"{name}={toolkit.cuda_home} -> CUDA {home.version}",
            f"nvcc on PATH: {toolkit.nvcc_on_path} -> CUDA {on_path.version or toolkit.nvcc_version}",
        ),
        fixes=tuple(fixes),
    )


def _empty_entries(value: str) -> list[str]:
    """Where a colon-separated search path has empty entries: 'first', 'last', 'between two folders'."""
    parts = value.split(":")
    where = []
    for i, part in enumerate(parts):
        if part:
            continue
        where.append("first" if i == 0 else "last" if i == len(parts) - 1 else "between two folders")
    return where


@rule(
    "GD305",
    "LD_LIBRARY_PATH has no empty entry",
    requires=("GD209",),  # its fix takes the empty entries out with the older folders
    problem="LD_LIBRARY_PATH has an empty entry, so the loader searches the working directory",
    part="environment",
)
def ld_library_path_has_empty_entry(ctx: RuleContext) -> Iterator[Verdict]:
    if ctx.flavor not in ("linux", "wsl"):
        return
    value = ctx.variables.get("LD_LIBRARY_PATH", "")
    if not value or not value.strip(":"):
        return  # unset, or empty as a whole (the loader ignores it)
    where = _empty_entries(value)
    if not where:
        return
    conda = ctx.facts.conda
    script = conda is not None and conda.activate_sets_library_path
    yield Verdict(
        severity=Severity.WARNING,
        message=f"LD_LIBRARY_PATH={value!r} has an empty entry ({', '.join(dict.fromkeys(where))}): the loader reads "
        "it as the working directory and loads CUDA libraries from wherever Python is started",
        why=(
            "The dynamic loader treats an empty LD_LIBRARY_PATH entry as '.', ahead of the system's folders: a "
            "libcudnn.so.8 or libcuda.so.1 in the current directory (a cloned repository, a download folder) "
            "is loaded instead of the real one, which breaks the framework or runs foreign code. It usually "
            "comes from `export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/new/dir` run while LD_LIBRARY_PATH was empty, "
            "the form TensorFlow's conda instructions once used."
        ),
        seen=(f"LD_LIBRARY_PATH={value!r}",)
        + (("a conda activate.d script of this environment sets LD_LIBRARY_PATH",) if script else ()),
        fixes=(
            ctx.fix("Drop the empty entries for this shell", ld_library_path_without([])),
            ctx.fix(
                "Where it is set (shell start-up files"
                + (", $CONDA_PREFIX/etc/conda/activate.d/" if script else "")
                + "), add folders with `export LD_LIBRARY_PATH=/new/dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}`, "
                "which never leaves an empty entry",
                *_find_where_set(ctx, "LD_LIBRARY_PATH").commands,
                *(("grep -n LD_LIBRARY_PATH $CONDA_PREFIX/etc/conda/activate.d/*",) if script else ()),
            ),
        ),
    )
