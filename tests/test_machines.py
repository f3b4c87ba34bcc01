"""Every fake machine in tests/machines/ through the real engine and matrix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Report
from gpudoctor.pipeline import Policy, judge
from gpudoctor.serde import from_data

MACHINES = Path(__file__).parent / "machines"


def machine_files() -> list[Path]:
    return sorted(MACHINES.glob("*.yaml"))


def load_machine(path: Path) -> tuple[Facts, dict[str, Any]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return from_data(Facts, doc.get("facts") or {}), doc.get("expect") or {}


def machine_policy(path: Path) -> Policy:
    """A machine's `policy:` block: what its run asks for (`require_gpu: true`, `require: [torch]`)."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    block = doc.get("policy") or {}
    return Policy(
        fail_on=block.get("fail_on", "error"),
        require_gpu=bool(block.get("require_gpu", False)),
        require=tuple(block.get("require", ())),
    )


def run_machine(path: Path) -> tuple[Report, dict[str, Any]]:
    facts, expect = load_machine(path)
    return judge(facts, load_matrix(), machine_policy(path)), expect


@pytest.mark.parametrize("path", machine_files(), ids=lambda p: p.stem)
def test_machine(path: Path) -> None:
    report, expect = run_machine(path)
    found = [f.code for f in report.findings]
    crashed = [o for o in report.outcomes if o.state == "crash"]
    assert not crashed, f"rules crashed: {crashed}"
    if "top" in expect:
        assert found and found[0] == expect["top"], (
            f"top finding {found[:1]} != {expect['top']}; all: {found}"
        )
    for code in expect.get("findings", []):
        assert code in found, f"{code} not reported; reported: {found}"
    for code in expect.get("absent", []):
        assert code not in found, f"{code} reported but must not be: {found}"
    for code in expect.get("passes", []):
        outcome = report.outcome(code)
        assert outcome is not None and outcome.state == "pass", f"{code} did not run and pass: {outcome}"
    for code, severity in (expect.get("severities") or {}).items():
        assert any(f.code == code and f.severity.value == severity for f in report.findings), (
            f"{code} not reported as {severity}"
        )
    for key, attr in (("fix_contains", "fix"), ("message_contains", "message")):
        for code, needles in (expect.get(key) or {}).items():
            texts = []
            for finding in (f for f in report.findings if f.code == code):
                if attr == "fix":
                    texts += list(finding.fix_commands) + [fix.summary for fix in finding.fixes]
                else:
                    texts.append(finding.message)
            blob = "\n".join(texts)
            for needle in needles:
                assert needle in blob, f"{code} {attr} lacks {needle!r}:\n{blob}"
    for code, needles in (expect.get("fix_absent") or {}).items():
        reported = next((f for f in report.findings if f.code == code), None)
        assert reported is not None, f"{code} not reported, so its fixes cannot be checked"
        blob = "\n".join([*reported.fix_commands, *(fix.summary for fix in reported.fixes)])
        for needle in needles:
            assert needle not in blob, f"{code} fix must not contain {needle!r}:\n{blob}"
    for code, places in (expect.get("fix_where") or {}).items():
        reported = next((f for f in report.findings if f.code == code), None)
        assert reported is not None, f"{code} not reported, so where its fixes run cannot be checked"
        assert [fix.where for fix in reported.fixes] == places, (
            f"{code}: {[fix.where for fix in reported.fixes]}"
        )
