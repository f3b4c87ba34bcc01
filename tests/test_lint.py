"""The repository stays as clean as its style asks, on every clone CI tests: `ruff check`, `ruff format
--check` and `mypy --strict` over src and tests (pyproject.toml holds their settings)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    "tool",
    [("ruff", "check", "src", "tests"), ("ruff", "format", "--check", "src", "tests"), ("mypy",)],
    ids=["ruff", "ruff-format", "mypy-strict"],
)
def test_the_code_is_clean(tool: tuple[str, ...]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", *tool], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
