"""The published JSON Schemas (draft 2020-12) of the facts file and the `--format json` report.

Both are derived from the dataclasses in `facts.py` and `model.py`, so they cannot drift from the
code; the files shipped in the package (`gpudoctor/schema/*.schema.json`) and in `docs/schema/` are
regenerated with the golden outputs (`GPUDOCTOR_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py tests/test_schema.py`)
and a test checks they are current. `python -m gpudoctor.schemas facts|report` prints one.

Facts objects allow keys they do not list (`additionalProperties: true`): a newer gpudoctor may add
fields, and the loader ignores what it does not know.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from enum import Enum
from typing import Any, get_args, get_origin, get_type_hints

from gpudoctor.facts import MIN_SCHEMA_VERSION, SCHEMA_VERSION, Facts

BASE_ID = "https://github.com/gpudoctor/gpudoctor/schema"


def _type_schema(tp: Any, defs: dict[str, Any]) -> dict[str, Any]:
    origin = get_origin(tp)
    if tp is Any:
        return {}
    if origin is typing.Union or origin is types.UnionType:
        options = [_type_schema(a, defs) for a in get_args(tp)]
        return {"anyOf": options}
    if origin is typing.Literal:
        return {"enum": list(get_args(tp))}
    if origin in (tuple, list):
        args = get_args(tp)
        return {"type": "array", "items": _type_schema(args[0], defs)} if args else {"type": "array"}
    if origin is dict:
        _, value = get_args(tp)
        return {"type": "object", "additionalProperties": _type_schema(value, defs)}
    if tp is type(None):
        return {"type": "null"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer"}
    if tp is float:
        return {"type": "number"}
    if tp is str:
        return {"type": "string"}
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {"enum": [m.value for m in tp]}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        name = tp.__name__
        if name not in defs:
            defs[name] = {}  # placeholder: recursion
            hints = get_type_hints(tp)
            defs[name] = {
                "type": "object",
                "description": (tp.__doc__ or name).strip().splitlines()[0],
                "properties": {f.name: _type_schema(hints[f.name], defs) for f in dataclasses.fields(tp)},
                "additionalProperties": True,
            }
        return {"$ref": f"#/$defs/{name}"}
    raise TypeError(f"no JSON Schema for {tp!r}")


def facts_schema() -> dict[str, Any]:
    defs: dict[str, Any] = {}
    _type_schema(Facts, defs)
    facts = defs.pop("Facts")
    facts["properties"]["schema_version"] = {"type": "integer", "minimum": MIN_SCHEMA_VERSION}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}/facts.schema.json",
        "title": f"gpudoctor facts (schema_version {SCHEMA_VERSION})",
        "description": "What `gpudoctor collect` and `gpudoctor check --save-facts` write, and "
        "`gpudoctor check --facts` reads. Every field is optional: absent ones take defaults.",
        **{k: v for k, v in facts.items() if k != "description"},
        "$defs": defs,
    }


def report_schema() -> dict[str, Any]:
    from gpudoctor.model import Fix, RuleOutcome

    defs: dict[str, Any] = {}
    fix = _type_schema(Fix, defs)
    outcome = _type_schema(RuleOutcome, defs)
    string_list = {"type": "array", "items": {"type": "string"}}
    finding = {
        "type": "object",
        "required": ["code", "severity", "title", "message", "why", "seen", "fix", "fixes", "explain"],
        "properties": {
            "code": {"type": "string", "pattern": "^GD[0-9]{3}$"},
            "severity": {"enum": ["error", "warning", "info"]},
            "title": {"type": "string", "description": "the problem, in a few words"},
            "message": {"type": "string"},
            "why": {"type": "string"},
            "seen": string_list,
            "fix": {**string_list, "description": "every fix's commands, in order"},
            "fixes": {"type": "array", "items": fix},
            "explain": {"type": "string"},
        },
        "additionalProperties": True,
    }
    defs["Finding"] = finding
    summary = {
        "type": "object",
        "required": ["errors", "warnings", "info", "usable_gpu", "checks_run"],
        "properties": {
            "errors": {"type": "integer", "minimum": 0},
            "warnings": {"type": "integer", "minimum": 0},
            "info": {"type": "integer", "minimum": 0},
            "usable_gpu": {"type": "boolean"},
            "checks_run": {"type": "integer", "minimum": 0},
            "exit_code": {"enum": [0, 1], "description": "the exit code of this run (0 passed, 1 failed)"},
            "failed_because": {"enum": [None, "errors", "warnings", "no-gpu"]},
        },
        "additionalProperties": True,
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{BASE_ID}/report.schema.json",
        "title": f"gpudoctor report (schema_version {SCHEMA_VERSION})",
        "description": "What `gpudoctor check --format json` prints.",
        "type": "object",
        "required": [
            "schema_version",
            "gpudoctor_version",
            "summary",
            "matrix",
            "findings",
            "checks",
            "facts",
        ],
        "properties": {
            "schema_version": {"type": "integer", "minimum": MIN_SCHEMA_VERSION},
            "gpudoctor_version": {"type": "string"},
            "summary": summary,
            "matrix": {"type": "string"},
            "findings": {"type": "array", "items": {"$ref": "#/$defs/Finding"}},
            "checks": {"type": "array", "items": outcome},
            "facts": {"$ref": "facts.schema.json"},
        },
        "additionalProperties": True,
        "$defs": defs,
    }


SCHEMAS = {"facts": facts_schema, "report": report_schema}


def dumps(name: str) -> str:
    return json.dumps(SCHEMAS[name](), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in SCHEMAS:
        sys.exit("usage: python -m gpudoctor.schemas facts|report")
    sys.stdout.write(dumps(sys.argv[1]))
