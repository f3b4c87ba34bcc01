"""Print a child script as it runs (prelude included), to run by hand: `python -m gpudoctor.probes.child torch`."""

from __future__ import annotations

import sys

from gpudoctor.probes.child_process import script_names, script_source


def main(argv: list[str]) -> int:
    names = script_names()
    if len(argv) != 1 or argv[0] not in names:
        sys.stderr.write(f"usage: python -m gpudoctor.probes.child {{{','.join(names)}}}\n")
        return 2
    sys.stdout.write(script_source(argv[0]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
