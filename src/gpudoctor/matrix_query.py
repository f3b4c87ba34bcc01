"""Placeholder; replaced by the matrix query implementation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gpudoctor.matrix import Matrix


class MatrixQueryError(ValueError):
    pass


@dataclass(frozen=True)
class QueryResult:
    text: str
    data: Any


def query(matrix: Matrix, *, framework: str | None, version: str | None, driver: str | None) -> QueryResult:
    raise MatrixQueryError("the matrix query is not built yet")
