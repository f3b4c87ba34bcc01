"""Renderers turn a `pipeline.Run` into text; they never judge and never probe.

One module per output format, chosen from `FORMATS` below: a new format is one file here with a
`render(run, options) -> str` function, and one row in the table. Modules are imported only when
their format is asked for, so `gpudoctor --help` stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gpudoctor.pipeline import Run
    from gpudoctor.render.screen import Screen


@dataclass(frozen=True, kw_only=True)
class RenderOptions:
    verbose: bool = False
    screen: Screen | None = None  # where text goes: width, colour, terminal; None = plain, 80 columns
    extras: dict[str, str] = field(default_factory=dict)


Renderer = Callable[["Run", RenderOptions], str]


@dataclass(frozen=True, kw_only=True)
class Format:
    name: str
    module: str  # gpudoctor.render.<name>, which defines `render(run, options) -> str`
    help: str


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(name="text", module="gpudoctor.render.text", help="the report for a person at a terminal"),
        Format(name="json", module="gpudoctor.render.json", help="a JSON document (see docs/schema/)"),
        Format(name="markdown", module="gpudoctor.render.markdown", help="Markdown for a GitHub issue"),
        Format(name="junit", module="gpudoctor.render.junit", help="JUnit XML, one test case per check"),
        Format(name="github", module="gpudoctor.render.github", help="GitHub Actions annotations"),
    )
}


def renderer(name: str) -> Renderer:
    """The `render` function of a format in `FORMATS`."""
    render: Renderer = importlib.import_module(FORMATS[name].module).render
    return render
