#!/usr/bin/env python3
"""Time and peak memory of refusing or accepting hostile facts and matrix files (issue #8 item 3).

    python benchmarks/bench_untrusted.py

Each input is loaded by a fresh `gpudoctor check --facts` / `gpudoctor matrix --matrix` process;
the figures are its wall time and peak RSS (ru_maxrss of the child). Target: 2 s and 200 MB each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MATRIX = (ROOT / "compat_matrix.yaml").read_text(encoding="utf-8")
LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)
CUDNN_ROWS = "".join(
    f'  - {{versions: ">=100.{i},<100.{i + 1}", cuda: [12], source: s}}\n' for i in range(3000)
)


def cases(tmp: Path) -> list[tuple[str, list[str]]]:
    fifo = tmp / "fifo.json"
    os.mkfifo(fifo)
    files = {
        "facts-probes-empty.json": '{"probes": [{}]}',
        "facts-deep.json": "[" * 100_000 + "]" * 100_000,
        "matrix-laughs.yaml": "schema: 1\n" + LAUGHS,
        "matrix-3000-cudnn.yaml": MATRIX.replace("cudnn_releases:\n", "cudnn_releases:\n" + CUDNN_ROWS, 1),
        "matrix-deep.yaml": "[" * 100_000 + "]" * 100_000,
    }
    for name, text in files.items():
        (tmp / name).write_text(text)
    with (tmp / "facts-50MB.json").open("w") as big:  # written in chunks: this process stays small
        big.write('{"x": "')
        for _ in range(50):
            big.write("a" * 1_000_000)
        big.write('"}')
    files["facts-50MB.json"] = ""
    run = [sys.executable, "-m", "gpudoctor"]
    return [
        ("facts: FIFO", [*run, "check", "--facts", str(fifo)]),
        ("facts: /dev/zero", [*run, "check", "--facts", "/dev/zero"]),
        *((f"facts: {n}", [*run, "check", "--facts", str(tmp / n)]) for n in files if n.startswith("facts")),
        *(
            (f"matrix: {n}", [*run, "matrix", "--matrix", str(tmp / n)])
            for n in files
            if n.startswith("matrix")
        ),
    ]


def main() -> int:
    ok = True
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'input':<34}{'exit':>5}{'seconds':>9}{'peak MB':>9}  first line")
        for label, argv in cases(Path(folder)):
            start = time.perf_counter()
            with tempfile.TemporaryFile("w+") as out:
                child = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, text=True)
                _, status, usage = os.wait4(child.pid, 0)  # this child's own peak RSS
                child.returncode = os.waitstatus_to_exitcode(status)
                seconds = time.perf_counter() - start
                out.seek(0)
                text = out.read().strip()
            peak = usage.ru_maxrss / 1024
            line = text.splitlines()[0][:70] if text else ""
            ok = ok and seconds < 2 and peak < 200
            print(f"{label:<34}{child.returncode:>5}{seconds:>9.2f}{peak:>9.0f}  {line}")
    print("target (2 s, 200 MB each):", "held" if ok else "MISSED")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
