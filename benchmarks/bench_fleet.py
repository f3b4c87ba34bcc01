"""`gpudoctor fleet` over 10,000 node reports: wall time and peak memory, beside `jq` reading the same files.

    python benchmarks/bench_fleet.py                 # 10,000 reports (made once under /tmp, reused)
    python benchmarks/bench_fleet.py --nodes 2000 --runs 3

The reports are real `gpudoctor check --json` documents: every fake machine in tests/machines/ judged
by the engine and rendered by the JSON renderer, repeated over the nodes (node00001.json, ...), so the
sizes and shapes are those of real reports. A fifth of the nodes are facts files instead
(`--save-facts`), which `fleet` judges with the engine. Figures: the median wall time of N runs and
the largest peak RSS (the child's own, from wait4). Targets: < 2 s and < 500 MB for 10,000 reports.
Exits 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path(os.environ.get("GPUDOCTOR_BENCH_CACHE", "/tmp/gpudoctor-bench"))
TARGET_SECONDS = 2.0
TARGET_MIB = 500.0

# jq doing the same work: every report's finding codes, grouped to the nodes that have them.
JQ_PROGRAM = (
    "reduce inputs as $r ({}; reduce (($r.findings // [])[]) as $f (.;"
    ' .[$f.code] += [input_filename | split("/") | last | rtrimstr(".json")]))'
    " | to_entries | map({code: .key, count: (.value | length)}) | sort_by(-.count)"
)


def make_reports(folder: Path, nodes: int, facts_share: float) -> tuple[int, int]:
    """Write the node files once; returns (reports, facts files)."""
    marker = folder / ".complete"
    if marker.exists():
        counts = json.loads(marker.read_text())
        return counts["reports"], counts["facts"]
    sys.path.insert(0, str(ROOT))
    from tests.test_machines import machine_files, run_machine

    from gpudoctor.render.json import dumps_facts, dumps_report

    samples = []
    for path in machine_files():
        report, _ = run_machine(path)
        samples.append((dumps_report(report), dumps_facts(report.facts)))
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    every = round(1 / facts_share) if facts_share else 0
    reports = facts = 0
    for i in range(1, nodes + 1):
        report_text, facts_text = samples[i % len(samples)]
        as_facts = bool(every) and i % every == 0
        (folder / f"node{i:05d}.json").write_text(facts_text if as_facts else report_text, encoding="utf-8")
        facts += as_facts
        reports += not as_facts
    marker.write_text(json.dumps({"reports": reports, "facts": facts}))
    return reports, facts


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


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--facts-share", type=float, default=0.2, help="part of the nodes sent as facts files"
    )
    args = parser.parse_args()

    folder = CACHE / f"fleet-{args.nodes}-{args.facts_share}"
    reports, facts = make_reports(folder, args.nodes, args.facts_share)
    size = sum(p.stat().st_size for p in folder.glob("*.json")) / 2**20
    print(f"{args.nodes} node files ({reports} reports, {facts} facts files), {size:.0f} MiB, in {folder}")

    gpudoctor = shutil.which("gpudoctor")
    cmd = [gpudoctor] if gpudoctor else [sys.executable, "-m", "gpudoctor"]
    rows = []
    for label, argv in (
        ("gpudoctor fleet (text)", [*cmd, "fleet", str(folder)]),
        ("gpudoctor fleet --format json", [*cmd, "fleet", "--format", "json", str(folder)]),
    ):
        seconds, cpu, mib, code = measure(argv, args.runs)
        assert code in (0, 1), f"{label} exited {code}"
        rows.append((label, seconds, cpu, mib, True))
    jq = shutil.which("jq")
    if jq:
        files = sorted(str(p) for p in folder.glob("*.json"))
        seconds, cpu, mib, code = measure([jq, "-n", JQ_PROGRAM, *files], args.runs)
        assert code == 0, f"jq exited {code}"
        rows.append(("jq, the same grouping", seconds, cpu, mib, False))
    else:
        print("jq not found (apt-get install -y jq): no jq figure")

    ok = True
    print(f"\n| what ({args.nodes} nodes) | seconds | CPU seconds | peak MiB | target |")
    print("| --- | --- | --- | --- | --- |")
    for label, seconds, cpu, mib, has_target in rows:
        target = ""
        if has_target:
            met = seconds < TARGET_SECONDS and mib < TARGET_MIB
            ok &= met
            target = f"< {TARGET_SECONDS:g} s, < {TARGET_MIB:g} MiB: {'met' if met else 'MISSED'}"
        print(f"| {label} | {seconds:.2f} | {cpu:.2f} | {mib:.0f} | {target} |")
    load = os.getloadavg()[0]
    print(
        f"\nmedian of {args.runs} runs after one warm-up; CPU time and peak RSS of the process itself (wait4);"
        f" {os.cpu_count()} CPUs, load average {load:.1f} when done"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
