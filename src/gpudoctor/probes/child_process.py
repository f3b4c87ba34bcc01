"""Run a small stdlib-only script from `probes/child/` inside the target interpreter.

The script prints one line `@@GPUDOCTOR@@ {json}` on stdout; anything else it prints (framework
logs, warnings) stays in `stdout`/`stderr` for the probe to read. The working directory is the
user's, but it is never on the child's `sys.path` (see `child_env` and `child/_prelude.py`): a
`json.py` or `torch.py` there is not run by gpudoctor; the python probe reports what it would shadow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gpudoctor.prestart import CHILD_FOLDER, child_env, script_source
from gpudoctor.probes.base import ProbeContext, load_json
from gpudoctor.runner import CommandResult

MARKER = "@@GPUDOCTOR@@ "


@dataclass(frozen=True, kw_only=True)
class ChildRun:
    result: CommandResult
    data: dict[str, Any] | None  # the script's JSON, None when it did not get that far
    problem: str | None  # why `data` is missing: timeout, crash, garbage output

    @property
    def log_lines(self) -> tuple[str, ...]:
        lines = [ln for ln in self.result.stderr.splitlines() if ln.strip()]
        lines += [ln for ln in self.result.stdout.splitlines() if ln.strip() and not ln.startswith(MARKER)]
        return tuple(lines)


def script_names() -> tuple[str, ...]:
    """The scripts in `probes/child/` (not the prelude)."""
    folder = CHILD_FOLDER
    return tuple(
        sorted(
            entry.name.removesuffix(".py")
            for entry in folder.iterdir()
            if entry.name.endswith(".py") and not entry.name.startswith("_")
        )
    )


def run_child(
    ctx: ProbeContext,
    script: str,
    *,
    args: tuple[str, ...] = (),
    extra_env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> ChildRun:
    env = child_env(ctx.env, extra_env)
    argv = (ctx.target.python, "-c", script_source(script), *args)
    result = ctx.runner.run(argv, timeout=ctx.child_budget(timeout), env=env, cwd=ctx.target.cwd or None)
    data = parse_marker(result.stdout)
    if data is not None:
        return ChildRun(result=result, data=data, problem=None)
    if result.error or result.signal_name or result.returncode != 0:
        problem = result.describe_failure()
    else:
        problem = "the probe script printed no result (unexpected output from the target interpreter)"
    return ChildRun(result=result, data=None, problem=problem.replace(ctx.target.python, "python", 1))


def parse_marker(stdout: str) -> dict[str, Any] | None:
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            try:
                value = load_json(line[len(MARKER) :])
            except ValueError:
                return None
            return value if isinstance(value, dict) else None
    return None


def string(value: object) -> str:
    """A string field of the child's JSON, or "" when it is missing or of another type."""
    return value if isinstance(value, str) else ""


def strings(value: object) -> tuple[str, ...]:
    """A list-of-strings field of the child's JSON, keeping only the strings."""
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))
