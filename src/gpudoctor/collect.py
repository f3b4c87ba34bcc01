"""Run the probes concurrently, each under its own deadline, and assemble `Facts`.

A probe that raises becomes state "crash", one that overruns its deadline becomes "timeout";
both keep the report going. Probe threads are daemons, so a probe stuck in a C call
(NVML on a wedged driver) cannot keep gpudoctor from exiting.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from gpudoctor import __version__
from gpudoctor.facts import Facts, ProbeStatus
from gpudoctor.probes.base import Probe, ProbeContext, ProbeUnavailable


def collect(
    ctx: ProbeContext,
    probes: Sequence[Probe[Any]],
    on_done: Callable[[str, ProbeStatus], None] | None = None,
) -> Facts:
    results: queue.Queue[tuple[str, ProbeStatus, object]] = queue.Queue()
    started = time.monotonic()

    def work(probe: Probe[Any]) -> None:
        t0 = time.monotonic()
        try:
            value = probe.collect(ctx)
        except ProbeUnavailable as exc:
            status = ProbeStatus(
                name=probe.name, state="unavailable", detail=str(exc), seconds=round(time.monotonic() - t0, 3)
            )
            results.put((probe.name, status, None))
            return
        except Exception as exc:  # noqa: BLE001 - a probe bug becomes a "crash" status  # a probe bug must not take the report down
            status = ProbeStatus(
                name=probe.name,
                state="crash",
                detail=f"{type(exc).__name__}: {exc}",
                seconds=round(time.monotonic() - t0, 3),
            )
            results.put((probe.name, status, None))
            return
        results.put(
            (probe.name, ProbeStatus(name=probe.name, seconds=round(time.monotonic() - t0, 3)), value)
        )

    deadlines = {p.name: started + p.timeout for p in probes}
    for probe in probes:
        threading.Thread(target=work, args=(probe,), name=f"probe-{probe.name}", daemon=True).start()

    values: dict[str, object] = {}
    statuses: dict[str, ProbeStatus] = {}
    while len(statuses) < len(probes):
        pending = [n for n in deadlines if n not in statuses]
        wait = max(0.0, min(deadlines[n] for n in pending) - time.monotonic())
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
                    if on_done:
                        on_done(n, statuses[n])
            continue
        if name in statuses:  # finished after its deadline was already declared
            continue
        statuses[name] = status
        if value is not None:
            values[name] = value
        if on_done:
            on_done(name, status)

    ordered = tuple(statuses[p.name] for p in probes)
    return dataclasses.replace(
        Facts(gpudoctor_version=__version__, target=ctx.target),
        probes=ordered,
        **values,  # type: ignore[arg-type]
    )
