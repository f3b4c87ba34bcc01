"""Rules for this family (being built)."""

from __future__ import annotations
