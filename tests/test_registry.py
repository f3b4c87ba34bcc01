"""The tidy test: codes, explanations and test machines stay consistent (rustc's error-index lint)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from gpudoctor import explain, policy
from gpudoctor.engine import CRASH_CODE
from gpudoctor.rules import RULES

MACHINES = Path(__file__).parent / "machines"
ENGINE_CODES = {CRASH_CODE, *policy.CODES}
# Codes whose triggering input is a probe failure, covered by probe/CLI tests rather than machine files.
NO_MACHINE_NEEDED = {"GD001"}


def machine_expectations() -> tuple[set[str], set[str]]:
    triggered: set[str] = set()
    passed: set[str] = set()
    for path in MACHINES.glob("*.yaml"):
        expect = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("expect") or {}
        triggered.update(expect.get("findings", []))
        if "top" in expect:
            triggered.add(expect["top"])
        passed.update(expect.get("passes", []))
    return triggered, passed


def test_codes_are_well_formed() -> None:
    for code, rule in RULES.items():
        assert re.fullmatch(r"GD\d{3}", code)
        assert rule.healthy and rule.healthy[0].isupper(), f"{code} needs a name stating the healthy state"
        assert rule.title[0].isupper() and rule.title != rule.healthy, (
            f"{code} needs problem= stating the problem"
        )
        for required in rule.requires:
            assert required in RULES, f"{code} requires unknown {required}"


def test_every_rule_has_an_explanation_and_back() -> None:
    pages = set(explain.all_codes())
    assert set(RULES) - pages == set(), "rules without an explanation page"
    assert pages - set(RULES) - ENGINE_CODES == set(), "explanation pages without a rule"


def test_explanations_have_the_fixed_sections() -> None:
    for code in explain.all_codes():
        page = explain.load(code)
        assert page is not None
        for heading in explain.SECTIONS:
            assert page.section(heading), f"{code}.md lacks a non-empty '## {heading}' section"
        rule = RULES.get(code)
        if rule is not None:
            assert page.title == rule.title, f"{code}.md title {page.title!r} != rule title {rule.title!r}"


def test_every_rule_has_a_triggering_and_a_passing_machine() -> None:
    triggered, passed = machine_expectations()
    wanted = set(RULES) - NO_MACHINE_NEEDED
    assert wanted - triggered == set(), "rules with no machine that triggers them"
    assert wanted - passed == set(), "rules with no machine on which they run and pass"


def test_policy_codes_have_pages_and_machines() -> None:
    """--require-gpu and --require are findings too: a page whose title is the problem, a machine that
    triggers each and one on which each runs and passes."""
    triggered, passed = machine_expectations()
    for code, (problem, _check) in policy.TITLES.items():
        assert code not in RULES, f"{code} is both a rule and a policy check"
        page = explain.load(code)
        assert page is not None and page.title == problem, f"{code}.md title must be {problem!r}"
        assert code in triggered, f"no machine triggers {code}"
        assert code in passed, f"no machine on which {code} runs and passes"
