"""The README's CI examples: parsed, checked against their published schemas, and run for real.

GitHub Actions and GitLab CI jobs are validated with check-jsonschema's built-in (offline) schemas,
the Kubernetes pod with the schemas kubernetes-validate ships. Then each example's commands run on
this machine as the CI system would run them, with gpudoctor installed from a wheel built from this
repository: this machine has no GPU, so every `--require-gpu` step must fail with exit 1 and leave
its report behind.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.wheel import REPO, built_wheel, installed_gpudoctor, run

README = REPO / "README.md"


def readme_block(heading: str, language: str) -> str:
    """The first ```language block after the heading that starts with `heading`."""
    text = README.read_text(encoding="utf-8")
    match = re.search(
        rf"^#+ {re.escape(heading)}.*?^```{language}\n(.*?)^```$", text, re.MULTILINE | re.DOTALL
    )
    assert match, f"README has no ```{language} block under a heading {heading!r}"
    return match.group(1)


def check_jsonschema(schema: str, document: str, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text(document, encoding="utf-8")
    program = shutil.which("check-jsonschema") or str(Path(sys.executable).parent / "check-jsonschema")
    done = run([program, "--builtin-schema", schema, str(path)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def gpudoctor_version() -> str:
    match = re.search(
        r'^version = "([^"]+)"', (REPO / "pyproject.toml").read_text(encoding="utf-8"), re.MULTILINE
    )
    assert match
    return match.group(1)


# ---------------------------------------------------------------------------------------------
# GitHub Actions


def github_workflow() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(readme_block("GitHub Actions", "yaml"))
    return document


def test_github_actions_example_is_a_valid_workflow(tmp_path: Path) -> None:
    check_jsonschema("vendor.github-workflows", readme_block("GitHub Actions", "yaml"), tmp_path, "gpu.yml")
    (job,) = github_workflow()["jobs"].values()
    assert "self-hosted" in job["runs-on"] and "gpu" in job["runs-on"]


def test_the_workflow_schema_check_can_fail(tmp_path: Path) -> None:
    broken = readme_block("GitHub Actions", "yaml").replace("runs-on:", "runs_on:")
    with pytest.raises(AssertionError):
        check_jsonschema("vendor.github-workflows", broken, tmp_path, "broken.yml")


@pytest.mark.integration
def test_github_actions_steps_run_as_on_a_runner(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    wheel = built_wheel(tmp_path_factory)
    (job,) = github_workflow()["jobs"].values()
    workspace, runner_temp = tmp_path / "workspace", tmp_path / "runner-temp"
    workspace.mkdir()
    runner_temp.mkdir()
    summary = tmp_path / "step-summary.md"
    env = {
        **os.environ,
        **job["env"],
        "GPUDOCTOR_SOURCE": str(wheel),  # the wheel stands in for the repository URL
        "GITHUB_ACTIONS": "true",
        "GITHUB_WORKSPACE": str(workspace),
        "GITHUB_STEP_SUMMARY": str(summary),
        "RUNNER_TEMP": str(runner_temp),
    }
    env.pop("VIRTUAL_ENV", None)
    failed = False
    outcomes: dict[str, int] = {}
    for step in job["steps"]:
        name = step.get("name", step.get("uses", ""))
        if failed and step.get("if") != "always()":
            continue
        if "uses" in step:
            if step["uses"].startswith("actions/upload-artifact"):
                assert (workspace / step["with"]["path"]).is_file(), "nothing to upload"
            continue
        # GitHub's default shell on Linux: bash --noprofile --norc -eo pipefail {0}
        done = run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=workspace, env=env
        )
        outcomes[name] = done.returncode
        failed = failed or done.returncode != 0
        if name == "The GPU works for PyTorch":
            smoke = done
    install, check = outcomes.values()
    assert install == 0
    assert check == 1, smoke.stderr  # no GPU here: the job fails, saying why
    report = ET.parse(workspace / "gpudoctor.xml").getroot()
    cases = report.findall(".//testcase")
    assert cases and any(case.find("failure") is not None for case in cases)
    assert "::error" in smoke.stdout  # annotations on the run
    assert summary.read_text(encoding="utf-8").strip()  # and a summary on its page


# ---------------------------------------------------------------------------------------------
# GitLab CI


def gitlab_job() -> dict[str, Any]:
    (job,) = yaml.safe_load(readme_block("GitLab CI", "yaml")).values()
    assert isinstance(job, dict)
    return job


def test_gitlab_example_is_a_valid_pipeline(tmp_path: Path) -> None:
    check_jsonschema("vendor.gitlab-ci", readme_block("GitLab CI", "yaml"), tmp_path, ".gitlab-ci.yml")
    job = gitlab_job()
    assert job["artifacts"]["reports"]["junit"] == "gpudoctor.xml"
    assert job["artifacts"]["when"] == "always"


@pytest.mark.integration
def test_gitlab_script_runs_as_on_a_runner(tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    wheel = built_wheel(tmp_path_factory)
    job = gitlab_job()
    project = tmp_path / "project"
    project.mkdir()
    env = {**os.environ, **job["variables"], "GPUDOCTOR_SOURCE": str(wheel), "CI_PROJECT_DIR": str(project)}
    env.pop("VIRTUAL_ENV", None)
    codes = []
    for line in job["script"]:  # the runner stops at the first line that fails
        done = run(["bash", "-eo", "pipefail", "-c", line], cwd=project, env=env)
        codes.append(done.returncode)
        if done.returncode:
            break
    assert codes == [0, 0, 1], done.stderr
    cases = ET.parse(project / "gpudoctor.xml").getroot().findall(".//testcase")
    assert any(case.find("failure") is not None for case in cases)


# ---------------------------------------------------------------------------------------------
# Dockerfile HEALTHCHECK


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    current = ""
    for line in readme_block("Dockerfile", "dockerfile").splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    assert not current, "a continuation line at the end"
    out = []
    for entry in logical:
        if entry.strip():
            instruction, _, arguments = entry.strip().partition(" ")
            out.append((instruction.upper(), arguments.strip()))
    return out


def healthcheck_command() -> tuple[dict[str, str], list[str]]:
    (arguments,) = [a for i, a in dockerfile_instructions() if i == "HEALTHCHECK"]
    options_text, _, command = arguments.partition("CMD ")
    options = dict(o.lstrip("-").split("=", 1) for o in options_text.split())
    argv = json.loads(command)  # exec form: no shell in the container is needed
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)
    return options, argv


def test_dockerfile_example_parses_and_copies_the_wheel_this_repository_builds() -> None:
    instructions = dockerfile_instructions()
    assert [i for i, _ in instructions] == ["FROM", "COPY", "RUN", "HEALTHCHECK"]
    wheel = f"gpudoctor-{gpudoctor_version()}-py3-none-any.whl"
    assert instructions[1][1] == f"dist/{wheel} /tmp/"
    assert f"/opt/gpudoctor/bin/pip install --no-cache-dir /tmp/{wheel}" in instructions[2][1]
    options, argv = healthcheck_command()
    assert set(options) == {"interval", "timeout", "start-period", "retries"}
    assert argv[:2] == ["/opt/gpudoctor/bin/gpudoctor", "check"] and "--require-gpu" in argv


@pytest.mark.integration
def test_dockerfile_build_steps_and_healthcheck_run(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    """The Dockerfile's COPY and RUN, with / moved to a temporary folder, then its HEALTHCHECK."""
    wheel = built_wheel(tmp_path_factory)
    root = tmp_path / "image"
    (root / "tmp").mkdir(parents=True)
    (root / "opt").mkdir()
    context = tmp_path / "context"
    (context / "dist").mkdir(parents=True)
    shutil.copy(wheel, context / "dist" / wheel.name)

    def moved(text: str) -> str:  # /opt/... and /tmp/... where a path starts, in one pass
        return re.sub(r"(^|[\s\"'])/(opt|tmp)/", lambda m: f"{m.group(1)}{root}/{m.group(2)}/", text)

    for instruction, arguments in dockerfile_instructions():
        if instruction == "COPY":
            source, target = shlex.split(arguments)
            shutil.copy(context / source, moved(target))
        elif instruction == "RUN":
            done = run(["/bin/sh", "-c", moved(arguments)], cwd=context)  # Docker's shell form
            assert done.returncode == 0, done.stderr
    assert not list((root / "tmp").iterdir()), "the RUN step removes the wheel"
    _, argv = healthcheck_command()
    python = argv[argv.index("--python") + 1]
    if not Path(python).exists():
        pytest.skip(f"{python} is not on this machine")
    done = run([moved(argv[0]), *argv[1:]], env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 1, done.stdout + done.stderr  # unhealthy: no GPU here
    assert "--require-gpu" in done.stdout or "GPU" in done.stdout


# ---------------------------------------------------------------------------------------------
# Kubernetes init container


def kubernetes_pod() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(readme_block("Kubernetes init container", "yaml"))
    return document


def test_kubernetes_init_container_example_is_a_valid_pod() -> None:
    import kubernetes_validate

    pod = kubernetes_pod()
    kubernetes_validate.validate(pod, "1.37.0", strict=True)
    (init,) = pod["spec"]["initContainers"]
    assert init["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert init["command"][:2] == ["/opt/gpudoctor/bin/gpudoctor", "check"]
    assert "--require-gpu" in init["command"]


@pytest.mark.integration
def test_kubernetes_init_container_command_runs(tmp_path_factory: pytest.TempPathFactory) -> None:
    gpudoctor = installed_gpudoctor(tmp_path_factory)
    (init,) = kubernetes_pod()["spec"]["initContainers"]
    argv = [str(gpudoctor), *init["command"][1:]]
    python = argv[argv.index("--python") + 1]
    if not Path(python).exists():
        pytest.skip(f"{python} is not on this machine")
    done = run(argv, env={**os.environ, "NO_COLOR": "1"})
    assert done.returncode == 1, done.stdout + done.stderr  # the pod would stop in Init:Error
