"""Side-by-side table of bench_qmatmul.py JSON files of one device (e.g. a switch off / on, or
variants of a kernel): per (shape, format, M) each run's rocq time in us, each later run's time
over the first run's, and each run's time over its own M = 1 time (issue #3's M = 2..8 bar:
<= 1.3 for the 4- and 5-bit formats).

    python benchmarks/compare_runs.py RUN0.json RUN1.json [RUN2.json ...]
"""
from __future__ import annotations

import json
import sys


def load(path: str) -> dict:
    with open(path) as f:
        d = json.load(f)
    return {(r["shape"], r["format"], r["M"]): r["us"] for r in d["rows"] if r["method"] == "rocq"}


def ratio(a, b) -> str:
    return f"{a / b:6.2f}" if a and b else " " * 6


def main(paths: list[str]) -> None:
    runs = [load(p) for p in paths]
    n = len(runs)
    keys = sorted(set().union(*runs))
    print("shape     format       M  " + " ".join(f"run{i}".rjust(7) for i in range(n)) + "   "
          + " ".join(f"{i}/0".rjust(6) for i in range(1, n)) + "   " + " ".join(f"{i}/M1".rjust(6) for i in range(n)))
    for key in keys:
        ts = [r.get(key) for r in runs]
        m1 = [r.get((key[0], key[1], 1)) for r in runs]
        cells = " ".join(f"{t:7.1f}" if t is not None else " " * 7 for t in ts)
        vs0 = " ".join(ratio(ts[i], ts[0]) for i in range(1, n))
        vs1 = " ".join(ratio(ts[i], m1[i]) for i in range(n))
        print(f"{key[0]:9s} {key[1]:10s} {key[2]:3d}  {cells}   {vs0}   {vs1}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
