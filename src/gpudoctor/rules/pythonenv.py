"""GD8xx: the Python environment as a whole — every framework's pins, files two wheels wrote, what
the frameworks really loaded, two builds of one framework, the tools frameworks call at run time.

A framework is judged by its own metadata (`Requires-Dist`, evaluated for the target interpreter
in `gpudoctor.requirements`) and by what its child process really loaded; the matrix only fills in
where the machine cannot answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from gpudoctor.facts import PythonFacts, SharedFile
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.requirements import FrameworkPins, Pin, Resolution, framework_pins, resolve
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule

CUDA_WHEEL = re.compile(r"^(nvidia-|cuda-toolkit$|cuda-bindings$)")
NUMPY_ABI = re.compile(
    r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found", re.IGNORECASE
)
MAX_LISTED = 8


def _python(ctx: RuleContext) -> PythonFacts | None:
    python = ctx.facts.python
    return python if python is not None and not python.error else None


def _import_error(ctx: RuleContext, framework: str) -> str | None:
    """The framework's own import error, when its probe ran and the import failed."""
    if framework.startswith(("tensorflow", "tf-")):
        tf = ctx.facts.tensorflow
        return (
            (tf.import_error or "import failed")
            if tf is not None and tf.installed and not tf.imported
            else None
        )
    if framework == "torch":
        torch = ctx.facts.torch
        return (torch.import_error or "import failed") if torch is not None and not torch.imported else None
    if framework in ("jax", "jaxlib") or framework.startswith("jax-"):
        jax = ctx.facts.jax
        return (
            (jax.import_error or "import failed")
            if jax is not None and jax.installed and not jax.imported
            else None
        )
    return None


def _listed(items: list[str]) -> str:
    shown = items[:MAX_LISTED]
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _describe_pin(pin: Pin) -> str:
    if pin.state == "missing":
        return f"{pin.spec_text} (missing)"
    word = {"too-old": "older than", "too-new": "newer than", "excluded": "excluded by"}.get(pin.state, "not")
    return f"{pin.name} {pin.installed} ({word} {pin.specifier})"


def _breaks(pin: Pin) -> bool:
    """A CUDA library wheel that is missing or of another major than pinned stops the framework's GPU."""
    if not CUDA_WHEEL.match(pin.name):
        return False
    if pin.state == "missing":
        return True
    floors = [s.version.removesuffix(".*") for s in pin.specifier if s.operator in ("==", ">=", "~=", "===")]
    have = (pin.installed or "").split(".")[0]
    return bool(floors) and floors[0].split(".")[0] != have


def _framework_spec(ctx: RuleContext, name: str) -> tuple[str, tuple[str, ...]]:
    """`torch==2.14.1` and the pip options its local version needs (`+cu130` lives on PyTorch's index)."""
    dist = ctx.distribution(name)
    if dist is None:
        return name, ()
    version = dist.version
    local = version.partition("+")[2]
    if name == "torch" and local:
        return f"{name}=={version}", ("--index-url", f"https://download.pytorch.org/whl/{local}")
    return f"{name}=={version}", ()


def _own_venv_fixes(ctx: RuleContext, resolution: Resolution, pins: tuple[FrameworkPins, ...]) -> list[Fix]:
    """Give the framework that cannot share this environment its own, then restore the others' wheels here."""
    move = resolution.move
    if move is None:
        return []
    spec, options = _framework_spec(ctx, move)
    windows = ctx.flavor == "windows"
    folder = f"$HOME\\venvs\\{move}" if windows else f"$HOME/venvs/{move}"
    python = f"{folder}\\Scripts\\python.exe" if windows else f"{folder}/bin/python"
    moved_only = sorted(
        {
            p.name
            for fw in pins
            if fw.framework == move
            for p in fw.pins
            if p.installed is not None
            and CUDA_WHEEL.match(p.name)
            and not any(o.framework != move and q.name == p.name for o in pins for q in o.pins)
        }
    )
    restore = sorted(
        {
            p.spec_text
            for fw in pins
            if fw.framework != move
            for p in fw.pins
            if CUDA_WHEEL.match(p.name) and _writes_shared_files(ctx, p.name)
        }
    )
    fixes = [
        ctx.fix(
            f"Give {move} a virtual environment of its own, where its pinned wheels do not meet the others'",
            f"{ctx.python_cmd} -m venv {folder}",
            " ".join([python, "-m", "pip", "install", *options, _quote(spec)]),
        )
    ]
    commands = [ctx.pip("uninstall", "-y", move, *moved_only)]
    if restore:
        commands.append(ctx.pip_install(*restore, options=("--force-reinstall", "--no-deps")))
    fixes.append(
        ctx.fix(
            f"Then remove {move} and the wheels only it needs from this environment"
            + (", and rewrite the files they shared with the others' pinned wheels" if restore else ""),
            *commands,
        )
    )
    return fixes


def _quote(arg: str) -> str:
    return arg if re.fullmatch(r"[\w.=+-]+", arg) else f"'{arg}'"


def _writes_shared_files(ctx: RuleContext, name: str) -> bool:
    python = _python(ctx)
    if python is None:
        return False
    if any(o.distribution == name for f in python.shared_files for o in f.owners):
        return True
    stem = re.sub(r"-cu\d+$", "", name)
    return stem in ("nvidia-cudnn", "nvidia-nccl", "nvidia-cusparselt", "nvidia-nvshmem")


# ----------------------------------------------------------------------------------------------
# GD801: every framework's pins against the installed set


@rule(
    "GD801",
    "Every framework's pinned CUDA wheels and companions are installed",
    problem="A framework's pinned CUDA wheels or companions are missing or of another version",
    part="python",
    needs=("python",),
)
def pins_unmet(ctx: RuleContext) -> Iterator[Verdict]:
    python = _python(ctx)
    if python is None:
        return
    pins = framework_pins(python)
    resolution = resolve(pins, python)
    for fw in pins:
        error = _import_error(ctx, fw.framework)
        unmet = [
            p
            for p in fw.unmet
            if not (p.name == "numpy" and error and NUMPY_ABI.search(error))  # GD806 says it
        ]
        if not unmet:
            continue
        missing = [p for p in unmet if p.state == "missing"]
        wrong = [p for p in unmet if p.state != "missing"]
        severe = error is not None or any(_breaks(p) for p in unmet)
        parts = []
        if missing:
            parts.append(
                f"{len(missing)} {'is' if len(missing) == 1 else 'are'} missing ({_listed([p.spec_text for p in missing])})"
            )
        if wrong:
            parts.append(
                f"{len(wrong)} {'is' if len(wrong) == 1 else 'are'} of another version "
                f"({_listed([_describe_pin(p) for p in wrong])})"
            )
        seen = [f"{p.asked_by} requires {p.line.split(';')[0].strip()}: " + _installed_text(p) for p in unmet]
        if error:
            seen.append(f"import {fw.framework.split('-')[0]} fails: {error.strip().splitlines()[-1][:200]}")
        fixes: list[Fix] = []
        if resolution.conflicts:
            seen += [f"conflict: {c}" for c in resolution.conflicts]
            if not _shared_groups(python):  # else GD802 gives the same fix with what is on disk
                fixes += _own_venv_fixes(ctx, resolution, pins)
        own_specs = resolve(
            (FrameworkPins(framework=fw.framework, version=fw.version, pins=tuple(unmet)),)
        ).specs
        if resolution.specs and not resolution.conflicts:
            fixes.insert(
                0,
                ctx.fix(
                    "Install the wheels every framework here pins (one set satisfies all of them)",
                    ctx.pip_install(*resolution.specs),
                ),
            )
        elif own_specs and resolution.move != fw.framework:
            fixes.insert(
                0,
                ctx.fix(f"Install the wheels {fw.framework} {fw.version} pins", ctx.pip_install(*own_specs)),
            )
        head = f"{fw.framework} {fw.version}"
        library = _missing_library(error)
        wheel = next((p for p in missing if _provides(p.name, library)), None) if library else None
        if library and wheel:
            message = (
                f"{head} cannot load {library}: {wheel.spec_text}, the wheel that ships it, is not installed; "
                "of the wheels its own metadata pins, " + "; ".join(parts)
            )
        else:
            message = f"{head} lacks wheels its own metadata pins: " + "; ".join(parts)
        if resolution.conflicts and resolution.move:
            message += f". No single set of wheels satisfies every framework here: move {resolution.move} to its own virtual environment"
        yield Verdict(
            severity=Severity.ERROR if severe else Severity.WARNING,
            explains=causes.wheel_symptoms(fw.framework),
            message=message,
            why=(
                "A framework's Requires-Dist names the exact CUDA library wheels (and Triton, NumPy, its own "
                "plugins) it was built and tested with; pip installs them with it, and `pip install --no-deps`, "
                "another framework's pins or a manual upgrade leaves a set the framework was not built for. "
                "A missing CUDA wheel, or one of another major, makes the import or the GPU fail; other drift "
                "fails later, at run time."
            ),
            seen=tuple(seen),
            fixes=tuple(fixes),
        )


LIBRARY_WHEELS = {
    "cudart": "cuda-runtime",
    "nvrtc": "cuda-nvrtc",
    "cupti": "cuda-cupti",
    "cublaslt": "cublas",
    "nvjitlink": "nvjitlink",
    "cusparselt": "cusparselt",
    "nvshmem": "nvshmem",
    "nvtoolsext": "nvtx",
}
MISSING_LIBRARY = re.compile(
    r"([\w.+-]+\.so(?:\.[\w.]+)?): cannot open shared object file|Could not load dynamic library '([^']+)'"
)


def _missing_library(error: str | None) -> str | None:
    match = MISSING_LIBRARY.search(error or "")
    return (match.group(1) or match.group(2)) if match else None


def _provides(wheel: str, library: str) -> bool:
    """Whether a CUDA wheel ships this library: libcudnn.so.9 is nvidia-cudnn-cu13's, libcudart nvidia-cuda-runtime's."""
    stem = re.sub(r"^lib|(64)?[._].*$", "", library.lower())
    stem = re.sub(r"_(host|device|adv|ops|cnn|graph)$", "", stem)
    part = LIBRARY_WHEELS.get(stem, stem)
    return re.fullmatch(rf"nvidia-{re.escape(part)}(-cu\d+)?", wheel) is not None or (
        wheel.startswith("cuda-toolkit")
        and part
        in (
            "cuda-runtime",
            "cublas",
            "cufft",
            "curand",
            "cusolver",
            "cusparse",
            "cuda-nvrtc",
            "cuda-cupti",
            "nvjitlink",
        )
    )


def _installed_text(pin: Pin) -> str:
    return "not installed" if pin.installed is None else f"{pin.installed} installed"


# ----------------------------------------------------------------------------------------------
# GD802: files two distributions wrote


def _framework_builds(names: set[str]) -> bool:
    """Owners that are all builds of one framework (tensorflow + tensorflow-cpu): GD804's question."""
    return all(n.startswith(("tensorflow", "tf-nightly", "intel-tensorflow")) for n in names) or names <= {
        "torch",
        "pytorch",
    }


@rule(
    "GD802",
    "No file is written by two installed distributions",
    problem="Two installed distributions wrote the same files",
    part="python",
    needs=("python",),
)
def files_owned_twice(ctx: RuleContext) -> Iterator[Verdict]:
    python = _python(ctx)
    groups = _shared_groups(python)
    if python is None or not groups:
        return
    pins = framework_pins(python)
    resolution = resolve(pins, python)
    needed_by: dict[str, set[str]] = {}
    for fw in pins:
        for pin in fw.pins:
            needed_by.setdefault(pin.name, set()).add(fw.framework)
    parts: list[str] = []
    seen: list[str] = []
    affected: set[str] = set()
    severe = False
    keep_fixes: list[Fix] = []
    for names, files in sorted(groups.items()):
        wins = {
            n: sum(any(o.distribution == n and o.matches for o in f.owners) for f in files) for n in names
        }
        winner = max(names, key=lambda n: wins[n]) if any(wins.values()) else None
        losers = [n for n in names if n != winner]
        libraries = [f for f in files if ".so" in f.path or f.path.endswith((".dll", ".dylib"))]
        hurt = sorted({fw for n in losers for fw in needed_by.get(n, set())})
        affected.update(hurt)
        versions = {n: (d.version if (d := ctx.distribution(n)) else "?") for n in names}
        label = " and ".join(f"{n} {versions[n]}" for n in names)
        part = f"{label} write the same {len(files)} file(s)" + (
            f" ({len(libraries)} of them libraries)" if libraries else ""
        )
        if winner is not None:
            part += f"; {winner}'s copy is on disk"
            if hurt:
                part += f", so {', '.join(hurt)} get{'s' * (len(hurt) == 1)} {winner}'s libraries instead of the ones pinned"
        parts.append(part)
        seen.append(
            f"{len(files)} path(s) in the RECORD of both {label}, e.g. {(libraries or files)[0].path}"
        )
        seen.append(
            f"  on disk: {winner}'s copy (its RECORD's size/hash match)"
            if winner
            else "  on disk: neither owner's copy could be told apart"
        )
        seen += [f"  {n} is pinned by {', '.join(sorted(needed_by[n]))}" for n in names if needed_by.get(n)]
        majors = {m.group(1) for n in names if (m := re.search(r"-cu(\d+)$", n))}
        severe = severe or (bool(hurt and libraries) and (len(majors) > 1 or _import_failed(ctx, hurt)))
        if winner is not None and not resolution.move:
            keep_fixes.append(
                ctx.fix(
                    f"Keep one of them: uninstall {', '.join(losers)}, then rewrite {winner}'s files "
                    "(uninstalling deletes the shared files too)",
                    ctx.pip("uninstall", "-y", *losers),
                    ctx.pip_install(
                        f"{winner}=={versions[winner]}", options=("--force-reinstall", "--no-deps")
                    ),
                )
            )
    fixes = _own_venv_fixes(ctx, resolution, pins) if resolution.move else keep_fixes
    message = "; ".join(parts)
    if resolution.move:
        message += f". No single set of wheels serves every framework here: move {resolution.move} to its own virtual environment"
    yield Verdict(
        severity=Severity.ERROR if severe else Severity.WARNING,
        explains=causes.wheel_symptoms(*sorted(affected)),
        message="Wheels overwrote each other's files: " + message,
        why=(
            "pip installs each wheel's files without asking who else wrote them, and `pip check` looks "
            "only at version pins, so two wheels that ship one library under one path (the CUDA 12 and "
            "CUDA 13 builds of cuDNN, NCCL, cuSPARSELt, NVSHMEM) leave whichever was installed last. "
            "The other's framework then loads a library built for another CUDA, and uninstalling either "
            "wheel deletes the file for both."
        ),
        seen=tuple(seen),
        fixes=tuple(fixes),
    )


def _shared_groups(python: PythonFacts | None) -> dict[tuple[str, ...], list[SharedFile]]:
    """Files two distributions wrote with different contents, by owner set; framework builds are GD804's."""
    groups: dict[tuple[str, ...], list[SharedFile]] = {}
    for shared in python.shared_files if python is not None else ():
        hashes = {o.hash for o in shared.owners}
        if len(hashes) == 1 and None not in hashes:
            continue  # the same bytes either way; nothing lost while both stay installed
        names = tuple(sorted({o.distribution for o in shared.owners}))
        if len(names) < 2 or _framework_builds(set(names)):
            continue
        groups.setdefault(names, []).append(shared)
    return groups


def _import_failed(ctx: RuleContext, frameworks: list[str]) -> bool:
    return any(_import_error(ctx, fw) for fw in frameworks)
