"""`gpudoctor fleet` over 10,000 node reports: wall time and peak memory, beside `jq` reading the same files.

    python benchmarks/bench_fleet.py                 # 10,000 nodes (files made under /tmp, remade when stale)
    python benchmarks/bench_fleet.py --nodes 2000 --runs 3
    python benchmarks/bench_fleet.py --write-readme  # also benchmarks/results/bench_fleet.json + README figures

The reports are real `gpudoctor check --json` documents: every fake machine in tests/machines/ judged
by the engine and rendered by the JSON renderer, repeated over the nodes (node00001.json, ...), so the
sizes and shapes are those of real reports. Three sets: reports only; a fifth of the nodes facts files
instead (`--save-facts`), which `fleet` judges with the engine; and reports whose heads (the members
before `checks`: the findings) are all distinct, so that nothing fleet reads once is reused, as in a
fleet where no two nodes say the same. Figures: the median wall and CPU time of N runs and the
largest peak RSS. Targets: < 2 s and < 500 MB for 10,000 reports. Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import CACHE, ROOT, clean_env, installed_gpudoctor, load_average, peak_memory, save_results

NAME = "bench_fleet"
TARGET_SECONDS = 2.0
TARGET_MIB = 500.0

# jq doing the same work: every report's finding codes, grouped to the nodes that have them.
JQ_PROGRAM = (
    "reduce inputs as $r ({}; reduce (($r.findings // [])[]) as $f (.;"
    ' .[$f.code] += [input_filename | split("/") | last | rtrimstr(".json")]))'
    " | to_entries | map({code: .key, count: (.value | length)}) | sort_by(-.count)"
)


def make_reports(folder: Path, nodes: int, facts_share: float, *, distinct: bool) -> tuple[int, int, int]:
    """Write the node files (again only when this checkout renders them differently); returns
    (reports, facts files, machines they copy). `distinct`: every report's head (what comes before its
    checks) differs from every other's, as in a fleet where no two nodes say the same: its matrix path
    names the node, which changes nothing fleet prints."""
    sys.path.insert(0, str(ROOT))
    from tests.test_machines import machine_files, run_machine

    from gpudoctor.render.json import dumps_facts, dumps_report

    samples = []
    for path in machine_files():
        report, _ = run_machine(path)
        samples.append((dumps_report(report), dumps_facts(report.facts)))
    stamp = hashlib.sha256(json.dumps([samples, distinct]).encode()).hexdigest()[:16]
    marker = folder / ".complete"
    if marker.exists():
        counts = json.loads(marker.read_text())
        if counts.get("samples") == stamp:
            return counts["reports"], counts["facts"], len(samples)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    every = round(1 / facts_share) if facts_share else 0
    reports = facts = 0
    for i in range(1, nodes + 1):
        report_text, facts_text = samples[i % len(samples)]
        as_facts = bool(every) and i % every == 0
        if distinct:
            report_text = report_text.replace('\n  "matrix": "', f'\n  "matrix": "/nodes/node{i:05d}', 1)
        (folder / f"node{i:05d}.json").write_text(facts_text if as_facts else report_text, encoding="utf-8")
        facts += as_facts
        reports += not as_facts
    marker.write_text(json.dumps({"reports": reports, "facts": facts, "samples": stamp}))
    return reports, facts, len(samples)


def measure(argv: list[str], runs: int) -> tuple[float, float, float, int]:
    """Median wall seconds, median CPU seconds (user + system), peak MiB, exit code."""
    seconds, cpu, peaks, code = [], [], [], 0
    for i in range(runs + 1):  # the first run warms the page cache and .pyc files
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        code = process.returncode
        if i:
            seconds.append(elapsed)
            cpu.append(usage.ru_utime + usage.ru_stime)
            peaks.append(usage.ru_maxrss / 1024)  # KiB on Linux
    return statistics.median(seconds), statistics.median(cpu), max(peaks), code


def measure_nodes(
    nodes: int,
    facts_share: float,
    runs: int,
    gpudoctor: Path,
    *,
    distinct: bool = False,
    with_jq: bool = True,
) -> tuple[list[str], bool]:
    """Markdown lines for one set of node files, and whether the targets held."""
    folder = CACHE / f"fleet-{nodes}-{facts_share}{'-distinct' if distinct else ''}"
    reports, facts, machines = make_reports(folder, nodes, facts_share, distinct=distinct)
    size = sum(p.stat().st_size for p in folder.glob("*.json")) / 2**20
    rows = []
    for label, args in (
        ("gpudoctor fleet (text)", ["fleet", str(folder)]),
        ("gpudoctor fleet --format json", ["fleet", "--format", "json", str(folder)]),
    ):
        seconds, cpu, _, code = measure([str(gpudoctor), *args], runs)
        assert code in (0, 1), f"{label} exited {code}"
        own, workers = peak_memory(gpudoctor, args, clean_env())
        mib = f"{own:.0f} (workers {workers:.0f})" if workers else f"{own:.0f}"
        rows.append((label, seconds, cpu, mib, own < TARGET_MIB))
    jq = shutil.which("jq") if with_jq else None
    if jq:
        files = sorted(str(p) for p in folder.glob("*.json"))
        seconds, cpu, mib, code = measure([jq, "-n", JQ_PROGRAM, *files], runs)
        assert code == 0, f"jq exited {code}"
        rows.append(("jq, the same grouping", seconds, cpu, f"{mib:.0f}", None))
    ok = True
    copies = (
        f"copies of {machines} fake machines' reports, each one's head made distinct so that nothing read"
        " once is reused"
        if distinct
        else f"copies of {machines} fake machines' files, so many nodes share their findings as in a real fleet"
    )
    lines = [
        f"{nodes:,} node files, {size:.0f} MiB: {reports:,} reports and {facts:,} facts files, {copies}:",
        "",
        "| what | seconds | CPU seconds | peak MiB | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, seconds, cpu, mib, memory_ok in rows:
        target = ""
        if memory_ok is not None:
            met = seconds < TARGET_SECONDS and memory_ok
            ok &= met
            target = f"< {TARGET_SECONDS:g} s, < {TARGET_MIB:g} MiB: {'met' if met else 'MISSED'}"
        lines.append(f"| {label} | {seconds:.2f} | {cpu:.2f} | {mib} | {target} |")
    if with_jq and not jq:
        lines.append("\njq not found (apt-get install -y jq): no jq figure")
    return [*lines, ""], ok


def judging_milliseconds() -> float:
    """The engine's time for one facts file, the median over the fake machines (in this process)."""
    sys.path.insert(0, str(ROOT))
    from tests.test_machines import machine_files, run_machine

    from gpudoctor.engine import diagnose
    from gpudoctor.matrix import load_matrix

    matrix = load_matrix()
    times = []
    for path in machine_files():
        facts = run_machine(path)[0].facts
        started = time.process_time()
        diagnose(facts, matrix)
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write-readme", action="store_true")
    args = parser.parse_args()
    gpudoctor = installed_gpudoctor()
    lines: list[str] = []
    ok = True
    from gpudoctor.fleet import WORKER_CPUS

    started = load_average()
    for share, distinct, with_jq in ((0.0, False, True), (0.2, False, True), (0.0, True, False)):
        more, met = measure_nodes(args.nodes, share, args.runs, gpudoctor, distinct=distinct, with_jq=with_jq)
        lines += more
        ok &= met
    lines.append(
        f"Median of {args.runs} runs after a warm-up; seconds and CPU seconds (user + system, workers"
        " included) from wait4; peak MiB of gpudoctor's own process and, apart, of its largest worker"
        f" (getrusage; fleet starts workers only from {WORKER_CPUS} CPUs); {os.cpu_count()} CPUs, load"
        f" average {started} when started, {load_average()} when done. The target is wall time: on a"
        " loaded machine the CPU seconds say more."
    )
    judging = judging_milliseconds()
    lines.append(
        f"\nFacts files are judged by the engine, identical ones (but for the probes' times) once: one"
        f" unlike any other costs about {judging:.1f} ms of CPU here, so {args.nodes // 5:,} facts files that"
        f" all differ would add about {judging * args.nodes / 5 / 1000:.0f} s; reports cost the fleet no judging."
    )
    markdown = "\n".join(lines) + "\n"
    print(markdown)
    if args.write_readme:
        save_results(NAME, {"markdown": markdown, "met": ok}, markdown)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
