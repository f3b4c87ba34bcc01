"""GD0xx: gpudoctor itself — probes that could not finish."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.model import Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule


@rule("GD001", "Every probe finished")
def probe_failed(ctx: RuleContext) -> Iterator[Verdict]:
    for status in ctx.facts.probes:
        if status.state not in ("timeout", "crash", "error"):
            continue
        what = {
            "timeout": "did not finish in time",
            "crash": "crashed",
            "error": "failed",
        }[status.state]
        yield Verdict(
            severity=Severity.WARNING,
            message=f"The {status.name} probe {what}: {status.detail}",
            why=(
                "Without these facts gpudoctor cannot judge this part of the setup; the same hang or crash "
                "often hits the framework too (a wedged driver, a library that aborts on load)."
            ),
            seen=(f"probe {status.name}: {status.state} after {status.seconds:.1f} s",),
            fixes=(
                ctx.fix(
                    "Run the check again with a longer limit and verbose output, and include the saved facts "
                    "when you report it",
                    "gpudoctor check --timeout 300 -v --save-facts gpudoctor-facts.json",
                ),
            ),
        )
