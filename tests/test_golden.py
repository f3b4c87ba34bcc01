"""Golden outputs: the text report (80 columns, as piped) and the JSON report of every fake machine.

A change of output is a visible diff in tests/golden/. After an intended change, regenerate with
`GPUDOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from rich.console import Console

from gpudoctor.render.json import dumps_report
from gpudoctor.render.text import render_report
from tests.test_machines import machine_files, run_machine

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GPUDOCTOR_UPDATE_GOLDEN") == "1"


def _text(path: Path) -> str:
    report, _ = run_machine(path)
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=False, color_system=None, highlight=False)
    console.soft_wrap = True
    render_report(report, console, verbose=False)
    return buffer.getvalue()


def _json(path: Path) -> str:
    report, _ = run_machine(path)
    root = str(Path(__file__).resolve().parent.parent)
    return dumps_report(report).replace(root, "<repo>") + "\n"


def _compare(name: str, actual: str) -> None:
    golden = GOLDEN / name
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"no golden output {golden}; regenerate with GPUDOCTOR_UPDATE_GOLDEN=1"
    assert actual == golden.read_text(encoding="utf-8"), f"{name} differs from its golden output"


@pytest.mark.parametrize("path", machine_files(), ids=lambda p: p.stem)
def test_text_report_matches_golden(path: Path) -> None:
    _compare(f"{path.stem}.txt", _text(path))


@pytest.mark.parametrize("path", machine_files(), ids=lambda p: p.stem)
def test_json_report_matches_golden(path: Path) -> None:
    _compare(f"{path.stem}.json", _json(path))
