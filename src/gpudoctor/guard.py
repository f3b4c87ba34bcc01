"""How the command line ends when something goes wrong: one line, exit 2, never a traceback.

Both ways a command runs go through `guarded`: typer's (`cli.main`) and the entry point's own
reading of a plain `gpudoctor check` (`checking`), which must end exactly as typer's would.
"""

from __future__ import annotations

import errno
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn


def fail(message: str) -> NoReturn:
    sys.stderr.write(f"gpudoctor: error: {message}\n")
    raise SystemExit(2)


def guarded(command: Callable[[], object]) -> None:
    """Run the command; its exit code, or bad usage and internal errors as one line and exit 2."""
    from gpudoctor.output import OutputError
    from gpudoctor.pipeline import UsageError
    from gpudoctor.runner import exit_cleanly_on_signals

    exit_cleanly_on_signals()  # Ctrl-C/SIGTERM: end every child, one line, exit 130/143 (typer would hide it)
    try:
        code = command()
    except (UsageError, OutputError) as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("gpudoctor: interrupted\n")
        raise SystemExit(130) from None
    except OSError as exc:
        if exc.errno != errno.EPIPE:
            _internal(exc)
        # The reader went away (`gpudoctor check | head`): exit 1 quietly, as click does.
        sys.stdout = Path(os.devnull).open("w", encoding="utf-8")  # noqa: SIM115 - the flush at exit must not fail
        raise SystemExit(1) from None
    except Exception as exc:  # noqa: BLE001 - never a traceback for the user
        _internal(exc)
    if isinstance(code, int):
        raise SystemExit(code)


def _internal(exc: Exception) -> NoReturn:
    if os.environ.get("GPUDOCTOR_DEBUG"):
        raise exc
    fail(f"internal error: {type(exc).__name__}: {exc} (set GPUDOCTOR_DEBUG=1 for the traceback)")
