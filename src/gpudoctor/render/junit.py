"""JUnit XML: one test case per check, so GitLab, Jenkins and Buildkite show them natively.

A check that found an error is a failure carrying the finding; a warning is a failure only under
`--fail-on warning` (otherwise the case passes and the warning is in its system-out); a check that
did not apply is skipped with the reason; a check that crashed is an error.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING

from gpudoctor import __version__
from gpudoctor.model import Finding, Severity
from gpudoctor.redact import redact
from gpudoctor.render import RenderOptions
from gpudoctor.render.clean import visible

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run


def _clean(text: str) -> str:
    return visible(redact(text))


def _check_name(code: str) -> str:
    from gpudoctor.policy import TITLES
    from gpudoctor.rules import RULES

    if code in TITLES:
        return TITLES[code][1]
    rule = RULES.get(code)
    if rule is None:
        return code
    check = getattr(rule, "check_title", None) or getattr(rule, "check", None)  # the healthy state
    return check if isinstance(check, str) and check else rule.title


def finding_text(finding: Finding) -> str:
    lines = [f"{finding.code} {finding.severity.value}: {_clean(finding.message)}"]
    lines += [f"seen: {_clean(s)}" for s in finding.seen]
    if finding.why:
        lines.append(f"why:  {_clean(finding.why)}")
    for fix in finding.fixes:
        lines.append(f"fix:  {_clean(fix.summary)}")
        lines += [f"      {visible(c)}" for c in fix.commands]
    lines.append(f"more: gpudoctor explain {finding.code}")
    return "\n".join(lines)


def render(run: Run, options: RenderOptions) -> str:
    report = run.report
    by_code: dict[str, list[Finding]] = {}
    for finding in report.findings:
        by_code.setdefault(finding.code, []).append(finding)
    failing = {Severity.ERROR} | ({Severity.WARNING} if run.policy.fail_on == "warning" else set())
    suite = ET.Element("testsuite", name="gpudoctor check")
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    outcomes = {o.code: o for o in report.outcomes}
    codes = list(outcomes) + [c for c in by_code if c not in outcomes]  # GD001/GD002 come from no rule
    for code in codes:
        outcome = outcomes.get(code)
        findings = by_code.get(code, [])
        name = f"{code} {_clean(_check_name(code))}"
        case = ET.SubElement(suite, "testcase", classname=f"gpudoctor.{code[:3]}", name=name, time="0")
        counts["tests"] += 1
        if outcome is not None and outcome.state == "skip":
            ET.SubElement(case, "skipped", message=_clean(outcome.detail) or "did not apply")
            counts["skipped"] += 1
            continue
        if outcome is not None and outcome.state == "crash":
            error = ET.SubElement(case, "error", message=_clean(outcome.detail), type="crash")
            error.text = "\n\n".join(finding_text(f) for f in findings)
            counts["errors"] += 1
            continue
        failed = [f for f in findings if f.severity in failing]
        if failed:
            failure = ET.SubElement(
                case, "failure", message=_clean(failed[0].message), type=failed[0].severity.value
            )
            failure.text = "\n\n".join(finding_text(f) for f in findings)
            counts["failures"] += 1
        elif findings:
            ET.SubElement(case, "system-out").text = "\n\n".join(finding_text(f) for f in findings)
    for key, count in counts.items():
        suite.set(key, str(count))
    properties = ET.Element("properties")
    for key, value in (
        ("gpudoctor_version", __version__),
        ("exit_code", str(run.decision.exit_code)),
        ("usable_gpu", str(report.has_usable_gpu).lower()),
    ):
        ET.SubElement(properties, "property", name=key, value=value)
    suite.insert(0, properties)
    root = ET.Element("testsuites", {"name": "gpudoctor", **{k: str(v) for k, v in counts.items()}})
    root.append(suite)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
