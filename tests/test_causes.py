"""The registry's data stays one thing: root-cause groups, `blocks_gpu`, and rule families that share
vocabulary only through the shared modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from gpudoctor import explain
from gpudoctor import rules as rules_package
from gpudoctor.engine import CRASH_CODE, CRASH_TITLE, diagnose
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Severity
from gpudoctor.probes import PROBES
from gpudoctor.rules import RULES, causes
from tests.test_machines import MACHINES, load_machine

RULES_DIR = Path(rules_package.__file__).parent
# Modules under rules/ that every family may import; every other module there is a family.
SHARED = {"__init__", "registry", "context", "causes", "views", "recipes"}


def family_modules() -> list[Path]:
    return sorted(p for p in RULES_DIR.glob("*.py") if p.stem not in SHARED)


def imported_modules(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            if node.module == "gpudoctor.rules":
                found.update(f"gpudoctor.rules.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_every_group_names_registered_rules() -> None:
    for name, codes in causes.GROUPS.items():
        assert codes, f"causes.{name} is empty"
        unknown = [c for c in codes if c not in RULES]
        assert not unknown, f"causes.{name} names unregistered codes {unknown}"


def test_groups_module_lists_every_group() -> None:
    declared = {name for name, value in vars(causes).items() if name.isupper() and isinstance(value, tuple)}
    assert declared == set(causes.GROUPS), "a group in causes.py is missing from causes.GROUPS"


def test_every_gd10x_rule_is_a_driver_root_cause() -> None:
    driver_level = {code for code in RULES if re.fullmatch(r"GD10\d", code)}
    assert driver_level, "no GD10x rules registered"
    assert driver_level - set(causes.DRIVER) == set(), "GD10x rules missing from causes.DRIVER"
    assert set(causes.DRIVER) - driver_level == set(), "causes.DRIVER names a code outside GD10x"


def test_root_causes_that_hide_the_gpu_block_it() -> None:
    """A rule in a group that means "no program gets the GPU" says so as `blocks_gpu`, and back."""
    for code in (*causes.DRIVER, *causes.PLATFORM, *causes.HIDDEN_GPUS):
        assert RULES[code].blocks_gpu, f"{code} is a GPU-level root cause but not blocks_gpu"


def test_no_family_module_imports_another() -> None:
    families = {f"gpudoctor.rules.{p.stem}" for p in family_modules()}
    assert len(families) >= 5, "the family modules were not found"
    for path in family_modules():
        crossing = imported_modules(path) & (families - {f"gpudoctor.rules.{path.stem}"})
        assert not crossing, (
            f"{path.name} imports family module(s) {sorted(crossing)}: use views/recipes/causes"
        )


def test_the_import_check_sees_a_crossing(tmp_path: Path) -> None:
    module = tmp_path / "leaky.py"
    module.write_text(
        "from gpudoctor.rules.torch import working_driver\nfrom gpudoctor.rules import jax, causes\n",
        encoding="utf-8",
    )
    found = imported_modules(module)
    assert {"gpudoctor.rules.torch", "gpudoctor.rules.jax", "gpudoctor.rules.causes"} <= found


def test_shared_modules_do_not_import_families() -> None:
    families = {f"gpudoctor.rules.{p.stem}" for p in family_modules()}
    for stem in SHARED - {"__init__"}:
        crossing = imported_modules(RULES_DIR / f"{stem}.py") & families
        assert not crossing, f"shared module {stem}.py imports family module(s) {sorted(crossing)}"


# A driver too old for the CUDA a framework was built with, one rule per framework.
DRIVER_TOO_OLD_FOR = {"TensorFlow": "GD111", "PyTorch": "GD603", "JAX": "GD709"}
OLD_DRIVER_MACHINES = {
    "GD111": "compat-GD111-ptx-needs-full-driver",
    "GD603": "torch-cu130-driver-525-ubuntu",
    "GD709": "jax-driver-470-cuda12-plugin",
}


def test_usable_gpu_means_the_same_for_every_framework() -> None:
    """The same fault, a driver too old for the framework's CUDA, is judged alike for all three."""
    flags = {framework: RULES[code].blocks_gpu for framework, code in DRIVER_TOO_OLD_FOR.items()}
    assert len(set(flags.values())) == 1, f"blocks_gpu differs between frameworks: {flags}"
    usable = {}
    matrix = load_matrix()
    for code, machine in OLD_DRIVER_MACHINES.items():
        facts, _ = load_machine(MACHINES / f"{machine}.yaml")
        report = diagnose(facts, matrix)
        assert any(f.code == code and f.severity is Severity.ERROR for f in report.findings), machine
        usable[code] = report.has_usable_gpu
    assert len(set(usable.values())) == 1, f"'usable GPU' differs between frameworks: {usable}"


def test_only_gpu_level_rules_block_the_gpu() -> None:
    """An error about one framework's build never makes the GPU itself unusable."""
    framework_level = [c for c, r in RULES.items() if r.blocks_gpu and re.match(r"GD(0|20\d|4|6|7|8)", c)]
    assert framework_level == [], f"framework-level rules marked blocks_gpu: {framework_level}"


def test_every_finding_names_the_probe_line_it_is_about() -> None:
    probes = {p.name for p in PROBES}
    for code, rule in RULES.items():
        if code.startswith("GD0") and not rule.part:
            continue  # gpudoctor itself; GD001 names the probe per finding
        assert rule.part in probes, f"{code} part={rule.part!r} is not a probe name ({sorted(probes)})"


def test_titles_state_the_problem_on_findings_and_pages() -> None:
    report = diagnose(load_machine(MACHINES / "env-cvd-minus-one-in-bashrc.yaml")[0], load_matrix())
    finding = next(f for f in report.findings if f.code == "GD301")
    assert finding.title == "CUDA_VISIBLE_DEVICES hides every GPU"
    assert finding.check == RULES["GD301"].healthy == "CUDA_VISIBLE_DEVICES does not hide the GPUs"
    assert finding.part == "environment"
    crash = explain.load(CRASH_CODE)
    assert crash is not None and crash.title == CRASH_TITLE
