"""`gpudoctor collect -o facts.json`: the facts alone, redacted by default, for a bug report.

The file replays with `gpudoctor check --facts facts.json` and gives the same findings as a live
check on this machine (redaction keeps what the rules read).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer


def collect(
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="FILE", help="Write the facts to FILE (- is stdout)."),
    ] = "-",
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="PATH",
            help="Interpreter whose environment to examine. Default: the active venv, then the active "
            "conda env, then python3/python on PATH.",
        ),
    ] = None,
    no_redact: Annotated[
        bool,
        typer.Option(
            "--no-redact",
            help="Keep user and host names, GPU UUIDs and serials, and secret-looking values.",
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=1, help="Time limit for each framework probe."),
    ] = 60.0,
) -> None:
    """Collect this machine's facts into a file to attach to a bug report (redacted by default)."""
    from gpudoctor import pipeline
    from gpudoctor.delivery import facts_document
    from gpudoctor.output import OutputError, write_file

    if sys.stderr.isatty():
        from gpudoctor.render.progress import spinner

        with spinner(pipeline.probe_names()) as on_done:
            facts = pipeline.gather(python, timeout, on_done=on_done)
    else:
        facts = pipeline.gather(python, timeout)
    try:
        write_file(facts_document(facts, redact=not no_redact), output)
    except OutputError as exc:
        raise pipeline.UsageError(str(exc)) from exc
    if output != "-":
        how = "not redacted (--no-redact)" if no_redact else "redacted: user, host, GPU serials, secrets"
        sys.stderr.write(
            f"gpudoctor: facts saved to {output} ({how}); replay with `gpudoctor check --facts "
            f"{output}`{os.linesep}"
        )
