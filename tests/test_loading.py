"""Untrusted facts and matrix files: bounded before parsing, refused with one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.loading import (
    MAX_DEPTH,
    UntrustedInputError,
    excerpt,
    load_facts_file,
    load_matrix_file,
    parse_json,
    parse_yaml,
    read_bounded,
)
from gpudoctor.matrix import MatrixError, parse_matrix

REPO_MATRIX = Path(__file__).resolve().parents[1] / "compat_matrix.yaml"


def _within(seconds: float, fn: Any, *args: Any) -> Any:
    """Run fn in a thread: a regression that blocks (a FIFO read) fails the test instead of hanging it."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{fn.__name__} blocked"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


# -- read_bounded ----------------------------------------------------------------------------------


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "facts.json"
    os.mkfifo(fifo)
    with pytest.raises(UntrustedInputError, match=r"not a regular file \(a FIFO\)"):
        _within(5, read_bounded, fifo, 1000)


@pytest.mark.parametrize(("path", "kind"), [("/dev/zero", "a character device"), ("/", "a folder")])
def test_devices_and_folders_are_refused(path: str, kind: str) -> None:
    with pytest.raises(UntrustedInputError, match=f"not a regular file \\({kind}\\)"):
        _within(5, read_bounded, path, 1000)


def test_the_byte_cap_applies_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(50 * 1024 * 1024)  # sparse: costs nothing to make
    with pytest.raises(UntrustedInputError, match=r"larger than 1.0 MB \(50.0 MB\)"):
        read_bounded(big, 1024 * 1024)
    small = tmp_path / "small.json"
    small.write_text("{}")
    assert read_bounded(small, 2) == "{}"


def test_binary_and_missing_files(tmp_path: Path) -> None:
    binary = tmp_path / "b.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(UntrustedInputError, match="not a text file"):
        read_bounded(binary, 1000)
    with pytest.raises(FileNotFoundError):
        read_bounded(tmp_path / "absent.json", 1000)


# -- JSON and YAML -----------------------------------------------------------------------------


def test_json_nested_100000_levels_is_one_line() -> None:
    with pytest.raises(UntrustedInputError, match="nested more than"):
        parse_json("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UntrustedInputError, match="nested more than"):
        parse_json("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert parse_json("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_yaml_nested_deeply_is_one_line() -> None:
    with pytest.raises(UntrustedInputError, match=r"nesting depth|nested more than"):  # libyaml or ours
        parse_yaml("[" * 100_000 + "]" * 100_000)
    with pytest.raises(UntrustedInputError, match="nested more than"):
        parse_yaml("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    block = "".join(" " * i + "- \n" for i in range(0, 2 * (MAX_DEPTH + 2), 2))
    with pytest.raises(UntrustedInputError, match="nested more than"):
        parse_yaml(block)


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def test_billion_laughs_is_refused_before_it_expands() -> None:
    with pytest.raises(UntrustedInputError, match="aliases are expanded"):
        parse_yaml(BILLION_LAUGHS)


def test_billion_laughs_as_a_matrix_file(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text("schema: 1\n" + BILLION_LAUGHS)
    with pytest.raises(UntrustedInputError, match=r"m\.yaml: .*aliases are expanded"):
        load_matrix_file(path)


def test_small_aliases_still_work() -> None:
    assert parse_yaml("a: &x [1, 2]\nb: *x\nc: &s text\nd: *s") == {
        "a": [1, 2],
        "b": [1, 2],
        "c": "text",
        "d": "text",
    }


def test_a_huge_integer_is_a_yaml_error_not_a_crash() -> None:
    with pytest.raises(UntrustedInputError, match="not valid YAML"):
        parse_yaml("a: " + "9" * 20_000)


def test_the_real_matrix_passes_the_bounded_parser() -> None:
    text = REPO_MATRIX.read_text(encoding="utf-8")
    assert parse_matrix(text) == parse_matrix(text, trusted=True)


# -- Messages quote a bounded excerpt ------------------------------------------------------------


def test_excerpt_is_repr_for_short_values_and_cut_for_long_ones() -> None:
    assert excerpt("12.x") == repr("12.x")
    assert excerpt([1, 2]) == "[1, 2]"
    assert len(excerpt("x" * 10_000_000)) <= 60
    assert len(excerpt(list(range(1_000_000)))) <= 60
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    assert len(excerpt(deep)) <= 60


def test_a_matrix_error_quotes_an_excerpt(tmp_path: Path) -> None:
    text = REPO_MATRIX.read_text(encoding="utf-8").replace(
        'cuda: "12.2"', 'cuda: "' + "12." * 100_000 + '"', 1
    )
    with pytest.raises(MatrixError) as caught:
        parse_matrix(text)
    assert "is not a version" in str(caught.value)
    assert len(str(caught.value)) < 300


# -- Facts files ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"probes": [{}]}, r"\$\.probes\[0\]: missing 'name'"),
        ({"driver": {"gpus": [{"index": ["x"] * 100_000}]}}, r"\$\.driver\.gpus\[0\]\.index: expected int"),
        ({"schema_version": "2"}, "schema_version '2' is not a whole number"),
        ({"driver": {"driver_version": 535}}, r"\$\.driver\.driver_version: expected str, got int 535"),
    ],
)
def test_bad_facts_are_one_bounded_line(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps(document))
    with pytest.raises(UntrustedInputError, match=message) as caught:
        load_facts_file(path)
    assert "\n" not in str(caught.value)
    assert len(str(caught.value)) < 300


def test_facts_nested_deeply(tmp_path: Path) -> None:
    path = tmp_path / "facts.json"
    path.write_text('{"driver": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(UntrustedInputError, match=r"facts\.json: nested more than \d+ levels deep"):
        load_facts_file(path)


def test_a_large_list_of_rows_is_checked_in_n_log_n() -> None:
    """3,000 cuDNN rows once took 138 s (every pair compared). Non-overlapping rows load; the first
    overlap is named. (Timing lives in benchmarks/bench_untrusted.py.)"""
    base = REPO_MATRIX.read_text(encoding="utf-8")
    rows = "".join(
        f'  - {{versions: ">=100.{i},<100.{i + 1}", cuda: [12], source: s}}\n' for i in range(3000)
    )
    text = base.replace("cudnn_releases:\n", "cudnn_releases:\n" + rows, 1)
    assert len(parse_matrix(text).cudnn_releases) > 3000
    clash = base.replace(
        "cudnn_releases:\n",
        "cudnn_releases:\n" + rows + '  - {versions: ">=100.5,<100.7", cuda: [12], source: s}\n',
        1,
    )
    with pytest.raises(
        MatrixError, match=r"cudnn_releases\[<100.7,>=100.5\]: overlaps cudnn_releases\[<100.6,>=100.5\]"
    ):
        parse_matrix(clash)


# -- The CLI: one line, exit 2 ---------------------------------------------------------------------


def _gpudoctor(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1"}
    env.pop("GPUDOCTOR_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "gpudoctor", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "empty-probe", "deep"])
def test_check_refuses_hostile_facts_with_one_line(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "facts.json"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "dev-zero":
        path = Path("/dev/zero")
    elif kind == "empty-probe":
        path.write_text('{"probes": [{}]}')
    else:
        path.write_text("[" * 100_000 + "]" * 100_000)
    done = _gpudoctor("check", "--facts", str(path))
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpudoctor: error: "), done.stderr
    assert "Traceback" not in done.stderr


def test_matrix_command_refuses_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "m.yaml"
    os.mkfifo(fifo)
    done = _gpudoctor("matrix", "--matrix", str(fifo))
    assert done.returncode == 2
    assert done.stderr.strip() == f"gpudoctor: error: {fifo}: not a regular file (a FIFO): refused"
