"""NVSwitch systems (HGX/DGX): the switches, and NVIDIA Fabric Manager, which must run for CUDA to start.

On such a node CUDA answers every program with error 802 ("system not yet initialized") until
nv-fabricmanager, of exactly the driver's version, has set up the NVLink fabric.
"""

from __future__ import annotations

from gpudoctor import lazy_re
from gpudoctor.facts import FabricFacts
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.runner import which

UNIT = "nvidia-fabricmanager.service"
SHOW = ("show", UNIT, "--property=LoadState,ActiveState,SubState,UnitFileState", "--no-pager")
BINARY_PLACES = ("/usr/bin/nv-fabricmanager", "/usr/sbin/nv-fabricmanager")
LOG = "/var/log/fabricmanager.log"
TIMEOUT = 5.0
VERSION = lazy_re.compile(r"Fabric Manager version is\s*:\s*(\d+\.\d+(?:\.\d+)?)")


def _nvswitch_pci(ctx: ProbeContext) -> tuple[str, ...]:
    found = []
    try:
        entries = sorted(ctx.path("/sys/bus/pci/devices").iterdir())[:4096]
    except OSError:
        return ()
    for entry in entries:
        try:
            vendor = (entry / "vendor").read_text(encoding="ascii", errors="replace").strip().lower()
            pci_class = (entry / "class").read_text(encoding="ascii", errors="replace").strip().lower()
        except OSError:
            continue
        if vendor == "0x10de" and pci_class.startswith("0x0680"):
            found.append(entry.name)
    return tuple(found)


def parse_show(text: str) -> dict[str, str]:
    """`systemctl show --property=...` output: KEY=value lines."""
    values = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            values[key.strip()] = value.strip()
    return values


def parse_version(text: str) -> str | None:
    match = VERSION.search(text)
    return match.group(1) if match else None


def _log_errors(ctx: ProbeContext) -> tuple[str, ...]:
    try:
        with ctx.path(LOG).open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 65536))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ()
    errors = [ln.strip()[:300] for ln in text.splitlines() if "[ERROR]" in ln or "don't match" in ln]
    return tuple(errors[-10:])


def _binary(ctx: ProbeContext) -> str | None:
    found = which("nv-fabricmanager", ctx.env)
    if found:
        return found
    return next((place for place in BINARY_PLACES if ctx.path(place).is_file()), None)


def collect(ctx: ProbeContext) -> FabricFacts:
    if ctx.os_name != "Linux":
        raise ProbeUnavailable(f"NVSwitch systems run Linux (this is {ctx.os_name})")
    try:
        nodes = tuple(sorted(f"/dev/{p.name}" for p in ctx.path("/dev").glob("nvidia-nvswitch[0-9]*")))
    except OSError:
        nodes = ()
    pci = _nvswitch_pci(ctx)
    binary = _binary(ctx)
    if not nodes and not pci and binary is None:
        raise ProbeUnavailable("not an NVSwitch system (no NVSwitch device, no Fabric Manager installed)")
    facts = FabricFacts(
        nvswitch_nodes=nodes,
        nvswitch_pci=pci,
        systemd=ctx.path("/run/systemd/system").is_dir(),
        binary=binary,
        log_errors=_log_errors(ctx),
    )
    problems = []
    values: dict[str, str] = {}
    systemctl = which("systemctl", ctx.env)
    if facts.systemd and systemctl:
        result = ctx.runner.run([systemctl, *SHOW], timeout=TIMEOUT, env=ctx.tool_env)
        if result.ok:
            values = parse_show(result.stdout)
        else:
            problems.append(f"systemctl: {result.describe_failure()}")
    version = None
    if binary is not None:
        result = ctx.runner.run([binary, "--version"], timeout=TIMEOUT, env=ctx.tool_env)
        version = parse_version(result.stdout + "\n" + result.stderr)
        if version is None:
            problems.append(
                f"nv-fabricmanager --version: {result.describe_failure() if not result.ok else 'no version'}"
            )
    return FabricFacts(
        nvswitch_nodes=facts.nvswitch_nodes,
        nvswitch_pci=facts.nvswitch_pci,
        systemd=facts.systemd,
        unit_load_state=values.get("LoadState") or None,
        unit_active_state=values.get("ActiveState") or None,
        unit_sub_state=values.get("SubState") or None,
        unit_file_state=values.get("UnitFileState") or None,
        binary=binary,
        version=version,
        log_errors=facts.log_errors,
        error="; ".join(problems) or None,
    )


def describe(facts: FabricFacts) -> Description:
    switches = len(facts.nvswitch_nodes) or len(facts.nvswitch_pci)
    parts = [f"{switches} NVSwitch(es)" if facts.has_nvswitch else "no NVSwitch"]
    if facts.binary is None:
        parts.append("Fabric Manager not installed")
    else:
        state = facts.unit_active_state or ("unknown" if facts.systemd else "no systemd")
        parts.append(f"Fabric Manager {facts.version or '(version unknown)'}: {state}")
    details = [*facts.log_errors]
    if facts.error:
        details.append(facts.error)
    running = facts.unit_active_state == "active"
    mark: Mark = "ok" if running or not facts.has_nvswitch else "fail"
    return Description(mark=mark, summary=" · ".join(parts), details=tuple(details))


PROBE = Probe(name="fabric", title="NVSwitch fabric", collect=collect, describe=describe, timeout=12)
