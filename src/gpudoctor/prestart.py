"""The slow children of a check, started first: before any other part of gpudoctor is imported.

A framework import takes seconds in its child process and decides how long a check takes; everything
else gpudoctor does (importing its probes, the CLI, the matrix, the rules) can happen meanwhile. So
the entry point calls `start(python)` first: it finds the target interpreter, looks in the target's
own prefix for the frameworks (the same cheap look `probes.python.surely_installed` takes), and
starts the package survey, the CUDA-library search, the NVML query, the reading of conda-meta and
each framework's child with
exactly the argv, environment and working directory the probes will ask the runner for. The runner hands such a
process to the probe that asks for it (`runner.prestart` / `SubprocessRunner.run`); one nobody asks
for is ended with the rest when the check ends. Stdlib only, and nothing heavier than the runner.

This module also holds what composing a child script takes (`script_source`, `child_env`), so that
it needs neither `probes` nor `facts`.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

from gpudoctor.distributions import FRAMEWORK_DISTRIBUTIONS

CHILD_FOLDER = Path(__file__).resolve().parent / "probes" / "child"
PRELUDE = "_prelude"
_PRELUDE_IMPORT = re.compile(r"^from _prelude import (?:\([^)]*\)|[^\n]*)\n", re.MULTILINE)
# The environment each framework's probe adds for its child (tests/test_prestart.py checks it is the probes').
FRAMEWORK_CHILD_ENV: dict[str, dict[str, str]] = {
    "tensorflow": {
        "TF_CPP_MIN_LOG_LEVEL": "0",
        "TF_CPP_MAX_VLOG_LEVEL": "1",
        "TF_FORCE_GPU_ALLOW_GROWTH": "true",
    },
}


def _read(name: str) -> str:
    return (CHILD_FOLDER / f"{name}.py").read_text(encoding="utf-8")


@functools.cache
def script_source(name: str) -> str:
    """The script as the child runs it: the shared prelude, then the script without its `from _prelude` line."""
    script = _read(name)
    body, count = _PRELUDE_IMPORT.subn("", script, count=1)
    if count != 1:
        raise ValueError(f"probes/child/{name}.py does not import from _prelude")
    return _read(PRELUDE) + "\n" + body


def child_env(base: Mapping[str, str], extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The user's environment for a child, minus what would import code from the working directory.

    An empty or relative PYTHONPATH entry means the working directory; PYTHONSAFEPATH (3.11+) keeps
    `python -c` from putting it first (the prelude removes it on older interpreters).
    """
    env = dict(base)
    env.update(extra or {})
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONSAFEPATH"] = "1"
    if "PYTHONPATH" in env:
        kept = [entry for entry in env["PYTHONPATH"].split(os.pathsep) if Path(entry).is_absolute()]
        if kept:
            env["PYTHONPATH"] = os.pathsep.join(kept)
        else:
            del env["PYTHONPATH"]
    return env


def nvml_child(env: Mapping[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """argv and environment of the driver probe's NVML query: `probes/nvml_query.py` run by gpudoctor's
    own interpreter, handed the folder of gpudoctor's nvidia-ml-py (found without importing it)."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("pynvml")
    except (ImportError, ValueError):
        spec = None
    folder = str(Path(spec.origin).parent) if spec is not None and spec.origin else None
    return own_child(CHILD_FOLDER.parent / "nvml_query.py", [folder] if folder else [], env)


def conda_child(meta: str, env: Mapping[str, str]) -> tuple[tuple[str, ...], dict[str, str]]:
    """argv and environment of the conda probe's reading of a conda-meta folder (`gpudoctor/conda_meta.py`)."""
    return own_child(Path(__file__).resolve().parent / "conda_meta.py", [meta], env)


def own_child(
    script_file: Path, args: Iterable[str], env: Mapping[str, str]
) -> tuple[tuple[str, ...], dict[str, str]]:
    """A script of gpudoctor's run by gpudoctor's own interpreter in isolated mode (`-I`: no working
    directory, no user site), with no PYTHON* variable of the user's."""
    script = script_file.read_text(encoding="utf-8")
    argv = (sys.executable, "-I", "-c", script, *args)
    return argv, {k: v for k, v in env.items() if not k.startswith("PYTHON")}


def canonical(name: str) -> str:
    """PEP 503 normalised distribution name (what packaging's canonicalize_name gives a valid name):
    runs of - _ . made one -, by str.replace (a regex cost more than the look it serves, for each of
    thousands of dist-info folders)."""
    name = name.replace("_", "-").replace(".", "-")
    while "--" in name:
        name = name.replace("--", "-")
    return name.lower()


def in_own_prefix(python: str, names: Iterable[str]) -> bool:
    """True when one of these distributions sits in the interpreter's own prefix (a venv or conda env):
    a look at `<prefix>/lib/python3.*/site-packages` (`Lib/site-packages` on Windows); False proves nothing."""
    if not python:
        return False
    wanted = {canonical(n) for n in names}
    return any(_dist_info_name(entry) in wanted for entry in _dist_infos(Path(python).parent.parent))


def _dist_infos(prefix: Path) -> Iterator[str]:
    """Names of the *.dist-info folders in the prefix's site-packages (os.scandir: thousands of them)."""
    sites = [str(prefix / "Lib" / "site-packages")]
    try:
        with os.scandir(prefix / "lib") as entries:
            sites[:0] = sorted(
                f"{e.path}{os.sep}site-packages" for e in entries if e.name.startswith("python3")
            )
    except OSError:
        pass
    for site in sites:
        try:
            with os.scandir(site) as entries:
                names = [e.name for e in entries if e.name.endswith(".dist-info") and e.name[0] != "."]
        except OSError:
            continue
        yield from names


def _dist_info_name(folder: str) -> str:
    return canonical(folder.removesuffix(".dist-info").rsplit("-", 1)[0])


def children(python: str, env: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """(script, environment) of each child a check of this interpreter surely runs."""
    return surveys(env) + frameworks(python, env)


def surveys(env: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The package survey and the library search: every check runs them (no look needed)."""
    wanted = [("python", child_env(env))]
    if sys.platform != "darwin":
        wanted.append(("libraries", child_env(env)))
    return wanted


def frameworks(python: str, env: Mapping[str, str]) -> list[tuple[str, dict[str, str]]]:
    """The frameworks found in the prefix (one look for all three), with their child's environment."""
    found = {_dist_info_name(folder) for folder in _dist_infos(Path(python).parent.parent)}
    return [
        (framework, child_env(env, FRAMEWORK_CHILD_ENV.get(framework)))
        for framework, names in FRAMEWORK_DISTRIBUTIONS.items()
        if found & {canonical(n) for n in names}
    ]


def start(python_option: str | None) -> None:
    """Start the children a check with this --python will run; quietly nothing when unsure."""
    from gpudoctor.conda_meta import choose_prefix
    from gpudoctor.runner import prestart
    from gpudoctor.target import choose_python

    env = dict(os.environ)
    try:
        cwd = str(Path.cwd())
        python, _ = choose_python(python_option, env)
        if not Path(python).is_file() or not os.access(python, os.X_OK):
            return  # the command says what is wrong with it
        for script, child in frameworks(python, env):  # the slowest first: a framework import takes seconds
            prestart((python, "-c", script_source(script)), env=child, cwd=cwd)
        for script, child in surveys(env):
            prestart((python, "-c", script_source(script)), env=child, cwd=cwd)
        if sys.platform != "darwin":
            argv, child = nvml_child(env)
            prestart(argv, env=child)
        conda = choose_prefix(python, env, windows=sys.platform == "win32")
        if conda is not None and (Path(conda[0]) / "conda-meta").is_dir():
            argv, child = conda_child(str(Path(conda[0]) / "conda-meta"), env)
            prestart(argv, env=child)
    except (OSError, ValueError):
        return
