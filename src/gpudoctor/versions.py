"""Version parsing, once: every rule reads version text through these, never with its own regex.

Two kinds of version meet in gpudoctor: PEP 440 versions of Python packages ("2.15.1", "2.4.0+cu124")
and the dotted numbers of drivers, CUDA and cuDNN ("535.104.05", "12.2", "8.9.4"), which PEP 440 also
parses. Text that is not a version gives None, never an exception.
"""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

from gpudoctor import lazy_re

_MAJOR_MINOR = lazy_re.compile(r"^(\d+)\.(\d+)")


def parse_version(text: str | None) -> Version | None:
    """A PEP 440 version, or None for garbage (surrounding white space is ignored)."""
    if not text:
        return None
    try:
        return Version(text.strip())
    except InvalidVersion:
        return None


def release_of(version: str | None) -> Version | None:
    """The public release of a version, without its local part: "2.4.0+cu124" -> 2.4.0."""
    return parse_version(public_version(version)) if version else None


def public_version(version: str) -> str:
    """ "2.4.0+cu124" -> "2.4.0"."""
    return version.split("+")[0]


def local_part(version: str | None) -> str | None:
    """The local part of a version, if any: "2.4.0+cu124" -> "cu124"."""
    if version and "+" in version:
        return version.split("+", 1)[1]
    return None


def major_minor(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of a version that starts "N.N": "12.4.1" -> (12, 4); None for "12" or garbage."""
    match = _MAJOR_MINOR.match(version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


def minor_series(version: str | None) -> str | None:
    """ "11.3.1" -> "11.3"; None where the text does not start "N.N"."""
    key = major_minor(version)
    return f"{key[0]}.{key[1]}" if key else None


def major_of(version: str | None) -> int | None:
    """The leading number of a dotted version: "8.9.4" -> 8, "12" -> 12; None for garbage."""
    if not version:
        return None
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


def numbers(version: str | None, count: int) -> tuple[int, ...]:
    """The first `count` numbers anywhere in the text: "535.104.05" -> (535, 104) for count 2."""
    return tuple(int(p) for p in re.findall(r"\d+", version or "")[:count])


def series_key(series: str) -> Version:
    """A sort key for a release series ("2.15"); garbage sorts first."""
    return parse_version(series) or Version("0")


def at_least(version: str | None, minimum: str | None) -> bool:
    """`version` parses and is `minimum` or newer (False when either does not parse)."""
    left, right = parse_version(version), parse_version(minimum)
    return left is not None and right is not None and left >= right


def older(version: str | None, than: str | None) -> bool:
    """`version` parses and is older than `than` (False when either does not parse)."""
    left, right = parse_version(version), parse_version(than)
    return left is not None and right is not None and left < right
