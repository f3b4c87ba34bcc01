"""The matrix document cache (issue #12): a hit gives the same matrix; anything odd is a miss, never a crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gpudoctor import matrix, matrix_cache


def _load() -> matrix.Matrix:
    path = matrix.default_matrix_path()
    return matrix.parse_matrix(
        path.read_text(encoding="utf-8"), name=path.name, source=str(path), trusted=True
    )


def test_a_cached_document_gives_the_same_matrix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", str(tmp_path / "cache"))
    first = _load()
    files = list((tmp_path / "cache").glob("matrix-*.marshal"))
    assert len(files) == 1 and files[0].stat().st_mode & 0o077 == 0
    assert _load() == first


@pytest.mark.parametrize("damage", [b"", b"garbage", b"gpudoctor-matrix-document 1\n" + b"0" * 200])
def test_a_corrupt_cache_file_is_a_miss(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: bytes
) -> None:
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", str(tmp_path))
    expected = _load()
    (cached,) = tmp_path.glob("matrix-*.marshal")
    cached.write_bytes(cached.read_bytes()[:40] + damage)
    assert _load() == expected


def test_a_cache_others_can_write_is_not_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", str(tmp_path))
    _load()
    assert list(tmp_path.glob("matrix-*.marshal"))
    os.chmod(tmp_path, 0o777)  # noqa: PTH101 - a folder anyone could have planted the file in
    text = matrix.default_matrix_path().read_text(encoding="utf-8")
    document, _ = matrix_cache.document(text, lambda: {"parsed": True})
    assert document == {"parsed": True}  # parsed again: the planted-looking file was not read


def test_an_unwritable_or_disabled_cache_still_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", "off")
    assert _load().torch
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", str(blocker / "cache"))  # a folder under a file
    assert _load().torch
