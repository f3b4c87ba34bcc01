"""A plain `gpudoctor check` runs without typer: the entry point's own reading of argv must give what
typer would give for the same command line, or leave it to typer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from gpudoctor import checking
from gpudoctor.checking import CheckOptions, options_from_argv
from gpudoctor.cli import app
from gpudoctor.serde import to_data
from tests.conftest import modules_imported_by
from tests.test_machines import load_machine, machine_files

# Command lines the entry point reads itself (and must read as typer does).
READ_HERE = [
    ["check"],
    ["check", "--json"],
    ["check", "--python", "/opt/env/bin/python", "--timeout", "5"],
    ["check", "--python=/opt/env/bin/python", "--timeout=1e1", "-v"],
    ["check", "-f", "markdown", "-o", "report.md", "--verbose"],
    ["check", "--format", "junit", "--output", "-", "--save-facts", "facts.json", "--no-redact"],
    ["check", "--facts", "saved.json", "--matrix", "other.yaml"],
    ["check", "--fail-on", "warning", "--require-gpu", "--require", "torch", "--require=jax"],
    ["check", "--format", "github", "--no-annotations", "--format", "text"],  # the last one counts
    ["check", "--timeout", " 7 "],
    ["check", "--format", "no-such-format"],  # a value typer passes on: check_format refuses it
]
# Command lines left to typer: help, errors it reports, forms this reader does not take.
LEFT_TO_TYPER = [
    ["check", "--help"],
    ["check", "-h"],
    ["check", "--unknown"],
    ["check", "extra-argument"],
    ["check", "-vf", "json"],
    ["check", "-fjson"],
    ["check", "--python"],
    ["check", "--output", "--json"],
    ["check", "--python", ""],
    ["check", "--timeout", "0.5"],
    ["check", "--timeout", "nan"],
    ["check", "--timeout", "inf"],
    ["check", "--timeout", "soon"],
    ["check", "--fail-on", "Warning"],
    ["check", "--require", "mxnet"],
    ["check", "--json=yes"],
    ["check", "--", "--json"],
    ["explain", "GD101"],
    ["--version"],
    [],
]


def typer_options(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> CheckOptions:
    seen: list[CheckOptions] = []

    def run(options: CheckOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(checking, "run", run)
    app(args=argv, standalone_mode=False)  # typer.Exit(code) is returned in this mode, not raised
    assert len(seen) == 1, argv
    return seen[0]


@pytest.mark.parametrize("argv", READ_HERE, ids=" ".join)
def test_what_the_entry_point_reads_typer_reads_alike(
    argv: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = options_from_argv(argv)
    assert mine is not None
    assert mine == typer_options(argv, monkeypatch)


@pytest.mark.parametrize("argv", LEFT_TO_TYPER, ids=lambda argv: " ".join(argv) or "(none)")
def test_anything_unsure_is_left_to_typer(argv: list[str]) -> None:
    assert options_from_argv(argv) is None


def test_the_reader_knows_every_option_of_check_and_no_other() -> None:
    command = typer.main.get_command(app).commands["check"]  # type: ignore[attr-defined]
    valued = {opt for p in command.params if not p.is_flag for opt in p.opts}
    flags = {opt for p in command.params if p.is_flag for opt in p.opts} - {"--help", "-h"}
    assert valued == set(checking.VALUED)
    assert flags == set(checking.FLAGS)
    fields = set(CheckOptions.__dataclass_fields__)
    assert set(checking.VALUED.values()) | set(checking.FLAGS.values()) == fields


def test_a_plain_check_never_imports_typer_and_ends_as_typers_would(tmp_path: Path) -> None:
    facts, _ = load_machine(machine_files()[0])
    saved = tmp_path / "facts.json"
    saved.write_text(json.dumps(to_data(facts)), encoding="utf-8")
    imported, done = modules_imported_by(tmp_path, "check", "--facts", str(saved))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "gpudoctor.render.text" in imported and "gpudoctor.checking" in imported
    assert not {name for name in imported if name.split(".")[0] in ("typer", "click")}
    assert "gpudoctor.cli" not in imported

    imported, bad = modules_imported_by(tmp_path, "check", "--facts", str(saved), "--format", "yaml")
    assert "typer" not in imported
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.startswith("gpudoctor: error: ") and "yaml" in bad.stderr
    assert "Traceback" not in bad.stderr

    imported, helped = modules_imported_by(tmp_path, "check", "--help")
    assert "typer" in imported and helped.returncode == 0 and "--require-gpu" in helped.stdout
