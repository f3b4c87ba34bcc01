"""The `gpudoctor plan` subcommand: one typer function; the work is in `plan.py` and `render/plan.py`.

Exit codes: 0 a plan runs on this machine as it is (with --all: for at least one framework), 1 nothing
fits or the machine must change first, 2 bad usage (an unknown framework, release, GPU or option).
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from gpudoctor.commands.common import MatrixOption, gather

if TYPE_CHECKING:
    from gpudoctor.facts import Facts
    from gpudoctor.matrix import Matrix
    from gpudoctor.plan import Plan

PLAN_PROBES = ("platform", "driver", "environment", "conda", "python")


class Manager(str, Enum):
    pip = "pip"
    conda = "conda"


class OsName(str, Enum):
    linux = "linux"
    wsl = "wsl"
    windows = "windows"
    macos = "macos"


class Format(str, Enum):
    text = "text"
    json = "json"
    markdown = "markdown"


def plan(
    framework: Annotated[
        str | None, typer.Argument(help="tensorflow, torch or jax (omit with --all).", show_default=False)
    ] = None,
    version: Annotated[
        str | None,
        typer.Argument(
            help="A release to check, e.g. 2.10; default: the newest that fits.", show_default=False
        ),
    ] = None,
    all_frameworks: Annotated[
        bool, typer.Option("--all", help="One table for TensorFlow, PyTorch and JAX.")
    ] = False,
    driver: Annotated[
        str | None,
        typer.Option("--driver", metavar="VERSION", help="Plan for this NVIDIA driver (e.g. 535.54)."),
    ] = None,
    gpu: Annotated[
        str | None, typer.Option("--gpu", metavar="NAME", help='Plan for this GPU model (e.g. "RTX 3060").')
    ] = None,
    compute_capability: Annotated[
        str | None,
        typer.Option(
            "--compute-capability", metavar="X.Y", help="Plan for a GPU of this compute capability."
        ),
    ] = None,
    python_version: Annotated[
        str | None, typer.Option("--python-version", metavar="X.Y", help="Plan for this Python.")
    ] = None,
    manager: Annotated[
        Manager | None, typer.Option("--manager", help="pip (virtual environments) or conda.")
    ] = None,
    os_name: Annotated[OsName | None, typer.Option("--os", help="Plan for this operating system.")] = None,
    python: Annotated[
        str | None,
        typer.Option(
            "--python", metavar="PATH", help="Read this interpreter's Python version (default: as check)."
        ),
    ] = None,
    facts_file: Annotated[
        Path | None,
        typer.Option(
            "--facts", metavar="FILE", help="Plan for the machine saved in FILE (`check --save-facts`)."
        ),
    ] = None,
    matrix_file: MatrixOption = None,
    output_format: Annotated[Format, typer.Option("--format", help="Output format.")] = Format.text,
    planned_facts_file: Annotated[
        Path | None,
        typer.Option(
            "--planned-facts",
            metavar="FILE",
            help="Also write the facts of the machine as the plan leaves it (replay: `gpudoctor check --facts`).",
        ),
    ] = None,
) -> None:
    """Say which TensorFlow, PyTorch or JAX release will use this machine's GPU, and the exact commands."""
    from gpudoctor import pipeline
    from gpudoctor import plan as planning
    from gpudoctor.facts import Facts
    from gpudoctor.render.plan import render

    if all_frameworks and (version is not None or framework is not None):
        raise pipeline.UsageError(
            "--all plans the newest release of every framework: give no framework or VERSION"
        )
    if not all_frameworks and framework is None:
        raise pipeline.UsageError("name a framework (tensorflow, torch or jax) or use --all")
    if all_frameworks and planned_facts_file is not None:
        raise pipeline.UsageError("--planned-facts writes one planned machine: name one framework, not --all")
    try:
        chosen = planning.normalise_framework(framework) if framework is not None else None
        matrix = pipeline.load_matrix(matrix_file)
        if version is not None and chosen is not None:
            planning.check_requested(matrix, chosen, version)

        def machine_of(facts: Facts, origin: str) -> planning.Machine:
            return planning.machine_from_facts(
                facts,
                matrix,
                origin=origin,
                driver=driver,
                gpu=gpu,
                compute_capability=compute_capability,
                python_version=python_version,
                manager=manager.value if manager is not None else None,
                os_name=os_name.value if os_name is not None else None,
            )

        machine_of(Facts(), "")  # bad options fail before any probing
        if facts_file is not None:
            machine = machine_of(pipeline.load_facts(facts_file), f"facts file {facts_file.name}")
        else:
            machine = machine_of(gather(python, 30.0, only=PLAN_PROBES), "this machine")
        if chosen is None:
            plans = planning.plan_all(matrix, machine)
        else:
            plans = [planning.make_plan(matrix, machine, chosen, version)]
    except planning.PlanError as exc:
        raise pipeline.UsageError(str(exc)) from exc
    if planned_facts_file is not None:
        _write_planned(plans[0], matrix, planned_facts_file)
    from gpudoctor.output import write_stdout

    write_stdout(render(plans, output_format.value, table=chosen is None))
    raise typer.Exit(planning.exit_code(plans))


def _write_planned(plan: Plan, matrix: Matrix, path: Path) -> None:
    import sys

    from gpudoctor.output import write_file
    from gpudoctor.plan import planned_facts
    from gpudoctor.render.json import dumps_facts

    facts = planned_facts(plan, matrix)
    if facts is None:
        sys.stderr.write(f"gpudoctor: {path} not written: the plan installs nothing on this machine\n")
        return
    write_file(dumps_facts(facts) + "\n", path)
