"""What every probe is: a name, a collect function that returns facts, and a describe function.

A probe gathers facts and never judges them. It may run programs only through `ctx.runner`
and read the user's environment only through `ctx.env`, so tests can fake both.
"""

from __future__ import annotations

import json
import platform
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from gpudoctor.facts import TargetFacts
from gpudoctor.runner import Runner

F = TypeVar("F")
T = TypeVar("T")

Mark = Literal["ok", "warn", "fail", "none"]
MIN_CHILD_SECONDS = 1.0  # a child started late still gets this long


class Memo:
    """Values computed once per check and shared between probes running in parallel threads."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, Any] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self._values:
                self._values[key] = compute()
            value: T = self._values[key]
            return value


def load_json(text: str) -> Any:
    """json.loads for what a machine or a child wrote: any unparsable input (nesting too deep too) is ValueError."""
    try:
        return json.loads(text)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


class ProbeUnavailable(Exception):
    """Raised by a probe whose source is absent here (no conda, not Linux); the text says why."""


@dataclass(frozen=True, kw_only=True)
class ProbeContext:
    runner: Runner
    env: Mapping[str, str]
    target: TargetFacts
    child_timeout: float = 60.0  # seconds for one child process of the target interpreter
    nvml: Any = None  # an NVML module stand-in for tests; None means the real pynvml
    root: str = "/"  # where /proc, /sys, /dev, /etc, /usr are read from; tests point it at a fake tree
    system: str | None = None  # platform.system() override for tests ("Linux", "Windows", "Darwin")
    extras: Mapping[str, Any] = field(default_factory=dict)
    memo: Memo = field(default_factory=Memo, compare=False, repr=False)
    started: float = field(default_factory=time.monotonic, compare=False)  # when the check began

    def child_budget(self, wanted: float | None = None) -> float:
        """Seconds a child may run now: `wanted` (default child_timeout), within child_timeout of the start.

        A framework probe that first waits for the package survey gets what is left, so a hung
        import costs --timeout, not --timeout plus the wait.
        """
        left = self.child_timeout - (time.monotonic() - self.started)
        return max(MIN_CHILD_SECONDS, min(wanted or self.child_timeout, left))

    def path(self, absolute: str) -> Path:
        """An absolute system path, under the (possibly fake) root."""
        return Path(self.root) / absolute.lstrip("/")

    @property
    def os_name(self) -> str:
        return self.system or platform.system()

    @property
    def tool_env(self) -> dict[str, str]:
        """The environment for the system's own programs (dmesg, journalctl, systemctl, nvcc --version):
        the user's without LD_LIBRARY_PATH, which they do not use and which makes the loader search every
        folder on it for each of their libraries (hundreds of folders: a second per program), or break them.
        Framework children and nvidia-smi keep the user's environment: there it is what is diagnosed."""
        return {k: v for k, v in self.env.items() if k != "LD_LIBRARY_PATH"}


@dataclass(frozen=True, kw_only=True)
class Description:
    """How a probe's facts read on one line of the report, with optional detail lines for -v."""

    mark: Mark
    summary: str
    details: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Probe(Generic[F]):
    name: str  # the attribute of `Facts` this probe fills
    title: str  # shown in the report's left column
    collect: Callable[[ProbeContext], F]
    describe: Callable[[F], Description]
    timeout: float = 10.0  # wall-clock limit for the whole probe
