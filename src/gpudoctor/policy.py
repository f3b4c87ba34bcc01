"""What the caller requires of the machine (`--require-gpu`, `--require torch`), judged as findings.

These checks run after the rules, over the whole report: "a usable GPU" is a property of every
finding together. They are findings like any other (codes GD004, GD005, each with an explanation
page and fake machines in tests/machines/ that carry a `policy:` block), so a CI log, a JUnit file
and the JSON summary all count them as errors.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # imported when the checks run, so that the CLI's start-up stays light
    from gpudoctor.facts import Facts
    from gpudoctor.matrix import Matrix
    from gpudoctor.model import Finding, Fix, Report
    from gpudoctor.rules.context import RuleContext

FailOn = Literal["error", "warning"]
Framework = Literal["tensorflow", "torch", "jax"]
FRAMEWORKS: tuple[Framework, ...] = ("tensorflow", "torch", "jax")
FRAMEWORK_NAMES: dict[Framework, str] = {"tensorflow": "TensorFlow", "torch": "PyTorch", "jax": "JAX"}

REQUIRE_GPU = "GD004"
REQUIRE_FRAMEWORK = "GD005"
# code -> (the problem, the healthy state): the same words as the explanation pages' titles.
TITLES: dict[str, tuple[str, str]] = {
    REQUIRE_GPU: ("--require-gpu: no usable NVIDIA GPU", "A usable NVIDIA GPU, as --require-gpu asks"),
    REQUIRE_FRAMEWORK: (
        "--require: a required framework sees no GPU",
        "Every framework named by --require sees a GPU",
    ),
}
CODES = tuple(TITLES)


@dataclass(frozen=True, kw_only=True)
class Policy:
    """What the caller asks of the machine; with the report it decides the exit code."""

    fail_on: FailOn = "error"
    require_gpu: bool = False
    require: tuple[Framework, ...] = ()


def apply(report: Report, policy: Policy, matrix: Matrix) -> Report:
    """The report with the policy's findings and check outcomes added (nothing added when none asked)."""
    from gpudoctor.model import RuleOutcome
    from gpudoctor.rules.context import RuleContext

    findings: list[Finding] = []
    outcomes: list[RuleOutcome] = []
    if policy.require_gpu:
        found = _require_gpu(report)
        findings += found
        outcomes.append(RuleOutcome(code=REQUIRE_GPU, state="fail" if found else "pass"))
    if policy.require:
        ctx = RuleContext(facts=report.facts, matrix=matrix)
        found = [f for name in dict.fromkeys(policy.require) if (f := _require_framework(ctx, report, name))]
        findings += found
        outcomes.append(RuleOutcome(code=REQUIRE_FRAMEWORK, state="fail" if found else "pass"))
    if not outcomes:
        return report
    return dataclasses.replace(
        report,
        findings=tuple(sorted((*report.findings, *findings), key=lambda f: (f.severity.rank, f.code))),
        outcomes=tuple(sorted((*report.outcomes, *outcomes), key=lambda o: o.code)),
    )


def _finding(code: str, message: str, why: str, seen: tuple[str, ...], fixes: tuple[Fix, ...]) -> Finding:
    from gpudoctor.model import Finding, Severity

    return Finding(
        code=code,
        severity=Severity.ERROR,
        title=TITLES[code][0],
        message=message,
        why=why,
        seen=seen,
        fixes=fixes,
    )


def _require_gpu(report: Report) -> list[Finding]:
    from gpudoctor.model import Fix, Severity

    if report.has_usable_gpu:
        return []
    driver = report.facts.driver
    blocking = [
        f
        for f in report.findings
        if f.severity is Severity.ERROR and f.code not in CODES and _blocks_gpu(report, f)
    ]
    if driver is None:
        status = report.facts.status("driver")
        reason = f"the NVIDIA driver was not examined ({status.state}: {status.detail})" if status else ""
        reason = reason or "these facts hold nothing about the NVIDIA driver"
    elif driver.nvml_state != "ok":
        reason = f"the NVIDIA driver could not be queried (NVML: {driver.nvml_state.replace('_', ' ')})"
    elif not driver.gpus:
        reason = "the NVIDIA driver sees no GPU"
    elif blocking:
        reason = (
            f"{', '.join(dict.fromkeys(f.code for f in blocking))} stands between the GPU and CUDA programs"
        )
    else:
        reason = "no finding says why"
    leads = [f for f in report.findings if f.code not in CODES and f.severity is not Severity.INFO]
    if (blocking or leads) and not reason.startswith(tuple(f.code for f in blocking)):
        reason += f" (see {(blocking or leads)[0].code})"
    fixes: tuple[Fix, ...] = ()
    if blocking or leads:
        first = (blocking or leads)[0]
        fixes = (
            Fix(
                summary=f"Fix {first.code} first, then check again",
                commands=(f"gpudoctor explain {first.code}", "gpudoctor check --require-gpu"),
            ),
        )
    return [
        _finding(
            REQUIRE_GPU,
            f"No usable NVIDIA GPU, and --require-gpu asks for one: {reason}",
            "This run was told that a GPU is required (a GPU CI runner, a training job's pre-flight "
            "check); without one every framework falls back to the CPU or fails.",
            tuple(f"{f.code} {f.severity.value}: {f.message}" for f in (blocking or leads)[:3])
            or (f"NVIDIA driver: {reason}",),
            fixes,
        )
    ]


def _blocks_gpu(report: Report, finding: Finding) -> bool:
    blocks = getattr(finding, "blocks_gpu", None)
    if isinstance(blocks, bool):
        return blocks
    return finding.code.startswith(("GD1", "GD3", "GD50"))


def _require_framework(ctx: RuleContext, report: Report, name: Framework) -> Finding | None:
    from gpudoctor.model import Fix, Severity

    facts = report.facts
    label = FRAMEWORK_NAMES[name]
    reason = _framework_without_gpu(facts, name)
    if reason is None:
        return None
    others = [f for f in report.findings if f.code not in CODES and f.severity is Severity.ERROR]
    fixes: tuple[Fix, ...]
    if others:
        fixes = (
            Fix(
                summary=f"Fix {others[0].code} first, then check again",
                commands=(f"gpudoctor explain {others[0].code}", f"gpudoctor check --require {name}"),
            ),
        )
    elif "not installed" in reason:
        fixes = (
            Fix(
                summary=f"If {label} is installed in another environment, diagnose that one "
                "(or activate it and run gpudoctor again)",
                commands=(f"gpudoctor check --python {_other_python(ctx)} --require {name}",),
                shell=ctx.shell,
            ),
        )
    else:
        fixes = (
            Fix(
                summary=f"Run {label}'s own device query to see what it says",
                commands=(_device_query(name),),
            ),
        )
    target = facts.target.python or "the target environment"
    return _finding(
        REQUIRE_FRAMEWORK,
        f"{label} sees no GPU, and --require {name} asks it to: {reason}",
        f"This run was told that {label} must use a GPU; in {target} it would run on the CPU or fail.",
        (f"{label}: {reason}",),
        fixes,
    )


def _device_query(name: Framework) -> str:
    return {
        "tensorflow": "python -c \"import tensorflow as tf; print(tf.config.list_physical_devices('GPU'))\"",
        "torch": 'python -c "import torch; print(torch.cuda.is_available(), torch.cuda.device_count())"',
        "jax": 'python -c "import jax; print(jax.devices())"',
    }[name]


def _framework_without_gpu(facts: Facts, name: Framework) -> str | None:
    """None when the framework saw at least one GPU; else why not, in a few words."""
    status = facts.status(name)
    value = getattr(facts, name, None)
    if value is None:
        if status is not None and status.state == "unavailable" and "not installed" in status.detail:
            return "not installed in the target environment"
        if status is not None and status.state != "ok":
            return f"its probe did not finish ({status.state}: {status.detail})".replace(": )", ")")
        return "these facts hold nothing about it"
    if not value.installed:
        return "not installed in the target environment"
    if value.import_error:
        return f"it cannot be imported ({value.import_error.splitlines()[0][:160]})"
    if name == "tensorflow":
        if value.gpus:
            return None
        return value.no_gpu_reason() or (
            "a CPU-only build" if value.is_cuda_build is False else "it lists no GPU device"
        )
    if name == "torch":
        if value.device_count or value.cuda_available:
            return None
        if value.cuda_version is None and value.hip_version is None:
            return "a CPU-only build"
        return value.cuda_error or "torch.cuda.is_available() is False"
    if any(not d.startswith("cpu") for d in value.devices):
        return None
    return value.backend_error or "jax.devices() lists only the CPU"


def _other_python(ctx: RuleContext) -> str:
    return "C:\\path\\to\\env\\Scripts\\python.exe" if ctx.flavor == "windows" else "/path/to/env/bin/python"
