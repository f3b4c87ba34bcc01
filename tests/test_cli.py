"""The real CLI, as a user runs it: exit codes, JSON schema, saved facts, no tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.facts import SCHEMA_VERSION, DriverFacts, Facts, GpuFacts, PlatformFacts, ProbeStatus
from gpudoctor.serde import to_data
from tests.conftest import modules_imported_by


def gpudoctor(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, sh_line: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m gpudoctor ARGS`; with `sh_line`, a /bin/sh command line that ends by exec'ing it as "$@"."""
    full_env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "120", **(env or {})}
    full_env.pop("GPUDOCTOR_DEBUG", None)
    argv = [sys.executable, "-m", "gpudoctor", *args]
    return subprocess.run(
        ["/bin/sh", "-c", sh_line, "sh", *argv] if sh_line else argv,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=full_env,
        check=False,
    )


def write_facts(path: Path, facts: Facts) -> Path:
    path.write_text(json.dumps(to_data(facts)), encoding="utf-8")
    return path


HEALTHY = Facts(
    platform=PlatformFacts(system="Linux", machine="x86_64", distro="Ubuntu 22.04.4 LTS"),
    driver=DriverFacts(
        nvml_state="ok",
        source="nvml",
        driver_version="550.54.14",
        cuda_driver_version="12.4",
        gpus=(GpuFacts(index=0, name="NVIDIA GeForce RTX 3090", compute_capability="8.6", memory_mib=24576),),
    ),
    probes=(ProbeStatus(name="platform"), ProbeStatus(name="driver")),
)
NO_DRIVER = Facts(
    platform=PlatformFacts(system="Linux", machine="x86_64", distro="Debian GNU/Linux 12 (bookworm)"),
    driver=DriverFacts(nvml_state="library_not_found", nvml_message="NVML Shared Library Not Found"),
    probes=(
        ProbeStatus(name="platform"),
        ProbeStatus(name="driver"),
        ProbeStatus(name="toolkit", state="timeout", detail="no answer within 10 s"),
    ),
)


def test_help_lists_the_commands() -> None:
    result = gpudoctor("--help")
    assert result.returncode == 0
    commands = result.stdout.split("Commands:", 1)[1]
    for word in ("check", "explain", "matrix", "collect", "fleet", "plan"):
        assert f"\n  {word} " in commands
    assert "..." not in commands  # each says what it does in full, not cut at 45 characters


def test_a_subcommand_builds_only_itself(tmp_path: Path) -> None:
    """Only the subcommand that runs is built: the modules of the others are never imported (issue #12)."""
    imported, done = modules_imported_by(tmp_path, "explain", "GD106")
    assert done.returncode == 0 and "GD106" in done.stdout
    assert "gpudoctor.cli" in imported
    assert not imported & {
        "gpudoctor.commands.plan",
        "gpudoctor.commands.fleet",
        "gpudoctor.commands.collect",
    }
    imported, done = modules_imported_by(tmp_path, "plan", "--help")
    assert done.returncode == 0 and "gpudoctor.commands.plan" in imported
    typo = gpudoctor("pln")
    assert (
        typo.returncode == 2 and "No such command 'pln'. Did you mean 'plan'" in typo.stderr
    )  # all are known


def test_version() -> None:
    result = gpudoctor("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("gpudoctor ")


def test_check_on_this_machine_never_tracebacks(tmp_path: Path) -> None:
    result = gpudoctor("check", "--timeout", "60", cwd=tmp_path)
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "target Python" in result.stdout
    assert "error" in result.stdout.lower() or "No errors" in result.stdout


def test_json_document_schema(tmp_path: Path) -> None:
    result = gpudoctor("check", "--json", "--facts", str(write_facts(tmp_path / "f.json", NO_DRIVER)))
    document: dict[str, Any] = json.loads(result.stdout)
    assert document["schema_version"] == SCHEMA_VERSION
    assert set(document) >= {"schema_version", "gpudoctor_version", "summary", "findings", "facts", "checks"}
    for finding in document["findings"]:
        assert set(finding) >= {"code", "severity", "title", "message", "fix"}
        assert finding["severity"] in ("error", "warning", "info")
        assert isinstance(finding["fix"], list)
    assert document["summary"]["usable_gpu"] is False
    assert any(f["code"] == "GD001" and "toolkit" in f["message"] for f in document["findings"])


def test_save_facts_then_replay(tmp_path: Path) -> None:
    saved = tmp_path / "saved.json"
    first = gpudoctor("check", "--json", "--save-facts", str(saved), cwd=tmp_path)
    assert saved.exists(), first.stderr
    replay = gpudoctor("check", "--json", "--facts", str(saved))
    assert replay.returncode == first.returncode

    def codes(out: str) -> list[str]:
        return [f["code"] for f in json.loads(out)["findings"]]

    assert codes(replay.stdout) == codes(first.stdout)


def test_whole_json_report_is_accepted_as_facts(tmp_path: Path) -> None:
    report = gpudoctor("check", "--json", "--facts", str(write_facts(tmp_path / "f.json", HEALTHY)))
    (tmp_path / "report.json").write_text(report.stdout, encoding="utf-8")
    again = gpudoctor("check", "--json", "--facts", str(tmp_path / "report.json"))
    assert again.returncode == report.returncode
    assert json.loads(again.stdout)["facts"] == json.loads(report.stdout)["facts"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON"),
        ('{"driver": {"gpus": 7}}', "$.driver.gpus"),
        ("[1, 2]", "does not look like gpudoctor facts"),
    ],
)
def test_bad_facts_file_is_a_usage_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    result = gpudoctor("check", "--facts", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_facts_file(tmp_path: Path) -> None:
    result = gpudoctor("check", "--facts", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "cannot read facts file" in result.stderr


def test_unknown_option_is_usage_error() -> None:
    assert gpudoctor("check", "--frobnicate").returncode == 2


def test_require_gpu_and_fail_on(tmp_path: Path) -> None:
    healthy = str(write_facts(tmp_path / "healthy.json", HEALTHY))
    no_driver = str(write_facts(tmp_path / "none.json", NO_DRIVER))
    assert gpudoctor("check", "--facts", healthy, "--require-gpu").returncode == 0
    result = gpudoctor("check", "--facts", no_driver, "--require-gpu")
    assert result.returncode == 1
    assert "GD004 error  No usable NVIDIA GPU, and --require-gpu asks for one" in result.stdout


def test_fail_on_warning(tmp_path: Path) -> None:
    only_warning = Facts(probes=(ProbeStatus(name="toolkit", state="crash", detail="ValueError: x"),))
    path = str(write_facts(tmp_path / "w.json", only_warning))
    assert gpudoctor("check", "--facts", path).returncode == 0
    assert gpudoctor("check", "--facts", path, "--fail-on", "warning").returncode == 1


def test_piped_output_is_plain(tmp_path: Path) -> None:
    result = gpudoctor("check", "--facts", str(write_facts(tmp_path / "f.json", NO_DRIVER)))
    assert "\x1b[" not in result.stdout
    assert all(line == line.rstrip() for line in result.stdout.splitlines())


def test_python_option_rejects_missing_interpreter(tmp_path: Path) -> None:
    result = gpudoctor("check", "--python", str(tmp_path / "no-python"))
    assert result.returncode == 2
    assert "no such interpreter" in result.stderr


def test_explain_list_and_page() -> None:
    listing = gpudoctor("explain")
    assert listing.returncode == 0
    assert "GD001" in listing.stdout
    page = gpudoctor("explain", "gd001")
    assert page.returncode == 0
    assert "What it means" in page.stdout
    assert gpudoctor("explain", "1").returncode == 0


def test_explain_unknown_code_suggests() -> None:
    result = gpudoctor("explain", "GD00")
    assert result.returncode == 2
    assert "not a gpudoctor code" in result.stderr


def test_explain_json_with_facts(tmp_path: Path) -> None:
    path = str(write_facts(tmp_path / "f.json", NO_DRIVER))
    result = gpudoctor("explain", "GD001", "--json", "--facts", path)
    document = json.loads(result.stdout)
    assert document["code"] == "GD001"
    assert document["sections"]["How to fix"]
    assert [f["code"] for f in document["on_this_machine"]] == ["GD001"]
    assert "toolkit" in document["on_this_machine"][0]["message"]


def test_explain_piped_keeps_every_word() -> None:
    from gpudoctor import explain as explanations

    result = gpudoctor("explain", "GD101", env={"COLUMNS": "60"})
    page = explanations.load("GD101")
    assert page is not None
    for line in page.body.splitlines():
        assert line in result.stdout


def test_python_that_is_not_executable(tmp_path: Path) -> None:
    not_python = tmp_path / "python"
    not_python.write_text("not a program", encoding="utf-8")
    result = gpudoctor("check", "--python", str(not_python))
    assert result.returncode == 2
    assert "not an executable program" in result.stderr


def test_python_that_crashes_is_one_error(tmp_path: Path) -> None:
    crashing = tmp_path / "python"
    crashing.write_text("#!/bin/sh\nkill -SEGV $$\n", encoding="utf-8")
    crashing.chmod(0o755)
    result = gpudoctor("check", "--json", "--python", str(crashing))
    document = json.loads(result.stdout)
    errors = [f["code"] for f in document["findings"] if f["severity"] == "error"]
    assert result.returncode == 1
    assert errors == ["GD003"]


def test_facts_from_a_newer_gpudoctor_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.json"
    path.write_text(json.dumps({"schema_version": 99}), encoding="utf-8")
    result = gpudoctor("check", "--facts", str(path))
    assert result.returncode == 2
    assert "newer gpudoctor" in result.stderr


def test_gpu_hidden_by_cuda_visible_devices_is_not_usable(tmp_path: Path) -> None:
    from gpudoctor.facts import EnvironmentFacts

    hidden = Facts(
        platform=HEALTHY.platform,
        driver=HEALTHY.driver,
        environment=EnvironmentFacts(variables={"CUDA_VISIBLE_DEVICES": "-1"}),
        probes=HEALTHY.probes,
    )
    path = str(write_facts(tmp_path / "hidden.json", hidden))
    result = gpudoctor("check", "--json", "--facts", path, "--require-gpu")
    assert result.returncode == 1
    assert json.loads(result.stdout)["summary"]["usable_gpu"] is False
    assert (
        json.loads(
            gpudoctor("check", "--json", "--facts", str(write_facts(tmp_path / "h.json", HEALTHY))).stdout
        )["summary"]["usable_gpu"]
        is True
    )


def test_explain_with_facts_says_when_a_check_did_not_apply(tmp_path: Path) -> None:
    path = str(write_facts(tmp_path / "f.json", NO_DRIVER))
    result = gpudoctor("explain", "GD402", "--facts", path)
    assert result.returncode == 0
    assert "On this machine: GD402 did not apply (no tensorflow facts)" in result.stdout


def test_redaction_keeps_paths_usable() -> None:
    from gpudoctor.redact import redact

    assert redact({"a": ["/home/ana/x", "/home/common_modules/cuda"]}, home="/home/ana") == {
        "a": ["~/x", "/home/common_modules/cuda"]
    }
    assert redact("C:\\Users\\ana\\venv", home="C:\\Users\\ana") == "~\\venv"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell redirection")
def test_a_closed_stdout_is_one_line_and_exit_2_whoever_writes(tmp_path: Path) -> None:
    facts = write_facts(tmp_path / "facts.json", HEALTHY)
    for args in (("check", "--facts", str(facts)), ("explain", "GD101"), ("--help",)):
        done = gpudoctor(*args, cwd=tmp_path, sh_line='exec "$@" >&-')
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr == (
            "gpudoctor: error: cannot write to standard output: it was closed when gpudoctor started\n"
        ), args


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX shell redirection")
def test_a_closed_stderr_still_gives_the_report_and_its_exit_code(tmp_path: Path) -> None:
    facts = write_facts(tmp_path / "facts.json", HEALTHY)
    done = gpudoctor("check", "--facts", str(facts), cwd=tmp_path, sh_line='exec "$@" 2>&-')
    assert done.returncode == 0 and done.stderr == ""
    assert "No errors" in done.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="a working directory cannot be deleted while in use")
def test_a_deleted_working_directory_is_a_usage_error_not_an_internal_one(tmp_path: Path) -> None:
    for args in (("check",), ("collect",)):
        gone = tmp_path / args[0]
        gone.mkdir()
        done = gpudoctor(*args, sh_line=f'cd "{gone}" && rmdir "{gone}" && exec "$@"')
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.endswith(
            "gpudoctor: error: the working directory no longer exists: cd to a folder that does and run "
            "gpudoctor again\n"
        ), (args, done.stderr)
        assert "Traceback" not in done.stderr and "internal error" not in done.stderr
