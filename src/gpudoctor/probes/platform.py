"""Operating system, WSL, container and the kernel-side state of the NVIDIA driver."""

from __future__ import annotations

import os
import platform
import re

from gpudoctor import lazy_re
from gpudoctor.facts import PlatformFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext
from gpudoctor.runner import which

VERSION = r"\d+\.\d+(?:\.\d+)?"
NVIDIA_VENDOR = "0x10de"
TEGRA_RELEASE = lazy_re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+)(?:\.(\d+))?")
TEGRA_LIBCUDA = (
    "/usr/lib/aarch64-linux-gnu/nvidia/libcuda.so.1",
    "/usr/lib/aarch64-linux-gnu/tegra/libcuda.so.1",
)
WINDOWS_VERSION = lazy_re.compile(r"\[Version (\d+)\.(\d+)\.(\d+)(?:\.(\d+))?\]")
LDCONFIG_ENTRY = r"^\s*{name} \(([^)]*)\) => (\S+)"
PROGRAM_TIMEOUT = 5.0
# The Windows driver's files CUDA and NVML need in WSL 2 (NVIDIA Container Toolkit's pkg/nvcdi/driver-wsl.go
# mounts exactly these into containers; libnvdxgdmal.so.1 came with the 555 Windows drivers).
WSL_DRIVER_FILES = (
    "libcuda.so.1",
    "libcuda.so.1.1",
    "libcuda_loader.so",
    "libnvidia-ptxjitcompiler.so.1",
    "libnvidia-ml.so.1",
    "libnvidia-ml_loader.so",
    "libdxcore.so",
    "libnvdxgdmal.so.1",
    "nvcubins.bin",
    "nvidia-smi",
)
# Where WSL and the container toolkits put them: WSL's own folders, and (legacy nvidia-container-cli mode)
# the image's library folders.
WSL_DRIVER_FOLDERS = (
    "/usr/lib/wsl/lib",
    "/usr/lib/x86_64-linux-gnu",
    "/usr/lib/aarch64-linux-gnu",
    "/usr/lib64",
)
WSL_DRIVER_STORE = "/usr/lib/wsl/drivers"
WSL_DRIVER_STORE_LIMIT = 64  # folders in the driver store looked into
DPKG_STATUS_LIMIT = 32 << 20


def _read(ctx: ProbeContext, path: str) -> str:
    try:
        return ctx.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def parse_os_release(text: str) -> dict[str, str]:
    """KEY=value lines of os-release(5); quotes removed, malformed lines skipped."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*([A-Z0-9_]+)=(.*?)\s*", line)
        if not match:
            continue
        value = match.group(2)
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[match.group(1)] = value.replace('\\"', '"')
    return values


def _os_release(ctx: ProbeContext) -> dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        values = parse_os_release(_read(ctx, path))
        if values:
            return values
    return {}


def wsl_version(proc_version: str, release: str, *, has_dxg: bool, wsl_interop: bool) -> int:
    """0, 1 or 2 from the kernel's own strings.

    WSL1 reports a fake kernel like "4.4.0-19041-Microsoft"; WSL2 runs a real kernel built by
    Microsoft ("5.15.133.1-microsoft-standard-WSL2", older "4.19.104-microsoft-standard"), and only
    WSL2 has the /dev/dxg GPU paravirtualisation device and WSL_INTEROP.
    """
    text = f"{proc_version} {release}".lower()
    if "microsoft" not in text and "wsl" not in text:
        return 0
    if "microsoft-standard" in text or "wsl2" in text or has_dxg or wsl_interop:
        return 2
    return 1


def _container(ctx: ProbeContext) -> str | None:
    if ctx.env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if ctx.path("/run/.containerenv").exists():
        return "podman"
    if ctx.path("/.dockerenv").exists():
        return "docker"
    cgroup = _read(ctx, "/proc/1/cgroup") + _read(ctx, "/proc/self/mountinfo")
    for marker, name in (
        ("kubepods", "kubernetes"),
        ("/kubelet/pods/", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
    ):
        if marker in cgroup:
            return name
    return ctx.env.get("container") or None


def secure_boot_state(data: bytes, *, with_attributes: bool = True) -> bool | None:
    """The SecureBoot EFI variable: efivarfs prefixes its one-byte value with 4 attribute bytes."""
    expected = 5 if with_attributes else 1
    if len(data) != expected or data[-1] not in (0, 1):
        return None
    return data[-1] == 1


def _secure_boot(ctx: ProbeContext) -> bool | None:
    try:
        for entry in ctx.path("/sys/firmware/efi/efivars").glob("SecureBoot-*"):
            return secure_boot_state(entry.read_bytes())
        for entry in ctx.path("/sys/firmware/efi/vars").glob("SecureBoot-*"):
            return secure_boot_state((entry / "data").read_bytes(), with_attributes=False)
    except OSError:
        return None
    if ctx.path("/sys/firmware/efi").is_dir():
        return None  # EFI without the variable readable: cannot tell
    try:
        legacy = any(ctx.path("/sys/firmware").iterdir())  # containers see an empty, masked /sys/firmware
    except OSError:
        return None
    return False if legacy else None  # legacy BIOS boot has no Secure Boot


def _module_loaded(ctx: ProbeContext, name: str) -> bool | None:
    modules = _read(ctx, "/proc/modules")
    if modules:
        return any(line.split(" ", 1)[0] == name for line in modules.splitlines())
    if ctx.path("/sys/module").is_dir():
        return ctx.path(f"/sys/module/{name}").exists()
    return None


def windows_build(version: str) -> int | None:
    match = re.match(r"\d+\.\d+\.(\d+)", version)
    return int(match.group(1)) if match else None


def _nvidia_pci_devices(ctx: ProbeContext) -> tuple[str, ...] | None:
    devices = ctx.path("/sys/bus/pci/devices")
    try:
        entries = sorted(devices.iterdir())
    except OSError:
        return None
    found: list[str] = []
    for entry in entries:
        vendor = _read(ctx, f"/sys/bus/pci/devices/{entry.name}/vendor").strip().lower()
        device_class = _read(ctx, f"/sys/bus/pci/devices/{entry.name}/class").strip().lower()
        if vendor != NVIDIA_VENDOR or not device_class.startswith("0x03"):
            continue  # NVIDIA's audio and USB functions are not GPUs
        device = _read(ctx, f"/sys/bus/pci/devices/{entry.name}/device").strip().lower().removeprefix("0x")
        found.append(f"{entry.name} 10de:{device}" if device else entry.name)
    return tuple(found)


def _module_for_kernel(ctx: ProbeContext, release: str) -> bool | None:
    if not release:
        return None
    dep = _read(ctx, f"/lib/modules/{release}/modules.dep")
    if not dep:
        return None
    return re.search(r"(^|/)nvidia\.ko(\.[a-z]+)?:", dep, re.MULTILINE) is not None


def _versions_in(ctx: ProbeContext, folder: str, pattern: str) -> list[tuple[str, str]]:
    try:
        names = [p.name for p in ctx.path(folder).iterdir()]
    except OSError:
        return []
    return [(name, m.group(1)) for name in sorted(names) if (m := re.fullmatch(pattern, name))]


def _dkms_built(ctx: ProbeContext, release: str) -> tuple[str, ...]:
    if not release:
        return ()
    built = []
    for name, version in _versions_in(ctx, "/var/lib/dkms/nvidia", f"({VERSION})"):
        if ctx.path(f"/var/lib/dkms/nvidia/{name}/{release}").is_dir():
            built.append(version)
    return tuple(built)


def _device_nodes(ctx: ProbeContext) -> tuple[str, ...]:
    try:
        nodes = sorted(f"/dev/{p.name}" for p in ctx.path("/dev").glob("nvidia*"))
    except OSError:
        return ()
    if ctx.path("/dev/dxg").exists():
        nodes.append("/dev/dxg")
    return tuple(nodes)


def parse_tegra_release(text: str) -> str | None:
    """/etc/nv_tegra_release ("# R35 (release), REVISION: 4.1, GCID: ...") as the L4T version "35.4.1"."""
    match = TEGRA_RELEASE.search(text)
    if not match:
        return None
    return f"{match.group(1)}.{match.group(2)}.{match.group(3) or '0'}"


def dpkg_versions(text: str, names: tuple[str, ...]) -> dict[str, str]:
    """Installed versions of `names` from /var/lib/dpkg/status (stanzas of "Field: value" lines)."""
    found: dict[str, str] = {}
    for stanza in text.split("\n\n"):
        fields = {
            key.strip(): value.strip()
            for key, sep, value in (
                line.partition(":") for line in stanza.splitlines() if not line.startswith(" ")
            )
            if sep
        }
        name = fields.get("Package")
        if name in names and fields.get("Status", "").endswith(" installed") and fields.get("Version"):
            found[name] = fields["Version"]
    return found


def leading_version(text: str | None) -> str | None:
    """ "5.1.2-b104" or "6.1+b123" or "35.4.1-20230801124926" -> "5.1.2" / "6.1" / "35.4.1"."""
    match = re.match(VERSION, text or "")
    return match.group(0) if match else None


def parse_windows_version(text: str) -> tuple[str, int] | None:
    """`cmd.exe /c ver` ("Microsoft Windows [Version 10.0.22631.4037]") as ("10.0.22631.4037", 22631)."""
    match = WINDOWS_VERSION.search(text)
    if not match:
        return None
    return ".".join(g for g in match.groups() if g is not None), int(match.group(3))


def parse_ldconfig_libcuda(text: str, name: str = "libcuda.so.1") -> str | None:
    """The file `ldconfig -p` resolves `name` to (the first entry: what the loader picks)."""
    match = re.search(LDCONFIG_ENTRY.format(name=re.escape(name)), text, re.MULTILINE)
    return match.group(2) if match else None


def _program(ctx: ProbeContext, name: str, *places: str) -> str | None:
    found = which(name, ctx.env)
    if found:
        return found
    for place in places:
        path = ctx.path(place)
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _loader_libcuda(ctx: ProbeContext) -> tuple[str | None, str | None]:
    """Where the ldconfig cache resolves libcuda.so.1 and the unversioned libcuda.so."""
    ldconfig = _program(ctx, "ldconfig", "/sbin/ldconfig", "/usr/sbin/ldconfig")
    if ldconfig is None:
        return None, None
    result = ctx.runner.run([ldconfig, "-p"], timeout=PROGRAM_TIMEOUT, env=ctx.tool_env)
    if not result.ok:
        return None, None
    return parse_ldconfig_libcuda(result.stdout), parse_ldconfig_libcuda(result.stdout, "libcuda.so")


def _windows_from_wsl(ctx: ProbeContext) -> tuple[str, int] | None:
    """The Windows host's version, asked through WSL interop (absent when interop is off)."""
    cmd = _program(ctx, "cmd.exe", "/mnt/c/Windows/System32/cmd.exe")
    if cmd is None:
        return None
    result = ctx.runner.run([cmd, "/c", "ver"], timeout=PROGRAM_TIMEOUT, env=ctx.tool_env)
    return parse_windows_version(result.stdout) if result.ok else None


def _wsl_ld_conf(ctx: ProbeContext) -> bool | None:
    try:
        confs = sorted(ctx.path("/etc/ld.so.conf.d").glob("*.conf"))
    except OSError:
        return None
    return any("/usr/lib/wsl/lib" in _read(ctx, f"/etc/ld.so.conf.d/{c.name}") for c in confs)


def _wsl_driver_files(ctx: ProbeContext) -> tuple[str, ...]:
    """Full paths of the WSL driver files (WSL_DRIVER_FILES) found where WSL or a container toolkit puts them."""
    folders = list(WSL_DRIVER_FOLDERS)
    try:
        store = sorted(p.name for p in ctx.path(WSL_DRIVER_STORE).iterdir() if p.is_dir())
    except OSError:
        store = []
    folders += [f"{WSL_DRIVER_STORE}/{name}" for name in store[:WSL_DRIVER_STORE_LIMIT]]
    found = []
    for folder in folders:
        for name in WSL_DRIVER_FILES:
            try:
                if ctx.path(f"{folder}/{name}").exists():
                    found.append(f"{folder}/{name}")
            except OSError:
                continue
    return tuple(found)


def _jetson(ctx: ProbeContext) -> dict[str, str | None]:
    """L4T, JetPack, board and the Tegra libcuda; {} when this is no Jetson."""
    tegra = parse_tegra_release(_read(ctx, "/etc/nv_tegra_release"))
    model = _read(ctx, "/proc/device-tree/model").strip("\x00 \n") or None
    if tegra is None and not (model and "jetson" in model.lower()):
        return {}
    try:
        with ctx.path("/var/lib/dpkg/status").open("rb") as handle:
            status = handle.read(DPKG_STATUS_LIMIT).decode("utf-8", errors="replace")
    except OSError:
        status = ""
    packages = dpkg_versions(status, ("nvidia-jetpack", "nvidia-l4t-core"))
    libcuda = next((p for p in TEGRA_LIBCUDA if ctx.path(p).exists()), None)
    return {
        "tegra_release": tegra or leading_version(packages.get("nvidia-l4t-core")),
        "jetpack_version": leading_version(packages.get("nvidia-jetpack")),
        "jetson_model": model[:200] if model else None,
        "tegra_libcuda": libcuda,
    }


def _linux(ctx: ProbeContext) -> PlatformFacts:
    release = _read(ctx, "/proc/sys/kernel/osrelease").strip()
    if not release and ctx.root == "/":
        release = platform.release()
    os_release = _os_release(ctx)
    wsl_lib = ctx.path("/usr/lib/wsl/lib")
    try:
        wsl_libs = tuple(sorted(p.name for p in wsl_lib.iterdir())) if wsl_lib.is_dir() else ()
    except OSError:
        wsl_libs = ()
    nodes = _device_nodes(ctx)
    wsl = wsl_version(
        _read(ctx, "/proc/version"),
        release,
        has_dxg="/dev/dxg" in nodes,
        wsl_interop=bool(ctx.env.get("WSL_INTEROP")),
    )
    jetson = _jetson(ctx)
    windows = _windows_from_wsl(ctx) if wsl == 2 else None
    libcuda, libcuda_unversioned = _loader_libcuda(ctx) if wsl == 2 or jetson else (None, None)
    return PlatformFacts(
        system="Linux",
        release=release,
        version=platform.version() if ctx.root == "/" else "",
        machine=platform.machine(),
        distro=os_release.get("PRETTY_NAME") or os_release.get("NAME"),
        distro_id=os_release.get("ID") or None,
        distro_id_like=tuple(os_release.get("ID_LIKE", "").split()),
        distro_version_id=os_release.get("VERSION_ID") or None,
        wsl=wsl,
        wsl_distro=ctx.env.get("WSL_DISTRO_NAME") if wsl else None,
        container=_container(ctx),
        secure_boot=None if wsl else _secure_boot(ctx),
        nouveau_loaded=_module_loaded(ctx, "nouveau"),
        nvidia_module_loaded=_module_loaded(ctx, "nvidia"),
        device_nodes=nodes,
        wsl_lib_dir="/usr/lib/wsl/lib" if wsl_lib.is_dir() else None,
        wsl_libs=wsl_libs,
        nvidia_pci_devices=None if wsl else _nvidia_pci_devices(ctx),
        nvidia_module_for_kernel=None if wsl else _module_for_kernel(ctx, release),
        dkms_nvidia_built=_dkms_built(ctx, release),
        nvidia_module_sources=tuple(v for _, v in _versions_in(ctx, "/usr/src", rf"nvidia-({VERSION})")),
        tegra_release=jetson.get("tegra_release"),
        jetpack_version=jetson.get("jetpack_version"),
        jetson_model=jetson.get("jetson_model"),
        tegra_libcuda=jetson.get("tegra_libcuda"),
        wsl_ld_conf=_wsl_ld_conf(ctx) if wsl == 2 else None,
        loader_libcuda=libcuda,
        windows_version=windows[0] if windows else None,
        windows_build=windows[1] if windows else None,
        wsl_driver_files=_wsl_driver_files(ctx) if wsl == 2 else None,
        loader_libcuda_unversioned=libcuda_unversioned,
    )


def _windows_display_adapters(ctx: ProbeContext) -> tuple[str, ...] | None:
    """The video controllers Windows knows (NVIDIA or not); None when PowerShell could not say."""
    powershell = which("powershell", ctx.env) or which("pwsh", ctx.env)
    if powershell is None:
        return None
    result = ctx.runner.run(
        [
            powershell,
            "-NoProfile",
            "-NonInteractive",
            "-Command",
            "Get-CimInstance Win32_VideoController | ForEach-Object { $_.Name }",
        ],
        timeout=8,
        env=ctx.env,
    )
    if not result.ok:
        return None
    return tuple(line.strip() for line in result.stdout.splitlines() if line.strip())


def collect(ctx: ProbeContext) -> PlatformFacts:
    system = ctx.os_name
    if system == "Linux":
        return _linux(ctx)
    if system == "Windows":
        version = platform.version()
        adapters = _windows_display_adapters(ctx)
        return PlatformFacts(
            system=system,
            release=platform.release(),
            version=version,
            machine=platform.machine(),
            windows_build=windows_build(version),
            display_adapters=adapters or (),
            nvidia_pci_devices=None
            if adapters is None
            else tuple(a for a in adapters if "nvidia" in a.lower()),
        )
    return PlatformFacts(
        system=system,
        release=platform.release(),
        version=(platform.mac_ver()[0] if system == "Darwin" else "") or platform.version(),
        machine=platform.machine(),
    )


def describe(facts: PlatformFacts) -> Description:
    parts: list[str] = []
    if facts.system == "Linux":
        parts.append(facts.distro or "Linux")
        if facts.wsl:
            parts.append(f"WSL{facts.wsl}")
    elif facts.system == "Windows":
        parts.append(
            f"Windows {facts.release} (build {facts.windows_build})" if facts.windows_build else "Windows"
        )
    elif facts.system == "Darwin":
        parts.append(f"macOS {facts.version}".strip())
    else:
        parts.append(facts.system or "unknown OS")
    parts.append(facts.machine)
    if facts.jetson_model or facts.tegra_release:
        parts.append(facts.jetson_model or "NVIDIA Jetson")
        if facts.jetpack_version or facts.tegra_release:
            parts.append(
                f"JetPack {facts.jetpack_version}" if facts.jetpack_version else f"L4T {facts.tegra_release}"
            )
    if facts.container:
        parts.append(f"in a {facts.container} container")
    details = [f"kernel {facts.release}"] if facts.release else []
    if facts.nvidia_pci_devices:
        details.append("NVIDIA PCI devices: " + ", ".join(facts.nvidia_pci_devices))
    if facts.device_nodes:
        details.append("device nodes: " + " ".join(facts.device_nodes))
    if facts.wsl_lib_dir:
        details.append(f"{facts.wsl_lib_dir}: " + (" ".join(facts.wsl_libs) or "empty"))
    if facts.secure_boot is not None:
        details.append(f"Secure Boot {'on' if facts.secure_boot else 'off'}")
    modules = [
        name for name, on in (("nvidia", facts.nvidia_module_loaded), ("nouveau", facts.nouveau_loaded)) if on
    ]
    if modules:
        details.append("kernel modules loaded: " + " ".join(modules))
    if facts.nvidia_module_for_kernel is not None:
        details.append(
            "nvidia.ko installed for this kernel"
            if facts.nvidia_module_for_kernel
            else "no nvidia.ko installed for this kernel"
        )
    if facts.tegra_release:
        details.append(
            f"Jetson: L4T {facts.tegra_release}"
            + (f", JetPack {facts.jetpack_version}" if facts.jetpack_version else "")
            + (f" · {facts.jetson_model}" if facts.jetson_model else "")
        )
    if facts.tegra_libcuda:
        details.append(f"Tegra libcuda: {facts.tegra_libcuda}")
    if facts.windows_version and facts.wsl:
        details.append(f"Windows host {facts.windows_version}")
    if facts.loader_libcuda:
        details.append(f"ldconfig resolves libcuda.so.1 to {facts.loader_libcuda}")
    if facts.wsl_ld_conf is False:
        details.append("no /etc/ld.so.conf.d file lists /usr/lib/wsl/lib")
    if facts.wsl == 2 and facts.container and facts.wsl_driver_files is not None:
        details.append("Windows driver files here: " + (" ".join(facts.wsl_driver_files) or "none"))
    if facts.dkms_nvidia_built:
        details.append("DKMS built nvidia " + ", ".join(facts.dkms_nvidia_built) + " for this kernel")
    return Description(mark="ok", summary=" · ".join(p for p in parts if p), details=tuple(details))


PROBE = Probe(name="platform", title="platform", collect=collect, describe=describe, timeout=5)
