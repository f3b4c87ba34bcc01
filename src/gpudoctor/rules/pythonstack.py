"""GD804–GD809, GD812, GD813: the rest of the Python stack around the GPU frameworks — two builds of
one framework, NumPy's ABI, Keras and tensorflow-estimator beside TensorFlow, and the GPU routes that
are not CUDA (PyTorch MPS, tensorflow-metal, DirectML).

Each rule reads what the environment says about itself first: which distribution's file `import
tensorflow` really loads, a plugin's own Requires-Dist, the framework's own error text.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.distributions import JAX, TENSORFLOW, TORCH
from gpudoctor.facts import Distribution, PythonFacts, TorchFacts
from gpudoctor.model import Fix, Severity, Verdict
from gpudoctor.requirements import distribution_pins, environment, framework_pins, version_of
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import (
    jax_cuda_spec,
    metal_fix,
    metal_floor,
    tf_crossing,
    torch_build_spec,
    torch_index_options,
)
from gpudoctor.rules.registry import rule
from gpudoctor.rules.views import surveyed_python
from gpudoctor.versions import local_part, public_version

NUMPY_ABI = lazy_re.compile(
    r"compiled using NumPy 1\.x cannot be run in\s+NumPy 2|_ARRAY_API not found"
    r"|numpy\.core\.(?:_?multiarray(?:_umath)?) failed to import|numpy\.dtype size changed",
    re.IGNORECASE,
)
METAL_LOAD_FAILED = lazy_re.compile(
    r"libmetal_plugin\.dylib.*?(Symbol not found|Library not loaded|image not found)[^\n]*", re.IGNORECASE
)
DIRECTML_PLATFORMS = ("windows", "wsl")
NUMPY2_JAX = "0.4.26"  # the first jax/jaxlib built against NumPy 2


# `tensorflow` wheels that are only a front for a platform build of the same version (their Requires-Dist
# pins it): Windows 2.12–2.15 → tensorflow-intel, Apple silicon 2.13–2.15 → tensorflow-macos, Linux aarch64
# → tensorflow-cpu-aws. Used only when the facts carry no Requires-Dist to read.
FRONT_FOR = {"tensorflow-intel": "Windows", "tensorflow-macos": "Darwin", "tensorflow-cpu-aws": "Linux"}


def _requires_each_other(a: Distribution, b: Distribution, env: dict[str, str]) -> bool:
    """One build pulls in the other on this platform (Windows `tensorflow` → `tensorflow-intel`)."""
    if not a.requires and not b.requires and a.version == b.version:
        names = {a.name, b.name}
        return any(
            names == {"tensorflow", platform} and env.get("platform_system") == system
            for platform, system in FRONT_FOR.items()
        )
    return any(p.name == b.name and p.state == "ok" for p in distribution_pins(a, (a, b), env)) or any(
        p.name == a.name and p.state == "ok" for p in distribution_pins(b, (a, b), env)
    )


# ----------------------------------------------------------------------------------------------
# GD804: two builds of one framework


@rule(
    "GD804",
    "Each framework is installed once, as one build",
    needs=("python",),
    problem="A framework is installed more than once, or as two builds",
    part="python",
)
def two_builds(ctx: RuleContext) -> Iterator[Verdict]:
    python = surveyed_python(ctx)
    if python is None:
        return
    env = environment(python, ctx.facts.platform)
    builds = [d for d in python.distributions if d.name in TENSORFLOW]
    gpu_pair = {d.name for d in builds} >= {"tensorflow", "tensorflow-gpu"}
    if ctx.distribution("tensorflow-directml-plugin") is not None:
        builds = [d for d in builds if d.name != "tensorflow-cpu"]  # the plugin's own requirement: GD809
    extra = [b for b in builds if not any(_requires_each_other(a, b, env) for a in builds if a is not b)]
    if len(extra) > 1 and not gpu_pair:  # tensorflow + tensorflow-gpu: GD404 says which one wins
        yield _tensorflow_builds(ctx, python, extra)
    for dist in python.distributions:
        if dist.shadowed and (dist.name in (*TORCH, *JAX, *TENSORFLOW) or dist.name.startswith("nvidia-")):
            yield _shadowed(ctx, dist)


def _tensorflow_builds(ctx: RuleContext, python: PythonFacts, builds: list[Distribution]) -> Verdict:
    module = next((m for m in python.framework_modules if m.module == "tensorflow"), None)
    winner = module.matches[0] if module is not None and len(module.matches) == 1 else None
    names = [f"{d.name} {d.version}" for d in builds]
    keep = _keep(ctx, builds, winner)
    kept = ctx.distribution(keep)
    version = kept.version if kept is not None else builds[0].version
    seen = [f"{d.name}=={d.version} installed" + (f" in {d.location}" if d.location else "") for d in builds]
    if module is not None:
        owners = ", ".join(module.owners) or "no distribution's RECORD"
        seen.append(
            f"import tensorflow loads {module.path}, listed by {owners}"
            + (f"; the file on disk is {winner}'s" if winner else "")
        )
    imported = f"; `import tensorflow` loads {winner}'s files" if winner else ""
    spec = f"{keep}=={version}"
    return Verdict(
        severity=Severity.WARNING,
        message=f"{len(builds)} builds of TensorFlow are installed into one `tensorflow` folder: "
        + ", ".join(names)
        + imported,
        why=(
            "Every TensorFlow build (tensorflow, tensorflow-cpu, tensorflow-gpu, tensorflow-intel, tf-nightly) "
            "installs the same `tensorflow` package folder: the last one installed overwrote the others' "
            "files, which build you import depends on install order, and uninstalling any of them deletes "
            "files the others need."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                f"Remove every build, then install the one to keep ({keep})",
                ctx.pip("uninstall", "-y", *(d.name for d in builds)),
                ctx.pip_install(spec),
            ),
        ),
    )


def _keep(ctx: RuleContext, builds: list[Distribution], winner: str | None) -> str:
    """The build to keep: the GPU-capable one for this platform, else the one imported."""
    names = {d.name for d in builds}
    if ctx.flavor in ("linux", "wsl") and "tensorflow" in names:
        return "tensorflow"
    if ctx.flavor == "macos" and "tensorflow" in names:
        return "tensorflow"
    return winner or ("tensorflow" if "tensorflow" in names else builds[0].name)


def _shadowed(ctx: RuleContext, dist: Distribution) -> Verdict:
    others = [f"{c.version} in {c.location}" for c in dist.shadowed]
    return Verdict(
        severity=Severity.WARNING,
        message=f"{dist.name} is installed {len(dist.shadowed) + 1} times on sys.path: {dist.version} in "
        f"{dist.location} is the one imported, and it hides " + "; ".join(others),
        why=(
            "Python imports the first copy on sys.path (the user site ~/.local comes before the system "
            "site-packages); `pip list` and `pip install -U` may act on another copy than the one that runs, "
            "so an upgrade or a CUDA build installed into one place never takes effect."
        ),
        seen=(
            f"{dist.name}=={dist.version} at {dist.location}",
            *(f"{dist.name}=={c.version} at {c.location}" for c in dist.shadowed),
        ),
        fixes=(
            ctx.fix(
                f"Remove the copy Python imports ({dist.version}), so the next one is used, or the others to "
                "keep this one",
                ctx.pip("uninstall", "-y", dist.name),
            ),
        ),
    )


# ----------------------------------------------------------------------------------------------
# GD806: NumPy's C ABI


def _numpy_text(ctx: RuleContext, framework: str) -> tuple[str | None, bool]:
    """The framework's own words about NumPy's ABI, and whether its import failed."""
    if framework == "torch" and ctx.facts.torch is not None:
        torch = ctx.facts.torch
        text = "\n".join([torch.import_error or "", *torch.warnings])
        return (text if NUMPY_ABI.search(text) else None), not torch.imported
    if framework == "jax" and ctx.facts.jax is not None and ctx.facts.jax.installed:
        jax = ctx.facts.jax
        text = "\n".join([jax.import_error or "", jax.backend_error or "", *jax.warnings])
        return (text if NUMPY_ABI.search(text) else None), not jax.imported
    return None, False


NUMPY2_TORCH = "2.3"  # the first torch built against NumPy 2


def _numpy2_upgrade(ctx: RuleContext, framework: str) -> tuple[str, str] | None:
    """(summary, command) for the nearest framework release built against NumPy 2, keeping the installed
    build's variant and its index; None when the installed release is already past the first such release
    and no known fix release exists (going back to NumPy 1 is then the way out, never a downgrade)."""
    if framework == "torch":
        torch = ctx.facts.torch
        built = (torch.version or "") if torch else ""
        release, local = public_version(built), local_part(built)
        known = ctx.matrix.known_issue("torch", release, ctx.flavor, "numpy1_build")
        if known is not None:
            summary = f"Or move to PyTorch {known.fixed_in}: {release}'s {ctx.flavor} wheels were built against NumPy 1"
            spec, index = torch_build_spec(known.fixed_in, local)
            return summary, ctx.pip_install(spec, options=index)
        installed = version_of(release)
        if installed is not None and installed >= Version(NUMPY2_TORCH):
            return None
        return (
            f"Or upgrade torch to the first release built against NumPy 2 (PyTorch {NUMPY2_TORCH})",
            ctx.pip_install(f"torch=={NUMPY2_TORCH}.*", options=torch_index_options(NUMPY2_TORCH, local)),
        )
    jax = ctx.distribution("jax")
    installed = version_of(jax.version) if jax else None
    if installed is not None and installed >= Version(NUMPY2_JAX):
        return None
    summary = f"Or upgrade jax to the first release built against NumPy 2 (jax {NUMPY2_JAX})"
    plugin = next(
        (name for name in ("jax-cuda13-plugin", "jax-cuda12-plugin") if ctx.distribution(name)), None
    )
    if plugin is None:
        return summary, ctx.pip_install(f"jax=={NUMPY2_JAX}")
    return summary, ctx.pip_install(
        jax_cuda_spec(ctx, plugin.split("-")[1], jax.version if jax else None, NUMPY2_JAX)
    )


@rule(
    "GD806",
    "PyTorch and JAX were built for the installed NumPy",
    needs=("python",),
    problem="PyTorch or JAX was built for another NumPy than the one installed",
    part="python",
)
def numpy_abi(ctx: RuleContext) -> Iterator[Verdict]:
    python = surveyed_python(ctx)
    numpy = ctx.distribution("numpy")
    if python is None or numpy is None:
        return
    numpy_version = version_of(numpy.version)
    for framework in ("torch", "jax"):  # TensorFlow's NumPy import error is GD401's
        text, failed = _numpy_text(ctx, framework)
        if text is None:
            continue
        dist = ctx.distribution("jaxlib" if framework == "jax" else framework)
        label = f"{dist.name} {dist.version}" if dist else framework
        line = next(ln.strip() for ln in text.splitlines() if NUMPY_ABI.search(ln))
        numpy_pins = [
            p for fw in framework_pins(python, ctx.facts.platform) for p in fw.pins if p.name == "numpy"
        ]
        below_2 = numpy_version is not None and numpy_version.major >= 2
        specs = ["numpy<2", *(str(p.specifier) for p in numpy_pins if str(p.specifier))]
        spec = "numpy" + ",".join(s.removeprefix("numpy") for s in specs)
        fixes: list[Fix] = []
        if below_2:
            fixes.append(
                ctx.fix(f"Go back to a NumPy 1.x that {label} was built against", ctx.pip_install(spec))
            )
        upgrade = _numpy2_upgrade(ctx, framework)
        if upgrade is not None:
            fixes.append(ctx.fix(*upgrade))
        yield Verdict(
            severity=Severity.ERROR if failed else Severity.WARNING,
            message=f"{label} was compiled against NumPy 1.x and numpy {numpy.version} is installed: {line}",
            why=(
                "NumPy 2 changed its C ABI: an extension compiled against NumPy 1.x cannot use NumPy 2's arrays. "
                "PyTorch still imports but every tensor↔array conversion fails; JAX fails on import."
            ),
            seen=(f"numpy=={numpy.version}", f"{framework} says: {line}"),
            fixes=tuple(fixes),
        )


# ----------------------------------------------------------------------------------------------
# GD807: PyTorch on Apple silicon


def _torch_release(torch: TorchFacts) -> str:
    """The installed torch release without its local build tag ("2.5.1+cpu" -> "2.5.1")."""
    return public_version(torch.dist_version or torch.version or "")


@rule(
    "GD807",
    "PyTorch can use the Apple GPU (MPS) on Apple silicon",
    needs=("platform", "torch"),
    problem="PyTorch cannot use the Apple GPU (MPS) on Apple silicon",
    part="torch",
)
def mps(ctx: RuleContext) -> Iterator[Verdict]:
    torch = ctx.facts.torch
    platform = ctx.facts.platform
    if ctx.flavor != "macos" or torch is None or platform is None or not torch.imported:
        return
    if platform.machine not in ("arm64", "aarch64"):
        return  # Intel Macs: MPS needs an AMD GPU and macOS 12.3; no finding either way
    python = surveyed_python(ctx)
    python_machine = python.marker_environment.get("platform_machine") if python else None
    seen = [f"macOS {platform.version or platform.release} on {platform.machine}"]
    if python_machine:
        seen.append(f"Python's own platform_machine: {python_machine}")
    seen.append(f"torch {torch.version}: mps built={torch.mps_built}, mps available={torch.mps_available}")
    if torch.mps_available:
        return
    if python_machine == "x86_64":
        yield Verdict(
            severity=Severity.ERROR,
            message=f"This Python is an x86_64 build running under Rosetta on Apple silicon: torch {torch.version} "
            "is the Intel wheel, which has no MPS",
            why=(
                "Rosetta 2 runs Intel binaries on Apple silicon but gives them no Metal GPU for PyTorch: the "
                "x86_64 torch wheel is built without MPS. An arm64 Python installs the arm64 wheel, which has it."
            ),
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Use an arm64 Python (Homebrew in /opt/homebrew, python.org's universal2 installer, or "
                    "an arm64 conda), then reinstall torch in a fresh environment",
                    "/opt/homebrew/bin/python3 -m venv $HOME/venvs/torch-arm64",
                    f"$HOME/venvs/torch-arm64/bin/python -m pip install torch=={_torch_release(torch)}",
                ),
            ),
        )
        return
    if torch.mps_built is None and not torch.mps_error:
        return  # a torch too old to have torch.backends.mps (before 1.12): GD501 names the Metal route
    floor = ctx.matrix.torch_mps_floor(_torch_release(torch))
    macos = platform.version or ""
    have, need = version_of(macos), version_of(floor.macos) if floor else None
    if torch.mps_built is not False and have is not None and need is not None and have < need and floor:
        seen.append(f"torch {floor.torch} and newer: MPS needs macOS {floor.macos} (gpudoctor's matrix)")
        last = ctx.matrix.torch_last_for_macos(macos)
        fixes = [
            ctx.fix(
                f"Update macOS to {floor.macos} or newer (System Settings > General > Software Update)",
                "softwareupdate --list",
            )
        ]
        if last is not None:
            fixes.append(
                ctx.fix(
                    f"Or keep macOS {macos} and install PyTorch {last}, the last release whose MPS runs on it",
                    ctx.pip_install(f"torch=={last}.*"),
                )
            )
        yield Verdict(
            severity=Severity.ERROR,
            message=f"PyTorch {torch.version} cannot use the Apple GPU on macOS {macos}: its MPS backend needs "
            f"macOS {floor.macos} or newer",
            why=(
                "The MPS backend's macOS floor rose with PyTorch releases ("
                + ", ".join(f"macOS {r.macos} from torch {r.torch}" for r in ctx.matrix.torch_mps_macos)
                + "); below it torch.backends.mps.is_available() is False, and some releases' error text still "
                "says 'supported on MacOS 12.3+' (pytorch/pytorch#139425)."
            ),
            seen=tuple(seen),
            fixes=tuple(fixes),
        )
        return
    if torch.mps_built is False:
        reason = f"torch {torch.version} was built without MPS"
    elif torch.mps_error:
        reason = f"torch.backends.mps failed: {torch.mps_error}"
    else:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"PyTorch cannot use the Apple GPU: torch.backends.mps.is_available() is False on macOS {macos}, "
            f"which meets torch {_torch_release(torch)}'s floor"
            + (f" (macOS {floor.macos})" if floor else ""),
            why=(
                "The standard macOS arm64 wheel is built with MPS and this macOS is new enough, so the Metal "
                "device itself is refused: a sandbox or virtual machine without Metal, or a macOS release "
                "this torch does not know."
            ),
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Ask torch for the MPS device directly and read its error",
                    f"{ctx.python_cmd} -c \"import torch; print(torch.zeros(1, device='mps'))\"",
                ),
            ),
        )
        return
    yield Verdict(
        severity=Severity.ERROR,
        message=f"PyTorch cannot use the Apple GPU: {reason}",
        why=(
            "On Apple silicon PyTorch reaches the GPU through Metal Performance Shaders (the 'mps' device), "
            "built into the standard macOS arm64 wheels from PyTorch 1.12 on and usable from macOS 12.3."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                "Install the standard macOS arm64 torch wheel from PyPI (it includes MPS); update macOS if it "
                "is older than 12.3",
                ctx.pip_install(
                    f"torch=={_torch_release(torch)}",
                    options=("--force-reinstall",),
                ),
            ),
        ),
    )


# ----------------------------------------------------------------------------------------------
# GD808: tensorflow-metal against the TensorFlow it supports


@rule(
    "GD808",
    "The tensorflow-metal plug-in matches the installed TensorFlow",
    needs=("python",),
    problem="The tensorflow-metal plug-in does not match the installed TensorFlow",
    part="tensorflow",
)
def tensorflow_metal(ctx: RuleContext) -> Iterator[Verdict]:
    metal = ctx.distribution("tensorflow-metal")
    if metal is None or ctx.flavor not in ("macos", "unknown"):
        return
    tf_dist = next(
        (ctx.distribution(n) for n in ("tensorflow", "tensorflow-macos") if ctx.distribution(n)), None
    )
    tf = ctx.facts.tensorflow
    text = "\n".join([(tf.import_error or "") if tf else "", *(tf.log_lines if tf else ())])
    failed = METAL_LOAD_FAILED.search(text)
    if tf_dist is None:
        yield Verdict(
            severity=Severity.ERROR,
            message=f"tensorflow-metal {metal.version} is installed without TensorFlow",
            why="tensorflow-metal is a PluggableDevice plug-in: it adds the Apple GPU to an installed TensorFlow.",
            seen=(f"tensorflow-metal=={metal.version}", "tensorflow / tensorflow-macos: not installed"),
            fixes=(_tensorflow_for_metal(ctx, metal.version),),
        )
        return
    if not failed:
        return
    yield Verdict(
        severity=Severity.ERROR,
        message=f"tensorflow-metal {metal.version} does not load into {tf_dist.name} {tf_dist.version}: "
        f"{failed.group(0).strip()[:200]}",
        why=(
            "Each tensorflow-metal release is built against one TensorFlow release's C API; with another "
            "TensorFlow its libmetal_plugin.dylib fails to load, and TensorFlow then runs on the CPU (or fails "
            "to import)."
        ),
        seen=(
            f"{tf_dist.name}=={tf_dist.version}",
            f"tensorflow-metal=={metal.version}",
            failed.group(0).strip()[:300],
        ),
        fixes=(_metal_for_tensorflow(ctx, tf_dist.version), _tensorflow_for_metal(ctx, metal.version)),
    )


def _metal_for_tensorflow(ctx: RuleContext, tf_version: str) -> Fix:
    """The tensorflow-metal release made for this TensorFlow, in place of the installed one (Apple's table:
    https://developer.apple.com/metal/tensorflow-plugin/, as the matrix holds it)."""
    pinned = metal_fix(ctx, tf_version)
    return dataclasses.replace(
        pinned,
        summary="Replace the plug-in: " + pinned.summary[0].lower() + pinned.summary[1:],
        commands=(ctx.pip("uninstall", "-y", "tensorflow-metal"), *pinned.commands),
    )


def _tensorflow_for_metal(ctx: RuleContext, metal_version: str) -> Fix:
    """Or the TensorFlow series this tensorflow-metal release was made for."""
    made = next((p for p in ctx.matrix.tensorflow_metal if p.version == metal_version), None)
    if made is None:
        return dataclasses.replace(
            metal_fix(ctx, None), summary="Or install TensorFlow with its Metal plug-in"
        )
    series = metal_floor(made)
    return ctx.fix(
        f"Or install TensorFlow {series}, the release tensorflow-metal {metal_version} was made for"
        + tf_crossing(ctx, series),
        ctx.pip_install(f"tensorflow=={series}.*"),
    )


# ----------------------------------------------------------------------------------------------
# GD809: tensorflow-directml-plugin against the TensorFlow it needs


@rule(
    "GD809",
    "The DirectML plug-in has the TensorFlow it was built for",
    needs=("python",),
    problem="The DirectML plug-in lacks the TensorFlow it was built for",
    part="tensorflow",
)
def tensorflow_directml(ctx: RuleContext) -> Iterator[Verdict]:
    python = surveyed_python(ctx)
    plugin = ctx.distribution("tensorflow-directml-plugin")
    if python is None or plugin is None:
        return
    env = environment(python, ctx.facts.platform)
    pins = [p for p in distribution_pins(plugin, python.distributions, env) if p.name in TENSORFLOW]
    installed = [d for d in python.distributions if d.name in TENSORFLOW]
    label = f"tensorflow-directml-plugin {plugin.version}"
    seen = [f"{label} requires " + (", ".join(p.spec_text for p in pins) or "no TensorFlow build")]
    seen += [f"{d.name}=={d.version} installed" for d in installed]
    unmet = [p for p in pins if p.state != "ok"]
    others = [d.name for d in installed if d.name not in {p.name for p in pins}]
    if unmet or others:
        wanted = ", ".join(p.spec_text for p in pins)
        have = ", ".join(f"{d.name} {d.version}" for d in installed) or "no TensorFlow"
        commands = []
        if others or any(p.state != "missing" for p in unmet):
            commands.append(
                ctx.pip("uninstall", "-y", *sorted({*others, *(p.name for p in unmet if p.installed)}))
            )
        commands.append(ctx.pip_install(*(p.spec_text for p in pins)))
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{label} needs {wanted}, and this environment has {have}",
            why=(
                "The DirectML plug-in is built against one TensorFlow release's C API and declares it in its "
                "Requires-Dist (tensorflow-cpu 2.10 for the 0.4 releases). With another TensorFlow, or with a "
                "second TensorFlow build overwriting tensorflow-cpu's files, the plug-in does not load and "
                "TensorFlow runs on the CPU."
            ),
            seen=tuple(seen),
            fixes=(ctx.fix("Keep only the TensorFlow the plug-in pins", *commands),),
        )
        return
    if ctx.flavor not in DIRECTML_PLATFORMS:
        yield Verdict(
            severity=Severity.WARNING,
            message=f"{label} is installed on {ctx.flavor}: DirectML reaches the GPU only on Windows and in WSL 2",
            why="DirectML is part of DirectX 12; outside Windows it exists only in WSL 2, through /usr/lib/wsl/lib.",
            seen=tuple(seen),
            fixes=(),
        )
        return
    tf = ctx.facts.tensorflow
    if tf is not None and tf.installed and tf.imported and not tf.gpus:
        return  # it imported and still lists no GPU: the framework rules say why
    yield Verdict(
        severity=Severity.INFO,
        message=f"TensorFlow reaches the GPU through DirectML: {label} with "
        + ", ".join(f"{d.name} {d.version}" for d in installed),
        why=(
            "TensorFlow 2.10 was the last release with CUDA on native Windows; from then on Microsoft's "
            "tensorflow-directml-plugin on tensorflow-cpu is the GPU route there (and in WSL 2). A CPU "
            "package is the right package for it."
        ),
        seen=tuple(seen),
        fixes=(
            ctx.fix(
                "Check that TensorFlow lists the DirectML device",
                f"{ctx.python_cmd} -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\"",
            ),
        ),
        settles_dependents=True,
    )


# ----------------------------------------------------------------------------------------------
# GD812: the Keras TensorFlow's tf.keras loads

KERAS_SPLIT = Version("2.6")  # from TensorFlow 2.6, tf.keras is the separate `keras` distribution
KERAS_3 = Version("2.16")  # from TensorFlow 2.16, tf.keras is Keras 3; Keras 2 is `tf-keras`


def _tensorflow_release(ctx: RuleContext) -> tuple[Distribution, Version] | None:
    """The installed TensorFlow distribution (any build) and its version, when it has a readable one."""
    tf = next((d for d in (ctx.distribution(n) for n in TENSORFLOW) if d is not None and d.version), None)
    version = version_of(tf.version) if tf else None
    return (tf, version) if tf is not None and version is not None else None


@rule(
    "GD812",
    "Keras is the release the installed TensorFlow's tf.keras needs",
    needs=("python",),
    problem="The installed Keras is not the one this TensorFlow's tf.keras needs",
    part="python",
)
def keras_for_tensorflow(ctx: RuleContext) -> Iterator[Verdict]:
    found = _tensorflow_release(ctx)
    if found is None or found[1].release[:2] < KERAS_SPLIT.release:
        return
    tf, tf_version = found
    series = f"{tf_version.major}.{tf_version.minor}"
    keras, tf_keras = ctx.distribution("keras"), ctx.distribution("tf-keras")
    keras_version = version_of(keras.version) if keras else None
    legacy = ctx.variables.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")
    seen = [f"{tf.name}=={tf.version}"]
    why = (
        "tf.keras is not part of TensorFlow's wheel: from TensorFlow 2.6 to 2.15 it is the `keras` 2.x "
        "release of the same minor (TensorFlow 2.6.0 allowed `keras~=2.6`, so pip took keras 2.7, which "
        "breaks it: tensorflow/tensorflow#52937); from 2.16 it is Keras 3, and Keras 2 comes from the "
        "`tf-keras` release of TensorFlow's minor, used when TF_USE_LEGACY_KERAS=1."
    )
    if tf_version < KERAS_3:
        if keras_version is None or keras_version.release[:2] == tf_version.release[:2]:
            return
        seen.append(f"keras=={keras.version if keras else '?'}")
        breaks = (
            "Keras 3 is not TensorFlow 2.15's tf.keras: `tf.keras` and code written for it fail"
            if keras_version.major >= 3
            else "`import tensorflow.keras` fails (for example `AlreadyExistsError: Another metric with the "
            "same name already exists`)"
        )
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{tf.name} {tf.version} needs keras {series}.x for tf.keras, but keras {keras.version if keras else '?'} "
            f"is installed: {breaks}",
            why=why,
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    f"Install the keras release of TensorFlow {series}",
                    ctx.pip_install(f"keras=={series}.*"),
                ),
            ),
        )
        return
    if keras_version is not None and keras_version.major < 3:
        seen.append(f"keras=={keras.version if keras else '?'}")
        yield Verdict(
            severity=Severity.ERROR,
            message=f"{tf.name} {tf.version} uses Keras 3 as tf.keras, but keras {keras.version if keras else '?'} is "
            "installed: `import tensorflow` fails to set up tf.keras",
            why=why,
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    "Install Keras 3 (TensorFlow's tf.keras from 2.16 on); for Keras 2 code, also install "
                    f"tf-keras {series} and set TF_USE_LEGACY_KERAS=1",
                    ctx.pip_install("keras==3.*"),
                ),
            ),
        )
        return
    tf_keras_version = version_of(tf_keras.version) if tf_keras else None
    if (
        tf_keras is not None
        and tf_keras_version is not None
        and tf_keras_version.release[:2] != tf_version.release[:2]
    ):
        seen.append(f"tf-keras=={tf_keras.version}")
        yield Verdict(
            severity=Severity.ERROR if legacy else Severity.WARNING,
            message=f"tf-keras {tf_keras.version} (Keras 2) is not the release of {tf.name} {tf.version}: "
            "`import tf_keras` fails"
            + (", and with TF_USE_LEGACY_KERAS=1 so does tf.keras" if legacy else ""),
            why=why,
            seen=tuple(seen),
            fixes=(
                ctx.fix(
                    f"Install the tf-keras release of TensorFlow {series}",
                    ctx.pip_install(f"tf-keras=={series}.*"),
                ),
            ),
        )
    elif tf_keras is None and legacy:
        seen.append("TF_USE_LEGACY_KERAS=" + ctx.variables.get("TF_USE_LEGACY_KERAS", ""))
        yield Verdict(
            severity=Severity.ERROR,
            message=f"TF_USE_LEGACY_KERAS is set, but tf-keras is not installed: {tf.name} {tf.version}'s tf.keras "
            "has no Keras 2 to load",
            why=why,
            seen=(*seen, "tf-keras: not installed"),
            fixes=(
                ctx.fix(
                    f"Install the tf-keras release of TensorFlow {series} (Keras 2)",
                    ctx.pip_install(f"tf-keras=={series}.*"),
                ),
                ctx.fix("Or use Keras 3 and unset TF_USE_LEGACY_KERAS", "unset TF_USE_LEGACY_KERAS"),
            ),
        )


# ----------------------------------------------------------------------------------------------
# GD813: the tensorflow-estimator TensorFlow's tf.estimator loads

ESTIMATOR_SPLIT = Version("1.13")  # from TensorFlow 1.13, tf.estimator is tensorflow-estimator
ESTIMATOR_GONE = Version("2.16")  # TensorFlow 2.16 removed tf.estimator


@rule(
    "GD813",
    "The installed tensorflow-estimator is the release of the installed TensorFlow",
    needs=("python",),
    problem="The installed tensorflow-estimator is not the release this TensorFlow's tf.estimator needs",
    part="python",
)
def estimator_for_tensorflow(ctx: RuleContext) -> Iterator[Verdict]:
    found = _tensorflow_release(ctx)
    estimator = ctx.distribution("tensorflow-estimator")
    estimator_version = version_of(estimator.version) if estimator else None
    if found is None or estimator is None or estimator_version is None:
        return
    tf, tf_version = found
    if not ESTIMATOR_SPLIT.release <= tf_version.release[:2] < ESTIMATOR_GONE.release:
        return  # before 1.13 it was inside TensorFlow; from 2.16 there is no tf.estimator to break
    if estimator_version.release[:2] == tf_version.release[:2]:
        return
    series = f"{tf_version.major}.{tf_version.minor}"
    yield Verdict(
        severity=Severity.WARNING,
        message=f"{tf.name} {tf.version} needs tensorflow-estimator {series}.x for tf.estimator, but "
        f"tensorflow-estimator {estimator.version} is installed: `tf.estimator`, and packages built on it "
        "(tensorflowjs, tensorflow-hub's estimator helpers), fail to load",
        why=(
            "tf.estimator is not part of TensorFlow's wheel: from TensorFlow 1.13 to 2.15 it is the "
            "`tensorflow-estimator` release of TensorFlow's own minor, loaded the first time tf.estimator is "
            "used. TensorFlow 2.6.0 declared `tensorflow-estimator~=2.6`, which pip also meets with 2.7 "
            "(tensorflow/tensorflow#52883); later releases pin the minor, but another package can still "
            "upgrade it, and pip only warns."
        ),
        seen=(f"{tf.name}=={tf.version}", f"tensorflow-estimator=={estimator.version}"),
        fixes=(
            ctx.fix(
                f"Install the tensorflow-estimator release of TensorFlow {series}",
                ctx.pip_install(f"tensorflow-estimator=={series}.*"),
            ),
        ),
    )
