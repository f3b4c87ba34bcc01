"""What rules produce and renderers show: findings with fixes, and the report around them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Literal

from gpudoctor.facts import Facts


class Severity(str, Enum):
    ERROR = "error"  # the GPU will not be used, or the framework will fail
    WARNING = "warning"  # works today but is fragile, slow or about to break
    INFO = "info"  # context worth knowing; shown with -v and in JSON

    @property
    def rank(self) -> int:
        return {"error": 0, "warning": 1, "info": 2}[self.value]


Shell = Literal["bash", "powershell", "cmd"]
# Where a fix's commands run when that is not where gpudoctor ran: on the machine that hosts this
# container (or the Windows side of WSL 2), or inside the container; "" = here.
Where = Literal["", "host", "container"]


@dataclass(frozen=True, kw_only=True)
class Fix:
    """One way out: a sentence, and the exact commands for this machine (never run by gpudoctor)."""

    summary: str
    commands: tuple[str, ...] = ()
    shell: Shell = "bash"
    needs_admin: bool = False
    needs_reboot: bool = False
    where: Where = ""


@dataclass(frozen=True, kw_only=True)
class Finding:
    """One root cause, as a rule saw it on this machine."""

    code: str
    severity: Severity
    title: str  # the problem, e.g. "CUDA_VISIBLE_DEVICES hides every GPU"
    message: str  # one specific sentence built from the facts
    why: str = ""  # why it matters
    seen: tuple[str, ...] = ()  # the facts that led here, one per line
    fixes: tuple[Fix, ...] = ()
    blocks_gpu: bool = False  # stamped from the rule: as an error, no CUDA program can use the GPU
    check: str = ""  # the rule's healthy-state name, e.g. "CUDA_VISIBLE_DEVICES does not hide the GPUs"
    part: str = ""  # the probe whose line this finding is about ("environment"); "" for gpudoctor itself

    @property
    def fix_commands(self) -> tuple[str, ...]:
        """Every fix's commands in order, with admin/reboot notes as trailing comments."""
        lines: list[str] = []
        for fix in self.fixes:
            note = [
                n for n, on in (("needs admin", fix.needs_admin), ("then reboot", fix.needs_reboot)) if on
            ]
            for i, command in enumerate(fix.commands):
                suffix = f"  # {', '.join(note)}" if note and i == len(fix.commands) - 1 else ""
                lines.append(command + suffix)
        return tuple(lines)


RuleState = Literal["pass", "fail", "skip", "crash"]


@dataclass(frozen=True, kw_only=True)
class RuleOutcome:
    code: str
    state: RuleState
    detail: str = ""  # skip reason or crash text


@dataclass(frozen=True, kw_only=True)
class Report:
    facts: Facts
    findings: tuple[Finding, ...] = ()
    outcomes: tuple[RuleOutcome, ...] = ()
    matrix_source: str = ""

    def count(self, severity: Severity) -> int:
        return sum(1 for f in self.findings if f.severity is severity)

    @property
    def has_usable_gpu(self) -> bool:
        """The driver sees a GPU and no error from a rule marked `blocks_gpu` stands between it and
        CUDA programs.

        Errors about one framework's build do not count: the GPU itself is usable by a program built
        to match it.
        """
        driver = self.facts.driver
        if driver is None or driver.nvml_state != "ok" or not driver.gpus:
            return False
        return not any(f.severity is Severity.ERROR and f.blocks_gpu for f in self.findings)

    @property
    def checks_run(self) -> int:
        return sum(1 for o in self.outcomes if o.state in ("pass", "fail"))

    def outcome(self, code: str) -> RuleOutcome | None:
        return next((o for o in self.outcomes if o.code == code), None)


@dataclass(frozen=True, kw_only=True)
class Verdict:
    """What a rule yields; the engine stamps the rule's code and title on it to make a Finding."""

    severity: Severity
    message: str
    why: str = ""
    seen: tuple[str, ...] = ()
    fixes: tuple[Fix, ...] = field(default_factory=tuple)
    title: str = ""  # the problem in this case, where it says more than the rule's title
    part: str = ""  # the probe line this finding is about, where it is not the rule's part
    # An error always settles the rules that `require` this one; a lesser finding can too when it
    # makes them moot (no NVIDIA GPU at all: nothing is left to say about CUDA).
    settles_dependents: bool = False
    # Which of the rules that `require` this one the finding explains: None, all of them; a tuple of
    # codes, only those (a finding about PyTorch's wheels explains GD601, not JAX's GD701).
    explains: tuple[str, ...] | None = None
