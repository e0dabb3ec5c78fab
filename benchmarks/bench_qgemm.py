"""Middle-regime timing: rocq's qgemm path vs bf16 F.linear vs dequantize+F.linear (and the fused
decode path, and whatever the automatic choice picks) at the Llama-3 layer shapes, M = 8..256.

Method (../shared/DESIGN.md, METHOD.md): one process, one device; weights rotated over enough
copies (>= 150 MB) that they do not sit in the 50 MB L2; each measurement is a CUDA graph of R
calls cycling over the copies, replayed 7 times, median time / R (CUDA events), so host launch
overhead is not counted for any method. Random weight bytes with realistic scale fields.
Writes JSON (--out) and prints a table: us per call and rocq / bf16 in percent.

    python benchmarks/bench_qgemm.py --out results.json [--formats q4_k,q4_0,q8_0,mxfp4]
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time

import torch
import torch.nn.functional as F

import rocq
from bench_qmatmul import random_qweight as _random_qweight_and_scales  # same folder

SHAPES = [(4096, 4096), (14336, 4096), (4096, 14336), (28672, 8192), (8192, 28672)]  # (n, k)
MS = [8, 16, 32, 64, 128, 256]
# The same random well-formed weights as the qmatmul benchmark (scales not needed here: the
# formats qgemm takes keep their scales inside the blocks).
def random_qweight(fmt, n, k, gen):
    return _random_qweight_and_scales(fmt, n, k, gen)[0]


def copies_for(nbytes):
    return max(2, math.ceil(150e6 / nbytes))


def time_graph(fns, reps=7):
    """Median us per call of fns (cycled), measured on a captured CUDA graph."""
    c = len(fns)
    r = c * max(1, math.ceil(24 / c))
    for f in fns:
        f()
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for i in range(r):
            fns[i % c]()
    g.replay()
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(reps):
        e0.record()
        g.replay()
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1) * 1000.0 / r)
    del g
    ts.sort()
    return ts[len(ts) // 2], (ts[-1] - ts[0]) / ts[len(ts) // 2]


def with_path(path, fn):
    def run():
        old = os.environ.get("ROCQ_QMATMUL_PATH")
        if path:
            os.environ["ROCQ_QMATMUL_PATH"] = path
        else:
            os.environ.pop("ROCQ_QMATMUL_PATH", None)
        try:
            return fn()
        finally:
            if old is None:
                os.environ.pop("ROCQ_QMATMUL_PATH", None)
            else:
                os.environ["ROCQ_QMATMUL_PATH"] = old
    return run


def copy_bandwidth():
    a = torch.empty(1 << 30, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    for _ in range(3):
        b.copy_(a)
    torch.cuda.synchronize()
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    ts = []
    for _ in range(10):
        e0.record()
        b.copy_(a)
        e1.record()
        e1.synchronize()
        ts.append(e0.elapsed_time(e1) / 1000.0)
    ts.sort()
    return 2 * a.numel() / ts[len(ts) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="bench_qgemm.json")
    ap.add_argument("--formats", default="q4_k,q4_0,q8_0,mxfp4")
    ap.add_argument("--ms", default=",".join(map(str, MS)))
    ap.add_argument("--shapes", default="all")
    ap.add_argument("--fused-max-m", type=int, default=16, help="also time the fused decode path up to this M")
    args = ap.parse_args()
    fmts = [rocq.format_info(f) for f in args.formats.split(",")]
    ms = [int(m) for m in args.ms.split(",")]
    shapes = SHAPES if args.shapes == "all" else [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    dev = torch.cuda.get_device_name()
    bw = copy_bandwidth()
    print(f"device: {dev}; copy bandwidth {bw / 1e9:.0f} GB/s (read+write)", flush=True)
    results = {"device": dev, "copy_bandwidth_Bps": bw, "torch": torch.__version__, "rows": []}
    t_start = time.time()
    for (n, k) in shapes:
        wb = [torch.randn(n, k, device="cuda", dtype=torch.bfloat16, generator=gen)
              for _ in range(copies_for(2 * n * k))]
        qws = {f.name: [random_qweight(f, n, k, gen) for _ in range(copies_for(f.row_bytes(k) * n))] for f in fmts}
        for M in ms:
            x = torch.randn(M, k, device="cuda", dtype=torch.bfloat16, generator=gen)
            row = {"n": n, "k": k, "M": M}
            row["bf16_linear_us"], row["bf16_spread"] = time_graph([lambda w=w: F.linear(x, w) for w in wb])
            for f in fmts:
                qs = qws[f.name]
                call = lambda q, f=f: rocq.qmatmul(x, q, None, f.id, n, k)
                row[f"{f.name}_qgemm_us"], row[f"{f.name}_qgemm_spread"] = time_graph(
                    [with_path("qgemm", lambda q=q: call(q)) for q in qs])
                row[f"{f.name}_dequant_us"], _ = time_graph(
                    [with_path("dequant", lambda q=q: call(q)) for q in qs])
                if M <= args.fused_max_m:
                    row[f"{f.name}_fused_us"], _ = time_graph([with_path("fused", lambda q=q: call(q)) for q in qs])
                row[f"{f.name}_weight_bytes"] = f.row_bytes(k) * n
            results["rows"].append(row)
            line = f"{n:>6}x{k:<6} M={M:<4} bf16 {row['bf16_linear_us']:8.1f}"
            for f in fmts:
                q = row[f"{f.name}_qgemm_us"]
                line += (f" | {f.name} qgemm {q:7.1f} ({100 * q / row['bf16_linear_us']:4.0f}%)"
                         f" dq {row[f'{f.name}_dequant_us']:7.1f}")
                if f"{f.name}_fused_us" in row:
                    line += f" fused {row[f'{f.name}_fused_us']:7.1f}"
            print(line, flush=True)
        del wb, qws
        torch.cuda.empty_cache()
    results["elapsed_s"] = time.time() - t_start
    with open(args.out, "w") as fh:
        json.dump(results, fh, indent=1)
    # summary table (us; % of bf16)
    print("\nshape          M    bf16   " + "  ".join(f"{f.name:>7}-qg  %bf16  {f.name:>5}-dq" for f in fmts))
    for r in results["rows"]:
        s = f"{r['n']}x{r['k']:<8} {r['M']:>4} {r['bf16_linear_us']:7.1f}"
        for f in fmts:
            q = r[f"{f.name}_qgemm_us"]
            s += f"  {q:10.1f} {100 * q / r['bf16_linear_us']:5.0f}% {r[f'{f.name}_dequant_us']:9.1f}"
        print(s)


if __name__ == "__main__":
    main()
