"""The compatibility matrix: the real file checked against itself, the lookups, and broken files."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from packaging.version import Version

from gpudoctor.matrix import (
    Matrix,
    MatrixError,
    System,
    TensorFlowBuild,
    cudnn_version_from_int,
    default_matrix_path,
    kernel_support,
    load_matrix,
    parse_matrix,
)

REPO_MATRIX = Path(__file__).resolve().parents[1] / "compat_matrix.yaml"


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


# -- The real file, checked against itself ---------------------------------------------------


def test_default_load_is_the_repository_file_and_cached(matrix: Matrix) -> None:
    assert Path(matrix.source).resolve() == default_matrix_path().resolve()
    assert default_matrix_path().read_bytes() == REPO_MATRIX.read_bytes()
    assert load_matrix() is matrix


def test_explicit_path_loads_the_same_rows(matrix: Matrix) -> None:
    again = load_matrix(str(REPO_MATRIX))
    assert again.tensorflow == matrix.tensorflow
    assert again.torch == matrix.torch


def test_every_section_is_filled(matrix: Matrix) -> None:
    assert all(count > 0 for count in matrix.sections().values())
    assert {r.version for r in matrix.tensorflow} >= {"1.15", *(f"2.{m}" for m in range(22))}
    assert {r.version for r in matrix.torch} >= {"1.8", *(f"2.{m}" for m in range(16))}
    assert {t.cuda for t in matrix.cuda_toolkits} >= {"9.0", "10.2", "11.8", "12.9", "13.0"}


def _all_rows(matrix: Matrix) -> list[object]:
    return [
        *matrix.tensorflow,
        *matrix.cuda_toolkits,
        *matrix.cuda_families,
        *matrix.architectures,
        *matrix.gpus,
        *matrix.cudnn_majors,
        *matrix.cudnn_releases,
        *matrix.cuda_runtimes,
        *matrix.torch,
        *matrix.jax_cuda_plugins,
        *matrix.jax,
    ]


def test_every_row_and_build_has_a_source(matrix: Matrix) -> None:
    for row in _all_rows(matrix):
        assert getattr(row, "source", "").strip(), row
    for release in matrix.tensorflow:
        for build in (release.linux, release.windows):
            assert build is None or build.source.strip()
    assert set(matrix.platform.sources) == {
        "tensorflow_last_windows_gpu",
        "tensorflow_first_and_cuda",
        "tensorflow_last_macos_gpu",
        "tensorflow_gpu_stub_from",
        "tensorflow_last_macos_x86",
        "tensorflow_wsl_min_driver_windows",
        "wsl_gpu_min_windows_build",
        "wsl_lib_dir",
        "torch_last_conda_channel",
        "jax_windows_native_gpu",
        "jax_wsl2_gpu",
        "jax_macos",
    }
    assert all(s.strip() for s in matrix.platform.sources.values())


def test_every_tensorflow_build_has_driver_runtime_and_cudnn_rows(matrix: Matrix) -> None:
    for release in matrix.tensorflow:
        systems: tuple[tuple[System, TensorFlowBuild | None], ...] = (
            ("linux", release.linux),
            ("windows", release.windows),
        )
        for system, build in systems:
            if build is None:
                continue
            requirement = matrix.driver_requirement(build.cuda, system)
            assert requirement is not None, (release.version, system)
            assert requirement.toolkit_minimum or requirement.compat_minimum
            assert build.cudart == matrix.cudart_name(build.cuda, system), (release.version, system)
            major = int(build.cudnn.split(".")[0])
            assert build.cudnn_library == matrix.cudnn_library_name(major, system)
            assert matrix.cudnn_supports(build.cudnn, build.cuda), (release.version, build.cudnn, build.cuda)


def test_tensorflow_windows_builds_end_at_the_platform_row(matrix: Matrix) -> None:
    last = Version(matrix.platform.tensorflow_last_windows_gpu)
    with_windows = [Version(r.version) for r in matrix.tensorflow if r.windows is not None]
    assert max(with_windows) == last
    assert all(r.windows is None for r in matrix.tensorflow if Version(r.version) > last)


def test_and_cuda_starts_at_the_platform_row(matrix: Matrix) -> None:
    first = Version(matrix.platform.tensorflow_first_and_cuda)
    for release in matrix.tensorflow:
        assert bool(release.and_cuda) == (Version(release.version) >= first), release.version


def test_torch_variants_have_driver_rows_and_toolkits_that_target_their_arches(matrix: Matrix) -> None:
    for release in matrix.torch:
        assert release.variant("cpu") is not None, release.version
        for variant in release.variants:
            if variant.cuda is None:
                assert not variant.arch_list
                continue
            assert matrix.driver_requirement(variant.cuda, "linux") is not None, (
                release.version,
                variant.name,
            )
            assert variant.index_url == f"https://download.pytorch.org/whl/{variant.name}"
            for target in variant.arch_list:
                digits = target.split("_")[1]
                cc = f"{digits[:-1]}.{digits[-1]}"
                assert matrix.toolkit_supports_arch(variant.cuda, cc), (release.version, variant.name, cc)


def test_jax_runs_are_contiguous_and_plugins_have_driver_rows(matrix: Matrix) -> None:
    runs = sorted(matrix.jax, key=lambda r: Version(r.version))
    for before, after in itertools.pairwise(runs):
        assert before.until == after.version
    for plugin in matrix.jax_cuda_plugins:
        family = matrix.cuda_family(plugin.major)
        assert family is not None
        assert Version(plugin.min_driver_linux) >= Version(family.linux)


def test_gpu_models_name_known_architectures(matrix: Matrix) -> None:
    for model in matrix.gpus:
        assert matrix.architecture(model.cc) is not None, model.cc
    names = [n.lower() for model in matrix.gpus for n in model.names]
    assert len(names) == len(set(names))


# -- Lookups -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "series"),
    [
        ("2.15.1", "2.15"),
        ("2.15.0.post1", "2.15"),
        ("2.10.0", "2.10"),
        ("1.15.5", "1.15"),
        ("2.21.0rc1", "2.21"),
    ],
)
def test_tensorflow_release_matches_the_series(matrix: Matrix, version: str, series: str) -> None:
    release = matrix.tensorflow_release(version)
    assert release is not None
    assert release.version == series


@pytest.mark.parametrize("version", ["3.0.0", "2.99", "garbage", "", "1.12.0"])
def test_tensorflow_release_unknown(matrix: Matrix, version: str) -> None:
    assert matrix.tensorflow_release(version) is None


def test_tensorflow_rows_hold_the_reference_facts(matrix: Matrix) -> None:
    tf215 = matrix.tensorflow_release("2.15.1")
    assert tf215 is not None and tf215.linux is not None
    assert (tf215.linux.cuda, tf215.linux.cudnn) == ("12.2", "8.9")
    assert tf215.linux.compute_capabilities == ("sm_50", "sm_60", "sm_70", "sm_75", "compute_80")
    assert tf215.and_cuda["nvidia-cudnn-cu12"] == "==8.9.4.25"
    assert tf215.windows is None
    tf210 = matrix.tensorflow_release("2.10")
    assert tf210 is not None and tf210.windows is not None
    assert tf210.windows.cudart == "cudart64_110.dll"
    assert tf210.windows.cudart_build_info == "cudart64_112.dll"
    tf20 = matrix.tensorflow_release("2.0")
    assert tf20 is not None and tf20.gpu_packages == ("tensorflow-gpu",)
    tf217 = matrix.tensorflow_release("2.17")
    assert tf217 is not None and tf217.linux is not None
    assert kernel_support("5.2", tf217.linux.compute_capabilities) is None
    assert kernel_support("6.1", tf217.linux.compute_capabilities) == "native"


def test_tensorflow_1x_rows(matrix: Matrix) -> None:
    for version, gpu_packages in (("1.13.1", ("tensorflow-gpu",)), ("1.14.0", ("tensorflow-gpu",))):
        release = matrix.tensorflow_release(version)
        assert release is not None and release.gpu_packages == gpu_packages
        assert release.linux is not None and release.windows is not None
        assert (release.linux.cuda, release.linux.cudnn, release.linux.cudart) == (
            "10.0",
            "7.4",
            "libcudart.so.10.0",
        )
        assert release.windows.cudart == "cudart64_100.dll"
        assert release.windows.python is not None and not release.windows.python.contains("3.4")
    for series in ("1.13", "1.14", "1.15"):
        release = matrix.tensorflow_release(series)
        assert release is not None and release.linux is not None and release.windows is not None
        for build in (release.linux, release.windows):
            assert kernel_support("5.2", build.compute_capabilities) == "native"
            assert kernel_support("5.0", build.compute_capabilities) == "ptx"  # compute_37 JIT
            assert kernel_support("3.0", build.compute_capabilities) is None
            assert build.compute_capabilities_verified is False  # build scripts, not the wheels
    tf23 = matrix.tensorflow_release("2.3")
    assert tf23 is not None and tf23.linux is not None and tf23.linux.compute_capabilities_verified


def test_tensorflow_versions_for_python(matrix: Matrix) -> None:
    assert matrix.tensorflow_versions_for_python("3.12") == ["2.16", "2.17", "2.18", "2.19", "2.20", "2.21"]
    assert matrix.tensorflow_versions_for_python("3.13.1")[0] == "2.20"
    assert "2.1" in matrix.tensorflow_versions_for_python("2.7")
    assert matrix.tensorflow_versions_for_python("3.4") == ["1.13", "1.14", "1.15", "2.0"]
    assert matrix.tensorflow_versions_for_python("3.2") == []
    assert matrix.tensorflow_versions_for_python("three") == []


def test_driver_requirement(matrix: Matrix) -> None:
    req = matrix.driver_requirement("12.2", "linux")
    assert req is not None
    assert (req.toolkit_minimum, req.compat_minimum) == ("535.54.03", "525.60.13")
    win = matrix.driver_requirement("11.2.2", "windows")
    assert win is not None
    assert (win.toolkit_minimum, win.compat_minimum) == ("460.82", "452.39")
    old = matrix.driver_requirement("10.1", "linux")
    assert old is not None
    assert (old.toolkit_minimum, old.compat_minimum) == ("418.39", None)
    cuda13 = matrix.driver_requirement("13.0", "windows")
    assert cuda13 is not None and cuda13.toolkit_minimum is None
    assert matrix.driver_requirement("12.7", "linux") is None
    assert matrix.driver_requirement("8.0", "linux") is None
    assert matrix.driver_requirement("x.y", "linux") is None


@pytest.mark.parametrize(
    ("driver", "system", "newest"),
    [
        ("470.82.01", "linux", "11.4"),
        ("535.104.05", "linux", "12.2"),
        ("525.60.13", "linux", "12.0"),
        ("525.60.12", "linux", "11.8"),
        ("580.65.06", "linux", "13.0"),
        ("384.81", "linux", "9.0"),
        ("384.80", "linux", None),
        ("537.13", "windows", "12.2"),
        ("581.57", "windows", "12.9"),
        ("not-a-driver", "linux", None),
    ],
)
def test_newest_cuda_for_driver(matrix: Matrix, driver: str, system: str, newest: str | None) -> None:
    assert matrix.newest_cuda_for_driver(driver, system) == newest  # type: ignore[arg-type]


def test_driver_runs_cuda_uses_minor_version_compatibility(matrix: Matrix) -> None:
    assert matrix.driver_runs_cuda("525.60.13", "12.8", "linux") is True
    assert matrix.driver_runs_cuda("520.61.05", "12.1", "linux") is False
    assert matrix.driver_runs_cuda("470.82", "11.8", "linux") is True
    assert matrix.driver_runs_cuda("418.39", "10.2", "linux") is False
    assert matrix.driver_runs_cuda("440.33", "10.2", "linux") is True
    assert matrix.driver_runs_cuda("garbage", "10.2", "linux") is None
    assert matrix.driver_runs_cuda("550.0", "7.5", "linux") is None


def test_a_toolkit_whose_own_minimum_is_below_its_majors_compatibility_floor(matrix: Matrix) -> None:
    """CUDA 11.0 needs 450.51.05 itself; 11.x minor-version compatibility starts only at 450.80.02.
    A 450.57 driver runs 11.0 (tensorflow#41976 ran TF 2.4 on it) but no later 11.x."""
    requirement = matrix.driver_requirement("11.0", "linux")
    assert requirement is not None
    assert (requirement.toolkit_minimum, requirement.compat_minimum) == ("450.51.05", "450.80.02")
    assert requirement.floor == "450.51.05" and not requirement.through_compatibility
    assert matrix.driver_runs_cuda("450.57", "11.0", "linux") is True
    assert matrix.driver_runs_cuda("450.57", "11.1", "linux") is False
    assert matrix.driver_runs_cuda("450.36.06", "11.0", "linux") is False
    later = matrix.driver_requirement("11.8", "linux")
    assert later is not None and later.floor == "450.80.02" and later.through_compatibility


@pytest.mark.parametrize(
    ("cuda", "cc", "supported"),
    [
        ("11.8", "3.5", True),
        ("12.0", "3.5", False),
        ("12.9", "6.1", True),
        ("13.0", "6.1", False),
        ("13.0", "7.5", True),
        ("11.7", "8.9", False),
        ("11.8", "8.9", True),
        ("12.6", "12.0", False),
        ("12.8", "12.0", True),
        ("10.2", "3.0", True),
        ("11.0", "3.0", False),
        ("11.0", "8.6", False),
        ("11.1", "8.6", True),
        ("12.8", "10.1", True),
        ("13.0", "10.1", False),
        ("12.0", "4.2", False),
        ("junk", "8.6", False),
    ],
)
def test_toolkit_supports_arch(matrix: Matrix, cuda: str, cc: str, supported: bool) -> None:
    assert matrix.toolkit_supports_arch(cuda, cc) is supported


@pytest.mark.parametrize(
    ("name", "cc"),
    [
        ("NVIDIA GeForce RTX 3090", "8.6"),
        ("NVIDIA GeForce RTX 3080 Ti Laptop GPU", "8.6"),
        ("Tesla K80", "3.7"),
        ("GeForce MX150", "6.1"),
        ("NVIDIA A100-SXM4-80GB", "8.0"),
        ("NVIDIA A10", "8.6"),
        ("NVIDIA A10G", "8.6"),
        ("NVIDIA H100 80GB HBM3", "9.0"),
        ("Tesla T4", "7.5"),
        ("Quadro RTX 6000", "7.5"),
        ("NVIDIA RTX 6000 Ada Generation", "8.9"),
        ("NVIDIA RTX 4000 SFF Ada Generation", "8.9"),
        ("NVIDIA RTX PRO 6000 Blackwell Workstation Edition", "12.0"),
        ("NVIDIA RTX A6000", "8.6"),
        ("NVIDIA GeForce GTX 1080 Ti", "6.1"),
        ("NVIDIA GeForce GTX 960M", "5.0"),
        ("GeForce GTX 960", "5.2"),
        ("NVIDIA GeForce GTX TITAN X", "5.2"),
        ("NVIDIA TITAN X (Pascal)", "6.1"),
        ("GeForce GTX TITAN Black", "3.5"),
        ("NVIDIA GeForce RTX 5090", "12.0"),
        ("NVIDIA L40S", "8.9"),
        ("Tesla V100-SXM2-16GB", "7.0"),
    ],
)
def test_compute_capability_for(matrix: Matrix, name: str, cc: str) -> None:
    assert matrix.compute_capability_for(name) == cc


@pytest.mark.parametrize(
    "name", ["", "NVIDIA", "AMD Radeon RX 7900 XTX", "Intel(R) UHD Graphics 620", "NVIDIA TITAN X"]
)
def test_compute_capability_for_unknown_or_ambiguous(matrix: Matrix, name: str) -> None:
    assert matrix.compute_capability_for(name) is None


@pytest.mark.parametrize(
    ("cc", "targets", "expected"),
    [
        ("8.6", ["sm_80"], "native"),
        ("8.9", ["sm_80", "sm_86"], "native"),
        ("9.0", ["sm_80", "sm_86"], None),
        ("9.0", ["sm_80", "compute_80"], "ptx"),
        ("12.0", ["sm_60", "sm_70", "sm_80", "sm_89", "compute_90"], "ptx"),
        ("5.0", ["sm_35", "sm_37", "sm_52", "sm_60", "sm_61", "compute_70"], None),
        ("5.2", ["sm_35", "sm_52"], "native"),
        ("3.0", ["compute_35"], None),
        ("9.0", ["sm_90a"], "native"),
        ("9.1", ["sm_90a"], None),
        ("10.3", ["sm_100"], "native"),
        ("10.0", ["compute_90a"], None),
        ("8.6", ["garbage", "", "sm_", "compute_xy"], None),
        ("7.5", [], None),
    ],
)
def test_kernel_support(cc: str, targets: list[str], expected: str | None) -> None:
    assert kernel_support(cc, targets) == expected


@pytest.mark.parametrize("cc", ["", "8", "8.6.1", "eight", "8.66"])
def test_kernel_support_rejects_bad_compute_capability(cc: str) -> None:
    with pytest.raises(ValueError, match="compute capability"):
        kernel_support(cc, ["sm_80"])


def test_library_names(matrix: Matrix) -> None:
    assert matrix.cudart_name("11.2", "linux") == "libcudart.so.11.0"
    assert matrix.cudart_name("11.8.89", "windows") == "cudart64_110.dll"
    assert matrix.cudart_name("10.1", "windows") == "cudart64_101.dll"
    assert matrix.cudart_name("12.4", "linux") == "libcudart.so.12"
    assert matrix.cudart_name("13.0", "windows") == "cudart64_13.dll"
    assert matrix.cudart_name("14.1", "linux") == "libcudart.so.14"
    assert matrix.cudart_name("9.2", "windows") == "cudart64_92.dll"
    with pytest.raises(ValueError):
        matrix.cudart_name("twelve", "linux")
    assert matrix.cudnn_library_name(8, "linux") == "libcudnn.so.8"
    assert matrix.cudnn_library_name(9, "windows") == "cudnn64_9.dll"
    assert matrix.cudnn_library_name(10, "linux") == "libcudnn.so.10"


@pytest.mark.parametrize(
    ("number", "version"),
    [
        (8907, "8.9.7"),
        (7605, "7.6.5"),
        (8100, "8.1.0"),
        (90300, "9.3.0"),
        (91002, "9.10.2"),
        (92800, "9.28.0"),
    ],
)
def test_cudnn_version_from_int(number: int, version: str) -> None:
    assert cudnn_version_from_int(number) == version


def test_cudnn_version_from_int_rejects_negative() -> None:
    with pytest.raises(ValueError):
        cudnn_version_from_int(-1)


def test_cudnn_supports(matrix: Matrix) -> None:
    assert matrix.cudnn_supports("8.9.7", "12.3") is True
    assert matrix.cudnn_supports("8.1.0", "12.0") is False
    assert matrix.cudnn_supports("9.10.2", "11.8") is True
    assert matrix.cudnn_supports("9.17.0", "11.8") is False
    assert matrix.cudnn_supports("9.17.0", "13.0") is True
    assert matrix.cudnn_supports("7.6.5", "10.1") is True
    assert matrix.cudnn_supports("5.1", "8.0") is None
    assert matrix.cudnn_supports("bogus", "12.0") is None


def test_platform_rows(matrix: Matrix) -> None:
    p = matrix.platform
    assert (p.tensorflow_last_windows_gpu, p.tensorflow_first_and_cuda) == ("2.10", "2.14")
    assert (p.tensorflow_last_macos_gpu, p.tensorflow_gpu_stub_from) == ("1.1", "2.12")
    assert p.wsl_gpu_min_windows_build == 19044


def test_torch_release_and_variants(matrix: Matrix) -> None:
    release = matrix.torch_release("2.5.1+cu124")
    assert release is not None
    assert release.version == "2.5"
    assert release.pypi_default_linux == "cu124"
    cu124 = release.variant("cu124")
    assert cu124 is not None
    assert cu124.cuda == "12.4"
    assert cu124.arch_list == ("sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90")
    assert cu124.index_url == "https://download.pytorch.org/whl/cu124"
    cu118 = release.variant("cu118")
    assert cu118 is not None and cu118.windows_arch_list[-1] == "compute_37"
    assert matrix.torch_release("2.9.0") is not None
    tf29 = matrix.torch_release("2.9.0")
    assert tf29 is not None
    cu130 = tf29.variant("cu130")
    assert cu130 is not None and cu130.arch_list[-1] == "compute_120"
    assert matrix.torch_release("0.4.1") is None
    assert matrix.torch_release("nonsense") is None


def test_torch_variants_for_driver(matrix: Matrix) -> None:
    names = [v.name for v in matrix.torch_variants_for_driver("2.5.1", "535.104.05", "linux")]
    assert names == ["cu124", "cu121", "cu118"]
    assert [v.name for v in matrix.torch_variants_for_driver("2.5.1", "470.82.01", "linux")] == ["cu118"]
    assert matrix.torch_variants_for_driver("2.11.0", "450.51.06", "linux") == []
    assert matrix.torch_variants_for_driver("2.11", "580.65.06", "linux")[0].name == "cu130"
    assert matrix.torch_variants_for_driver("0.1", "580.65.06", "linux") == []


def test_torch_releases_supporting_arch(matrix: Matrix) -> None:
    pascal = matrix.torch_releases_supporting_arch("6.1")
    assert ("2.14", "cu126") in pascal
    assert ("2.14", "cu130") not in pascal
    assert ("2.8", "cu128") not in pascal
    kepler = matrix.torch_releases_supporting_arch("3.7")
    assert ("2.5", "cu118") in kepler
    assert all(variant != "cu121" for _, variant in kepler)
    blackwell = matrix.torch_releases_supporting_arch("12.0")
    assert ("2.7", "cu128") in blackwell
    assert ("2.7", "cu126") not in blackwell


def test_jax_lookups(matrix: Matrix) -> None:
    cuda12 = matrix.jax_cuda(12)
    cuda13 = matrix.jax_cuda(13)
    assert cuda12 is not None and cuda13 is not None
    assert (cuda12.extra, cuda12.min_driver_linux, cuda12.min_compute_capability) == (
        "cuda12",
        "525.60.13",
        "5.2",
    )
    assert (cuda13.extra, cuda13.min_driver_linux, cuda13.min_compute_capability) == (
        "cuda13",
        "580.65.06",
        "7.5",
    )
    assert matrix.jax_cuda(11) is None
    release = matrix.jax_release("0.4.31")
    assert release is not None
    assert release.python.contains("3.10") and not release.python.contains("3.9")
    assert release.min_cudnn == {12: "9.1"}
    assert matrix.jax_release("0.4.33") == release
    late = matrix.jax_release("0.8.1")
    assert late is not None and late.cuda == (12, 13)
    assert matrix.jax_release("0.3.25") is None
    assert matrix.jax_release("1.0") is None
    assert matrix.jax_release("zero") is None


# -- Broken files ------------------------------------------------------------------------


def _with(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.fixture(scope="module")
def text() -> str:
    return REPO_MATRIX.read_text(encoding="utf-8")


def _load_broken(tmp_path: Path, content: str) -> MatrixError:
    path = tmp_path / "bad.yaml"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(MatrixError) as info:
        load_matrix(str(path))
    message = str(info.value)
    assert message.startswith(str(path) + ": ")
    assert "\n" not in message
    return info.value


def test_bad_yaml(tmp_path: Path) -> None:
    error = _load_broken(tmp_path, "schema: 1\ntensorflow: [\n  - {version: '2.1'\n")
    assert "not valid YAML at line" in str(error)


def test_not_a_mapping(tmp_path: Path) -> None:
    assert "expected a mapping of sections, got a list" in str(_load_broken(tmp_path, "- 1\n- 2\n"))


def test_empty_file(tmp_path: Path) -> None:
    assert "got nothing" in str(_load_broken(tmp_path, ""))


def test_wrong_schema(tmp_path: Path, text: str) -> None:
    assert "schema: 2 is not 1" in str(_load_broken(tmp_path, _with(text, "schema: 1", "schema: 2")))


def test_bad_cuda_version_names_the_entry(tmp_path: Path, text: str) -> None:
    broken = _with(text, 'linux: {cuda: "12.2", cudnn: "8.9"', 'linux: {cuda: "12.x", cudnn: "8.9"')
    assert "tensorflow[2.15]: linux: cuda: '12.x' is not a version" in str(_load_broken(tmp_path, broken))


def test_unquoted_version_is_rejected(tmp_path: Path, text: str) -> None:
    broken = _with(text, '{cuda: "12.1", linux: "530.30.02"', '{cuda: 12.10, linux: "530.30.02"')
    assert "must be quoted text" in str(_load_broken(tmp_path, broken))


def test_missing_source(tmp_path: Path, text: str) -> None:
    broken = _with(
        text,
        '{cuda: "11.3", linux: "465.19.01", windows: "465.89", source: *cuda_rn}',
        '{cuda: "11.3", linux: "465.19.01", windows: "465.89"}',
    )
    assert "cuda_toolkits[11.3]: missing 'source'" in str(_load_broken(tmp_path, broken))


def test_empty_source(tmp_path: Path, text: str) -> None:
    broken = _with(
        text,
        '{major: 11, linux: "450.80.02", windows: "452.39", source: *cuda_compat}',
        '{major: 11, linux: "450.80.02", windows: "452.39", source: "  "}',
    )
    assert "cuda_families[11]: source: is empty" in str(_load_broken(tmp_path, broken))


def test_unknown_key(tmp_path: Path, text: str) -> None:
    broken = _with(text, '{cc: "8.9", name: Ada Lovelace,', '{cc: "8.9", nmae: typo, name: Ada Lovelace,')
    assert "architectures[8.9]: unknown key 'nmae'" in str(_load_broken(tmp_path, broken))


def test_unknown_section(tmp_path: Path, text: str) -> None:
    assert "unknown section 'rocm'" in str(_load_broken(tmp_path, text + "\nrocm: []\n"))


def test_bad_specifier(tmp_path: Path, text: str) -> None:
    broken = _with(text, 'python: ">=3.9,<3.12"', 'python: "3.9 to 3.11"')
    assert "python: '3.9 to 3.11' is not a version specifier" in str(_load_broken(tmp_path, broken))


def test_bad_arch_list(tmp_path: Path, text: str) -> None:
    broken = _with(text, 'arch_list: "3.7;5.0;6.0;7.0"', 'arch_list: "3.7;sm_50;6.0;7.0"')
    error = str(_load_broken(tmp_path, broken))
    assert "torch[1.8]: variants[cu101]: arch_list: 'sm_50'" in error


def test_bad_target(tmp_path: Path, text: str) -> None:
    broken = _with(
        text, "compute_capabilities: [sm_50, sm_60, sm_70, sm_75, compute_80]", "compute_capabilities: [sm50]"
    )
    assert "tensorflow[2.15]: linux: compute_capabilities: 'sm50'" in str(_load_broken(tmp_path, broken))


def test_bad_compute_capabilities_verified_flag(tmp_path: Path, text: str) -> None:
    broken = _with(text, "compute_capabilities_verified: false", 'compute_capabilities_verified: "no"')
    error = str(_load_broken(tmp_path, broken))
    assert "tensorflow[1.13]: linux: compute_capabilities_verified: 'no' is not true or false" in error


def test_duplicate_row(tmp_path: Path, text: str) -> None:
    row = '  - {cuda: "9.0", linux: "384.81", windows: "385.54", source: *cuda_rn}\n'
    assert "cuda_toolkits[(9, 0)]: listed twice" in str(_load_broken(tmp_path, _with(text, row, row + row)))


def test_overlapping_jax_runs(tmp_path: Path, text: str) -> None:
    broken = _with(text, '{version: "0.4.36", until: "0.6.0"', '{version: "0.4.36", until: "0.6.1"')
    assert "jax[0.6.0]: overlaps jax[0.4.36]" in str(_load_broken(tmp_path, broken))


def test_overlapping_cudnn_ranges(tmp_path: Path, text: str) -> None:
    broken = _with(text, 'versions: ">=9.17,<10"', 'versions: ">=9.5,<10"')
    assert "overlaps cudnn_releases" in str(_load_broken(tmp_path, broken))


def test_pypi_default_must_be_a_variant(tmp_path: Path, text: str) -> None:
    broken = _with(
        text,
        "pypi_default_linux: cu124\n    variants:\n      - {name: cu118",
        "pypi_default_linux: cu999\n    variants:\n      - {name: cu118",
    )
    assert "pypi_default_linux: 'cu999' is not one of its variants" in str(_load_broken(tmp_path, broken))


def test_platform_value_must_be_a_version(tmp_path: Path, text: str) -> None:
    broken = _with(
        text, 'tensorflow_last_windows_gpu: {value: "2.10"', 'tensorflow_last_windows_gpu: {value: "two ten"'
    )
    assert "platform[tensorflow_last_windows_gpu]: value: 'two ten' is not a version" in str(
        _load_broken(tmp_path, broken)
    )


def test_row_that_is_not_a_mapping(tmp_path: Path, text: str) -> None:
    broken = _with(text, "cudnn_majors:\n", "cudnn_majors:\n  - just text\n")
    assert "cudnn_majors[?]: expected a mapping, got text" in str(_load_broken(tmp_path, broken))


def test_binary_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(MatrixError, match="not a text file"):
        load_matrix(str(path))


def test_missing_file_is_an_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        load_matrix(str(tmp_path / "nope.yaml"))


def test_parse_matrix_names_the_given_file() -> None:
    with pytest.raises(MatrixError, match=r"^custom\.yaml: "):
        parse_matrix("schema: 1\n", name="custom.yaml")


# -- Issue #11: corrected and new rows, and the lookups other areas use -------------------------


def test_short_driver_versions_are_the_lowest_of_their_series(matrix: Matrix) -> None:
    from gpudoctor.matrix import driver_at_least, is_short_driver

    assert driver_at_least("535.54", "535.54.03")
    assert not driver_at_least("535.54", "535.86.09")
    assert not driver_at_least("610.10", "610.43.02")
    assert driver_at_least("610.43.02", "610.43.02")
    assert is_short_driver("535.54") and not is_short_driver("535.54.03")
    assert matrix.newest_cuda_for_driver("535.54", "linux") == "12.2"
    assert matrix.newest_cuda_for_driver("610.10", "linux") == "13.2"
    assert matrix.newest_cuda_for_driver("610.43.02", "linux") == "13.3"


def test_corrected_rows(matrix: Matrix) -> None:
    toolkit = matrix.cuda_toolkit("13.3")
    assert toolkit is not None and toolkit.linux == "610.43.02"
    five = matrix.cuda_toolkit("13.5")
    assert five is not None and five.linux is None and not five.verified
    assert matrix.driver_runs_cuda("580.65.06", "13.5", "linux") is True
    torch_215, torch_113, torch_18 = (matrix.torch_release(v) for v in ("2.15", "1.13", "1.8"))
    assert torch_215 is not None and torch_215.python.contains("3.15.0") and torch_215.free_threaded
    assert torch_113 is not None and torch_113.python.contains("3.11.0")
    cu101 = torch_18.variant("cu101") if torch_18 else None
    assert cu101 is not None and cu101.cudnn == "7.6.3.30"
    assert matrix.cudnn_supports("9.11.0", "13.0") is False
    assert matrix.cudnn_supports("9.12.0", "13.0") is True
    plugin = matrix.jax_cuda(12)
    assert plugin is not None and (plugin.min_jax, plugin.min_cudnn) == ("0.4.22", "9.10.2")
    early = matrix.jax_release("0.4.2")
    assert early is not None and "cuda11_cudnn86" in early.extras
    assert matrix.jax_release("0.4.7") is not matrix.jax_release("0.4.8")
    assert {
        v: (r.min_cudnn[12] if (r := matrix.jax_release(v)) else "") for v in ("0.4.26", "0.4.28", "0.4.29")
    } == {"0.4.26": "8.9.2", "0.4.28": "8.9.2", "0.4.29": "9.0"}


def test_new_compute_capabilities_have_no_guessed_product(matrix: Matrix) -> None:
    for cc, first in (("8.8", "13.0"), ("10.7", "13.4")):
        arch = matrix.architecture(cc)
        assert arch is not None and arch.first_cuda == first
        assert not any(g.cc == cc for g in matrix.gpus)
    assert matrix.toolkit_supports_arch("13.3", "10.7") is False
    assert matrix.toolkit_supports_arch("13.5", "10.7") is True


def test_tensorflow_prerelease_is_looked_up_but_never_recommended(matrix: Matrix) -> None:
    row = matrix.tensorflow_release("2.22.0rc0")
    assert row is not None and row.prerelease == "2.22.0rc0"
    assert all(r.version != "2.22" for r in matrix.tensorflow)
    assert "2.22" not in matrix.tensorflow_versions_for_python("3.14")


def test_tensorflow_gpu_packages_per_patch_release(matrix: Matrix) -> None:
    assert matrix.tensorflow_gpu_packages("1.15.0") == ("tensorflow", "tensorflow-gpu")
    assert matrix.tensorflow_gpu_packages("1.15.5") == ("tensorflow-gpu",)
    assert matrix.tensorflow_gpu_packages("2.0.0") == ("tensorflow-gpu",)
    assert matrix.tensorflow_gpu_packages("2.11.0") == ("tensorflow", "tensorflow-gpu")
    assert matrix.tensorflow_gpu_packages("2.11.1") == ("tensorflow",)
    assert matrix.tensorflow_gpu_packages("9.9") == ()


def test_jax_targets_judge_a_gpu(matrix: Matrix) -> None:
    assert matrix.jax_kernel_support("0.5.0", 12, "10.0") == "ptx"  # Blackwell: compute_90 JIT only
    assert matrix.jax_kernel_support("0.6.0", 12, "10.0") == "native"
    assert matrix.jax_kernel_support("0.8.0", 13, "6.1") is None  # CUDA 13 wheels start at sm_75
    assert matrix.jax_kernel_support("0.4.2", 11, "3.5") == "native"
    assert matrix.jax_kernel_support("0.4.5", 11, "3.5") is None
    assert matrix.jax_kernel_support("0.8.0", 11, "8.0") is None  # no CUDA 11 build
    assert ("0.6.0", 12) in matrix.jax_releases_supporting_arch("12.0")


def test_legacy_driver_branches_and_pci_ids(matrix: Matrix) -> None:
    assert matrix.pci_generation("10de:1b80") == "Pascal"
    assert matrix.pci_generation("0x1180") == "Kepler"
    assert matrix.pci_generation("20B2") == "Ampere"
    assert matrix.pci_generation("ffff") is None
    assert matrix.pci_generation("not an id") is None
    kepler = matrix.last_driver_branch("kepler")
    assert kepler is not None and kepler.last_branch == "470" and kepler.verified
    assert matrix.last_driver_branch("Turing") is None
    pascal = matrix.last_driver_branch_for_cc("6.1")
    assert pascal is not None and pascal.last_branch == "580"
    assert matrix.driver_supports_generation("590.44.01", "Pascal") is False
    assert matrix.driver_supports_generation("580.95.05", "Pascal") is True
    assert matrix.driver_supports_generation("610.43.02", "Ada Lovelace") is True
    generations = {b.generation for b in matrix.driver_branches} | {p.generation for p in matrix.pci_devices}
    assert generations <= {a.name for a in matrix.architectures} | {"Tesla", "Fermi"}


def test_jetson_and_tensorflow_plugins(matrix: Matrix) -> None:
    jetson = matrix.jetson_release(l4t="R35.4.1")
    assert jetson is not None and jetson.jetpack == "5.1.2" and jetson.python == "3.8"
    assert matrix.jetson_release(l4t="35.2") is matrix.jetson_release(jetpack="5.1")
    assert matrix.jetson_release(l4t="99.1") is None
    metal = matrix.tensorflow_metal_for("2.14.1")
    assert [p.version for p in metal] == ["1.1.0"]
    assert matrix.tensorflow_metal_for("2.12.0")[0].tensorflow_package == "tensorflow-macos"
    directml = matrix.tensorflow_directml_for("2.10.0")
    assert directml[0].version == "0.4.0.dev230202" and directml[0].tensorflow_package == "tensorflow-cpu"
    assert [p.version for p in matrix.tensorflow_directml_for("2.11.0")] == [
        "0.2.0.dev221020",
        "0.1.1.dev221004",
        "0.1.0.dev220928",
    ]


def test_overlapping_pci_ids(tmp_path: Path, text: str) -> None:
    broken = _with(
        text,
        '{generation: Volta, source: *pci_ids, ids: "',
        '{generation: Volta, source: *pci_ids, ids: "1b80 ',
    )
    assert "pci_devices[Volta]: 1b80 is listed under Pascal too" in str(_load_broken(tmp_path, broken))


def test_known_issues_are_found_by_release_platform_and_kind(matrix: Matrix) -> None:
    fbgemm = matrix.known_issue("torch", "2.4.0", "windows", "import_error")
    assert fbgemm is not None and fbgemm.symptom == "fbgemm.dll" and fbgemm.fixed_in == "2.4.1"
    numpy1 = matrix.known_issue("torch", "2.4.0", "windows", "numpy1_build")
    assert numpy1 is not None and numpy1.issue == "pytorch/pytorch#131668"
    assert matrix.known_issue("torch", "2.4.0", "linux", "numpy1_build") is None
    assert matrix.known_issue("torch", "2.4.1", "windows", "import_error") is None
    assert all(k.source.startswith("https://") for k in matrix.known_issues)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "kind: numpy1_build,",
            "kind: numpy_build,",
            "kind: 'numpy_build' is not one of import_error, numpy1_build",
        ),
        (
            "platform: windows, kind: numpy1_build",
            "platform: win32, kind: numpy1_build",
            "platform: 'win32' is not one of",
        ),
        ("symptom: fbgemm.dll, ", "", "symptom: an import_error needs the text its import error names"),
        (
            'kind: numpy1_build, fixed_in: "2.4.1"',
            'kind: numpy1_build, fixed_in: "2.3.1"',
            "fixed_in: 2.3.1 is not after 2.4.0",
        ),
        (
            'kind: numpy1_build, fixed_in: "2.4.1", issue',
            'kind: import_error, symptom: x, fixed_in: "2.4.1", issue',
            "listed twice",
        ),
    ],
)
def test_broken_known_issue_rows(tmp_path: Path, text: str, old: str, new: str, message: str) -> None:
    error = str(_load_broken(tmp_path, _with(text, old, new)))
    assert "known_issues" in error and message in error


def test_the_mps_macos_floor_follows_the_torch_release(matrix: Matrix) -> None:
    def floor(torch: str) -> str | None:
        row = matrix.torch_mps_floor(torch)
        return row.macos if row else None

    assert (floor("1.13.1"), floor("2.5.1"), floor("2.10.0a0+git1234")) == ("12.3", "13.0", "14.0")
    assert floor("1.11.0") is None and floor("not a version") is None
    assert matrix.torch_last_for_macos("12.7.6") == "2.4"
    assert matrix.torch_last_for_macos("14.1") is None
    assert matrix.torch_last_for_macos("garbage") is None
