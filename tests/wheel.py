"""gpudoctor installed as a user installs it: a wheel built from this repository, in a venv of its own.

Built once per test session (the examples' and the README's tests share it); skips when PyPI, which
the build (hatchling) and the install (gpudoctor's dependencies) need, cannot be reached.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
_BUILT: dict[str, Path] = {}


def run(argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 600)
    return subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)


def pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`python3 -m pip wheel --no-deps -w dist <checkout>`, as the README says."""
    if "wheel" not in _BUILT:
        out = tmp_path_factory.mktemp("dist")
        done = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)])
        if done.returncode != 0:
            if not pypi_reachable():
                pytest.skip("PyPI cannot be reached to build the wheel (hatchling)")
            pytest.fail(f"pip wheel failed:\n{done.stderr[-3000:]}")
        (_BUILT["wheel"],) = out.glob("gpudoctor-*.whl")
    return _BUILT["wheel"]


def installed_gpudoctor(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`gpudoctor` from that wheel in a throwaway venv."""
    if "gpudoctor" not in _BUILT:
        wheel = built_wheel(tmp_path_factory)
        venv = tmp_path_factory.mktemp("installed") / "gpudoctor"
        assert run([sys.executable, "-m", "venv", str(venv)]).returncode == 0
        done = run([str(venv / "bin" / "pip"), "install", "-q", str(wheel)])
        if done.returncode != 0:
            if not pypi_reachable():
                pytest.skip("PyPI cannot be reached to install gpudoctor's dependencies")
            pytest.fail(f"pip install {wheel.name} failed:\n{done.stderr[-3000:]}")
        _BUILT["gpudoctor"] = venv / "bin" / "gpudoctor"
    return _BUILT["gpudoctor"]
