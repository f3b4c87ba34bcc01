"""A real one-node Slurm cluster in a temporary folder: munged, slurmctld and slurmd from Debian's packages.

Every daemon runs in the foreground as a child of the test, in its own process group, with its
config, state, sockets and logs under the folder and ports picked free, so it touches nothing of
the machine's own Slurm or munge. `stop()` ends exactly those process groups. The node offers one
`gpu` GRES (a count, no device file), so that a script's `--gpus-per-node=1` is scheduled as on a
GPU cluster.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "srun", "sinfo", "scontrol")
PACKAGES = ("slurm-wlm", "munge")


def _missing() -> list[str]:
    return [
        name for name in DAEMONS if not shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    ]


def ensure_installed() -> None:
    """Install Debian's slurm-wlm and munge if they are absent; skip the test when that cannot be done."""
    if not _missing():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip(
            f"Slurm is not installed ({', '.join(_missing())} missing) and apt-get cannot be run as root"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES],
    ):
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=600, env=env, check=False)
        except subprocess.TimeoutExpired:
            pytest.skip(f"{' '.join(argv)} did not finish within 10 minutes")
        if done.returncode != 0:
            pytest.skip(
                f"{' '.join(argv)} failed: {done.stderr.strip().splitlines()[-1:] or done.returncode}"
            )
    if _missing():
        pytest.skip(f"installed {', '.join(PACKAGES)} but {', '.join(_missing())} still missing")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _program(name: str) -> str:
    found = shutil.which(name, path=f"{os.environ.get('PATH', '')}:/usr/sbin")
    assert found, name
    return found


class SlurmCluster:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.conf = root / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self._daemons: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.node = ""

    def _start(self, name: str, argv: list[str]) -> None:
        log = (self.root / "log" / f"{name}.out").open("wb")
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )
        log.close()
        self._daemons.append((name, process))

    def logs(self) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace")
            parts.append(f"--- {path.name}\n{text[-3000:]}")
        return "\n".join(parts)

    def start(self) -> None:
        for folder in ("munge", "state", "spool", "log"):
            (self.root / folder).mkdir(mode=0o700, parents=True, exist_ok=True)
        munge = self.root / "munge"
        key = munge / "munge.key"
        subprocess.run([_program("mungekey"), "--create", f"--keyfile={key}"], check=True, timeout=30)
        munge_socket = munge / "munge.socket"
        self._start(
            "munged",
            [
                _program("munged"),
                "--foreground",
                "--force",
                f"--key-file={key}",
                f"--socket={munge_socket}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._wait(munge_socket.exists, 20, "munged did not create its socket")
        # The node line slurmd itself detects, with less memory than it has so that it never drains.
        detected = subprocess.run(
            [_program("slurmd"), "-C"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()[0]
        fields = dict(item.split("=", 1) for item in detected.split())
        self.node = fields["NodeName"]
        fields["RealMemory"] = str(min(1000, int(fields.get("RealMemory", "1000"))))
        node_line = " ".join(f"{k}={v}" for k, v in fields.items())
        root = self.root
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=gpudoctor-test",
                    f"SlurmctldHost={self.node}",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={munge_socket}",
                    f"StateSaveLocation={root / 'state'}",
                    f"SlurmdSpoolDir={root / 'spool'}",
                    f"SlurmctldPidFile={root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core",
                    "JobAcctGatherType=jobacct_gather/none",
                    "AccountingStorageType=accounting_storage/none",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "MailProg=/bin/true",
                    "ReturnToService=2",
                    "GresTypes=gpu",
                    f"{node_line} Gres=gpu:1 State=UNKNOWN",
                    "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        (root / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n", encoding="utf-8")
        self._start("slurmctld", [_program("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._run("scontrol", "ping").returncode == 0, 30, "slurmctld did not answer")
        self._start("slurmd", [_program("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(
            lambda: self._run("sinfo", "-h", "-o", "%t").stdout.strip() == "idle", 60, "the node is not idle"
        )

    def _run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_program(argv[0]), *argv[1:]],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
            check=False,
        )

    def _wait(self, ready: object, seconds: float, message: str) -> None:
        assert callable(ready)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            dead = [name for name, p in self._daemons if p.poll() is not None]
            if dead:
                pytest.fail(f"{', '.join(dead)} exited while starting the test cluster\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        pytest.fail(f"{message} within {seconds:.0f} s\n{self.logs()}")

    def stop(self) -> None:
        if any(name == "slurmctld" and p.poll() is None for name, p in self._daemons):
            self._run("scancel", "--full", "--partition=debug", timeout=15)
        for _name, process in reversed(self._daemons):  # slurmd, then slurmctld, then munged
            _signal_group(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                _signal_group(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
            _signal_group(process.pid, signal.SIGKILL)  # anything the daemon left in its group (slurmstepd)
        self._daemons.clear()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Signal the process group this test created for one daemon (its leader's pid is the group id)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)
