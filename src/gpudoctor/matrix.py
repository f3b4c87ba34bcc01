"""Placeholder; replaced by the compatibility-matrix loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, kw_only=True)
class Matrix:
    source: str = ""
    data: dict[str, Any] = field(default_factory=dict)


def load_matrix(path: str | None = None) -> Matrix:
    return Matrix(source=path or "builtin")


class MatrixError(ValueError):
    """The matrix file is missing or invalid; the message names the entry."""
