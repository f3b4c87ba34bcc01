"""The published JSON Schemas: current with the code, shipped twice, and every golden report valid.

After a change to facts.py or the report, regenerate with the goldens:
`GPUDOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py tests/test_schema.py`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

jsonschema = pytest.importorskip("jsonschema")
referencing = pytest.importorskip("referencing")

from gpudoctor import schemas
from gpudoctor.facts import SCHEMA_VERSION
from tests.test_cli import gpudoctor
from tests.test_machines import load_machine, machine_files

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "src" / "gpudoctor" / "schema"
DOCS = ROOT / "docs" / "schema"
GOLDEN = Path(__file__).parent / "golden"
OLD = Path(__file__).parent / "schema"
UPDATE = os.environ.get("GPUDOCTOR_UPDATE_GOLDEN") == "1"


@pytest.mark.parametrize("name", sorted(schemas.SCHEMAS))
def test_shipped_schemas_are_current(name: str) -> None:
    expected = schemas.dumps(name)
    for folder in (SHIPPED, DOCS):
        path = folder / f"{name}.schema.json"
        if UPDATE:
            path.write_text(expected, encoding="utf-8")
        assert path.read_text(encoding="utf-8") == expected, f"{path} is stale; regenerate (see docstring)"
    from importlib import resources

    packaged = resources.files("gpudoctor").joinpath("schema").joinpath(f"{name}.schema.json")
    assert packaged.read_text(encoding="utf-8") == expected  # what an installed gpudoctor carries


def _validator(name: str) -> Any:
    resources = []
    for other in schemas.SCHEMAS:
        document = json.loads((SHIPPED / f"{other}.schema.json").read_text(encoding="utf-8"))
        resources.append((document["$id"], referencing.Resource.from_contents(document)))
    registry = referencing.Registry().with_resources(resources)
    document = json.loads((SHIPPED / f"{name}.schema.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(document)
    cls.check_schema(document)
    return cls(document, registry=registry)


def test_every_golden_report_is_valid() -> None:
    validator = _validator("report")
    goldens = sorted(GOLDEN.glob("*.json"))
    assert len(goldens) >= 100
    for path in goldens:
        document = json.loads(path.read_text(encoding="utf-8"))
        errors = sorted(validator.iter_errors(document), key=lambda e: list(e.path))
        assert not errors, f"{path.name}: {errors[0].message} at {list(errors[0].path)}"
        assert document["schema_version"] == SCHEMA_VERSION


def test_schema_rejects_what_it_must() -> None:
    validator = _validator("report")
    document = json.loads((GOLDEN / "several-problems-at-once.json").read_text(encoding="utf-8"))
    document["findings"][0]["severity"] = "fatal"
    document["facts"]["driver"]["gpus"] = "two"
    messages = {e.message for e in validator.iter_errors(document)}
    assert "'fatal' is not one of ['error', 'warning', 'info']" in messages
    assert any("'two'" in m for m in messages)


def test_every_machine_as_saved_facts_is_valid() -> None:
    from gpudoctor.render.json import dumps_facts

    validator = _validator("facts")
    for path in machine_files():
        facts, _ = load_machine(path)
        errors = list(validator.iter_errors(json.loads(dumps_facts(facts))))
        assert not errors, f"{path.name}: {errors[0].message}"


def test_a_facts_file_of_schema_1_still_loads(tmp_path: Path) -> None:
    """Saved by the release before schema 2 (no collected_at): same findings as today's machine."""
    old = OLD / "facts-schema-1-torch-cuda-ok.json"
    assert json.loads(old.read_text(encoding="utf-8"))["schema_version"] == 1
    result = gpudoctor("check", "--facts", str(old), "--json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["facts"]["torch"]["version"] == "2.5.1+cu124"
    golden = json.loads((GOLDEN / "torch-cuda-ok.json").read_text(encoding="utf-8"))
    assert [f["code"] for f in document["findings"]] == [f["code"] for f in golden["findings"]]


@pytest.mark.parametrize(
    ("version", "message"),
    [
        (0, "has schema_version 0, which no gpudoctor wrote: this one reads schemas 1 to"),
        (99, "was written by a newer gpudoctor (schema 99; this one reads"),
        ("2", "is not a whole number"),
    ],
)
def test_an_unknown_schema_version_is_one_clear_line(tmp_path: Path, version: object, message: str) -> None:
    path = tmp_path / "facts.json"
    path.write_text(json.dumps({"schema_version": version}), encoding="utf-8")
    result = gpudoctor("check", "--facts", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert message in result.stderr
