"""GD0xx: gpudoctor itself — probes that could not finish, an interpreter that would not run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import PurePath

from gpudoctor.model import Severity, Verdict
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule


@rule("GD001", "Every probe finished", problem="A probe did not finish", part="python")
def probe_failed(ctx: RuleContext) -> Iterator[Verdict]:
    # python_cmd is the quoted path exactly when the user chose the interpreter with --python
    by_option = ctx.facts.target.selected_by == "--python" and bool(ctx.facts.target.python)
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
            title=f"The {status.name} probe {what}",
            part=status.name,
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
                    "gpudoctor check"
                    + (f" --python {ctx.python_cmd}" if by_option else "")
                    + " --timeout 300 -v --save-facts gpudoctor-facts.json",
                ),
            ),
        )


@rule(
    "GD003",
    "The target Python interpreter runs",
    needs=("python",),
    problem="The target Python interpreter does not run",
    part="python",
)
def target_python_broken(ctx: RuleContext) -> Iterator[Verdict]:
    python = ctx.facts.python
    if python is None or not python.error:
        return
    target = ctx.facts.target.python or python.executable
    prefix = str(PurePath(target).parent.parent) if target else ""
    fixes = [
        ctx.fix(
            "If it is a virtual environment whose base Python was removed or upgraded, recreate it in place "
            "(then reinstall its packages)",
            f"python3 -m venv --clear {prefix}" if ctx.shell == "bash" else f"py -m venv --clear {prefix}",
        ),
        ctx.fix(
            "Or point gpudoctor at the interpreter you run your code with",
            'gpudoctor check --python "$(command -v python3)"'
            if ctx.shell == "bash"
            else "gpudoctor check --python (Get-Command python).Source",
        ),
    ]
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The target Python could not be run: {python.error}",
        why=(
            "Every framework and package check runs inside this interpreter; if it does not start, nothing "
            "you install into it can work either."
        ),
        seen=(f"target: {target} (chosen by {ctx.facts.target.selected_by})",),
        fixes=tuple(fixes),
    )
