"""The package survey's view of the environment as a whole: RECORD overlaps, module owners, wheel tools,
the target's marker environment — in throwaway venvs whose stand-ins copy the real wheels' layouts."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from gpudoctor.facts import PythonFacts
from gpudoctor.prestart import script_source
from gpudoctor.probes import python as probe
from tests.conftest import make_ctx
from tests.standins import install_standin, make_venv, site_packages

# The layout of nvidia-cudnn-cu12 9.28.0.42 and nvidia-cudnn-cu13 9.24.0.43: the same paths.
CUDNN_FILES = (
    "nvidia/cudnn/lib/libcudnn.so.9",
    "nvidia/cudnn/lib/libcudnn_ops.so.9",
    "nvidia/cudnn/include/cudnn.h",
)


@pytest.fixture(scope="module")
def env_facts(tmp_path_factory: pytest.TempPathFactory) -> PythonFacts:
    python = make_venv(tmp_path_factory.mktemp("envsurvey"))
    site = site_packages(python)
    install_standin(
        site,
        "nvidia-cudnn-cu12",
        "9.28.0.42",
        files={path: f"cuDNN 9.28 for CUDA 12: {path}\n" * 3 for path in CUDNN_FILES},
        hashed_record=True,
    )
    install_standin(
        site,
        "nvidia-cudnn-cu13",
        "9.24.0.43",
        files={path: f"cuDNN 9.24 for CUDA 13: {path}\n" for path in CUDNN_FILES[:2]}
        | {CUDNN_FILES[2]: "cuDNN 9.28 for CUDA 12: nvidia/cudnn/include/cudnn.h\n" * 3},
        hashed_record=True,
    )
    # Same size, other bytes: only the hash tells who wrote the file on disk.
    install_standin(
        site,
        "nvidia-nccl-cu12",
        "2.32.3",
        files={"nvidia/nccl/lib/libnccl.so.2": "A" * 64},
        hashed_record=True,
    )
    install_standin(
        site,
        "nvidia-nccl-cu13",
        "2.30.7",
        files={"nvidia/nccl/lib/libnccl.so.2": "B" * 64},
        hashed_record=True,
    )
    install_standin(
        site, "tensorflow-cpu", "2.15.1", "tensorflow", "__version__ = '2.15.1'\n", hashed_record=True
    )
    install_standin(
        site, "tensorflow", "2.15.1", "tensorflow", "__version__ = '2.15.1'  # gpu\n", hashed_record=True
    )
    install_standin(
        site,
        "nvidia-cuda-nvcc-cu12",
        "12.9.86",
        files={
            "nvidia/cuda_nvcc/bin/ptxas": "#!/bin/sh\n",
            "nvidia/cuda_nvcc/nvvm/libdevice/libdevice.10.bc": "BC",
        },
        hashed_record=True,
    )
    (site / "nvidia" / "cuda_nvcc" / "bin" / "ptxas").unlink()  # RECORD lists it, the disk lost it
    install_standin(site, "cuda-bindings", "13.5.0", hashed_record=True)
    install_standin(site, "protobuf", "6.33.0")
    return probe.collect(make_ctx(python=str(python), cwd=tmp_path_factory.mktemp("cwd")))


def owners(facts: PythonFacts, suffix: str) -> dict[str, bool]:
    shared = next(f for f in facts.shared_files if f.path.endswith(suffix))
    return {o.distribution: o.matches for o in shared.owners}


def test_files_listed_by_two_records_are_found_with_the_winner(env_facts: PythonFacts) -> None:
    assert owners(env_facts, "libcudnn.so.9") == {"nvidia-cudnn-cu12": False, "nvidia-cudnn-cu13": True}
    # Both wrote identical bytes: both match, and their RECORD hashes agree.
    header = next(f for f in env_facts.shared_files if f.path.endswith("cudnn.h"))
    assert {o.matches for o in header.owners} == {True}
    assert len({o.hash for o in header.owners}) == 1
    assert owners(env_facts, "libnccl.so.2") == {"nvidia-nccl-cu12": False, "nvidia-nccl-cu13": True}
    lib = next(f for f in env_facts.shared_files if f.path.endswith("libcudnn.so.9"))
    assert lib.disk_size == len("cuDNN 9.24 for CUDA 13: nvidia/cudnn/lib/libcudnn.so.9\n")
    assert all(o.hash and o.hash.startswith("sha256=") and o.size for o in lib.owners)
    # Libraries first; the dist-info folders' own files never count.
    assert env_facts.shared_files[0].path.endswith(".so.9") or ".so" in env_facts.shared_files[0].path
    assert not any(".dist-info" in f.path for f in env_facts.shared_files)
    assert env_facts.shared_files_total == len(env_facts.shared_files)


def test_framework_module_and_its_owners(env_facts: PythonFacts) -> None:
    module = next(m for m in env_facts.framework_modules if m.module == "tensorflow")
    assert module.path.endswith("tensorflow/__init__.py")
    assert set(module.owners) == {"tensorflow", "tensorflow-cpu"}
    assert module.matches == ("tensorflow",)  # installed last: its bytes are on disk


def test_wheel_tools_say_whether_the_file_is_there(env_facts: PythonFacts) -> None:
    tools = {t.name: t for t in env_facts.wheel_tools}
    assert tools["ptxas"].distribution == "nvidia-cuda-nvcc-cu12" and tools["ptxas"].exists is False
    assert tools["libdevice.10.bc"].exists is True


def test_cuda_and_abi_companions_are_surveyed(env_facts: PythonFacts) -> None:
    names = {d.name for d in env_facts.distributions}
    assert {"cuda-bindings", "protobuf", "nvidia-cuda-nvcc-cu12"} <= names


def test_marker_environment_is_what_packaging_computes_for_the_target(env_facts: PythonFacts) -> None:
    code = "import json, packaging.markers as m; print(json.dumps(m.default_environment()))"
    expected = json.loads(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    )
    assert env_facts.marker_environment == expected


def test_real_interpreter_survey_runs_clean() -> None:
    """This machine's own interpreter: no GPU, no framework; the survey still answers every new field."""
    facts = probe.collect(make_ctx(python=sys.executable))
    assert facts.error is None
    assert facts.marker_environment["python_full_version"] == ".".join(map(str, sys.version_info[:3]))
    assert facts.marker_environment["sys_platform"] == sys.platform
    assert isinstance(facts.shared_files, tuple) and facts.shared_files_total >= len(facts.shared_files)


def test_missing_interpreter_is_an_error_not_a_crash(tmp_path: Path) -> None:
    facts = probe.collect(make_ctx(python=str(tmp_path / "nope" / "python")))
    assert facts.error and facts.shared_files == () and facts.marker_environment == {}


def test_child_script_is_python_36_syntax() -> None:
    ast.parse(script_source("python"), feature_version=(3, 6))


@pytest.mark.parametrize(
    "data",
    [
        {"shared_files": "x", "framework_modules": 3, "wheel_tools": None, "marker_environment": []},
        {"shared_files": [{"path": "/a", "owners": [{"name": "a"}]}], "shared_files_total": -1},
        {"shared_files": [{"path": 1, "owners": "x"}], "framework_modules": [{"module": "torch"}]},
        {"marker_environment": {"sys_platform": 3, "evil": "x"}, "wheel_tools": [{"name": "ptxas"}]},
    ],
)
def test_parse_tolerates_bad_new_fields(data: dict[str, object]) -> None:
    facts = probe.parse(data)
    assert facts.shared_files == () and facts.framework_modules == () and facts.wheel_tools == ()
    assert facts.shared_files_total == 0
    assert "evil" not in facts.marker_environment and "sys_platform" not in facts.marker_environment
