"""GD602's pytorch-channel advice, GD503's image-build advice and GD506 under WSL 1, on edge inputs."""

from __future__ import annotations

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import (
    CondaFacts,
    CondaPackage,
    DriverFacts,
    EnvironmentFacts,
    Facts,
    GpuFacts,
    PlatformFacts,
    PythonFacts,
    ToolkitFacts,
    TorchFacts,
)
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Finding
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.platform import build_arch_list
from gpudoctor.rules.torch import channel_mismatch, conda_cuda_package, is_cpu_build

MATRIX = load_matrix()


@pytest.mark.parametrize(
    ("nvcc", "archs"),
    [
        ("13.0", "7.5;8.0;8.6;8.9;9.0;10.0;12.0"),
        ("12.8.93", "7.5;8.0;8.6;8.9;9.0;10.0;12.0"),
        ("12.4", "7.5;8.0;8.6;8.9;9.0"),
        ("11.8", "7.5;8.0;8.6;8.9;9.0"),
        ("11.3", "7.5;8.0;8.6"),
        ("11.0", "7.0;7.5;8.0"),
        ("10.2", "6.0;7.0;7.5"),
        ("9.2", "7.5;8.0;8.6;8.9;9.0"),
        (None, "7.5;8.0;8.6;8.9;9.0"),
        ("", "7.5;8.0;8.6;8.9;9.0"),
        ("release twelve", "7.5;8.0;8.6;8.9;9.0"),
        ("12", "7.5;8.0;8.6;8.9;9.0"),
    ],
)
def test_build_arch_list_fits_nvcc(nvcc: str | None, archs: str) -> None:
    assert build_arch_list(nvcc) == archs


def _conda_torch_facts(packages: tuple[CondaPackage, ...], torch: TorchFacts) -> Facts:
    return Facts(
        platform=PlatformFacts(system="Linux", machine="x86_64", device_nodes=("/dev/nvidia0",)),
        driver=DriverFacts(
            nvml_state="ok",
            driver_version="470.82.01",
            cuda_driver_version="11.4",
            gpus=(GpuFacts(name="RTX 2080 Ti", compute_capability="7.5"),),
        ),
        conda=CondaFacts(prefix="/envs/x", is_target=True, packages=packages),
        python=PythonFacts(version="3.8.12"),
        torch=torch,
    )


def _cpu_torch(version: str, build: str, channel: str) -> TorchFacts:
    return TorchFacts(
        installed=True,
        imported=True,
        version=version,
        installer="conda",
        conda_build=build,
        conda_channel=channel,
    )


CPU_190 = _cpu_torch("1.9.0", "py3.8_cpu_0", "pytorch")


@pytest.mark.parametrize("bad", ["", "abc", "eleven"])
def test_unparseable_cudatoolkit_versions_are_ignored(bad: str) -> None:
    facts = _conda_torch_facts((CondaPackage(name="cudatoolkit", version=bad, channel="defaults"),), CPU_190)
    ctx = RuleContext(facts=facts, matrix=MATRIX)
    assert conda_cuda_package(ctx) is None
    assert channel_mismatch(ctx, CPU_190, "1.9.0") is None


def test_pytorch_cuda_wins_over_cudatoolkit() -> None:
    facts = _conda_torch_facts(
        (
            CondaPackage(name="cudatoolkit", version="11.8.0", channel="nvidia"),
            CondaPackage(name="pytorch-cuda", version="11.8", channel="pytorch"),
        ),
        CPU_190,
    )
    package = conda_cuda_package(RuleContext(facts=facts, matrix=MATRIX))
    assert package is not None and package.name == "pytorch-cuda"


def test_cudatoolkit_the_release_was_built_for_is_no_mismatch() -> None:
    facts = _conda_torch_facts(
        (CondaPackage(name="cudatoolkit", version="11.1.74", channel="conda-forge"),), CPU_190
    )
    ctx = RuleContext(facts=facts, matrix=MATRIX)
    assert channel_mismatch(ctx, CPU_190, "1.9.0") is None


def test_conda_forge_cpu_build_next_to_cudatoolkit_is_no_channel_mismatch() -> None:
    facts = _conda_torch_facts(
        (CondaPackage(name="cudatoolkit", version="11.3.1", channel="conda-forge"),),
        _cpu_torch("1.9.0", "cpu_py38h1234_0", "conda-forge"),
    )
    finding = _only(diagnose(facts, MATRIX).findings, "GD602")
    assert "pytorch channel has no" not in finding.message
    assert any("conda-forge 'pytorch=1.9.0=cuda*'" in c for c in finding.fix_commands)


def test_unknown_release_keeps_a_fix() -> None:
    facts = _conda_torch_facts(
        (CondaPackage(name="cudatoolkit", version="11.3.1", channel="defaults"),),
        _cpu_torch("0.4.1", "py3.8_cpu_0", "pytorch"),
    )
    finding = _only(diagnose(facts, MATRIX).findings, "GD602")
    assert finding.fix_commands, "GD602 must stay actionable for a release the matrix does not list"


def _only(findings: tuple[Finding, ...], code: str) -> Finding:
    matching = [f for f in findings if f.code == code]
    assert len(matching) == 1, [f.code for f in findings]
    return matching[0]


def _container(kind: str, toolkit: ToolkitFacts | None, env: dict[str, str] | None = None) -> Facts:
    return Facts(
        platform=PlatformFacts(system="Linux", machine="x86_64", container=kind, device_nodes=()),
        driver=DriverFacts(nvml_state="library_not_found"),
        toolkit=toolkit,
        environment=EnvironmentFacts(variables=env or {}),
    )


def test_container_without_toolkit_gets_no_build_advice() -> None:
    finding = _only(diagnose(_container("docker", ToolkitFacts()), MATRIX).findings, "GD503")
    assert not any("TORCH_CUDA_ARCH_LIST" in c for c in finding.fix_commands)


def test_cuda_home_alone_is_enough_for_build_advice() -> None:
    facts = _container("docker", None, {"CUDA_HOME": "/usr/local/cuda"})
    finding = _only(diagnose(facts, MATRIX).findings, "GD503")
    assert 'ENV TORCH_CUDA_ARCH_LIST="7.5;8.0;8.6;8.9;9.0"' in finding.fix_commands
    assert "CUDA toolkit: /usr/local/cuda" in finding.seen


def test_kubernetes_pod_gets_no_dockerfile_advice() -> None:
    toolkit = ToolkitFacts(nvcc_on_path="/usr/local/cuda/bin/nvcc", nvcc_version="12.4")
    finding = _only(diagnose(_container("kubernetes", toolkit), MATRIX).findings, "GD503")
    assert not any("ENV " in c for c in finding.fix_commands)


def _wsl1(driver: DriverFacts | None, module_sources: tuple[str, ...] = ()) -> Facts:
    return Facts(
        platform=PlatformFacts(
            system="Linux",
            release="4.4.0-19041-Microsoft",
            wsl=1,
            distro_id="ubuntu",
            nvidia_module_sources=module_sources,
        ),
        driver=driver,
    )


def test_wsl1_module_sources_alone_are_reported() -> None:
    findings = diagnose(_wsl1(None, module_sources=("535.104.05",)), MATRIX).findings
    finding = _only(findings, "GD506")
    assert finding.severity.value == "warning"
    assert "driver 535.104.05" in finding.message
    assert findings[0].code == "GD504"


def test_clean_wsl1_has_no_linux_driver_finding() -> None:
    findings = diagnose(_wsl1(DriverFacts(nvml_state="library_not_found")), MATRIX).findings
    assert [f.code for f in findings] == ["GD504"]


def test_wsl2_module_sources_without_shadowing_libraries_pass() -> None:
    facts = Facts(
        platform=PlatformFacts(
            system="Linux", wsl=2, device_nodes=("/dev/dxg",), nvidia_module_sources=("535.104.05",)
        ),
        driver=DriverFacts(nvml_state="ok", userspace_libraries=("/usr/lib/wsl/lib/libnvidia-ml.so.1",)),
    )
    assert "GD506" not in [f.code for f in diagnose(facts, MATRIX).findings]


def test_conda_build_without_any_version_names_no_version_in_commands() -> None:
    facts = _conda_torch_facts(
        (), TorchFacts(installed=True, imported=True, installer="conda", conda_build="py3.8_cpu_0")
    )
    finding = _only(diagnose(facts, MATRIX).findings, "GD602")
    assert not any("?" in c for c in finding.fix_commands)


@pytest.mark.parametrize(
    ("build", "cpu"),
    [
        ("py3.8_cpu_0", True),
        ("cpu_generic_py311h5cd2a62_0", True),
        ("cpu_mkl_py312h1234_100", True),
        ("py3.8_cuda11.1_cudnn8.0.5_0", False),
        ("cuda120_py311h1234_300", False),
        ("", False),
        ("cpuinfo_0", False),
    ],
)
def test_conda_build_strings_of_cpu_builds(build: str, cpu: bool) -> None:
    assert is_cpu_build(TorchFacts(installed=True, conda_build=build)) is cpu
