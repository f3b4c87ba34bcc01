"""The entry point starts the slow children before the CLI loads; the probes take them over (issue #12)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

from gpudoctor import entry, prestart, runner
from gpudoctor.probes import driver, jax, tensorflow, torch
from gpudoctor.probes.base import ProbeUnavailable
from tests.conftest import RecordingRunner, load_child, make_ctx
from tests.standins import install_standin, make_venv, site_packages

ROOT = Path(__file__).resolve().parent.parent


def test_the_prestarted_children_are_the_ones_the_probes_ask_for(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    install_standin(site_packages(python), "torch", "2.5.1", "torch", "")
    env = {"PATH": os.defpath, "PYTHONPATH": "relative:/abs"}
    scripts = [script for script, _ in prestart.children(str(python), env)]
    assert scripts == ["python", "libraries", "torch"]
    assert prestart.FRAMEWORK_CHILD_ENV["tensorflow"] == tensorflow.CHILD_ENV
    assert all(
        child["PYTHONPATH"] == "/abs" and child["PYTHONSAFEPATH"] == "1"
        for _, child in prestart.children(str(python), env)
    )


def test_the_prestarted_framework_children_are_the_ones_the_probes_run(tmp_path: Path) -> None:
    """Same argv, environment and folder, or the framework is imported twice (once unadopted)."""
    python = make_venv(tmp_path)
    for name in ("tensorflow", "torch", "jax"):
        install_standin(site_packages(python), name, "1.0", name, "")
    scripts = {prestart.script_source(name): name for name in ("tensorflow", "torch", "jax")}
    recording = RecordingRunner()
    env = {"PATH": os.defpath, "PYTHONPATH": "/abs"}
    ctx = dataclasses.replace(make_ctx(python=str(python), env=env, cwd=tmp_path), runner=recording)
    for probe in (tensorflow, torch, jax):
        with contextlib.suppress(ProbeUnavailable):
            probe.collect(ctx)
    asked = {
        scripts[call[0][2]]: call for call in recording.asked if len(call[0]) > 2 and call[0][2] in scripts
    }
    started = {
        name: ((str(python), "-c", prestart.script_source(name)), child, str(tmp_path))
        for name, child in prestart.frameworks(str(python), ctx.env)
    }
    assert set(asked) == {"tensorflow", "torch", "jax"}
    assert asked == started


def test_the_prestarted_nvml_query_is_the_one_the_driver_probe_runs() -> None:
    recording = RecordingRunner()
    env = {"PATH": os.defpath, "PYTHONPATH": "/abs", "PYTHONHOME": "/x", "CUDA_VISIBLE_DEVICES": "0"}
    ctx = dataclasses.replace(make_ctx(env=env, system="Linux"), runner=recording)
    driver.collect(ctx)
    argv, child = prestart.nvml_child(ctx.env)
    assert recording.asked[0] == (argv, child, None)  # what prestart.start starts (cwd: none given)
    assert argv[:3] == (sys.executable, "-I", "-c") and "def query" in argv[3]
    assert not any(k.startswith("PYTHON") for k in child) and child["CUDA_VISIBLE_DEVICES"] == "0"


def test_a_prestarted_program_is_taken_over_by_the_run_that_asks_for_it(tmp_path: Path) -> None:
    witness = tmp_path / "starts"
    code = f"open({str(witness)!r}, 'a').write('x'); import time; time.sleep(0.3); print('done')"
    argv = (sys.executable, "-c", code)
    env = {"PATH": os.defpath}
    runner.prestart(argv, env=env, cwd=str(tmp_path))
    time.sleep(0.1)
    result = runner.SubprocessRunner().run(argv, timeout=10, env=env, cwd=str(tmp_path))
    assert result.ok and result.stdout == "done\n"
    assert witness.read_text() == "x"  # started once, by prestart
    assert runner.tagged_processes() == []


def test_a_prestarted_program_nobody_asks_for_is_ended(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    runner.prestart(argv, env={"PATH": os.defpath}, cwd=str(tmp_path))
    assert runner.tagged_processes()
    runner.end_all_children()
    assert runner.tagged_processes() == []


def test_a_prestarted_program_keeps_the_callers_time_limit(tmp_path: Path) -> None:
    argv = (sys.executable, "-c", "import time; time.sleep(60)")
    env = {"PATH": os.defpath}
    runner.prestart(argv, env=env, cwd=str(tmp_path))
    started = time.monotonic()
    result = runner.SubprocessRunner().run(argv, timeout=1, env=env, cwd=str(tmp_path))
    assert result.error == "timeout" and result.error_detail == "timed out after 1 s"
    assert time.monotonic() - started < 5
    assert runner.tagged_processes() == []


def test_check_imports_a_framework_once_though_its_child_starts_before_the_cli(tmp_path: Path) -> None:
    python = make_venv(tmp_path)
    witness = tmp_path / "imports"
    install_standin(
        site_packages(python),
        "torch",
        "2.5.1",
        "torch",
        f"import time\nopen({str(witness)!r}, 'a').write('x')\ntime.sleep(0.5)\n__version__ = '2.5.1'\n",
    )
    done = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "check", "--python", str(python), "--json"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    assert done.returncode in (0, 1), done.stderr
    assert '"torch"' in done.stdout
    assert witness.read_text() == "x"


def test_only_a_live_check_or_collect_starts_early() -> None:
    assert entry.probing_options(["check"]) == (None, 60.0)
    assert entry.probing_options(["check", "--python=/x/python", "--timeout", "5", "--json", "-v"]) == (
        "/x/python",
        5.0,
    )
    assert entry.probing_options(["collect", "-o", "f.json", "--python", "py"]) == ("py", 60.0)
    for argv in (
        [],
        ["--help"],
        ["explain", "GD101"],
        ["check", "--facts", "f.json"],
        ["check", "--help"],
        ["check", "--timeout", "0.5"],
        ["check", "--timeout", "nan"],
        ["check", "--unknown"],
        ["check", "-vf", "json"],
        ["check", "--python"],
    ):
        assert entry.probing_options(argv) is None, argv


def test_names_are_canonicalised_as_packaging_does_here_and_in_the_children() -> None:
    """prestart's and the children's str.replace canonicalisation against packaging's regex."""
    import random

    from packaging.utils import canonicalize_name

    survey = load_child("python")
    rng = random.Random(7)
    names = ["", "-", "a--b", "A_B.c", "Tensorflow_GPU", "nvidia_cudnn_cu12", "x.-_y", "_a_", "İnfo"]
    names += ["".join(rng.choice("aZ9-_.") for _ in range(rng.randint(1, 12))) for _ in range(3000)]
    for name in names:
        expected = str(canonicalize_name(name))
        assert prestart.canonical(name) == expected, name
        assert survey.canonical(name) == expected, name
