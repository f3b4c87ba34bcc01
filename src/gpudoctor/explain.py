"""Explanations: one Markdown page per code in `explanations/`, with fixed headings."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

SECTIONS = ("What it means", "Why it happens", "How to confirm", "How to fix", "References")


@dataclass(frozen=True, kw_only=True)
class Explanation:
    code: str
    title: str
    body: str  # Markdown, starting with the first section heading

    def section(self, heading: str) -> str:
        match = re.search(rf"^## {re.escape(heading)}\n(.*?)(?=^## |\Z)", self.body, re.DOTALL | re.MULTILINE)
        return match.group(1).strip() if match else ""


def _folder() -> Path:
    return Path(__file__).resolve().parent / "explanations"


def all_codes() -> list[str]:
    return sorted(p.name[:-3] for p in _folder().iterdir() if re.fullmatch(r"GD\d{3}\.md", p.name))


def normalise(code: str) -> str:
    """Accept GD101, gd101 and 101, as `rustc --explain` does."""
    code = code.strip().upper()
    if code.isdigit():
        code = "GD" + code.zfill(3)
    return code


def load(code: str) -> Explanation | None:
    code = normalise(code)
    page = _folder().joinpath(f"{code}.md")
    if not re.fullmatch(r"GD\d{3}", code) or not page.is_file():
        return None
    text = page.read_text(encoding="utf-8")
    first, _, rest = text.partition("\n")
    title = first.lstrip("# ").split(":", 1)[-1].strip()
    return Explanation(code=code, title=title, body=rest.strip())


def suggest(code: str) -> list[str]:
    return difflib.get_close_matches(normalise(code), all_codes(), n=3, cutoff=0.6)
