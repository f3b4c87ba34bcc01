"""The JAX probe against throwaway venvs holding stand-in `jax`, `jaxlib` and CUDA plugin packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.facts import JaxLibraryCheck
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun
from gpudoctor.probes.jax import collect, decode_version, describe, library_checks, parse
from gpudoctor.runner import CommandResult
from tests.conftest import make_ctx
from tests.test_probe_torch import make_env, write_dist

# Behaviour comes from _scenario.json; the messages are JAX's own (jax/_src/xla_bridge.py).
STANDIN_JAX = """
import json, logging, os, signal, sys, time
_S = json.load(open(os.path.join(os.path.dirname(__file__), "_scenario.json")))
if _S.get("import_error"):
    raise ImportError(_S["import_error"])
if _S.get("hang_on_import"):
    time.sleep(600)
if _S.get("segfault_on_import"):
    os.kill(os.getpid(), signal.SIGSEGV)
__version__ = _S["jax"]
from jax._src import xla_bridge

class _Device:
    def __init__(self, text):
        self.platform, number = text.split(":")
        self.id = int(number)

def devices():
    xla_bridge.backends()
    if _S.get("segfault_on_devices"):
        os.kill(os.getpid(), signal.SIGSEGV)
    if _S.get("devices_error"):
        raise RuntimeError(_S["devices_error"])
    return [_Device(d) for d in _S.get("devices", ["cpu:0"])]

def default_backend():
    if _S.get("echo_jax_platforms"):
        return os.environ.get("JAX_PLATFORMS", "<unset>")
    return _S.get("default_backend", "cpu")
"""
STANDIN_XLA_BRIDGE = """
import logging, sys, warnings
from jax import _S
logger = logging.getLogger(__name__)
_backend_errors = {}
def backends():
    for text in _S.get("warn", []):
        warnings.warn(text, RuntimeWarning)
    for text in _S.get("stderr", []):
        sys.stderr.write(text + "\\n")
    _backend_errors.update(_S.get("backend_errors", {}))
    for platform, err in _S.get("backend_errors", {}).items():
        logger.info("Unable to initialize backend '%s': %s", platform, err)
    for text in _S.get("log_warning", []):
        logger.warning(text)
"""

NO_CUDA_JAXLIB = "An NVIDIA GPU may be present on this machine, but a CUDA-enabled jaxlib is not installed. Falling back to cpu."
OUTDATED_CUDNN = (
    "Unable to use CUDA because of the following issues with CUDA components:\n"
    "Outdated cuDNN installation found.\n"
    "Version JAX was built against: 8907\n"
    "Minimum supported: 9100\n"
    "Installed version: 8907\n"
    "The local installation version must be no lower than 9100."
)


def install_jax(site: Path, scenario: dict[str, Any], plugins: dict[str, str] | None = None) -> None:
    pkg = site / "jax"
    (pkg / "_src").mkdir(parents=True)
    (pkg / "__init__.py").write_text(STANDIN_JAX, encoding="utf-8")
    (pkg / "_scenario.json").write_text(json.dumps(scenario), encoding="utf-8")
    (pkg / "_src" / "__init__.py").write_text("", encoding="utf-8")
    (pkg / "_src" / "xla_bridge.py").write_text(STANDIN_XLA_BRIDGE, encoding="utf-8")
    write_dist(site, "jax", scenario["jax"])
    if scenario.get("jaxlib"):
        (site / "jaxlib").mkdir()
        (site / "jaxlib" / "__init__.py").write_text("", encoding="utf-8")
        (site / "jaxlib" / "version.py").write_text(
            f"__version__ = {scenario['jaxlib']!r}\n", encoding="utf-8"
        )
        write_dist(site, "jaxlib", scenario["jaxlib"])
    for name, version in (plugins or {}).items():
        write_dist(site, name, version)


def jax_env(tmp_path: Path, scenario: dict[str, Any], plugins: dict[str, str] | None = None) -> str:
    python, site = make_env(tmp_path / "venv")
    install_jax(site, scenario, plugins)
    return python


def test_cpu_jaxlib_on_a_gpu_machine(tmp_path: Path) -> None:
    scenario = {"jax": "0.4.31", "jaxlib": "0.4.31", "log_warning": [NO_CUDA_JAXLIB]}
    facts = collect(make_ctx(python=jax_env(tmp_path, scenario)))
    assert facts.installed and facts.imported
    assert (facts.jax_version, facts.jaxlib_version) == ("0.4.31", "0.4.31")
    assert facts.plugins == {}
    assert facts.devices == ("cpu:0",) and facts.default_backend == "cpu"
    assert facts.warnings == (NO_CUDA_JAXLIB,)
    assert facts.backend_error is None and facts.library_checks == ()
    assert describe(facts).summary == "JAX 0.4.31 · jaxlib 0.4.31 · devices: cpu:0"
    assert describe(facts).mark == "warn"


def test_cuda_plugin_with_a_gpu(tmp_path: Path) -> None:
    scenario = {
        "jax": "0.4.31",
        "jaxlib": "0.4.31",
        "devices": ["cuda:0", "cuda:1"],
        "default_backend": "gpu",
    }
    plugins = {"jax-cuda12-plugin": "0.4.31", "jax-cuda12-pjrt": "0.4.31", "jax-rocm60-plugin": "0.4.31"}
    facts = collect(make_ctx(python=jax_env(tmp_path, scenario, plugins)))
    assert facts.plugins == plugins
    assert facts.devices == ("cuda:0", "cuda:1") and facts.default_backend == "gpu"
    description = describe(facts)
    assert description.mark == "ok"
    assert description.summary == (
        "JAX 0.4.31 · jaxlib 0.4.31 · jax-cuda12-plugin 0.4.31 · jax-rocm60-plugin 0.4.31 · devices: cuda:0, cuda:1"
    )


def test_plugin_newer_than_jaxlib(tmp_path: Path) -> None:
    warning = (
        "JAX plugin jax_cuda12_plugin version 0.9.2 is installed, but it is not compatible with the installed "
        "jaxlib version 0.9.0.1, so it will not be used."
    )
    scenario = {"jax": "0.9.0.1", "jaxlib": "0.9.0.1", "warn": [warning]}
    plugins = {"jax-cuda12-plugin": "0.9.2", "jax-cuda12-pjrt": "0.9.2"}
    facts = collect(make_ctx(python=jax_env(tmp_path, scenario, plugins)))
    assert facts.plugins == plugins and facts.jaxlib_version == "0.9.0.1"
    assert facts.warnings == (warning,)
    assert (
        describe(facts).summary == "JAX 0.9.0.1 · jaxlib 0.9.0.1 · jax-cuda12-plugin 0.9.2 · devices: cpu:0"
    )


def test_outdated_cudnn_from_a_conda_forge_jaxlib(tmp_path: Path) -> None:
    failed = f"CUDA backend failed to initialize: {OUTDATED_CUDNN}.(Set TF_CPP_MIN_LOG_LEVEL=0 and rerun for more info.)"
    scenario = {"jax": "0.4.31", "jaxlib": "0.4.31", "backend_errors": {"cuda": OUTDATED_CUDNN}}
    scenario["log_warning"] = [failed]
    python = jax_env(tmp_path, scenario)
    meta = tmp_path / "venv" / "conda-meta"
    meta.mkdir()
    record = {
        "name": "jaxlib",
        "version": "0.4.31",
        "build": "cuda120py311hbd7e3d2_200",
        "channel": "https://conda.anaconda.org/conda-forge/linux-64",
    }
    (meta / "jaxlib-0.4.31-cuda120py311hbd7e3d2_200.json").write_text(json.dumps(record), encoding="utf-8")
    facts = collect(make_ctx(python=python))
    assert facts.backend_error == OUTDATED_CUDNN
    assert facts.library_checks == (
        JaxLibraryCheck(name="cuDNN", installed="8.9.7", minimum="9.1.0", built="8.9.7"),
    )
    assert facts.jaxlib_conda_build == "cuda120py311hbd7e3d2_200"
    assert facts.jaxlib_conda_channel == "conda-forge"
    assert any(w.startswith("CUDA backend failed to initialize") for w in facts.warnings)
    assert any(
        line == "Unable to initialize backend 'cuda': " + OUTDATED_CUDNN.splitlines()[0]
        for line in (w.splitlines()[0] for w in facts.warnings)
    )


def test_loaded_cudnn_older_than_the_build_printed_on_stderr(tmp_path: Path) -> None:
    printed = (
        "E external/org_tensorflow/tensorflow/compiler/xla/stream_executor/cuda/cuda_dnn.cc:425] Loaded runtime "
        "CuDNN library: 8.5.0 but source was compiled with: 8.6.0.  CuDNN library needs to have matching major "
        "version and equal or higher minor version."
    )
    scenario = {
        "jax": "0.4.13",
        "jaxlib": "0.4.13+cuda11.cudnn86",
        "stderr": [printed],
        "devices_error": "FAILED_PRECONDITION: DNN library initialization failed.",
    }
    facts = collect(make_ctx(python=jax_env(tmp_path, scenario)))
    assert facts.jaxlib_version == "0.4.13+cuda11.cudnn86"
    assert facts.backend_error == "RuntimeError: FAILED_PRECONDITION: DNN library initialization failed."
    assert facts.library_checks == (
        JaxLibraryCheck(name="cuDNN", installed="8.5.0", minimum="8.6.0", built="8.6.0"),
    )
    assert facts.devices == () and facts.default_backend is None
    assert describe(facts).summary.endswith("no devices")


def test_user_jax_platforms_is_passed_through_and_not_invented(tmp_path: Path) -> None:
    python = jax_env(tmp_path, {"jax": "0.4.31", "jaxlib": "0.4.31", "echo_jax_platforms": True})
    assert collect(make_ctx(python=python)).default_backend == "<unset>"
    assert collect(make_ctx(python=python, env={"JAX_PLATFORMS": "cuda"})).default_backend == "cuda"


def test_import_error(tmp_path: Path) -> None:
    message = "jaxlib is version 0.4.20, but this version of jax requires version >= 0.4.30."
    facts = collect(
        make_ctx(python=jax_env(tmp_path, {"jax": "0.4.31", "jaxlib": "0.4.20", "import_error": message}))
    )
    assert not facts.imported and facts.import_error == f"ImportError: {message}"
    assert facts.jax_version == "0.4.31" and facts.jaxlib_version == "0.4.20"
    assert describe(facts).mark == "fail"


def test_hang_and_segfault(tmp_path: Path) -> None:
    hang = collect(
        make_ctx(python=jax_env(tmp_path / "a", {"jax": "0.4.31", "hang_on_import": True}), child_timeout=2)
    )
    assert hang.import_error == "import jax did not finish within 2 s and was stopped"
    crash = collect(
        make_ctx(
            python=jax_env(tmp_path / "b", {"jax": "0.4.31", "jaxlib": "0.4.31", "segfault_on_devices": True})
        )
    )
    assert crash.imported and crash.jax_version == "0.4.31"
    assert crash.backend_error == "initialising JAX's backends crashed the interpreter (SIGSEGV)"


def test_not_installed(tmp_path: Path) -> None:
    python, _ = make_env(tmp_path / "venv")
    with pytest.raises(ProbeUnavailable, match="JAX is not installed"):
        collect(make_ctx(python=python))


def test_parse_rejects_bad_values() -> None:
    run = ChildRun(result=CommandResult(argv=("python",), returncode=0), data=None, problem=None)
    data = {
        "stage": "done",
        "installed": True,
        "imported": True,
        "jax_version": 4,
        "plugins": {"jax-cuda12-plugin": 1, "jax-cuda12-pjrt": "0.4.31"},
        "devices": "cuda:0",
        "default_backend": None,
        "backend_errors": ["cuda"],
        "warnings": [None, "No GPU/TPU found, falling back to CPU.", "chatter"],
        "conda_jaxlib": "jaxlib",
    }
    facts = parse(data, run)
    assert facts.jax_version is None and facts.plugins == {"jax-cuda12-pjrt": "0.4.31"}
    assert facts.devices == () and facts.default_backend is None and facts.backend_error is None
    assert facts.warnings == ("No GPU/TPU found, falling back to CPU.",)
    assert facts.jaxlib_conda_build is None and facts.jaxlib_conda_channel is None
    with pytest.raises(ProbeUnavailable):
        parse({"installed": None}, run)


def test_library_check_parser() -> None:
    text = (
        "Unable to use CUDA because of the following issues with CUDA components:\n"
        "Outdated CUDA installation found.\nVersion JAX was built against: 12030\nMinimum supported: 12010\n"
        "Installed version: 12000\nThe local installation version must be no lower than 12010.\n"
        "--------------------------------------------------\n"
        "Outdated cuBLAS installation found.\nVersion JAX was built against: 120304\nMinimum supported: 120100\n"
        "Installed version: 120002\n"
        "--------------------------------------------------\n"
        "Unable to load cuSPARSE. Is it installed?\n"
    )
    assert library_checks(
        [text, "Outdated cuDNN installation found. Version JAX was built against: garbage"]
    ) == (
        JaxLibraryCheck(name="CUDA", installed="12.0", minimum="12.1", built="12.3"),
        JaxLibraryCheck(name="cuBLAS", installed="12.0.2", minimum="12.1.0", built="12.3.4"),
        JaxLibraryCheck(name="cuSPARSE"),
    )
    assert library_checks(["", "nothing here"]) == ()


@pytest.mark.parametrize(
    ("name", "raw", "dotted"),
    [
        ("cuDNN", "8907", "8.9.7"),
        ("cuDNN", "9100", "9.1.0"),
        ("cuDNN", "91002", "9.10.2"),
        ("CUDA", "12010", "12.1"),
        ("cuSOLVER", "11400", "11.4.0"),
        ("cuPTI", "18", "18"),
    ],
)
def test_decode_version(name: str, raw: str, dotted: str) -> None:
    assert decode_version(name, raw) == dotted
