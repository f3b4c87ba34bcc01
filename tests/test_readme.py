"""The README's set-up commands and sample reports stay true."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def setup_section() -> str:
    return README.split("## Set up", 1)[1].split("\n## ", 1)[0]


def test_exactly_two_setup_commands() -> None:
    blocks = re.findall(r"^```bash\n(.*?)\n```$", setup_section(), re.DOTALL | re.MULTILINE)
    assert len(blocks) == 2
    first, second = blocks
    assert first.endswith("gpudoctor check") and "pip install ." in first
    # Its own venv, never activated: gpudoctor then diagnoses the user's active environment.
    assert ". .venv/bin/activate" not in first and "activate" not in first
    assert second.endswith('pip install -e ".[test]" && python -m pytest')
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert 'pip install -e ".[test]" && python -m pytest' in ci  # CI runs the second word for word


def test_sample_reports_are_the_goldens() -> None:
    samples = re.findall(r"<!-- golden: (\S+) -->\n```\n(.*?)```\n", README, re.DOTALL)
    assert len(samples) >= 2
    for name, text in samples:
        golden = (ROOT / "tests" / "golden" / name).read_text(encoding="utf-8")
        assert text == golden, f"README sample {name} differs from tests/golden/{name}; copy it again"
