"""The dataclass code cache (issue #12): a hit makes the same class as a compilation; anything odd in
the file is a miss, never a crash; the CLI writes it once and then only reads it."""

from __future__ import annotations

import dataclasses
import marshal
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gpudoctor import codecache, matrix_cache


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty cache in tmp_path/cache, and `dataclasses` as it was once the test is over."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", str(folder))
    monkeypatch.setattr(codecache, "_compiled", {})
    monkeypatch.setattr(codecache, "_used", set())
    monkeypatch.setattr(codecache, "_new", False)
    monkeypatch.delattr(dataclasses, "exec", raising=False)
    yield folder
    monkeypatch.delattr(dataclasses, "exec", raising=False)


def _make() -> type:
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Point:
        x: int = 0
        y: tuple[str, ...] = ()
        z: list[int] = dataclasses.field(default_factory=list, compare=False)

    return Point


def _behaviour(cls: type) -> tuple[object, ...]:
    a, b = cls(x=1, y=("a",)), cls(x=1, y=("a",), z=[3])
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.x = 2
    return (
        repr(a),
        repr(b),
        a == b,
        hash(a) == hash(b),
        a == cls(x=2),
        [f.name for f in dataclasses.fields(a)],
    )


def _file(folder: Path) -> Path:
    return folder / f"dataclass-code-{sys.implementation.cache_tag}.marshal"


def test_a_class_made_from_cached_code_behaves_as_a_compiled_one(fresh: Path) -> None:
    compiled = _behaviour(_make())
    codecache.install()
    assert _behaviour(_make()) == compiled  # a miss: compiled now
    assert codecache._new
    codecache.save()
    assert _file(fresh).stat().st_mode & 0o077 == 0
    saved_at = _file(fresh).stat().st_mtime_ns

    codecache._compiled.clear()
    codecache._new = False
    del dataclasses.exec  # type: ignore[attr-defined]
    codecache.install()
    assert codecache._compiled  # read back
    assert _behaviour(_make()) == compiled  # hits
    assert not codecache._new
    codecache.save()  # nothing new: not written again
    assert _file(fresh).stat().st_mtime_ns == saved_at


def test_exec_of_anything_but_source_text_is_passed_on(fresh: Path) -> None:
    codecache.install()
    space: dict[str, object] = {}
    dataclasses.exec(compile("v = 41 + 1", "<t>", "exec"), space)  # type: ignore[attr-defined]
    assert space["v"] == 42


@pytest.mark.parametrize(
    "payload",
    [
        b"garbage",
        marshal.dumps({"x = 1": "not code"}),
        marshal.dumps(["a list"]),
        marshal.dumps({1: compile("x = 1", "<string>", "exec")}),
    ],
)
def test_a_damaged_or_odd_file_is_a_miss(fresh: Path, payload: bytes) -> None:
    matrix_cache.write_payload(_file(fresh), codecache._header(), payload)
    codecache.install()
    assert codecache._compiled == {}
    assert _behaviour(_make())  # compiled as usual


def test_a_file_from_another_python_or_with_a_wrong_checksum_is_not_read(fresh: Path) -> None:
    code = compile("x = 1", "<string>", "exec")
    matrix_cache.write_payload(
        _file(fresh), b"gpudoctor-dataclass-code 1\nsome other python\n", marshal.dumps({"x = 1": code})
    )
    codecache.install()
    assert codecache._compiled == {}
    matrix_cache.write_payload(_file(fresh), codecache._header(), marshal.dumps({"x = 1": code}))
    data = _file(fresh).read_bytes()
    _file(fresh).write_bytes(data[:-1] + bytes([data[-1] ^ 1]))
    del dataclasses.exec  # type: ignore[attr-defined]
    codecache.install()
    assert codecache._compiled == {}


def test_a_cache_others_can_write_is_not_read(fresh: Path) -> None:
    matrix_cache.write_payload(
        _file(fresh), codecache._header(), marshal.dumps({"x = 1": compile("x = 1", "<string>", "exec")})
    )
    os.chmod(fresh, 0o777)  # noqa: PTH101 - a folder anyone could have planted the file in
    codecache.install()
    assert codecache._compiled == {}


def test_a_disabled_cache_leaves_dataclasses_alone(fresh: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GPUDOCTOR_CACHE_DIR", "off")
    codecache.install()
    assert "exec" not in vars(dataclasses)
    codecache.save()
    assert not fresh.exists()


def test_the_cli_writes_the_cache_once_then_reads_it(tmp_path: Path) -> None:
    env = {**os.environ, "GPUDOCTOR_CACHE_DIR": str(tmp_path)}
    first = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "--help"], env=env, capture_output=True, text=True, check=True
    )
    cached = _file(tmp_path)
    entries = len(marshal.loads(matrix_cache.read_payload(cached, codecache._header()) or b"0"))
    assert entries > 10  # the methods of every dataclass `--help` makes
    written = cached.stat().st_mtime_ns
    again = subprocess.run(
        [sys.executable, "-m", "gpudoctor", "--help"], env=env, capture_output=True, text=True, check=True
    )
    assert again.stdout == first.stdout
    assert cached.stat().st_mtime_ns == written  # every method was found: nothing to write
