"""The kernel's own word about the NVIDIA driver: NVRM and Xid lines of this boot.

`journalctl -k -b 0` first (systemd's journal keeps the whole boot), else `dmesg` (the ring
buffer). Both are read-only, bounded in time and in lines. An unprivileged user is often refused
(kernel.dmesg_restrict, no systemd-journal group): the probe is then "unavailable: needs root".
"""

from __future__ import annotations

from dataclasses import replace

from gpudoctor import lazy_re
from gpudoctor.facts import KernelLogFacts, XidEvent
from gpudoctor.probes.base import Description, Mark, Probe, ProbeContext, ProbeUnavailable
from gpudoctor.runner import CommandResult, which

JOURNALCTL = ("-k", "-b", "0", "-q", "--no-pager", "-o", "short-monotonic", "-n", "20000")
TIMEOUT = 5.0
KEEP_LINES = 200
# What makes a line relevant, case-insensitive: plain substrings of the lowered line (a regex whose
# alternatives are tried at every position of every line took 10 ms for a 700-line dmesg).
RELEVANT_WORDS = ("nvrm", "xid", "nvidia", "nouveau", "nvswitch", "key was rejected")
LOCKDOWN_MODULE = lazy_re.compile(r"lockdown: .*module")
# "[   12.345678] " (dmesg) or "[   12.345678] host kernel: " (journalctl short-monotonic)
PREFIX = lazy_re.compile(r"^\s*\[\s*\d+\.\d+\]\s*(?:\S+\s+kernel:\s*)?")
XID = lazy_re.compile(r"NVRM: Xid \(PCI:([0-9a-fA-F:.]+)\): (\d+), (.*)")
LEGACY = lazy_re.compile(
    r"The NVIDIA ([^.]{1,80}?) GPU installed in this system is supported through the NVIDIA (\S+?)\.?xx Legacy "
    r"drivers\..{0,200}?The (\S+) NVIDIA driver will ignore this GPU"
)
FALLEN = lazy_re.compile(
    r"The NVIDIA GPU ([0-9a-fA-F:.]+) \(PCI ID: [0-9a-fA-F:]+\) installed in this system has fallen off the bus"
)
OPEN_UNSUPPORTED = lazy_re.compile(
    r"The NVIDIA GPU [0-9a-fA-F:.]+ \(PCI ID: ([0-9a-fA-F]{4}:[0-9a-fA-F]{4})\) installed in this system is not "
    r"supported by open nvidia\.ko"
)
RM_INIT = lazy_re.compile(
    r"(?:GPU )?([0-9a-fA-F]{4}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.\d): RmInitAdapter failed"
)
API_MISMATCH = lazy_re.compile(
    r"API mismatch: the client has the version (\S+), but this kernel module has the version ([^\s.]+(?:\.\d+)*)"
)
KEY_REJECTED = "Key was rejected by service"
REJECTED = lazy_re.compile(
    r"Lockdown: \S+: unsigned module loading is restricted.*|"
    r"nvidia: Unknown symbol .*|nvidia: disagrees about version of symbol .*"
)
BAR = lazy_re.compile(r"NVRM: This PCI I/O region assigned to your NVIDIA device is invalid.*")


def strip_prefix(line: str) -> str:
    return PREFIX.sub("", line, count=1)


def _relevant(line: str) -> bool:
    lowered = line.lower()
    return any(word in lowered for word in RELEVANT_WORDS) or (
        "lockdown: " in lowered and LOCKDOWN_MODULE.search(lowered) is not None
    )


def _rejection(line: str) -> str | None:
    """The kernel's refusal to load the module, as it said it (a rejected key: the whole line)."""
    if KEY_REJECTED in line:
        return line
    if "Lockdown: " not in line and "nvidia: " not in line:
        return None
    match = REJECTED.search(line)
    return match.group(0) if match else None


def parse_kernel_log(text: str) -> KernelLogFacts:
    """The NVIDIA lines of a kernel log, and what they say. Garbage is ignored, never raised."""
    lines = [strip_prefix(ln).strip()[:500] for ln in text.splitlines() if _relevant(ln)]
    # NVRM splits one message over several lines; with the "NVRM:" tags gone they read as one text.
    nvrm = " ".join(" ".join(lines).replace("NVRM:", " ").split())
    xids = []
    for line in lines:
        match = XID.search(line) if "Xid" in line else None
        if match:
            xids.append(XidEvent(code=int(match.group(2)), pci=match.group(1), text=match.group(3)[:300]))
    for match in FALLEN.finditer(nvrm):  # newer drivers say it without an Xid line
        address = match.group(1).lower().rsplit(".", 1)[0]
        if not any(x.code == 79 and x.pci.lower() == address for x in xids):
            xids.append(
                XidEvent(code=79, pci=address, text="fallen off the bus and is not responding to commands")
            )
    legacy = tuple(dict.fromkeys((m.group(1), m.group(2)) for m in LEGACY.finditer(nvrm)))
    ignoring = next((m.group(3) for m in LEGACY.finditer(nvrm)), None)
    mismatch = API_MISMATCH.search(nvrm)
    rm_init = RM_INIT.finditer(nvrm) if "RmInitAdapter failed" in nvrm else iter(())
    rejected = next((said for ln in lines if (said := _rejection(ln))), None)
    bar = next((m.group(0) for ln in lines if (m := BAR.search(ln))), None)
    return KernelLogFacts(
        lines=tuple(lines[-KEEP_LINES:]),
        xids=tuple(xids[-50:]),
        legacy_gpus=legacy,
        ignoring_driver=ignoring,
        open_module_unsupported=tuple(
            dict.fromkeys(m.group(1).lower() for m in OPEN_UNSUPPORTED.finditer(nvrm))
        ),
        rm_init_failed=tuple(dict.fromkeys(m.group(1).lower() for m in rm_init)),
        api_mismatch=(mismatch.group(1), mismatch.group(2)) if mismatch else None,
        module_rejected=rejected[:300] if rejected else None,
        bar_problem=bar[:300] if bar else None,
    )


def _said(result: CommandResult, name: str) -> str:
    text = (result.stderr.strip() or result.stdout.strip()).splitlines()
    said = text[0][:200] if text and result.error is None else result.describe_failure()
    return said.removeprefix(f"{name}: ")


def _journal_usable(result: CommandResult) -> bool:
    # As a user outside the systemd-journal group, `-q` hides the hint and nothing is printed: a boot
    # always has kernel lines, so an empty answer means "not readable", never "nothing happened".
    return result.ok and bool(result.stdout.strip())


def collect(ctx: ProbeContext) -> KernelLogFacts:
    if ctx.os_name != "Linux":
        raise ProbeUnavailable(f"the kernel log is read on Linux only (this is {ctx.os_name})")
    refusals = []
    journalctl = which("journalctl", ctx.env)
    if journalctl:
        result = ctx.runner.run([journalctl, *JOURNALCTL], timeout=TIMEOUT, env=ctx.tool_env)
        if _journal_usable(result):
            return replace(parse_kernel_log(result.stdout), source="journalctl")
        said = (
            _said(result, "journalctl")
            if result.stdout.strip() or result.stderr.strip()
            else "no entries readable"
        )
        refusals.append(f"journalctl: {said}")
    dmesg = which("dmesg", ctx.env)
    if dmesg:
        result = ctx.runner.run([dmesg], timeout=TIMEOUT, env=ctx.tool_env)
        if result.ok and result.stdout.strip():
            return replace(parse_kernel_log(result.stdout), source="dmesg")
        refusals.append(f"dmesg: {_said(result, 'dmesg')}")
    if not refusals:
        raise ProbeUnavailable("neither journalctl nor dmesg is installed")
    denied = any(
        w in r.lower() for r in refusals for w in ("not permitted", "permission", "no entries readable")
    )
    reason = "needs root" if denied else "not readable"
    raise ProbeUnavailable(f"{reason} ({'; '.join(refusals)})")


def describe(facts: KernelLogFacts) -> Description:
    nvrm = [ln for ln in facts.lines if "NVRM" in ln]
    parts = [f"{len(nvrm)} NVRM line(s) this boot (from {facts.source})"]
    if facts.xids:
        codes = sorted({x.code for x in facts.xids})
        parts.append("Xid " + ", ".join(str(c) for c in codes))
    mark: Mark = (
        "warn" if facts.xids or facts.legacy_gpus or facts.rm_init_failed or facts.module_rejected else "ok"
    )
    return Description(mark=mark, summary=" · ".join(parts), details=tuple(facts.lines[-20:]))


PROBE = Probe(name="kernel_log", title="kernel log", collect=collect, describe=describe, timeout=12)
