"""The program's entry point (`gpudoctor` and `python -m gpudoctor`): probing starts before the CLI loads.

A live `check` or `collect` spends most of its time waiting for child processes (the package
survey, the CUDA-library search, NVML, the framework imports). They do not depend on anything the
CLI imports (typer, rich, the matrix, the rules, the renderers), so this module reads the few
options that decide what is probed (`--python`, `--timeout`) straight from argv, starts
`pipeline.gather` in a thread at once, and only then loads the CLI. `pipeline.gather`, called by
the command with the options typer parsed, adopts that early run when they agree (and runs afresh
otherwise), so behaviour is that of the command alone. Anything this reader does not understand
(an unknown option, `--help`, `--facts`) means no early start. A plain `check` is then run
without typer at all (`checking`); every other command line goes to the typer CLI.

At the end the output is flushed and the process leaves with `os._exit`: the children are ended
first, and the interpreter's teardown (freeing every module and object) is skipped.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpudoctor.checking import CheckOptions

# Options of `collect` that take a value, and those that do not (keep in step with
# commands/collect.py; an option missing here only means no early start). `check` is read by
# `checking.options_from_argv`, which also runs it without typer.
_COLLECT_VALUED = frozenset({"--output", "-o", "--python", "--timeout"})
_COLLECT_FLAGS = frozenset({"--no-redact"})
DEFAULT_TIMEOUT = 60.0


def probing_options(argv: Sequence[str]) -> tuple[str | None, float] | None:
    """(--python, --timeout) of a live `check`/`collect` command line; None for anything else."""
    from gpudoctor.checking import options_from_argv

    return _probing(argv, options_from_argv(argv))


def _probing(argv: Sequence[str], check: CheckOptions | None) -> tuple[str | None, float] | None:
    """`probing_options`, given what `checking.options_from_argv` read from the same argv."""
    if argv[:1] == ["check"]:
        if check is None or check.facts_file is not None:  # a replay probes nothing
            return None
        return check.python, check.timeout
    if argv[:1] != ["collect"]:
        return None
    rest = list(argv[1:])
    values: dict[str, str] = {}
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=") if arg.startswith("--") else (arg, "", "")
        if name in _COLLECT_FLAGS and not eq:
            continue
        if name not in _COLLECT_VALUED:
            return None  # an argument, --help, an unknown or combined option: let typer decide
        if not eq:
            if not rest:
                return None
            value = rest.pop(0)
        values[name] = value
    try:
        timeout = float(values.get("--timeout", DEFAULT_TIMEOUT))
    except ValueError:
        return None
    if not timeout >= 1:  # typer refuses it (min=1); NaN too
        return None
    return values.get("--python") or None, timeout


def main() -> None:
    _stand_in_for_closed_streams()
    _leave_at_once_on_signals()  # until the runner's handlers are in place
    from gpudoctor.runner import exit_cleanly_on_signals

    exit_cleanly_on_signals()
    try:  # a Ctrl-C while the children start leaves the same way as any other exit
        from gpudoctor.checking import options_from_argv

        argv = sys.argv[1:]
        check = options_from_argv(argv)  # None unless a plain `gpudoctor check`
        options = _probing(argv, check)
        if options is not None:
            from gpudoctor import prestart

            prestart.start(options[0])  # the slow children first (a framework import takes seconds)
        from gpudoctor import codecache

        codecache.install()  # before the dataclasses of everything below are made
        if options is not None:
            from gpudoctor import pipeline

            pipeline.start_early(*options)
        if check is not None:  # a plain `gpudoctor check`: run without loading typer
            from gpudoctor.checking import run
            from gpudoctor.guard import guarded

            guarded(lambda: run(check))
        else:
            from gpudoctor.cli import main as cli_main

            cli_main()
        code: object = 0
    except SystemExit as exc:
        code = exc.code
    leave(code)


class _ClosedStream(io.TextIOBase):
    """Stands for a standard stream that was closed before gpudoctor started (`gpudoctor check >&-`),
    which Python leaves as None: writing to stdout fails with one line on stderr and exit 2, whoever
    writes (the report, typer's --help), and writing to a closed stderr, where no one reads, does nothing."""

    def __init__(self, *, fail: bool) -> None:
        super().__init__()
        self._fail = fail

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        if self._fail:
            from gpudoctor.output import OutputError

            raise OutputError("cannot write to standard output: it was closed when gpudoctor started")
        return len(text)


def _stand_in_for_closed_streams() -> None:
    if sys.stdout is None:
        sys.stdout = _ClosedStream(fail=True)
    if sys.stderr is None:
        sys.stderr = _ClosedStream(fail=False)


def _leave_at_once_on_signals() -> None:
    """Ctrl-C, SIGTERM, SIGHUP before any child is started: the runner's one line and exit code, no
    traceback from whichever import was under way."""
    import signal

    def leave_now(number: int, _frame: object) -> None:
        os.write(
            2, b"\ngpudoctor: interrupted\n" if number == signal.SIGINT else b"\ngpudoctor: terminated\n"
        )
        os._exit(128 + number)

    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        number = getattr(signal, name, None)
        if number is not None:
            try:
                signal.signal(number, leave_now)
            except (OSError, ValueError):  # not the main thread, or a signal this platform refuses
                continue


def leave(code: object) -> None:
    """Flush, end the children, and exit without the interpreter's teardown. A failed flush takes
    Python's own way out, which reports it as it always did."""
    from gpudoctor import codecache
    from gpudoctor.runner import end_all_children

    codecache.save()
    if sys.gettrace() is not None or sys.getprofile() is not None:
        raise SystemExit(code)  # a profiler or coverage writes its data at a normal exit
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        raise SystemExit(code) from None
    end_all_children()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # SystemExit("message"): Python prints it and exits 1
        sys.stderr.write(f"{code}\n")
        sys.stderr.flush()
        status = 1
    os._exit(status & 0xFF)
