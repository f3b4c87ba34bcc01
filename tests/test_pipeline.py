"""The pipeline shared by every subcommand: judge, then decide the exit code from report and policy."""

from __future__ import annotations

import importlib

import pytest

from gpudoctor import pipeline
from gpudoctor.facts import DriverFacts, Facts, GpuFacts, ProbeStatus
from gpudoctor.model import Finding, Report, Severity
from gpudoctor.render import FORMATS, RenderOptions, renderer

HEALTHY = Facts(
    driver=DriverFacts(
        nvml_state="ok",
        driver_version="550.54.14",
        cuda_driver_version="12.4",
        gpus=(GpuFacts(index=0, name="NVIDIA GeForce RTX 3090", compute_capability="8.6"),),
    ),
    probes=(ProbeStatus(name="driver"),),
)


def _report(*severities: Severity, facts: Facts = HEALTHY) -> Report:
    findings = tuple(
        Finding(code=f"GD90{i}", severity=s, title="t", message="m") for i, s in enumerate(severities)
    )
    return Report(facts=facts, findings=findings)


@pytest.mark.parametrize(
    ("severities", "policy", "code", "reason"),
    [
        ((), pipeline.Policy(), 0, ""),
        ((Severity.WARNING, Severity.INFO), pipeline.Policy(), 0, ""),
        ((Severity.WARNING,), pipeline.Policy(fail_on="warning"), 1, "warnings"),
        ((Severity.INFO,), pipeline.Policy(fail_on="warning"), 0, ""),
        ((Severity.ERROR, Severity.WARNING), pipeline.Policy(fail_on="warning"), 1, "errors"),
        ((Severity.ERROR,), pipeline.Policy(), 1, "errors"),
    ],
)
def test_decide_is_a_function_of_report_and_policy(
    severities: tuple[Severity, ...], policy: pipeline.Policy, code: int, reason: str
) -> None:
    decision = pipeline.decide(_report(*severities), policy)
    assert (decision.exit_code, decision.reason) == (code, reason)


def test_require_gpu_fails_without_a_usable_gpu() -> None:
    no_gpu = Facts(driver=DriverFacts(nvml_state="library_not_found"))
    assert pipeline.decide(_report(facts=no_gpu), pipeline.Policy(require_gpu=True)).exit_code == 1
    assert pipeline.decide(_report(), pipeline.Policy(require_gpu=True)).exit_code == 0


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_every_format_renders_a_run(name: str) -> None:
    module = importlib.import_module(FORMATS[name].module)
    assert callable(module.render)
    run = pipeline.check(facts=HEALTHY, matrix=pipeline.load_matrix(None), policy=pipeline.Policy())
    assert renderer(name)(run, RenderOptions()).strip()
