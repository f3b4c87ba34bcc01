"""Shared test helpers: fake programs on PATH, probe contexts over a fake filesystem root, child scripts.

`fake_program(bin_dir, "nvidia-smi", FakeCall(("--query-gpu=...", "--format=csv,noheader,nounits"),
stdout=OUTPUTS / "nvidia-smi-query-1gpu.csv"), FakeCall((), stdout=...))` writes a program that
answers each expected argv with its recorded output; any other argv makes it exit 97 and fails the
test at teardown, even when the probe under test treats the failure as a fact. `write_executable`
is for programs whose argv does not matter (a hanging interpreter, a crash).
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import types
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import pytest

from gpudoctor.facts import TargetFacts
from gpudoctor.prestart import script_source
from gpudoctor.probes.base import ProbeContext
from gpudoctor.runner import CommandResult, SubprocessRunner

# The matrix cache (gpudoctor/matrix_cache.py) goes to a folder of this test session, never the
# user's ~/.cache; tests of the cache itself point GPUDOCTOR_CACHE_DIR elsewhere.
if "GPUDOCTOR_CACHE_DIR" not in os.environ:
    import tempfile

    os.environ["GPUDOCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="gpudoctor-test-cache-")

OUTPUTS = Path(__file__).parent / "outputs"
MACHINES = Path(__file__).parent / "machines"


class RecordingRunner:
    """A runner that records each call, (argv, env, cwd), and answers every program with one result
    (by default: exited 1, printed nothing)."""

    def __init__(self, result: CommandResult | None = None) -> None:
        self.result = result or CommandResult(argv=(), returncode=1)
        self.asked: list[tuple[tuple[str, ...], dict[str, str] | None, str | None]] = []

    def run(
        self,
        argv: Sequence[str],
        *,
        timeout: float,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
    ) -> CommandResult:
        self.asked.append((tuple(argv), dict(env) if env is not None else None, cwd))
        return replace(self.result, argv=tuple(argv))


def write_executable(
    bin_dir: Path,
    name: str,
    *,
    stdout: str = "",
    stderr: str = "",
    exit_code: int = 0,
    sleep: float = 0.0,
    signal: str | None = None,
) -> Path:
    """A fake program on PATH that prints recorded output (a POSIX shell script)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    out_file = bin_dir / f".{name}.stdout"
    err_file = bin_dir / f".{name}.stderr"
    out_file.write_text(stdout, encoding="utf-8")
    err_file.write_text(stderr, encoding="utf-8")
    lines = ["#!/bin/sh"]
    if sleep:
        lines.append(f"sleep {sleep}")
    lines += [f"cat '{out_file}'", f"cat '{err_file}' >&2"]
    if signal:
        lines.append(f"kill -{signal} $$")
    lines.append(f"exit {exit_code}")
    path = bin_dir / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


UNEXPECTED_EXIT = 97


@dataclass(frozen=True, kw_only=True)
class FakeCall:
    """One expected invocation of a fake program and what it answers."""

    argv: tuple[str, ...] | None  # the arguments after the program name, exactly; None: any arguments
    stdout: str | Path = ""  # text, or a recorded real output under tests/outputs/
    stderr: str | Path = ""
    exit_code: int = 0
    sleep: float = 0.0  # seconds before answering (a hang, with a large value)
    signal: str | None = None  # e.g. "SEGV": after printing, the program kills itself with it


def _text(value: str | Path) -> str:
    return value.read_text(encoding="utf-8") if isinstance(value, Path) else value


@dataclass(frozen=True)
class FakeProgram:
    path: Path
    log: Path
    unexpected_log: Path

    def __str__(self) -> str:
        return str(self.path)

    def __fspath__(self) -> str:
        return str(self.path)

    def calls(self) -> list[tuple[str, ...]]:
        """Every argv the program was run with, in order."""
        if not self.log.exists():
            return []
        return [tuple(json.loads(line)) for line in self.log.read_text(encoding="utf-8").splitlines()]

    def unexpected(self) -> list[tuple[str, ...]]:
        if not self.unexpected_log.exists():
            return []
        lines = self.unexpected_log.read_text(encoding="utf-8").splitlines()
        return [tuple(json.loads(line)) for line in lines]


_FAKE_SCRIPT = """#!{python} -IS
import json, os, signal, sys, time
SPEC = {spec!r}
with open(SPEC, encoding="utf-8") as handle:
    spec = json.load(handle)
args = sys.argv[1:]
with open(spec["log"], "a", encoding="utf-8") as log:
    log.write(json.dumps(args) + "\\n")
for call in spec["calls"]:
    if call["argv"] is None or call["argv"] == args:
        break
else:
    with open(spec["unexpected"], "a", encoding="utf-8") as log:
        log.write(json.dumps(args) + "\\n")
    expected = "\\n  ".join(" ".join(c["argv"]) for c in spec["calls"] if c["argv"] is not None)
    sys.stderr.write("fake %s: unexpected argv %r; expected one of:\\n  %s\\n" % (spec["name"], args, expected))
    sys.exit({unexpected})
if call["sleep"]:
    time.sleep(call["sleep"])
sys.stdout.write(call["stdout"])
sys.stdout.flush()
sys.stderr.write(call["stderr"])
sys.stderr.flush()
if call["signal"]:
    os.kill(os.getpid(), getattr(signal, "SIG" + call["signal"]))
sys.exit(call["exit_code"])
"""

_FAKES: list[FakeProgram] = []


def fake_program(bin_dir: Path, name: str, *calls: FakeCall) -> FakeProgram:
    """A program on PATH that checks its argv against `calls` and answers with the matching one.

    The first call whose argv equals the arguments answers (argv=None matches any). Every run is
    logged (`.calls()`); an argv no call expects exits 97 with the expected list on stderr and
    fails the test at teardown.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    program = FakeProgram(
        path=bin_dir / name, log=bin_dir / f".{name}.calls", unexpected_log=bin_dir / f".{name}.unexpected"
    )
    spec_file = bin_dir / f".{name}.fake.json"
    spec = {
        "name": name,
        "log": str(program.log),
        "unexpected": str(program.unexpected_log),
        "calls": [
            {
                **asdict(call),
                "argv": list(call.argv) if call.argv is not None else None,
                "stdout": _text(call.stdout),
                "stderr": _text(call.stderr),
            }
            for call in calls
        ],
    }
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    program.path.write_text(
        _FAKE_SCRIPT.format(python=sys.executable, spec=str(spec_file), unexpected=UNEXPECTED_EXIT),
        encoding="utf-8",
    )
    program.path.chmod(program.path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    _FAKES.append(program)
    return program


@pytest.fixture(autouse=True)
def _fake_programs_saw_only_expected_argv() -> Iterator[None]:
    _FAKES.clear()
    yield
    wrong = [(p.path.name, argv) for p in _FAKES for argv in p.unexpected()]
    _FAKES.clear()
    if wrong:
        pytest.fail(f"fake programs were run with unexpected arguments: {wrong}", pytrace=False)


def load_child(name: str) -> types.ModuleType:
    """A child script (prelude included, exactly as the child runs it) as a module, without running main()."""
    module = types.ModuleType(f"gpudoctor_child_{name}")
    exec(compile(script_source(name), f"<gpudoctor child {name}>", "exec"), module.__dict__)  # noqa: S102
    return module


def make_ctx(
    *,
    env: Mapping[str, str] | None = None,
    root: Path | str = "/",
    python: str | None = None,
    cwd: Path | str | None = None,
    nvml: object = None,
    system: str | None = None,
    child_timeout: float = 60.0,
) -> ProbeContext:
    base_env = {"PATH": os.defpath, "HOME": os.environ.get("HOME", "/root")}
    if env is not None:
        base_env.update(env)
    target = TargetFacts(python=python or sys.executable, selected_by="--python", cwd=str(cwd or Path.cwd()))
    return ProbeContext(
        runner=SubprocessRunner(),
        env=base_env,
        target=target,
        child_timeout=child_timeout,
        nvml=nvml,
        root=str(root),
        system=system,
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


_MODULES_AT_EXIT = """
import json, os, sys
out, sys.argv = sys.argv[1], ["gpudoctor", *sys.argv[2:]]
_exit = os._exit
def _leave(code):
    with open(out, "w") as handle:
        json.dump(sorted(sys.modules), handle)
    _exit(code)
os._exit = _leave
from gpudoctor.entry import main
main()
"""


def modules_imported_by(tmp_path: Path, *args: str) -> tuple[set[str], subprocess.CompletedProcess[str]]:
    """The modules a `gpudoctor ARGS` run (the real entry point, in a child process) had imported when it
    left, with its result. `-X importtime` cannot say: it misses what importlib.import_module imports."""
    out = tmp_path / "modules.json"
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AT_EXIT, str(out), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    return set(json.loads(out.read_text(encoding="utf-8"))), done
