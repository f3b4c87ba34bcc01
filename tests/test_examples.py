"""The examples in examples/, run for real where this machine allows, and validated against their schemas.

- Slurm: a one-node cluster (Debian's slurm-wlm and munge, installed if absent) runs the batch script.
- Ansible: the playbook against localhost with a local connection (ansible-core from the test extras).
- Kubernetes: the manifests against the Kubernetes JSON schemas (kubernetes-validate ships them); the
  collect script against a stand-in kubectl that checks its argv.

gpudoctor is installed as a user would: a wheel built from this repository, in a throwaway venv.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.slurm_cluster import SlurmCluster, ensure_installed

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def _run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel built from this repository, as the examples tell a user to build it."""
    out = tmp_path_factory.mktemp("wheel")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)])
    if built.returncode != 0:
        if not _pypi_reachable():
            pytest.skip("PyPI cannot be reached to build the wheel (hatchling)")
        pytest.fail(f"pip wheel failed:\n{built.stderr[-3000:]}")
    (found,) = out.glob("gpudoctor-*.whl")
    return found


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gpudoctor` from that wheel, in a venv of its own."""
    venv = tmp_path_factory.mktemp("installed") / "gpudoctor"
    assert _run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
    done = _run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)])
    if done.returncode != 0:
        if not _pypi_reachable():
            pytest.skip("PyPI cannot be reached to install gpudoctor's dependencies")
        pytest.fail(f"pip install {wheel.name} failed:\n{done.stderr[-3000:]}")
    return venv / "bin" / "gpudoctor"


# ---------------------------------------------------------------------------------------------
# Slurm


@pytest.fixture
def slurm(tmp_path: Path) -> Iterator[SlurmCluster]:
    ensure_installed()
    cluster = SlurmCluster(tmp_path / "slurm")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@pytest.mark.integration
def test_slurm_batch_script_on_a_real_one_node_cluster(
    slurm: SlurmCluster, installed: Path, tmp_path: Path
) -> None:
    reports = tmp_path / "shared" / "gpudoctor"
    job_out = tmp_path / "job.out"
    env = {**slurm.env, "GPUDOCTOR": str(installed), "GPUDOCTOR_REPORTS": str(reports), "NO_COLOR": "1"}
    env.pop("VIRTUAL_ENV", None)
    submitted = _run(
        [
            shutil.which("sbatch") or "sbatch",
            "--wait",
            "--nodes=1",
            f"--chdir={tmp_path}",
            f"--output={job_out}",
            str(EXAMPLES / "slurm" / "gpudoctor-fleet.sbatch"),
        ],
        env=env,
        timeout=420,
    )
    assert job_out.exists(), f"{submitted.stdout}\n{submitted.stderr}\n{slurm.logs()}"
    out = job_out.read_text()
    node_report = reports / "nodes" / f"{slurm.node}.json"
    assert node_report.exists(), f"{out}\n{slurm.logs()}"
    report = json.loads(node_report.read_text())
    assert isinstance(report["findings"], list) and report["schema_version"] >= 1
    # The job's exit code is `gpudoctor fleet`'s: this machine has no GPU, so its report has an error.
    has_error = any(f["severity"] == "error" for f in report["findings"])
    assert submitted.returncode == (1 if has_error else 0), (submitted.returncode, out)
    assert out.startswith("gpudoctor fleet: 1 node: "), out
    assert f"\n  {slurm.node}\n" in out or slurm.node in out
    summary = json.loads((reports / "fleet.json").read_text())
    assert summary["summary"]["nodes"] == 1 and summary["summary"]["missing"] == 0
    assert [n["node"] for n in summary["nodes"]] == [slurm.node]
    assert {f["code"] for f in summary["findings"]} == {f["code"] for f in report["findings"]}
    assert (reports / "fleet.md").read_text().startswith("## gpudoctor fleet")
