"""Fix recipes that several rule families write: installing the NVIDIA driver (a table, one recipe per
distribution family), installing TensorFlow builds, editing search paths.

A recipe returns `Fix`es (or one command line) for *this* machine; it never judges.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from packaging.version import Version

from gpudoctor import lazy_re
from gpudoctor.matrix import PluginRelease
from gpudoctor.model import Fix, Where
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.views import TF_PACKAGES, TfBuild, distro_family, tf_distribution
from gpudoctor.versions import local_part, parse_version, public_version, release_of, series_key

DRIVERS_PAGE = "https://www.nvidia.com/en-us/drivers/"
# The driver series each Debian release packages as `nvidia-driver` (packages.debian.org).
DEBIAN_DRIVER_BRANCH = {"11": "470", "12": "535", "13": "550"}
FIRST_AND_CUDA_SERIES = "2.14"  # TensorFlow's first release with the `[and-cuda]` extra


def host_fix(
    summary: str, *commands: str, needs_admin: bool = True, needs_reboot: bool = False, where: Where = ""
) -> Fix:
    """A fix run on the Windows side, in PowerShell (`where="host"` when gpudoctor ran inside WSL 2)."""
    return Fix(  # noqa: S604 - `shell` names the shell the commands are written for; nothing runs
        summary=summary,
        commands=commands,
        shell="powershell",
        needs_admin=needs_admin,
        needs_reboot=needs_reboot,
        where=where,
    )


def wsl_host_driver_fix() -> Fix:
    return host_fix(
        "In Windows, install the current NVIDIA driver for your GPU (it brings libcuda into WSL 2 under "
        "/usr/lib/wsl/lib); never install a Linux NVIDIA driver inside WSL. Then restart WSL",
        f"Start-Process {DRIVERS_PAGE}",
        "wsl --shutdown",
        where="host",
    )


def wsl_container_toolkit_fixes(ctx: RuleContext) -> tuple[Fix, ...]:
    """A container on WSL 2 that lacks the Windows driver's libraries: its container toolkit predates them."""
    return (
        ctx.fix_on_host(
            "In the WSL distribution that runs Docker (not in this container), upgrade the NVIDIA Container "
            "Toolkit (1.15 or later mounts every library the 555+ Windows drivers need), re-register it with "
            "Docker and restart Docker (on Fedora-based distributions: sudo dnf upgrade nvidia-container-toolkit)",
            "sudo apt-get update",
            "sudo apt-get install --only-upgrade nvidia-container-toolkit",
            "sudo nvidia-ctk runtime configure --runtime=docker",
            "sudo service docker restart",
            needs_admin=True,
        ),
        ctx.fix_on_host(
            "If the container gets the GPU through CDI (podman, or docker with --device nvidia.com/gpu=all), "
            "regenerate the CDI spec after the upgrade",
            "sudo nvidia-ctk cdi generate --output=/etc/cdi/nvidia.yaml",
            needs_admin=True,
        ),
        host_fix(
            "With Docker Desktop, update it (4.31 and later mount the libraries of the 555+ drivers), then "
            "start the container again",
            "winget upgrade --id Docker.DockerDesktop",
            needs_admin=False,
            where="host" if ctx.in_container else "",
        ),
    )


# ----------------------------------------------------------------------------------------------
# The kernel driver and its libraries (hardware): legacy branches, module signing, nvidia_uvm, a broken
# driver library

LEGACY_DRIVERS_PAGE = "https://www.nvidia.com/en-us/drivers/unix/legacy-gpu/"


def legacy_driver_fix(ctx: RuleContext, branch: str) -> Fix:
    """Install the NVIDIA legacy driver branch `branch` ("470") the way this distribution packages it."""
    family = distro_family(ctx.facts.platform)
    if family == "ubuntu":
        return ctx.fix(
            f"Install the {branch} legacy driver branch (apt replaces the current driver); then reboot",
            "ubuntu-drivers list",
            f"sudo apt install nvidia-driver-{branch}",
            needs_admin=True,
            needs_reboot=True,
        )
    if family == "debian":
        package = {"470": "nvidia-tesla-470-driver", "390": "nvidia-legacy-390xx-driver"}.get(
            branch, f"nvidia-legacy-{branch}xx-driver"
        )
        return ctx.fix(
            f"Install Debian's {branch} legacy driver (contrib/non-free enabled), then reboot",
            "sudo apt update",
            f"sudo apt install {package}",
            needs_admin=True,
            needs_reboot=True,
        )
    if family == "fedora":
        return ctx.fix(
            f"Replace the driver with RPM Fusion's {branch}xx legacy packages, then reboot",
            "sudo dnf remove 'akmod-nvidia' 'xorg-x11-drv-nvidia*'",
            f"sudo dnf install akmod-nvidia-{branch}xx xorg-x11-drv-nvidia-{branch}xx-cuda",
            needs_admin=True,
            needs_reboot=True,
        )
    if family == "arch":
        return ctx.fix(
            f"Install the {branch}xx legacy driver from the AUR (the official repositories carry only the "
            "current branch), then reboot",
            f"yay -S nvidia-{branch}xx-dkms nvidia-{branch}xx-utils",
            needs_reboot=True,
        )
    return ctx.fix(
        f"Install the NVIDIA {branch}.xx legacy driver for your distribution (or from {LEGACY_DRIVERS_PAGE}), then reboot",
        needs_admin=True,
        needs_reboot=True,
    )


def secure_boot_enrol_fix(ctx: RuleContext) -> Fix:
    """Enrol the key this distribution signs the NVIDIA module with (akmods on Fedora, DKMS elsewhere)."""
    family = distro_family(ctx.facts.platform)
    if family == "fedora":
        return ctx.fix(
            "Enrol akmods' signing key in the firmware (set a one-time password; confirm it in the blue MOK "
            "screen at the next boot), then rebuild",
            "sudo kmodgenca -a",
            "sudo mokutil --import /etc/pki/akmods/certs/public_key.der",
            "sudo akmods --force",
            needs_admin=True,
            needs_reboot=True,
        )
    key = "/var/lib/shim-signed/mok/MOK.der" if family == "ubuntu" else "/var/lib/dkms/mok.pub"
    return ctx.fix(
        "Enrol DKMS's signing key in the firmware (set a one-time password; confirm it in the blue MOK "
        "screen at the next boot)",
        f"sudo mokutil --import {key}",
        "sudo dkms autoinstall",
        needs_admin=True,
        needs_reboot=True,
    )


def reload_uvm_fix(ctx: RuleContext) -> Fix:
    """Reload nvidia_uvm, which answers only 'unknown error' after a suspend/resume until it is reloaded."""
    return ctx.fix(
        "Reload the CUDA unified-memory module (a laptop after suspend/resume, or a module left in a bad "
        "state); stop the programs using the GPU first, or reboot",
        "sudo rmmod nvidia_uvm",
        "sudo modprobe nvidia_uvm",
        needs_admin=True,
    )


def reinstall_driver_library_fix(ctx: RuleContext, library: str) -> Fix:
    """Reinstall the package that owns a driver library (`library`: libnvidia-ml.so.1), then reboot."""
    family = distro_family(ctx.facts.platform)
    if family in ("ubuntu", "debian"):
        return ctx.fix(
            "Find the package that owns the NVML library and reinstall it (a half-finished upgrade or a "
            "driver from a .run installer mixed with packaged files leaves a library that crashes); then reboot",
            f"ls -l {library}*",
            f'dpkg -S "$(readlink -f {library})"',
            f'sudo apt install --reinstall "$(dpkg -S "$(readlink -f {library})" | cut -d: -f1)"',
            needs_admin=True,
            needs_reboot=True,
        )
    if family in ("fedora", "rhel"):
        library = library.replace("/usr/lib/x86_64-linux-gnu/", "/usr/lib64/")
        return ctx.fix(
            "Find the package that owns the NVML library and reinstall it, then reboot",
            f"ls -l {library}*",
            f'sudo dnf reinstall "$(rpm -qf "$(readlink -f {library})")"',
            needs_admin=True,
            needs_reboot=True,
        )
    return ctx.fix(
        "See which files the NVML library is and reinstall the NVIDIA driver they came from, then reboot",
        f"ls -l {library}*",
        needs_admin=True,
        needs_reboot=True,
    )


# ----------------------------------------------------------------------------------------------
# Installing the NVIDIA driver: one recipe per Linux distribution family


def _branch(minimum: str | None) -> str | None:
    """The driver branch ("580") of a minimum driver version ("580.65.06")."""
    head = (minimum or "").split(".")[0]
    return head if head.isdigit() else None


def _cuda_repository_fix(ctx: RuleContext, distro: str, arch: str, summary: str) -> Fix:
    """NVIDIA's own apt repository for Debian or Ubuntu, which carries the newest driver branches."""
    repository = f"https://developer.download.nvidia.com/compute/cuda/repos/{distro}/{arch}"
    return ctx.fix(
        summary,
        f"wget {repository}/cuda-keyring_1.1-1_all.deb",
        "sudo dpkg -i cuda-keyring_1.1-1_all.deb",
        "sudo apt update",
        "sudo apt install cuda-drivers",
        needs_admin=True,
        needs_reboot=True,
    )


def _ubuntu_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    branch = _branch(minimum)
    if branch is None:
        return ctx.fix(
            "Install the recommended NVIDIA driver with Ubuntu's tool",
            "sudo apt update",
            "sudo ubuntu-drivers install",
            needs_admin=True,
            needs_reboot=True,
        )
    return ctx.fix(
        f"Install the NVIDIA {branch} driver branch with Ubuntu's tool (the recommended driver may be "
        f"older than the {minimum} needed; if `ubuntu-drivers list` offers no {branch} for your "
        "release, pick a newer branch it lists)",
        "sudo apt update",
        f"sudo ubuntu-drivers install nvidia:{branch}",
        needs_admin=True,
        needs_reboot=True,
    )


def _debian_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    p = ctx.facts.platform
    branch = _branch(minimum)
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(p.machine if p else "", "$(dpkg --print-architecture)")
    release = (p.distro_version_id or "").split(".")[0] if p else ""
    packaged = DEBIAN_DRIVER_BRANCH.get(release)
    if branch is not None and (packaged is None or int(packaged) < int(branch)):
        series = (
            f"Debian {release}'s own nvidia-driver is the {packaged} series, older than the {minimum} needed"
            if packaged
            else f"Debian's own nvidia-driver may be older than the {minimum} needed"
        )
        return _cuda_repository_fix(
            ctx,
            f"debian{release or '12'}",
            "sbsa" if arch == "arm64" else "x86_64",
            f"{series}: install the current driver from NVIDIA's CUDA repository instead (remove "
            "Debian's nvidia-* packages first if they are installed)",
        )
    return ctx.fix(
        "Enable the contrib, non-free and non-free-firmware components in your apt sources, then "
        "install Debian's NVIDIA driver",
        "sudo apt update",
        f"sudo apt install linux-headers-{arch} nvidia-driver firmware-misc-nonfree",
        needs_admin=True,
        needs_reboot=True,
    )


def _fedora_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    return ctx.fix(
        "Install the driver from RPM Fusion; akmods builds the kernel module (wait a few minutes "
        "before rebooting)",
        "sudo dnf install https://mirrors.rpmfusion.org/free/fedora/rpmfusion-free-release-$(rpm -E %fedora).noarch.rpm "
        "https://mirrors.rpmfusion.org/nonfree/fedora/rpmfusion-nonfree-release-$(rpm -E %fedora).noarch.rpm",
        "sudo dnf install akmod-nvidia xorg-x11-drv-nvidia-cuda",
        needs_admin=True,
        needs_reboot=True,
    )


def _rhel_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    p = ctx.facts.platform
    major = (p.distro_version_id or "9").split(".")[0] if p else "9"
    arch = "sbsa" if p is not None and p.machine == "aarch64" else "x86_64"
    modular = not major.isdigit() or int(major) < 10  # RHEL 10 dropped module streams
    install = (
        "sudo dnf module install nvidia-driver:latest-dkms" if modular else "sudo dnf install nvidia-open"
    )
    return ctx.fix(
        "Install the driver from NVIDIA's repository for your release",
        f"sudo dnf config-manager --add-repo https://developer.download.nvidia.com/compute/cuda/repos/"
        f"rhel{major}/{arch}/cuda-rhel{major}.repo",
        "sudo dnf install kernel-devel-$(uname -r) kernel-headers-$(uname -r)",
        install,
        needs_admin=True,
        needs_reboot=True,
    )


def _arch_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    return ctx.fix(
        "Install the NVIDIA driver package (nvidia-open for Turing and newer GPUs)",
        "sudo pacman -S nvidia-open nvidia-utils",
        needs_admin=True,
        needs_reboot=True,
    )


def _other_linux_driver(ctx: RuleContext, minimum: str | None) -> Fix:
    at_least = f" ({minimum} or newer)" if minimum else ""
    return ctx.fix(
        f"Install the NVIDIA driver{at_least} for your GPU with your distribution's packages, or from "
        f"{DRIVERS_PAGE}",
        needs_admin=True,
        needs_reboot=True,
    )


DriverRecipe = Callable[[RuleContext, "str | None"], Fix]

# distro_family(...) -> how that family installs the NVIDIA driver; "other" is the fallback.
DRIVER_RECIPES: dict[str, DriverRecipe] = {
    "ubuntu": _ubuntu_driver,
    "debian": _debian_driver,
    "fedora": _fedora_driver,
    "rhel": _rhel_driver,
    "arch": _arch_driver,
    "other": _other_linux_driver,
}


def install_driver_fixes(ctx: RuleContext, minimum: str | None = None) -> tuple[Fix, ...]:
    """Install the NVIDIA driver, the way this platform and distribution do it; at least `minimum`
    ("580.65.06") where a rule needs a newer driver than the distribution may pick."""
    if ctx.flavor == "windows":
        return (
            host_fix(
                "Download and install the NVIDIA driver for your GPU (or let the NVIDIA App do it), then restart",
                f"Start-Process {DRIVERS_PAGE}",
                needs_reboot=True,
            ),
        )
    if ctx.flavor == "wsl":
        return (wsl_host_driver_fix(),)
    recipe = DRIVER_RECIPES.get(distro_family(ctx.facts.platform), _other_linux_driver)
    fix = recipe(ctx, minimum)
    # a container runs on the host's kernel module: the driver is always installed on the host
    return (dataclasses.replace(fix, where="host") if ctx.in_container else fix,)


def driver_upgrade_fix(ctx: RuleContext, minimum: str) -> Fix:
    base = install_driver_fixes(ctx, minimum=minimum)[0]
    return dataclasses.replace(
        base, summary=f"Upgrade the NVIDIA driver to {minimum} or newer. {base.summary}"
    )


def led_by(lead: str, fix: Fix) -> Fix:
    """`fix` under a sentence that says why it is proposed here; a driver change always ends in a reboot."""
    return dataclasses.replace(
        fix, summary=f"{lead}: {fix.summary[0].lower()}{fix.summary[1:]}", needs_reboot=True
    )


# ----------------------------------------------------------------------------------------------
# Installing TensorFlow


def and_cuda_install(ctx: RuleContext, build: TfBuild) -> tuple[str, ...]:
    return tf_install_commands(ctx, f"tensorflow[and-cuda]=={build.version}")


def tf_install_spec(ctx: RuleContext, series: str, installed_package: str = "tensorflow") -> str:
    """What to pip install for TensorFlow `series` with GPU support: the installed distribution when that
    series publishes it as a CUDA build, else the series' first CUDA distribution."""
    release = ctx.matrix.tensorflow_release(series)
    package = "tensorflow"
    if release is not None and release.gpu_packages:
        package = installed_package if installed_package in release.gpu_packages else release.gpu_packages[0]
    extra = (
        "[and-cuda]"
        if package == "tensorflow"
        and ctx.flavor in ("linux", "wsl")
        and series_key(series) >= series_key(FIRST_AND_CUDA_SERIES)
        else ""
    )
    return f"{package}{extra}=={series}.*"


# TensorFlow 2.16.1's release notes: "Keras 3.0 will be the default Keras version" (tf.keras is Keras 3),
# "The tf.estimator API is removed"; Keras 2 stays available as the tf-keras package with
# TF_USE_LEGACY_KERAS=1. https://github.com/tensorflow/tensorflow/releases/tag/v2.16.1
KERAS_3_SERIES = "2.16"


def tf_installed_version(ctx: RuleContext) -> str | None:
    tf = ctx.facts.tensorflow
    if tf is not None and tf.installed and tf.version:
        return tf.version
    dist = tf_distribution(ctx)
    return dist.version if dist is not None and dist.version else None


def tf_crossing(ctx: RuleContext, target: str) -> str:
    """A sentence for a fix that moves the installed TensorFlow to `target` ("2.18", "2.15.1") across
    the Keras 3 change in 2.16, either way; "" when it stays on one side (or nothing is installed)."""
    installed = tf_installed_version(ctx)
    have, want = series_key(installed or ""), series_key(target)
    line = series_key(KERAS_3_SERIES)
    if not installed or parse_version(installed) is None or parse_version(target) is None:
        return ""
    series = ".".join(target.split(".")[:2])
    if have < Version("2") <= want:
        return (
            ". This is a major step from TensorFlow 1 to 2: sessions, placeholders and tf.contrib are gone "
            "(tf.compat.v1 keeps most of the old API; https://www.tensorflow.org/guide/migrate)"
            + ("; and from 2.16 on tf.keras is Keras 3" if line <= want else "")
        )
    if have < line <= want:
        return (
            f". This is a major step: from TensorFlow {KERAS_3_SERIES} on, tf.keras is Keras 3 and tf.estimator "
            f"is gone; to keep Keras 2 code running, also `pip install tf-keras=={series}.*` and set "
            "TF_USE_LEGACY_KERAS=1"
        )
    if want < line <= have:
        return (
            f". This goes back before TensorFlow {KERAS_3_SERIES}: tf.keras is Keras 2 again, so code written "
            "for Keras 3 needs changes"
        )
    return ""


def tf_move_spec(ctx: RuleContext, series: str) -> str:
    """The installed TensorFlow distribution at release `series` ("tensorflow-cpu==2.18.*"), with the
    `[and-cuda]` extra when this environment uses TensorFlow's CUDA wheels: the move changes nothing else."""
    dist = tf_distribution(ctx)
    package = dist.name if dist is not None else "tensorflow"
    uses_wheels = ctx.facts.python is not None and any(
        d.name.startswith("nvidia-") for d in ctx.facts.python.distributions
    )
    extra = (
        "[and-cuda]"
        if package == "tensorflow"
        and uses_wheels
        and ctx.flavor in ("linux", "wsl")
        and series_key(series) >= series_key(FIRST_AND_CUDA_SERIES)
        else ""
    )
    return f"{package}{extra}=={series}.*"


def tf_install_commands(ctx: RuleContext, spec: str, *, options: tuple[str, ...] = ()) -> tuple[str, ...]:
    """pip commands that install the TensorFlow `spec` ("tensorflow[and-cuda]==2.15.1") and leave no other
    TensorFlow build behind: tensorflow, tensorflow-cpu, -gpu and -intel all write the same `tensorflow/`
    package, so a leftover one overwrites (or on uninstall deletes) the new one's files."""
    package = spec.split("[")[0].split("=")[0].split("<")[0].split(">")[0].split("~")[0].strip()
    present = [name for name in TF_PACKAGES if ctx.distribution(name) is not None]
    others = [name for name in present if name != package]
    if not others:
        return (ctx.pip_install(spec, options=options),)
    # removing another build deletes files this one shares: take it out too and install it afresh
    remove = [*others, *([package] if package in present else [])]
    return (ctx.pip("uninstall", "-y", *remove), ctx.pip_install(spec, options=options))


# ----------------------------------------------------------------------------------------------
# Installing JAX


def jax_cuda_spec(ctx: RuleContext, extra: str, version: str | None, minimum: str | None = None) -> str:
    """`jax[cuda12]==0.4.31`: the installed jax version when its release has the extra (and is at least
    `minimum`, the first jax whose extra installs a working plugin), else the first such release after it
    (the least move); with no version known, the newest such release. Only releases with wheels for the
    target's Python count."""
    have, floor = parse_version(version or ""), parse_version(minimum or "")
    python = ctx.facts.python.version if ctx.facts.python else ""
    rows = sorted(
        (row for row in ctx.matrix.jax if not python or row.python.contains(python, prereleases=True)),
        key=lambda row: series_key(row.version),
    )
    if have is None:  # nothing installed to stay close to: the newest release the matrix knows
        newest = [row for row in rows if extra in row.extras]
        return f"jax[{extra}]=={newest[-1].version}" if newest else f"jax[{extra}]"
    for row in rows:
        first, until = parse_version(row.version), parse_version(row.until)
        if extra not in row.extras or first is None:
            continue
        if first <= have and (until is None or have < until):
            if floor is None or have >= floor:
                return f"jax[{extra}]=={version}"
        elif first > have and (floor is None or first >= floor):
            return f"jax[{extra}]=={row.version}"
    return f"jax[{extra}]" + (f">={minimum}" if minimum else "")


# ----------------------------------------------------------------------------------------------
# Installing PyTorch

TORCH_WHL = "https://download.pytorch.org/whl"


# The local parts PyTorch's own index publishes: +cu124, +cpu, +cpu.cxx11.abi, +rocm6.2, +xpu.
TORCH_INDEX_VARIANT = lazy_re.compile(r"^(?:cu\d+|cpu(?:\.cxx11\.abi)?|rocm\d+(?:\.\d+)*|xpu)$")


def torch_on_index(version: str) -> bool:
    """Whether pip can fetch this torch build again: a final release from PyPI or download.pytorch.org,
    whose local part (if any) is one of the index's variants. NVIDIA's container builds
    ("2.10.0a0+a36e1d39eb.nv26.02"), source builds ("2.3.0a0+git1a2b3c4") and nightlies are not."""
    release = release_of(version)
    if release is None or release.is_prerelease or release.is_devrelease:
        return False
    variant = local_part(version)
    return variant is None or TORCH_INDEX_VARIANT.match(variant) is not None


def torch_release_for(version: str) -> str:
    """The release pip can install for `version`: itself, or the final release a pre-release build
    ("2.10.0a0+...") leads to."""
    release = release_of(version)
    if release is not None and (release.is_prerelease or release.is_devrelease):
        return release.base_version
    return public_version(version)


def torch_index_options(release: str, variant: str | None) -> tuple[str, ...]:
    """The pip options that find PyTorch's `variant` build ("cu121", "cpu", "rocm6.1") of `release`, in the
    form that release was published in: -f torch_stable.html before 1.11, an extra index before 2.0, then
    the variant's own index alone (so PyPI's default build can never be picked instead). No variant: PyPI."""
    if not variant:
        return ()
    number = release_of(public_version(release))
    if number is not None and number < Version("1.11"):
        return ("-f", f"{TORCH_WHL}/torch_stable.html")
    if number is not None and number < Version("2.0"):
        return ("--extra-index-url", f"{TORCH_WHL}/{variant}")
    return ("--index-url", f"{TORCH_WHL}/{variant}")


def torch_build_spec(
    version: str, variant: str | None = None, *, head: str = "torch", torch: str | None = None
) -> tuple[str, tuple[str, ...]]:
    """`torch==2.4.1+cu121` and the pip options that find exactly that build. `variant` defaults to the
    local part of `version` (the installed build); with none, PyPI's build of the release. For a
    companion (`head="torchvision"` at its own version), `torch` is the torch release it goes with, which
    decides the index's form."""
    public = public_version(version)
    variant = variant if variant is not None else local_part(version)
    spec = f"{head}=={public}+{variant}" if variant else f"{head}=={public}"
    return spec, torch_index_options(torch or public, variant)


def same_build_install(ctx: RuleContext, version: str, *, options: tuple[str, ...] = ()) -> str:
    """pip install of exactly this torch build: a local variant ("2.4.0+cu121") comes back from PyTorch's
    index for that variant, so a reinstall never swaps a CUDA build for PyPI's default (CPU-only on
    Windows, another CUDA on Linux)."""
    spec, index = torch_build_spec(version)
    return ctx.pip_install(spec, options=(*options, *index))


# ----------------------------------------------------------------------------------------------
# Search paths


def prepend_path(variable: str, *folders: str) -> str:
    """A bash command that puts `folders` first on the search path `variable`, keeping what it holds and
    never leaving an empty entry (which the loader and the shell read as the current directory)."""
    return f"export {variable}={':'.join(folders)}${{{variable}:+:${variable}}}"


def ld_library_path_without(folders: list[str]) -> str:
    """A bash command that takes exactly these folders out of LD_LIBRARY_PATH, keeping the rest."""
    drop = " ".join(["-e ''", *(f"-e '{folder}'" for folder in folders)])  # empty entries go too
    return f"export LD_LIBRARY_PATH=$(echo \"$LD_LIBRARY_PATH\" | tr ':' '\\n' | grep -vxF {drop} | paste -sd: -)"


def set_variable(ctx: RuleContext, name: str, value: str) -> str:
    """The command that sets environment variable `name` for this shell (bash `export`, PowerShell `$env:`)."""
    if ctx.shell == "powershell":
        return f'$env:{name} = "{value}"'
    return f"export {name}={value}"


def metal_floor(plugin: PluginRelease) -> str:
    """The first TensorFlow series a tensorflow-metal release was made for ("2.18")."""
    low = next((s.version for s in plugin.tensorflow if s.operator == ">="), "0")
    return ".".join(low.split(".")[:2])


def metal_fix(ctx: RuleContext, tf_version: str | None) -> Fix:
    """tensorflow-metal pinned to the release made for this TensorFlow; where none was, the nearest
    TensorFlow that has one, with it."""
    if tf_version is not None and (made := ctx.matrix.tensorflow_metal_for(tf_version)):
        return ctx.fix(
            f"Install tensorflow-metal {made[0].version}, Apple's Metal plug-in for TensorFlow {tf_version}",
            ctx.pip_install(f"tensorflow-metal=={made[0].version}"),
        )

    plugins = sorted(ctx.matrix.tensorflow_metal, key=lambda p: series_key(metal_floor(p)))
    if not plugins:
        return ctx.fix("Install Apple's Metal plug-in for TensorFlow", ctx.pip_install("tensorflow-metal"))
    later = [
        p for p in plugins if tf_version is not None and series_key(metal_floor(p)) > series_key(tf_version)
    ]
    plugin = later[0] if later else plugins[-1]
    series = metal_floor(plugin)
    note = tf_crossing(ctx, series) if tf_version is not None else ""
    return ctx.fix(
        f"Install TensorFlow {series} with tensorflow-metal {plugin.version}, the plug-in made for it" + note,
        ctx.pip_install(f"tensorflow=={series}.*", f"tensorflow-metal=={plugin.version}"),
    )
