"""The TensorFlow probe against stand-in TensorFlow packages in throwaway venvs, and its log parser
against real TensorFlow output (tests/outputs/tf-*) and lines quoted from TensorFlow issues."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from gpudoctor.facts import TensorFlowFacts
from gpudoctor.probes import tensorflow as probe
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun
from gpudoctor.probes.libnames import library_kind
from tests.conftest import OUTPUTS, make_ctx, write_executable
from tests.standins import install_standin, make_venv, site_packages

VLOG1 = OUTPUTS / "tf-2.20.0-linux-nodriver-vlog1.stderr.txt"
DEFAULT = OUTPUTS / "tf-2.20.0-linux-nodriver-default.stderr.txt"

BUILD_2_20 = (
    "{'cpu_compiler': 'clang 18', 'cuda_compute_capabilities': ['sm_60', 'sm_70', 'sm_80', 'sm_89', "
    "'compute_90'], 'cuda_version': '12.5.1', 'cudnn_version': '9', 'is_cuda_build': True, "
    "'is_rocm_build': False, 'is_tensorrt_build': False}"
)


def standin_source(*, build: str = BUILD_2_20, gpus: int = 0, body: str = "", version: str = "2.20.0") -> str:
    """A `tensorflow` package that answers like the real one; `body` runs first, at import."""
    return f"""
import os as _os, sys as _sys
{body}
__version__ = {version!r}

class _Device:
    def __init__(self, name):
        self.name = name

class sysconfig:
    @staticmethod
    def get_build_info():
        return {build}

class config:
    @staticmethod
    def list_physical_devices(kind=None):
        return [_Device("/physical_device:GPU:%d" % i) for i in range({gpus})]
"""


def tf_venv(tmp_path: Path, source: str, dist: str = "tensorflow", version: str = "2.20.0") -> Path:
    python = make_venv(tmp_path)
    install_standin(site_packages(python), dist, version, "tensorflow", source)
    return python


def collect(python: Path, cwd: Path, child_timeout: float = 60.0) -> TensorFlowFacts:
    return probe.collect(make_ctx(python=str(python), cwd=cwd, child_timeout=child_timeout))


def test_not_installed_is_unavailable_without_importing(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    marker = tmp_path / "imported"
    package = site_packages(python) / "tensorflow"
    package.mkdir()
    (package / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n", encoding="utf-8")
    with pytest.raises(ProbeUnavailable, match="TensorFlow is not installed"):
        collect(python, tmp_path)
    assert not marker.exists(), "the probe imported TensorFlow although no distribution is installed"


def test_cuda_build_without_driver_replays_real_log(tmp_path: Path) -> None:
    body = f"""
_log = {str(VLOG1)!r} if _os.environ.get("TF_CPP_MAX_VLOG_LEVEL") == "1" else {str(DEFAULT)!r}
if _os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0":
    _sys.stderr.write(open(_log).read())
"""
    facts = collect(tf_venv(tmp_path, standin_source(body=body)), tmp_path)
    assert facts.installed and facts.imported and facts.import_error is None
    assert facts.version == "2.20.0"
    assert facts.module_path is not None and facts.module_path.endswith("tensorflow/__init__.py")
    assert facts.is_cuda_build is True and facts.is_rocm_build is False
    assert facts.build_cuda_version == "12.5.1"
    assert facts.build_cudnn_version == "9"
    assert facts.build_compute_capabilities == ("sm_60", "sm_70", "sm_80", "sm_89", "compute_90")
    assert facts.gpus == ()
    # Only visible because the probe turned verbose logging on.
    assert facts.missing_libraries == ("libcudart.so.12", "libcuda.so.1")
    assert facts.cuda_drivers_not_found is True
    assert facts.cuinit_error == "UNKNOWN ERROR (303)"
    assert facts.distributions == {"tensorflow": "2.20.0"}
    assert len(facts.log_lines) == len([ln for ln in VLOG1.read_text().splitlines() if ln.strip()])
    description = probe.describe(facts)
    assert not any("GCS" in line for line in description.details), "noise lines belong in the facts only"
    assert description.mark == "warn"
    assert description.summary == (
        "TensorFlow 2.20.0 (CUDA 12.5.1, cuDNN 9 build) · no GPU: libcudart.so.12, libcuda.so.1 not found"
    )


@pytest.mark.skipif(shutil.which("gcc") is None, reason="needs gcc to build a stand-in libcudart")
def test_gpu_found_and_loaded_libraries_read_from_proc_maps(tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    source = tmp_path / "empty.c"
    source.write_text("int cudaRuntimeGetVersion(int *v) { *v = 12050; return 0; }\n", encoding="utf-8")
    library = lib_dir / "libcudart.so.12"
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(library), str(source)], check=True, timeout=60)
    body = f"import ctypes as _ctypes\n_ctypes.CDLL({str(library)!r})\n"
    facts = collect(tf_venv(tmp_path, standin_source(body=body, gpus=2)), tmp_path)
    assert facts.gpus == ("/physical_device:GPU:0", "/physical_device:GPU:1")
    assert [(lib.path, lib.kind) for lib in facts.loaded_libraries] == [(str(library), "cudart")]
    description = probe.describe(facts)
    assert (description.mark, description.summary) == (
        "ok",
        "TensorFlow 2.20.0 (CUDA 12.5.1, cuDNN 9 build) · 2 GPUs",
    )
    assert f"loaded: {library}" in description.details


def test_cpu_only_build(tmp_path: Path) -> None:
    build = "{'is_cuda_build': False, 'is_rocm_build': False, 'is_tensorrt_build': False}"
    python = tf_venv(tmp_path, standin_source(build=build, version="2.15.0"), "tensorflow-cpu", "2.15.0")
    facts = collect(python, tmp_path)
    assert facts.is_cuda_build is False
    assert facts.build_cuda_version is None
    assert facts.distributions == {"tensorflow-cpu": "2.15.0"}
    assert probe.describe(facts).summary == "TensorFlow 2.15.0 (CPU-only build) · no GPU"


def test_tf_2_0_style_build_info_and_experimental_device_listing(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    source = """
__version__ = "2.0.0"
class _Device:
    name = "/physical_device:GPU:0"
class _Experimental:
    @staticmethod
    def list_physical_devices(kind=None):
        return [_Device()]
class config:
    experimental = _Experimental
"""
    build_info = "is_cuda_build = True\ncuda_version_number = '10.0'\ncudnn_version_number = '7'\n"
    install_standin(
        site_packages(python),
        "tensorflow-gpu",
        "2.0.0",
        "tensorflow",
        source,
        files={
            "tensorflow/python/__init__.py": "",
            "tensorflow/python/platform/__init__.py": "",
            "tensorflow/python/platform/build_info.py": build_info,
        },
    )
    facts = collect(python, tmp_path)
    assert (facts.is_cuda_build, facts.build_cuda_version, facts.build_cudnn_version) == (True, "10.0", "7")
    assert facts.gpus == ("/physical_device:GPU:0",)


def test_hard_linked_cuda_library_import_error(tmp_path: Path) -> None:
    body = (
        "raise ImportError('Traceback (most recent call last):\\nImportError: libcudart.so.10.0: cannot open "
        "shared object file: No such file or directory\\n\\nFailed to load the native TensorFlow runtime.')"
    )
    facts = collect(tf_venv(tmp_path, standin_source(body=body), "tensorflow-gpu", "1.14.0"), tmp_path)
    assert facts.installed and not facts.imported
    assert facts.version == "1.14.0"  # from the metadata, since the import failed
    assert facts.import_error is not None and facts.import_error.startswith("ImportError: Traceback")
    assert "Failed to load the native TensorFlow runtime." in facts.import_error
    assert facts.missing_libraries == ("libcudart.so.10.0",)
    description = probe.describe(facts)
    assert description.mark == "fail"
    assert (
        description.summary
        == "TensorFlow 1.14.0 · import fails: Failed to load the native TensorFlow runtime."
    )


def test_numpy_abi_failure_keeps_numpy_warning_in_log(tmp_path: Path) -> None:
    body = """
_sys.stderr.write("A module that was compiled using NumPy 1.x cannot be run in\\n"
                  "NumPy 2.1.3 as it may crash. To support both 1.x and 2.x\\n")
raise ImportError("numpy.core._multiarray_umath failed to import")
"""
    facts = collect(tf_venv(tmp_path, standin_source(body=body), version="2.15.1"), tmp_path)
    assert facts.import_error == "ImportError: numpy.core._multiarray_umath failed to import"
    assert "A module that was compiled using NumPy 1.x cannot be run in" in facts.log_lines


def test_segfault_during_import_comes_back_as_facts(tmp_path: Path) -> None:
    body = "import signal as _signal\n_os.kill(_os.getpid(), _signal.SIGSEGV)\n"
    facts = collect(tf_venv(tmp_path, standin_source(body=body)), tmp_path)
    assert facts.installed and not facts.imported
    assert facts.import_error == "python crashed (SIGSEGV) while importing TensorFlow"
    assert facts.version == "2.20.0"


def test_hanging_import_is_stopped_and_reported(tmp_path: Path) -> None:
    body = "import time as _time\n_sys.stderr.write('loading...\\n'); _sys.stderr.flush()\n_time.sleep(60)\n"
    facts = collect(tf_venv(tmp_path, standin_source(body=body)), tmp_path, child_timeout=2)
    assert not facts.imported
    assert facts.import_error is not None
    assert facts.import_error.startswith("python did not finish within 2 s")
    assert facts.import_error.endswith("while importing TensorFlow")


def test_device_listing_error_is_recorded(tmp_path: Path) -> None:
    source = standin_source().replace(
        "return [_Device",
        "raise RuntimeError('CUDA_ERROR_OUT_OF_MEMORY: out of memory')\n        return [_Device",
    )
    facts = collect(tf_venv(tmp_path, source), tmp_path)
    assert facts.imported and facts.gpus == ()
    assert facts.list_devices_error == "RuntimeError: CUDA_ERROR_OUT_OF_MEMORY: out of memory"
    assert facts.no_gpu_reason() == "RuntimeError: CUDA_ERROR_OUT_OF_MEMORY: out of memory"


def test_log_is_bounded_and_ansi_stripped(tmp_path: Path) -> None:
    body = """
for _i in range(600):
    _sys.stderr.write("\\x1b[33mI noise line %d\\x1b[0m\\n" % _i)
_sys.stderr.write("\\x1b[31mW dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.8'; dlerror: gone\\x1b[0m\\n")
"""
    facts = collect(tf_venv(tmp_path, standin_source(body=body)), tmp_path)
    assert len(facts.log_lines) == probe.MAX_LOG_LINES
    assert not any("\x1b" in line for line in facts.log_lines)
    assert (
        facts.log_lines[-1]
        == "W dso_loader.cc:64] Could not load dynamic library 'libcudnn.so.8'; dlerror: gone"
    )
    assert facts.missing_libraries == ("libcudnn.so.8",)


def test_a_tensorflow_py_in_the_working_directory_is_never_run(tmp_path: Path) -> None:
    """The child imports the installed package; GD405 (the python probe's `shadowing`) tells the user."""
    python = tf_venv(tmp_path, standin_source())
    work = tmp_path / "work"
    work.mkdir()
    ran = tmp_path / "shadow-ran"
    (work / "tensorflow.py").write_text(
        f"open({str(ran)!r}, 'w').close()\nraise ImportError('mine')\n", encoding="utf-8"
    )
    facts = collect(python, work)
    assert not ran.exists()
    assert facts.imported and facts.import_error is None
    assert facts.module_path is not None and Path(facts.module_path).parent.parent != work


def test_interpreter_that_cannot_run(bin_dir: Path, tmp_path: Path) -> None:
    fake = write_executable(bin_dir, "python", stderr="boom\n", exit_code=3)
    with pytest.raises(ProbeUnavailable, match="exited with status 3: boom"):
        collect(fake, tmp_path)


# --- the log parser --------------------------------------------------------------------------------


def test_parse_real_default_level_log_hides_library_names() -> None:
    log = probe.parse_log(DEFAULT.read_text(encoding="utf-8").splitlines())
    assert log.missing_libraries == ()
    assert log.cuda_drivers_not_found is True
    assert log.cuinit_error == "UNKNOWN ERROR (303)"


@pytest.mark.parametrize(
    ("line", "missing"),
    [
        # TF 2.9, Linux (tensorflow/tensorflow#56413 style, W level)
        (
            (
                "2022-06-01 10:00:00.000000: W tensorflow/stream_executor/platform/default/dso_loader.cc:64] "
                "Could not load dynamic library 'libcudart.so.11.0'; dlerror: libcudart.so.11.0: cannot open shared "
                "object file: No such file or directory; LD_LIBRARY_PATH: /usr/local/nvidia/lib"
            ),
            ("libcudart.so.11.0",),
        ),
        # TF 2.9/2.10, Windows (tensorflow/tensorflow#57103)
        (
            (
                "W tensorflow/stream_executor/platform/default/dso_loader.cc:64] Could not load dynamic library "
                "'cudart64_110.dll'; dlerror: cudart64_110.dll not found"
            ),
            ("cudart64_110.dll",),
        ),
        # TF 2.0 on Windows checks for its DLL itself (case C03)
        (
            (
                "ImportError: Could not find 'cudart64_100.dll'. TensorFlow requires that this DLL be installed in a "
                "directory that is named in your %PATH% environment variable."
            ),
            ("cudart64_100.dll",),
        ),
        # TF 1.x links CUDA at import time (tensorflow/tensorflow#15604)
        (
            "ImportError: libcublas.so.9.0: cannot open shared object file: No such file or directory",
            ("libcublas.so.9.0",),
        ),
        # TF <= 1.4 (as its gcr.io latest-gpu images printed it): its dso_loader, then cuda_dnn.cc
        (
            (
                "I tensorflow/stream_executor/dso_loader.cc:99] Couldn't open CUDA library libcudnn.so. "
                "LD_LIBRARY_PATH: /usr/local/nvidia/lib:/usr/local/nvidia/lib64:"
            ),
            ("libcudnn.so",),
        ),
        ("I tensorflow/stream_executor/cuda/cuda_dnn.cc:1562] Unable to load cuDNN DSO", ()),
        # the dependency dlerror names is not the library TF asked for
        (
            "Could not load dynamic library 'libcudnn.so.8'; dlerror: libcublasLt.so.12: cannot open shared object file",
            ("libcudnn.so.8",),
        ),
    ],
)
def test_parse_missing_library_lines(line: str, missing: tuple[str, ...]) -> None:
    assert probe.parse_log([line]).missing_libraries == missing


def test_parse_cudnn_mismatch_both_formats() -> None:
    # TF 2.15 (tensorflow/tensorflow#62626)
    new = probe.parse_log(
        [
            (
                "E external/local_xla/xla/stream_executor/cuda/cuda_dnn.cc:447] Loaded runtime CuDNN library: 8.8.0 "
                "but source was compiled with: 8.9.4.  CuDNN library needs to have matching major version and equal "
                "or higher minor version."
            )
        ]
    )
    assert (new.cudnn_loaded_version, new.cudnn_compiled_version) == ("8.8.0", "8.9.4")
    # TF 1.1 (case C05)
    old = probe.parse_log(
        [
            (
                "E c:\\tf_jenkins\\...\\cuda_dnn.cc:378] Loaded runtime CuDNN library: 6021 (compatibility version "
                "6000) but source was compiled with 5105 (compatibility version 5100)."
            )
        ]
    )
    assert (old.cudnn_loaded_version, old.cudnn_compiled_version) == ("6021", "5105")


@pytest.mark.parametrize(
    ("line", "error"),
    [
        (
            (
                "E tensorflow/stream_executor/cuda/cuda_driver.cc:271] failed call to cuInit: CUDA_ERROR_NO_DEVICE: "
                "no CUDA-capable device is detected"
            ),
            "CUDA_ERROR_NO_DEVICE",
        ),
        (
            (
                "E cuda_driver.cc:282] failed call to cuInit: CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE: forward "
                "compatibility was attempted on non supported HW"
            ),
            "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE",
        ),
        ("failed call to cuInit: something new", "something new"),
        ("failed call to cuInit:", "unknown"),
    ],
)
def test_parse_cuinit_errors(line: str, error: str) -> None:
    assert probe.parse_log([line]).cuinit_error == error


@pytest.mark.parametrize(
    "lines",
    [
        [],
        [""],
        [
            "\x00\xff garbage",
            "Could not load dynamic library",
            "Loaded runtime CuDNN library:",
            "cannot open shared object file",
        ],
        ["Could not load dynamic library ''"],
    ],
)
def test_parse_log_ignores_garbage(lines: list[str]) -> None:
    log = probe.parse_log(lines)
    assert log.missing_libraries == ()
    assert log.cuinit_error is None
    assert log.cudnn_loaded_version is None
    assert not log.cuda_drivers_not_found


def test_clean_log_keeps_relevant_lines_in_order() -> None:
    lines = (
        [f"noise {i}" for i in range(10)]
        + ["Could not load dynamic library 'x.so'"]
        + ["\x1b[1m\x1b[0m", "  "]
    )
    assert probe.clean_log(lines, limit=3) == ("noise 0", "noise 1", "Could not load dynamic library 'x.so'")


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("/usr/lib/x86_64-linux-gnu/libcuda.so.535.104.05", "libcuda"),
        ("/venv/lib/python3.11/site-packages/nvidia/cublas/lib/libcublasLt.so.12", "cublas"),
        ("libcudnn_ops_infer.so.8", "cudnn"),
        ("libcudart.so.12", "cudart"),
        ("libnvidia-ml.so.1", "nvml"),
        ("C:\\Windows\\System32\\nvcuda.dll", "libcuda"),
        ("cudnn64_8.dll", "cudnn"),
        ("libcupti.so.12", "other"),
        ("", "other"),
    ],
)
def test_library_kind(name: str, kind: str) -> None:
    assert library_kind(name) == kind


@pytest.mark.parametrize(
    ("cuda", "cudnn", "expected"),
    [("64_112", "64_8", ("11.2", "8")), ("64_101", "64_7", ("10.1", "7")), ("12.5.1", "9", ("12.5.1", "9"))],
)
def test_windows_build_info_versions_are_normalised(cuda: str, cudnn: str, expected: tuple[str, str]) -> None:
    facts = probe.parse(
        {"installed": True, "stage": "done", "imported": True, "cuda_version": cuda, "cudnn_version": cudnn},
        _fake_run(),
    )
    assert (facts.build_cuda_version, facts.build_cudnn_version) == expected


def test_parse_tolerates_bad_child_output() -> None:
    facts = probe.parse(
        {
            "installed": True,
            "stage": "done",
            "imported": "yes",
            "version": 2,
            "is_cuda_build": "True",
            "cuda_version": 12.2,
            "cudnn_version": ["8"],
            "cuda_compute_capabilities": "sm_80",
            "gpus": [None, "/physical_device:GPU:0"],
            "distributions": ["tensorflow"],
            "loaded_libraries": {"a": 1},
        },
        _fake_run(),
    )
    assert facts.installed and not facts.imported
    assert facts.version is None
    assert facts.is_cuda_build is True
    assert facts.build_cuda_version == "12.2"
    assert facts.build_cudnn_version is None
    assert facts.build_compute_capabilities == ()
    assert facts.gpus == ("/physical_device:GPU:0",)
    assert facts.distributions == {}
    assert facts.loaded_libraries == ()


def _fake_run() -> ChildRun:
    from gpudoctor.runner import CommandResult

    return ChildRun(result=CommandResult(argv=("python",), returncode=0), data={}, problem=None)


def test_distribution_lists_agree_with_the_child_scripts() -> None:
    import ast

    from gpudoctor.prestart import script_source

    def constant(script: str, name: str) -> set[str]:
        tree = ast.parse(script_source(script))
        for node in tree.body:
            if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
                return set(ast.literal_eval(node.value))
        raise AssertionError(f"{name} not in {script}.py")

    assert constant("tensorflow", "TF_DISTRIBUTIONS") == set(probe.TF_DISTRIBUTIONS)
    assert set(probe.TF_DISTRIBUTIONS) <= constant("python", "EXACT")
