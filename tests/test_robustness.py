"""No rule crashes on odd facts: every machine, with each fact slot dropped or filled with junk."""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Any, get_type_hints

import pytest

from gpudoctor.engine import diagnose
from gpudoctor.facts import Facts
from gpudoctor.matrix import load_matrix
from tests.test_machines import load_machine, machine_files

JUNK_STRINGS = ("", "garbage", "12.x", "-1", "9" * 12, "N/A", "1.2.3.4.5", "ø")


def _mutations(facts: Facts, rng: random.Random) -> list[Facts]:
    variants = []
    for field in dataclasses.fields(Facts):
        value = getattr(facts, field.name)
        if not dataclasses.is_dataclass(value) or isinstance(value, type) or field.name == "target":
            continue
        cleared: dict[str, Any] = {field.name: None}
        variants.append(dataclasses.replace(facts, **cleared))
        junk: dict[str, Any] = {}
        hints = get_type_hints(type(value))
        for inner in dataclasses.fields(value):
            hint = str(hints[inner.name])
            if hint in ("<class 'str'>", "str | None"):  # only what a facts file could really hold there
                junk[inner.name] = rng.choice(JUNK_STRINGS)
            elif isinstance(getattr(value, inner.name), tuple):
                junk[inner.name] = ()
        try:
            spoiled: dict[str, Any] = {field.name: dataclasses.replace(value, **junk)}
            variants.append(dataclasses.replace(facts, **spoiled))
        except TypeError:
            continue
    return variants


@pytest.mark.parametrize("path", machine_files(), ids=lambda p: p.stem)
def test_no_rule_crashes_on_mutated_facts(path: Path) -> None:
    facts, _ = load_machine(path)
    rng = random.Random(path.stem)
    matrix = load_matrix()
    for variant in _mutations(facts, rng):
        report = diagnose(variant, matrix)
        crashed = [o for o in report.outcomes if o.state == "crash"]
        assert not crashed, f"{path.stem}: {crashed}"
