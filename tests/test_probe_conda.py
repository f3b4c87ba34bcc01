"""The conda probe over fake prefixes: conda-meta records, a fake `conda` on PATH, broken records."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gpudoctor import conda_meta, prestart
from gpudoctor.facts import CondaPackage
from gpudoctor.probes import conda
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.child_process import parse_marker
from gpudoctor.runner import CommandResult
from tests.conftest import OUTPUTS, FakeCall, FakeProgram, RecordingRunner, fake_program, make_ctx

RECORDS: list[dict[str, object]] = [
    {
        "build": "hbe64b41_10",
        "build_number": 10,
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "depends": ["__glibc >=2.17,<3.0.a0"],
        "files": ["lib/libcudart.so.11.2.152", "lib/libcudart.so.11.0"],
        "fn": "cudatoolkit-11.2.2-hbe64b41_10.tar.bz2",
        "name": "cudatoolkit",
        "subdir": "linux-64",
        "url": "https://conda.anaconda.org/conda-forge/linux-64/cudatoolkit-11.2.2-hbe64b41_10.tar.bz2",
        "version": "11.2.2",
    },
    {
        "build": "h90431f1_0",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "name": "cudnn",
        "version": "8.1.0.77",
    },
    {
        "build": "py3.9_cpu_0",
        "channel": "https://conda.anaconda.org/pytorch/linux-64",
        "name": "pytorch",
        "version": "2.1.0",
    },
    {
        "build": "h955ad1f_0",
        "channel": "https://repo.anaconda.com/pkgs/main/linux-64",
        "name": "python",
        "version": "3.9.18",
    },
]


def fake_conda_list(bin_dir: Path, prefix: Path, **answer: Any) -> FakeProgram:
    """conda as the probe runs it: `conda list --json --prefix <the target env>` only."""
    return fake_program(
        bin_dir, "conda", FakeCall(argv=("list", "--json", "--prefix", str(prefix)), **answer)
    )


def make_prefix(base: Path, records: list[dict[str, object]] = RECORDS) -> Path:
    meta = base / "conda-meta"
    meta.mkdir(parents=True)
    (meta / "history").write_text("==> 2024-01-01 00:00:00 <==\n", encoding="utf-8")
    for record in records:
        (meta / f"{record['name']}-{record['version']}-{record['build']}.json").write_text(
            json.dumps(record), encoding="utf-8"
        )
    return base


@pytest.mark.parametrize(
    ("channel", "short"),
    [
        ("https://conda.anaconda.org/conda-forge/linux-64", "conda-forge"),
        ("https://conda.anaconda.org/conda-forge/noarch", "conda-forge"),
        ("https://conda.anaconda.org/pytorch/win-64", "pytorch"),
        ("https://conda.anaconda.org/nvidia/label/cuda-11.8.0/linux-64", "nvidia"),
        ("https://conda.anaconda.org/t/ab-12345/private/linux-64", "private"),
        ("https://repo.anaconda.com/pkgs/main/linux-64", "defaults"),
        ("https://repo.anaconda.com/pkgs/r/noarch", "defaults"),
        ("https://mirrors.tuna.tsinghua.edu.cn/anaconda/pkgs/main/linux-64", "defaults"),
        ("https://mirrors.tuna.tsinghua.edu.cn/anaconda/cloud/conda-forge/linux-64", "conda-forge"),
        ("https://conda.anaconda.org/conda-forge/linux-64/cudnn-8.1.0.77-h90431f1_0.tar.bz2", "conda-forge"),
        ("pkgs/main", "defaults"),
        ("conda-forge", "conda-forge"),
        ("pypi", "pypi"),
        ("<unknown>", ""),
        ("", ""),
        ("https://", ""),
    ],
)
def test_short_channel_names(channel: str, short: str) -> None:
    assert conda_meta.short_channel(channel) == short


@pytest.mark.parametrize(
    "text", ["", "{", "[]", '{"name": "x"}', '{"version": "1"}', '{"name": "", "version": "1"}', "null"]
)
def test_parse_record_rejects_non_records(text: str) -> None:
    with pytest.raises(ValueError):
        conda.parse_record(text)


@pytest.mark.parametrize("text", ["", "{}", '"text"', "not json at all"])
def test_parse_conda_list_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError):
        conda.parse_conda_list(text)


def test_reads_conda_meta_of_the_active_env_the_target_lives_in(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "miniconda3" / "envs" / "tf")
    scripts = prefix / "etc" / "conda" / "activate.d"
    scripts.mkdir(parents=True)
    (scripts / "env_vars.sh").write_text(
        "export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$CONDA_PREFIX/lib/\n", encoding="utf-8"
    )
    (scripts / "libblas_mkl_activate.sh").write_text(
        "export MKL_INTERFACE_LAYER=LP64,GNU\n", encoding="utf-8"
    )
    env = {"CONDA_PREFIX": str(prefix), "CONDA_DEFAULT_ENV": "tf"}

    facts = conda.collect(make_ctx(env=env, python=str(prefix / "bin" / "python")))

    assert facts.prefix == str(prefix)
    assert (facts.is_target, facts.env_name, facts.source) == (True, "tf", "conda-meta")
    assert set(facts.packages) == {
        CondaPackage(name="cudatoolkit", version="11.2.2", build="hbe64b41_10", channel="conda-forge"),
        CondaPackage(name="cudnn", version="8.1.0.77", build="h90431f1_0", channel="conda-forge"),
        CondaPackage(name="pytorch", version="2.1.0", build="py3.9_cpu_0", channel="pytorch"),
        CondaPackage(name="python", version="3.9.18", build="h955ad1f_0", channel="defaults"),
    }
    assert facts.unreadable == ()
    assert facts.activate_scripts == ("env_vars.sh", "libblas_mkl_activate.sh")
    assert facts.activate_sets_library_path is True
    summary = conda.describe(facts).summary
    assert "env 'tf' at " in summary and "4 packages" in summary
    assert "cudatoolkit 11.2.2, cudnn 8.1.0.77" in summary


def test_target_own_prefix_without_activation_and_commented_out_script(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "miniconda3" / "envs" / "torch")
    scripts = prefix / "etc" / "conda" / "activate.d"
    scripts.mkdir(parents=True)
    (scripts / "old.sh").write_text("# export LD_LIBRARY_PATH=$CONDA_PREFIX/lib\n", encoding="utf-8")

    facts = conda.collect(make_ctx(env={}, python=str(prefix / "bin" / "python3.9")))

    assert (facts.prefix, facts.is_target, facts.env_name) == (str(prefix), True, "torch")
    assert facts.activate_sets_library_path is False


def test_base_env_is_named_base(tmp_path: Path) -> None:
    base = make_prefix(tmp_path / "miniforge3")
    (base / "condabin").mkdir()
    facts = conda.collect(make_ctx(env={}, python=str(base / "bin" / "python")))
    assert facts.env_name == "base"


def test_venv_on_top_of_an_active_conda_env_is_not_the_target(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "envs" / "ml")
    venv_python = tmp_path / "project" / ".venv" / "bin" / "python"
    facts = conda.collect(make_ctx(env={"CONDA_PREFIX": str(prefix)}, python=str(venv_python)))
    assert facts.prefix == str(prefix)
    assert facts.is_target is False
    assert "not the target" in conda.describe(facts).summary


def test_not_a_conda_environment(tmp_path: Path) -> None:
    with pytest.raises(ProbeUnavailable, match="not a conda environment"):
        conda.collect(make_ctx(env={}, python=str(tmp_path / "venv" / "bin" / "python")))


def test_corrupt_and_foreign_records_are_listed_not_raised(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env")
    (prefix / "conda-meta" / "cudnn-8.9.2.26-cuda12_0.json").write_text(
        '{"name": "cudnn", "vers', encoding="utf-8"
    )
    (prefix / "conda-meta" / "binary-1-0.json").write_bytes(b"\xff\xfe\x00garbage")
    (prefix / "conda-meta" / "list-1-0.json").write_text("[1, 2, 3]", encoding="utf-8")

    facts = conda.collect(make_ctx(env={}, python=str(prefix / "bin" / "python")))

    assert len(facts.packages) == len(RECORDS)
    assert set(facts.unreadable) == {"cudnn-8.9.2.26-cuda12_0.json", "binary-1-0.json", "list-1-0.json"}
    assert conda.describe(facts).mark == "warn"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads folders whatever their mode")
def test_unreadable_conda_meta_without_conda_is_reported(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env")
    (prefix / "conda-meta").chmod(0)
    try:
        facts = conda.collect(
            make_ctx(env={"PATH": str(tmp_path / "empty")}, python=str(prefix / "bin" / "python"))
        )
    finally:
        (prefix / "conda-meta").chmod(0o755)
    assert facts.packages == ()
    assert facts.unreadable and "conda-meta" in facts.unreadable[0]
    assert facts.list_error is not None


def test_unreadable_conda_meta_falls_back_to_conda_list(tmp_path: Path, bin_dir: Path) -> None:
    prefix = tmp_path / "env"
    prefix.mkdir()
    (prefix / "conda-meta").write_text("a file where the folder should be", encoding="utf-8")
    fake = fake_conda_list(bin_dir, prefix, stdout=OUTPUTS / "conda-list-tf.json")
    env = {"CONDA_PREFIX": str(prefix), "CONDA_EXE": str(fake)}

    facts = conda.collect(make_ctx(env=env, python=str(prefix / "bin" / "python")))

    assert facts.source == "conda list"
    assert facts.conda_exe == str(fake)
    by_name = {p.name: p for p in facts.packages}
    assert by_name["tensorflow"] == CondaPackage(
        name="tensorflow", version="2.10.1", build="pypi_0", channel="pypi"
    )
    assert by_name["python"].channel == "defaults"
    assert by_name["cudnn"].version == "8.1.0.77"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"stdout": "CondaError: prefix does not exist", "exit_code": 1}, "status 1"),
        ({"stdout": '{"error": "EnvironmentLocationNotFound"}'}, "unusable"),
        ({"stdout": "", "signal": "SEGV"}, "SIGSEGV"),
    ],
)
def test_failing_conda_list_is_a_fact(
    tmp_path: Path, bin_dir: Path, kwargs: dict[str, object], needle: str
) -> None:
    prefix = tmp_path / "env"
    prefix.mkdir()
    (prefix / "conda-meta").write_text("", encoding="utf-8")
    fake_conda_list(bin_dir, prefix, **kwargs)
    env = {"CONDA_PREFIX": str(prefix), "PATH": f"{bin_dir}:{os.defpath}"}

    facts = conda.collect(make_ctx(env=env, python=str(prefix / "bin" / "python")))

    assert facts.packages == () and facts.source is None
    assert facts.list_error is not None and needle in facts.list_error


def test_conda_meta_that_is_not_a_folder_and_no_conda_is_reported(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    prefix.mkdir()
    (prefix / "conda-meta").write_text("", encoding="utf-8")
    env = {"CONDA_PREFIX": str(prefix), "PATH": str(tmp_path / "empty")}

    facts = conda.collect(make_ctx(env=env, python=str(prefix / "bin" / "python")))

    assert (facts.packages, facts.source, facts.conda_exe) == ((), None, None)
    assert facts.unreadable and facts.unreadable[0].startswith(str(prefix / "conda-meta"))
    assert facts.list_error is not None and "no conda executable" in facts.list_error


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"channel": ""},
        {"channel": None},
        {"build": ""},
        {"build": 3},
        {"schannel": "pytorch", "channel": ""},
        {"name": 'odd"name\\x'},
        {"version": ""},
        {"url": "https://conda.anaconda.org/nvidia/linux-64/x.conda", "channel": ""},
    ],
)
def test_a_record_in_condas_layout_reads_as_the_full_decoder_reads_it(change: dict[str, object]) -> None:
    """parse_record finds the members it uses without decoding the file lists (issue #12); the
    answer must be the one json.loads of the whole record gives (a leading space forces that path)."""
    record = {
        "build": "h1234_0",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "depends": ["python >=3.11"],
        "files": [f"lib/python3.11/site-packages/pkg/mod{k}.py" for k in range(20)],
        "name": "cudnn",
        "paths_data": {"paths": [{"_path": "lib/libcudnn.so.9", "size_in_bytes": 1}], "paths_version": 1},
        "url": "https://conda.anaconda.org/conda-forge/linux-64/cudnn-9.1.0-h1234_0.conda",
        "version": "9.1.0",
        **change,
    }
    text = json.dumps(record, indent=2, sort_keys=True)

    def parsed(text: str) -> object:
        try:
            return conda.parse_record(text)
        except ValueError as exc:
            return f"ValueError: {exc}"

    assert parsed(text) == parsed(" " + text)
    if not change:
        assert conda_meta.used_fields(text) is not None  # the quick path was taken


def _conda_python(prefix: Path) -> str:
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    return str(prefix / "bin" / "python")


def test_the_records_are_read_by_the_child_prestart_starts(tmp_path: Path) -> None:
    """The probe asks for exactly the program prestart started at t≈0, and takes its answer."""
    prefix = make_prefix(tmp_path / "env")
    python = _conda_python(prefix)
    env = {"PATH": os.defpath, "PYTHONPATH": "/abs"}
    answer = {"records": [["cudnn", "9.1.0", "h1_0", "conda-forge"]], "unreadable": ["bad.json"]}
    answering = RecordingRunner(
        CommandResult(argv=(), returncode=0, stdout="@@GPUDOCTOR@@ " + json.dumps(answer) + "\n")
    )
    ctx = dataclasses.replace(make_ctx(python=python, env=env, system="Linux"), runner=answering)
    facts = conda.collect(ctx)
    assert facts.packages == (
        CondaPackage(name="cudnn", version="9.1.0", build="h1_0", channel="conda-forge"),
    )
    assert facts.unreadable == ("bad.json",)
    chosen = conda_meta.choose_prefix(python, ctx.env, windows=False)
    assert chosen == (str(prefix), True)
    assert answering.asked[0] == (*prestart.conda_child(str(prefix / "conda-meta"), ctx.env), None)
    assert "PYTHONPATH" not in (answering.asked[0][1] or {})


@pytest.mark.parametrize(
    "stdout", ["", '@@GPUDOCTOR@@ {"records": [[1, 2]], "unreadable": []}\n', "@@GPUDOCTOR@@ [1]\n"]
)
def test_a_child_without_a_usable_answer_means_the_records_are_read_here(tmp_path: Path, stdout: str) -> None:
    prefix = make_prefix(tmp_path / "env")
    expected = conda.collect(make_ctx(python=_conda_python(prefix), system="Linux"))
    answering = RecordingRunner(CommandResult(argv=(), returncode=0, stdout=stdout))
    ctx = dataclasses.replace(make_ctx(python=_conda_python(prefix), system="Linux"), runner=answering)
    assert conda.collect(ctx) == expected
    assert len(expected.packages) == len(RECORDS) and answering.asked


def test_the_child_reads_as_this_process_reads(tmp_path: Path) -> None:
    prefix = make_prefix(tmp_path / "env")
    (prefix / "conda-meta" / "broken-1-0.json").write_text("{", encoding="utf-8")
    (prefix / "conda-meta" / "B-upper-1-0.json").write_text(json.dumps(RECORDS[1], indent=2, sort_keys=True))
    argv, env = prestart.conda_child(str(prefix / "conda-meta"), os.environ)
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
    assert parse_marker(done.stdout) == conda_meta.read_folder(str(prefix / "conda-meta"))
    assert conda_meta.read_folder(str(prefix / "conda-meta"))["unreadable"] == ["broken-1-0.json"]
    assert conda_meta.read_folder(str(tmp_path / "none")) == {"error": "No such file or directory"}


@pytest.mark.parametrize(
    ("file_name", "change", "quick"),
    [
        ("cudnn-9.1.0-h1234_0.json", {}, True),
        (
            "cuda-nvcc-impl-12.4.131-h7f3b2c9_1.json",
            {"name": "cuda-nvcc-impl", "version": "12.4.131", "build": "h7f3b2c9_1"},
            True,
        ),
        ("cudnn-9.1.0-h1234_0.json", {"build": "h9999_0"}, False),  # the file name is not the record's
        ("cudnn-9.1.0.json", {}, False),
        ("cudnn-9.1.0-h1234_0.json", {"channel": ""}, False),
        ("cudnn-9.1.0-h1234_0.json", {"build_number": 3}, True),
        ("cudnn-9.1.0-h1234_0.json", {"arch": "x86_64"}, False),  # a member before build: not the layout
    ],
)
def test_a_record_read_from_its_name_and_head_reads_as_the_whole_record(
    tmp_path: Path, file_name: str, change: dict[str, object], quick: bool
) -> None:
    """conda names a record name-version-build.json and writes build and channel first: those two and the
    name are enough (issue #12), and the answer is the whole record's whenever the head agrees."""
    record = {
        "build": "h1234_0",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
        "files": [f"lib/libx{k}.so" for k in range(400)],
        "name": "cudnn",
        "version": "9.1.0",
        **change,
    }
    text = json.dumps(record, indent=2, sort_keys=True)
    folder = tmp_path / "conda-meta"
    folder.mkdir()
    (folder / file_name).write_text(text, encoding="utf-8")
    assert (conda_meta.head_fields(file_name, text[: conda_meta.HEAD_BYTES]) is not None) is quick
    name, version, build, channel = conda_meta.record_fields(text)
    assert conda_meta.read_folder(str(folder))["records"] == [
        [name, version, build, conda_meta.short_channel(channel)]
    ]
