"""The command line: options and wiring only.

`gpudoctor check`, `explain` and `matrix` are defined here; the work is in `pipeline.py` (gather →
judge → decide) and `render/` (one module per output format). A new subcommand is a module in
`commands/` with one typer-annotated function, registered by one `_register` line at the end of this
file. A subcommand is built (its module imported, its options made) only when it runs or is listed
by `gpudoctor --help`: building all six took a tenth of `check`'s time.
Only this module, `commands/` and `render/` import typer and rich. A plain `gpudoctor check` does
not come here at all: the entry point reads it and runs `checking.run` itself (see checking.py).
Heavy modules are imported inside the commands so that `gpudoctor --help` stays fast. Exit codes:
0 no errors, 1 errors found (or warnings with --fail-on warning, or no usable GPU with
--require-gpu), 2 bad usage or an internal error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from gpudoctor.commands.common import MatrixOption, NoRedactOption, PythonOption, TimeoutOption
from gpudoctor.pipeline import UsageError

# name -> (the subcommand's function, found when it is first built; its line in `gpudoctor --help`),
# in the order `--help` lists them
_SUBCOMMANDS: dict[str, tuple[Callable[[], Callable[..., Any]], str]] = {}


class _Subcommands(MutableMapping[str, Any]):
    """The group's subcommands by name (every one of `_SUBCOMMANDS`, in order), each built on first use."""

    def __init__(self, built: dict[str, Any]) -> None:
        self._built = built

    def __getitem__(self, name: str) -> Any:
        if name not in self._built:
            if name not in _SUBCOMMANDS:
                raise KeyError(name)
            function, short_help = _SUBCOMMANDS[name]
            one = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
            one.command(name, short_help=short_help)(function())
            self._built[name] = typer.main.get_command(one)
        return self._built[name]

    def __setitem__(self, name: str, command: Any) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*_SUBCOMMANDS, *(n for n in self._built if n not in _SUBCOMMANDS)])

    def __len__(self) -> int:
        return len(set(_SUBCOMMANDS) | set(self._built))


class _Group(TyperGroup):
    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = _Subcommands(dict(self.commands))


app = typer.Typer(
    name="gpudoctor",
    cls=_Group,
    help="Diagnose why TensorFlow, PyTorch or JAX does not use your NVIDIA GPU, and say how to fix it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help and usage errors: typer's rich formatting imports rich.markdown and markdown-it
    # (~0.15 s), which doubled the time of `gpudoctor --help` (issue #12: <= 12x `python -c pass`)
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


class Framework(str, Enum):
    tensorflow = "tensorflow"
    torch = "torch"
    jax = "jax"


def _version(value: bool) -> None:
    if value:
        from gpudoctor import __version__

        typer.echo(f"gpudoctor {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Diagnose why TensorFlow, PyTorch or JAX does not use your NVIDIA GPU, and say how to fix it."""


_FORMATS_HELP = "text, json, markdown, junit or github"


def check(
    python: PythonOption = None,
    output_format: Annotated[
        str,
        typer.Option("--format", "-f", metavar="FORMAT", help=f"Output format: {_FORMATS_HELP}."),
    ] = "text",
    json_output: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output",
            "-o",
            metavar="FILE",
            help="Write the report to FILE (atomically; - is stdout). With a format other than text, "
            "the text report still goes to stdout.",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show probe details and notes.")] = False,
    save_facts: Annotated[
        str | None,
        typer.Option(
            "--save-facts", metavar="FILE", help="Also write the collected facts to FILE (- is stdout)."
        ),
    ] = None,
    no_redact: NoRedactOption = False,
    facts_file: Annotated[
        Path | None,
        typer.Option("--facts", metavar="FILE", help="Diagnose saved facts instead of probing this machine."),
    ] = None,
    matrix_file: MatrixOption = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on errors only, or on warnings too.")
    ] = FailOn.error,
    require_gpu: Annotated[
        bool,
        typer.Option(
            "--require-gpu", help="An error (exit 1) unless a usable NVIDIA GPU was found (GPU CI runners)."
        ),
    ] = False,
    require: Annotated[
        list[Framework] | None,
        typer.Option(
            "--require",
            metavar="FRAMEWORK",
            help="An error (exit 1) unless this framework (tensorflow, torch, jax) sees a GPU; repeatable.",
        ),
    ] = None,
    no_annotations: Annotated[
        bool,
        typer.Option(
            "--no-annotations",
            help="Under GitHub Actions, no annotations and no step summary.",
        ),
    ] = False,
    timeout: TimeoutOption = 60.0,
) -> None:
    """Probe this machine's GPU stack and report what is wrong, why, and how to fix it."""
    from gpudoctor.checking import CheckOptions, run

    options = CheckOptions(
        python=python,
        output_format=output_format,
        json_output=json_output,
        output=output,
        verbose=verbose,
        save_facts=save_facts,
        no_redact=no_redact,
        facts_file=facts_file,
        matrix_file=matrix_file,
        fail_on=fail_on.value,
        require_gpu=require_gpu,
        require=tuple(f.value for f in require or ()),
        no_annotations=no_annotations,
        timeout=timeout,
    )
    raise typer.Exit(run(options))


def explain(
    code: Annotated[
        str | None, typer.Argument(help="A finding code such as GD101 (or 101). Omit to list all.")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    facts_file: Annotated[
        Path | None,
        typer.Option(
            "--facts", metavar="FILE", help="Show what this code found on the machine saved in FILE."
        ),
    ] = None,
    matrix_file: MatrixOption = None,
) -> None:
    """Explain a finding code: what it means, why it happens, how to confirm and fix it."""
    from gpudoctor import explain as explanations
    from gpudoctor import pipeline
    from gpudoctor.output import write_stdout
    from gpudoctor.render import explain as render
    from gpudoctor.render.screen import Screen

    if code is None:
        pages = [p for p in (explanations.load(c) for c in explanations.all_codes()) if p]
        write_stdout(render.render_list(pages, as_json=json_output, screen=Screen.of()))
        return
    page = explanations.load(code)
    if page is None:
        close = explanations.suggest(code)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(f"{code} is not a gpudoctor code.{hint} Run `gpudoctor explain` for the list.")
    on_machine = None
    if facts_file is not None:
        report = pipeline.judge(pipeline.load_facts(facts_file), pipeline.load_matrix(matrix_file))
        on_machine = ([f for f in report.findings if f.code == page.code], report.outcome(page.code))
    write_stdout(render.render_page(page, as_json=json_output, on_machine=on_machine, screen=Screen.of()))


def matrix_command(
    framework: Annotated[str | None, typer.Argument(help="tensorflow, torch or jax.")] = None,
    version: Annotated[str | None, typer.Argument(help="A release of that framework, e.g. 2.10.")] = None,
    driver: Annotated[
        str | None, typer.Option("--driver", metavar="VERSION", help="What can this NVIDIA driver run?")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    matrix_file: MatrixOption = None,
) -> None:
    """Show and query the compatibility matrix."""
    from gpudoctor.matrix_query import MatrixQueryError, query
    from gpudoctor.output import write_stdout
    from gpudoctor.pipeline import load_matrix

    matrix = load_matrix(matrix_file)
    try:
        result = query(matrix, framework=framework, version=version, driver=driver)
    except MatrixQueryError as exc:
        raise UsageError(str(exc)) from exc
    if json_output:
        import json

        write_stdout(json.dumps(result.data, indent=2, ensure_ascii=False) + "\n")
    else:
        from gpudoctor.render.screen import Screen

        console, buffer = Screen.of().console()
        console.print(result.text, markup=False)
        write_stdout(buffer.getvalue())


def main() -> None:
    from gpudoctor.guard import guarded

    guarded(app)


def _register(module: str, name: str, short_help: str) -> None:
    """Add the subcommand `name`: the function of that name in `gpudoctor.commands.<module>`, listed
    in `gpudoctor --help` with `short_help` (click would cut its docstring at 45 characters). The
    module is imported only when the subcommand is built."""

    def function() -> Callable[..., Any]:
        import importlib

        found: Callable[..., Any] = getattr(importlib.import_module(f"gpudoctor.commands.{module}"), name)
        return found

    _SUBCOMMANDS[name] = (function, short_help)


_SUBCOMMANDS["check"] = (
    lambda: check,
    "Find what keeps TensorFlow, PyTorch or JAX off the GPU, and how to fix it.",
)
_SUBCOMMANDS["explain"] = (
    lambda: explain,
    "Explain a finding code (GD101): cause, how to confirm, how to fix.",
)
_SUBCOMMANDS["matrix"] = (lambda: matrix_command, "Show and query the compatibility matrix.")

# Subcommands in their own modules (gpudoctor/commands/<name>.py), one line each; the blank lines
# keep two helpers' registrations from touching in a merge.
_register("collect", "collect", "Save this machine's facts (redacted) for a bug report.")

_register("fleet", "fleet", "Many nodes' reports at once, grouped by root cause.")

_register("plan", "plan", "Which framework release will use this GPU, and the commands.")
