"""Property tests: the matrix and facts parsers accept or refuse any input with their own error, nothing else."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("hypothesis", reason="pip install -e '.[test]' brings hypothesis")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gpudoctor.facts import Facts
from gpudoctor.loading import UntrustedInputError, excerpt, load_facts_file, parse_json, parse_yaml
from gpudoctor.matrix import Matrix, MatrixError, parse_matrix
from gpudoctor.serde import SerdeError, from_data

REPO_MATRIX = Path(__file__).resolve().parents[1] / "compat_matrix.yaml"
DOCUMENT = yaml.safe_load(REPO_MATRIX.read_text(encoding="utf-8"))
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["12.2", "9.3.0.75", ">=3.9,<3.12", "sm_80", "cu124", "8.6", "cpu", "linux"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


PATHS = [p for p in _paths(DOCUMENT) if p and p[0] != "sources"]


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return changed


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])  # ~0.3 s each
@given(path=st.sampled_from(PATHS), value=values)
def test_a_real_matrix_with_one_value_replaced_parses_or_is_a_matrix_error(
    path: tuple[Any, ...], value: Any
) -> None:
    text = yaml.safe_dump(_replace(DOCUMENT, path, value), sort_keys=False)
    try:
        result = parse_matrix(text, name="m.yaml")
    except MatrixError as exc:
        assert str(exc).startswith("m.yaml: ")
        assert "\n" not in str(exc)
        assert len(str(exc)) < 400
    else:
        assert isinstance(result, Matrix)


def test_a_row_named_by_a_hostile_value_keeps_the_error_short() -> None:
    """A row's label (`gpus[<cc>]`) is the value that is wrong: it must be cut like any excerpt."""
    for path in [p for p in PATHS if p[0] == "gpus" and p[-1] == "cc"][:3]:
        nested = {"k" * 12: ["v" * 200] * 4, "x": {"y" * 12: "z" * 300}}
        with pytest.raises(MatrixError) as caught:
            parse_matrix(yaml.safe_dump(_replace(DOCUMENT, path, nested), sort_keys=False), name="m.yaml")
        assert len(str(caught.value)) < 400, str(caught.value)


@SETTINGS
@given(text=st.text(max_size=300))
def test_any_text_as_a_matrix_is_a_matrix_error(text: str) -> None:
    try:
        parse_matrix(text, name="m.yaml")
    except MatrixError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(document=values)
def test_any_data_as_facts_is_facts_or_a_serde_error(document: Any) -> None:
    try:
        result = from_data(Facts, document)
    except SerdeError as exc:
        assert str(exc).startswith("$")
        assert len(str(exc)) < 400
    else:
        assert isinstance(result, Facts)


@SETTINGS
@given(
    slot=st.sampled_from(["driver", "python", "probes", "platform", "torch", "jax", "tensorflow"]),
    value=values,
)
def test_a_facts_slot_filled_with_junk(slot: str, value: Any, tmp_path_factory: Any) -> None:
    path = tmp_path_factory.mktemp("facts") / "facts.json"
    path.write_text(json.dumps({slot: value}))
    try:
        assert isinstance(load_facts_file(path), Facts)
    except UntrustedInputError as exc:
        assert "\n" not in str(exc)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text_as_json_or_yaml(text: str) -> None:
    for parse in (parse_json, parse_yaml):
        try:
            parse(text)
        except UntrustedInputError as exc:
            assert "\n" not in str(exc)


@SETTINGS
@given(value=values)
def test_excerpt_is_bounded(value: Any) -> None:
    assert len(excerpt(value)) <= 60
