"""Run one qmatmul case a few times, for a profiler (ncu, nsys) to attach to.

    ncu -k regex:qmma python benchmarks/profile_qmatmul.py --format q4_0 --M 1 --shape 70b_up

Weights are random bytes with well-formed scales (bench_qmatmul.random_qweight); nothing is
timed or checked here: speed comes from bench_qmatmul.py, correctness from tests/.
"""
import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_qmatmul import SHAPES, random_qweight  # noqa: E402

import rocq  # noqa: E402
from rocq.formats import format_info  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--format", default="q4_0")
    ap.add_argument("--M", type=int, default=1)
    ap.add_argument("--shape", default="70b_up", choices=sorted(SHAPES))
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16"])
    ap.add_argument("--calls", type=int, default=3)
    a = ap.parse_args()
    n, k = SHAPES[a.shape]
    fmt = format_info(a.format)
    gen = torch.Generator(device="cuda").manual_seed(0)
    qw, sc = random_qweight(fmt, n, k, gen)
    dt = torch.bfloat16 if a.dtype == "bf16" else torch.float16
    x = torch.randn(a.M, k, device="cuda", dtype=dt, generator=gen)
    for _ in range(a.calls):
        y = rocq.qmatmul(x, qw, sc, fmt.name, n, k)
    torch.cuda.synchronize()
    print(a.format, "M", a.M, "shape", n, k, "y finite:", bool(torch.isfinite(y).all()))


if __name__ == "__main__":
    main()
