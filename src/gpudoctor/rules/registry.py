"""The rule registry: a rule is a function decorated with its stable code, title and prerequisites."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpudoctor import lazy_re
from gpudoctor.model import Verdict
from gpudoctor.rules.context import RuleContext

CODE_PATTERN = lazy_re.compile(r"^GD\d{3}$")

Check = Callable[[RuleContext], Iterable[Verdict]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    code: str
    title: str  # the problem it detects, as findings state it: "CUDA_VISIBLE_DEVICES hides the GPUs"
    healthy: str  # the healthy state, for the list of checks that passed: "... does not hide the GPUs"
    check: Check
    requires: tuple[str, ...] = ()  # codes whose finding explains this rule's (groups in rules/causes.py)
    needs: tuple[str, ...] = ()  # fact slots that must be present, e.g. ("driver", "tensorflow")
    blocks_gpu: bool = False  # an error from this rule means no CUDA program can use the GPU
    part: str = ""  # the probe (by name) whose part of the stack its findings are about: "environment"


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    healthy: str,
    *,
    problem: str = "",
    part: str = "",
    requires: Iterable[str] = (),
    needs: Iterable[str] = (),
    blocks_gpu: bool = False,
) -> Callable[[Check], Check]:
    """Register a rule: its stable code, the healthy state it checks ("NVIDIA driver is installed"),
    the problem its findings state (`problem="No NVIDIA driver is installed"`), the probe line they
    are about (`part="driver"`), the root causes that explain it (`requires=`, from rules/causes.py),
    the fact slots it needs, and whether its error leaves no CUDA program the GPU (`blocks_gpu`)."""

    def register(check: Check) -> Check:
        if not CODE_PATTERN.match(code):
            raise ValueError(f"rule code {code!r} does not match GDnnn")
        if code in RULES:
            raise ValueError(f"rule code {code} registered twice")
        RULES[code] = Rule(
            code=code,
            title=problem or healthy,
            healthy=healthy,
            check=check,
            requires=tuple(dict.fromkeys(requires)),
            needs=tuple(needs),
            blocks_gpu=blocks_gpu,
            part=part,
        )
        return check

    return register
