"""Operating system, WSL, container and the kernel-side state of the NVIDIA driver."""

from __future__ import annotations

import platform
import re

from gpudoctor.facts import PlatformFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext


def _read(ctx: ProbeContext, path: str) -> str:
    try:
        return ctx.path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _os_release(ctx: ProbeContext) -> str | None:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        match = re.search(r'^PRETTY_NAME="?([^"\n]*)"?', _read(ctx, path), re.MULTILINE)
        if match:
            return match.group(1)
    return None


def _wsl(ctx: ProbeContext, release: str) -> int:
    proc_version = _read(ctx, "/proc/version").lower()
    if "microsoft" not in proc_version and "microsoft" not in release.lower():
        return 0
    if "wsl2" in proc_version or "wsl2" in release.lower() or ctx.path("/run/WSL").exists():
        return 2
    return 1


def _container(ctx: ProbeContext) -> str | None:
    if ctx.env.get("KUBERNETES_SERVICE_HOST"):
        return "kubernetes"
    if ctx.path("/.dockerenv").exists():
        return "docker"
    if ctx.path("/run/.containerenv").exists():
        return "podman"
    cgroup = _read(ctx, "/proc/1/cgroup")
    for marker, name in (
        ("kubepods", "kubernetes"),
        ("docker", "docker"),
        ("libpod", "podman"),
        ("lxc", "lxc"),
    ):
        if marker in cgroup:
            return name
    if ctx.env.get("container"):
        return ctx.env["container"]
    return None


def _secure_boot(ctx: ProbeContext) -> bool | None:
    efivars = ctx.path("/sys/firmware/efi/efivars")
    try:
        entry = next(iter(efivars.glob("SecureBoot-*")), None)
        if entry is None:
            return None if not ctx.path("/sys/firmware/efi").exists() else False
        data = entry.read_bytes()
    except OSError:
        return None
    return bool(data[-1]) if data else None


def _module_loaded(ctx: ProbeContext, name: str) -> bool | None:
    modules = _read(ctx, "/proc/modules")
    if modules:
        return any(line.split(" ", 1)[0] == name for line in modules.splitlines())
    if ctx.path("/sys/module").is_dir():
        return ctx.path(f"/sys/module/{name}").exists()
    return None


def _windows_build(version: str) -> int | None:
    match = re.match(r"\d+\.\d+\.(\d+)", version)
    return int(match.group(1)) if match else None


def collect(ctx: ProbeContext) -> PlatformFacts:
    system = ctx.os_name
    if system == "Windows":
        version = platform.version()
        return PlatformFacts(
            system=system,
            release=platform.release(),
            version=version,
            machine=platform.machine(),
            windows_build=_windows_build(version),
        )
    if system != "Linux":
        return PlatformFacts(
            system=system,
            release=platform.release(),
            version=platform.mac_ver()[0] or platform.version(),
            machine=platform.machine(),
        )
    release = _read(ctx, "/proc/sys/kernel/osrelease").strip() or platform.release()
    wsl_lib = ctx.path("/usr/lib/wsl/lib")
    try:
        wsl_libs = tuple(sorted(p.name for p in wsl_lib.iterdir())) if wsl_lib.is_dir() else ()
    except OSError:
        wsl_libs = ()
    try:
        nodes = tuple(
            sorted(
                str(p).replace(str(ctx.path("/")), "/", 1).replace("//", "/")
                for p in ctx.path("/dev").glob("nvidia*")
            )
        )
        if ctx.path("/dev/dxg").exists():
            nodes += ("/dev/dxg",)
    except OSError:
        nodes = ()
    return PlatformFacts(
        system=system,
        release=release,
        version=platform.version() if ctx.root == "/" else "",
        machine=platform.machine(),
        distro=_os_release(ctx),
        wsl=_wsl(ctx, release),
        container=_container(ctx),
        secure_boot=_secure_boot(ctx),
        nouveau_loaded=_module_loaded(ctx, "nouveau"),
        nvidia_module_loaded=_module_loaded(ctx, "nvidia"),
        device_nodes=nodes,
        wsl_lib_dir="/usr/lib/wsl/lib" if wsl_lib.is_dir() else None,
        wsl_libs=wsl_libs,
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
    if facts.container:
        parts.append(f"in a {facts.container} container")
    details = [f"kernel {facts.release}"] if facts.release else []
    if facts.device_nodes:
        details.append("device nodes: " + " ".join(facts.device_nodes))
    if facts.secure_boot is not None:
        details.append(f"Secure Boot {'on' if facts.secure_boot else 'off'}")
    if facts.nouveau_loaded:
        details.append("nouveau kernel module loaded")
    return Description(mark="ok", summary=" · ".join(p for p in parts if p), details=tuple(details))


PROBE = Probe(name="platform", title="platform", collect=collect, describe=describe, timeout=5)
