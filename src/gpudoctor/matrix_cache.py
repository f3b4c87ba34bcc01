"""A cache of parsed matrix documents, keyed by the SHA-256 of the YAML text.

Parsing compat_matrix.yaml (importing PyYAML and building the document) is most of what loading
the matrix costs; the rows are then validated from the document as always. So the YAML stays the
source of truth: what is cached is the document a YAML parse gave for exactly this text (the file
name is the text's hash), never the validated rows, and every load validates the document again.

The cache is a convenience that must never hurt:
- stored with `marshal` (plain data only: no object is constructed and no code runs when it is
  read), behind a header that names the format, the Python version and the SHA-256 of the
  payload, so a truncated or corrupt file is a miss;
- read only from a folder and a file owned by this user and writable by no one else (what ssh
  asks of ~/.ssh): a cache that `sudo` would read from another user's home is ignored;
- written atomically (a temporary file beside it, then a rename), and only documents of plain
  types; any failure to read or write (no home, a read-only disk, a full disk) is a miss, silently.

Where: `$GPUDOCTOR_CACHE_DIR`, else `$XDG_CACHE_HOME/gpudoctor`, else `~/.cache/gpudoctor`
(`%LOCALAPPDATA%\\gpudoctor\\Cache` on Windows, `~/Library/Caches/gpudoctor` on macOS).
`GPUDOCTOR_CACHE_DIR=off` (or empty) turns it off.
"""

from __future__ import annotations

import hashlib
import marshal
import os
import stat
import sys
from collections.abc import Callable, Mapping
from contextlib import suppress
from pathlib import Path
from typing import Any

FORMAT = b"gpudoctor-matrix-document 1\n"
MAX_BYTES = 16 * 1024 * 1024
MIN_TEXT = 4096  # characters of YAML below which parsing is quicker than the cache
_PLAIN = (str, int, float, bool, type(None))


def cache_dir(env: Mapping[str, str] | None = None) -> Path | None:
    env = os.environ if env is None else env
    chosen = env.get("GPUDOCTOR_CACHE_DIR")
    if chosen is not None:
        return None if chosen in ("", "off") else Path(chosen)
    if sys.platform == "win32":
        base = env.get("LOCALAPPDATA")
        return Path(base, "gpudoctor", "Cache") if base else None
    home = env.get("HOME") or ""
    if sys.platform == "darwin":
        return Path(home, "Library", "Caches", "gpudoctor") if home else None
    xdg = env.get("XDG_CACHE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg, "gpudoctor")
    return Path(home, ".cache", "gpudoctor") if home and Path(home).is_absolute() else None


def document(text: str, parse: Callable[[], Any]) -> tuple[Any, Callable[[], None]]:
    """The parsed document for `text`: from the cache, or `parse()`.

    Returns (document, keep): call `keep()` once the document proved valid, to store it (a no-op
    when it came from the cache or cannot be stored). Texts under MIN_TEXT parse quickly and are
    not cached."""
    folder = cache_dir() if len(text) >= MIN_TEXT else None
    if folder is None:
        return parse(), _nothing
    key = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    path = folder / f"matrix-{key}.marshal"
    found = _read(path)
    if found is not None:
        return found, _nothing
    parsed = parse()
    payload = _payload(parsed)  # now: what validation does later cannot change what is stored
    return parsed, (lambda: _write(path, payload)) if payload is not None else _nothing


def _nothing() -> None:
    return None


def _header() -> bytes:
    return FORMAT + f"python {sys.version_info[0]}.{sys.version_info[1]}\n".encode()


def _private(info: os.stat_result) -> bool:
    if sys.platform == "win32":
        return True  # no owner bits to compare; the folder is the user's own profile
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def _read(path: Path) -> Any:
    payload = read_payload(path, _header())
    if payload is None:
        return None
    try:
        value = marshal.loads(payload)
    except (EOFError, ValueError, TypeError):
        return None
    return value if _plain(value) else None


def read_payload(path: Path, header: bytes) -> bytes | None:
    """The payload of a cache file written by `write_payload` with this header; None for a file that
    is missing, not private to this user, too large, of another format or whose checksum is wrong."""
    try:
        if not _private(path.parent.stat()):
            return None
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or not _private(info) or info.st_size > MAX_BYTES:
            return None
        with os.fdopen(fd, "rb") as handle:
            fd = -1
            data = handle.read(MAX_BYTES + 1)
    except OSError:
        return None
    finally:
        if fd >= 0:
            os.close(fd)
    digest_end = len(header) + 64
    if not data.startswith(header) or data[digest_end : digest_end + 1] != b"\n":
        return None
    payload = data[digest_end + 1 :]
    if hashlib.sha256(payload).hexdigest().encode() != data[len(header) : digest_end]:
        return None
    return payload


def _plain(value: Any, depth: int = 0) -> bool:
    """Only what a YAML safe load gives (and marshal can hold): no code objects, no bytes."""
    if depth > 64:
        return False
    if isinstance(value, _PLAIN):
        return True
    if isinstance(value, list):
        return all(_plain(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, _PLAIN) and _plain(v, depth + 1) for k, v in value.items())
    return False


def _payload(value: Any) -> bytes | None:
    if not _plain(value):
        return None
    try:
        return marshal.dumps(value)
    except ValueError:
        return None


def _write(path: Path, payload: bytes) -> None:
    write_payload(path, _header(), payload)


def write_payload(path: Path, header: bytes, payload: bytes) -> None:
    """Store `payload` behind `header` and its SHA-256, atomically, in a folder private to this user;
    any failure is silent (the cache is then a miss next time)."""
    data = header + hashlib.sha256(payload).hexdigest().encode() + b"\n" + payload
    folder = path.parent
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(folder.stat()):
            return
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            temporary.replace(path)
        except BaseException:
            with suppress(OSError):
                temporary.unlink()
            raise
    except OSError:
        return
