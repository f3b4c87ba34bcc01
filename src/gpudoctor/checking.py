"""`gpudoctor check` itself, without typer: its options as data, reading them from argv, and the run.

typer (with its click) is a sixth of what a check loads, and building the command from its
annotations costs as much again; a check is the command people run most, and often from CI. So the
entry point reads a plain `check` command line here (`options_from_argv`) and runs it at once;
anything this reader is unsure of (an unknown option, `--help`, combined short options, a value
typer would refuse or convert differently) goes to typer, which parses it as always. `cli.check`
builds the same `CheckOptions` from what typer parsed and calls the same `run`, and
tests/test_checking.py checks that both ways give equal options for the same argv.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gpudoctor.policy import FRAMEWORKS, FailOn, Framework

if TYPE_CHECKING:
    from gpudoctor.facts import Facts

FAIL_ON: dict[str, FailOn] = {"error": "error", "warning": "warning"}
FRAMEWORK_NAMED: dict[str, Framework] = {name: name for name in FRAMEWORKS}
DEFAULT_TIMEOUT = 60.0


@dataclass(frozen=True, kw_only=True)
class CheckOptions:
    """Every option of `gpudoctor check`, with typer's defaults."""

    python: str | None = None
    output_format: str = "text"
    json_output: bool = False
    output: str | None = None
    verbose: bool = False
    save_facts: str | None = None
    no_redact: bool = False
    facts_file: Path | None = None
    matrix_file: Path | None = None
    fail_on: FailOn = "error"
    require_gpu: bool = False
    require: tuple[Framework, ...] = ()
    no_annotations: bool = False
    timeout: float = DEFAULT_TIMEOUT


# option -> field, for the options that take a value and for the flags (tests/test_checking.py
# checks these are exactly typer's options of `check`)
VALUED = {
    "--python": "python",
    "--format": "output_format",
    "-f": "output_format",
    "--output": "output",
    "-o": "output",
    "--save-facts": "save_facts",
    "--facts": "facts_file",
    "--matrix": "matrix_file",
    "--fail-on": "fail_on",
    "--require": "require",
    "--timeout": "timeout",
}
FLAGS = {
    "--json": "json_output",
    "--verbose": "verbose",
    "-v": "verbose",
    "--no-redact": "no_redact",
    "--require-gpu": "require_gpu",
    "--no-annotations": "no_annotations",
}


def options_from_argv(argv: Sequence[str]) -> CheckOptions | None:
    """The options of `gpudoctor check ...` (argv without the program name) as typer would give them;
    None for any other command line, or one that only typer should judge."""
    if not argv or argv[0] != "check" or os.name == "nt" or "_GPUDOCTOR_COMPLETE" in os.environ:
        return None  # Windows: click expands wildcards in argv; the completion variable: click answers it
    values: dict[str, object] = {}
    require: list[Framework] = []
    rest = list(argv[1:])
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in FLAGS and not eq:
            values[FLAGS[name]] = True
            continue
        if name not in VALUED:
            return None  # an argument, --help, an unknown or combined option: typer says what it is
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        if (value.startswith("-") and value != "-") or not value:
            return None  # typer takes "--json" as a value; a value of "" is a path of "."
        field = VALUED[name]
        if field == "require":
            if value not in FRAMEWORK_NAMED:
                return None
            require.append(FRAMEWORK_NAMED[value])
        elif field == "fail_on":
            if value not in FAIL_ON:
                return None
            values[field] = FAIL_ON[value]
        elif field == "timeout":
            try:
                timeout = float(value)
            except ValueError:
                return None
            if not 1 <= timeout < float("inf"):
                return None
            values[field] = timeout
        elif field in ("facts_file", "matrix_file"):
            values[field] = Path(value)
        else:
            values[field] = value
    return CheckOptions(require=tuple(require), **values)  # type: ignore[arg-type]


def gather(python: str | None, timeout: float, *, only: Collection[str] | None = None) -> Facts:
    """`pipeline.gather`, with one line per probe on stderr while it runs when stderr is a terminal."""
    from gpudoctor import pipeline

    if not sys.stderr.isatty():
        return pipeline.gather(python, timeout, only=only)
    from gpudoctor.render.progress import spinner

    with spinner(pipeline.probe_names(only)) as on_done:
        return pipeline.gather(python, timeout, on_done=on_done, only=only)


def run(options: CheckOptions) -> int:
    """Probe (or replay), judge and deliver the report; the exit code."""
    from gpudoctor import pipeline
    from gpudoctor.background import Background
    from gpudoctor.delivery import Delivery, check_format, deliver
    from gpudoctor.render.screen import Screen

    delivery = Delivery(
        fmt=check_format("json" if options.json_output else options.output_format),
        output=options.output,
        verbose=options.verbose,
        annotations=not options.no_annotations,
        save_facts=options.save_facts,
        redact=not options.no_redact,
        env=dict(os.environ),
    )
    policy = pipeline.Policy(
        fail_on=options.fail_on,
        require_gpu=options.require_gpu,
        require=options.require,
    )
    if options.facts_file is not None:
        facts = pipeline.load_facts(options.facts_file)
        matrix = pipeline.load_matrix(options.matrix_file)
        origin = pipeline.Origin(kind="replay", path=str(options.facts_file))
    else:
        matrix_loader = Background(lambda: pipeline.load_matrix(options.matrix_file))  # while probes run
        formats = (delivery.fmt, "text", *(("json",) if options.save_facts else ()))
        Background(lambda: pipeline.warm_up(formats))
        facts = gather(options.python, options.timeout)
        matrix = matrix_loader.result()
        origin = pipeline.Origin()
    run = pipeline.check(facts=facts, matrix=matrix, policy=policy, origin=origin)
    return deliver(run, delivery, stdout=Screen.of(sys.stdout), stderr=Screen.of(sys.stderr))
