#!/usr/bin/env python3
"""Print the `pci_devices:` section of compat_matrix.yaml from a pci.ids file.

    python tools/pci_generations.py /usr/share/misc/pci.ids

Every NVIDIA (vendor 10de) device whose pci.ids name starts with a chip code name (GK104, GP102,
TU116, AD102, ...) is filed under that chip's generation; devices named without a chip code (old
chipsets, some boards) are left out rather than guessed.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

GENERATIONS = (
    ("GB", "Blackwell"),
    ("GH", "Hopper"),
    ("AD", "Ada Lovelace"),
    ("GA", "Ampere"),
    ("TU", "Turing"),
    ("GV", "Volta"),
    ("GP", "Pascal"),
    ("GM", "Maxwell"),
    ("GK", "Kepler"),
    ("GF", "Fermi"),
    ("GT2", "Tesla"),
    ("G8", "Tesla"),
    ("G9", "Tesla"),
)
CHIP = re.compile(r"^([A-Z]+[0-9]+[A-Z0-9]*)\b")


def nvidia_devices(text: str) -> list[tuple[int, str]]:
    devices = []
    inside = False
    for line in text.splitlines():
        if line.startswith("10de "):
            inside = True
            continue
        if inside and line and not line.startswith(("\t", "#")):
            break
        if inside and line.startswith("\t") and not line.startswith("\t\t"):
            device, _, name = line[1:].partition("  ")
            devices.append((int(device, 16), name.strip()))
    return devices


def generation(name: str) -> str | None:
    match = CHIP.match(name)
    if not match:
        return None
    return next((g for prefix, g in GENERATIONS if match.group(1).startswith(prefix)), None)


def main(argv: list[str]) -> int:
    path = Path(argv[1] if len(argv) > 1 else "/usr/share/misc/pci.ids")
    text = path.read_text(encoding="utf-8", errors="replace")
    version = re.search(r"#\s*Version:\s*(\S+)", text)
    groups: dict[str, list[int]] = {}
    for device, name in nvidia_devices(text):
        found = generation(name)
        if found:
            groups.setdefault(found, []).append(device)
    print("pci_devices:")
    for _, name in reversed(GENERATIONS):
        if name in groups:
            ids = " ".join(f"{d:04x}" for d in sorted(set(groups.pop(name))))
            print(f'  - {{generation: {name}, source: *pci_ids, ids: "{ids}"}}')
    print(f"# from pci.ids version {version.group(1) if version else '?'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
