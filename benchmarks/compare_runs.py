"""Side-by-side table of two or more bench_qmatmul.py JSON files of the same device (e.g. one
switch off / on, alternated): per (shape, format, M) each run's time in us, the last run over
the first, and the last run's time over its own M = 1 time (issue #3's M = 2..8 bar: <= 1.3 for
the 4- and 5-bit formats).

    python benchmarks/compare_runs.py OFF.json ON.json [OFF2.json ON2.json ...]
"""
from __future__ import annotations

import json
import sys


def load(path: str) -> dict:
    with open(path) as f:
        d = json.load(f)
    return {(r["shape"], r["format"], r["M"]): r["us"] for r in d["rows"] if r["method"] == "rocq"}


def main(paths: list[str]) -> None:
    runs = [load(p) for p in paths]
    keys = sorted(set().union(*runs), key=lambda k: (k[0], k[1], k[2]))
    print("shape     format       M  " + "  ".join(f"run{i}".rjust(8) for i in range(len(runs)))
          + "   last/first  last/M1")
    for key in keys:
        ts = [r.get(key) for r in runs]
        m1 = runs[-1].get((key[0], key[1], 1))
        cells = "  ".join(f"{t:8.1f}" if t is not None else " " * 8 for t in ts)
        ratio = f"{ts[-1] / ts[0]:10.2f}" if ts[0] and ts[-1] else " " * 10
        per_m1 = f"{ts[-1] / m1:8.2f}" if m1 and ts[-1] else " " * 8
        print(f"{key[0]:9s} {key[1]:10s} {key[2]:3d}  {cells}   {ratio}  {per_m1}")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:])
