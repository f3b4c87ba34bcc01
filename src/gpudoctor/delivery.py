"""Deliver a judged run: the report in its format to stdout or `-o FILE`, the saved facts, and the
GitHub Actions extras (annotations and the step summary), in an order that never loses the report.

A write that fails (a full disk, a missing folder) is remembered, the rest is still written, and
each failure becomes one line on stderr after the report; the exit code is then 2.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from gpudoctor.output import OutputError, write_file, write_stdout
from gpudoctor.render import FORMATS, RenderOptions, renderer

if TYPE_CHECKING:
    from gpudoctor.facts import Facts
    from gpudoctor.pipeline import Run
    from gpudoctor.render.screen import Screen

MACHINE_FORMATS = frozenset({"json", "junit", "markdown", "github"})


@dataclass(frozen=True, kw_only=True)
class Delivery:
    fmt: str = "text"
    output: str | None = None  # None or "-": stdout
    verbose: bool = False
    annotations: bool = True  # under GitHub Actions, unless --no-annotations
    save_facts: str | None = None  # "-" is stdout (the report then goes to stderr)
    redact: bool = True
    env: Mapping[str, str] = field(default_factory=dict)


def check_format(name: str) -> str:
    from gpudoctor.pipeline import UsageError

    if name not in FORMATS:
        raise UsageError(f"--format {name}: not a format; choose one of {', '.join(FORMATS)}")
    return name


def deliver(run: Run, delivery: Delivery, stdout: Screen, stderr: Screen) -> int:
    """Write everything; the exit code: the run's decision, or 2 when a write failed."""
    failures: list[str] = []
    to_stdout = delivery.output in (None, "-")
    facts_to_stdout = delivery.save_facts == "-"

    def attempt(action: str, fn: object, *args: object) -> None:
        try:
            fn(*args)  # type: ignore[operator]
        except OutputError as exc:
            failures.append(str(exc) if action == "" else f"{action}: {exc}")

    if facts_to_stdout:
        attempt("--save-facts -", write_stdout, facts_document(run.report.facts, redact=delivery.redact))
    if to_stdout:
        screen = stderr if facts_to_stdout else stdout
        text = renderer(delivery.fmt)(run, RenderOptions(verbose=delivery.verbose, screen=screen))
        attempt("", _write_stderr if facts_to_stdout else write_stdout, text)
    else:
        assert delivery.output is not None
        from gpudoctor.render.screen import PLAIN

        text = renderer(delivery.fmt)(run, RenderOptions(verbose=delivery.verbose, screen=PLAIN))
        attempt("-o", write_file, text, delivery.output)
        if delivery.fmt != "text":  # the person reading the log still gets the report
            screen = stderr if facts_to_stdout else stdout
            shown = renderer("text")(run, RenderOptions(verbose=delivery.verbose, screen=screen))
            attempt("", _write_stderr if facts_to_stdout else write_stdout, shown)
    if delivery.save_facts is not None and not facts_to_stdout:
        path = delivery.save_facts
        try:
            write_file(facts_document(run.report.facts, redact=delivery.redact), path)
        except OutputError as exc:
            failures.append(f"--save-facts: {exc}")
        else:
            note = "redacted" if delivery.redact else "not redacted (--no-redact)"
            _note(f"gpudoctor: facts saved to {path} ({note}); replay with `gpudoctor check --facts {path}`")
    if delivery.env.get("GITHUB_ACTIONS") == "true" and delivery.annotations and delivery.fmt != "github":
        stdout_busy = (to_stdout and delivery.fmt in MACHINE_FORMATS) or facts_to_stdout
        annotations = renderer("github")(run, RenderOptions(extras={"annotations_only": "1"}))
        attempt("GitHub annotations", _write_stderr if stdout_busy else write_stdout, annotations)
    if delivery.env.get("GITHUB_ACTIONS") == "true" and delivery.annotations:
        summary_file = delivery.env.get("GITHUB_STEP_SUMMARY")
        if summary_file:
            attempt("$GITHUB_STEP_SUMMARY", _append, renderer("markdown")(run, RenderOptions()), summary_file)
    for failure in failures:
        _note(f"gpudoctor: error: {failure}")
    return 2 if failures else run.decision.exit_code


def facts_document(facts: Facts, *, redact: bool) -> str:
    from gpudoctor.render.json import dumps_facts

    return dumps_facts(facts, redact=redact) + "\n"


def _append(text: str, path: str) -> None:
    try:
        with Path(path).open("a", encoding="utf-8") as stream:
            stream.write(text)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _write_stderr(text: str) -> None:
    try:
        sys.stderr.write(text)
        sys.stderr.flush()
    except OSError as exc:
        raise OutputError(f"cannot write to standard error: {exc.strerror or exc}") from exc


def _note(line: str) -> None:
    try:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    except OSError:
        pass
