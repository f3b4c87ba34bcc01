"""`gpudoctor fleet` through the real CLI: real reports and facts from the fake machines, hostile files."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.fleet import (
    FleetUsageError,
    Node,
    _report_node,
    _usual_report,
    clean,
    expand_hostlist,
    gather,
    hostlist,
    natural_key,
    node_names,
    timeless_key,
)
from gpudoctor.matrix import load_matrix
from gpudoctor.render.json import dumps_report
from tests.test_cli import HEALTHY, NO_DRIVER, gpudoctor, write_facts
from tests.test_machines import MACHINES, run_machine

BROKEN_MODULE = MACHINES / "case-C69-module-not-built-for-kernel.yaml"  # GD102 error
NO_UVM = MACHINES / "case-C61-container-without-nvidia-uvm.yaml"  # GD502 error
JAX_CPU = MACHINES / "case-C51-pip-jax-cpu-on-gpu.yaml"  # GD702 error


def write_report(path: Path, machine: Path) -> dict[str, Any]:
    report, _ = run_machine(machine)
    text = dumps_report(report)
    path.write_text(text, encoding="utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def fleet_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = gpudoctor("fleet", "--format", "json", *args)
    assert "Traceback" not in result.stderr
    return result.returncode, json.loads(result.stdout)


@pytest.fixture
def cluster(tmp_path: Path) -> Path:
    """Ten nodes: seven healthy facts files, two reports with the same root cause, one with another."""
    folder = tmp_path / "reports"
    folder.mkdir()
    for i in (1, 2, 3, 4, 5, 6, 9):
        write_facts(folder / f"gpu-{i:02d}.json", HEALTHY)
    write_report(folder / "gpu-07.json", BROKEN_MODULE)
    write_report(folder / "gpu-08.json", BROKEN_MODULE)
    write_report(folder / "gpu-10.json", NO_UVM)
    (folder / "slurm-1234.out").write_text("not a report; only *.json is read from folders\n")
    return folder


def test_groups_findings_by_root_cause_with_count_and_nodes(cluster: Path) -> None:
    code, data = fleet_json(str(cluster))
    assert code == 1
    assert data["summary"] == {
        "nodes": 10,
        "read": 10,
        "with_errors": 3,
        "with_warnings_only": 0,
        "healthy": 7,
        "unreadable": 0,
        "missing": 0,
    }
    by_code = {f["code"]: f for f in data["findings"]}
    report_codes = {f["code"] for f in json.loads((cluster / "gpu-07.json").read_text())["findings"]}
    assert set(by_code) >= report_codes | {"GD502"}
    top = data["findings"][0]
    assert top["severity"] == "error"
    assert by_code["GD102"]["count"] == 2
    assert by_code["GD102"]["nodes"] == ["gpu-07", "gpu-08"]
    assert by_code["GD102"]["hostlist"] == "gpu-[07-08]"
    assert by_code["GD502"]["nodes"] == ["gpu-10"]
    assert data["healthy"] == ["gpu-01", "gpu-02", "gpu-03", "gpu-04", "gpu-05", "gpu-06", "gpu-09"]
    nodes = {n["node"]: n for n in data["nodes"]}
    assert nodes["gpu-01"]["source"] == "facts"
    assert nodes["gpu-01"]["usable_gpu"] is True
    assert nodes["gpu-01"]["driver_version"] == "550.54.14"
    assert nodes["gpu-07"]["source"] == "report"
    assert nodes["gpu-07"]["state"] == "error"


def test_text_table_names_the_nodes_per_finding(cluster: Path) -> None:
    result = gpudoctor("fleet", str(cluster))
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert out.startswith("gpudoctor fleet: 10 nodes: 3 with errors, 0 with warnings only, 7 healthy\n")
    gd102 = next(line for line in out.splitlines() if " GD102 " in line)
    assert gd102.split()[:3] == ["error", "GD102", "2"]
    assert "gpu-[07-08]" in out
    assert "Healthy: 7 nodes\n  gpu-[01-06,09]\n" in out
    assert "Could not read" not in out


def test_facts_files_are_judged_by_the_real_engine(tmp_path: Path) -> None:
    facts = write_facts(tmp_path / "node-a.json", NO_DRIVER)
    check = gpudoctor("check", "--json", "--facts", str(facts))
    expected = [(f["code"], f["severity"]) for f in json.loads(check.stdout)["findings"]]
    assert expected, "the no-driver machine must have findings"
    code, data = fleet_json(str(facts))
    assert code == check.returncode == 1
    assert [(f["code"], f["severity"]) for f in data["findings"]] == expected
    assert all(f["nodes"] == ["node-a"] for f in data["findings"])


def test_all_healthy_exits_0_and_warnings_only_fail_when_asked(tmp_path: Path) -> None:
    write_facts(tmp_path / "a1.json", HEALTHY)
    report = write_report(tmp_path / "a2.json", JAX_CPU)
    report["findings"] = [dict(f, severity="warning") for f in report["findings"]]
    (tmp_path / "a2.json").write_text(json.dumps(report))
    code, data = fleet_json(str(tmp_path))
    assert code == 0
    assert data["summary"]["with_warnings_only"] == 1
    assert data["healthy"] == ["a1"]
    assert gpudoctor("fleet", "--fail-on", "warning", str(tmp_path)).returncode == 1
    (tmp_path / "a2.json").unlink()
    assert gpudoctor("fleet", str(tmp_path)).returncode == 0


def hostile_files(folder: Path) -> dict[str, str]:
    """Each bad file a node might leave behind, and the words its one line must contain."""
    (folder / "empty.json").write_text("")
    (folder / "truncated.json").write_text('{"schema_version": 1, "findings": [')
    (folder / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
    (folder / "deep-object.json").write_text('{"findings": ' + "[" * 100_000 + "]" * 100_000 + "}")
    (folder / "binary.json").write_bytes(b"\xff\xfe\x00garbage\x80")
    (folder / "list.json").write_text("[1, 2, 3]")
    (folder / "stranger.json").write_text('{"name": "some other tool"}')
    (folder / "bad-severity.json").write_text(
        json.dumps({"findings": [{"code": "GD101", "severity": "fatal", "title": "x"}]})
    )
    (folder / "bad-code.json").write_text(
        json.dumps({"findings": [{"code": "GD1\x1b[2J", "severity": "error", "title": "x"}]})
    )
    (folder / "wrong-types.json").write_text(json.dumps({"driver": {"gpus": "many"}, "probes": []}))
    (folder / "newer.json").write_text(json.dumps({"schema_version": 99, "probes": []}))
    (folder / "too-many.json").write_text(
        json.dumps({"findings": [{"code": "GD101", "severity": "error"}] * 5000})
    )
    with (folder / "huge.json").open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB that takes no disk
    (folder / "a-folder.json").mkdir()
    os.mkfifo(folder / "fifo.json")
    (folder / "dangling.json").symlink_to(folder / "nowhere")
    (folder / "bignum.json").write_text('{"findings": [], "schema_version": ' + "9" * 100_000 + "}")
    return {
        "empty": "empty file",
        "truncated": "not valid JSON",
        "deep": "levels deep: refused",
        "deep-object": "levels deep: refused",
        "binary": "not UTF-8",
        "list": "not a gpudoctor report",
        "stranger": "neither a gpudoctor report",
        "bad-severity": "not error, warning or info",
        "bad-code": "not a finding code",
        "wrong-types": "does not look like gpudoctor facts",
        "newer": "newer gpudoctor",
        "too-many": "5000 findings",
        "huge": "larger than 8.0 MB (64.0 MB): refused",
        "fifo": "not a regular file (a FIFO): refused",
        "dangling": "cannot open",
        "bignum": "not valid JSON",
    }


def test_every_hostile_file_is_one_line_and_the_rest_is_still_read(tmp_path: Path) -> None:
    folder = tmp_path / "hostile"
    folder.mkdir()
    expected = hostile_files(folder)
    write_facts(folder / "good.json", HEALTHY)
    # Files named on the command line are read whatever their name; folders give only *.json.
    code, data = fleet_json(str(folder), str(folder / "dangling.json"))
    assert code == 1
    assert data["healthy"] == ["good"]
    reasons = {u["node"]: u["reason"] for u in data["unreadable"]}
    assert set(reasons) == set(expected), reasons
    for node, words in expected.items():
        assert words in reasons[node], (node, reasons[node])
        assert "\n" not in reasons[node] and "\x1b" not in reasons[node]
    text = gpudoctor("fleet", str(folder))
    assert text.returncode == 1 and "Traceback" not in text.stderr and text.stderr == ""
    assert "\x1b" not in text.stdout
    block = text.stdout.split("Could not read: 16 nodes\n")[1]
    assert len(block.splitlines()) == 16


def test_control_characters_in_reports_and_names_are_made_visible(tmp_path: Path) -> None:
    report = write_report(tmp_path / "x.json", NO_UVM)
    report["findings"][0]["message"] = "evil\x1b]0;pwned\x07\r\nline \u202egnp.exe"
    name = tmp_path / "node\x1b[31m.json"
    name.write_text(json.dumps(report))
    (tmp_path / "x.json").unlink()
    for fmt in ("text", "markdown", "json"):
        result = gpudoctor("fleet", "--format", fmt, "-v", str(tmp_path))
        assert result.returncode == 1
        assert not any(c in result.stdout for c in "\x1b\x07\r\u202e"), fmt
        assert "\\x1b" in result.stdout or "\\\\x1b" in result.stdout


def test_markdown_escapes_and_tabulates(cluster: Path) -> None:
    report = json.loads((cluster / "gpu-10.json").read_text())
    report["findings"][0]["title"] = "a | b <script>alert(1)</script> `x`"
    (cluster / "gpu-10.json").write_text(json.dumps(report))
    result = gpudoctor("fleet", "--format", "markdown", str(cluster))
    out = result.stdout
    assert result.returncode == 1
    assert "| severity | code | finding | nodes | which |" in out
    assert "<script>" not in out and "\\<script\\>" in out
    assert "a \\| b" in out
    rows = [line for line in out.splitlines() if line.startswith("| error |")]
    assert all(line.count("|") - line.count("\\|") == 6 for line in rows), rows
    assert "### Healthy (7)" in out and "`gpu-[01-06,09]`" in out


def test_output_file_is_written_whole(cluster: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "fleet.json"
    target.parent.mkdir()
    result = gpudoctor("fleet", "--format", "json", "-o", str(target), str(cluster))
    assert result.returncode == 1 and result.stdout == ""
    assert json.loads(target.read_text())["summary"]["nodes"] == 10
    assert [p.name for p in target.parent.iterdir()] == ["fleet.json"]
    bad = gpudoctor("fleet", "-o", str(tmp_path / "missing" / "x.txt"), str(cluster))
    assert bad.returncode == 2
    assert bad.stderr.startswith("gpudoctor: error: cannot write") and "Traceback" not in bad.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "name at least one report"),
        (("/nonexistent/reports",), "no such file or folder"),
        (("--format", "yaml", "x"), "Invalid value"),
    ],
)
def test_bad_usage_exits_2(args: tuple[str, ...], words: str) -> None:
    result = gpudoctor("fleet", *args)
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr


def test_a_folder_without_reports_is_bad_usage(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = gpudoctor("fleet", str(tmp_path))
    assert result.returncode == 2 and "no *.json reports" in result.stderr


def test_expected_nodes_without_a_report_are_missing(cluster: Path) -> None:
    code, data = fleet_json("--expect", "gpu-[01-10],gpu-[11-12]", str(cluster))
    assert code == 1
    assert data["missing"] == ["gpu-11", "gpu-12"]
    assert data["summary"]["nodes"] == 12
    text = gpudoctor("fleet", "--expect", "gpu-[01-12]", str(cluster)).stdout
    assert "12 nodes: 3 with errors, 0 with warnings only, 7 healthy, 2 without a report" in text
    assert "No report from: 2 nodes\n  gpu-[11-12]\n" in text
    bad = gpudoctor("fleet", "--expect", "gpu-[01-", str(cluster))
    assert bad.returncode == 2 and "unbalanced brackets" in bad.stderr


def test_a_fleet_summary_in_the_folder_is_not_taken_for_a_node(cluster: Path) -> None:
    assert (
        gpudoctor("fleet", "--format", "json", "-o", str(cluster / "fleet.json"), str(cluster)).returncode
        == 1
    )
    code, data = fleet_json(str(cluster))
    assert code == 1
    assert data["unreadable"] == [
        {
            "node": "fleet",
            "path": str(cluster / "fleet.json"),
            "reason": "a `gpudoctor fleet` summary, not one node's report",
        }
    ]


def test_expand_hostlist() -> None:
    assert expand_hostlist("gpu-[01-03,07],login1") == ["gpu-01", "gpu-02", "gpu-03", "gpu-07", "login1"]
    assert expand_hostlist("a[1-2]b[3-4]") == ["a1b3", "a1b4", "a2b3", "a2b4"]
    assert expand_hostlist("n[9-11]") == ["n9", "n10", "n11"]
    assert expand_hostlist(hostlist([f"x{i:03d}" for i in range(5, 700, 3)])) == [
        f"x{i:03d}" for i in range(5, 700, 3)
    ]
    for bad in ("a[1-", "a]", "a[x]", "a[5-3]", "a[0-99999999]"):
        with pytest.raises(FleetUsageError):
            expand_hostlist(bad)


def test_hostlist_compresses_like_slurm() -> None:
    assert hostlist(["gpu-03", "gpu-01", "gpu-02", "gpu-07"]) == "gpu-[01-03,07]"
    assert hostlist(["n9", "n10", "n11"]) == "n[9-11]"
    assert hostlist(["gpu-09", "gpu-10"]) == "gpu-[09-10]"
    assert hostlist(["login", "a1b", "a2b", "a3b"]) == "a[1-3]b,login"
    assert hostlist(["x", "x"]) == "x"
    assert hostlist([f"node{i:05d}" for i in range(1, 10_001)]) == "node[00001-10000]"
    assert hostlist([]) == ""


def test_node_names_from_files() -> None:
    assert node_names([Path("r/gpu-1.json"), Path("r/gpu-2.JSON"), Path("r/odd")]) == [
        "gpu-1",
        "gpu-2",
        "odd",
    ]
    assert node_names([Path("a/n1.json"), Path("b/n1.json"), Path("b/n2.json")]) == ["a/n1", "b/n1", "n2"]
    assert node_names([Path("a/x.json"), Path("a/x.json")]) == ["a/x", "a/x#2"]
    assert sorted(["n10", "n9", "m"], key=natural_key) == ["m", "n9", "n10"]


def test_clean_caps_and_escapes() -> None:
    assert clean("ok") == "ok"
    assert clean("a\x1b[31mb\u202e") == "a\\x1b[31mb\\u202e"
    assert len(clean("x" * 10_000)) == 400


def test_reports_are_read_quickly_and_the_same_as_decoded_whole() -> None:
    golden = sorted((Path(__file__).parent / "golden").glob("*.json"))
    assert golden
    for path in golden:
        text = path.read_text(encoding="utf-8")
        quick = _usual_report("n", "p", text)
        assert quick is not None, path.name
        assert quick == _report_node("n", "p", json.loads(text)), path.name
        assert _usual_report("n", "p", text) == quick  # the second time from the checked head


@pytest.mark.parametrize(
    "text",
    [
        '{"facts": {"driver": {}}, "findings": []}',  # facts first: decoded whole
        '{"schema_version": 1, "probes": []}',  # a facts file
        '{"findings": [], "checks": [1, 2',  # cut short
        '{"findings": [] "facts": {}}',  # broken
        '{"findings": [], "facts": "not an object"}',
        '{"findings": [], "checks": [], "facts": {"driver": {}}}',  # compact: no layout to trust
        # a top-level member between facts and the driver found: that driver is not facts.driver
        '{\n  "findings": [],\n  "checks": [],\n  "facts": {\n    "x": 1\n  },\n  "other": {\n    "driver": {}\n  }\n}',
        '{\n  "findings": [],\n  "checks": [],\n  "facts": {\n    "driver": {"a": [',  # cut short
        '{\n  "findings": [],\n  "checks": [],\n  "facts": {\n    "driver": {"a": 1} x\n  }\n}',
        '{\n  "x": {\n  "checks": []},\n  "findings": [],\n  "checks": [],\n  "facts": {}\n}',  # odd indent
    ],
)
def test_odd_layouts_fall_back_to_decoding_the_whole_document(text: str) -> None:
    assert _usual_report("n", "p", text) is None


def test_many_files_are_read_in_worker_processes_with_the_same_result(
    cluster: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import gpudoctor.fleet

    monkeypatch.setattr(gpudoctor.fleet, "WORKER_CPUS", 1)  # this machine may have fewer than 4 CPUs
    assert gpudoctor.fleet._workers(40, 1) >= 2 or (os.cpu_count() or 1) < 2
    for i in range(11, 40):
        write_facts(cluster / f"gpu-{i:02d}.json", NO_DRIVER if i % 3 else HEALTHY)
    (cluster / "bad.json").write_text("{")
    sequential = gather([str(cluster)], load_matrix, parallel_from=10**9)
    parallel = gather([str(cluster)], load_matrix, parallel_from=1)
    assert parallel == sequential
    assert len(parallel.nodes) == 39 and len(parallel.unreadable) == 1


def test_a_report_in_another_layout_reads_the_same(tmp_path: Path) -> None:
    pretty, compact = tmp_path / "pretty", tmp_path / "compact"
    pretty.mkdir()
    compact.mkdir()
    for machine in (BROKEN_MODULE, NO_UVM, JAX_CPU):
        data = write_report(pretty / f"{machine.stem}.json", machine)
        (compact / f"{machine.stem}.json").write_text(json.dumps(data, separators=(",", ":")))
        assert _usual_report("n", "p", json.dumps(data)) is None  # decoded whole

    def nodes(folder: Path, parallel_from: int = 1000) -> list[Node]:
        return [
            replace(n, path="") for n in gather([str(folder)], load_matrix, parallel_from=parallel_from).nodes
        ]

    assert nodes(compact) == nodes(pretty) == nodes(pretty, parallel_from=1)
    assert all(n.findings for n in nodes(pretty)) and any(n.driver_version for n in nodes(pretty))


def test_a_finding_checked_once_does_not_vouch_for_a_different_one(tmp_path: Path) -> None:
    report = write_report(tmp_path / "a.json", NO_UVM)
    report["findings"][0]["title"] = ["not", "text"]
    (tmp_path / "b.json").write_text(json.dumps(report, indent=2))
    report["findings"][0]["title"] = None
    report["findings"][0]["severity"] = "fatal"
    (tmp_path / "c.json").write_text(json.dumps(report, indent=2))
    fleet = gather([str(tmp_path)], load_matrix)
    assert [n.name for n in fleet.nodes] == ["a"]
    assert {u.name: u.reason for u in fleet.unreadable} == {
        "b": "findings[0].title is list, not text",
        "c": "findings[0].severity is 'fatal', not error, warning or info",
    }


def test_facts_that_differ_only_in_probe_times_share_a_judgement() -> None:
    def probes(name: str, seconds: str, detail: str = "") -> str:
        return json.dumps({"probes": [{"name": name, "detail": detail, "seconds": 0}]}).replace(
            '"seconds": 0', f'"seconds": {seconds}'
        )

    assert timeless_key(probes("driver", "1.5")) == timeless_key(probes("driver", "0.25"))
    assert timeless_key(probes("driver", "12")) == timeless_key(probes("driver", "1e-05"))
    assert timeless_key(probes("driver", "1.5")) != timeless_key(probes("toolkit", "1.5"))
    # inside a string the quotes are escaped: that text is not a time and stays in the key
    assert timeless_key(probes("x", "1", '"seconds": 1')) != timeless_key(probes("x", "1", '"seconds": 2'))
