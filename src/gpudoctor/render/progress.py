"""The spinner on stderr while the probes run, naming the ones still pending."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console

from gpudoctor.facts import ProbeStatus


@contextmanager
def spinner(names: Sequence[str]) -> Iterator[Callable[[str, ProbeStatus], None]]:
    """Yields the `on_done` callback for `pipeline.gather`."""
    console = Console(stderr=True, highlight=False)
    pending = set(names)
    with console.status("Examining the GPU stack…", spinner="dots") as status:

        def done(name: str, _state: ProbeStatus) -> None:
            pending.discard(name)
            if pending:
                status.update(f"Examining the GPU stack… waiting for {', '.join(sorted(pending))}")

        yield done
