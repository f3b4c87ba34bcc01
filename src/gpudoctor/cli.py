"""The command line: `gpudoctor check`, `gpudoctor explain`, `gpudoctor matrix`.

Only this module and `render/` import typer and rich. Heavy modules are imported inside the
commands so that `gpudoctor --help` stays fast. Exit codes: 0 no errors, 1 errors found (or
warnings with --fail-on warning, or no usable GPU with --require-gpu), 2 bad usage or an
internal error.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Generic, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from gpudoctor.facts import Facts
    from gpudoctor.matrix import Matrix

T = TypeVar("T")

app = typer.Typer(
    name="gpudoctor",
    help="Diagnose why TensorFlow, PyTorch or JAX does not use your NVIDIA GPU, and say how to fix it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class FailOn(str, Enum):
    error = "error"
    warning = "warning"


class UsageError(Exception):
    """Bad input from the user (a missing file, a broken facts file): exit 2 with one clear line."""


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


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False)
    console.soft_wrap = not console.is_terminal  # piped output keeps whole lines for pasting
    return console


def _load_matrix(path: Path | None) -> Matrix:
    from gpudoctor.matrix import MatrixError, load_matrix

    try:
        return load_matrix(str(path) if path else None)
    except MatrixError as exc:
        raise UsageError(str(exc)) from exc
    except OSError as exc:
        raise UsageError(f"cannot read matrix file {path}: {exc.strerror or exc}") from exc


def _load_facts(path: Path) -> Facts:
    import json

    from gpudoctor.facts import SCHEMA_VERSION, Facts
    from gpudoctor.serde import SerdeError, from_data

    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read facts file {path}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise UsageError(f"facts file {path} is not valid JSON: {exc}") from exc
    if isinstance(raw, dict) and "facts" in raw and "findings" in raw:
        raw = raw["facts"]  # a whole `--json` report works too
    if (
        isinstance(raw, dict)
        and isinstance(raw.get("schema_version"), int)
        and raw["schema_version"] > SCHEMA_VERSION
    ):
        raise UsageError(
            f"facts file {path} was written by a newer gpudoctor (schema {raw['schema_version']}; this one reads "
            f"{SCHEMA_VERSION}): upgrade with `pip install -U gpudoctor`"
        )
    try:
        return from_data(Facts, raw)
    except SerdeError as exc:
        raise UsageError(f"facts file {path} does not look like gpudoctor facts: {exc}") from exc


def _probe(python: str | None, timeout: float, show_progress: bool) -> Facts:
    from gpudoctor.collect import collect
    from gpudoctor.probes import PROBES
    from gpudoctor.probes.base import ProbeContext
    from gpudoctor.runner import SubprocessRunner
    from gpudoctor.target import select_target

    env = dict(os.environ)
    target = select_target(python, env, str(Path.cwd()))
    if python:
        path = Path(target.python)
        if not path.exists():
            broken = path.is_symlink()
            raise UsageError(
                f"--python {python}: "
                + (
                    "a link to an interpreter that no longer exists (recreate the environment)"
                    if broken
                    else "no such interpreter"
                )
            )
        if path.is_dir() or not os.access(path, os.X_OK):
            raise UsageError(f"--python {python}: not an executable program")
    ctx = ProbeContext(runner=SubprocessRunner(), env=env, target=target, child_timeout=timeout)
    # Framework probes wait for the package survey (25 s at most), then run a child under --timeout;
    # no probe may outlast that.
    probes = tuple(dataclasses.replace(p, timeout=min(p.timeout, timeout + 30)) for p in PROBES)
    if not show_progress:
        return collect(ctx, probes)
    console = _console(stderr=True)
    pending = {p.name for p in probes}
    with console.status("Examining the GPU stack…", spinner="dots") as status:

        def done(name: str, _state: object) -> None:
            pending.discard(name)
            if pending:
                status.update(f"Examining the GPU stack… waiting for {', '.join(sorted(pending))}")

        return collect(ctx, probes, on_done=done)


def _import_judging_and_rendering() -> None:
    """Import rules and renderers while the probes wait on their child processes."""
    import gpudoctor.engine
    import gpudoctor.render.json
    import gpudoctor.render.text  # noqa: F401


class _Background(Generic[T]):
    """Run a function in a thread; `result()` returns its value or re-raises its exception."""

    def __init__(self, fn: Callable[[], T]) -> None:
        self._value: T | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], T]) -> None:
        try:
            self._value = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            self._error = exc

    def result(self) -> T:
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@app.command()
def check(
    python: Annotated[
        str | None,
        typer.Option(
            "--python",
            metavar="PATH",
            help="Interpreter whose environment to diagnose. Default: the active venv, then the active "
            "conda env, then python3/python on PATH.",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print a JSON document instead of the report.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show probe details and notes.")] = False,
    save_facts: Annotated[
        Path | None,
        typer.Option("--save-facts", metavar="FILE", help="Also write the collected facts to FILE."),
    ] = None,
    facts_file: Annotated[
        Path | None,
        typer.Option("--facts", metavar="FILE", help="Diagnose saved facts instead of probing this machine."),
    ] = None,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", metavar="FILE", help="Use another compatibility matrix.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on errors only, or on warnings too.")
    ] = FailOn.error,
    require_gpu: Annotated[
        bool,
        typer.Option(
            "--require-gpu", help="Exit 1 unless a usable NVIDIA GPU was found (for GPU CI runners)."
        ),
    ] = False,
    timeout: Annotated[
        float,
        typer.Option("--timeout", metavar="SECONDS", min=1, help="Time limit for each framework probe."),
    ] = 60.0,
) -> None:
    """Probe this machine's GPU stack and report what is wrong, why, and how to fix it."""
    from gpudoctor.engine import diagnose
    from gpudoctor.model import Severity
    from gpudoctor.render.json import dumps_facts, dumps_report

    if facts_file is not None:
        facts = _load_facts(facts_file)
        matrix = _load_matrix(matrix_file)
    else:
        matrix_loader = _Background(lambda: _load_matrix(matrix_file))  # parse the YAML while probes run
        _Background(_import_judging_and_rendering)
        facts = _probe(python, timeout, show_progress=not json_output and sys.stderr.isatty())
        matrix = matrix_loader.result()
    if save_facts is not None:
        try:
            save_facts.write_text(dumps_facts(facts) + "\n", encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {save_facts}: {exc.strerror or exc}") from exc
    report = diagnose(facts, matrix)
    if json_output:
        typer.echo(dumps_report(report))
    else:
        from gpudoctor.render.text import render_report

        render_report(report, _console(), verbose=verbose)
    failed = report.count(Severity.ERROR) > 0
    if fail_on is FailOn.warning and report.count(Severity.WARNING) > 0:
        failed = True
    if require_gpu and not report.has_usable_gpu:
        if not json_output:
            _console().print("--require-gpu: no usable NVIDIA GPU was found", style="bold red")
        failed = True
    raise typer.Exit(1 if failed else 0)


@app.command()
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
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", metavar="FILE", help="Use another compatibility matrix.")
    ] = None,
) -> None:
    """Explain a finding code: what it means, why it happens, how to confirm and fix it."""
    import json

    from gpudoctor import explain as explanations

    if code is None:
        pages = [explanations.load(c) for c in explanations.all_codes()]
        if json_output:
            typer.echo(json.dumps([{"code": p.code, "title": p.title} for p in pages if p], indent=2))
            return
        console = _console()
        for page in pages:
            if page:
                console.print(f"[bold]{page.code}[/bold]  {page.title}")
        return
    page = explanations.load(code)
    if page is None:
        close = explanations.suggest(code)
        hint = f" Did you mean {' or '.join(close)}?" if close else ""
        raise UsageError(f"{code} is not a gpudoctor code.{hint} Run `gpudoctor explain` for the list.")
    machine_findings = []
    outcome = None
    if facts_file is not None:
        from gpudoctor.engine import diagnose

        report = diagnose(_load_facts(facts_file), _load_matrix(matrix_file))
        machine_findings = [f for f in report.findings if f.code == page.code]
        outcome = report.outcome(page.code)
    if json_output:
        from gpudoctor.render.json import finding_data

        document: dict[str, object] = {
            "code": page.code,
            "title": page.title,
            "sections": {name: page.section(name) for name in explanations.SECTIONS},
            "markdown": page.body,
        }
        if facts_file is not None:
            document["on_this_machine"] = [finding_data(f) for f in machine_findings]
            document["check"] = {"state": outcome.state, "detail": outcome.detail} if outcome else None
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    from rich.markdown import Markdown

    console = _console()
    console.print(f"[bold]{page.code}: {page.title}[/bold]")
    console.print()
    if facts_file is not None:
        from gpudoctor.render.text import finding_lines, print_lines

        if machine_findings:
            console.print("[bold]On this machine[/bold]")
            for finding in machine_findings:
                print_lines(console, finding_lines(finding, console))
        elif outcome is not None and outcome.state == "skip":
            console.print(f"On this machine: {page.code} did not apply ({outcome.detail}).", markup=False)
        else:
            console.print(f"[green]On this machine: {page.code} found nothing wrong.[/green]")
        console.print()
    if console.is_terminal:
        console.print(Markdown(page.body))
    else:  # piped: the Markdown source itself, never cropped to a terminal width
        console.print(page.body, markup=False, highlight=False)


@app.command("matrix")
def matrix_command(
    framework: Annotated[str | None, typer.Argument(help="tensorflow, torch or jax.")] = None,
    version: Annotated[str | None, typer.Argument(help="A release of that framework, e.g. 2.10.")] = None,
    driver: Annotated[
        str | None, typer.Option("--driver", metavar="VERSION", help="What can this NVIDIA driver run?")
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", metavar="FILE", help="Use another compatibility matrix.")
    ] = None,
) -> None:
    """Show and query the compatibility matrix."""
    from gpudoctor.matrix_query import MatrixQueryError, query

    matrix = _load_matrix(matrix_file)
    try:
        result = query(matrix, framework=framework, version=version, driver=driver)
    except MatrixQueryError as exc:
        raise UsageError(str(exc)) from exc
    if json_output:
        import json

        typer.echo(json.dumps(result.data, indent=2, ensure_ascii=False))
    else:
        _console().print(result.text, markup=False)


class FleetFormat(str, Enum):
    text = "text"
    markdown = "markdown"
    json = "json"


@app.command("fleet")
def fleet_command(
    reports: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="REPORT...",
            help="`gpudoctor check --json` reports or facts files from the nodes, or folders of them.",
            show_default=False,
        ),
    ] = None,
    output_format: Annotated[
        FleetFormat, typer.Option("--format", "-f", help="text, markdown or json.")
    ] = FleetFormat.text,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write there instead of stdout (- is stdout)."),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show info findings, every wording and the drivers.")
    ] = False,
    matrix_file: Annotated[
        Path | None, typer.Option("--matrix", metavar="FILE", help="Matrix for judging facts files.")
    ] = None,
    fail_on: Annotated[
        FailOn, typer.Option("--fail-on", help="Exit 1 on a node with errors only, or with warnings too.")
    ] = FailOn.error,
    expect: Annotated[
        str | None,
        typer.Option(
            "--expect",
            metavar="NODELIST",
            help="Nodes that must have reported, as a Slurm node list (gpu-[01-16]); absent ones fail.",
        ),
    ] = None,
) -> None:
    """Many nodes at once: their findings grouped by root cause, the healthy nodes, the unreadable ones."""
    from gpudoctor.fleet_cli import run_fleet

    try:
        code = run_fleet(
            reports or [],
            output_format=output_format.value,
            output=output,
            verbose=verbose,
            matrix_loader=lambda: _load_matrix(matrix_file),
            fail_on_warning=fail_on is FailOn.warning,
            expect=expect,
        )
    except ValueError as exc:  # FleetUsageError and a failed write
        raise UsageError(str(exc)) from exc
    raise typer.Exit(code)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"gpudoctor: error: {message}\n")
    raise SystemExit(2)


def main() -> None:
    try:
        app()
    except UsageError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.stderr.write("gpudoctor: interrupted\n")
        raise SystemExit(130) from None
    except Exception as exc:  # never a traceback for the user
        if os.environ.get("GPUDOCTOR_DEBUG"):
            raise
        _fail(f"internal error: {type(exc).__name__}: {exc} (set GPUDOCTOR_DEBUG=1 for the traceback)")
