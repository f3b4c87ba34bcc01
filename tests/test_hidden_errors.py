"""No error is hidden: a finding is silenced only by a finding that explains it.

"No NVIDIA GPU" explains "the framework does not use the GPU"; it never explains "the framework cannot be
imported". Every GPU-less machine in tests/machines/ is combined with the real import failure of each
framework, and the real CLI must exit 1 on it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import RuleOutcome, Severity, Verdict
from gpudoctor.rules import RULES, Rule, causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.serde import to_data
from tests.test_machines import MACHINES, load_machine, machine_files

# Framework -> (its import rule, the machine whose facts hold that framework's real import failure).
IMPORT_FAILURES = {
    "torch": ("GD601", "pyenv-GD801-torch-no-deps-no-gpu"),
    "tensorflow": ("GD401", "tf-numpy2-with-tf-2.15"),
    "jax": ("GD701", "jax-import-error"),
}
GPU_LEVEL = {*causes.DRIVER, *causes.PLATFORM, *causes.HIDDEN_GPUS, *causes.WRONG_LIBCUDA}


def failing(framework: str) -> object:
    _, machine = IMPORT_FAILURES[framework]
    facts, _ = load_machine(MACHINES / f"{machine}.yaml")
    value = getattr(facts, framework)
    assert value is not None and value.installed and not value.imported, f"{machine} imports {framework}"
    return value


def gpu_less_machines() -> list[tuple[str, Facts]]:
    matrix = load_matrix()
    found = []
    for path in machine_files():
        facts, _ = load_machine(path)
        if not diagnose(facts, matrix).has_usable_gpu:
            found.append((path.stem, facts))
    return found


def test_no_gpu_level_cause_explains_an_import_failure() -> None:
    for code, _ in IMPORT_FAILURES.values():
        explained_by = set(RULES[code].requires) & GPU_LEVEL
        assert not explained_by, f"{code} is silenced by GPU-level causes {sorted(explained_by)}"


@pytest.mark.parametrize("framework", sorted(IMPORT_FAILURES))
def test_import_failure_stays_an_error_on_every_gpu_less_machine(framework: str) -> None:
    code, _ = IMPORT_FAILURES[framework]
    broken = failing(framework)
    machines = gpu_less_machines()
    assert len(machines) >= 10, "too few GPU-less machines to mean anything"
    matrix = load_matrix()
    for name, facts in machines:
        changed: dict[str, Any] = {framework: broken}
        report = diagnose(dataclasses.replace(facts, **changed), matrix)
        errors = {f.code for f in report.findings if f.severity is Severity.ERROR}
        explained = errors & set(RULES[code].requires)
        assert code in errors or explained, f"{name}: {code} hidden; {report.outcome(code)}"
        assert not (explained & GPU_LEVEL), f"{name}: {code} explained by a GPU-level cause {explained}"


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "gpudoctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("framework", sorted(IMPORT_FAILURES))
def test_the_cli_fails_on_a_gpu_less_machine_whose_framework_does_not_import(
    framework: str, tmp_path: Path
) -> None:
    code, _ = IMPORT_FAILURES[framework]
    laptop, _ = load_machine(MACHINES / "driver-cpu-only-laptop.yaml")
    changed: dict[str, Any] = {framework: failing(framework)}
    facts = dataclasses.replace(laptop, **changed)
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(to_data(facts)), encoding="utf-8")

    text = run_cli("check", "--facts", str(path))
    assert text.returncode == 1, text.stdout + text.stderr
    assert code in text.stdout and "No errors" not in text.stdout

    document = run_cli("check", "--facts", str(path), "--json")
    assert document.returncode == 1
    data = json.loads(document.stdout)
    assert data["summary"]["errors"] >= 1
    assert [f["severity"] for f in data["findings"] if f["code"] == code] == ["error"]
    assert any(f["code"] == "GD106" for f in data["findings"]), "the machine is no longer GPU-less"


def _rules(cause_explains: tuple[str, ...] | None) -> dict[str, Rule]:
    def cause(ctx: RuleContext) -> Iterator[Verdict]:
        yield Verdict(severity=Severity.ERROR, message="the cause", explains=cause_explains)

    def symptom(ctx: RuleContext) -> Iterator[Verdict]:
        yield Verdict(severity=Severity.ERROR, message="a symptom")

    def skipped_cause(ctx: RuleContext) -> Iterator[Verdict]:
        yield Verdict(severity=Severity.ERROR, message="never runs")

    return {
        "GD901": Rule(code="GD901", title="Cause", healthy="No cause", check=cause),
        "GD902": Rule(code="GD902", title="Symptom A", healthy="No A", check=symptom, requires=("GD901",)),
        "GD903": Rule(code="GD903", title="Symptom B", healthy="No B", check=symptom, requires=("GD901",)),
        # skipped because GD901 explains it; what requires only GD904 must still run
        "GD904": Rule(
            code="GD904", title="Middle", healthy="No middle", check=skipped_cause, requires=("GD901",)
        ),
        "GD905": Rule(code="GD905", title="Symptom C", healthy="No C", check=symptom, requires=("GD904",)),
    }


def test_a_finding_explains_every_dependent_unless_it_names_them() -> None:
    report = diagnose(Facts(), load_matrix(), _rules(None))
    assert [f.code for f in report.findings] == ["GD901", "GD905"]
    assert report.outcome("GD904") == RuleOutcome(
        code="GD904", state="skip", detail="GD901 found the root cause"
    )

    narrowed = diagnose(Facts(), load_matrix(), _rules(("GD903",)))
    assert [f.code for f in narrowed.findings] == ["GD901", "GD902", "GD904"]  # GD904's error explains GD905
    assert narrowed.outcome("GD903") == RuleOutcome(
        code="GD903", state="skip", detail="GD901 found the root cause"
    )
