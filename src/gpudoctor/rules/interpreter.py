"""GD508: the target interpreter itself rules out every GPU build (a 32-bit Python)."""

from __future__ import annotations

from collections.abc import Iterator

from gpudoctor.model import Severity, Verdict
from gpudoctor.rules import causes
from gpudoctor.rules.context import RuleContext
from gpudoctor.rules.registry import rule


@rule(
    "GD508",
    "The Python is 64-bit",
    requires=causes.BROKEN_PYTHON,
    needs=("python",),
    blocks_gpu=True,
    problem="This Python is 32-bit: no TensorFlow, PyTorch or JAX GPU build exists for it",
    part="python",
)
def thirty_two_bit_python(ctx: RuleContext) -> Iterator[Verdict]:
    py = ctx.facts.python
    assert py is not None  # needs=("python",)
    if py.bits != 32:
        return
    version = ".".join(py.version.split(".")[:2]) if py.version else ""
    if ctx.flavor == "windows":
        fix = ctx.fix(
            "Install the 64-bit Python from python.org (the 'Windows installer (64-bit)'), then create the "
            "environment with it and install the framework there",
            f"py -{version}-64 -m venv $HOME\\venvs\\gpu"
            if version
            else "py -3-64 -m venv $HOME\\venvs\\gpu",
            "& $HOME\\venvs\\gpu\\Scripts\\python.exe -c \"import struct; print(struct.calcsize('P') * 8)\"",
        )
    else:
        fix = ctx.fix(
            "Use a 64-bit (x86_64 or aarch64) Python: GPU wheels exist only for those; on a 32-bit operating "
            "system that means a 64-bit one",
            "python3 -c \"import platform, struct; print(platform.machine(), struct.calcsize('P') * 8)\"",
        )
    yield Verdict(
        severity=Severity.ERROR,
        message=f"The target Python {py.version or ''} is a 32-bit build ({py.executable or 'the target'}): "
        "pip finds no TensorFlow, PyTorch or JAX wheel with GPU support for it".replace("  ", " "),
        why="TensorFlow, PyTorch and JAX publish GPU builds only for 64-bit Python (x86_64 and aarch64). "
        "On a 32-bit interpreter `pip install torch` fails with 'No matching distribution found' or "
        "finds only ancient, unrelated releases, and nothing can use CUDA.",
        seen=(f"Python {py.version or '?'}, {py.bits}-bit, at {py.executable or '?'}",),
        fixes=(fix,),
    )
