"""A stand-in libnvidia-ml.so.1 built with gcc, found by the loader the way the real one is (LD_LIBRARY_PATH).

It answers pynvml's C calls from a spec file (see standin_nvml.c) and can crash or hang in nvmlInit,
so the real NVML child process of the driver probe runs against it unchanged.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

SOURCE = Path(__file__).with_name("standin_nvml.c")
SPEC_VARIABLE = "GPUDOCTOR_TEST_NVML_SPEC"


def build_standin_nvml(folder: Path) -> Path:
    """Compile the stand-in into `folder`/libnvidia-ml.so.1; skip the test where there is no C compiler."""
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no C compiler to build the stand-in libnvidia-ml.so.1")
    folder.mkdir(parents=True, exist_ok=True)
    library = folder / "libnvidia-ml.so.1"
    subprocess.run(
        [compiler, "-shared", "-fPIC", "-O1", "-o", str(library), str(SOURCE)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return library


def nvml_env(library: Path, spec: Path, lines: Mapping[str, object]) -> dict[str, str]:
    """Write the spec and return the environment under which the loader finds the stand-in."""
    spec.write_text("".join(f"{key}={value}\n" for key, value in lines.items()), encoding="utf-8")
    return {"LD_LIBRARY_PATH": str(library.parent), SPEC_VARIABLE: str(spec)}
