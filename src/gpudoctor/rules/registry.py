"""The rule registry: a rule is a function decorated with its stable code, title and prerequisites."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from gpudoctor.model import Verdict
from gpudoctor.rules.context import RuleContext

CODE_PATTERN = re.compile(r"^GD\d{3}$")

Check = Callable[[RuleContext], Iterable[Verdict]]


@dataclass(frozen=True, kw_only=True)
class Rule:
    code: str
    title: str  # the healthy state, so it reads right next to a pass or a fail
    check: Check
    requires: tuple[str, ...] = ()  # codes whose finding explains this rule's (groups in rules/causes.py)
    needs: tuple[str, ...] = ()  # fact slots that must be present, e.g. ("driver", "tensorflow")
    blocks_gpu: bool = False  # an error from this rule means no CUDA program can use the GPU


RULES: dict[str, Rule] = {}


def rule(
    code: str,
    title: str,
    *,
    requires: Iterable[str] = (),
    needs: Iterable[str] = (),
    blocks_gpu: bool = False,
) -> Callable[[Check], Check]:
    def register(check: Check) -> Check:
        if not CODE_PATTERN.match(code):
            raise ValueError(f"rule code {code!r} does not match GDnnn")
        if code in RULES:
            raise ValueError(f"rule code {code} registered twice")
        RULES[code] = Rule(
            code=code,
            title=title,
            check=check,
            requires=tuple(dict.fromkeys(requires)),
            needs=tuple(needs),
            blocks_gpu=blocks_gpu,
        )
        return check

    return register
