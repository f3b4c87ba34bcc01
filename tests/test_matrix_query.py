"""`gpudoctor matrix` through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gpudoctor.cli import app
from gpudoctor.matrix import load_matrix
from gpudoctor.matrix_query import MatrixQueryError, query

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["matrix", *args])
    return result.exit_code, result.output


def _json(*args: str) -> dict[str, Any]:
    code, output = _run(*args, "--json")
    assert code == 0, output
    data = json.loads(output)
    assert isinstance(data, dict)
    return data


def test_overview_text() -> None:
    code, output = _run()
    assert code == 0
    assert "compat_matrix.yaml" in output
    assert "tensorflow" in output and "(1.13 … 2.22)" in output
    assert "Last verified against the released wheels: " in output
    assert "torch" in output and "jax" in output


def test_overview_json_counts_match_the_matrix() -> None:
    data = _json()
    sections = data["sections"]
    assert isinstance(sections, dict)
    matrix = load_matrix()
    assert sections["tensorflow"]["rows"] == len(matrix.tensorflow) + len(matrix.tensorflow_prereleases)
    assert {name: entry["rows"] for name, entry in sections.items()} == matrix.sections()
    assert str(data["source"]).endswith("compat_matrix.yaml")


def test_tensorflow_210_text() -> None:
    code, output = _run("tensorflow", "2.10")
    assert code == 0
    assert "TensorFlow 2.10" in output
    assert "Linux: CUDA 11.2, cuDNN 8.1" in output
    assert "Windows: CUDA 11.2" in output
    assert "cudart64_110.dll" in output and "build_info says cudart64_112.dll" in output
    assert "450.80.02" in output and "460.27.03" in output
    assert "PTX JIT at first start for CC 8.0" in output


def test_tensorflow_json_joins_driver_and_gpus() -> None:
    data = _json("tensorflow", "2.15.1")
    assert data["version"] == "2.15"
    assert data["windows"] is None
    linux = data["linux"]
    assert isinstance(linux, dict)
    assert linux["driver"]["toolkit_minimum"] == "535.54.03"
    assert linux["driver"]["compat_minimum"] == "525.60.13"
    assert "3.7" not in linux["gpus"]["native"] and "5.0" in linux["gpus"]["native"]
    assert "8.6" in linux["gpus"]["ptx"]
    assert data["and_cuda"]["nvidia-cudnn-cu12"] == "==8.9.4.25"


def test_tensorflow_windows_hint_after_210() -> None:
    code, output = _run("tf", "2.12")
    assert code == 0
    assert "native Windows GPU ended with 2.10" in output


def test_tensorflow_with_driver() -> None:
    data = _json("tensorflow", "2.15", "--driver", "470.82.01")
    assert data["linux"]["driver_ok"] is False
    data = _json("tensorflow", "2.15", "--driver", "535.104.05")
    assert data["linux"]["driver_ok"] is True


def test_torch_25() -> None:
    code, output = _run("torch", "2.5")
    assert code == 0
    assert "PyTorch 2.5" in output
    assert "cu124: CUDA 12.4" in output and "(PyPI default on Linux)" in output
    assert "--index-url https://download.pytorch.org/whl/cu118" in output
    data = _json("pytorch", "2.5")
    names = [v["name"] for v in data["variants"]]
    assert names == ["cu118", "cu121", "cu124", "cpu"]
    assert data["pypi_default_linux"] == "cu124" and data["variant"] is None
    assert 'pip install "torch==2.5.*" --index-url https://download.pytorch.org/whl/cu121' in output


def test_torch_local_version_picks_its_variant() -> None:
    code, output = _run("torch", "2.5.1+cu121")
    assert code == 0
    assert "cu121: CUDA 12.1" in output
    assert "cu118" not in output and "cu124:" not in output
    assert 'pip install "torch==2.5.1" --index-url https://download.pytorch.org/whl/cu121' in output
    data = _json("pytorch", "2.5.1+cu121", "--driver", "535.104.05")
    assert data["variant"] == "cu121"
    assert [v["name"] for v in data["variants"]] == ["cu121"]
    assert data["runnable_variants"] == ["cu121"]


def test_torch_unknown_local_variant_is_refused() -> None:
    with pytest.raises(MatrixQueryError, match=r"torch 2.5 has no cu999 variant.*cu118, cu121, cu124, cpu"):
        query(load_matrix(), framework="torch", version="2.5.1+cu999", driver=None)


def test_torch_with_driver_lists_runnable_variants() -> None:
    data = _json("torch", "2.5", "--driver", "470.82.01")
    assert data["runnable_variants"] == ["cu118"]


def test_jax_0431() -> None:
    code, output = _run("jax", "0.4.31")
    assert code == 0
    assert 'pip install "jax[cuda12]==0.4.31"' in output
    assert '-U "jax[cuda12]"' not in output
    assert "Windows native GPU: no" in output
    data = _json("jax", "0.4.31")
    assert data["python"] == ">=3.10"
    assert data["cuda"][0]["min_driver_linux"] == "525.60.13"


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            "0.4.1",
            [
                "CUDA 11: Linux driver >= 450.80.02",
                'pip install "jax[cuda11_cudnn86]==0.4.1" -f https://storage.googleapis.com/jax-releases/',
                "(targets sm_35 sm_52 sm_60 sm_70 compute_80)",
            ],
        ),
        (
            "0.4.16",
            [
                (
                    "CUDA 11: cuDNN >= 8.8, Linux driver >= 450.80.02 (CUDA 11.x minor-version compatibility); "
                    'pip install "jax[cuda11_pip]==0.4.16" -f https://storage.googleapis.com/jax-releases/'
                ),
                (
                    "CUDA 12: cuDNN >= 8.9, Linux driver >= 525.60.13 (CUDA 12.x minor-version compatibility); "
                    'pip install "jax[cuda12_pip]==0.4.16"'
                ),
            ],
        ),
    ],
)
def test_jax_before_plugins_has_no_empty_cuda_lines(version: str, expected: list[str]) -> None:
    code, output = _run("jax", version)
    assert code == 0
    for text in expected:
        assert text in output
    cuda_lines = [line.strip() for line in output.splitlines() if line.strip().startswith("CUDA ")]
    assert cuda_lines and all(len(line) > len("CUDA 11:") + 10 for line in cuda_lines)


def test_jax_with_driver_judges_cuda_11_by_its_floor() -> None:
    data = _json("jax", "0.4.16", "--driver", "470.82")
    by_major = {entry["cuda"]: entry for entry in data["cuda"]}
    assert by_major[11]["driver_ok"] is True and by_major[11]["extras"] == [
        "cuda11_pip",
        "cuda11_local",
        "cuda11_cudnn86",
    ]
    assert by_major[12]["driver_ok"] is False


def test_python_ranges_read_like_people_write_them() -> None:
    from packaging.specifiers import SpecifierSet

    from gpudoctor.matrix_query import python_text

    assert python_text(SpecifierSet(">=2.7,!=3.0.*,!=3.1.*,!=3.2.*,!=3.3.*,!=3.4.*,<3.8")) == "2.7, 3.5–3.7"
    assert python_text(SpecifierSet(">=3.9,<3.13")) == "3.9–3.12"
    assert python_text(SpecifierSet(">=3.10")) == "3.10+"
    assert python_text(SpecifierSet("==3.11.*")) == "3.11"
    assert python_text(SpecifierSet(">=3.8,!=3.9.*,<3.11")) == "3.8, 3.10"
    assert python_text(SpecifierSet("<2.0")) == "<2.0"


def test_release_lists_print_python_ranges_in_line() -> None:
    code, output = _run("tensorflow")
    assert code == 0
    assert "!=" not in output and ">=" not in output
    row = next(line for line in output.splitlines() if line.strip().startswith("2.1 "))
    assert "Python 2.7, 3.5–3.7" in row
    cuda_columns = {line.index("CUDA") for line in output.splitlines()[1:]}
    assert len(cuda_columns) == 1
    code, output = _run("tensorflow", "2.1")
    assert output.splitlines()[0] == "TensorFlow 2.1   Python 2.7, 3.5–3.7"


def test_tensorflow_1x_rows_flag_their_targets() -> None:
    code, output = _run("tensorflow", "1.13")
    assert code == 0
    assert "GPU packages (Linux): tensorflow-gpu" in output
    assert "kernels for CC 3.5, 3.7, 5.2" in output
    assert "[targets unverified" in output
    data = _json("tensorflow", "1.13.1")
    assert data["windows"]["compute_capabilities_verified"] is False
    assert data["windows"]["cudart"] == "cudart64_100.dll"
    assert _json("tensorflow", "2.15")["linux"]["compute_capabilities_verified"] is True


def test_driver_470() -> None:
    code, output = _run("--driver", "470.82")
    assert code == 0
    assert "newest CUDA toolkit: 11.4" in output
    data = _json("--driver", "470.82")
    linux = data["linux"]
    assert linux["newest_cuda_toolkit"] == "11.4"
    assert linux["cuda_majors_by_compatibility"] == [11]
    assert "2.14" in linux["tensorflow"] and "2.15" not in linux["tensorflow"]
    assert linux["torch"]["2.5"] == ["cu118"]
    assert "2.8" not in linux["torch"]
    assert linux["jax"] == []
    assert data["windows"]["tensorflow"][-1] == "2.10"
    assert linux["jax_before_plugins"]["until"] == "0.4.26"
    assert linux["jax_before_plugins"]["min_driver_linux"] == {"11": "450.80.02"}
    assert "jax[cuda11_pip] / jax[cuda11_local]" in output and "before 0.4.26" not in output
    assert "<0.4.26 with CUDA 11 (driver >= 450.80.02)" in output
    assert "JAX: no CUDA plugin" not in output


@pytest.mark.parametrize("driver", ["0", "300.1", "384.80"])
def test_driver_below_every_toolkit_says_so(driver: str) -> None:
    code, output = _run("--driver", driver)
    assert code == 0
    assert output.count("runs no CUDA release gpudoctor knows") == 2
    assert "(the oldest, CUDA 9.0, needs >= 384.81)" in output
    assert "below every minor-version floor" not in output and "runs any CUDA" not in output
    data = _json("--driver", driver)
    assert data["linux"]["runs_known_cuda"] is False
    assert data["linux"]["tensorflow"] == [] and data["linux"]["torch"] == {}


def test_driver_between_toolkits_and_floors() -> None:
    code, output = _run("--driver", "418.40")
    assert code == 0
    assert "runs any CUDA build up to 10.1 (no minor-version compatibility below 450.80.02)" in output
    assert "JAX: no CUDA plugin (jax[cuda12] needs >= 525.60.13" in output
    assert _json("--driver", "418.40")["linux"]["runs_known_cuda"] is True


def test_driver_580_runs_cuda_13_and_jax_cuda13() -> None:
    linux = _json("--driver", "580.65.06")["linux"]
    assert linux["newest_cuda_toolkit"] == "13.0"
    assert linux["jax"] == ["cuda12", "cuda13"]


def test_framework_without_version_lists_releases() -> None:
    data = _json("torch")
    versions = [r["version"] for r in data["releases"]]
    assert versions[0] == "1.8" and "2.15" in versions
    code, output = _run("jax")
    assert code == 0 and "0.4.31" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tensorflow", "3.1"], "tensorflow 3.1 is not in the matrix"),
        (["torch", "0.4"], "torch 0.4 is not in the matrix"),
        (["jax", "0.2.1"], "jax 0.2.1 is not in the matrix"),
        (["caffe", "1.0"], "unknown framework 'caffe'"),
        (["--driver", "latest"], "--driver 'latest' is not a driver version"),
        (["tensorflow", "two"], "tensorflow two is not in the matrix"),
    ],
)
def test_bad_queries_exit_2_with_one_line(args: list[str], message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "matrix", *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("gpudoctor: error: ")
    assert message in lines[0]


def test_bad_matrix_file_exits_2_with_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("schema: 1\nplatform: [\n", encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "matrix", "--matrix", str(bad)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"gpudoctor: error: {bad}: not valid YAML")
    assert "Traceback" not in result.stderr


def test_missing_matrix_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "matrix", "--matrix", str(missing)],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == f"gpudoctor: error: cannot read matrix file {missing}: No such file or directory"
    )


def test_custom_matrix_file_is_used(tmp_path: Path) -> None:
    source = Path(load_matrix().source).read_text(encoding="utf-8")
    custom = tmp_path / "custom.yaml"
    custom.write_text(
        source.replace('{cuda: "11.4", linux: "470.42.01"', '{cuda: "11.4", linux: "470.99.99"'),
        encoding="utf-8",
    )
    data = json.loads(
        runner.invoke(app, ["matrix", "--driver", "470.82", "--json", "--matrix", str(custom)]).output
    )
    assert data["linux"]["newest_cuda_toolkit"] == "11.3"


def test_version_without_framework_is_refused() -> None:
    with pytest.raises(MatrixQueryError, match="name a framework"):
        query(load_matrix(), framework=None, version="2.10", driver=None)


# -- Issue #11 "done when": what the primary sources say --------------------------------------


def test_done_when_tensorflow_222_is_a_marked_prerelease() -> None:
    code, output = _run("tensorflow", "2.22")
    assert code == 0
    assert "[PRE-RELEASE 2.22.0rc0]" in output and "pip install --pre 'tensorflow==2.22.0rc0'" in output
    assert "Python 3.10–3.14" in output
    assert "nvidia-cudnn-cu12>=9.10.2.21,<10.0" in output and "nvidia-nvshmem-cu12>=3.2.5" in output
    assert "GPUs: not recorded for this build" in output


def test_done_when_torch_215() -> None:
    data = _json("torch", "2.15")
    assert data["python"] == "<3.16,>=3.11"
    assert data["pypi_default_linux"] == "cu132" and data["free_threaded"] == ["3.14t", "3.15t"]
    cu132 = next(v for v in data["variants"] if v["name"] == "cu132")
    assert cu132["cudnn"] == "9.26.0.51"


def test_done_when_jax_012_judges_blackwell() -> None:
    data = _json("jax", "0.12")
    by_major = {entry["cuda"]: entry for entry in data["cuda"]}
    assert by_major[12]["min_cudnn"] == "9.10.2" and by_major[13]["min_cudnn"] == "9.12"
    assert "10.0" in by_major[12]["gpus"]["native"] and "12.0" in by_major[12]["gpus"]["ptx"]
    assert "6.1" not in by_major[13]["gpus"]["native"] + by_major[13]["gpus"]["ptx"]
    assert data["python"] == ">=3.12"


def test_done_when_short_and_new_drivers() -> None:
    code, output = _run("--driver", "535.54")
    assert code == 0
    assert "read as the lowest 535.54.x release" in output
    assert "newest CUDA toolkit: 12.2" in output
    linux = _json("--driver", "610.10")["linux"]
    assert linux["newest_cuda_toolkit"] == "13.2"  # 13.3 needs 610.43.02
    assert 13 in linux["cuda_majors_by_compatibility"]


def test_a_torch_series_lists_its_known_broken_releases() -> None:
    matrix = load_matrix()
    result = query(matrix, framework="torch", version="2.4", driver=None)
    assert (
        "  Known issue: 2.4.0 on windows: `import` fails naming fbgemm.dll; fixed in 2.4.1 (pytorch/pytorch#131662)"
        in result.text.splitlines()
    )
    assert [k["kind"] for k in result.data["known_issues"]] == ["import_error", "numpy1_build"]
    assert query(matrix, framework="torch", version="2.5", driver=None).data["known_issues"] == []
