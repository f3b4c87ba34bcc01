"""The CUDA toolkit probe against fake install trees, fake nvcc programs and this machine's real CUDA."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from gpudoctor.facts import CudaInstall, ToolkitFacts
from gpudoctor.probes import toolkit
from gpudoctor.probes.base import ProbeUnavailable
from tests.conftest import OUTPUTS, FakeCall, FakeProgram, fake_program, make_ctx

VERSION_JSON_122 = {
    "cuda": {"name": "CUDA SDK", "version": "12.2.20230823"},
    "cuda_cudart": {"name": "CUDA Runtime (cudart)", "version": "12.2.140"},
    "cuda_nvcc": {"name": "CUDA NVCC", "version": "12.2.140"},
}


def recorded(name: str) -> str:
    return (OUTPUTS / name).read_text(encoding="utf-8")


def fake_nvcc(bin_dir: Path, **answer: Any) -> FakeProgram:
    """nvcc as the probe runs it: `nvcc --version` and nothing else."""
    return fake_program(bin_dir, "nvcc", FakeCall(argv=("--version",), **answer))


def make_install(base: Path, *, nvcc_output: str | None = None, version_json: object = None) -> Path:
    (base / "lib64").mkdir(parents=True, exist_ok=True)
    if nvcc_output is not None:
        fake_nvcc(base / "bin", stdout=nvcc_output)
    if version_json is not None:
        text = version_json if isinstance(version_json, str) else json.dumps(version_json)
        (base / "version.json").write_text(text, encoding="utf-8")
    return base


def by_path(facts: ToolkitFacts, path: str | Path) -> CudaInstall:
    return next(i for i in facts.installs if i.path == os.path.realpath(path))


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("nvcc-10.1.txt", "10.1.243"),
        ("nvcc-11.8.txt", "11.8.89"),
        ("nvcc-12.2.txt", "12.2.140"),
        ("nvcc-12.2-windows.txt", "12.2.140"),
        ("nvcc-13.0.txt", "13.0.88"),
    ],
)
def test_parses_recorded_nvcc_outputs(name: str, version: str) -> None:
    assert toolkit.parse_nvcc_version(recorded(name)) == version


@pytest.mark.parametrize(
    ("text", "version"),
    [
        ("", None),
        ("sh: 1: nvcc: not found", None),
        ("Cuda compilation tools, release twelve", None),
        ("Cuda compilation tools, release 12.2", "12.2"),
        ("Cuda compilation tools, release 12.2, V11.0.1", "12.2"),  # a V part that contradicts the release
        ("\x00\xff garbage \n release 9.0, V9.0.176", "9.0.176"),
    ],
)
def test_nvcc_parser_handles_odd_output(text: str, version: str | None) -> None:
    assert toolkit.parse_nvcc_version(text) == version


def test_version_files_parse_and_reject_garbage() -> None:
    assert toolkit.parse_version_json(json.dumps(VERSION_JSON_122)) == "12.2.140"
    assert toolkit.parse_version_json('{"cuda": {"version": "11.1.20201015"}}') == "11.1"
    assert toolkit.parse_version_txt("CUDA Version 10.1.243\n") == "10.1.243"
    for bad in ("", "{", "[1, 2]", '{"cuda": 12}', '{"cuda_cudart": {"version": "twelve"}}', '"12.2"'):
        with pytest.raises(ValueError):
            toolkit.parse_version_json(bad)
    for bad in ("", "CUDA 10.1", "Version 10.1.243"):
        with pytest.raises(ValueError):
            toolkit.parse_version_txt(bad)


def test_fake_root_with_two_installs_symlink_and_nvcc_on_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_install(
        root / "usr/local/cuda-12.2", nvcc_output=recorded("nvcc-12.2.txt"), version_json=VERSION_JSON_122
    )
    old = make_install(root / "usr/local/cuda-10.1")
    (old / "version.txt").write_text("CUDA Version 10.1.243\n", encoding="utf-8")
    (root / "usr/local/cuda").symlink_to("/usr/local/cuda-12.2")
    ctx = make_ctx(root=root, env={"PATH": "/usr/local/cuda-12.2/bin:/usr/bin"})

    facts = toolkit.collect(ctx)

    assert [i.path for i in facts.installs] == ["/usr/local/cuda-12.2", "/usr/local/cuda-10.1"]
    new, old_install = facts.installs
    assert new.found_via == ("PATH", "standard-location")
    assert (new.version, new.version_source, new.nvcc_version) == ("12.2.140", "version.json", "12.2.140")
    assert (old_install.version, old_install.version_source, old_install.nvcc) == (
        "10.1.243",
        "version.txt",
        None,
    )
    assert facts.nvcc_on_path == "/usr/local/cuda-12.2/bin/nvcc"
    assert facts.nvcc_version == "12.2.140"
    assert facts.active == "/usr/local/cuda-12.2"
    description = toolkit.describe(facts)
    assert description.summary.startswith("2 toolkits: CUDA 12.2.140 at /usr/local/cuda-12.2 (nvcc on PATH)")
    assert "10.1.243" in description.summary


def test_without_nvcc_the_symlink_then_cuda_home_decide(tmp_path: Path) -> None:
    root = tmp_path / "root"
    make_install(root / "usr/local/cuda-12.2", version_json=VERSION_JSON_122)
    make_install(root / "usr/local/cuda-11.8", version_json={"cuda_cudart": {"version": "11.8.89"}})
    (root / "usr/local/cuda").symlink_to("cuda-11.8")  # relative, as some installers write it

    facts = toolkit.collect(make_ctx(root=root, env={"PATH": "/usr/bin"}))
    assert facts.nvcc_on_path is None
    assert facts.active == "/usr/local/cuda-11.8"

    facts = toolkit.collect(
        make_ctx(root=root, env={"PATH": "/usr/bin", "CUDA_PATH": "/usr/local/cuda-12.2"})
    )
    assert (facts.cuda_home, facts.cuda_home_var, facts.active) == (
        "/usr/local/cuda-12.2",
        "CUDA_PATH",
        "/usr/local/cuda-12.2",
    )
    assert "CUDA_PATH" in next(i for i in facts.installs if i.path == "/usr/local/cuda-12.2").found_via


def test_cuda_home_that_is_no_toolkit_is_recorded_but_not_an_install(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    facts = toolkit.collect(make_ctx(root=root, env={"PATH": "", "CUDA_HOME": "/usr/local/cuda-11.8"}))
    assert facts.installs == ()
    assert facts.cuda_home == "/usr/local/cuda-11.8"
    assert facts.active is None
    assert toolkit.describe(facts).mark == "warn"


def test_nothing_at_all_is_unavailable(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    with pytest.raises(ProbeUnavailable):
        toolkit.collect(make_ctx(root=tmp_path / "root", env={"PATH": "/usr/bin"}))


def test_wrapper_script_on_path_leads_to_the_real_install(tmp_path: Path) -> None:
    install = make_install(tmp_path / "cuda-11.8", nvcc_output=recorded("nvcc-11.8.txt"))
    wrapper_dir = tmp_path / "wrapper-bin"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "nvcc"
    wrapper.write_text(f'#!/bin/sh\nexec {install}/bin/nvcc "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)

    facts = toolkit.collect(make_ctx(env={"PATH": f"{wrapper_dir}:{os.defpath}"}))

    found = by_path(facts, install)
    assert found.found_via[0] == "PATH"
    assert found.nvcc == f"{install}/bin/nvcc"
    assert (found.version, found.version_source) == ("11.8.89", "nvcc")
    assert facts.nvcc_on_path == str(wrapper)
    assert facts.active == str(install)


def test_conda_nvcc_counts_as_an_install(tmp_path: Path) -> None:
    prefix = tmp_path / "envs" / "build"
    fake_nvcc(prefix / "bin", stdout=recorded("nvcc-11.8.txt"))
    system = make_install(tmp_path / "cuda-12.6", nvcc_output=recorded("nvcc-12.2.txt"))
    env = {"PATH": f"{prefix}/bin:{os.defpath}", "CONDA_PREFIX": str(prefix), "CUDA_HOME": str(system)}

    facts = toolkit.collect(make_ctx(env=env))

    conda = by_path(facts, prefix)
    assert conda.found_via == ("PATH", "conda")
    assert conda.version == "11.8.89"
    assert by_path(facts, system).found_via == ("CUDA_HOME",)
    assert facts.active == str(prefix)
    assert facts.cuda_home == str(system)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"stdout": "Segmentation fault\n", "signal": "SEGV"}, "SIGSEGV"),
        ({"stdout": "\x1b[31mlicense expired\n"}, "printed no CUDA release"),
        ({"stderr": "error while loading shared libraries: libnvvm.so", "exit_code": 127}, "status 127"),
        ({"sleep": 30}, "did not finish"),
    ],
)
def test_broken_nvcc_and_broken_version_json_are_facts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, object], needle: str
) -> None:
    monkeypatch.setattr(toolkit, "NVCC_TIMEOUT", 0.5)
    install = make_install(tmp_path / "cuda", version_json="{ not json")
    fake_nvcc(install / "bin", **kwargs)

    facts = toolkit.collect(make_ctx(env={"PATH": f"{install / 'bin'}:{os.defpath}"}))

    assert facts.nvcc_version is None
    assert facts.nvcc_error is not None and needle in facts.nvcc_error
    found = by_path(facts, install)
    assert found.version is None
    assert found.version_error is not None and found.version_error.startswith("version.json")


def test_windows_program_files_cuda_path_and_versioned_variables(tmp_path: Path) -> None:
    base = tmp_path / "Program Files" / "NVIDIA GPU Computing Toolkit" / "CUDA"
    v118 = make_install(base / "v11.8", version_json={"cuda_cudart": {"version": "11.8.89"}})
    v122 = base / "v12.2"
    (v122 / "bin").mkdir(parents=True)
    (v122 / "bin" / "nvcc.out").write_text(recorded("nvcc-12.2-windows.txt"), encoding="utf-8")
    nvcc_exe = v122 / "bin" / "nvcc.exe"  # a ';'-separated PATH finds no `cat`, so name it in full
    nvcc_exe.write_text(f"#!/bin/sh\n/bin/cat '{v122 / 'bin' / 'nvcc.out'}'\n", encoding="utf-8")
    nvcc_exe.chmod(0o755)
    (v122 / "bin" / "cudart64_12.dll").write_bytes(b"MZ")
    env = {
        "PATH": f"{tmp_path / 'nothing'};{v122 / 'bin'}",
        "ProgramFiles": str(tmp_path / "Program Files"),
        "CUDA_PATH": str(v118),
        "CUDA_PATH_V11_8": str(v118),
        "CUDA_PATH_V12_2": str(v122),
    }

    facts = toolkit.collect(make_ctx(env=env, system="Windows"))

    assert {i.path: i.found_via for i in facts.installs} == {
        str(v122): ("PATH", "CUDA_PATH_V12_2", "standard-location"),
        str(v118): ("CUDA_PATH", "CUDA_PATH_V11_8", "standard-location"),
    }
    assert by_path(facts, v122).version == "12.2.140"
    assert facts.active == str(v122)
    assert (facts.cuda_home, facts.cuda_home_var) == (str(v118), "CUDA_PATH")


@pytest.mark.skipif(
    not Path("/usr/local/cuda-13.0/bin/nvcc").exists() or shutil.which("nvcc") is None,
    reason="needs the CUDA 13.0 toolkit of the development machine",
)
def test_real_cuda_13_on_this_machine() -> None:
    facts = toolkit.collect(make_ctx(env={"PATH": os.environ["PATH"]}))
    real = by_path(facts, "/usr/local/cuda-13.0")
    assert real.version is not None and real.version.startswith("13.0.")
    assert "PATH" in real.found_via and "standard-location" in real.found_via
    assert real.nvcc == "/usr/local/cuda-13.0/bin/nvcc"
    assert facts.active == "/usr/local/cuda-13.0"
    assert toolkit.describe(facts).summary.startswith("CUDA 13.0.")
    # hardware (QA case 4): the first ptxas on PATH, run for its own version
    assert facts.ptxas_on_path == shutil.which("ptxas")
    assert facts.ptxas_version is not None and facts.ptxas_version.startswith("13.0.")
    assert facts.ptxas_error is None


def test_first_ptxas_on_path_is_asked_for_its_version(tmp_path: Path) -> None:
    """A system ptxas ahead of the wheels (QA case 4): its own --version, recorded from CUDA 12.1 and 13.0."""
    apt = tmp_path / "usr" / "bin"
    ptxas = fake_program(apt, "ptxas", FakeCall(argv=("--version",), stdout=recorded("ptxas-12.1.txt")))
    later = fake_program(
        tmp_path / "later", "ptxas", FakeCall(argv=("--version",), stdout=recorded("ptxas-13.0.txt"))
    )
    make_install(tmp_path / "cuda-13.0", nvcc_output=recorded("nvcc-13.0.txt"))
    path = f"{apt}:{tmp_path / 'later'}:{tmp_path / 'cuda-13.0' / 'bin'}"
    facts = toolkit.collect(make_ctx(env={"PATH": path}))
    assert (facts.ptxas_on_path, facts.ptxas_version, facts.ptxas_error) == (
        str(apt / "ptxas"),
        "12.1.66",
        None,
    )
    assert len(ptxas.calls()) == 1 and later.calls() == []
    assert f"ptxas on PATH: {apt / 'ptxas'} (12.1.66)" in toolkit.describe(facts).details


def test_a_ptxas_that_says_nothing_useful_is_an_error_not_a_version(tmp_path: Path) -> None:
    bad = tmp_path / "bin"
    fake_program(bad, "ptxas", FakeCall(argv=("--version",), stdout="\x1b[2Jgarbage\n"))
    make_install(tmp_path / "cuda", nvcc_output=recorded("nvcc-12.2.txt"))
    facts = toolkit.collect(make_ctx(env={"PATH": f"{bad}:{tmp_path / 'cuda' / 'bin'}"}))
    assert facts.ptxas_version is None
    assert facts.ptxas_error is not None and "printed no CUDA release" in facts.ptxas_error
    crashed = tmp_path / "crash"
    fake_program(crashed, "ptxas", FakeCall(argv=("--version",), exit_code=139))
    facts = toolkit.collect(make_ctx(env={"PATH": f"{crashed}:{tmp_path / 'cuda' / 'bin'}"}))
    assert facts.ptxas_version is None and facts.ptxas_error


def test_nvcc_and_ptxas_are_asked_at_once(tmp_path: Path) -> None:
    """Each program answers only once the other has started: asked one after the other, the first
    would give up after 5 s and print nothing; asked at once, both answer."""
    bin_dir = tmp_path / "cuda-13.0" / "bin"
    make_install(tmp_path / "cuda-13.0")
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, other in (("nvcc", "ptxas"), ("ptxas", "nvcc")):
        output = tmp_path / f"{name}.txt"
        output.write_text(recorded(f"{name}-13.0.txt"), encoding="utf-8")
        script = bin_dir / name
        script.write_text(
            "#!/bin/sh\n"
            f"touch '{tmp_path / name}.started'\n"
            "i=0\n"
            f"while [ ! -e '{tmp_path / other}.started' ]; do\n"
            "  i=$((i+1)); [ $i -gt 500 ] && exit 3; sleep 0.01\n"
            "done\n"
            f"cat '{output}'\n",
            encoding="utf-8",
        )
        script.chmod(0o755)
    facts = toolkit.collect(make_ctx(env={"PATH": f"{bin_dir}:{os.defpath}"}))  # the scripts' sleep
    assert facts.nvcc_version == "13.0.88" and facts.nvcc_error is None
    assert facts.ptxas_version is not None and facts.ptxas_version.startswith("13.0.")
