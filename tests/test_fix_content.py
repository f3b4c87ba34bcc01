"""What fix commands install and where they act, scanned over every fix of every machine in tests/machines/:
pinned framework installs, no second TensorFlow build left behind, breaking moves said aloud, conda
commands aimed at the diagnosed environment, host and container commands in separately labelled fixes."""

from __future__ import annotations

import json
import re
import shlex
from functools import cache
from pathlib import Path

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Finding, Fix, Report
from gpudoctor.pipeline import Origin, Policy, check
from gpudoctor.render import RenderOptions, renderer
from gpudoctor.render.screen import PLAIN
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.recipes import jax_cuda_spec, tf_crossing, tf_install_commands, torch_on_index
from gpudoctor.rules.views import TF_PACKAGES
from gpudoctor.serde import from_data
from gpudoctor.versions import series_key
from tests.test_machines import load_machine, machine_files, run_machine

FRAMEWORKS = {
    *TF_PACKAGES,
    "tensorflow-metal",
    "torch",
    "jax",
    "jaxlib",
    "jax-cuda12-plugin",
    "jax-cuda13-plugin",
    "jax-cuda12-pjrt",
    "jax-cuda13-pjrt",
    "pytorch",
}
# pip options whose next argument is a value, not a requirement
VALUE_OPTIONS = {"-f", "--find-links", "-i", "--index-url", "--extra-index-url", "-r", "-c", "--report"}
# rules whose fixes still float: GD808 is env's (rules/pythonstack.py: tensorflow-metal unpinned, told in
# /work/notes/fixes.md); GD521 installs NVIDIA's one Jetson wheel from a folder with --no-index; GD106
# torch-directml (the matrix has no torch-directml releases to pin to)
FLOATING_ALLOWED = {"GD521", "GD106"}


@cache
def reports() -> tuple[tuple[str, Report], ...]:
    return tuple((path.stem, run_machine(path)[0]) for path in machine_files())


def every_fix() -> list[tuple[str, Report, Finding, Fix]]:
    return [(name, report, f, fix) for name, report in reports() for f in report.findings for fix in f.fixes]


def pip_installs(command: str) -> list[Requirement]:
    """The requirements a `... -m pip install ...` (or `pip install`) command line names."""
    try:
        words = shlex.split(command)
    except ValueError:
        return []
    found: list[Requirement] = []
    for i in range(len(words) - 1):
        if words[i : i + 2] == ["pip", "install"]:  # `pip install` and `python -m pip install`
            start = i + 2
            skip = False
            for word in words[start:]:
                if word in ("&&", ";", "|"):
                    break
                if skip:
                    skip = False
                    continue
                if word.startswith("-"):
                    skip = word in VALUE_OPTIONS
                    continue
                try:
                    found.append(Requirement(word))
                except InvalidRequirement:
                    continue  # a path, ".", a URL
            break
    return found


def pip_uninstalls(command: str) -> set[str]:
    words = command.split()
    if "uninstall" not in words or "pip" not in words:
        return set()
    return {canonicalize_name(w) for w in words[words.index("uninstall") + 1 :] if not w.startswith("-")}


def pinned(requirement: Requirement) -> bool:
    """An exact version, a series (`==2.18.*`), a compatible release or a ceiling: never only a floor."""
    return any(s.operator in ("==", "===", "~=", "<", "<=") for s in requirement.specifier)


def test_the_scan_reads_pip_command_lines() -> None:
    (req,) = pip_installs("python -m pip install -f https://x/y.html 'jax[cuda12]==0.4.31'")
    assert req.name == "jax" and pinned(req)
    assert [r.name for r in pip_installs("python3 -m pip install -U 'jax[cuda12]'")] == ["jax"]
    assert not pinned(Requirement("tensorflow>=2.18")) and not pinned(Requirement("tensorflow"))
    assert pinned(Requirement("tensorflow==2.18.*")) and pinned(Requirement("tensorflow<2.11"))
    assert pip_installs("python -m pip install --no-build-isolation -v .") == []
    assert pip_uninstalls("python -m pip uninstall -y tensorflow-cpu tensorflow") == {
        "tensorflow-cpu",
        "tensorflow",
    }


def test_every_framework_a_fix_installs_is_pinned() -> None:
    floating = []
    count = 0
    for name, _, finding, fix in every_fix():
        for command in fix.commands:
            for req in pip_installs(command):
                if canonicalize_name(req.name) not in FRAMEWORKS:
                    continue
                count += 1
                if not pinned(req) and finding.code not in FLOATING_ALLOWED:
                    floating.append((name, finding.code, command))
    assert count > 40, "too few framework installs to mean anything"
    assert not floating, "fixes that install whatever release is newest:\n" + "\n".join(map(str, floating))


def test_a_forced_reinstall_of_a_wheel_with_loose_requirements_keeps_its_dependencies() -> None:
    """`--force-reinstall` ignores what is installed and moves every dependency to its newest allowed
    release (NumPy 1 -> 2 under TensorFlow, cuBLAS past torch's pin under cuDNN) unless `--no-deps`."""
    moving = []
    for name, _, finding, fix in every_fix():
        for command in fix.commands:
            words = command.split()
            if "--force-reinstall" not in words or "--no-deps" in words:
                continue
            loose = [
                r.name
                for r in pip_installs(command)
                if canonicalize_name(r.name) in TF_PACKAGES or r.name.startswith("nvidia-")
            ]
            if loose:
                moving.append((name, finding.code, command))
    assert not moving, "\n".join(map(str, moving))


def test_a_torch_reinstall_keeps_the_build_it_replaces() -> None:
    """Reinstalling `2.4.0+cu121` as plain `torch==2.4.0` from PyPI gives Windows the CPU-only wheel and
    Linux another CUDA: a fix that installs the installed release names a variant (its own, or the one it
    switches to on purpose)."""
    swapped = []
    checked = 0
    for name, report, finding, fix in every_fix():
        torch = report.facts.torch
        installed = (torch.version or torch.dist_version) if torch is not None else None
        if not installed or "+" not in installed:
            continue
        public, variant = installed.split("+", 1)
        for command in fix.commands:
            for req in pip_installs(command):
                if req.name != "torch" or not any(s.version.split("+")[0] == public for s in req.specifier):
                    continue
                checked += 1
                if variant not in command and "download.pytorch.org" not in command:  # PyPI's default build
                    swapped.append((name, finding.code, command))
    assert checked >= 3
    assert not swapped, "\n".join(map(str, swapped))


def test_a_torch_install_names_a_build_an_index_has() -> None:
    """PyPI and download.pytorch.org have no "2.10.0a0" and no "+a36e1d39eb.nv26.02" build: NVIDIA's
    container builds and source builds are never what a fix asks pip for."""
    unfetchable = []
    checked = 0
    for name, _, finding, fix in every_fix():
        for command in fix.commands:
            for req in pip_installs(command):
                if req.name != "torch":
                    continue
                for spec in req.specifier:
                    if spec.operator == "==" and "*" not in spec.version:
                        checked += 1
                        if not torch_on_index(spec.version):
                            unfetchable.append((name, finding.code, command))
    assert checked >= 10
    assert not unfetchable, "\n".join(map(str, unfetchable))


@pytest.mark.parametrize(
    ("version", "on_index"),
    [
        ("2.4.0+cu121", True),
        ("2.2.1+cpu", True),
        ("2.5.1+rocm6.2", True),
        ("2.5.1", True),
        ("2.10.0a0+a36e1d39eb.nv26.02", False),
        ("2.1.0a0+32f93b1", False),
        ("2.6.0.dev20241112+cu124", False),
        ("garbage", False),
    ],
)
def test_torch_on_index_tells_index_builds_from_image_and_source_builds(version: str, on_index: bool) -> None:
    assert torch_on_index(version) is on_index


def test_every_conda_command_names_the_diagnosed_environment() -> None:
    unaimed = []
    seen = 0
    for name, report, finding, fix in every_fix():
        conda = report.facts.conda
        for command in fix.commands:
            words = command.split()
            if words[:2] not in (["conda", "install"], ["conda", "remove"]):
                continue
            seen += 1
            named = "-n" in words or "-p" in words
            if "--force" in words and not named:
                unaimed.append((name, finding.code, command, "--force in whichever env is active"))
            elif conda is not None and conda.is_target and not named:
                unaimed.append((name, finding.code, command, "the diagnosed env is not named"))
    assert seen > 10
    assert not unaimed, "\n".join(map(str, unaimed))


def _installed_tf_builds(report: Report) -> set[str]:
    python = report.facts.python
    names: set[str] = {canonicalize_name(d.name) for d in python.distributions} if python else set()
    return names & set(TF_PACKAGES)


def _into_a_new_environment(report: Report, fix: Fix) -> bool:
    """A fix that installs into a fresh venv, conda env or WSL distribution (a bash fix on Windows)."""
    platform = report.facts.platform
    if platform is not None and platform.system == "Windows" and fix.shell == "bash":
        return True
    return any(re.search(r"-m venv|conda create|^wsl |virtualenv|venvs/", c) for c in fix.commands)


def test_a_tensorflow_install_leaves_no_other_build_behind() -> None:
    left = []
    checked = 0
    for name, report, finding, fix in every_fix():
        if _into_a_new_environment(report, fix) or any(c.startswith("conda install") for c in fix.commands):
            continue
        installed = _installed_tf_builds(report)
        removed = set().union(*(pip_uninstalls(c) for c in fix.commands))
        for command in fix.commands:
            for req in pip_installs(command):
                package = canonicalize_name(req.name)
                if package not in TF_PACKAGES:
                    continue
                others = installed - {package}
                if others:
                    checked += 1
                if others - removed:
                    left.append((name, finding.code, command, sorted(others - removed)))
    assert checked >= 3, "no machine installs a TensorFlow build next to another one"
    assert not left, "fixes that leave a second TensorFlow build writing the same files:\n" + "\n".join(
        map(str, left)
    )


def _series_installed(report: Report, requirement: Requirement) -> tuple[str, str] | None:
    tf = report.facts.tensorflow
    version = tf.version if tf is not None and tf.installed and tf.version else None
    if version is None:
        python = report.facts.python
        dist = next((d for d in python.distributions if d.name in TF_PACKAGES), None) if python else None
        version = dist.version if dist else None
    target = next((s.version.removesuffix(".*") for s in requirement.specifier if s.operator == "=="), None)
    return (version, target) if version and target else None


def test_a_move_across_keras_3_says_so() -> None:
    silent = []
    crossings = 0
    keras3 = series_key("2.16")
    for name, report, finding, fix in every_fix():
        if _into_a_new_environment(report, fix):
            continue
        for command in fix.commands:
            for req in pip_installs(command):
                if canonicalize_name(req.name) not in TF_PACKAGES:
                    continue
                pair = _series_installed(report, req)
                if pair is None:
                    continue
                have, want = series_key(pair[0]), series_key(pair[1])
                if have < keras3 <= want:
                    crossings += 1
                    if not all(w in fix.summary for w in ("Keras 3", "tf-keras", "TF_USE_LEGACY_KERAS=1")):
                        silent.append((name, finding.code, command, fix.summary))
                elif want < keras3 <= have:
                    crossings += 1
                    if "Keras" not in fix.summary:
                        silent.append((name, finding.code, command, fix.summary))
    assert crossings >= 2, "no machine's fix crosses TensorFlow 2.16"
    assert not silent, "fixes that cross Keras 3 without saying so:\n" + "\n".join(map(str, silent))


HOST_COMMAND = re.compile(r"^(sudo )?(docker|podman|kubectl|nvidia-ctk|systemctl|nvidia-modprobe)\b")


def test_in_a_container_host_and_container_commands_are_labelled_apart() -> None:
    mixed = []
    containers = 0
    for name, report in reports():
        platform = report.facts.platform
        if platform is None or platform.container is None:
            continue
        containers += 1
        for finding in report.findings:
            wheres = [fix.where for fix in finding.fixes if fix.commands]
            if "host" in wheres and "" in wheres:
                mixed.append((name, finding.code, "a host fix beside an unlabelled one"))
            for fix in finding.fixes:
                host = [c for c in fix.commands if HOST_COMMAND.match(c)]
                if host and fix.where != "host":
                    mixed.append((name, finding.code, f"host commands in a fix not marked host: {host}"))
                if host and len(host) != len(fix.commands) and fix.where == "host":
                    inside = [
                        c for c in fix.commands if c not in host and c.startswith(("apt", "dnf", "ldconfig"))
                    ]
                    if inside:
                        mixed.append((name, finding.code, f"container commands in a host fix: {inside}"))
    assert containers >= 5
    assert not mixed, "\n".join(map(str, mixed))


def test_outside_a_container_nothing_is_labelled_container() -> None:
    for name, report in reports():
        platform = report.facts.platform
        if platform is not None and platform.container is not None:
            continue
        wrong = [
            (f.code, fix.summary) for f in report.findings for fix in f.fixes if fix.where == "container"
        ]
        assert not wrong, (name, wrong)


# ----------------------------------------------------------------------------------------------
# The renderers label where a fix runs


CONTAINER_MACHINE = Path(__file__).parent / "machines" / "gd112-old-compat-newer-host-driver.yaml"


def _container_run() -> object:
    facts, _ = load_machine(CONTAINER_MACHINE)
    return check(facts=facts, matrix=load_matrix(), policy=Policy(), origin=Origin())


def test_text_markdown_and_json_label_host_and_container_fixes() -> None:
    run = _container_run()
    text = renderer("text")(run, RenderOptions(screen=PLAIN))  # type: ignore[arg-type]
    assert "fix (on the host): " in text and "fix (inside the container): " in text
    host_line = next(line for line in text.splitlines() if "fix (on the host):" in line)
    assert "Dockerfile" in host_line or "driver" in host_line
    markdown = renderer("markdown")(run, RenderOptions())  # type: ignore[arg-type]
    assert "**Fix, on the host:**" in markdown and "**Fix, inside the container:**" in markdown
    data = json.loads(renderer("json")(run, RenderOptions()))  # type: ignore[arg-type]
    wheres = {fix["where"] for finding in data["findings"] for fix in finding["fixes"]}
    assert {"host", "container"} <= wheres
    by_where = {
        fix["where"]: fix["commands"]
        for finding in data["findings"]
        for fix in finding["fixes"]
        if finding["code"] == "GD112" and fix["where"]
    }
    assert any(c.startswith("apt-get remove") for c in by_where["container"])


# ----------------------------------------------------------------------------------------------
# The recipes on their own


def _ctx(**slots: object) -> RuleContext:
    return RuleContext(from_data(Facts, slots), load_matrix())


def _python(*dists: tuple[str, str]) -> dict[str, object]:
    return {"version": "3.11.9", "distributions": [{"name": n, "version": v} for n, v in dists]}


LINUX = {"system": "Linux", "machine": "x86_64"}


def test_a_gpu_tensorflow_install_removes_the_cpu_build_and_reinstalls_the_kept_one() -> None:
    ctx = _ctx(platform=LINUX, python=_python(("tensorflow", "2.15.0"), ("tensorflow-cpu", "2.15.0")))
    assert tf_install_commands(ctx, "tensorflow[and-cuda]==2.15.0") == (
        "python -m pip uninstall -y tensorflow-cpu tensorflow",
        "python -m pip install 'tensorflow[and-cuda]==2.15.0'",
    )
    alone = _ctx(platform=LINUX, python=_python(("tensorflow", "2.15.0")))
    assert tf_install_commands(alone, "tensorflow[and-cuda]==2.15.0") == (
        "python -m pip install 'tensorflow[and-cuda]==2.15.0'",
    )


@pytest.mark.parametrize(
    ("installed", "target", "says"),
    [
        ("2.12.0", "2.16", ("Keras 3", "tf-keras==2.16.*", "TF_USE_LEGACY_KERAS=1")),
        ("2.17.1", "2.15.1", ("Keras 2 again",)),
        ("1.15.5", "2.10", ("TensorFlow 1 to 2",)),
        ("2.16.2", "2.18", ()),
        ("2.12.0", "2.15", ()),
    ],
)
def test_tf_crossing_names_the_breaking_change(installed: str, target: str, says: tuple[str, ...]) -> None:
    note = tf_crossing(_ctx(platform=LINUX, python=_python(("tensorflow", installed))), target)
    assert all(s in note for s in says)
    assert bool(note) == bool(says)


@pytest.mark.parametrize(
    ("extra", "installed", "minimum", "spec"),
    [
        ("cuda12", "0.4.31", None, "jax[cuda12]==0.4.31"),  # the installed release has it: stay there
        ("cuda12", "0.4.20", None, "jax[cuda12]==0.4.22"),  # the first release after it that has it
        ("cuda13", "0.7.0", "0.7.2", "jax[cuda13]==0.7.2"),  # the first whose plugin works
        ("cuda11_pip", "0.4.25", None, "jax[cuda11_pip]==0.4.25"),
    ],
)
def test_jax_cuda_spec_is_the_least_move(extra: str, installed: str, minimum: str | None, spec: str) -> None:
    assert jax_cuda_spec(_ctx(), extra, installed, minimum) == spec


def test_jax_cuda_spec_without_a_version_takes_the_newest_release_for_this_python() -> None:
    ctx = _ctx(python={"version": "3.11.9"})
    spec = jax_cuda_spec(ctx, "cuda12", None)
    release = load_matrix().jax_release(spec.split("==")[1])
    assert release is not None and release.python.contains("3.11.9")
    newest = max(load_matrix().jax, key=lambda r: series_key(r.version))
    assert not newest.python.contains("3.11.9") and spec != f"jax[cuda12]=={newest.version}"


def test_conda_commands_name_the_target_env_and_force_only_there() -> None:
    target = _ctx(conda={"prefix": "/opt/conda/envs/ml", "is_target": True})
    assert (
        target.conda_remove("pytorch", force=True) == "conda remove -y -p /opt/conda/envs/ml --force pytorch"
    )
    named = _ctx(conda={"prefix": "/opt/conda/envs/ml", "env_name": "ml", "is_target": True})
    assert named.conda_install("cudnn=9") == "conda install -y -n ml -c conda-forge cudnn=9"
    other = _ctx(conda={"prefix": "/opt/conda", "env_name": "base", "is_target": False})
    assert other.conda_remove("pytorch", force=True) == "conda remove -y pytorch"
