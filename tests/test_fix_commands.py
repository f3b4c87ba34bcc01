"""Fix commands are safe to paste: scanned over every fix of every machine in tests/machines/."""

from __future__ import annotations

import re

import pytest

from gpudoctor.rules.recipes import ld_library_path_without, prepend_path
from tests.test_machines import machine_files, run_machine

SEARCH_PATHS = ("LD_LIBRARY_PATH", "PATH", "LIBRARY_PATH", "CPATH", "PYTHONPATH")


def every_command() -> list[tuple[str, str, str]]:
    found = []
    for path in machine_files():
        report, _ = run_machine(path)
        for finding in report.findings:
            for fix in finding.fixes:
                if fix.shell == "bash":
                    found += [(path.stem, finding.code, command) for command in fix.commands]
    return found


def empty_entry(command: str) -> str | None:
    """The search path `command` extends so that an unset variable leaves an empty entry (`X:$VAR`,
    `$VAR:X`), which the loader and the shell read as the current directory."""
    for name in SEARCH_PATHS:
        guarded = command.replace(f"${{{name}:+:${name}}}", "").replace(f"${{{name}:+${name}:}}", "")
        if re.search(rf"(?<![\w{{]){name}=[^\s;|&]*(:\$\{{?{name}\b|\$\{{?{name}\}}?:)", guarded):
            return name
    return None


def test_every_fix_that_extends_a_search_path_leaves_no_empty_entry() -> None:
    commands = every_command()
    assert len(commands) > 100, "too few fix commands to mean anything"
    extending = [c for c in commands if re.search(r"(LD_LIBRARY_PATH|PATH)=.*\$\{?(LD_LIBRARY_)?PATH", c[2])]
    assert extending, "no machine has a fix that extends a search path"
    bad = [c for c in commands if empty_entry(c[2])]
    assert not bad, "fixes that put the current directory on a search path:\n" + "\n".join(map(str, bad))


@pytest.mark.parametrize(
    "command",
    [
        "export LD_LIBRARY_PATH=/usr/local/cuda/lib64:$LD_LIBRARY_PATH",
        "export PATH=$PATH:/usr/local/cuda/bin",
        "echo 'export LD_LIBRARY_PATH=$CONDA_PREFIX/lib:${LD_LIBRARY_PATH}' > x.sh",
    ],
)
def test_the_scan_sees_an_empty_entry(command: str) -> None:
    assert empty_entry(command) is not None


def test_the_path_recipes_are_guarded() -> None:
    assert prepend_path("PATH", "/a", "/b") == "export PATH=/a:/b${PATH:+:$PATH}"
    assert empty_entry(prepend_path("LD_LIBRARY_PATH", "/x")) is None
    assert "-e ''" in ld_library_path_without(["/x"])  # empty entries are dropped, not kept
