"""The one seam through which gpudoctor runs other programs.

Never `shell=True`; always a timeout; a child that hangs is killed with its whole process
group; every failure (not found, no permission, timeout, crash by signal) comes back as data.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

RunError = Literal["not-found", "permission", "timeout", "os-error"]


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None = None  # None when the program never ran or was killed by us
    stdout: str = ""
    stderr: str = ""
    error: RunError | None = None
    error_detail: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.returncode == 0

    @property
    def signal_name(self) -> str | None:
        """Name of the signal that killed the program (a segfault shows up as SIGSEGV)."""
        if self.returncode is None or self.returncode >= 0 or sys.platform == "win32":
            return None
        try:
            return signal.Signals(-self.returncode).name
        except ValueError:
            return f"signal {-self.returncode}"

    def describe_failure(self) -> str:
        """One line that says how the command failed, for a finding or a probe status."""
        name = Path(self.argv[0]).name if self.argv else "command"
        if self.error == "not-found":
            return f"{name} not found"
        if self.error == "timeout":
            return f"{name} did not finish within {self.seconds:.0f} s and was stopped"
        if self.error is not None:
            return f"{name} could not be started: {self.error_detail}"
        if self.signal_name:
            return f"{name} crashed ({self.signal_name})"
        tail = (self.stderr.strip() or self.stdout.strip()).splitlines()[-1:] or [""]
        return f"{name} exited with status {self.returncode}: {tail[0]}".rstrip(": ")


class Runner(Protocol):
    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult: ...


class SubprocessRunner:
    """Runs real programs."""

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        started = time.monotonic()
        popen_kwargs: dict[str, object] = {}
        if sys.platform == "win32":
            popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
        else:
            popen_kwargs["start_new_session"] = True
        try:
            proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                **popen_kwargs,  # type: ignore[call-overload]
            )
        except FileNotFoundError as exc:
            return CommandResult(argv=args, error="not-found", error_detail=str(exc))
        except PermissionError as exc:
            return CommandResult(argv=args, error="permission", error_detail=str(exc))
        except OSError as exc:
            return CommandResult(argv=args, error="os-error", error_detail=str(exc))
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc)
            out, err = _drain(proc)
            return CommandResult(
                argv=args,
                stdout=_text(out),
                stderr=_text(err),
                error="timeout",
                error_detail=f"timed out after {timeout:g} s",
                seconds=time.monotonic() - started,
            )
        return CommandResult(
            argv=args,
            returncode=proc.returncode,
            stdout=_text(out),
            stderr=_text(err),
            seconds=time.monotonic() - started,
        )


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    try:
        if sys.platform == "win32":
            proc.kill()
        else:
            os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        proc.kill()


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    try:
        return proc.communicate(timeout=2)
    except (subprocess.TimeoutExpired, ValueError, OSError):
        return b"", b""


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def which(name: str, env: Mapping[str, str]) -> str | None:
    """`shutil.which` against the given environment's PATH (the user's, not ours)."""
    return shutil.which(name, path=env.get("PATH", os.defpath))
