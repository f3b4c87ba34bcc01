"""The examples in examples/, run for real where this machine allows, and validated against their schemas.

- Slurm: a one-node cluster (Debian's slurm-wlm and munge, installed if absent) runs the batch script.
- Ansible: the playbook against localhost with a local connection (ansible-core from the test extras).
- Kubernetes: the manifests against the Kubernetes JSON schemas (kubernetes-validate ships them); the
  collect script against a stand-in kubectl that checks its argv.

gpudoctor is installed as a user would: a wheel built from this repository, in a throwaway venv.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gpudoctor.render.json import dumps_report
from tests.conftest import FakeCall, fake_program
from tests.slurm_cluster import SlurmCluster, ensure_installed
from tests.test_machines import run_machine
from tests.wheel import REPO, built_wheel, installed_gpudoctor, run

EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_wheel(tmp_path_factory)


@pytest.fixture(scope="session")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installed_gpudoctor(tmp_path_factory)


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
    submitted = run(
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


# ---------------------------------------------------------------------------------------------
# Kubernetes

KUBERNETES_VERSION = (
    "1.37.0"  # the newest schemas kubernetes-validate ships; the manifests use nothing newer than 1.24
)


def validate_kubernetes(document: dict[str, Any]) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_kubernetes_job_manifest_is_valid_and_asks_for_a_gpu_per_node() -> None:
    (job,) = yaml.safe_load_all((EXAMPLES / "kubernetes" / "gpudoctor-job.yaml").read_text(encoding="utf-8"))
    validate_kubernetes(job)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == spec["parallelism"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    anti = pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert anti[0]["topologyKey"] == "kubernetes.io/hostname"
    assert anti[0]["labelSelector"]["matchLabels"] == spec["template"]["metadata"]["labels"]


def test_kubernetes_schema_check_catches_a_broken_manifest() -> None:
    import kubernetes_validate

    (job,) = yaml.safe_load_all((EXAMPLES / "kubernetes" / "gpudoctor-job.yaml").read_text(encoding="utf-8"))
    job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] = "one gpu"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kubernetes(job)
    job = yaml.safe_load((EXAMPLES / "kubernetes" / "gpudoctor-job.yaml").read_text(encoding="utf-8"))
    job["spec"]["template"]["spec"]["restartPolicyy"] = "Never"  # strict: unknown fields are errors
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_kubernetes(job)


def _job_container_command(job: dict[str, Any]) -> list[str]:
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return [*container["command"], *container["args"]]


def test_kubernetes_pod_command_exits_0_when_gpudoctor_ran(tmp_path: Path) -> None:
    """The container's command, run for real with gpudoctor on PATH: a report on stdout, exit 0 or 1 -> 0."""
    job = yaml.safe_load((EXAMPLES / "kubernetes" / "gpudoctor-job.yaml").read_text(encoding="utf-8"))
    argv = _job_container_command(job)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "gpudoctor").symlink_to(Path(sys.executable).parent / "gpudoctor")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "NO_COLOR": "1"}
    done = run(argv, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert isinstance(json.loads(done.stdout)["findings"], list)
    failing = tmp_path / "failing"
    failing.mkdir()
    write_executable_script(
        failing / "gpudoctor", "#!/bin/sh\necho 'gpudoctor: error: internal error' >&2\nexit 2\n"
    )
    broken = run(argv, env={**env, "PATH": f"{failing}:{os.environ['PATH']}"}, timeout=60)
    assert broken.returncode == 2


def write_executable_script(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    path.chmod(0o755)


def test_kubernetes_collect_script_saves_each_pods_report_and_runs_fleet(tmp_path: Path) -> None:
    machines = REPO / "tests" / "machines"
    report_a = tmp_path / "a.json"
    report_b = tmp_path / "b.json"
    for target, machine in (
        (report_a, "case-C59-container-without-gpus.yaml"),
        (report_b, "case-C61-container-without-nvidia-uvm.yaml"),
    ):
        report, _ = run_machine(machines / machine)
        target.write_text(dumps_report(report), encoding="utf-8")
    pods = "gpudoctor-0-x7k2p gpu-a\ngpudoctor-1-q9d4m gpu-b\ngpudoctor-2-zz81c \n"
    kubectl = fake_program(
        tmp_path / "bin",
        "kubectl",
        FakeCall(
            argv=("get", "job/gpudoctor", '--output=jsonpath={.status.conditions[?(@.status=="True")].type}'),
            stdout="Complete",
        ),
        FakeCall(
            argv=(
                "get",
                "pods",
                "--selector=job-name=gpudoctor",
                '--output=jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.nodeName}{"\\n"}{end}',
            ),
            stdout=pods,
        ),
        FakeCall(argv=("logs", "gpudoctor-0-x7k2p", "--container=gpudoctor"), stdout=report_a),
        FakeCall(argv=("logs", "gpudoctor-1-q9d4m", "--container=gpudoctor"), stdout=report_b),
        FakeCall(
            argv=("logs", "gpudoctor-2-zz81c", "--container=gpudoctor"),
            stderr='Error from server (BadRequest): container "gpudoctor" in pod "gpudoctor-2-zz81c" is waiting to start: ContainerCreating\n',
            exit_code=1,
        ),
    )
    folder = tmp_path / "reports"
    env = {
        **os.environ,
        "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}",
        "GPUDOCTOR": str(Path(sys.executable).parent / "gpudoctor"),
        "NO_COLOR": "1",
    }
    done = run(["bash", str(EXAMPLES / "kubernetes" / "collect.sh"), str(folder)], env=env, timeout=120)
    assert not kubectl.unexpected()
    assert done.returncode == 1, done.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["gpu-a.json", "gpu-b.json", "gpudoctor-2-zz81c.json"]
    assert (folder / "gpu-a.json").read_text() == report_a.read_text()
    out = done.stdout
    assert out.startswith(
        "gpudoctor fleet: 3 nodes: 2 with errors, 0 with warnings only, 0 healthy, 1 unreadable"
    )
    assert "gpudoctor-2-zz81c: " in out and "empty file" in out
    assert "no log from gpudoctor-2-zz81c on gpudoctor-2-zz81c" in done.stderr


# ---------------------------------------------------------------------------------------------
# Ansible


@pytest.mark.integration
def test_ansible_playbook_against_localhost(wheel: Path, tmp_path: Path) -> None:
    playbook_program = shutil.which("ansible-playbook") or str(
        Path(sys.executable).parent / "ansible-playbook"
    )
    if not Path(playbook_program).exists():
        pytest.skip("ansible-playbook is not installed (pip install ansible-core)")
    inventory = tmp_path / "inventory.ini"
    inventory.write_text(
        f"[gpu_nodes]\nlocalhost ansible_connection=local ansible_python_interpreter={sys.executable}\n",
        encoding="utf-8",
    )
    venv = tmp_path / "opt" / "gpudoctor"
    venv.parent.mkdir()
    reports = tmp_path / "reports"
    extra = {
        "gpudoctor_wheel": str(wheel),
        "gpudoctor_venv": str(venv),
        "gpudoctor_reports": str(reports),
        "gpudoctor_command": str(venv / "bin" / "gpudoctor"),  # the controller is the node here
    }
    env = {
        **os.environ,
        "LC_ALL": "C.UTF-8",
        "ANSIBLE_HOME": str(tmp_path / "ansible"),
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible" / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "ansible" / "remote"),
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
    }
    env.pop("VIRTUAL_ENV", None)
    done = run(
        [
            playbook_program,
            "-i",
            str(inventory),
            str(EXAMPLES / "ansible" / "gpudoctor.yml"),
            "-e",
            json.dumps(extra),
        ],
        env=env,
        timeout=600,
    )
    report = json.loads((reports / "localhost.json").read_text(encoding="utf-8"))
    has_error = any(f["severity"] == "error" for f in report["findings"])
    assert done.returncode == (2 if has_error else 0), done.stdout[-4000:] + done.stderr[-2000:]
    assert "gpudoctor fleet: 1 node: " in done.stdout
    assert "failed=0" in done.stdout or has_error
