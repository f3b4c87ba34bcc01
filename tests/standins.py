"""Throwaway virtual environments holding stand-in framework packages.

A stand-in is a real installed distribution as far as Python's packaging machinery is concerned
(`*.dist-info` with METADATA, INSTALLER and RECORD) whose import package is a few lines of Python
that behave like the real framework in one particular way: print TensorFlow's log lines, raise
the import error a broken install raises, crash, hang, or report a build with or without CUDA.
"""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
import sys
import textwrap
import venv
from collections.abc import Sequence
from pathlib import Path


def _record_hash(path: Path) -> str:
    """RECORD's `sha256=<urlsafe base64>,<size>` for a file, as pip writes it."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(path.read_bytes()).digest()).decode().rstrip("=")
    return f"sha256={digest},{path.stat().st_size}"


def make_venv(tmp_path: Path, name: str = "venv") -> Path:
    """Create an empty venv (no pip: fast) under `tmp_path`; return its python executable."""
    root = tmp_path / name
    venv.EnvBuilder(with_pip=False, symlinks=sys.platform != "win32").create(root)
    python = root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    assert python.exists(), f"venv creation left no interpreter at {python}"
    return python


def site_packages(python: Path | str) -> Path:
    """The purelib folder of an interpreter (asked from that interpreter, not guessed)."""
    out = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return Path(out.stdout.strip())


def install_standin(
    site_packages: Path,
    dist_name: str,
    version: str,
    module_name: str | None = None,
    module_source: str = "",
    requires: Sequence[str] = (),
    *,
    files: dict[str, str] | None = None,
    installer: str = "pip",
    hashed_record: bool = False,
) -> Path:
    """Install distribution `dist_name==version` into `site_packages`; return its dist-info folder.

    `module_name`/`module_source` become `<module_name>/__init__.py`; `files` adds more files,
    relative to `site_packages` (e.g. `{"tensorflow/python/platform/build_info.py": "..."}`).
    """
    files = dict(files or {})
    if module_name is not None:
        files[f"{module_name}/__init__.py"] = textwrap.dedent(module_source)
    for relative, source in files.items():
        path = site_packages / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source, encoding="utf-8")
    folder_name = re.sub(r"[-_.]+", "_", dist_name)
    dist_info = site_packages / f"{folder_name}-{version}.dist-info"
    dist_info.mkdir(parents=True, exist_ok=True)
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {dist_name}",
        f"Version: {version}",
        "Summary: gpudoctor test stand-in",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    (dist_info / "METADATA").write_text("\n".join(metadata) + "\n", encoding="utf-8")
    (dist_info / "INSTALLER").write_text(installer + "\n", encoding="utf-8")
    record = [
        f"{relative},{_record_hash(site_packages / relative) if hashed_record else ','}" for relative in files
    ]
    record += [f"{dist_info.name}/{n},," for n in ("METADATA", "INSTALLER", "RECORD")]
    (dist_info / "RECORD").write_text("\n".join(record) + "\n", encoding="utf-8")
    return dist_info
