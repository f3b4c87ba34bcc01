"""What a rule sees: the facts, the matrix, and helpers that write commands for *this* machine."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from gpudoctor.facts import Distribution, Facts
from gpudoctor.matrix import Matrix
from gpudoctor.model import Fix, Shell

Flavor = Literal["linux", "wsl", "windows", "macos", "unknown"]


@dataclass(frozen=True)
class RuleContext:
    facts: Facts
    matrix: Matrix

    @property
    def flavor(self) -> Flavor:
        p = self.facts.platform
        if p is None:
            return "unknown"
        if p.system == "Windows":
            return "windows"
        if p.system == "Darwin":
            return "macos"
        if p.system == "Linux":
            return "wsl" if p.wsl else "linux"
        return "unknown"

    @property
    def shell(self) -> Shell:
        return "powershell" if self.flavor == "windows" else "bash"

    @property
    def in_conda(self) -> bool:
        """The target interpreter belongs to a conda environment, so conda commands fit."""
        conda = self.facts.conda
        return conda is not None and conda.is_target

    @property
    def python_cmd(self) -> str:
        """How to call the target interpreter in a command line."""
        target = self.facts.target
        if target.selected_by in ("VIRTUAL_ENV", "CONDA_PREFIX") or not target.python:
            return "python"
        if target.selected_by == "PATH":
            return "python" if self.flavor == "windows" else "python3"
        return _quote(target.python, self.shell)

    def pip(self, *args: str) -> str:
        return " ".join([self.python_cmd, "-m", "pip", *(_quote(a, self.shell) for a in args)])

    def pip_install(self, *specs: str, options: tuple[str, ...] = ()) -> str:
        return self.pip("install", *options, *specs)

    def conda_install(self, *specs: str, channels: tuple[str, ...] = ("conda-forge",)) -> str:
        parts = ["conda", "install", "-y"]
        for channel in channels:
            parts += ["-c", channel]
        return " ".join(parts + [_quote(s, self.shell) for s in specs])

    def fix(self, summary: str, *commands: str, needs_admin: bool = False, needs_reboot: bool = False) -> Fix:
        return Fix(
            summary=summary,
            commands=commands,
            shell=self.shell,
            needs_admin=needs_admin,
            needs_reboot=needs_reboot,
        )

    def distribution(self, name: str) -> Distribution | None:
        """An installed distribution of the target interpreter, by any spelling of its name."""
        if self.facts.python is None:
            return None
        wanted = canonicalize_name(name)
        return next((d for d in self.facts.python.distributions if canonicalize_name(d.name) == wanted), None)


def _quote(arg: str, shell: Shell) -> str:
    if shell == "bash":
        return shlex.quote(arg)
    if arg and all(c.isalnum() or c in "-_.=/:\\+@" for c in arg):
        return arg
    return '"' + arg.replace('"', '`"') + '"'
