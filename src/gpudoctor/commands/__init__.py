"""Subcommands beyond check/explain/matrix, one module each.

A module here defines one typer-annotated function (options as `Annotated[..., typer.Option(...)]`,
heavy imports inside the function) and is registered by one line at the end of `cli.py`:

    _register("fleet", "fleet", "Many nodes' reports at once, grouped by root cause.")

The module is imported only when its subcommand runs or `gpudoctor --help` lists it.

It reuses `gpudoctor.pipeline` (load_facts, load_matrix, gather, judge, decide), renders through
`gpudoctor.render` and writes through `gpudoctor.output`; bad input raises `pipeline.UsageError`
(one line on stderr, exit 2); the exit code is `raise typer.Exit(code)`.
"""
