"""`gpudoctor plan`: plans for a table of machines, checked against the matrix, and for every plan the
machine it leaves behind judged by the real engine: the plan and the doctor must agree."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.version import Version

from gpudoctor.engine import diagnose
from gpudoctor.facts import (
    CondaFacts,
    DriverFacts,
    EnvironmentFacts,
    Facts,
    GpuFacts,
    PlatformFacts,
    ProbeStatus,
    PythonFacts,
)
from gpudoctor.matrix import Matrix, kernel_support, load_matrix
from gpudoctor.model import Severity
from gpudoctor.plan import (
    FRAMEWORKS,
    Framework,
    Plan,
    PlanError,
    exit_code,
    machine_from_facts,
    make_plan,
    plan_all,
    planned_facts,
)
from gpudoctor.render.plan import render
from gpudoctor.serde import to_data
from tests.test_cli import gpudoctor


@pytest.fixture(scope="module")
def matrix() -> Matrix:
    return load_matrix()


def _facts(
    system: str,
    *,
    driver: str | None,
    gpu: str | None = None,
    cc: str | None = None,
    python: str = "3.12.3",
    machine: str = "x86_64",
    wsl: int = 0,
    windows_build: int | None = None,
    conda: bool = False,
    distro: tuple[str, str] = ("ubuntu", "22.04"),
) -> Facts:
    working = driver is not None
    return Facts(
        platform=PlatformFacts(
            system=system,
            machine=machine,
            wsl=wsl,
            windows_build=windows_build,
            distro_id=distro[0] if system == "Linux" else None,
            distro_version_id=distro[1] if system == "Linux" else None,
            wsl_lib_dir="/usr/lib/wsl/lib" if wsl else None,
            wsl_libs=("libcuda.so", "libcuda.so.1", "libnvidia-ml.so.1") if wsl else (),
        ),
        driver=DriverFacts(
            nvml_state="ok" if working else "library_not_found",
            source="nvml" if working else None,
            driver_version=driver,
            gpus=(GpuFacts(index=0, name=gpu or "", compute_capability=cc),) if working and gpu else (),
        ),
        python=PythonFacts(version=python, executable="/usr/bin/python3"),
        conda=CondaFacts(prefix="/opt/conda", is_target=True) if conda else None,
        probes=tuple(ProbeStatus(name=n) for n in ("platform", "driver", "python")),
    )


# The machines of issue #14, with what a reader of the matrix expects for each framework:
# (status, release, build). Each expectation is argued from the matrix rows in `why`.
@dataclass(frozen=True)
class Case:
    name: str
    facts: Facts
    expect: dict[Framework, tuple[str, str | None, str | None]]
    why: str


CASES = [
    Case(
        "old-laptop-windows",
        _facts(
            "Windows",
            driver="537.13",
            gpu="NVIDIA GeForce GTX 960M",
            cc="5.0",
            python="3.10.11",
            machine="AMD64",
            windows_build=19045,
        ),
        {
            "tensorflow": ("ready", "2.10", None),
            "torch": ("ready", "2.14", "cu126"),
            "jax": ("none", None, None),
        },
        "TF 2.10 is the last native-Windows GPU build (sm_50 for 5.0); torch 2.14 cu126 is the last build "
        "with sm_50; JAX's CUDA wheels need CC ≥ 5.2 and native Windows has none",
    ),
    Case(
        "wsl2-rtx4070",
        _facts(
            "Linux",
            driver="566.36",
            gpu="NVIDIA GeForce RTX 4070",
            cc="8.9",
            python="3.12.3",
            wsl=2,
            windows_build=22631,
        ),
        {
            "tensorflow": ("ready", "2.21", None),
            "torch": ("ready", "2.14", "cu126"),
            "jax": ("ready", "0.12.0", "cuda12"),
        },
        "the Windows driver 566 is below CUDA 13's floor (580), so CUDA 12 builds: TF 2.21 has sm_89, "
        "torch 2.15 has only CUDA 13 variants, jax[cuda12] 0.12 takes Python 3.12",
    ),
    Case(
        "cluster-old-driver-v100",
        _facts(
            "Linux",
            driver="470.82.01",
            gpu="Tesla V100-SXM2-32GB",
            cc="7.0",
            python="3.9.18",
            distro=("rhel", "8.8"),
        ),
        {
            "tensorflow": ("ready", "2.14", None),
            "torch": ("ready", "2.7", "cu118"),
            "jax": ("ready", "0.4.25", "cuda11_pip"),
        },
        "driver 470 runs CUDA 11.x by minor-version compatibility only: TF 2.14 (CUDA 11.8), torch 2.7's "
        "cu118 (the last release with a CUDA 11 build), JAX's last CUDA 11 wheels",
    ),
    Case(
        "blackwell-new-driver",
        _facts("Linux", driver="580.95.05", gpu="NVIDIA GeForce RTX 5090", cc="12.0", python="3.12.3"),
        {
            "tensorflow": ("ready", "2.21", None),
            "torch": ("ready", "2.15", "cu132"),
            "jax": ("ready", "0.12.0", "cuda13"),
        },
        "TF has no sm_120 and runs it from compute_90 PTX; torch 2.15 cu132 and jax[cuda13] have Blackwell "
        "kernels and run on R580 by minor-version compatibility",
    ),
    Case(
        "jetson-orin",
        _facts("Linux", driver="540.4.0", gpu="Orin", cc="8.7", python="3.10.12", machine="aarch64"),
        {"tensorflow": ("none", None, None), "torch": ("none", None, None), "jax": ("none", None, None)},
        "the PyPI CUDA wheels in the matrix are not Jetson builds",
    ),
    Case(
        "macos-apple-silicon",
        _facts("Darwin", driver=None, python="3.12.3", machine="arm64"),
        {
            "tensorflow": ("ready", "2.18", None),
            "torch": ("ready", "2.15", None),
            "jax": ("none", None, None),
        },
        "Metal: the newest tensorflow-metal release in the matrix is for TF 2.18; torch's mps; JAX has no GPU "
        "backend on macOS beyond experimental jax-metal",
    ),
]


def _plans(matrix: Matrix) -> list[tuple[str, Plan]]:
    found = []
    for case in CASES:
        machine = machine_from_facts(case.facts, matrix)
        found += [(f"{case.name}-{p.framework}", p) for p in plan_all(matrix, machine)]
    return found


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_plans_for_the_machine_table(case: Case, matrix: Matrix) -> None:
    machine = machine_from_facts(case.facts, matrix)
    for framework in FRAMEWORKS:
        plan = make_plan(matrix, machine, framework)
        status, release, build = case.expect[framework]
        got = (
            plan.status,
            plan.install.release if plan.status != "none" and plan.install else None,
            plan.install.variant if plan.status != "none" and plan.install else None,
        )
        assert got == (status, release, build), f"{case.name} {framework}: {got} ({case.why})"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_plans_agree_with_the_matrix_rows(case: Case, matrix: Matrix) -> None:
    """Independently of the planner: the chosen build has kernels for the GPU and this driver runs it."""
    machine = machine_from_facts(case.facts, matrix)
    cc = machine.ccs[0] if machine.ccs else None
    for plan in plan_all(matrix, machine):
        if plan.status != "ready" or plan.install is None or plan.install.device != "cuda":
            continue
        install = plan.install
        if plan.framework == "torch":
            release = matrix.torch_release(install.release)
            assert release is not None
            variant = release.variant(install.variant or "")
            assert variant is not None and variant.cuda is not None
            assert cc and kernel_support(cc, variant.arch_list) == "native"
            assert matrix.driver_runs_cuda(machine.driver or "", variant.cuda, machine.system)
            newer = [
                r
                for r in matrix.torch
                if Version(r.version) > Version(install.release) and r.python.contains(machine.python or "")
            ]
            for r in newer:  # nothing newer would have done
                assert not any(
                    v.cuda
                    and kernel_support(cc, v.arch_list)
                    and matrix.driver_runs_cuda(machine.driver or "", v.cuda, machine.system)
                    for v in r.variants
                ), f"torch {r.version} would also fit"
        if plan.framework == "tensorflow":
            row = matrix.tensorflow_release(install.release)
            assert row is not None
            build = row.windows if machine.flavor == "windows" else row.linux
            assert build is not None and build.cuda == install.cuda
            assert cc and kernel_support(cc, build.compute_capabilities) is not None
        if plan.framework == "jax":
            run = matrix.jax_release(install.release)
            assert run is not None and int(install.cuda or 0) in run.cuda


@pytest.mark.parametrize("name_plan", _plans(load_matrix()), ids=lambda np: np[0])
def test_the_doctor_finds_no_error_on_every_planned_machine(
    name_plan: tuple[str, Plan], matrix: Matrix
) -> None:
    _, plan = name_plan
    facts = planned_facts(plan, matrix)
    if plan.status == "none":
        return
    assert facts is not None
    report = diagnose(facts, matrix)
    errors = [f"{f.code}: {f.message}" for f in report.findings if f.severity is Severity.ERROR]
    assert errors == []
    assert not [o for o in report.outcomes if o.state == "crash"]
    if plan.status == "ready" and plan.install and plan.install.device == "cuda":
        assert report.has_usable_gpu


def _all_commands(plan: Plan) -> list[str]:
    return [c for s in (*plan.changes, *plan.steps, *plan.ways_out) for c in s.commands]


@pytest.mark.parametrize("name_plan", _plans(load_matrix()), ids=lambda np: np[0])
def test_commands_paste_whole_and_pin_versions(name_plan: tuple[str, Plan]) -> None:
    _, plan = name_plan
    for command in _all_commands(plan):
        assert "\n" not in command
        assert not re.search(r"(?<!\+):\$LD_LIBRARY_PATH|LD_LIBRARY_PATH=[^ ]*:(\s|$|\")", command), command
        assert not command.rstrip().endswith((":", "\\")), command
        if "pip install" in command:
            for token in (t.strip("'\"") for t in command.split()):
                if re.match(r"^(torch|tensorflow(-gpu|-macos)?|jax)(\[[\w,-]+\])?($|[=<>!~])", token):
                    assert re.search(r"(==|>=)\d", token), f"unpinned {token!r} in {command!r}"
    if plan.status != "none":
        assert plan.steps[-1].kind == "check" and "gpudoctor check" in plan.steps[-1].commands


def test_tensorflow_2_10_on_native_windows_with_conda(matrix: Matrix) -> None:
    facts = _facts(
        "Windows",
        driver="537.13",
        gpu="NVIDIA GeForce RTX 2060",
        cc="7.5",
        python="3.12.1",
        machine="AMD64",
        windows_build=19045,
        conda=True,
    )
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "tensorflow", "2.10")
    assert plan.status == "ready" and plan.install is not None
    commands = _all_commands(plan)
    assert "conda create -y -n tf-2.10 -c conda-forge python=3.10 cudatoolkit=11.2 cudnn=8.1.0" in commands
    assert any("tensorflow==2.10.*" in c and "numpy<2" in c for c in commands)
    texts = {r.need: r.text for r in plan.requirements}
    assert texts["python"] == "Python 3.7–3.10"
    assert texts["driver"].startswith("NVIDIA Windows driver ≥ 452.39")
    assert any("WSL 2" in s.summary for s in plan.ways_out)
    report = diagnose(planned_facts(plan, matrix) or Facts(), matrix)
    assert report.outcome("GD203") is not None and report.outcome("GD203").state == "pass"  # type: ignore[union-attr]
    assert report.outcome("GD511").state == "pass"  # type: ignore[union-attr]


def test_a_windows_venv_is_made_with_the_64_bit_python(matrix: Matrix) -> None:
    """GPU wheels exist for no 32-bit Python, and `py -3.12` may pick a 32-bit install (pytorch#42832)."""
    facts = _facts(
        "Windows",
        driver="566.36",
        gpu="NVIDIA GeForce RTX 3060",
        cc="8.6",
        machine="AMD64",
        windows_build=19045,
    )
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch")
    commands = _all_commands(plan)
    assert plan.install is not None
    assert any(
        c.startswith("py -3.") and c.endswith("-64 -m venv $HOME\\.venvs\\" + plan.install.env_name)
        for c in commands
    ), commands


def test_newer_tensorflow_on_native_windows_goes_through_wsl(matrix: Matrix) -> None:
    facts = _facts(
        "Windows",
        driver="566.36",
        gpu="NVIDIA GeForce RTX 3060",
        cc="8.6",
        machine="AMD64",
        windows_build=19045,
    )
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "tensorflow", "2.15")
    assert plan.status == "after-changes"
    assert plan.changes[0].commands == ("wsl --install -d Ubuntu",)
    assert plan.machine.flavor == "wsl"
    assert any("tensorflow[and-cuda]==2.15.*" in c for c in _all_commands(plan))
    assert exit_code([plan]) == 1


def test_wsl_on_an_old_windows_build_must_update_windows_first(matrix: Matrix) -> None:
    facts = _facts(
        "Linux", driver="566.36", gpu="NVIDIA GeForce RTX 3060", cc="8.6", wsl=2, windows_build=19041
    )
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch")
    assert plan.status == "after-changes"
    assert any("ms-settings:windowsupdate" in c for s in plan.changes for c in s.commands)


def test_a_requested_release_the_driver_cannot_run_says_what_to_change(matrix: Matrix) -> None:
    facts = _facts("Linux", driver="535.104.05", gpu="NVIDIA A100-SXM4-80GB", cc="8.0")
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch", "2.15")
    assert plan.status == "after-changes" and plan.install is not None and plan.install.release == "2.15"
    driver = next(r for r in plan.requirements if r.need == "driver")
    assert driver.ok is False and "580.65.06" in driver.text
    assert any("580" in s.summary for s in plan.changes)
    assert any("2.14" in s.summary for s in plan.ways_out)  # the release this driver runs today


def test_a_gpu_no_release_supports_names_the_floor(matrix: Matrix) -> None:
    facts = _facts("Linux", driver="470.82.01", gpu="NVIDIA GeForce GTX 680", cc="3.0")
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "jax")
    assert plan.status == "none" and exit_code([plan]) == 1
    assert any("5.2" in p for p in plan.problems)


def test_a_setting_that_hides_the_gpu_is_a_change_to_make_first(matrix: Matrix) -> None:
    facts = dataclasses.replace(
        _facts("Linux", driver="550.54.14", gpu="NVIDIA GeForce RTX 3090", cc="8.6"),
        environment=EnvironmentFacts(variables={"CUDA_VISIBLE_DEVICES": ""}),
    )
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch")
    assert plan.status == "after-changes" and exit_code([plan]) == 1
    assert plan.install is not None and plan.install.release == "2.14"
    assert any("GD301" in s.summary and "unset CUDA_VISIBLE_DEVICES" in s.commands for s in plan.changes)


def test_options_stand_in_for_the_machine(matrix: Matrix) -> None:
    bare = Facts(platform=PlatformFacts(system="Linux", machine="x86_64"))
    machine = machine_from_facts(bare, matrix, driver="535.54", gpu="RTX 3060", python_version="3.11")
    assert machine.ccs == ["8.6"] and machine.python == "3.11"
    plan = make_plan(matrix, machine, "tensorflow")
    assert plan.status == "ready" and plan.install is not None and plan.install.release == "2.21"
    assert "535.54" in machine.origins["driver"]
    with pytest.raises(PlanError, match="--gpu"):
        machine_from_facts(bare, matrix, gpu="Voodoo 3")
    with pytest.raises(PlanError, match="not in gpudoctor's matrix"):
        make_plan(matrix, machine, "torch", "0.4")


def test_no_gpu_here_still_says_what_to_install(matrix: Matrix) -> None:
    facts = _facts("Linux", driver=None, python="3.11.7", distro=("debian", "12"))
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch")
    assert plan.status == "none"
    assert re.search(r"NVIDIA (GPU|driver).*\(GD10[16]\)$", plan.problems[0])  # the doctor's own word
    assert any("torch==" in c for s in plan.steps for c in s.commands)
    assert "once an NVIDIA GPU and driver are present" in render([plan], "text")


def test_renderers(matrix: Matrix) -> None:
    machine = machine_from_facts(CASES[1].facts, matrix)
    plans = plan_all(matrix, machine)
    data = json.loads(render(plans, "json", table=True))
    assert [p["framework"] for p in data["plans"]] == list(FRAMEWORKS)
    one = json.loads(render(plans[:1], "json"))
    assert one["status"] == "ready" and one["steps"][-1]["kind"] == "check"
    markdown = render(plans, "markdown", table=True)
    assert "| framework | release |" in markdown and "```bash" in markdown
    text = render(plans, "text", table=True)
    assert "TensorFlow  2.21" in text


def test_untrusted_names_are_shown_not_obeyed(matrix: Matrix) -> None:
    facts = _facts("Linux", driver="550.54.14", gpu="RTX 3090\x1b]0;pwned\x07", cc="8.6")
    text = render(plan_all(matrix, machine_from_facts(facts, matrix)), "text", table=True)
    assert "\x1b" not in text and "\\x1b" in text


# ----------------------------------------------------------------------------------------------
# The real CLI


def _write(path: Path, facts: Facts) -> Path:
    path.write_text(json.dumps(to_data(facts)), encoding="utf-8")
    return path


@pytest.mark.parametrize(
    ("case", "framework"),
    [(CASES[0], "tensorflow"), (CASES[1], "jax"), (CASES[2], "torch"), (CASES[3], "tensorflow")],
    ids=lambda v: v.name if isinstance(v, Case) else v,
)
def test_cli_plan_then_check_on_the_planned_machine(case: Case, framework: str, tmp_path: Path) -> None:
    saved = _write(tmp_path / "machine.json", case.facts)
    planned = tmp_path / "planned.json"
    run = gpudoctor(
        "plan", framework, "--facts", str(saved), "--planned-facts", str(planned), "--format", "json"
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert json.loads(run.stdout)["status"] == "ready"
    check = gpudoctor("check", "--facts", str(planned), "--json")
    assert check.returncode == 0, check.stdout
    assert not [f for f in json.loads(check.stdout)["findings"] if f["severity"] == "error"]


def test_cli_on_this_machine_without_a_gpu() -> None:
    run = gpudoctor("plan", "torch")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "has no NVIDIA GPU" in run.stdout and "GD106" in run.stdout
    assert "pip install" in run.stdout
    assert "Traceback" not in run.stderr
    data = json.loads(gpudoctor("plan", "--all", "--format", "json").stdout)
    assert {p["status"] for p in data["plans"]} == {"none"}


@pytest.mark.parametrize(
    "args",
    [
        ("plan",),
        ("plan", "caffe"),
        ("plan", "torch", "0.1"),
        ("plan", "--all", "--gpu", "Voodoo 3"),
        ("plan", "--all", "2.10"),
        ("plan", "torch", "--compute-capability", "eight"),
        ("plan", "torch", "--facts", "/nonexistent.json"),
    ],
)
def test_cli_bad_usage_exits_2(args: tuple[str, ...]) -> None:
    run = gpudoctor(*args)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(("version", "cudnn"), [("2.11", "cudnn=8.1"), ("2.13", "cudnn>=8.6,<9")])
def test_tensorflow_before_and_cuda_on_linux_gets_cuda_from_conda_forge(
    version: str, cudnn: str, matrix: Matrix
) -> None:
    facts = _facts("Linux", driver="535.104.05", gpu="NVIDIA GeForce RTX 2080", cc="7.5", python="3.10.12")
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "tensorflow", version)
    assert plan.status == "ready" and plan.install is not None
    commands = _all_commands(plan)
    row = matrix.tensorflow_release(version)
    assert row is not None and row.linux is not None
    create = next(c for c in commands if c.startswith("conda create"))
    assert f"cudatoolkit={row.linux.cuda}" in create and cudnn in create
    script = next(c for c in commands if "activate.d/gpudoctor-cuda.sh" in c)
    assert "${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" in script
    report = diagnose(planned_facts(plan, matrix) or Facts(), matrix)
    for code in ("GD203", "GD204", "GD111", "GD414"):
        outcome = report.outcome(code)
        assert outcome is not None and outcome.state == "pass", (code, outcome)


def test_conda_manager_creates_the_environment_with_the_python_the_release_needs(matrix: Matrix) -> None:
    facts = _facts(
        "Linux", driver="550.54.14", gpu="NVIDIA GeForce RTX 3090", cc="8.6", python="3.8.10", conda=True
    )
    machine = machine_from_facts(facts, matrix)
    assert machine.manager == "conda"
    plan = make_plan(matrix, machine, "jax")
    assert plan.status == "ready" and plan.install is not None
    assert Version(plan.install.python) >= Version("3.12")  # jax 0.12 needs 3.12 or newer; conda makes it
    assert any(
        c.startswith(f"conda create -y -n jax-{plan.install.release} -c conda-forge python=")
        for c in _all_commands(plan)
    )
    planned = planned_facts(plan, matrix)
    assert planned is not None and planned.conda is not None and planned.conda.is_target


@pytest.mark.parametrize(
    ("framework", "gpu", "cc"), [("tensorflow", "GTX 1080", "6.1"), ("jax", "GTX 970", "5.2")]
)
def test_a_cudnn_range_is_held_below_the_release_that_dropped_this_gpu(
    framework: Framework, gpu: str, cc: str, matrix: Matrix
) -> None:
    facts = _facts("Linux", driver="570.124.06", gpu=gpu, cc=cc)
    plan = make_plan(matrix, machine_from_facts(facts, matrix), framework)
    assert plan.status == "ready"
    dropped = next(r for r in matrix.cudnn_releases if r.min_compute_capability == "7.5")
    cap = f"nvidia-cudnn-cu12<{min(s.version for s in dropped.versions if s.operator == '>=')}"
    assert any(cap in c for c in _all_commands(plan)), _all_commands(plan)


def test_a_turing_gpu_needs_no_cudnn_ceiling(matrix: Matrix) -> None:
    facts = _facts("Linux", driver="570.124.06", gpu="NVIDIA GeForce RTX 2080", cc="7.5")
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "tensorflow")
    assert not any("nvidia-cudnn" in c for c in _all_commands(plan))


def test_in_a_container_the_driver_is_the_hosts(matrix: Matrix) -> None:
    base = _facts("Linux", driver="535.104.05", gpu="NVIDIA A100-SXM4-80GB", cc="8.0")
    assert base.platform is not None
    facts = dataclasses.replace(base, platform=dataclasses.replace(base.platform, container="docker"))
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "torch", "2.15")
    assert plan.status == "after-changes"
    (driver_change,) = plan.changes
    assert driver_change.summary.startswith("On the host") and driver_change.commands == ()


def test_a_driver_upgrade_names_the_last_branch_this_gpu_generation_gets(matrix: Matrix) -> None:
    branch = matrix.last_driver_branch_for_cc("6.1")
    assert branch is not None
    facts = _facts("Linux", driver="470.82.01", gpu="NVIDIA GeForce GTX 1080", cc="6.1", python="3.12.3")
    plan = make_plan(matrix, machine_from_facts(facts, matrix), "jax", "0.12.0")
    assert plan.status == "after-changes"
    assert any(f"R{branch.last_branch}" in s.summary for s in plan.changes), plan.changes
