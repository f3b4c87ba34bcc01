"""The check pipeline, shared by every subcommand: gather facts → judge → decide the exit code.

    facts = gather(python=..., timeout=...)       # or load_facts(path) for a replay
    report = judge(facts, load_matrix(None), policy)
    decision = decide(report, policy)            # a pure function of the report and the policy

Nothing here prints: renderers in `render/` turn a `Run` into text, JSON, Markdown, JUnit or GitHub
annotations. Bad input from the user (a missing file, a broken facts file) raises `UsageError`,
which the CLI turns into one line and exit 2.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gpudoctor.policy import FRAMEWORKS, FailOn, Framework, Policy

__all__ = ["FRAMEWORKS", "FailOn", "Framework", "Policy"]

if TYPE_CHECKING:
    from gpudoctor.facts import Facts, ProbeStatus
    from gpudoctor.matrix import Matrix
    from gpudoctor.model import Report
    from gpudoctor.redact import Identity


class UsageError(Exception):
    """Bad input from the user (a missing file, a broken facts file): exit 2 with one clear line."""


@dataclass(frozen=True, kw_only=True)
class Origin:
    """Where the facts came from: probed live here, or replayed from a saved file."""

    kind: Literal["live", "replay"] = "live"
    path: str = ""  # the facts file of a replay


@dataclass(frozen=True, kw_only=True)
class Decision:
    """The exit code and why: 0 healthy, 1 failed (`reason` says because of what)."""

    exit_code: int
    reason: Literal["", "errors", "warnings", "no-gpu"] = ""

    @property
    def failed(self) -> bool:
        return self.exit_code != 0


@dataclass(frozen=True, kw_only=True)
class Run:
    """Everything a renderer needs: the report, the policy it was judged under, and the verdict."""

    report: Report
    policy: Policy
    decision: Decision
    origin: Origin = dataclasses.field(default_factory=Origin)
    matrix: Matrix | None = dataclasses.field(default=None, compare=False, repr=False)


def load_matrix(path: Path | str | None) -> Matrix:
    """The packaged matrix, or a matrix file (bounded and validated by `loading`)."""
    from gpudoctor.loading import UntrustedInputError, load_matrix_file

    try:
        return load_matrix_file(path or None)
    except UntrustedInputError as exc:
        raise UsageError(str(exc)) from exc


def load_facts(path: Path) -> Facts:
    """Facts saved by `--save-facts` or `collect`, or a whole `--json` report (bounded and validated
    by `loading`: one clear line for anything it refuses)."""
    from gpudoctor.facts import SCHEMA_VERSION
    from gpudoctor.loading import UntrustedInputError, load_facts_file

    try:
        facts = load_facts_file(path)
    except UntrustedInputError as exc:
        raise UsageError(str(exc)) from exc
    # An older schema lacks only fields that take their defaults: the facts are now of this schema.
    return dataclasses.replace(facts, schema_version=SCHEMA_VERSION)


ProgressCallback = Callable[[str, "ProbeStatus"], None]


def probe_names(only: Collection[str] | None = None) -> tuple[str, ...]:
    from gpudoctor.probes import PROBES

    return tuple(p.name for p in PROBES if only is None or p.name in only)


def gather(
    python: str | None,
    timeout: float,
    on_done: ProgressCallback | None = None,
    *,
    only: Collection[str] | None = None,
) -> Facts:
    """Probe this machine: every probe (or those named in `only`) concurrently, framework children
    under `timeout` seconds.

    When the entry point already started this very gather (`start_early`: every probe, same options,
    same environment and working directory), its result is taken instead of probing twice."""
    early = _take_early()
    if early is not None:
        if only is None and early.matches(python, timeout):
            return early.result(on_done)
        early.result(None)  # let it finish first: its end ends every child of this process
    try:
        cwd = str(Path.cwd())
    except OSError as exc:  # deleted, or no longer reachable: the children could not start there
        raise UsageError(
            "the working directory no longer exists: cd to a folder that does and run gpudoctor again"
        ) from exc
    return _gather_now(python, timeout, on_done, env=dict(os.environ), cwd=cwd, only=only)


def _gather_now(
    python: str | None,
    timeout: float,
    on_done: ProgressCallback | None,
    *,
    env: dict[str, str],
    cwd: str,
    only: Collection[str] | None = None,
) -> Facts:
    from gpudoctor.collect import collect
    from gpudoctor.probes import PROBES
    from gpudoctor.probes.base import ProbeContext
    from gpudoctor.runner import SubprocessRunner
    from gpudoctor.target import select_target

    target = select_target(python, env, cwd)
    if python:
        path = Path(target.python)
        if not path.exists():
            broken = path.is_symlink()
            raise UsageError(
                f"--python {python}: "
                + (
                    "a link to an interpreter that no longer exists (recreate the environment)"
                    if broken
                    else "no such interpreter"
                )
            )
        if path.is_dir() or not os.access(path, os.X_OK):
            raise UsageError(f"--python {python}: not an executable program")
    ctx = ProbeContext(runner=SubprocessRunner(), env=env, target=target, child_timeout=timeout)
    # Framework probes wait for the package survey (25 s at most), then run a child under --timeout;
    # no probe may outlast that.
    probes = tuple(
        dataclasses.replace(p, timeout=min(p.timeout, timeout + 30))
        for p in PROBES
        if only is None or p.name in only
    )
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return dataclasses.replace(collect(ctx, probes, on_done=on_done), collected_at=started)


class _EarlyGather:
    """A `gather` started by the entry point before the CLI was imported (see gpudoctor/entry.py)."""

    def __init__(self, python: str | None, timeout: float) -> None:
        self.python = python or None
        self.timeout = timeout
        self.env = dict(os.environ)
        self.cwd = str(Path.cwd())
        self._lock = threading.Lock()
        self._events: list[tuple[str, ProbeStatus]] = []
        self._forward: ProgressCallback | None = None
        self._facts: Facts | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gpudoctor-early", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._facts = _gather_now(self.python, self.timeout, self._done, env=self.env, cwd=self.cwd)
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that asks for the result
            self._error = exc

    def _done(self, name: str, status: ProbeStatus) -> None:
        with self._lock:  # events come in order, never two at once, also while the caller catches up
            if self._forward is None:
                self._events.append((name, status))
            else:
                self._forward(name, status)

    def matches(self, python: str | None, timeout: float) -> bool:
        try:
            cwd = str(Path.cwd())
        except OSError:
            return False
        return (python or None, timeout, cwd) == (self.python, self.timeout, self.cwd) and self.env == dict(
            os.environ
        )

    def result(self, on_done: ProgressCallback | None) -> Facts:
        with self._lock:
            if on_done is not None:
                for name, status in self._events:
                    on_done(name, status)
                self._forward = on_done
            self._events = []
        while self._thread.is_alive():
            self._thread.join(0.5)  # in slices: Ctrl-C is handled in this (the main) thread
        if self._error is not None:
            raise self._error
        if self._facts is None:
            raise RuntimeError("the early probe run ended without facts")
        return self._facts


_EARLY: list[_EarlyGather] = []


def start_early(python: str | None, timeout: float) -> None:
    """Start `gather(python, timeout)` in a thread now; the command's own `gather` call takes it over."""
    import gpudoctor.collect
    import gpudoctor.probes
    import gpudoctor.target  # noqa: F401 - imported here, before the thread, so the first child starts soonest

    try:
        _EARLY.append(_EarlyGather(python, timeout))
    except OSError:  # no working directory: the command reports it in its own way
        return


def _take_early() -> _EarlyGather | None:
    return _EARLY.pop() if _EARLY else None


def judge(facts: Facts, matrix: Matrix, policy: Policy | None = None) -> Report:
    """Run every rule over the facts; the policy adds what the caller required of the machine."""
    from gpudoctor.engine import diagnose
    from gpudoctor.policy import apply

    report = diagnose(facts, matrix)
    return apply(report, policy, matrix) if policy is not None else report


def decide(report: Report, policy: Policy) -> Decision:
    """The exit code, from the report and the policy alone."""
    from gpudoctor.model import Severity

    if report.count(Severity.ERROR):
        return Decision(exit_code=1, reason="errors")
    if policy.fail_on == "warning" and report.count(Severity.WARNING):
        return Decision(exit_code=1, reason="warnings")
    if policy.require_gpu and not report.has_usable_gpu:
        return Decision(exit_code=1, reason="no-gpu")
    return Decision(exit_code=0)


def check(
    *,
    facts: Facts,
    matrix: Matrix,
    policy: Policy,
    origin: Origin | None = None,
) -> Run:
    """Judge facts and decide: the whole pipeline after gathering."""
    report = judge(facts, matrix, policy)
    return Run(
        report=report,
        policy=policy,
        decision=decide(report, policy),
        origin=origin or Origin(),
        matrix=matrix,
    )


def shared(run: Run, identity: Identity | None = None) -> Run:
    """The run as it may be saved or shared (JSON, Markdown, JUnit, annotations, files): judged again
    over redacted facts, so messages and fixes carry no user, host, serial or secret either. Redaction
    keeps every finding (redact.py's promise, tested over every machine); the verdict stays the run's."""
    from gpudoctor.redact import redact_facts

    if run.matrix is None:
        raise ValueError("shared() needs a run made by pipeline.check")
    report = judge(redact_facts(run.report.facts, identity), run.matrix, run.policy)
    return dataclasses.replace(run, report=report)


def warm_up(formats: Collection[str] = ("text",)) -> None:
    """Import the rules and these formats' renderers; the CLI runs it in a thread while the probes
    wait on children (a renderer not named here is imported when it is used)."""
    import importlib

    import gpudoctor.engine  # noqa: F401
    from gpudoctor.render import FORMATS

    for name in dict.fromkeys(formats):
        if name in FORMATS:
            importlib.import_module(FORMATS[name].module)
