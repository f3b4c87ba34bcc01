"""Choose the interpreter whose environment is diagnosed: the user's, not gpudoctor's."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from gpudoctor.facts import TargetFacts
from gpudoctor.runner import which


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
    if python:
        resolved = which(python, env) if os.sep not in python and "/" not in python else python
        return TargetFacts(python=resolved or python, selected_by="--python", cwd=cwd)
    for variable in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = env.get(variable)
        if prefix and (found := _env_python(prefix)):
            return TargetFacts(python=found, selected_by=variable, cwd=cwd)  # type: ignore[arg-type,unused-ignore]
    for name in ("python3", "python"):
        found = which(name, env)
        if found and not _is_windows_store_stub(found):
            return TargetFacts(python=found, selected_by="PATH", cwd=cwd)
    return TargetFacts(python=sys.executable, selected_by="self", cwd=cwd)


def _is_windows_store_stub(path: str) -> bool:
    """The WindowsApps python.exe alias opens the Store instead of running Python when none is installed."""
    return os.name == "nt" and "windowsapps" in path.lower() and Path(path).stat().st_size == 0
