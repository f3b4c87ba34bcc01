"""Run gpudoctor in this process and write its peak memory to a file: `python _rusage.py OUT ARGS...`.

OUT gets {"self_kib": peak RSS of gpudoctor's own process, "children_kib": the largest peak RSS
among the programs it ran (and theirs)}. gpudoctor runs exactly as its entry point runs it; only
its last step, `os._exit`, is preceded by the measurement.
"""

import json
import os
import resource
import sys
from pathlib import Path

out, sys.argv = sys.argv[1], ["gpudoctor", *sys.argv[2:]]
_exit = os._exit


def _report() -> None:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    Path(out).write_text(json.dumps({"self_kib": own, "children_kib": children}), encoding="utf-8")


def _measured_exit(code: int) -> None:
    _report()
    _exit(code)


os._exit = _measured_exit  # type: ignore[assignment]
try:
    from gpudoctor.entry import main

    main()
finally:
    _report()
