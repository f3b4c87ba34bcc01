"""The Python-packages probe against real throwaway venvs holding stand-in distributions."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from gpudoctor.facts import Distribution, PythonFacts
from gpudoctor.probes import python as probe
from tests.conftest import make_ctx, write_executable
from tests.standins import install_standin, make_venv, site_packages


@pytest.fixture(scope="module")
def venv_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    python = make_venv(tmp_path_factory.mktemp("pyprobe"))
    site = site_packages(python)
    install_standin(
        site,
        "tensorflow",
        "2.15.1",
        "tensorflow",
        "__version__ = '2.15.1'\n",
        requires=["numpy<2.0.0,>=1.23.5", 'nvidia-cudnn-cu12==8.9.4.25; extra == "and-cuda"'],
    )
    install_standin(site, "nvidia-cudnn-cu12", "8.9.4.25")
    install_standin(site, "Tensorflow_GPU", "2.11.0")
    install_standin(site, "numpy", "1.26.4", "numpy", "")
    install_standin(site, "jax_cuda12_plugin", "0.4.30")
    install_standin(site, "cupy-cuda12x", "13.3.0")
    install_standin(site, "requests", "2.32.0", "requests", "")
    install_standin(site, "speechmetrics", "1.0.0", requires=["numpy", "tensorflow_gpu>=2.0"])
    install_standin(site, "keras", "2.15.0", installer="conda")
    install_standin(site, "tensorflow_estimator", "2.15.0")  # the wheel's own folder name
    (site / "broken_nometa-1.0.dist-info").mkdir()
    garbage = site / "garbage-1.0.dist-info"
    garbage.mkdir()
    (garbage / "METADATA").write_bytes(b"\x00\xff\xfe not: metadata\n\x89PNG\r\n")
    return python


@pytest.fixture(scope="module")
def facts(venv_python: Path, tmp_path_factory: pytest.TempPathFactory) -> PythonFacts:
    return probe.collect(make_ctx(python=str(venv_python), cwd=tmp_path_factory.mktemp("cwd")))


def by_name(facts: PythonFacts) -> dict[str, Distribution]:
    return {d.name: d for d in facts.distributions}


def test_reports_the_interpreter(facts: PythonFacts, venv_python: Path) -> None:
    assert facts.error is None
    assert Path(facts.executable) == venv_python
    assert facts.version == ".".join(map(str, sys.version_info[:3]))
    assert facts.implementation == "CPython"
    assert facts.is_venv is True
    assert facts.origin == "venv"
    assert facts.prefix == str(venv_python.parent.parent)
    assert facts.base_prefix == sys.base_prefix
    assert facts.bits == 64
    assert str(site_packages(venv_python)) in facts.site_packages


def test_keeps_only_gpu_relevant_distributions_with_canonical_names(facts: PythonFacts) -> None:
    dists = by_name(facts)
    assert set(dists) == {
        "tensorflow",
        "nvidia-cudnn-cu12",
        "tensorflow-gpu",
        "numpy",
        "jax-cuda12-plugin",
        "cupy-cuda12x",
        "speechmetrics",  # kept because it requires tensorflow-gpu (case C11)
        "keras",
        "tensorflow-estimator",  # tf.estimator of TensorFlow 1.13-2.15 (GD813)
    }
    assert [d.name for d in facts.distributions] == sorted(dists)
    tf = dists["tensorflow"]
    assert tf.version == "2.15.1"
    assert tf.requires == ("numpy<2.0.0,>=1.23.5", 'nvidia-cudnn-cu12==8.9.4.25; extra == "and-cuda"')
    assert tf.installer == "pip"
    assert tf.location is not None and Path(tf.location) == Path(facts.site_packages[0])
    assert dists["speechmetrics"].requires == ("numpy", "tensorflow_gpu>=2.0")
    assert dists["keras"].installer == "conda"


def test_broken_metadata_is_recorded_not_fatal(facts: PythonFacts) -> None:
    broken = {Path(p).name for p in facts.unreadable_metadata}
    assert "broken_nometa-1.0.dist-info" in broken
    assert "garbage-1.0.dist-info" in broken


def test_describe_lists_frameworks_first(facts: PythonFacts) -> None:
    description = probe.describe(facts)
    assert description.mark == "ok"
    assert description.summary.startswith(
        f"Python {'.'.join(map(str, sys.version_info[:3]))} (venv) · "
        "tensorflow 2.15.1, tensorflow-gpu 2.11.0, nvidia-cudnn-cu12 8.9.4.25, "
    )
    assert description.summary.endswith("…")
    assert "numpy" not in description.summary
    assert any(line == "keras==2.15.0 via conda" for line in description.details)


def test_shadowing_files_and_folders_in_the_working_directory(venv_python: Path, tmp_path: Path) -> None:
    (tmp_path / "tensorflow.py").write_text("x = 1\n", encoding="utf-8")
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "jax").mkdir()  # a plain folder: a namespace package, and jax is not installed
    facts = probe.collect(make_ctx(python=str(venv_python), cwd=tmp_path))
    assert facts.shadowing == ("tensorflow.py", "torch/", "jax/")
    description = probe.describe(facts)
    assert description.mark == "warn"
    assert "tensorflow.py, torch/, jax/ in the working directory" in description.summary


def test_plain_folder_does_not_shadow_an_installed_package(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    install_standin(site_packages(python), "tensorflow", "2.15.1", "tensorflow", "")
    work = tmp_path / "work"
    (work / "tensorflow").mkdir(parents=True)  # no __init__.py: the installed package wins
    assert probe.collect(make_ctx(python=str(python), cwd=work)).shadowing == ()


def test_running_inside_site_packages_is_not_shadowing(venv_python: Path) -> None:
    site = site_packages(venv_python)
    assert probe.collect(make_ctx(python=str(venv_python), cwd=site)).shadowing == ()


def test_conda_prefix_is_recognised(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    (python.parent.parent / "conda-meta").mkdir()
    assert probe.collect(make_ctx(python=str(python), cwd=tmp_path)).origin == "conda"


def test_fallback_without_importlib_metadata(venv_python: Path, tmp_path: Path) -> None:
    """Python 3.6/3.7 have no importlib.metadata: the child reads *.dist-info itself."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\nsys.modules['importlib.metadata'] = None\n", encoding="utf-8"
    )
    facts = probe.collect(make_ctx(python=str(venv_python), cwd=tmp_path, env={"PYTHONPATH": str(blocker)}))
    dists = by_name(facts)
    assert dists["tensorflow"].requires[0] == "numpy<2.0.0,>=1.23.5"
    assert dists["tensorflow-gpu"].version == "2.11.0"
    assert "speechmetrics" in dists and "requests" not in dists
    assert any(Path(p).name == "garbage-1.0.dist-info" for p in facts.unreadable_metadata)


def test_interpreter_that_does_not_exist(tmp_path: Path) -> None:
    facts = probe.collect(make_ctx(python=str(tmp_path / "nope" / "python"), cwd=tmp_path))
    assert facts.error is not None and "not found" in facts.error
    assert probe.describe(facts).mark == "fail"


def test_interpreter_printing_garbage(bin_dir: Path, tmp_path: Path) -> None:
    fake = write_executable(bin_dir, "python", stdout="Python 2.7.18\nhello\n")
    facts = probe.collect(make_ctx(python=str(fake), cwd=tmp_path))
    assert facts.error is not None and "printed no result" in facts.error
    assert facts.distributions == ()


def test_interpreter_that_hangs(bin_dir: Path, tmp_path: Path) -> None:
    fake = write_executable(bin_dir, "python", sleep=30)
    facts = probe.collect(make_ctx(python=str(fake), cwd=tmp_path, child_timeout=1))
    assert facts.error is not None and "did not finish" in facts.error


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"distributions": "tensorflow"},
        {"distributions": [None, 3, {"name": ""}, {"version": "1.0"}]},
        {"origin": "somewhere", "bits": "64", "is_venv": "yes", "shadowing": [1, None]},
        {"site_packages": None, "implementation": 7, "version": ["3"]},
    ],
)
def test_parse_tolerates_bad_child_output(data: dict[str, object]) -> None:
    facts = probe.parse(data)
    assert facts.distributions == ()
    assert facts.origin == "other"
    assert facts.bits == 64
    assert facts.is_venv is False
    assert facts.shadowing == ()
    assert facts.implementation == "CPython"


def test_parse_canonicalises_and_deduplicates() -> None:
    facts = probe.parse(
        {
            "origin": "microsoft-store",
            "implementation": "pypy",
            "distributions": [
                {"name": "TensorFlow_CPU", "version": "2.15.0", "requires": ["numpy", 5]},
                {"name": "tensorflow.cpu", "version": "9.9"},
            ],
        }
    )
    assert facts.origin == "microsoft-store"
    assert facts.implementation == "PyPy"
    assert facts.distributions == (
        Distribution(name="tensorflow-cpu", version="2.15.0", requires=("numpy",)),
    )


def test_surely_installed_looks_in_the_target_prefix(tmp_path: Path) -> None:
    from gpudoctor.probes.python import surely_installed

    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    (site / "tensorflow_cpu-2.20.0.dist-info").mkdir(parents=True)
    (site / "numpy-2.1.0.dist-info").mkdir()
    ctx = make_ctx(python=str(tmp_path / "venv" / "bin" / "python"))
    assert surely_installed(ctx, ["tensorflow", "tensorflow-cpu"])
    assert not surely_installed(ctx, ["torch"])
    assert not surely_installed(
        make_ctx(python=str(tmp_path / "elsewhere" / "bin" / "python")), ["tensorflow-cpu"]
    )
