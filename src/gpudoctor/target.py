"""Choose the interpreter whose environment is diagnosed: the user's, not gpudoctor's."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from gpudoctor.runner import which

if TYPE_CHECKING:
    from gpudoctor.facts import TargetFacts


def _env_python(prefix: str) -> str | None:
    root = Path(prefix)
    candidates = (
        [root / "python.exe", root / "Scripts" / "python.exe"]
        if os.name == "nt"
        else [root / "bin" / "python3", root / "bin" / "python"]
    )
    return next((str(c) for c in candidates if c.exists()), None)


def select_target(python: str | None, env: Mapping[str, str], cwd: str) -> TargetFacts:
    """--python, else the active venv, else the active conda env, else python3/python on PATH, else us."""
    from gpudoctor.facts import TargetFacts

    found, selected_by = choose_python(python, env)
    return TargetFacts(python=found, selected_by=selected_by, cwd=cwd)  # type: ignore[arg-type]


def choose_python(python: str | None, env: Mapping[str, str]) -> tuple[str, str]:
    """(interpreter, how it was chosen) as `select_target` chooses; imports nothing heavy, so the entry
    point can start children with it before the rest of gpudoctor loads."""
    if python:
        resolved = which(python, env) if os.sep not in python and "/" not in python else python
        return resolved or python, "--python"
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = env.get(variable)
        if prefix and (found := _env_python(prefix)):
            return found, variable
    for name in ("python3", "python"):
        found = which(name, env)
        if found and not _is_windows_store_stub(found):
            return found, "PATH"
    return sys.executable, "self"


def _is_windows_store_stub(path: str) -> bool:
    """The WindowsApps python.exe alias opens the Store instead of running Python when none is installed."""
    return os.name == "nt" and "windowsapps" in path.lower() and Path(path).stat().st_size == 0
