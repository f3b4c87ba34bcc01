"""The real CLI on fake machines, in every output format: what CI systems and bug reports read.

Each test saves a machine from tests/machines/ as a facts file and runs `python -m gpudoctor check
--facts` in a subprocess (or under a pseudo-terminal of a given width), as a user or a CI job would.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_cli import gpudoctor

MACHINES = Path(__file__).parent / "machines"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def machine_facts(tmp_path: Path, name: str, **patch: Any) -> Path:
    doc = yaml.safe_load((MACHINES / f"{name}.yaml").read_text(encoding="utf-8"))
    facts = {**doc["facts"], **patch}
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps(facts), encoding="utf-8")
    return path


def report_json(facts: Path, *extra: str) -> dict[str, Any]:
    result = gpudoctor("check", "--facts", str(facts), "--format", "json", *extra)
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def all_commands(document: dict[str, Any]) -> list[str]:
    return [c for f in document["findings"] for fix in f["fixes"] for c in fix["commands"]]


# --- formats -------------------------------------------------------------------------------------


def test_json_alias_and_format_agree(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "several-problems-at-once"))
    alias = gpudoctor("check", "--facts", facts, "--json")
    explicit = gpudoctor("check", "--facts", facts, "--format", "json")
    assert alias.stdout == explicit.stdout
    document = json.loads(alias.stdout)
    assert alias.returncode == document["summary"]["exit_code"] == 1
    assert document["summary"]["failed_because"] == "errors"


def test_unknown_format_is_one_line(tmp_path: Path) -> None:
    result = gpudoctor("check", "--facts", str(machine_facts(tmp_path, "env-healthy")), "--format", "yaml")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "gpudoctor: error: --format yaml: not a format; choose one of text, json, markdown, junit, github"
    ]


def test_junit_has_one_case_per_check(tmp_path: Path) -> None:
    facts = machine_facts(tmp_path, "several-problems-at-once")
    document = report_json(facts)
    result = gpudoctor("check", "--facts", str(facts), "--format", "junit")
    assert result.returncode == 1
    suite = ET.fromstring(result.stdout).find("testsuite")
    assert suite is not None
    cases = {c.get("name", "").split()[0]: c for c in suite.iter("testcase")}
    assert set(cases) == {c["code"] for c in document["checks"]}
    assert int(suite.get("tests", "0")) == len(document["checks"])
    failed = {code for code, case in cases.items() if case.find("failure") is not None}
    assert failed == {f["code"] for f in document["findings"] if f["severity"] == "error"}
    gd301 = cases["GD301"].find("failure")
    assert gd301 is not None and "CUDA_VISIBLE_DEVICES" in (gd301.get("message") or "")
    assert "unset CUDA_VISIBLE_DEVICES" in (gd301.text or "")
    skipped = [c for c in cases.values() if c.find("skipped") is not None]
    assert skipped and all(c.find("skipped").get("message") for c in skipped)  # type: ignore[union-attr]
    # The healthy-state name of each check, never a function's repr.
    assert "<function" not in result.stdout
    # A warning fails its case only under --fail-on warning.
    assert cases["GD414"].find("failure") is None and cases["GD414"].find("system-out") is not None
    strict = gpudoctor("check", "--facts", str(facts), "--format", "junit", "--fail-on", "warning")
    strict_suite = ET.fromstring(strict.stdout).find("testsuite")
    assert strict_suite is not None
    gd414 = next(c for c in strict_suite.iter("testcase") if c.get("name", "").startswith("GD414"))
    assert gd414.find("failure") is not None


def test_markdown_pastes_into_an_issue(tmp_path: Path) -> None:
    facts = machine_facts(tmp_path, "several-problems-at-once")
    document = report_json(facts)
    result = gpudoctor("check", "--facts", str(facts), "--format", "markdown")
    text = result.stdout
    assert text.startswith("## gpudoctor report")
    assert "| --- | --- | --- |" in text
    for finding in document["findings"]:
        assert f"{finding['code']} {finding['severity']}" in text
    blocks = re.findall(r"^```bash\n(.*?)\n```$", text, re.DOTALL | re.MULTILINE)
    assert sorted(c for b in blocks for c in b.splitlines()) == sorted(all_commands(document))
    details = re.search(r"<details><summary>Facts.*?```json\n(.*?)\n```\n\n</details>", text, re.DOTALL)
    assert details is not None
    assert json.loads(details.group(1))["driver"]["driver_version"] == "535.104.05"


def test_github_annotations_and_step_summary(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "several-problems-at-once"))
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n", encoding="utf-8")
    env = {"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(summary)}
    result = gpudoctor("check", "--facts", facts, env=env)
    assert result.returncode == 1
    annotations = [line for line in result.stdout.splitlines() if line.startswith("::")]
    assert [a.split(" ", 1)[0] for a in annotations] == ["::error", "::error", "::error", "::warning"]
    assert annotations[0].startswith("::error title=GD301 error%3A ")
    assert "%0Afix: " in annotations[0] and "\n" not in annotations[0]
    written = summary.read_text(encoding="utf-8")
    assert written.startswith("earlier step\n## gpudoctor report")  # appended, never replaced
    # --no-annotations: neither
    summary.write_text("", encoding="utf-8")
    quiet = gpudoctor("check", "--facts", facts, "--no-annotations", env=env)
    assert not [line for line in quiet.stdout.splitlines() if line.startswith("::")]
    assert summary.read_text(encoding="utf-8") == ""
    # JSON on stdout stays parseable: the annotations go to stderr then
    as_json = gpudoctor("check", "--facts", facts, "--json", env=env)
    json.loads(as_json.stdout)
    assert "::error title=GD301" in as_json.stderr


def test_github_format_outside_actions(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "policy-require-gpu-on-a-cpu-laptop"))
    result = gpudoctor("check", "--facts", facts, "--format", "github", "--require-gpu")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::error title=GD004 error%3A --require-gpu")
    assert lines[-1].startswith("::notice title=gpudoctor::gpudoctor failed because of errors: 1 error")


# --- policy in every format ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "junit", "github"])
def test_require_gpu_is_an_error_in_every_format(tmp_path: Path, fmt: str) -> None:
    facts = str(machine_facts(tmp_path, "driver-cpu-only-laptop"))
    assert gpudoctor("check", "--facts", facts, "--format", fmt).returncode == 0
    result = gpudoctor("check", "--facts", facts, "--format", fmt, "--require-gpu")
    assert result.returncode == 1
    assert "GD004" in result.stdout
    assert "No errors" not in result.stdout
    if fmt == "json":
        assert json.loads(result.stdout)["summary"]["errors"] == 1


def test_require_framework(tmp_path: Path) -> None:
    healthy = str(machine_facts(tmp_path, "torch-cuda-ok"))
    assert gpudoctor("check", "--facts", healthy, "--require", "torch").returncode == 0
    missing = gpudoctor("check", "--facts", healthy, "--json", "--require", "torch", "--require", "jax")
    assert missing.returncode == 1
    errors = [f for f in json.loads(missing.stdout)["findings"] if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["GD005"]
    assert "JAX sees no GPU" in errors[0]["message"]
    assert gpudoctor("check", "--facts", healthy, "--require", "mxnet").returncode == 2


def test_fail_on_warning_says_why(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "probe-timeout-tensorflow"))
    lenient = gpudoctor("check", "--facts", facts)
    assert lenient.returncode == 0
    assert lenient.stdout.rstrip().splitlines()[-1].startswith("No errors, 1 warning")
    strict = gpudoctor("check", "--facts", facts, "--fail-on", "warning")
    assert strict.returncode == 1
    last = strict.stdout.rstrip().splitlines()[-1]
    assert last.startswith("Failed because of 1 warning (--fail-on warning): no errors")
    assert "No errors" not in strict.stdout


# --- output files ---------------------------------------------------------------------------------


def test_output_file_and_stdout_dash(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "torch-cuda-ok"))
    target = tmp_path / "report.xml"
    result = gpudoctor("check", "--facts", facts, "--format", "junit", "-o", str(target))
    assert result.returncode == 0
    ET.fromstring(target.read_text(encoding="utf-8"))
    assert "target Python" in result.stdout  # the person reading the CI log still gets the report
    assert not list(tmp_path.glob(".report.xml.*"))  # no temporary file left behind
    dash = gpudoctor("check", "--facts", facts, "--format", "json", "-o", "-")
    json.loads(dash.stdout)


def test_failed_output_keeps_the_report(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "torch-cuda-ok"))
    missing = tmp_path / "no-such-folder" / "report.json"
    result = gpudoctor("check", "--facts", facts, "--format", "json", "-o", str(missing))
    assert result.returncode == 2
    assert "target Python" in result.stdout
    assert result.stderr.strip().splitlines() == [
        f"gpudoctor: error: -o: cannot write {missing}: No such file or directory"
    ]


def test_failed_save_facts_keeps_the_report(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "torch-cuda-ok"))
    result = gpudoctor("check", "--facts", facts, "--save-facts", str(tmp_path / "nope" / "f.json"))
    assert result.returncode == 2
    assert result.stdout.rstrip().splitlines()[-1].startswith("No errors")
    assert result.stderr.count("\n") == 1 and "--save-facts: cannot write" in result.stderr


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full here")
@pytest.mark.parametrize("where", ["stdout", "-o", "--save-facts"])
def test_full_disk_is_one_clear_line(tmp_path: Path, where: str) -> None:
    facts = str(machine_facts(tmp_path, "torch-cuda-ok"))
    args = ["-m", "gpudoctor", "check", "--facts", facts]
    if where != "stdout":
        args += [where, "/dev/full"]
    with Path("/dev/full").open("w") if where == "stdout" else open(os.devnull, "w") as out:  # noqa: PTH123
        result = subprocess.run(
            [sys.executable, *args],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
            env={**os.environ, "NO_COLOR": "1"},
        )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "No space left on device" in lines[0]
    assert "Exception ignored" not in result.stderr and "Traceback" not in result.stderr


def test_save_facts_confirms_and_dash_writes_stdout(tmp_path: Path) -> None:
    facts = str(machine_facts(tmp_path, "torch-cuda-ok"))
    saved = tmp_path / "saved.json"
    result = gpudoctor("check", "--facts", facts, "--save-facts", str(saved))
    assert json.loads(saved.read_text(encoding="utf-8"))["driver"]["driver_version"] == "550.54.14"
    assert f"gpudoctor: facts saved to {saved}" in result.stderr
    dash = gpudoctor("check", "--facts", facts, "--save-facts", "-")
    assert json.loads(dash.stdout)["torch"]["version"] == "2.5.1+cu124"
    assert "target Python" in dash.stderr  # the report moves to stderr


# --- where the facts came from ---------------------------------------------------------------------


def test_replay_says_where_the_facts_came_from(tmp_path: Path) -> None:
    facts = machine_facts(
        tmp_path, "torch-cuda-ok", collected_at="2026-11-30T17:02:11Z", gpudoctor_version="0.1.0"
    )
    result = gpudoctor("check", "--facts", str(facts))
    second = result.stdout.splitlines()[1]
    assert second == (
        f"Replayed from {facts}: facts collected at 2026-11-30T17:02:11Z on Ubuntu 22.04.4 LTS x86_64 "
        "by gpudoctor 0.1.0; nothing on this machine was probed."
    )
    markdown = gpudoctor("check", "--facts", str(facts), "--format", "markdown")
    assert "Replayed from" in markdown.stdout


def test_live_facts_record_when_and_which_version(tmp_path: Path) -> None:
    saved = tmp_path / "live.json"
    gpudoctor("check", "--save-facts", str(saved), "--timeout", "60", cwd=tmp_path)
    data = json.loads(saved.read_text(encoding="utf-8"))
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["collected_at"])
    assert data["gpudoctor_version"]


def test_an_environment_without_a_framework_is_named_at_the_top(tmp_path: Path) -> None:
    # This machine's test venv has no TensorFlow, PyTorch or JAX: what a newcomer's fresh venv looks like.
    result = gpudoctor("check", "--timeout", "60", cwd=tmp_path)
    lines = result.stdout.splitlines()
    assert lines[2].startswith("note: No GPU framework (TensorFlow, PyTorch, JAX) is installed")
    assert "--python" in lines[2] and "pipx" in lines[2]
    assert "note:" not in gpudoctor("check", "--facts", str(machine_facts(tmp_path, "torch-cuda-ok"))).stdout


# --- hostile strings ---------------------------------------------------------------------------------

HOSTILE = "2.1.0\x1b]0;pwned\x07\x1b[2J\x1b]52;c;ZWNobyBoaQ==\x07\u202e<img src=x>|`"


@pytest.mark.parametrize("fmt", ["text", "json", "markdown", "junit", "github"])
def test_control_characters_are_made_visible(tmp_path: Path, fmt: str) -> None:
    doc = yaml.safe_load((MACHINES / "torch-import-error.yaml").read_text(encoding="utf-8"))
    facts = doc["facts"]
    facts["torch"] = {**facts["torch"], "version": HOSTILE, "import_error": f"ImportError: {HOSTILE}"}
    facts["target"] = {"python": f"/opt/{HOSTILE}/python", "selected_by": "--python"}
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(facts), encoding="utf-8")
    result = gpudoctor("check", "--facts", str(path), "--format", fmt, "-v")
    assert result.returncode in (0, 1), result.stderr
    for char in ("\x1b", "\x07", "\u202e"):
        assert char not in result.stdout
    if fmt == "json":
        assert json.loads(result.stdout)["facts"]["torch"]["version"] == HOSTILE  # data kept, escaped
    else:
        assert "\\x1b]0;pwned\\x07" in result.stdout.replace("\\\\", "\\")
    if fmt == "markdown":  # HTML only ever inside code, where GitHub shows it as text
        prose = re.sub(r"^(`{3,}).*?^\1$", "", result.stdout, flags=re.DOTALL | re.MULTILINE)
        prose = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", prose)
        assert "<img" not in prose and "&lt;img" in prose
    if fmt == "junit":
        ET.fromstring(result.stdout)


# --- commands paste whole ---------------------------------------------------------------------------------


def run_in_terminal(args: list[str], columns: int) -> str:
    """The CLI under a pseudo-terminal `columns` wide: what a person at a terminal sees, escapes removed."""
    import fcntl
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": str(columns)}
    env.pop("NO_COLOR", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "gpudoctor", *args], stdin=slave, stdout=slave, stderr=slave, env=env
    )
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            process.kill()
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(master)
    return ANSI.sub("", b"".join(chunks).decode("utf-8", "replace")).replace("\r\n", "\n")


@pytest.mark.parametrize("columns", [40, 80, 120])
@pytest.mark.parametrize("machine", ["several-problems-at-once", "driver-missing-debian"])
def test_every_fix_command_is_one_physical_line(tmp_path: Path, columns: int, machine: str) -> None:
    facts = machine_facts(tmp_path, machine)
    commands = all_commands(report_json(facts))
    assert any(len(c) > 40 for c in commands)  # the machine has commands wider than the narrowest terminal
    text = run_in_terminal(["check", "--facts", str(facts)], columns)
    lines = text.splitlines()
    for command in commands:
        assert any(line.rstrip().endswith(command) for line in lines), f"{command!r} split at {columns}"
    assert "✓" in text or "✗" in text  # a real terminal: glyphs, so the pty path was taken


@pytest.mark.parametrize("fmt", ["markdown", "github", "junit"])
def test_commands_whole_in_other_formats(tmp_path: Path, fmt: str) -> None:
    facts = machine_facts(tmp_path, "driver-missing-debian")
    commands = all_commands(report_json(facts))
    out = gpudoctor("check", "--facts", str(facts), "--format", fmt, env={"COLUMNS": "40"}).stdout
    lines = out.replace("%0A", "\n").replace("&quot;", '"').replace("&amp;", "&").splitlines()
    for command in commands:
        assert any(line.strip() == command for line in lines), f"{command!r} not whole in {fmt}"


# --- snapshots for bug reports ----------------------------------------------------------------------


def test_collect_is_redacted_and_replays_to_the_same_findings(tmp_path: Path) -> None:
    home = tmp_path / "home" / "zqxuser"
    (home / "cuda" / "lib64").mkdir(parents=True)
    env = {
        "HOME": str(home),
        "USER": "zqxuser",
        "LOGNAME": "zqxuser",
        "LD_LIBRARY_PATH": f"{home}/cuda/lib64",
        "CUDA_HOME": f"{home}/cuda",
        "HF_TOKEN": "hf_QmVyeVNlY3JldFRva2VuVmFsdWUxMjM0",
    }
    saved = tmp_path / "facts.json"
    collected = gpudoctor("collect", "-o", str(saved), "--timeout", "60", cwd=tmp_path, env=env)
    assert collected.returncode == 0, collected.stderr
    assert collected.stderr.startswith(f"gpudoctor: facts saved to {saved} (redacted")
    text = saved.read_text(encoding="utf-8")
    assert "zqxuser" not in text and "hf_QmVyeVNlY3JldFRva2VuVmFsdWUxMjM0" not in text
    live = gpudoctor("check", "--json", "--timeout", "60", cwd=tmp_path, env=env)
    replay = gpudoctor("check", "--json", "--facts", str(saved), cwd=tmp_path, env=env)

    def codes(out: str) -> list[tuple[str, str]]:
        return [(f["code"], f["severity"]) for f in json.loads(out)["findings"]]

    assert codes(replay.stdout) == codes(live.stdout)
    assert replay.returncode == live.returncode
    # What is shared is redacted too; the terminal report keeps the names readable.
    assert "zqxuser" not in live.stdout
    kept = gpudoctor("collect", "--no-redact", "--timeout", "60", cwd=tmp_path, env=env)
    assert "zqxuser" in kept.stdout


def test_collect_to_an_unwritable_place_is_one_line(tmp_path: Path) -> None:
    result = gpudoctor("collect", "-o", str(tmp_path / "missing" / "f.json"), "--timeout", "60", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gpudoctor: error: cannot write {tmp_path / 'missing' / 'f.json'}: No such file or directory"
    ]


@pytest.mark.parametrize("columns", [40, 80, 120])
def test_explain_page_code_lines_are_whole_on_a_terminal(columns: int) -> None:
    from gpudoctor import explain as explanations

    page = explanations.load("GD204")
    assert page is not None
    fenced_lines = [
        line.strip()
        for block in re.findall(r"^```[a-z]*\n(.*?)\n```$", page.body, re.DOTALL | re.MULTILINE)
        for line in block.splitlines()
        if line.strip()
    ]
    assert any(len(line) > columns for line in fenced_lines) or columns == 120
    lines = [line.strip() for line in run_in_terminal(["explain", "GD204"], columns).splitlines()]
    for line in fenced_lines:
        assert line in lines, f"{line!r} split at {columns} columns"
