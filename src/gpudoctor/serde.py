"""Dataclasses to JSON-ready dicts and back, driven by the type hints.

Loading is forgiving about what is absent (defaults fill in) and about unknown keys (a newer
gpudoctor may have written them), and strict about types: a wrong type raises `SerdeError`
naming the path of the bad value, never a bare traceback.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from enum import Enum
from typing import Any, TypeVar, get_args, get_origin, get_type_hints

from gpudoctor.loading import excerpt

T = TypeVar("T")


class SerdeError(ValueError):
    """A value in a facts document has the wrong shape; the message names where."""


def to_data(value: Any) -> Any:
    """Turn dataclasses, enums, tuples and dicts into plain JSON-ready data."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_data(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, list | tuple):
        return [to_data(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_data(v) for k, v in value.items()}
    return value


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def from_data(cls: type[T], data: Any, path: str = "$") -> T:
    """Build `cls` (a dataclass) from plain data, checking types along the way."""
    result: T = _convert(cls, data, path)
    return result


def _convert(tp: Any, data: Any, path: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return data
    if origin is typing.Union or origin is types.UnionType:
        options = get_args(tp)
        if data is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, data, path)
            except SerdeError as exc:
                errors.append(str(exc))
        raise SerdeError(errors[0] if len(errors) == 1 else f"{path}: unexpected value {excerpt(data)}")
    if origin is typing.Literal:
        if data not in get_args(tp):
            allowed = ", ".join(repr(a) for a in get_args(tp))
            raise SerdeError(f"{path}: {excerpt(data)} is not one of {allowed}")
        return data
    if origin is tuple:
        if not isinstance(data, list | tuple):
            raise SerdeError(f"{path}: expected a list, got {type(data).__name__}")
        (item_type, *_) = get_args(tp)
        return tuple(_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(data))
    if origin is list:
        if not isinstance(data, list | tuple):
            raise SerdeError(f"{path}: expected a list, got {type(data).__name__}")
        (item_type,) = get_args(tp)
        return [_convert(item_type, v, f"{path}[{i}]") for i, v in enumerate(data)]
    if origin is dict:
        if not isinstance(data, Mapping):
            raise SerdeError(f"{path}: expected a mapping, got {type(data).__name__}")
        key_type, value_type = get_args(tp)
        return {
            _convert(key_type, k, f"{path}.{_key(k)}"): _convert(value_type, v, f"{path}.{_key(k)}")
            for k, v in data.items()
        }
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if not isinstance(data, Mapping):
            raise SerdeError(f"{path}: expected a mapping, got {type(data).__name__}")
        hints = _hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if f.name in data:
                kwargs[f.name] = _convert(hints[f.name], data[f.name], f"{path}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise SerdeError(f"{path}: missing {f.name!r}")
        try:
            return tp(**kwargs)
        except (TypeError, ValueError) as exc:  # a check of the dataclass's own
            raise SerdeError(f"{path}: {excerpt(str(exc), 120)}") from None
    if isinstance(tp, type) and issubclass(tp, Enum):
        try:
            return tp(data)
        except ValueError:
            raise SerdeError(f"{path}: {excerpt(data)} is not a valid {tp.__name__}") from None
    if tp is float and isinstance(data, int | float) and not isinstance(data, bool):
        return float(data)
    if tp is int and isinstance(data, bool):
        raise SerdeError(f"{path}: expected int, got bool")
    if isinstance(tp, type) and isinstance(data, tp):
        return data
    raise SerdeError(
        f"{path}: expected {getattr(tp, '__name__', tp)}, got {type(data).__name__} {excerpt(data)}"
    )


def _key(key: object) -> str:
    """A mapping key as a path element, cut short."""
    text = str(key)
    return text if len(text) <= 40 else text[:39] + "…"
