"""Shared test helpers: fake executables on PATH, probe contexts over a fake filesystem root."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

from gpudoctor.facts import TargetFacts
from gpudoctor.probes.base import ProbeContext
from gpudoctor.runner import SubprocessRunner

OUTPUTS = Path(__file__).parent / "outputs"
MACHINES = Path(__file__).parent / "machines"


def write_executable(
    bin_dir: Path,
    name: str,
    *,
    stdout: str = "",
    stderr: str = "",
    exit_code: int = 0,
    sleep: float = 0.0,
    signal: str | None = None,
) -> Path:
    """A fake program on PATH that prints recorded output (a POSIX shell script)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    out_file = bin_dir / f".{name}.stdout"
    err_file = bin_dir / f".{name}.stderr"
    out_file.write_text(stdout, encoding="utf-8")
    err_file.write_text(stderr, encoding="utf-8")
    lines = ["#!/bin/sh"]
    if sleep:
        lines.append(f"sleep {sleep}")
    lines += [f"cat '{out_file}'", f"cat '{err_file}' >&2"]
    if signal:
        lines.append(f"kill -{signal} $$")
    lines.append(f"exit {exit_code}")
    path = bin_dir / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def make_ctx(
    *,
    env: Mapping[str, str] | None = None,
    root: Path | str = "/",
    python: str | None = None,
    cwd: Path | str | None = None,
    nvml: object = None,
    system: str | None = None,
    child_timeout: float = 60.0,
) -> ProbeContext:
    base_env = {"PATH": os.defpath, "HOME": os.environ.get("HOME", "/root")}
    if env is not None:
        base_env.update(env)
    target = TargetFacts(python=python or sys.executable, selected_by="--python", cwd=str(cwd or Path.cwd()))
    return ProbeContext(
        runner=SubprocessRunner(),
        env=base_env,
        target=target,
        child_timeout=child_timeout,
        nvml=nvml,
        root=str(root),
        system=system,
    )


@pytest.fixture
def bin_dir(tmp_path: Path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path
