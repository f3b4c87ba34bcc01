"""The README's performance figures are the benchmarks' own output, never typed by hand (issue #12).

`python benchmarks/bench_cli.py --write-readme` (and bench_fleet.py) write benchmarks/results/<name>.json
and the README section between their markers; here the section must be exactly what the benchmark
renders from that file.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"


def _module(name: str) -> ModuleType:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        spec = importlib.util.spec_from_file_location(
            f"gpudoctor_benchmark_{name}", BENCHMARKS / f"{name}.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[f"gpudoctor_benchmark_{name}"] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCHMARKS))


def _results(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(
        (BENCHMARKS / "results" / f"{name}.json").read_text(encoding="utf-8")
    )
    return data


@pytest.mark.parametrize("name", ["bench_cli", "bench_fleet"])
def test_the_readme_section_is_what_the_benchmark_wrote(name: str) -> None:
    common = _module("_common")
    section = common.readme_section(name)
    assert section is not None, f"README.md lacks the markers of {name}"
    if name == "bench_cli":
        expected = _module("bench_cli").render_results(_results(name))
    else:
        expected = str(_results(name)["markdown"])
    assert section.strip() == expected.strip(), (
        f"README's {name} figures differ from benchmarks/results/{name}.json: "
        f"rerun `python benchmarks/{name}.py --write-readme` instead of editing them"
    )


def test_every_cli_figure_names_what_it_was_measured_beside() -> None:
    figures = _results("bench_cli")["figures"]
    assert isinstance(figures, list) and figures
    for figure in figures:
        assert figure["what"] and figure["measured"] and figure["beside"]
        assert "load average" in str(_results("bench_cli")["conditions"])
