"""The one seam through which gpudoctor runs other programs.

Never `shell=True`; always a timeout; every failure (not found, no permission, timeout, crash by
signal) comes back as data. Nothing outlives gpudoctor: each program starts in a process group of
its own, tagged with `GPUDOCTOR_RUN` in its environment; a program that overruns is killed with its
whole group and every descendant that still carries the tag (a daemonised grandchild too), and
`end_all_children()` does the same for everything still running (at exit, on Ctrl-C, when a
probe's deadline passes). Output is read as it comes and capped: the head and the tail of each
stream are kept, with a line saying how much was cut, so memory stays bounded.
"""

from __future__ import annotations

import atexit
import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Literal, Protocol

RunError = Literal["not-found", "permission", "timeout", "os-error"]

HEAD_BYTES = 2 << 20  # kept from the start of each stream
TAIL_BYTES = 1 << 20  # kept from its end (where a child prints its result)
PIPE_GRACE = 1.0  # seconds to wait for the pipes to close once the program itself has exited
TAG = "GPUDOCTOR_RUN"  # environment variable every child (and its children) carries: "<our pid>:<scope>"


@dataclass(frozen=True, kw_only=True)
class CommandResult:
    argv: tuple[str, ...]
    returncode: int | None = None  # None when the program never ran or was killed by us
    stdout: str = ""
    stderr: str = ""
    error: RunError | None = None
    error_detail: str = ""
    seconds: float = 0.0
    stdout_cut: int = 0  # bytes of stdout dropped between the kept head and tail
    stderr_cut: int = 0

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


# --- every child this process started, so that none is left behind -----------------------------


@dataclass(eq=False)
class Scope:
    """The programs one probe runs: ended together when its deadline passes or gpudoctor stops."""

    name: str = "gpudoctor"
    deadline: float | None = None  # time.monotonic() after which nothing more is started
    ended: bool = False
    notes: list[str] = field(default_factory=list)  # e.g. that a program's output was cut
    _procs: set[subprocess.Popen[bytes]] = field(default_factory=set)
    _runs: int = 0
    _adopted: list[str] = field(default_factory=list)  # tags of prestarted programs handed to this scope

    @property
    def tag(self) -> str:
        return f"{os.getpid()}:{id(self):x}:{self.name}:"

    def next_tag(self) -> str:
        self._runs += 1
        return f"{self.tag}{self._runs}"

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def end(self, *, sweep: bool = True) -> None:
        """Kill every program of this scope, with its process group and (`sweep`) tagged descendants:
        a look through every process of the machine, left out where this scope started nothing."""
        with _LOCK:
            self.ended = True
            procs = list(self._procs)
        for proc in procs:
            _kill_group(proc)
        adopted = tuple(self._adopted)
        if sweep and (self._runs or adopted):
            _kill_tagged(lambda tag: tag.startswith(self.tag) or tag in adopted)


# Re-entrant: the Ctrl-C handler ends every child from the main thread, which may hold it (prestart spawns
# under it); a plain Lock deadlocked there.
_LOCK = threading.RLock()
_LOCAL = threading.local()
_SCOPES: set[Scope] = set()
_SWEEP_NEEDED = False  # a program was started since `end_all_children` last found none left
_DEFAULT_SCOPE = Scope()


def current_scope() -> Scope:
    scope: Scope | None = getattr(_LOCAL, "scope", None)
    return scope or _DEFAULT_SCOPE


def concurrently(calls: Sequence[Callable[[], object]]) -> None:
    """Make the calls at once, each in a thread of its own that runs its programs in the caller's
    scope (under its deadline, ended with it); returns when all have returned, raising the first
    exception one raised. For a probe whose programs do not depend on each other."""
    if len(calls) < 2:
        for call in calls:
            call()
        return
    owner = getattr(_LOCAL, "scope", None)
    errors: list[BaseException] = []

    def work(call: Callable[[], object]) -> None:
        _LOCAL.scope = owner
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,), name="gpudoctor-run", daemon=True) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


@contextmanager
def scope(name: str, deadline: float | None = None) -> Iterator[Scope]:
    """Run the body with its programs in a scope of their own (per thread); ended on the way out."""
    new = Scope(name=name, deadline=deadline)
    previous = getattr(_LOCAL, "scope", None)
    with _LOCK:
        _SCOPES.add(new)
    _LOCAL.scope = new
    try:
        yield new
    finally:
        _LOCAL.scope = previous
        # Its programs' groups now; a descendant that left its group is found by the next
        # `end_all_children` (one look through /proc for all scopes, not one per scope).
        new.end(sweep=False)
        with _LOCK:
            _SCOPES.discard(new)


def end_all_children() -> None:
    """End every program gpudoctor started that is still running, and their descendants (the look
    through /proc is left out when nothing was started since the last one found nothing left)."""
    global _SWEEP_NEEDED
    with _LOCK:
        scopes = [*_SCOPES, _DEFAULT_SCOPE]
        needed, _SWEEP_NEEDED = _SWEEP_NEEDED, False
    for each in scopes:
        with _LOCK:
            procs = list(each._procs)
        for proc in procs:
            _kill_group(proc)
    if not needed:
        return
    mine = f"{os.getpid()}:"
    if _kill_tagged(lambda tag: tag.startswith(mine)):
        with _LOCK:
            _SWEEP_NEEDED = True


atexit.register(end_all_children)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    if sys.platform == "win32":
        if proc.poll() is None:  # no process groups to signal: taskkill walks the tree of child processes
            with suppress(OSError, subprocess.SubprocessError):
                subprocess.run(
                    ["taskkill", "/F", "/T", "/PID", str(proc.pid)],
                    capture_output=True,
                    timeout=5,
                    check=False,
                )
            with suppress(OSError):
                proc.kill()
        return
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group outlives its leader: kill it even after exit
    except (ProcessLookupError, PermissionError, OSError):
        with suppress(OSError):
            proc.kill()


def tagged_processes() -> list[int]:
    """PIDs of live processes started by this gpudoctor, or started by those (Linux: read from /proc)."""
    mine = f"{os.getpid()}:"
    return _tagged(lambda tag: tag.startswith(mine))


def _tagged(wanted: Callable[[str], bool]) -> list[int]:
    found: list[int] = []
    if not sys.platform.startswith("linux"):
        return found
    needle = ("\0" + TAG + "=").encode()
    own = os.getpid()
    try:
        entries = [int(e) for e in os.listdir("/proc") if e.isdigit()]  # noqa: PTH208 - fast path
    except OSError:
        return found
    for pid in entries:
        if pid == own:
            continue
        try:
            fd = os.open(f"/proc/{pid}/environ", os.O_RDONLY)
        except OSError:
            continue
        try:
            environ = b"\0" + _read_all(fd)
        finally:
            os.close(fd)
        at = environ.find(needle)
        if at >= 0:
            value = environ[at + len(needle) : environ.find(b"\0", at + 1)]
            if wanted(value.decode("utf-8", "replace")):
                found.append(pid)
    return found


def _read_all(fd: int) -> bytes:
    chunks = []
    with suppress(OSError):
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    return b"".join(chunks)


def _kill_tagged(wanted: Callable[[str], bool], wait: float = 1.0) -> bool:
    """SIGKILL the tagged processes, and wait (a little) until they are gone; False when none is left."""
    for _ in range(3):  # a process may fork while we kill: look again
        pids = _tagged(wanted)
        if not pids:
            return False
        for pid in pids:
            with suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + wait / 3
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.01)
    return any(_alive(pid) for pid in _tagged(wanted))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] != ["Z"]  # a zombie has ended; its parent reaps it


# --- reading output with a cap -----------------------------------------------------------------


class _Capture:
    """Keeps the first `head` and the last `tail` bytes of a stream, and counts the rest."""

    def __init__(self, head: int, tail: int) -> None:
        self.head_limit = head
        self.tail_limit = tail
        self.head = bytearray()
        self.tail: collections.deque[bytes] = collections.deque()
        self.tail_size = 0
        self.total = 0

    def add(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if not chunk:
            return
        self.tail.append(chunk)
        self.tail_size += len(chunk)
        while self.tail and self.tail_size - len(self.tail[0]) >= self.tail_limit:
            self.tail_size -= len(self.tail.popleft())

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - min(self.tail_size, self.tail_limit)

    def text(self) -> str:
        tail = b"".join(self.tail)[-self.tail_limit :] if self.tail else b""
        if not self.cut:
            return _text(bytes(self.head) + tail)
        note = f"\n[gpudoctor: {self.cut} bytes of output cut here]\n"
        return _text(bytes(self.head)) + note + _text(tail)


def _reader(pipe: object, capture: _Capture) -> threading.Thread:
    def pump() -> None:
        fd = pipe.fileno()  # type: ignore[attr-defined]
        try:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                capture.add(chunk)
        except (OSError, ValueError):
            pass

    thread = threading.Thread(target=pump, name="gpudoctor-pipe", daemon=True)
    thread.start()
    return thread


def _spawn(
    args: tuple[str, ...], env: Mapping[str, str] | None, cwd: str | None, tag: str
) -> subprocess.Popen[bytes]:
    global _SWEEP_NEEDED
    child_env = dict(os.environ if env is None else env)
    child_env[TAG] = tag
    _SWEEP_NEEDED = True  # set before the start: a sweep under way may miss this one
    popen_kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        popen_kwargs["creationflags"] = subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.CREATE_NO_WINDOW
    else:
        popen_kwargs["start_new_session"] = True
    proc: subprocess.Popen[bytes] = subprocess.Popen(
        args,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env,
        cwd=cwd,
        **popen_kwargs,  # type: ignore[call-overload]
    )
    return proc


# --- programs started before anyone asked (gpudoctor/prestart.py) ---------------------------------

_PRESTART_SCOPE = Scope(name="prestart")
_Early = tuple[
    subprocess.Popen[bytes], str, float, _Capture, _Capture, list[threading.Thread]
]  # process, tag, started, stdout, stderr, readers
_PRESTARTED: dict[tuple[object, ...], _Early] = {}


def _key(argv: Sequence[str], env: Mapping[str, str] | None, cwd: str | None) -> tuple[object, ...]:
    return (tuple(argv), tuple(sorted((env if env is not None else os.environ).items())), cwd)


def prestart(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    head_bytes: int = HEAD_BYTES,
    tail_bytes: int = TAIL_BYTES,
) -> None:
    """Start a program now that a probe will ask `SubprocessRunner.run` for with exactly these argv,
    env and cwd; that call then takes it over (its output read from the start, its time counted from
    now). Until then it belongs to a scope of its own, ended with everything else by `end_all_children`.
    Failing to start is no error: the probe's own call then starts it and reports why it cannot."""
    args = tuple(argv)
    key = _key(args, env, cwd)
    with _LOCK:
        if key in _PRESTARTED or _PRESTART_SCOPE.ended:
            return
        _SCOPES.add(_PRESTART_SCOPE)
        tag = _PRESTART_SCOPE.next_tag()
        started = time.monotonic()
        try:
            proc = _spawn(args, env, cwd, tag)
        except OSError:
            return
        _PRESTART_SCOPE._procs.add(proc)
    out, err = _Capture(head_bytes, tail_bytes), _Capture(head_bytes, tail_bytes)
    readers = [_reader(proc.stdout, out), _reader(proc.stderr, err)]
    with _LOCK:
        _PRESTARTED[key] = (proc, tag, started, out, err, readers)


def _adopt(
    args: tuple[str, ...], env: Mapping[str, str] | None, cwd: str | None, owner: Scope
) -> _Early | None:
    """The prestarted program for this call, moved into the caller's scope; None when there is none."""
    if not _PRESTARTED:
        return None
    with _LOCK:
        early = _PRESTARTED.pop(_key(args, env, cwd), None)
        if early is None:
            return None
        proc, tag = early[0], early[1]
        _PRESTART_SCOPE._procs.discard(proc)
        owner._procs.add(proc)
        owner._adopted.append(tag)
    if owner.ended:  # the probe's time ran out meanwhile: end it as its own start would have been refused
        _kill_group(proc)
    return early


class SubprocessRunner:
    """Runs real programs."""

    def __init__(self, *, head_bytes: int = HEAD_BYTES, tail_bytes: int = TAIL_BYTES) -> None:
        self.head_bytes = head_bytes
        self.tail_bytes = tail_bytes

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        args = tuple(argv)
        owner = current_scope()
        left = owner.remaining()
        if owner.ended or (left is not None and left <= 0):
            return CommandResult(
                argv=args, error="timeout", error_detail="not started: the probe's time was up"
            )
        if left is not None:
            timeout = min(timeout, left)
        limit = timeout
        early = _adopt(args, env, cwd, owner)
        if early is not None:
            proc, tag, started, out, err, readers = early
            timeout = max(0.0, timeout - (time.monotonic() - started))  # it has been running since then
        else:
            started = time.monotonic()
            tag = owner.next_tag()
            try:
                with _LOCK:  # registered before anyone can end this scope; never started once it has ended
                    if owner.ended:
                        return CommandResult(
                            argv=args, error="timeout", error_detail="not started: the probe's time was up"
                        )
                    proc = _spawn(args, env, cwd, tag)
                    owner._procs.add(proc)
            except FileNotFoundError as exc:
                return CommandResult(argv=args, error="not-found", error_detail=str(exc))
            except PermissionError as exc:
                return CommandResult(argv=args, error="permission", error_detail=str(exc))
            except OSError as exc:
                return CommandResult(argv=args, error="os-error", error_detail=str(exc))
            out, err = _Capture(self.head_bytes, self.tail_bytes), _Capture(self.head_bytes, self.tail_bytes)
            readers = [_reader(proc.stdout, out), _reader(proc.stderr, err)]
        try:
            timed_out = not _wait(proc, readers, timeout)
            if timed_out or owner.ended:
                _kill_group(proc)
                _kill_tagged(lambda found: found == tag)
                proc.wait()
            elif not _join(readers, PIPE_GRACE):
                # The program has exited but something it started still holds the pipes open.
                _kill_group(proc)
                _kill_tagged(lambda found: found == tag)
            _join(readers, 2.0)
        finally:
            with _LOCK:
                owner._procs.discard(proc)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        seconds = time.monotonic() - started
        for stream, capture in (("stdout", out), ("stderr", err)):
            if capture.cut:
                owner.notes.append(
                    f"{Path(args[0]).name} printed {_size(capture.total)} on {stream}; its output was cut to "
                    f"the first {_size(self.head_bytes)} and the last {_size(self.tail_bytes)}"
                )
        result = CommandResult(
            argv=args,
            returncode=None if timed_out else proc.returncode,
            stdout=out.text(),
            stderr=err.text(),
            seconds=seconds,
            stdout_cut=out.cut,
            stderr_cut=err.cut,
        )
        if timed_out or (owner.ended and proc.returncode is not None and proc.returncode < 0):
            detail = f"timed out after {limit:g} s" if timed_out else "stopped: the probe's time was up"
            return dataclasses.replace(result, returncode=None, error="timeout", error_detail=detail)
        return result


def _wait(proc: subprocess.Popen[bytes], readers: list[threading.Thread], timeout: float) -> bool:
    """Wait until the program has exited (True) or `timeout` passes (False).

    A program's pipes close as it exits, which ends its reader threads: joining them wakes at once,
    where `Popen.wait(timeout)` sleeps in doubling steps of up to 50 ms between looks (a program done
    in 70 ms was seen done at 113 ms). A program that exits while something it started holds the
    pipes is still seen, by a look every 50 ms."""
    deadline = time.monotonic() + timeout
    for reader in readers:
        while reader.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return proc.poll() is not None
            reader.join(min(left, 0.05))
            if reader.is_alive() and proc.poll() is not None:
                return True
    try:
        proc.wait(timeout=max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        return False
    return True


def _join(threads: list[threading.Thread], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return not any(t.is_alive() for t in threads)


def _size(count: int) -> str:
    return f"{count / (1 << 20):.0f} MiB" if count >= 1 << 20 else f"{count} bytes"


def _text(data: bytes | None) -> str:
    return (data or b"").decode("utf-8", errors="replace")


def which(name: str, env: Mapping[str, str]) -> str | None:
    """`shutil.which` against the given environment's PATH (the user's, not ours). Outside Windows
    the same search is done here: importing shutil (with bz2 and lzma) cost a check 5 ms."""
    path = env.get("PATH", os.defpath)
    if sys.platform == "win32":
        import shutil  # PATHEXT, and the working directory first

        return shutil.which(name, path=path)
    if os.path.dirname(name):  # noqa: PTH120 - shutil.which's own test
        return name if _executable_file(name) else None
    if not path:
        return None
    seen: set[str] = set()
    for folder in path.split(os.pathsep):
        if folder not in seen:
            seen.add(folder)
            candidate = os.path.join(folder, name)  # noqa: PTH118 - shutil.which's own join
            if _executable_file(candidate):
                return candidate
    return None


def _executable_file(path: str) -> bool:
    return os.path.exists(path) and os.access(path, os.F_OK | os.X_OK) and not os.path.isdir(path)  # noqa: PTH110, PTH112


# --- Ctrl-C and termination ----------------------------------------------------------------------

INTERRUPT_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


def exit_cleanly_on_signals() -> None:
    """Ctrl-C, SIGTERM, SIGHUP: end every child, one line on stderr, exit 130 (128 + signal), no traceback.

    Installed by the command line's entry point; the Python default would either raise
    KeyboardInterrupt wherever the main thread is (typer turns it into a silent exit) or, for
    SIGTERM, die without ending the children, which run in sessions of their own.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    for name in INTERRUPT_SIGNALS:
        number = getattr(signal, name, None)
        if number is not None:
            with suppress(OSError, ValueError):
                signal.signal(number, _on_signal)


def _on_signal(number: int, _frame: FrameType | None) -> None:
    for name in INTERRUPT_SIGNALS:  # a second Ctrl-C while cleaning up must not interrupt the cleanup
        other = getattr(signal, name, None)
        if other is not None:
            signal.signal(other, signal.SIG_IGN)
    end_all_children()
    try:
        sys.stderr.write(
            "\ngpudoctor: interrupted\n" if number == signal.SIGINT else "\ngpudoctor: terminated\n"
        )
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    raise SystemExit(128 + number)
