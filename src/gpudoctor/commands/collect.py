"""`gpudoctor collect -o facts.json`: the facts alone, redacted by default, for a bug report.

The file replays with `gpudoctor check --facts facts.json` and gives the same findings as a live
check on this machine (redaction keeps what the rules read).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from gpudoctor.commands.common import NoRedactOption, PythonOption, TimeoutOption, gather


def collect(
    output: Annotated[
        str,
        typer.Option("--output", "-o", metavar="FILE", help="Write the facts to FILE (- is stdout)."),
    ] = "-",
    python: PythonOption = None,
    no_redact: NoRedactOption = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Collect this machine's facts into a file to attach to a bug report (redacted by default)."""
    from gpudoctor import pipeline
    from gpudoctor.delivery import facts_document
    from gpudoctor.output import OutputError, write_file

    facts = gather(python, timeout)
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
