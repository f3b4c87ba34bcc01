"""Deliver a judged run: the report in its format to stdout or `-o FILE`, the saved facts, and the
GitHub Actions extras (annotations and the step summary), in an order that never loses the report.

A write that fails (a full disk, a missing folder) is remembered, the rest is still written, and
each failure becomes one line on stderr after the report; the exit code is then 2.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
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
    """Write everything; the exit code: the run's decision, or 2 when a write failed.

    The text report on stdout is for the person at the terminal (home folder shortened, nothing else
    hidden); everything saved or shared (other formats, -o files, annotations, the step summary, saved
    facts) is rendered from the redacted run unless --no-redact.
    """
    from gpudoctor.pipeline import shared
    from gpudoctor.render.screen import PLAIN

    failures: list[str] = []
    to_stdout = delivery.output in (None, "-")
    facts_to_stdout = delivery.save_facts == "-"
    github = delivery.env.get("GITHUB_ACTIONS") == "true" and delivery.annotations
    public: list[Run] = []

    def public_run() -> Run:
        if not public:
            public.append(shared(run) if delivery.redact else run)
        return public[0]

    def attempt(action: str, write: Callable[[str], None], text: str) -> None:
        try:
            write(text)
        except OutputError as exc:
            failures.append(f"{action}: {exc}" if action else str(exc))

    def render(fmt: str, screen: Screen, *, for_person: bool = False, **extras: str) -> str:
        """`for_person`: the text report on the terminal (or its pipe); all else is shared."""
        source = run if for_person else public_run()
        return renderer(fmt)(source, RenderOptions(verbose=delivery.verbose, screen=screen, extras=extras))

    person = _write_stderr if facts_to_stdout else write_stdout  # where the text for a person goes
    person_screen = stderr if facts_to_stdout else stdout
    if facts_to_stdout:
        attempt("--save-facts -", write_stdout, facts_document(run.report.facts, redact=delivery.redact))
    if to_stdout:
        text_report = delivery.fmt == "text"
        attempt(
            "", person, render(delivery.fmt, person_screen if text_report else PLAIN, for_person=text_report)
        )
    else:
        assert delivery.output is not None
        path = delivery.output
        attempt("-o", lambda text: write_file(text, path), render(delivery.fmt, PLAIN))
        if delivery.fmt != "text":  # the person reading the log still gets the report
            attempt("", person, render("text", person_screen, for_person=True))
    if delivery.save_facts is not None and not facts_to_stdout:
        path = delivery.save_facts
        try:
            write_file(facts_document(run.report.facts, redact=delivery.redact), path)
        except OutputError as exc:
            failures.append(f"--save-facts: {exc}")
        else:
            note = "redacted" if delivery.redact else "not redacted (--no-redact)"
            _note(f"gpudoctor: facts saved to {path} ({note}); replay with `gpudoctor check --facts {path}`")
    if github and delivery.fmt != "github":
        stdout_busy = (to_stdout and delivery.fmt in MACHINE_FORMATS) or facts_to_stdout
        annotations = render("github", PLAIN, annotations_only="1")
        attempt("GitHub annotations", _write_stderr if stdout_busy else write_stdout, annotations)
    summary_file = delivery.env.get("GITHUB_STEP_SUMMARY") if github else None
    if summary_file:
        attempt("$GITHUB_STEP_SUMMARY", lambda text: _append(text, summary_file), render("markdown", PLAIN))
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
