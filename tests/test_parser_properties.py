"""Property tests: no exception escapes a parser of tool output, child JSON or log lines (issue #8).

Inputs are arbitrary text, recorded real outputs cut and spliced at random places, and arbitrary
JSON for the child scripts' results. A parser may answer "nothing found" or raise the ValueError
its docstring promises; anything else (IndexError, RecursionError, TypeError...) is a defect.
Each example must also finish quickly: a deadline catches catastrophic regex backtracking.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("hypothesis", reason="pip install -e '.[test]' brings hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudoctor.probes import conda, driver, jax, libraries, platform, python, tensorflow, toolkit, torch
from gpudoctor.probes.base import ProbeUnavailable
from gpudoctor.probes.child_process import ChildRun, parse_marker
from gpudoctor.redact import Identity, redact_text
from gpudoctor.runner import CommandResult
from tests.conftest import OUTPUTS, load_child

PROPERTY = settings(
    max_examples=int(os.environ.get("GPUDOCTOR_HYPOTHESIS_EXAMPLES", "150")),  # more for a deep local run
    deadline=2000,  # ms per example, generous for a loaded machine; backtracking blows far past it
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
RECORDED = sorted(p for p in OUTPUTS.iterdir() if p.is_file())
SMI_FIELDS = driver.SMI_FIELDS


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


@st.composite
def tool_output(draw: st.DrawFn) -> str:
    """A recorded real output, cut, spliced with noise, or replaced by arbitrary text."""
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return draw(st.text(max_size=2000))
    text = _read(draw(st.sampled_from(RECORDED)))
    if choice == 1:
        return text
    start = draw(st.integers(0, len(text)))
    end = draw(st.integers(start, len(text)))
    noise = draw(
        st.text(alphabet=st.sampled_from(list(",\n\r\t :.[]\x00\x1b-0123456789abcXYZ/\\\"'{}")), max_size=80)
    )
    return text[:start] + noise + text[end:] if choice == 2 else text[start:end] * draw(st.integers(1, 3))


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=6) | st.dictionaries(st.text(max_size=20), inner, max_size=8),
    max_leaves=40,
)
CHILD_KEYS = [
    "installed",
    "imported",
    "stage",
    "version",
    "module_path",
    "cuda_version",
    "hip_version",
    "cudnn_version",
    "cuda_available",
    "device_count",
    "devices",
    "arch_list",
    "warnings",
    "conda",
    "dist",
    "cpuonly",
    "import_error",
    "cuda_error",
    "loaded_libraries",
    "distributions",
    "gpus",
    "is_cuda_build",
    "build_info_error",
    "list_devices_error",
    "cuda_compute_capabilities",
    "jax_version",
    "jaxlib_version",
    "plugins",
    "conda_jaxlib",
    "backend_errors",
    "default_backend",
    "backend_error",
    "executable",
    "prefix",
    "base_prefix",
    "is_venv",
    "origin",
    "bits",
    "site_packages",
    "shadowing",
    "unreadable_metadata",
    "files",
    "searched",
    "path_var",
]


@st.composite
def child_json(draw: st.DrawFn) -> dict[str, Any]:
    """What a child script could print: its own keys, holding values of any JSON type."""
    keys = draw(st.lists(st.sampled_from(CHILD_KEYS), max_size=12, unique=True))
    data: dict[str, Any] = {k: draw(JSON) for k in keys}
    if draw(st.booleans()):
        data["installed"] = True
    return data


def run_with(stdout: str = "", stderr: str = "", returncode: int | None = 0) -> ChildRun:
    result = CommandResult(argv=("python",), returncode=returncode, stdout=stdout, stderr=stderr)
    return ChildRun(result=result, data=None, problem=None)


# --- tool outputs --------------------------------------------------------------------------------


@PROPERTY
@given(tool_output())
def test_nvidia_smi_parsers(text: str) -> None:
    gpus, version = driver.parse_smi_query(text, SMI_FIELDS)
    assert all(g.index >= 0 for g in gpus)
    assert (version is None) == (not gpus)
    assert driver.parse_smi_query(text, tuple(f for f in SMI_FIELDS if f != "compute_cap")) is not None
    cuda = driver.parse_smi_cuda_version(text)
    assert cuda is None or cuda.replace(".", "").isdigit()
    module = driver.parse_kernel_module_version(text)
    assert module is None or module[0].isdigit()


@PROPERTY
@given(tool_output())
def test_nvcc_and_toolkit_version_files(text: str) -> None:
    version = toolkit.parse_nvcc_version(text)
    assert version is None or version[0].isdigit()
    for parse in (toolkit.parse_version_json, toolkit.parse_version_txt):
        with contextlib.suppress(ValueError):
            assert parse(text)[0].isdigit()


@PROPERTY
@given(st.one_of(tool_output(), JSON.map(json.dumps)))
def test_conda_records_and_conda_list(text: str) -> None:
    for parse in (conda.parse_record, conda.parse_conda_list):
        with contextlib.suppress(ValueError):
            parse(text)


@PROPERTY
@given(tool_output())
def test_os_release(text: str) -> None:
    assert isinstance(platform.parse_os_release(text), dict)


def test_deeply_nested_json_is_refused_not_a_crash() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    record = '{"name": "x", "version": ' + deep + "}"
    for parse in (conda.parse_record, conda.parse_conda_list, toolkit.parse_version_json):
        with pytest.raises(ValueError):
            parse(record)
    assert parse_marker("@@GPUDOCTOR@@ " + deep) is None


# --- child output --------------------------------------------------------------------------------


@PROPERTY
@given(st.one_of(tool_output(), JSON.map(lambda v: "noise\n@@GPUDOCTOR@@ " + json.dumps(v) + "\n")))
def test_parse_marker(stdout: str) -> None:
    data = parse_marker(stdout)
    assert data is None or isinstance(data, dict)


@PROPERTY
@given(child_json(), tool_output())
def test_framework_probes_parse_any_child_json(data: dict[str, Any], log: str) -> None:
    run = run_with(stderr=log)
    for parse in (torch.parse, jax.parse, tensorflow.parse):
        with contextlib.suppress(ProbeUnavailable):  # the documented "not installed" answer
            parse(data, run)
    python.parse(data)
    libraries.parse_files(data, {})


# --- log lines -----------------------------------------------------------------------------------


@PROPERTY
@given(st.lists(st.one_of(st.text(max_size=300), tool_output().map(lambda t: t[:300])), max_size=40))
def test_framework_log_lines(lines: list[str]) -> None:
    tensorflow.parse_log(lines)
    torch.signal_lines(lines, ("cuda", "cudnn", "nvidia", "warn"))
    jax.library_checks(lines)


# --- the child prelude's metadata readers, as the child runs them ---------------------------------

prelude = load_child("python").__dict__


@PROPERTY
@given(st.one_of(st.text(max_size=3000), tool_output()))
def test_prelude_metadata_readers(text: str) -> None:
    headers = prelude["_headers"](text)
    assert all(isinstance(v, list) for v in headers.values())
    assert all(isinstance(r, str) for r in prelude["_egg_requires"](text))
    assert isinstance(prelude["_folder_name"](text + ".dist-info"), str)


# --- redaction -----------------------------------------------------------------------------------

PEOPLE = Identity(home="/home/zqx", users=("zqx",), homes=("/home/zqx",), hosts=("gpubox",))
WINDOWS_PEOPLE = Identity(
    home="C:\\Users\\zqx", users=("zqx", "b\\1"), homes=("C:\\Users\\zqx", "C:\\Users\\b\\1")
)
PATHS = st.text(alphabet=st.sampled_from(list("/\\:;C Userhomzqxb1.-_~<>")), max_size=200)


@PROPERTY
@given(st.one_of(st.text(max_size=500), PATHS, tool_output().map(lambda t: t[:2000])))
def test_redaction_never_raises_and_is_stable(text: str) -> None:
    once = redact_text(text, PEOPLE)
    assert redact_text(once, PEOPLE) == once
    assert "/home/zqx/" not in once
    windows = redact_text(text, WINDOWS_PEOPLE)
    assert "C:\\Users\\zqx\\" not in windows
