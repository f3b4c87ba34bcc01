"""Faults and hostile input planted on purpose, through the real CLI (issue #8: items 1, 5, 6, 8; #15 Ctrl-C).

Each run asserts: the exit code, that the report was printed, that the faulty part is named, that
there is no traceback, and that no process of gpudoctor's is left (`ps`, and the GPUDOCTOR_RUN tag
every child carries). The stand-in PyTorch misbehaves as `GD_FAULT` says: hang, daemon (a
grandchild that double-forks, calls setsid and keeps the pipes open), flood (300 MB on stderr), segv.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpudoctor.collect import collect
from gpudoctor.facts import EnvironmentFacts
from gpudoctor.probes.base import Description, Probe, ProbeContext
from gpudoctor.runner import TAG, SubprocessRunner, end_all_children, tagged_processes
from tests.conftest import make_ctx, write_executable
from tests.standin_nvml import build_standin_nvml, nvml_env
from tests.standins import install_standin, make_venv, site_packages

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="process checks read /proc and ps")

TORCH = """
import os, sys, time
fault = os.environ.get("GD_FAULT", "")
if "daemon" in fault:
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            time.sleep(600)  # still holds the inherited stdout and stderr
            os._exit(0)
        os._exit(0)
    os.wait()
if "hang" in fault:
    time.sleep(600)
if "flood" in fault:
    line = b"W torch/csrc/noise.cpp:1] the same warning, again and again\\n" * 16384
    for _ in range(300 * (1 << 20) // len(line)):
        sys.stderr.buffer.write(line)
    sys.stderr.flush()
if "segv" in fault:
    import signal
    os.kill(os.getpid(), signal.SIGSEGV)
__version__ = "2.3.1"
"""


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = make_venv(tmp_path_factory.mktemp("faults"))
    install_standin(site_packages(python), "torch", "2.3.1", "torch", TORCH)
    return python


def leftovers(marker: str, gpudoctor_pid: int) -> list[str]:
    """Processes still running that gpudoctor started: by `ps`, and by the tag in their environment."""
    ps = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True, check=True).stdout
    found = [line.strip()[:160] for line in ps.splitlines() if marker in line and "ps -eo" not in line]
    tag = f"{TAG}={gpudoctor_pid}:".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if tag in (entry / "environ").read_bytes():
                    found.append(f"{entry.name} (tagged)")
            except OSError:
                continue
    return found


class Cli:
    """`python -m gpudoctor ...` started in the background, as a user starts it in a terminal."""

    def __init__(
        self, *args: str, cwd: Path, fault: str = "", extra_env: dict[str, str] | None = None
    ) -> None:
        env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "GD_FAULT": fault, **(extra_env or {})}
        env.pop("GPUDOCTOR_DEBUG", None)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gpudoctor", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def finish(self, timeout: float = 120) -> tuple[int, str, str, float]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, err, time.monotonic() - self.started


def wait_for_process(marker: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ps = subprocess.run(["ps", "-eo", "args="], capture_output=True, text=True, check=True).stdout
        if sum(marker in line for line in ps.splitlines()) >= 2:  # the child and its daemonised grandchild
            return
        time.sleep(0.1)
    raise AssertionError(f"no process with {marker} started")


def assert_clean(out: str, err: str, marker: str, pid: int) -> None:
    assert "Traceback" not in out + err, err[-3000:]
    deadline = time.monotonic() + 5  # an ended process can take a moment to leave `ps` on a loaded machine
    while (left := leftovers(marker, pid)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []


@pytest.mark.parametrize(
    ("sig", "code", "said"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_ctrl_c_or_sigterm_ends_every_child_and_grandchild(
    venv: Path, tmp_path: Path, sig: signal.Signals, code: int, said: str
) -> None:
    cli = Cli("check", "--python", str(venv), cwd=tmp_path, fault="daemon,hang")
    wait_for_process(str(venv))
    cli.proc.send_signal(sig)
    rc, out, err, _ = cli.finish(timeout=30)
    assert rc == code
    assert err.strip().endswith(f"gpudoctor: {said}")
    assert_clean(out, err, str(venv), cli.proc.pid)


def test_a_hung_import_costs_the_timeout_and_the_rest_is_reported(venv: Path, tmp_path: Path) -> None:
    cli = Cli("check", "--timeout", "4", "--python", str(venv), cwd=tmp_path, fault="daemon,hang")
    rc, out, err, seconds = cli.finish()
    assert rc in (0, 1), err
    assert "PyTorch" in out and "did not finish within 4 s" in out
    assert "CUDA toolkit" in out and "Python packages" in out  # what the other probes found
    assert seconds < 4 + 20, "the hang cost more than its timeout (plus start-up on a busy machine)"
    assert_clean(out, err, str(venv), cli.proc.pid)


def test_a_grandchild_holding_the_pipes_does_not_hold_up_the_report(venv: Path, tmp_path: Path) -> None:
    cli = Cli("check", "--json", "--python", str(venv), cwd=tmp_path, fault="daemon")
    rc, out, err, seconds = cli.finish()
    assert rc in (0, 1), err
    torch = json.loads(out)["facts"]["torch"]
    assert torch["imported"] is True and torch["version"] == "2.3.1"
    assert seconds < 30, "waited for the grandchild's pipes"
    assert_clean(out, err, str(venv), cli.proc.pid)


def test_a_flood_of_output_is_capped_and_said_to_be_cut(venv: Path, tmp_path: Path) -> None:
    measure = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "sys.stdout.write(r.stdout)\n"
        "sys.stderr.write('maxrss_kib=%d' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "sys.exit(r.returncode)\n"
    )
    env = {**os.environ, "GD_FAULT": "flood"}
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            measure,
            sys.executable,
            "-m",
            "gpudoctor",
            "check",
            "--json",
            "--python",
            str(venv),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert ran.returncode in (0, 1), ran.stderr[-2000:]
    report = json.loads(ran.stdout)
    assert report["facts"]["torch"]["imported"] is True
    status = next(p for p in report["facts"]["probes"] if p["name"] == "torch")
    assert "cut" in status["detail"] and "stderr" in status["detail"]
    maxrss_mib = int(ran.stderr.rsplit("maxrss_kib=", 1)[1]) / 1024
    assert maxrss_mib < 200, f"300 MB of stderr cost {maxrss_mib:.0f} MiB"


def test_a_child_that_crashes_is_named_and_the_report_prints(venv: Path, tmp_path: Path) -> None:
    cli = Cli("check", "--python", str(venv), cwd=tmp_path, fault="segv")
    rc, out, err, _ = cli.finish()
    assert rc in (0, 1), err
    assert "PyTorch" in out and "SIGSEGV" in out
    assert_clean(out, err, str(venv), cli.proc.pid)


def test_nvml_crashing_in_init_is_a_finding_and_the_report_prints(venv: Path, tmp_path: Path) -> None:
    """Issue #8.4 (NVML out of process, the `hardware` helper's): a libnvidia-ml that segfaults in nvmlInit."""
    library = build_standin_nvml(tmp_path / "nvml")
    env = nvml_env(library, tmp_path / "spec.txt", {"init": "crash"})
    cli = Cli("check", "--python", str(venv), cwd=tmp_path, extra_env=env)
    rc, out, err, _ = cli.finish()
    assert rc in (0, 1), err
    assert "NVML crashed" in out and "GD121" in out
    assert "PyTorch 2.3.1" in out  # the rest of the report
    assert_clean(out, err, str(tmp_path / "nvml"), cli.proc.pid)


HOSTILE = ("json", "typing", "glob", "struct", "ctypes", "sysconfig", "email", "dataclasses", "pathlib",
           "threading", "queue", "subprocess", "yaml", "typer", "rich", "packaging", "torch", "tensorflow", "jax")  # fmt: skip


def test_nothing_from_the_working_directory_runs_in_gpudoctor_or_its_children(
    venv: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in HOSTILE:
        (work / f"{name}.py").write_text(f"open({str(witness / name)!r}, 'w').close()\n", encoding="utf-8")
    cli = Cli("check", "--python", str(venv), cwd=work, extra_env={"PYTHONPATH": ":."})
    rc, out, err, _ = cli.finish()
    assert rc in (0, 1), err
    assert sorted(p.name for p in witness.iterdir()) == []
    assert "PyTorch 2.3.1" in out  # the real (stand-in) package, not ./torch.py
    assert "GD405" in out and "torch.py" in out  # but the user is told ./torch.py shadows it for them
    assert_clean(out, err, str(venv), cli.proc.pid)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="python -P is new in 3.11")
def test_the_documented_safe_module_start_ignores_a_shadowing_stdlib_module(tmp_path: Path) -> None:
    """`python -m` imports collections/functools from the working directory before gpudoctor runs;
    the README's answer is `python -P -m gpudoctor` (or the `gpudoctor` command), which must hold."""
    witness = tmp_path / "witness"
    witness.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    for name in ("collections", "functools", "enum", "re", *HOSTILE):
        (work / f"{name}.py").write_text(f"open({str(witness / name)!r}, 'w').close()\n", encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-P", "-m", "gpudoctor", "--version"],
        check=False,
        cwd=work,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("gpudoctor ")
    assert sorted(p.name for p in witness.iterdir()) == []


# --- the same guarantees at the seam, without the CLI ---------------------------------------------


def _describe(_: object) -> Description:
    return Description(mark="ok", summary="")


@pytest.fixture
def no_leftovers() -> Iterator[None]:
    yield
    end_all_children()
    assert tagged_processes() == []


@pytest.mark.usefixtures("no_leftovers")
def test_a_probe_past_its_deadline_has_its_programs_ended_and_starts_no_more(bin_dir: Path) -> None:
    slow = write_executable(bin_dir, "nvidia-smi", sleep=30)
    runs: list[str] = []

    def three_slow_calls(ctx: ProbeContext) -> EnvironmentFacts:
        for _ in range(3):
            result = ctx.runner.run([str(slow)], timeout=4)
            runs.append(result.error_detail or "finished")
        return EnvironmentFacts()

    probe = Probe(name="driver", title="driver", collect=three_slow_calls, describe=_describe, timeout=1.0)
    facts = collect(make_ctx(), [probe])
    assert facts.probes[0].state == "timeout"
    assert tagged_processes() == []  # ended when the deadline passed, not 3 x 4 s later
    deadline = time.monotonic() + 10
    while len(runs) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stopped, not_started = "stopped: the probe's time was up", "not started: the probe's time was up"
    # The first call is cut at the deadline (by the scope, or by its own timeout clamped to the deadline).
    assert runs[0] in (stopped, not_started) or runs[0].startswith("timed out after 0.9")
    assert runs[1:] == [not_started] * 2


@pytest.mark.usefixtures("no_leftovers")
def test_output_is_capped_head_and_tail_with_a_note(bin_dir: Path) -> None:
    script = bin_dir / "chatty"
    script.write_text(
        "#!/bin/sh\necho FIRST\nhead -c 5000000 /dev/zero | tr '\\0' x\necho\necho LAST\n", encoding="utf-8"
    )
    script.chmod(0o755)
    result = SubprocessRunner(head_bytes=1000, tail_bytes=1000).run([str(script)], timeout=30)
    assert result.ok
    assert result.stdout.startswith("FIRST\n") and result.stdout.endswith("\nLAST\n")
    assert result.stdout_cut == 5000000 + 12 - 2000
    assert f"[gpudoctor: {result.stdout_cut} bytes of output cut here]" in result.stdout
    assert len(result.stdout) < 2100


@pytest.mark.usefixtures("no_leftovers")
def test_a_timeout_ends_a_grandchild_that_left_the_process_group(bin_dir: Path, tmp_path: Path) -> None:
    survived = tmp_path / "survived"
    script = bin_dir / "daemonizer"
    script.write_text(
        f"#!/bin/sh\nsetsid sh -c 'sleep 3; touch {survived}' > /dev/null 2>&1 < /dev/null &\nsleep 30\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    result = SubprocessRunner().run([str(script)], timeout=0.5)
    assert result.error == "timeout"
    assert tagged_processes() == []
    time.sleep(3.5)
    assert not survived.exists()


def test_interrupting_collect_ends_the_children(bin_dir: Path) -> None:
    slow = write_executable(bin_dir, "python", sleep=30)

    def hangs(ctx: ProbeContext) -> EnvironmentFacts:
        ctx.runner.run([str(slow)], timeout=30)
        return EnvironmentFacts()

    probe = Probe(name="torch", title="torch", collect=hangs, describe=_describe, timeout=30)

    def interrupt_soon() -> None:
        deadline = time.monotonic() + 10
        while not tagged_processes() and time.monotonic() < deadline:
            time.sleep(0.05)
        signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)

    threading.Thread(target=interrupt_soon, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        collect(make_ctx(), [probe])
    assert tagged_processes() == []
