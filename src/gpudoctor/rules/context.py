"""What a rule sees: the facts, the matrix, and helpers that write commands for *this* machine."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from packaging.utils import canonicalize_name

from gpudoctor.facts import Distribution, Facts
from gpudoctor.matrix import Matrix
from gpudoctor.model import Fix, Shell, Where

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
    def variables(self) -> Mapping[str, str]:
        """The watched environment variables of the diagnosed run; empty when the facts have none."""
        env = self.facts.environment
        return env.variables if env is not None else {}

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

    @property
    def conda_target(self) -> tuple[str, ...]:
        """conda's arguments that name the diagnosed environment (`-n NAME` or `-p PREFIX`), so a
        command acts on it whichever environment is active; () when the target is not a conda env."""
        conda = self.facts.conda
        if conda is not None and conda.is_target and conda.prefix:
            return ("-n", conda.env_name) if conda.env_name else ("-p", conda.prefix)
        python = self.facts.python
        if python is not None and python.origin == "conda" and python.prefix:
            return ("-p", python.prefix)
        return ()

    def conda_install(self, *specs: str, channels: tuple[str, ...] = ("conda-forge",)) -> str:
        args = [*self.conda_target]
        for channel in channels:
            args += ["-c", channel]
        return " ".join(["conda", "install", "-y", *(_quote(a, self.shell) for a in [*args, *specs])])

    def conda_remove(self, *names: str, force: bool = False) -> str:
        """`conda remove` in the diagnosed environment; `--force` (keep what depends on the package)
        only when that environment is named, never in whichever one happens to be active."""
        target = self.conda_target
        parts = ["conda", "remove", "-y", *(_quote(a, self.shell) for a in target)]
        if force and target:
            parts.append("--force")
        return " ".join(parts + [_quote(n, self.shell) for n in names])

    def fix(
        self,
        summary: str,
        *commands: str,
        needs_admin: bool = False,
        needs_reboot: bool = False,
        where: Where = "",
    ) -> Fix:
        return Fix(
            summary=summary,
            commands=commands,
            shell=self.shell,
            needs_admin=needs_admin,
            needs_reboot=needs_reboot,
            where=where,
        )

    @property
    def in_container(self) -> bool:
        p = self.facts.platform
        return p is not None and p.container is not None

    def fix_on_host(
        self, summary: str, *commands: str, needs_admin: bool = False, needs_reboot: bool = False
    ) -> Fix:
        """A fix for the machine that runs the containers (docker, nvidia-ctk, the driver): labelled
        "on the host" when gpudoctor ran inside a container, where these commands do not work."""
        where: Where = "host" if self.in_container else ""
        return self.fix(summary, *commands, needs_admin=needs_admin, needs_reboot=needs_reboot, where=where)

    def fix_in_container(self, summary: str, *commands: str, needs_admin: bool = False) -> Fix:
        """A fix run inside the container gpudoctor ran in (labelled so, beside the host's fixes)."""
        where: Where = "container" if self.in_container else ""
        return self.fix(summary, *commands, needs_admin=needs_admin, where=where)

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
