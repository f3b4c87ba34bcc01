"""The JAX probe against a real `pip install jax` (CPU wheels from PyPI) in a throwaway venv.

The venv is cached under /tmp, keyed by JAX and Python version, so reruns take seconds.
What the probe reported on the first real run is recorded in tests/outputs/jax-cpu-real-facts.json.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gpudoctor.probes.jax import collect, describe
from gpudoctor.serde import to_data
from tests.conftest import OUTPUTS, make_ctx

JAX_VERSION = "0.10.2"  # the newest jax with wheels for Python 3.11 when this was written
VENV = Path(f"/tmp/gpudoctor-jax-{JAX_VERSION}-py{sys.version_info.major}{sys.version_info.minor}")


def _pypi_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
    except OSError:
        return False
    return True


def _python_with_jax() -> str:
    python = VENV / "bin" / "python"
    ready = VENV / ".gpudoctor-ready"
    if ready.exists():
        return str(python)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", f"jax=={JAX_VERSION}"],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if install.returncode != 0:
        if not _pypi_reachable():
            pytest.skip("PyPI cannot be reached")
        pytest.fail(f"pip install jax=={JAX_VERSION} failed:\n{install.stderr[-2000:]}")
    ready.write_text(JAX_VERSION, encoding="utf-8")
    return str(python)


@pytest.mark.integration
def test_real_cpu_jax() -> None:
    python = _python_with_jax()
    facts = collect(make_ctx(python=python, child_timeout=120))
    assert facts.installed and facts.imported and facts.import_error is None
    assert facts.jax_version == JAX_VERSION and facts.jaxlib_version == JAX_VERSION
    assert facts.plugins == {}
    assert facts.devices == ("cpu:0",)
    assert facts.gpu_devices == ()  # hardware (#10.8): only GPU devices carry an identity
    assert facts.default_backend == "cpu"
    assert facts.backend_error is None and facts.library_checks == ()
    assert facts.module_path is not None and facts.module_path.startswith(str(VENV))
    assert describe(facts).summary == f"JAX {JAX_VERSION} · jaxlib {JAX_VERSION} · devices: cpu:0"
    assert describe(facts).mark == "ok"  # the "Unable to initialize backend 'tpu'" line is not a GPU problem
    recorded = json.loads((OUTPUTS / "jax-cpu-real-facts.json").read_text(encoding="utf-8"))
    observed = to_data(facts)
    for key in ("jax_version", "jaxlib_version", "plugins", "devices", "default_backend", "backend_error"):
        assert observed[key] == recorded[key], key


@pytest.mark.integration
def test_real_cpu_jax_under_jax_platforms_cuda_reports_the_backend_error() -> None:
    # With no CUDA plugin and no GPU, jax 0.10.2 skips the cuda platform and then fails an assertion
    # (tests/outputs/jax-cpu-real-jax-platforms-cuda.txt): the probe reports that, not a device list.
    python = _python_with_jax()
    facts = collect(make_ctx(python=python, child_timeout=120, env={"JAX_PLATFORMS": "cuda"}))
    assert facts.imported and facts.devices == () and facts.default_backend is None
    assert facts.backend_error == "AssertionError"
    assert describe(facts).mark == "warn"
