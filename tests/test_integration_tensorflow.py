"""The real TensorFlow wheel from PyPI, probed in a throwaway venv (cached under /tmp by version).

On a machine without an NVIDIA driver (like CI) the real CUDA build must say: CUDA build, its build
versions, no GPU, and why (its own log lines). Skips itself when PyPI cannot be reached.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from gpudoctor.probes import tensorflow as tf_probe
from tests.conftest import make_ctx

pytestmark = pytest.mark.integration

TF_VERSION = "2.20.0"  # has cp311 manylinux wheels; build_info: CUDA 12.5.1, cuDNN 9
CACHE = Path(os.environ.get("GPUDOCTOR_TEST_CACHE", "/tmp/gpudoctor-integration"))
COMPLETE = ".gpudoctor-complete"


def _pypi_reachable() -> bool:
    if any(os.environ.get(v) for v in ("HTTPS_PROXY", "https_proxy", "PIP_INDEX_URL")):
        return True  # let pip find its way; a failed install still skips below
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="module")
def tf_python() -> Path:
    if not sys.platform.startswith("linux"):
        pytest.skip("the recorded expectations are for Linux x86_64 wheels")
    root = CACHE / f"tensorflow-{TF_VERSION}"
    python = root / "bin" / "python"
    if (root / COMPLETE).exists() and python.exists():
        return python
    if not _pypi_reachable():
        pytest.skip("PyPI is not reachable")
    shutil.rmtree(root, ignore_errors=True)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    venv.EnvBuilder(with_pip=True, symlinks=True).create(partial)
    install = subprocess.run(
        [str(partial / "bin" / "python"), "-m", "pip", "install", "-q", f"tensorflow=={TF_VERSION}"],
        check=False,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if install.returncode != 0:
        shutil.rmtree(partial, ignore_errors=True)
        if "NewConnectionError" in install.stderr or "Could not fetch" in install.stderr:
            pytest.skip(f"PyPI is not reachable: {install.stderr.strip()[-200:]}")
        pytest.fail(f"pip install tensorflow=={TF_VERSION} failed:\n{install.stderr[-2000:]}")
    partial.rename(root)
    (root / COMPLETE).write_text(TF_VERSION + "\n", encoding="utf-8")
    return python


def _driver_present() -> bool:
    return Path("/proc/driver/nvidia/version").exists()


def test_real_tensorflow_probe(tf_python: Path, tmp_path: Path) -> None:
    facts = tf_probe.collect(make_ctx(python=str(tf_python), cwd=tmp_path, child_timeout=120))
    assert facts.installed and facts.imported, facts.import_error
    assert facts.version == TF_VERSION
    assert facts.distributions == {"tensorflow": TF_VERSION}
    assert facts.is_cuda_build is True
    assert facts.is_rocm_build is False
    assert facts.build_cuda_version == "12.5.1"
    assert facts.build_cudnn_version == "9"
    assert "compute_90" in facts.build_compute_capabilities
    if _driver_present():
        pytest.skip("this machine has an NVIDIA driver; the no-GPU expectations below do not apply")
    assert facts.gpus == ()
    assert facts.gpu_devices == ()  # hardware (#10.8): no GPU here, so no device was created
    # Installed without [and-cuda]: the CUDA runtime is missing, and so is the driver's libcuda.
    assert "libcudart.so.12" in facts.missing_libraries
    assert "libcuda.so.1" in facts.missing_libraries
    assert facts.cuda_drivers_not_found is True
    assert facts.cuinit_error is not None
    assert facts.no_gpu_reason() == "libcudart.so.12, libcuda.so.1 not found"
    assert not any("\x1b" in line for line in facts.log_lines)


def test_real_cli_end_to_end(tf_python: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "gpudoctor",
            "check",
            "--python",
            str(tf_python),
            "--json",
            "--timeout",
            "120",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    assert result.returncode == (1 if report["summary"]["errors"] else 0)
    tensorflow = report["facts"]["tensorflow"]
    assert tensorflow is not None, report["facts"]["probes"]
    assert tensorflow["version"] == TF_VERSION
    assert tensorflow["is_cuda_build"] is True
    python = report["facts"]["python"]
    assert {"name": "tensorflow", "version": TF_VERSION} in [
        {"name": d["name"], "version": d["version"]} for d in python["distributions"]
    ]
    states = {p["name"]: p["state"] for p in report["facts"]["probes"]}
    assert states["tensorflow"] == "ok" and states["python"] == "ok"
    checks = {c["code"]: c["state"] for c in report["checks"]}
    # No GPU here, so TensorFlow not seeing one is not a finding; nothing shadows it, it imports.
    assert checks["GD401"] == "pass"
    assert checks["GD405"] == "pass"
    if not _driver_present():
        assert "GD402" not in [f["code"] for f in report["findings"]]
