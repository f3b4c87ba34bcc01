"""The command seam: timeouts kill the whole process group; failures come back as data."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from gpudoctor import runner
from gpudoctor.runner import SubprocessRunner, which
from tests.conftest import write_executable


def test_ok_output(bin_dir: Path) -> None:
    exe = write_executable(bin_dir, "tool", stdout="hello\n", stderr="warn\n")
    result = SubprocessRunner().run([str(exe)], timeout=5)
    assert result.ok
    assert result.stdout == "hello\n"
    assert result.stderr == "warn\n"


def test_not_found() -> None:
    result = SubprocessRunner().run(["/nonexistent/tool"], timeout=5)
    assert result.error == "not-found"
    assert not result.ok
    assert result.describe_failure() == "tool not found"


def test_nonzero_exit_names_the_last_error_line(bin_dir: Path) -> None:
    exe = write_executable(bin_dir, "tool", stderr="first\nNVIDIA-SMI has failed\n", exit_code=9)
    result = SubprocessRunner().run([str(exe)], timeout=5)
    assert result.returncode == 9
    assert result.describe_failure() == "tool exited with status 9: NVIDIA-SMI has failed"


def test_timeout_kills_the_process_group(bin_dir: Path, tmp_path: Path) -> None:
    marker = tmp_path / "child-survived"
    script = bin_dir / "spawner"
    script.write_text(f"#!/bin/sh\n(sleep 3; touch '{marker}') &\nsleep 30\n", encoding="utf-8")
    script.chmod(0o755)
    started = time.monotonic()
    result = SubprocessRunner().run([str(script)], timeout=0.5)
    assert result.error == "timeout"
    assert time.monotonic() - started < 5
    time.sleep(3.5)
    assert not marker.exists(), "the grandchild outlived the timeout"


def test_crash_by_signal(bin_dir: Path) -> None:
    exe = write_executable(bin_dir, "tool", signal="SEGV")
    result = SubprocessRunner().run([str(exe)], timeout=5)
    assert result.signal_name == "SIGSEGV"
    assert "crashed (SIGSEGV)" in result.describe_failure()


def test_undecodable_output_is_replaced_not_raised(bin_dir: Path) -> None:
    exe = bin_dir / "binary"
    exe.write_text("#!/bin/sh\nprintf '\\377\\376ok'\n", encoding="utf-8")
    exe.chmod(0o755)
    result = SubprocessRunner().run([str(exe)], timeout=5)
    assert result.ok
    assert result.stdout.endswith("ok")


def test_which_uses_the_given_path(bin_dir: Path) -> None:
    write_executable(bin_dir, "nvcc")
    assert which("nvcc", {"PATH": str(bin_dir)}) == str(bin_dir / "nvcc")
    assert which("nvcc", {"PATH": "/nonexistent"}) is None


def test_ending_every_child_works_from_the_thread_that_holds_the_runner_lock() -> None:
    """A Ctrl-C runs its handler in the main thread wherever it is, also while prestart spawns a child
    under the runner's lock: ending every child then must not wait for that lock (it deadlocked)."""
    done = threading.Event()

    def interrupted_while_spawning() -> None:
        with runner._LOCK:
            runner.end_all_children()
            done.set()

    worker = threading.Thread(target=interrupted_while_spawning, daemon=True)
    worker.start()
    worker.join(10)
    assert done.is_set()


@pytest.mark.skipif(sys.platform == "win32", reason="Windows keeps shutil.which (PATHEXT)")
def test_which_finds_what_shutil_which_finds(tmp_path: Path) -> None:
    import random
    import shutil

    for folder, executable in (("x", "ab"), ("y", "b"), ("z", "abc")):
        (tmp_path / folder / "d").mkdir(parents=True)  # a folder where a program could be
        for name in ("a", "b", "c"):
            program = tmp_path / folder / name
            program.write_text("#!/bin/sh\n", encoding="utf-8")
            program.chmod(0o755 if name in executable else 0o644)
    choices = [str(tmp_path / f) for f in ("x", "y", "z", "x/", "missing")] + [""]
    rng = random.Random(12)
    for _ in range(300):
        path = os.pathsep.join(rng.choice(choices) for _ in range(rng.randint(0, 4)))
        for name in (
            "a",
            "b",
            "c",
            "d",
            "nothing",
            str(tmp_path / "x" / "a"),
            str(tmp_path / "y" / "a"),
            "x/a",
        ):
            assert which(name, {"PATH": path}) == shutil.which(name, path=path), (name, path)
    assert which("sh", {}) == shutil.which("sh", path=os.defpath)


def test_calls_made_at_once_run_their_programs_in_the_callers_scope(tmp_path: Path) -> None:
    """Programs started by `concurrently`'s threads belong to the caller's scope: its deadline cuts
    them, and nothing is left running when the scope is left."""
    sleeper = write_executable(tmp_path, "sleeper", sleep=30)
    results: list[runner.CommandResult] = []
    started = time.monotonic()
    with runner.scope("probe", deadline=time.monotonic() + 1.0):
        runner.concurrently(
            [lambda: results.append(SubprocessRunner().run([str(sleeper)], timeout=60)) for _ in range(3)]
        )
    assert time.monotonic() - started < 20
    assert [r.error for r in results] == ["timeout"] * 3
    runner.end_all_children()
    assert runner.tagged_processes() == []


def test_an_exception_in_one_call_is_raised_in_the_caller() -> None:
    def fails() -> None:
        raise ValueError("in a worker")

    done: list[int] = []
    with pytest.raises(ValueError, match="in a worker"):
        runner.concurrently([lambda: done.append(1), fails])
    assert done == [1]
