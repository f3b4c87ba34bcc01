"""Piped output without rich (issue #12): the same bytes rich prints there, the same screen rich detects."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pytest

from gpudoctor.render import RenderOptions, renderer
from gpudoctor.render import text as text_renderer
from gpudoctor.render.screen import Screen, _plain_screen
from gpudoctor.serde import to_data
from tests.conftest import modules_imported_by
from tests.test_golden import _run
from tests.test_machines import load_machine, machine_files


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"COLUMNS": "120"},
        {"COLUMNS": "0"},
        {"COLUMNS": "wide"},
        {"NO_COLOR": "1"},
        {"NO_COLOR": ""},
        {"TERM": "dumb", "LINES": "10", "COLUMNS": "61"},
        {"FORCE_COLOR": "1"},
        {"FORCE_COLOR": ""},
        {"TTY_COMPATIBLE": "1"},
        {"TTY_COMPATIBLE": "0"},
    ],
)
@pytest.mark.parametrize("encoding", ["utf-8", "ascii", "cp1252"])
def test_a_piped_screen_is_what_rich_detects(
    env: dict[str, str], encoding: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in ("COLUMNS", "LINES", "NO_COLOR", "TERM", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    read, write = os.pipe()
    os.close(read)
    with (
        os.fdopen(write, "w", encoding=encoding) as pipe,
        (tmp_path / "f").open("w", encoding=encoding) as file,
    ):
        for stream in (pipe, file, io.StringIO()):
            assert Screen.of(stream) == Screen.as_rich_sees(stream)
            if not {"FORCE_COLOR", "TTY_COMPATIBLE"} & set(env) and sys.platform != "win32":
                assert _plain_screen(stream) is not None  # decided without rich


@pytest.mark.parametrize("path", machine_files()[::3], ids=lambda p: p.stem)
@pytest.mark.parametrize(
    "screen", [Screen(), Screen(width=30, encoding="ascii", no_color=True)], ids=["80", "30"]
)
def test_the_plain_report_is_what_rich_prints_piped(path: Path, screen: Screen) -> None:
    run = _run(path)
    for verbose in (False, True):
        plain = renderer("text")(run, RenderOptions(screen=screen, verbose=verbose))
        console, buffer = screen.console()
        text_renderer.render_report(
            run.report, console, verbose=verbose, decision=run.decision, origin=run.origin
        )
        assert plain == buffer.getvalue()


def test_a_piped_check_never_imports_rich(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    facts, _ = load_machine(machine_files()[0])
    saved = tmp_path / "facts.json"
    saved.write_text(json.dumps(to_data(facts)), encoding="utf-8")
    imported, done = modules_imported_by(tmp_path, "check", "--facts", str(saved))
    assert done.returncode in (0, 1), done.stderr[-2000:]
    assert "gpudoctor " in done.stdout
    assert "gpudoctor.render.text" in imported
    assert not {name for name in imported if name.split(".")[0] == "rich"}
