"""gpudoctor: a command-line doctor for GPU deep-learning setups."""

# os.path on purpose: pathlib is not imported yet (and may not be) before sys.path is made safe.
# ruff: noqa: PTH109, PTH117, PTH119, PTH120

import os as _os
import sys as _sys

__version__ = "0.1.0"


def _keep_the_working_directory_off_sys_path() -> None:
    """gpudoctor never imports from the folder it is run in (a json.py or typing.py there).

    `python -m gpudoctor` puts that folder first on sys.path, and an empty or relative PYTHONPATH
    entry adds it too. Only when gpudoctor is the program being run, and never the folder that
    holds gpudoctor itself or a site-packages folder.
    """
    program = _os.path.basename(_sys.argv[0]) if _sys.argv else ""
    if program != "-m" and program.removesuffix(".exe").removesuffix("-script.py") != "gpudoctor":
        return
    try:
        cwd = _os.path.realpath(_os.getcwd())
    except OSError:
        cwd = ""
    own_root = _os.path.realpath(_os.path.dirname(_os.path.dirname(__file__)))

    def unsafe(entry: str) -> bool:
        if not entry or not _os.path.isabs(entry):
            return True
        real = _os.path.realpath(entry)
        site_folder = _os.path.basename(real) in ("site-packages", "dist-packages")
        return real == cwd and real != own_root and not site_folder

    _sys.path[:] = [entry for entry in _sys.path if not unsafe(entry)]


_keep_the_working_directory_off_sys_path()
