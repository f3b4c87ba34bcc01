"""Golden outputs: the text report (80 columns, as piped) and the JSON report of every fake machine.

A change of output is a visible diff in tests/golden/. After an intended change, regenerate with
`GPUDOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpudoctor.matrix import load_matrix
from gpudoctor.pipeline import Run, check
from gpudoctor.render import RenderOptions, renderer
from gpudoctor.render.screen import PLAIN
from tests.test_machines import load_machine, machine_files, machine_policy

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("GPUDOCTOR_UPDATE_GOLDEN") == "1"


def _run(path: Path) -> Run:
    facts, _ = load_machine(path)
    return check(facts=facts, matrix=load_matrix(), policy=machine_policy(path))


def _text(path: Path) -> str:
    """As piped at 80 columns."""
    return renderer("text")(_run(path), RenderOptions(screen=PLAIN))


def _json(path: Path) -> str:
    root = str(Path(__file__).resolve().parent.parent)
    return renderer("json")(_run(path), RenderOptions()).replace(root, "<repo>")


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


def test_every_golden_output_belongs_to_a_machine() -> None:
    """A renamed or removed machine must not leave its old outputs behind, looking current."""
    machines = {p.stem for p in machine_files()}
    orphans = sorted(p.name for p in GOLDEN.iterdir() if p.stem not in machines)
    if UPDATE:
        for name in orphans:
            (GOLDEN / name).unlink()
        return
    assert orphans == [], "golden outputs without a machine in tests/machines/ (regenerate to remove them)"


def test_readme_samples_follow_the_goldens() -> None:
    """Under GPUDOCTOR_UPDATE_GOLDEN=1 the README's sample reports are copied from the goldens just
    written (tests/test_readme.py checks them on every run)."""
    import re

    readme = Path(__file__).resolve().parent.parent / "README.md"
    text = readme.read_text(encoding="utf-8")

    def sample(match: re.Match[str]) -> str:
        golden = (GOLDEN / match.group(1)).read_text(encoding="utf-8")
        return f"<!-- golden: {match.group(1)} -->\n```\n{golden}```\n"

    updated = re.sub(r"<!-- golden: (\S+) -->\n```\n(.*?)```\n", sample, text, flags=re.DOTALL)
    if UPDATE:
        readme.write_text(updated, encoding="utf-8")
        return
    assert updated == text, (
        "README samples differ from the goldens; regenerate with GPUDOCTOR_UPDATE_GOLDEN=1"
    )
