"""Judge facts: run every rule in dependency order and collect their findings.

Rules are pure functions of facts and matrix. A rule is skipped when a fact slot it needs is
missing or when a rule it `requires` found the root cause that explains it: an error, or a finding
that settles the question for its dependents (one root cause, one error). Skips are not passed down
the chain: a rule that was itself skipped found nothing, so it explains nothing. A rule that raises
becomes a GD002 warning instead of a traceback.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping
from typing import Literal

from gpudoctor.facts import Facts
from gpudoctor.matrix import Matrix
from gpudoctor.model import Finding, Report, RuleOutcome, Severity
from gpudoctor.rules import RULES, Rule
from gpudoctor.rules.context import RuleContext

CRASH_CODE = "GD002"
CRASH_TITLE = "A gpudoctor check crashed"
CRASH_CHECK = "Every gpudoctor check runs to completion"


def ordered(rules: Mapping[str, Rule]) -> list[Rule]:
    graph = {code: {r for r in rule.requires if r in rules} for code, rule in sorted(rules.items())}
    return [rules[code] for code in graphlib.TopologicalSorter(graph).static_order()]


def diagnose(facts: Facts, matrix: Matrix, rules: Mapping[str, Rule] | None = None) -> Report:
    rules = RULES if rules is None else rules
    ctx = RuleContext(facts=facts, matrix=matrix)
    findings: list[Finding] = []
    outcomes: dict[str, RuleOutcome] = {}
    explained: dict[str, Explains] = {}  # rule code -> the dependents its findings explain
    for rule in ordered(rules):
        missing = [slot for slot in rule.needs if getattr(facts, slot, None) is None]
        blocked = [code for code in rule.requires if _explains(explained.get(code), rule.code)]
        if missing or blocked:
            why = (
                f"no {', '.join(missing)} facts" if missing else f"{', '.join(blocked)} found the root cause"
            )
            # A skipped rule settles nothing: only a finding explains another (one root cause, one
            # error), and a rule that did not run found nothing that could explain its dependents.
            outcomes[rule.code] = RuleOutcome(code=rule.code, state="skip", detail=why)
            continue
        try:
            verdicts = list(rule.check(ctx))
        except Exception as exc:  # noqa: BLE001 - a rule bug becomes a GD002 finding  # a rule bug must not hide the other findings
            outcomes[rule.code] = RuleOutcome(
                code=rule.code, state="crash", detail=f"{type(exc).__name__}: {exc}"
            )
            findings.append(_crash_finding(rule, exc))
            continue
        for verdict in verdicts:
            findings.append(
                Finding(
                    code=rule.code,
                    severity=verdict.severity,
                    title=verdict.title or rule.title,
                    message=verdict.message,
                    why=verdict.why,
                    seen=verdict.seen,
                    fixes=verdict.fixes,
                    blocks_gpu=rule.blocks_gpu,
                    check=rule.healthy,
                    part=verdict.part or rule.part,
                )
            )
            if verdict.severity is Severity.ERROR or verdict.settles_dependents:
                explained[rule.code] = _widen(explained.get(rule.code), verdict.explains)
        outcomes[rule.code] = RuleOutcome(code=rule.code, state="fail" if verdicts else "pass")
    return Report(
        facts=facts,
        findings=tuple(sorted(findings, key=_finding_order)),
        outcomes=tuple(outcomes[code] for code in sorted(outcomes)),
        matrix_source=matrix.source,
    )


# What one rule's findings explain: ALL of the rules that require it, or only those named.
Explains = Literal["all"] | frozenset[str]


def _widen(sofar: Explains | None, narrowed: tuple[str, ...] | None) -> Explains:
    if sofar == "all" or narrowed is None:
        return "all"
    return frozenset(narrowed) | (sofar or frozenset())


def _explains(explains: Explains | None, code: str) -> bool:
    return explains == "all" or (explains is not None and code in explains)


def _finding_order(finding: Finding) -> tuple[int, str]:
    return (finding.severity.rank, finding.code)


def _crash_finding(rule: Rule, exc: Exception) -> Finding:
    return Finding(
        code=CRASH_CODE,
        severity=Severity.WARNING,
        title=CRASH_TITLE,
        check=CRASH_CHECK,
        message=f"The check {rule.code} ({rule.healthy}) failed with {type(exc).__name__}: {exc}",
        why="That check could not judge this machine, so a problem it looks for may go unreported.",
        seen=(f"rule {rule.code} raised {type(exc).__name__}",),
        fixes=(),
    )


def codes(findings: Iterable[Finding]) -> list[str]:
    return [f.code for f in findings]
