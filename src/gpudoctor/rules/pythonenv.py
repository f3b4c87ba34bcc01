"""GD8xx: the Python environment as a whole — every framework's pins, files two wheels wrote, what
the frameworks really loaded, two builds of one framework, the tools frameworks call at run time.

A framework is judged by its own metadata (`Requires-Dist`, evaluated for the target interpreter
in `gpudoctor.requirements`) and by what its child process really loaded; the matrix only fills in
where the machine cannot answer.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePath

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.facts import JaxFacts, PythonFacts, SharedFile, TorchFacts
from gpudoctor.matrix import cudnn_version_from_int
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.requirements import (
    FrameworkPins,
    Pin,
    Resolution,
    environment,
    framework_pins,
    lower_bound,
    requirement_on,
    resolve,
    version_of,
)
from gpudoctor.rules import causes, recipes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import surveyed_python

CUDA_WHEEL = lazy_re.compile(r"^(nvidia-|cuda-toolkit$|cuda-bindings$)")
NUMPY_ABI = lazy_re.compile(
    r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found", re.IGNORECASE
)
MAX_LISTED = 8


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


def _framework_spec(ctx: RuleContext, name: str, extras: tuple[str, ...] = ()) -> tuple[str, tuple[str, ...]]:
    """`torch==2.14.1` (`tensorflow[and-cuda]==2.15.1` with the extras in use) and the pip options its local
    version needs (`+cu130` lives on PyTorch's index)."""
    dist = ctx.distribution(name)
    if dist is None:
        return name, ()
    head = f"{name}[{','.join(extras)}]" if extras else name
    if name == "torch":
        return recipes.torch_build_spec(dist.version, head=head)
    return f"{head}=={dist.version}", ()


def _own_venv_fixes(
    ctx: RuleContext,
    resolution: Resolution,
    pins: tuple[FrameworkPins, ...],
    spec: tuple[str, tuple[str, ...]] | None = None,
) -> list[Fix]:
    """Give the framework that cannot share this environment its own, then restore the others' wheels here.
    `spec`: what to install there and its pip options, when the caller knows better than the pins."""
    move = resolution.move
    if move is None:
        return []
    extras = tuple(sorted({p.extra for fw in pins if fw.framework == move for p in fw.pins if p.extra}))
    spec_text, options = spec or _framework_spec(ctx, move, extras)
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
            " ".join([python, "-m", "pip", "install", *options, _quote(spec_text)]),
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
    python = surveyed_python(ctx)
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
    python = surveyed_python(ctx)
    if python is None:
        return
    pins = framework_pins(python, ctx.facts.platform)
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
        severe = any(_breaks(p) for p in unmet)
        blocker = next((p for p in unmet if _blocks_import(p, error)), None)
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
        if blocker is not None and error:
            severe = True
            importing = f"import {fw.framework.split('-')[0]} fails"
            cause = (
                f"without {blocker.spec_text}, which its own metadata requires"
                if blocker.installed is None
                else f"on {blocker.name} {blocker.installed}, which its own metadata excludes ({blocker.specifier})"
            )
            message = f"{importing} {cause}: {_error_line(error, blocker.name)}" + (
                "; of the wheels it pins, " + "; ".join(parts) if len(unmet) > 1 else ""
            )
        elif library and wheel:
            severe = True
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


# Companions whose wrong version stops the import, and how the import error names them: protobuf's
# "Descriptors cannot be created directly" (protobuf 4 under code generated for 3.x) and "cannot import
# name 'builder' from 'google.protobuf.internal'" (protobuf < 3.20 under code generated for 3.20+);
# ml_dtypes' "module 'ml_dtypes' has no attribute 'float8_e4m3b11'" (0.3 removed what TF 2.13/2.14 use);
# jax's own "jax requires jaxlib to be installed" when jaxlib is missing.
IMPORT_BLOCKERS = {
    "protobuf": lazy_re.compile(r"google\.protobuf|Descriptors cannot be created directly"),
    "ml-dtypes": lazy_re.compile(r"\bml_dtypes\b"),
    "jaxlib": lazy_re.compile(r"\bjaxlib\b"),
}


def _blocks_import(pin: Pin, error: str | None) -> bool:
    """The framework's own import error names this companion, missing or of a version the pin excludes."""
    pattern = IMPORT_BLOCKERS.get(pin.name)
    return bool(pattern and error and pattern.search(error))


def _error_line(error: str, name: str) -> str:
    """The import error's line that names the companion (a traceback's `File ...` lines aside)."""
    lines = [
        line.strip() for line in error.splitlines() if line.strip() and not line.strip().startswith("File ")
    ]
    pattern = IMPORT_BLOCKERS[name]
    return next((line for line in lines if pattern.search(line)), lines[-1] if lines else error)[:200]


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
MISSING_LIBRARY = lazy_re.compile(
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
    python = surveyed_python(ctx)
    groups = _shared_groups(python)
    if python is None or not groups:
        return
    pins = framework_pins(python, ctx.facts.platform)
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
    for framework in sorted({f.framework for f in foreign_libraries(ctx)}):
        mine = [f for f in foreign_libraries(ctx) if f.framework == framework]
        _, label, _ = _framework_cuda(ctx, framework)
        seen.append(f"{label} also loaded: " + _listed([f"{f.name} ({f.origin})" for f in mine]))
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


# ----------------------------------------------------------------------------------------------
# GD803: what each framework really loaded, against its CUDA build and its own pins

# Libraries whose soname major is the CUDA major (libcudart.so.12 is CUDA 12), and cuFFT's own table.
SONAME_IS_CUDA = ("cudart", "cublas", "cublaslt", "nvrtc", "nvjitlink", "cupti")
CUFFT_SONAME_TO_CUDA = {10: 11, 11: 12, 12: 13}


@dataclass(frozen=True, kw_only=True)
class Foreign:
    """A CUDA library a framework process loaded that is not the one its build or its pins call for."""

    framework: str
    path: str
    reason: str  # "CUDA 12 library in a CUDA 13.0 build", "nvidia-cudnn-cu12 9.28 instead of pinned ..."
    origin: str  # "the nvidia-cublas-cu12 12.9.3.13 wheel", "LD_LIBRARY_PATH (/opt/cuda/lib64)", "the system"
    owner: str | None = None  # the wheel that wrote it
    via_ld_library_path: bool = False

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def _framework_cuda(ctx: RuleContext, framework: str) -> tuple[int | None, str, tuple[str, ...]]:
    """A framework's CUDA major, how it says so, and the libraries its process mapped."""
    if framework == "torch" and ctx.facts.torch is not None:
        torch = ctx.facts.torch
        paths = tuple(lib.path for lib in torch.loaded_libraries)
        return _major(torch.cuda_version), f"torch {torch.version} (CUDA {torch.cuda_version})", paths
    if framework == "tensorflow" and ctx.facts.tensorflow is not None:
        tf = ctx.facts.tensorflow
        paths = tuple(lib.path for lib in tf.loaded_libraries)
        return _major(tf.build_cuda_version), f"TensorFlow {tf.version} (CUDA {tf.build_cuda_version})", paths
    if framework == "jax" and ctx.facts.jax is not None:
        jax = ctx.facts.jax
        majors = sorted({int(m.group(1)) for name in jax.plugins if (m := re.match(r"jax-cuda(\d+)-", name))})
        major = majors[0] if len(majors) == 1 else None
        paths = tuple(lib.path for lib in jax.loaded_libraries)
        return major, f"jaxlib {jax.jaxlib_version} (CUDA {major} plugin)", paths
    return None, "", ()


def _major(version: str | None) -> int | None:
    match = re.match(r"(\d+)", version or "")
    return int(match.group(1)) if match else None


def library_cuda_major(path: str, owner: str | None) -> int | None:
    """Which CUDA a library was built for: its wheel's -cuNN, the nvidia/cuNN folder, or its soname."""
    if owner and (match := re.search(r"-cu(\d+)$", owner)):
        return int(match.group(1))
    if match := re.search(r"[\\/]nvidia[\\/]cu(\d+)[\\/]", path):
        return int(match.group(1))
    name = path.rsplit("/", 1)[-1]
    soname = re.match(r"lib([A-Za-z]+)\.so\.(\d+)", name)
    if soname is None:
        return None
    stem, major = soname.group(1).lower(), int(soname.group(2))
    if stem in SONAME_IS_CUDA:
        return major
    if stem == "cufft":
        return CUFFT_SONAME_TO_CUDA.get(major)
    return None


def _owners(python: PythonFacts | None) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for wheel in python.wheel_libraries if python is not None else ():
        found.setdefault(_tail(wheel.path), []).append(wheel.distribution)
    return found


def _tail(path: str) -> str:
    """The part of a path inside site-packages (maps and RECORD may spell the prefix differently)."""
    return re.split(r"[\\/](?:site|dist)-packages[\\/]", path)[-1]


def _shared_paths(python: PythonFacts | None) -> set[str]:
    return {_tail(f.path) for files in _shared_groups(python).values() for f in files}


def foreign_libraries(ctx: RuleContext) -> list[Foreign]:
    """Every CUDA library a framework process loaded that its CUDA build or its own pins do not call for."""
    python = surveyed_python(ctx)
    owners = _owners(python)
    shared = _shared_paths(python)
    pins = (
        {fw.framework: fw for fw in framework_pins(python, ctx.facts.platform)} if python is not None else {}
    )
    ld_dirs = _ld_library_path(ctx)
    found: list[Foreign] = []
    for framework in ("torch", "tensorflow", "jax"):
        major, label, paths = _framework_cuda(ctx, framework)
        own_pins = pins.get("jaxlib" if framework == "jax" else framework)
        plugin_pins = [fw for name, fw in pins.items() if framework == "jax" and name.startswith("jax-cuda")]
        for path in paths:
            name = path.rsplit("/", 1)[-1]
            if name.startswith(("libcuda.so", "libnvidia-ml")):
                continue  # the driver's own libraries: GD1xx judge them
            candidates = owners.get(_tail(path), [])
            owner = candidates[0] if len(candidates) == 1 else None
            if len(candidates) > 1 or _tail(path) in shared:
                continue  # written by two wheels: GD802 says which one is on disk
            origin, via_ld = _origin(ctx, path, owner, ld_dirs)
            lib_major = library_cuda_major(path, owner)
            if major is not None and lib_major is not None and lib_major != major:
                found.append(
                    Foreign(
                        framework=framework,
                        path=path,
                        reason=f"a CUDA {lib_major} library in {label}",
                        origin=origin,
                        owner=owner,
                        via_ld_library_path=via_ld,
                    )
                )
                continue
            framework_pins_here = [p for fw in (own_pins, *plugin_pins) if fw for p in fw.pins]
            pin = next(
                (
                    p
                    for p in framework_pins_here
                    if CUDA_WHEEL.match(p.name) and p.name != "cuda-toolkit" and _provides(p.name, name)
                ),
                None,
            )
            if pin is None or (owner is None and not via_ld):
                continue
            if owner == pin.name and pin.state == "ok":
                continue
            if owner is not None and owner != pin.name and not _provides(owner, name):
                continue
            reason = f"{label} pins {pin.spec_text}, and the loaded copy is " + (
                f"{owner}'s" if owner and owner != pin.name else "another version"
            )
            found.append(
                Foreign(
                    framework=framework,
                    path=path,
                    reason=reason,
                    origin=origin,
                    owner=owner,
                    via_ld_library_path=via_ld,
                )
            )
    return found


def _ld_library_path(ctx: RuleContext) -> tuple[str, ...]:
    libraries = ctx.facts.libraries
    if libraries is not None and libraries.ld_library_path:
        return libraries.ld_library_path
    return tuple(p for p in ctx.variables.get("LD_LIBRARY_PATH", "").split(":") if p)


def _origin(ctx: RuleContext, path: str, owner: str | None, ld_dirs: tuple[str, ...]) -> tuple[str, bool]:
    folder = path.rsplit("/", 1)[0]
    if owner is not None:
        dist = ctx.distribution(owner)
        return f"the {owner} {dist.version if dist else ''} wheel".replace("  ", " "), False
    if any(folder.rstrip("/") == d.rstrip("/") for d in ld_dirs):
        return f"LD_LIBRARY_PATH ({folder})", True
    conda = ctx.facts.conda
    if conda is not None and conda.prefix and path.startswith(conda.prefix.rstrip("/") + "/"):
        return f"the conda environment ({folder})", False
    if re.search(r"[\\/](site|dist)-packages[\\/]", path):
        return f"{folder}, a file no installed wheel's RECORD lists", False
    return f"the system ({folder})", False


@rule(
    "GD803",
    "Each framework loads the CUDA libraries of its own build and pins",
    problem="A framework loads CUDA libraries other than those of its own build and pins",
    part="libraries",
    requires=(*causes.WHEELS_IN_CONFLICT, *causes.SHADOWED_WHEELS),
    needs=("python",),
)
def loaded_against_expected(ctx: RuleContext) -> Iterator[Verdict]:
    python = surveyed_python(ctx)
    if python is None:
        return
    foreign = foreign_libraries(ctx)
    resolution = resolve(framework_pins(python, ctx.facts.platform), python)
    pinned = {p.name for fw in framework_pins(python, ctx.facts.platform) for p in fw.pins}
    for framework in ("torch", "tensorflow", "jax"):
        mine = [f for f in foreign if f.framework == framework]
        if not mine:
            continue
        _, label, _ = _framework_cuda(ctx, framework)
        listed = [f"{f.name} ({f.origin})" for f in mine]
        failed = _import_error(ctx, framework) or (
            ctx.facts.torch.cuda_error or ctx.facts.torch.cudnn_error
            if framework == "torch" and ctx.facts.torch
            else None
        )
        stray = sorted({f.owner for f in mine if f.owner and f.owner not in pinned})
        fixes: list[Fix] = []
        if resolution.move:
            fixes += _own_venv_fixes(ctx, resolution, framework_pins(python, ctx.facts.platform))
        elif stray:
            fixes.append(
                ctx.fix(
                    f"Remove the wheels no installed framework pins, so {framework} finds only its own",
                    ctx.pip("uninstall", "-y", *stray),
                )
            )
        ld = sorted({f.path.rsplit("/", 1)[0] for f in mine if f.via_ld_library_path})
        if ld and ctx.flavor in ("linux", "wsl"):
            fixes.append(
                ctx.fix("Take these folders out of LD_LIBRARY_PATH", recipes.ld_library_path_without(ld))
            )
        yield Verdict(
            severity=Severity.ERROR if failed else Severity.WARNING,
            message=f"{label} loaded {len(mine)} CUDA librar{'y' if len(mine) == 1 else 'ies'} its build and pins do not call for: "
            + _listed(listed),
            why=(
                "A framework is built against one CUDA major and pins the library wheels it was tested with. "
                "Its loader searches LD_LIBRARY_PATH, its own nvidia-* folders and the system, and takes the "
                "first file with a matching name: a wheel left by another framework or an older install can "
                "put a second CUDA runtime, cuBLAS or cuDNN into the process, which fails or gives wrong "
                "results in the kernels that use it."
            ),
            seen=tuple(f"{f.path}: {f.reason}; from {f.origin}" for f in mine),
            fixes=tuple(fixes),
        )


# ----------------------------------------------------------------------------------------------
# GD811: two frameworks, one process: the first import's cuDNN wins

CUDNN_WHEELS = ("nvidia-cudnn-cu11", "nvidia-cudnn-cu12", "nvidia-cudnn-cu13")
FRAMEWORK_LABELS = {"torch": "PyTorch", "tensorflow": "TensorFlow", "jax": "JAX"}
FRAMEWORK_MODULES = {"torch": "torch", "tensorflow": "tensorflow", "jax": "jax"}


@dataclass(frozen=True)
class _LoadedCopy:
    framework: str  # "torch", "tensorflow", "jax"
    name: str  # "libcudnn.so.8"
    path: str
    version: str


def _loaded_cudnn(ctx: RuleContext) -> list[_LoadedCopy]:
    """The cuDNN file each framework's child really mapped (its /proc/self/maps), with that file's version."""
    versions = {
        f.path: f.version for f in (ctx.facts.libraries.files if ctx.facts.libraries else ()) if f.version
    }
    copies: list[_LoadedCopy] = []
    for framework, facts in (
        ("torch", ctx.facts.torch),
        ("tensorflow", ctx.facts.tensorflow),
        ("jax", ctx.facts.jax),
    ):
        if facts is None or not facts.imported:
            continue
        for lib in facts.loaded_libraries:
            if lib.kind != "cudnn":
                continue
            name = PurePath(lib.path.replace("\\", "/")).name
            if not re.match(r"(lib)?cudnn(64)?[._]", name):
                continue
            version = versions.get(lib.path)
            if version is None and isinstance(facts, TorchFacts) and facts.cudnn_version:
                version = cudnn_version_from_int(facts.cudnn_version)
            if version is not None:
                copies.append(_LoadedCopy(framework, name, lib.path, version))
                break
    return copies


def _cuda_major_of_jax(j: JaxFacts) -> int | None:
    if j.jaxlib_conda_build and (m := re.match(r"cuda(1\d)\d", j.jaxlib_conda_build)):
        return int(m.group(1))
    for name in j.plugins:
        if m := re.match(r"jax-cuda(\d+)-", name):
            return int(m.group(1))
    if m := re.search(r"\+cuda(\d+)", j.jaxlib_version or ""):
        return int(m.group(1))
    return None


def _pinned_floor(ctx: RuleContext, name: str, major: int, env: dict[str, str]) -> tuple[Version, str] | None:
    """The lowest cuDNN wheel `name`'s own Requires-Dist admits, when it is of `major`."""
    dist = ctx.distribution(name)
    asked = requirement_on(dist, CUDNN_WHEELS, env) if dist is not None else None
    if dist is None or asked is None or (floor := lower_bound(asked[1])) is None or floor.major != major:
        return None
    return floor, f"{dist.name} {dist.version} requires {asked[0]}{asked[1]}"


def _cudnn_minimum(ctx: RuleContext, framework: str, major: int) -> tuple[Version, str] | None:
    """The oldest cuDNN of `major` the framework accepts at start-up, and where that comes from: its own
    report or metadata first (JAX's check, a conda build string, a Requires-Dist pin), then the matrix."""
    python = surveyed_python(ctx)
    env = environment(python, ctx.facts.platform)
    if framework == "jax" and (j := ctx.facts.jax) is not None:
        for check in j.library_checks:
            if check.name.lower() == "cudnn" and (found := version_of(check.minimum or check.built)):
                return found, "JAX's own check"
        for dist_name in (*sorted(j.plugins), "jaxlib"):
            if (pinned := _pinned_floor(ctx, dist_name, major, env)) is not None:
                return pinned
        cuda = _cuda_major_of_jax(j)
        release = ctx.matrix.jax_release(j.jax_version or "")
        minimum = release.min_cudnn.get(cuda) if release is not None and cuda is not None else None
        if minimum and (found := version_of(minimum)) is not None and found.major == major:
            return found, f"jaxlib {j.jaxlib_version} (CUDA {cuda}) is built for cuDNN {minimum}"
        return None
    if framework == "torch" and (t := ctx.facts.torch) is not None:
        if t.conda_build and (m := re.search(r"cudnn(\d+\.\d+(?:\.\d+)*)", t.conda_build)):
            found = version_of(m.group(1))
            if found is not None and found.major == major:
                return found, f"conda build {t.conda_build}"
        pinned = _pinned_floor(ctx, "torch", major, env)
        # torch accepts a runtime cuDNN of its build's major and at least its minor
        return (Version(f"{pinned[0].major}.{pinned[0].minor}"), pinned[1]) if pinned else None
    if framework == "tensorflow" and (tf := ctx.facts.tensorflow) is not None:
        found = version_of(tf.build_cudnn_version)
        if found is not None and found.major == major and "." in (tf.build_cudnn_version or ""):
            return Version(
                f"{found.major}.{found.minor}"
            ), f"TensorFlow's build info (cuDNN {tf.build_cudnn_version})"
    return None


def _jax_venv_spec(ctx: RuleContext) -> tuple[str, tuple[str, ...]]:
    """jax with the CUDA extra of its build (`jax[cuda12]==0.4.25`): a bare `jax==` from PyPI is CPU only."""
    j = ctx.facts.jax
    major = (_cuda_major_of_jax(j) if j else None) or 12
    row = ctx.matrix.jax_cuda(major)
    return recipes.jax_cuda_spec(
        ctx, f"cuda{major}", j.jax_version if j else None, row.min_jax if row else None
    ), ()


def _import_first_fix(ctx: RuleContext, first: str, then: str) -> Fix:
    start = (
        "jax.devices()"
        if first == "jax"
        else "torch.cuda.init()"
        if first == "torch"
        else "tensorflow.config.list_physical_devices('GPU')"
    )
    code = f"import {first}; print({start}); import {then}"
    return ctx.fix(
        f"In one program, import {first} (and let it start the GPU) before {then}; this checks the order works",
        f'{ctx.python_cmd} -c "{code}"',
    )


@rule(
    "GD811",
    "Frameworks sharing a process accept each other's cuDNN",
    needs=("libraries",),
    problem="Two frameworks load different copies of cuDNN, and the first import decides for both",
    part="python",
    requires=(*causes.WHEELS_IN_CONFLICT, "GD803"),
)
def first_import_wins(ctx: RuleContext) -> Iterator[Verdict]:
    copies = _loaded_cudnn(ctx)
    for strict in copies:
        have = version_of(strict.version)
        if have is None:
            continue
        minimum = _cudnn_minimum(ctx, strict.framework, have.major)
        if minimum is None:
            continue
        need, source = minimum
        if have < need:  # it rejects its own copy too: the framework's own rules report that
            continue
        rejected = [
            c
            for c in copies
            if c.framework != strict.framework
            and c.name == strict.name
            and c.path != strict.path
            and (v := version_of(c.version)) is not None
            and v < need
        ]
        if not rejected:
            continue
        other = rejected[0]
        label, other_label = FRAMEWORK_LABELS[strict.framework], FRAMEWORK_LABELS[other.framework]
        module, other_module = FRAMEWORK_MODULES[strict.framework], FRAMEWORK_MODULES[other.framework]
        # `strict` works alone, so its copy is at least what `other` needs: importing `strict` first works
        fixes = [_import_first_fix(ctx, module, other_module)]
        if (conda_fixes := _own_conda_env_fixes(ctx, strict.framework)) is not None:
            fixes += conda_fixes
        else:
            pins = framework_pins(surveyed_python(ctx), ctx.facts.platform)
            spec = _jax_venv_spec(ctx) if strict.framework == "jax" else None
            fixes += _own_venv_fixes(ctx, Resolution(move=strict.framework), pins, spec=spec)
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{other_label} and {label} in this environment load different copies of {strict.name} "
            f"({other.version} {other.path}; {strict.version} {strict.path}); in one process the first "
            f"import wins: {label} needs ≥ {need}, so import {module} first or align both on one copy",
            why="A process maps one library of a name only once: whichever framework is imported first loads "
            f"its cuDNN, and the other gets that copy. {label} checks the cuDNN it finds at start-up and "
            f"rejects {other_label}'s {other.version}: {_rejection(strict.framework, other.version, need)}. "
            "Each framework works alone, so each one's own check looks healthy.",
            seen=(
                f"{other_label} loaded {other.path} (cuDNN {other.version})",
                f"{label} loaded {strict.path} (cuDNN {strict.version})",
                f"{label} needs cuDNN ≥ {need}: {source}",
            ),
            fixes=tuple(fixes),
        )
        return


def _cudnn_int(version: str) -> str:
    parsed = version_of(version)
    if parsed is None:
        return version
    micro = parsed.micro if len(parsed.release) > 2 else 0
    return (
        str(parsed.major * 1000 + parsed.minor * 100 + micro)
        if parsed.major < 9
        else str(parsed.major * 10000 + parsed.minor * 100 + micro)
    )


def _rejection(framework: str, found: str, need: Version) -> str:
    """What the framework itself prints when it finds the older cuDNN."""
    if framework == "jax":
        return (
            f"'CUDA backend failed to initialize: Found cuDNN version {_cudnn_int(found)}, but JAX was built "
            f"against version {_cudnn_int(str(need))}, which is newer' (newer jaxlib: 'Outdated cuDNN "
            "installation found'), and JAX falls back to the CPU"
        )
    if framework == "torch":
        return "'cuDNN version incompatibility: PyTorch was compiled against ...' at the first cuDNN call"
    return f"'Loaded runtime CuDNN library: {found} but source was compiled with: {need}' at the first cuDNN call"


CONDA_NAMES = {"torch": ("pytorch", "pytorch-cuda"), "jax": ("jax", "jaxlib"), "tensorflow": ("tensorflow",)}


def _own_conda_env_fixes(ctx: RuleContext, framework: str) -> list[Fix] | None:
    """A conda environment of its own for a framework conda installed, with the same builds and channels."""
    conda = ctx.facts.conda
    if not ctx.in_conda or conda is None:
        return None
    records = [p for n in CONDA_NAMES[framework] for p in conda.packages if p.name == n]
    if not records:
        return None
    python = next((p.version for p in conda.packages if p.name == "python"), None)
    channels = [c for c in dict.fromkeys(p.channel for p in records) if c and c != "pypi"] or ["conda-forge"]
    specs = [f"{p.name}={p.version}={p.build}" if p.build else f"{p.name}={p.version}" for p in records]
    name = f"{conda.env_name or 'env'}-{framework}"
    create = ["conda", "create", "-y", "-n", name]
    for channel in channels:
        create += ["-c", channel]
    create += [*([f"python={python}"] if python else []), *specs]
    return [
        ctx.fix(
            f"Give {FRAMEWORK_LABELS[framework]} a conda environment of its own, with the builds installed here",
            " ".join(shlex.quote(a) if ctx.shell == "bash" else a for a in create),
        ),
        ctx.fix(
            "Then remove it from this environment",
            ctx.conda_remove(*(p.name for p in records)),
        ),
    ]
