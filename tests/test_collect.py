"""Probes run concurrently; a hung or crashing probe becomes a status and a GD001 finding."""

from __future__ import annotations

import dataclasses
import threading
import time

from gpudoctor.collect import collect
from gpudoctor.engine import diagnose
from gpudoctor.facts import EnvironmentFacts
from gpudoctor.matrix import load_matrix
from gpudoctor.model import Severity
from gpudoctor.probes.base import Description, Probe, ProbeContext, ProbeUnavailable
from tests.conftest import make_ctx


def _describe(_: object) -> Description:
    return Description(mark="ok", summary="")


def _probe(name: str, fn: object, timeout: float = 5.0) -> Probe[object]:
    return Probe(name=name, title=name, collect=fn, describe=_describe, timeout=timeout)  # type: ignore[arg-type]


def test_hung_and_crashing_probes_do_not_stop_the_others() -> None:
    release = threading.Event()

    def hangs(ctx: ProbeContext) -> EnvironmentFacts:
        release.wait(30)
        return EnvironmentFacts()

    def crashes(ctx: ProbeContext) -> EnvironmentFacts:
        raise RuntimeError("boom")

    def absent(ctx: ProbeContext) -> EnvironmentFacts:
        raise ProbeUnavailable("not a conda environment")

    def works(ctx: ProbeContext) -> EnvironmentFacts:
        return EnvironmentFacts(variables={"CUDA_VISIBLE_DEVICES": "0"})

    probes = [
        _probe("driver", hangs, timeout=0.5),
        _probe("toolkit", crashes),
        _probe("conda", absent),
        _probe("environment", works),
    ]
    started = time.monotonic()
    facts = collect(make_ctx(), probes)
    release.set()
    assert time.monotonic() - started < 3
    states = {p.name: p.state for p in facts.probes}
    assert states == {"driver": "timeout", "toolkit": "crash", "conda": "unavailable", "environment": "ok"}
    assert facts.status("toolkit") is not None and "RuntimeError: boom" in facts.status("toolkit").detail  # type: ignore[union-attr]
    assert facts.environment == EnvironmentFacts(variables={"CUDA_VISIBLE_DEVICES": "0"})
    assert facts.driver is None

    report = diagnose(facts, load_matrix())
    gd001 = [f for f in report.findings if f.code == "GD001"]
    assert {f.message.split(" ")[1] for f in gd001} == {"driver", "toolkit"}
    assert all(f.severity is Severity.WARNING for f in gd001)


def test_probes_run_concurrently() -> None:
    def slow(ctx: ProbeContext) -> EnvironmentFacts:
        time.sleep(0.4)
        return EnvironmentFacts()

    probes = [_probe(name, slow) for name in ("platform", "driver", "toolkit", "libraries", "environment")]
    started = time.monotonic()
    facts = collect(make_ctx(), probes)
    assert all(p.state == "ok" for p in facts.probes)
    assert time.monotonic() - started < 1.5


def test_on_wait_names_the_pending_probes_with_their_elapsed_seconds() -> None:
    release = threading.Event()

    def hangs(ctx: ProbeContext) -> EnvironmentFacts:
        release.wait(30)
        return EnvironmentFacts()

    def quick(ctx: ProbeContext) -> EnvironmentFacts:
        return EnvironmentFacts()

    seen: list[dict[str, float]] = []
    done: list[str] = []
    probes = [_probe("torch", hangs, timeout=2.5), _probe("environment", quick)]
    facts = collect(
        make_ctx(), probes, on_done=lambda n, _: done.append(n), on_wait=lambda p: seen.append(dict(p))
    )
    release.set()
    assert done == ["environment", "torch"]  # the quick probe is reported at once, not after the hang
    assert seen and all(set(p) == {"torch"} for p in seen)
    assert [p["torch"] for p in seen] == sorted(p["torch"] for p in seen) and seen[-1]["torch"] >= 1.0
    assert facts.status("torch").state == "timeout"  # type: ignore[union-attr]


def test_a_child_started_late_gets_what_is_left_of_the_timeout() -> None:
    ctx = make_ctx(child_timeout=10)
    assert 9 < ctx.child_budget() <= 10
    assert ctx.child_budget(3) == 3
    late = dataclasses.replace(ctx, started=time.monotonic() - 8)
    assert 1.5 < late.child_budget() <= 2
    assert late.child_budget(25) <= 2
    assert dataclasses.replace(ctx, started=time.monotonic() - 60).child_budget() == 1.0  # never nothing
