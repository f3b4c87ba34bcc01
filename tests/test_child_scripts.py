"""The scripts in probes/child/: one prelude, Python 3.6 syntax, never code from the working directory."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gpudoctor.prestart import child_env, script_source
from gpudoctor.probes.child_process import MARKER, parse_marker, run_child, script_names
from tests.conftest import load_child, make_ctx
from tests.standins import install_standin, make_venv, site_packages

SCRIPTS = script_names()
# Modules added after Python 3.6, which a child may import only inside `try`.
NEWER_MODULES = {
    "dataclasses",
    "contextvars",
    "importlib.metadata",
    "importlib.resources",
    "zoneinfo",
    "graphlib",
}
PYTHON36 = Path("/root/.pyenv/versions/3.6.15/bin/python3.6")  # no PYTHONSAFEPATH: the prelude alone
needs_python36 = pytest.mark.skipif(not PYTHON36.exists(), reason="no Python 3.6 interpreter here")
# Names a child (or the interpreter's startup) imports; a file of that name in the cwd must never run.
HOSTILE_NAMES = (
    "json", "typing", "glob", "struct", "ctypes", "sysconfig", "email", "re", "warnings", "logging",
    "traceback", "importlib", "tensorflow", "torch", "jax", "jaxlib", "site", "sitecustomize",
)  # fmt: skip


def test_the_scripts_are_the_five_probes() -> None:
    assert SCRIPTS == ("jax", "libraries", "python", "tensorflow", "torch")


@pytest.mark.parametrize("name", SCRIPTS)
def test_composed_script_parses_as_python_36(name: str) -> None:
    source = script_source(name)
    tree = ast.parse(source, filename=f"<child {name}>", feature_version=(3, 6))
    assert source.startswith("# --- gpudoctor child prelude")
    assert "from _prelude" not in source
    for node in tree.body:  # top-level imports of modules 3.6 lacks, or __future__ features it lacks
        if isinstance(node, ast.ImportFrom):
            assert node.module not in NEWER_MODULES, f"{name}: from {node.module} import ..."
            assert node.module != "__future__", f"{name}: __future__ imports differ across 3.6-3.13"
        if isinstance(node, ast.Import):
            assert not {a.name for a in node.names} & NEWER_MODULES, f"{name}: {ast.dump(node)}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_copied_helpers_left_in_a_script(name: str) -> None:
    """What the prelude defines is defined once: no script redefines it."""
    prelude = ast.parse(script_source(name).split("# --- end of the prelude ---")[0])
    shared = {n.name for n in prelude.body if isinstance(n, ast.FunctionDef)}
    shared |= {"MARKER", "CUDA_LIBRARY", "CUDA_LIB", "OUT_FD"}
    body = ast.parse(script_source(name).split("# --- end of the prelude ---")[1])
    defined = {n.name for n in body.body if isinstance(n, ast.FunctionDef)}
    defined |= {
        t.id for n in body.body if isinstance(n, ast.Assign) for t in n.targets if isinstance(t, ast.Name)
    }
    assert not defined & shared


@needs_python36
@pytest.mark.parametrize("name", SCRIPTS)
def test_composed_script_runs_on_a_real_python_36(name: str, tmp_path: Path) -> None:
    run = run_child(make_ctx(python=str(PYTHON36), cwd=tmp_path, child_timeout=60), name)
    assert run.problem is None, (run.result.stderr[-2000:], run.problem)
    assert run.data is not None


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_script_runs_by_hand_as_the_bug_report_docs_say(name: str, tmp_path: Path) -> None:
    printed = subprocess.run(
        [sys.executable, "-m", "gpudoctor.probes.child", name], capture_output=True, text=True, check=True
    ).stdout
    script = tmp_path / f"gd-{name}.py"
    script.write_text(printed, encoding="utf-8")
    if name in ("torch", "jax", "tensorflow"):
        (tmp_path / f"{name}.py").write_text("raise SystemExit('the folder of the script was imported')\n")
    ran = subprocess.run(
        [sys.executable, str(script)], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert ran.returncode == 0, ran.stderr[-2000:]
    assert parse_marker(ran.stdout) is not None


@pytest.fixture(scope="module")
def framework_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = make_venv(tmp_path_factory.mktemp("childvenv"))
    site = site_packages(python)
    install_standin(site, "torch", "2.3.1", "torch", "__version__ = '2.3.1'\n")
    install_standin(site, "jax", "0.4.30", "jax", "__version__ = '0.4.30'\ndef devices():\n    return []\n")
    return python


def hostile_folder(folder: Path, witness: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in HOSTILE_NAMES:
        (folder / f"{name}.py").write_text(
            f"open({str(witness / name)!r}, 'w').close()\nraise ImportError('hostile {name}.py ran')\n",
            encoding="utf-8",
        )
    return folder


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_child_runs_code_from_the_working_directory(
    name: str, framework_venv: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    work = hostile_folder(tmp_path / "work", witness)
    env = {"PYTHONPATH": f":.:{tmp_path / 'absent'}"}  # empty and relative entries mean the cwd too
    run = run_child(make_ctx(python=str(framework_venv), cwd=work, env=env), name)
    assert list(witness.iterdir()) == []
    assert run.problem is None, run.result.stderr[-2000:]


@needs_python36
@pytest.mark.parametrize("name", SCRIPTS)
def test_no_child_runs_code_from_the_working_directory_on_python_36(name: str, tmp_path: Path) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    work = hostile_folder(tmp_path / "work", witness)
    run = run_child(make_ctx(python=str(PYTHON36), cwd=work, env={"PYTHONPATH": ":."}), name)
    assert list(witness.iterdir()) == []
    assert run.problem is None, run.result.stderr[-2000:]


def test_the_report_still_names_what_would_shadow_the_users_own_imports(
    framework_venv: Path, tmp_path: Path
) -> None:
    witness = tmp_path / "witness"
    witness.mkdir()
    run = run_child(
        make_ctx(python=str(framework_venv), cwd=hostile_folder(tmp_path / "w", witness)), "python"
    )
    assert run.data is not None
    assert run.data["shadowing"] == ["tensorflow.py", "torch.py", "jax.py"]
    assert list(witness.iterdir()) == []


def test_child_env_drops_working_directory_entries_only() -> None:
    env = child_env({"PYTHONPATH": os.pathsep.join(["", ".", "src", "/opt/lib", ""]), "HOME": "/h"})
    assert env["PYTHONPATH"] == "/opt/lib"
    assert env["PYTHONSAFEPATH"] == "1" and env["HOME"] == "/h"
    assert "PYTHONPATH" not in child_env({"PYTHONPATH": ":"})
    assert "PYTHONPATH" not in child_env({})


# --- the prelude's helpers, as the children run them ---------------------------------------------

prelude = load_child("python").__dict__  # any script: the prelude is the same in all


@pytest.mark.parametrize(
    "name",
    [
        "libcudart.so.12",
        "libcudart-9335f6a2.so.12",  # vendored in a wheel
        "libcudnn_ops.so.9",
        "libcudnn.so.8.9.7",
        "libcublasLt.so.12",
        "libcufft.so.11",
        "libcurand.so.10",
        "libcusolver.so.11",
        "libcusparse.so.12",
        "libcusparseLt.so.0",
        "libnccl.so.2",
        "libnvrtc.so.12",
        "libnvrtc-builtins.so.12.4",
        "libnvJitLink.so.12",
        "libcupti.so.12",
        "libcufile.so.0",
        "libcufile_rdma.so.1",
        "libnvshmem_host.so.3",
        "libcuda.so.1",
        "libnvidia-ml.so.1",
    ],
)
def test_cuda_library_pattern_knows_every_library_a_framework_loads(name: str) -> None:
    assert prelude["CUDA_LIBRARY"].match(name)


@pytest.mark.parametrize(
    "name", ["libc.so.6", "libcurl.so.4", "libpython3.11.so", "libcudaxyz.so", "cudart.so"]
)
def test_cuda_library_pattern_ignores_others(name: str) -> None:
    assert not prelude["CUDA_LIBRARY"].match(name)


def test_installed_distributions_reads_every_metadata_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    install_standin(first, "Torch", "2.3.1", installer="pip")
    install_standin(second, "torch", "1.0.0")  # later on sys.path: shadowed, not reported
    egg = first / "tensorflow_gpu.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: tensorflow-gpu\nVersion: 1.15.0\n\nbody\n")
    (egg / "requires.txt").write_text(
        "numpy>=1.16\n\n[gpu]\nnvidia-cudnn\n\n[:python_version < '3.8']\nsix\n"
    )
    (second / "jax-0.4.1-py3.9.egg-info").write_text(
        "Name: jax\nVersion: 0.4.1\nSummary: a file, not a folder\n"
    )
    (second / "nameless-1.0.dist-info").mkdir()
    (second / "folded-1.0.dist-info").mkdir()
    (second / "folded-1.0.dist-info" / "METADATA").write_text(
        "Name: folded\nVersion: 1.0\nRequires-Dist: a\nDescription: first\n  second\nRequires-Dist: b\n\nName: x\n"
    )
    monkeypatch.setattr(sys, "path", [str(first), "", str(second), str(tmp_path / "absent")])
    broken: list[str] = []
    found = {d["name"]: d for d in prelude["installed_distributions"](broken=broken)}
    assert found["torch"]["version"] == "2.3.1" and found["torch"]["installer"] == "pip"
    assert found["torch"]["location"] == str(first)
    assert found["tensorflow-gpu"]["requires"] == [
        "numpy>=1.16",
        'nvidia-cudnn; extra == "gpu"',
        "six; python_version < '3.8'",
    ]
    assert found["jax"]["version"] == "0.4.1" and found["jax"]["installer"] is None
    assert found["folded"]["requires"] == ["a", "b"]
    assert broken == [str(second / "nameless-1.0.dist-info")]
    only = prelude["installed_distributions"](keep=lambda n: n == "jax")
    assert [d["name"] for d in only] == ["jax"]


def test_emit_writes_the_real_stdout_even_when_sys_stdout_is_replaced(tmp_path: Path) -> None:
    script = "import sys, io\nsys.stdout = io.StringIO()\nemit({'big': 'x' * 300000})\n"
    source = script_source("python").split("# --- end of the prelude ---")[0] + script
    out = subprocess.run([sys.executable, "-c", source], capture_output=True, text=True, check=True).stdout
    assert out.startswith("\n" + MARKER) and json.loads(out.strip()[len(MARKER) :]) == {"big": "x" * 300000}
