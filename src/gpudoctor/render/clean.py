"""Text from the machine or a file, made safe to show: control characters become visible escapes.

A facts file, a package's metadata or a framework's `__version__` can carry terminal escapes that
retitle the window, clear the screen, rewrite report lines or write the clipboard (OSC 52), and
bidirectional-override characters that make a command read differently from what it runs. Every
renderer passes such strings through `visible()`; JSON escapes them by itself.
"""

from __future__ import annotations

import re

# C0 controls (tab and newline too: one field is one line), DEL, C1 controls, bidi overrides/isolates,
# and the line/paragraph separators that some terminals and editors treat as newlines.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\x1b": "\\x1b"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def visible(text: str) -> str:
    """`text` with every control character shown as a backslash escape (`\\x1b`, `\\n`, `\\u202e`)."""
    return _UNSAFE.sub(_escape, text) if _UNSAFE.search(text) else text


def visible_lines(text: str) -> list[str]:
    """For multi-line text (a log excerpt): split on newlines, then make each line safe."""
    return [visible(line) for line in text.splitlines()]


_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def json_safe(document: str) -> str:
    """A JSON text with the characters json.dumps(ensure_ascii=False) leaves raw but a terminal or an
    editor would act on (C1 controls, bidi overrides, line separators) written as \\u escapes: the
    same data, safe to `cat`."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", document)
