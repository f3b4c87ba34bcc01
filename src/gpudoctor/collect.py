"""Run the probes concurrently, each under its own deadline, and assemble `Facts`.

A probe that raises becomes state "crash", one that overruns its deadline becomes "timeout";
both keep the report going. Probe threads are daemons, so a probe stuck in a C call
(NVML on a wedged driver) cannot keep gpudoctor from exiting. Each probe's programs run in a
`runner.scope` of their own: when the probe's deadline passes they are ended at once and nothing
new is started for it; when `collect` returns, or is interrupted, every program any probe started
has been ended.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from gpudoctor import __version__
from gpudoctor.facts import Facts, ProbeStatus
from gpudoctor.probes.base import Probe, ProbeContext, ProbeUnavailable
from gpudoctor.runner import Scope, end_all_children, scope

TICK = 1.0  # seconds between `on_wait` calls while probes are pending


def collect(
    ctx: ProbeContext,
    probes: Sequence[Probe[Any]],
    on_done: Callable[[str, ProbeStatus], None] | None = None,
    on_wait: Callable[[Mapping[str, float]], None] | None = None,
) -> Facts:
    """`on_done(name, status)` as each probe finishes; `on_wait({name: seconds so far})` every second
    while some are still running, so a progress line can say which one it waits for, and how long."""
    results: queue.Queue[tuple[str, ProbeStatus, object]] = queue.Queue()
    started = time.monotonic()
    ctx = dataclasses.replace(ctx, started=started)
    deadlines = {p.name: started + p.timeout for p in probes}
    scopes: dict[str, Scope] = {}
    scopes_ready = threading.Lock()

    def work(probe: Probe[Any]) -> None:
        t0 = time.monotonic()
        with scope(probe.name, deadline=deadlines[probe.name]) as mine:
            with scopes_ready:
                scopes[probe.name] = mine
            try:
                value = probe.collect(ctx)
            except ProbeUnavailable as exc:
                status = ProbeStatus(
                    name=probe.name,
                    state="unavailable",
                    detail=str(exc),
                    seconds=round(time.monotonic() - t0, 3),
                )
                results.put((probe.name, status, None))
                return
            except Exception as exc:  # noqa: BLE001 - a probe bug must not take the report down
                status = ProbeStatus(
                    name=probe.name,
                    state="crash",
                    detail=f"{type(exc).__name__}: {exc}",
                    seconds=round(time.monotonic() - t0, 3),
                )
                results.put((probe.name, status, None))
                return
            seconds = round(time.monotonic() - t0, 3)
            status = ProbeStatus(name=probe.name, detail="; ".join(mine.notes), seconds=seconds)
            results.put((probe.name, status, value))

    values: dict[str, object] = {}
    statuses: dict[str, ProbeStatus] = {}
    try:
        for probe in probes:
            threading.Thread(target=work, args=(probe,), name=f"probe-{probe.name}", daemon=True).start()
        while len(statuses) < len(probes):
            pending = [n for n in deadlines if n not in statuses]
            now = time.monotonic()
            wait = max(0.0, min(deadlines[n] for n in pending) - now)
            if on_wait is not None:
                wait = min(wait, TICK)
            try:
                name, status, value = results.get(timeout=wait)
            except queue.Empty:
                now = time.monotonic()
                for n in pending:
                    if deadlines[n] <= now:
                        statuses[n] = ProbeStatus(
                            name=n,
                            state="timeout",
                            detail=f"no answer within {deadlines[n] - started:.0f} s",
                            seconds=round(now - started, 3),
                        )
                        with scopes_ready:
                            timed_out = scopes.get(n)
                        if timed_out is not None:
                            timed_out.end()  # its programs, now: a hung probe costs its deadline only
                        if on_done:
                            on_done(n, statuses[n])
                still = {n: round(now - started, 1) for n in pending if n not in statuses}
                if on_wait is not None and still:
                    on_wait(still)
                continue
            if name in statuses:  # finished after its deadline was already declared
                continue
            statuses[name] = status
            if value is not None:
                values[name] = value
            if on_done:
                on_done(name, status)
    finally:
        end_all_children()  # whatever a probe still runs (one declared timed out, or on Ctrl-C)

    ordered = tuple(statuses[p.name] for p in probes)
    return dataclasses.replace(
        Facts(gpudoctor_version=__version__, target=ctx.target),
        probes=ordered,
        **values,  # type: ignore[arg-type]
    )
