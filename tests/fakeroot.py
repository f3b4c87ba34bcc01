"""Fake Linux roots for the hardware probes: /dev nodes, /sys/module, /sys/bus/pci/devices, /proc, /etc."""

from __future__ import annotations

from pathlib import Path


def write(root: Path, path: str, text: str = "") -> Path:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target


def pci_function(root: Path, address: str, device: str, pci_class: str, driver: str | None) -> None:
    """/sys/bus/pci/devices/<address> with vendor 0x10de, as sysfs lays it out (driver as a symlink)."""
    folder = root / "sys/bus/pci/devices" / address
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vendor").write_text("0x10de\n", encoding="ascii")
    (folder / "device").write_text(f"0x{device}\n", encoding="ascii")
    (folder / "class").write_text(f"{pci_class}\n", encoding="ascii")
    if driver:
        drivers = root / "sys/bus/pci/drivers" / driver
        drivers.mkdir(parents=True, exist_ok=True)
        (folder / "driver").symlink_to(f"../../../bus/pci/drivers/{driver}")


def module(root: Path, name: str, version: str | None = None) -> None:
    folder = root / "sys/module" / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "initstate").write_text("live\n", encoding="ascii")
    if version:
        (folder / "version").write_text(version + "\n", encoding="ascii")


def nodes(root: Path, *names: str) -> None:
    for name in names:
        write(root, f"/dev/{name}")
