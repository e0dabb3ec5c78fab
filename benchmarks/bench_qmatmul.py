"""rocq qmatmul vs the obvious alternatives, per format, at Llama-3 layer shapes.

One process, one device (../shared/DESIGN.md "Benchmarks"). Measured side by side:
  copy      device-to-device copy of 1 GiB (bytes read + written / time): the bandwidth bar
  bf16      F.linear with a bf16 weight (vendor BLAS)
  int4      torch's int4 weight-only kernel (_weight_int4pack_mm, group 128), if it runs
  dequant   rocq.dequantize to a bf16 workspace + matmul (ROCQ_QMATMUL_PATH=dequant)
  fused     rocq's fused decode kernel (ROCQ_QMATMUL_PATH=fused; small M only)
  qgemm     rocq's matrix-unit kernel (ROCQ_QMATMUL_PATH=qgemm; M >= 8, if built)
  rocq      rocq.qmatmul with the automatic path choice (what users get)
  dqonly    rocq.dequantize to bf16 alone (reported once per format as M=0; GB/s and % copy
            count the bytes read AND written, like the copy bar)
x is bf16 [M, k] (--dtype fp16: fp16 x, and the dense baseline's weight in fp16; the method
keeps its name "bf16"). Weights are random valid bytes, rotated over enough copies (>= --rotate-mb)
that they do not sit in the L2 cache; each method is a CUDA graph of R calls cycling over the
copies, replayed --reps times; we report the median time per call (CUDA events), so host
launch overhead is not counted. Reported: us, weight bytes / time (GB/s), % of the copy
bandwidth, TFLOP/s (2*M*n*k / time). Writes bench_qmatmul.json and bench_qmatmul.png to --out.

    python benchmarks/bench_qmatmul.py --out benchmarks/results \
        [--formats q4_0,q4_k] [--shapes 28672x8192] [--ms 1,8,64] [--methods rocq,bf16]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch
import torch.nn.functional as F

import rocq

SHAPES = {"8b_qkvo": (4096, 4096), "8b_up": (14336, 4096), "8b_down": (4096, 14336),
          "70b_up": (28672, 8192), "70b_down": (8192, 28672)}
MS = [1, 2, 4, 8, 16, 32, 64, 128, 512, 2048]
HALF_FIELDS = {"q4_0": (0,), "q4_1": (0, 2), "q5_0": (0,), "q5_1": (0, 2), "q8_0": (0,), "q2_k": (80, 82),
               "q3_k": (108,), "q4_k": (0, 2), "q5_k": (0, 2), "q6_k": (208,), "iq4_nl": (0,), "iq4_xs": (0,)}
E8M0_FIELDS = {"mxfp4": (0,)}
DEFAULT_FORMATS = ["q4_0", "q4_1", "q5_0", "q5_1", "q8_0", "q2_k", "q3_k", "q4_k", "q5_k", "q6_k", "iq4_nl",
                   "iq4_xs", "mxfp4", "ocp_mxfp4", "ocp_mxfp6_e2m3", "ocp_mxfp8_e4m3", "bf16"]


def random_qweight(fmt, n, k, gen):
    """Random bytes with well-formed scale fields (finite, moderate), plus the scale plane."""
    if fmt.block_elems == 1:
        w = torch.randn(n, k, device="cuda", generator=gen) * 0.02
        dt = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}[fmt.name]
        return w.to(dt).view(torch.uint8).view(n, -1), None
    nb = k // fmt.block_elems
    b = torch.randint(0, 256, (n, nb, fmt.block_bytes), dtype=torch.uint8, device="cuda", generator=gen)
    for off in HALF_FIELDS.get(fmt.name, ()):
        d = (torch.rand(n, nb, device="cuda", generator=gen) * 0.02 + 1e-3).half()
        b[:, :, off:off + 2] = d.view(torch.uint8).view(n, nb, 2)
    for off in E8M0_FIELDS.get(fmt.name, ()):
        b[:, :, off] = torch.randint(118, 127, (n, nb), dtype=torch.uint8, device="cuda", generator=gen)
    sc = None
    if fmt.scale_plane:
        sc = torch.randint(118, 127, (n, k // 32), dtype=torch.uint8, device="cuda", generator=gen)
    return b.view(n, -1), sc


def time_graph(fns, reps, min_ms=3.0):
    """Median time per call (us) of the callables in `fns`, cycled, captured in a CUDA graph."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for f in fns:  # warm-up (and workspace allocation) outside the capture
            f()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    # calls per graph: enough to run >= min_ms, whole cycles of the copies
    t0 = time.perf_counter()
    for f in fns:
        f()
    torch.cuda.synchronize()
    est_us = max((time.perf_counter() - t0) * 1e6 / len(fns), 1.0)
    cycles = max(1, int(min_ms * 1000 / (est_us * len(fns))))
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for _ in range(cycles):
            for f in fns:
                f()
    calls = cycles * len(fns)
    g.replay()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        g.replay()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b) * 1000 / calls)
    del g
    return statistics.median(times)


def copy_bandwidth(reps):
    src = torch.randn(1 << 28, device="cuda")  # 1 GiB of fp32 (a uint8 copy_ measured low)
    dst = torch.empty_like(src)
    # Two copy kernels, the faster one is the bar: copy_ (cudaMemcpy D2D, measured ~2.8 TB/s on an
    # H200, far below what reads alone reach) and torch's vectorized elementwise kernel (x * 1).
    us_memcpy = time_graph([lambda: dst.copy_(src)], reps, min_ms=20)
    us_elem = time_graph([lambda: torch.mul(src, 1.0, out=dst)], reps, min_ms=20)
    gb = lambda us: 2 * (1 << 30) / (us * 1e-6) / 1e9
    print(f"copy: copy_ {gb(us_memcpy):.0f} GB/s, elementwise {gb(us_elem):.0f} GB/s (read+write)", flush=True)
    us = min(us_memcpy, us_elem)
    del src, dst
    return 2 * (1 << 30) / (us * 1e-6) / 1e9  # GB/s, read + write


class PathEnv:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.old = os.environ.get("ROCQ_QMATMUL_PATH")
        if self.path:
            os.environ["ROCQ_QMATMUL_PATH"] = self.path
        else:
            os.environ.pop("ROCQ_QMATMUL_PATH", None)

    def __exit__(self, *a):
        if self.old is None:
            os.environ.pop("ROCQ_QMATMUL_PATH", None)
        else:
            os.environ["ROCQ_QMATMUL_PATH"] = self.old


def copies_for(nbytes, rotate_mb):
    return max(2, -(-int(rotate_mb * 2**20) // max(nbytes, 1)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/results")
    ap.add_argument("--formats", default=",".join(DEFAULT_FORMATS))
    ap.add_argument("--shapes", default=",".join(SHAPES), help="names (%s) or NxK" % ",".join(SHAPES))
    ap.add_argument("--ms", default=",".join(map(str, MS)))
    ap.add_argument("--methods", default="rocq,fused,dequant,qgemm,bf16,int4")
    ap.add_argument("--fused-max-m", type=int, default=64, help="largest M to time the forced fused path at")
    ap.add_argument("--rotate-mb", type=float, default=160.0, help="weight bytes cycled per measurement")
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--tag", default="", help="suffix for the output file names")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "fp16"],
                    help="activation dtype (and the dense baseline's weight dtype)")
    args = ap.parse_args()

    torch.manual_seed(0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    dev = torch.cuda.get_device_name()
    methods = args.methods.split(",")
    shapes = [(s, SHAPES[s]) if s in SHAPES else (s, tuple(int(v) for v in s.split("x")))
              for s in args.shapes.split(",")]
    ms = [int(m) for m in args.ms.split(",")]
    fmts = [rocq.format_info(f) for f in args.formats.split(",")]
    copy_gbs = copy_bandwidth(args.reps)
    print(f"device: {dev}; torch {torch.__version__}; copy bandwidth {copy_gbs:.0f} GB/s (read+write)", flush=True)
    rows = []

    def record(method, fmt, shape, n, k, M, us, wbytes):
        gbs = wbytes / (us * 1e-6) / 1e9
        r = dict(method=method, format=fmt, shape=shape, n=n, k=k, M=M, us=us, weight_bytes=wbytes, gbps=gbs,
                 pct_copy=100 * gbs / copy_gbs, tflops=2 * M * n * k / (us * 1e-6) / 1e12)
        rows.append(r)
        print(f"{shape:9s} {fmt:15s} {method:8s} M={M:5d} {us:10.1f} us {gbs:7.0f} GB/s "
              f"{r['pct_copy']:5.1f}% copy {r['tflops']:7.1f} TFLOP/s", flush=True)

    xdt = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    for sname, (n, k) in shapes:
        xs = {M: torch.randn(M, k, device="cuda", dtype=xdt) for M in ms}
        # --- baselines ---
        if "bf16" in methods:
            wb = n * k * 2
            ws = [torch.randn(n, k, device="cuda", dtype=xdt) * 0.02
                  for _ in range(copies_for(wb, args.rotate_mb))]
            for M in ms:
                us = time_graph([lambda w=w, x=xs[M]: F.linear(x, w) for w in ws], args.reps)
                record("bf16", "bf16", sname, n, k, M, us, wb)
            del ws
        if "int4" in methods:
            try:
                wq = torch.randint(0, 256, (n, k // 2), dtype=torch.uint8, device="cuda")
                packs = [torch.ops.aten._convert_weight_to_int4pack(wq, 8)
                         for _ in range(copies_for(n * k // 2, args.rotate_mb))]
                sz = torch.rand(k // 128, n, 2, device="cuda", dtype=torch.bfloat16)
                for M in ms:
                    us = time_graph([lambda p=p, x=xs[M]: torch.ops.aten._weight_int4pack_mm(x, p, 128, sz)
                                     for p in packs], args.reps)
                    record("int4", "int4_g128", sname, n, k, M, us, n * k // 2 + sz.numel() * 2)
                del packs
            except Exception as e:  # noqa: BLE001 - report and go on
                print(f"int4 weight-only kernel not available here: {type(e).__name__}: {str(e)[:200]}")
        # --- rocq ---
        for fmt in fmts:
            if k % fmt.block_elems:
                continue
            q0, s0 = random_qweight(fmt, n, k, gen)
            wbytes = q0.numel() + (s0.numel() if s0 is not None else 0)
            ncopy = copies_for(wbytes, args.rotate_mb)
            qs = [(q0, s0)] + [random_qweight(fmt, n, k, gen) for _ in range(ncopy - 1)]
            if "dqonly" in methods:
                us = time_graph([lambda q=q, s=s: rocq.dequantize(q, s, fmt.id, n, k, torch.bfloat16) for q, s in qs],
                                args.reps)
                record("dqonly", fmt.name, sname, n, k, 0, us, wbytes + n * k * 2)
            for M in ms:
                for method in ("rocq", "fused", "qgemm", "dequant"):
                    if method not in methods:
                        continue
                    if method == "fused" and M > args.fused_max_m:
                        continue
                    if method == "qgemm" and M < 8:
                        continue
                    path = {"rocq": None, "fused": "fused", "qgemm": "qgemm", "dequant": "dequant"}[method]
                    with PathEnv(path):
                        try:
                            us = time_graph([lambda q=q, s=s, x=xs[M]: rocq.qmatmul(x, q, s, fmt.id, n, k)
                                             for q, s in qs], args.reps)
                        except Exception as e:  # noqa: BLE001
                            print(f"{fmt.name} {method} M={M}: {type(e).__name__}: {str(e)[:200]}")
                            continue
                    record(method, fmt.name, sname, n, k, M, us, wbytes)
            del qs, q0, s0
        torch.cuda.empty_cache()

    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, "bench_qmatmul" + (f"_{args.tag}" if args.tag else ""))
    meta = dict(device=dev, torch=torch.__version__, copy_gbps=copy_gbs, reps=args.reps, rotate_mb=args.rotate_mb,
                x_dtype=str(xdt).replace("torch.", ""), command="python " + " ".join(os.sys.argv))
    with open(base + ".json", "w") as f:
        json.dump(dict(meta=meta, rows=rows), f, indent=1)
    summary(rows, copy_gbs, dev)
    try:
        plot(rows, meta, base + ".png")
    except Exception as e:  # noqa: BLE001
        print(f"plot failed: {e}")
    print(f"wrote {base}.json / .png")


def summary(rows, copy_gbs, dev):
    """M=1 table per format (largest shape first) and rocq/bf16 time ratios over M."""
    by = {(r["method"], r["format"], r["shape"], r["M"]): r for r in rows}
    shapes = sorted({r["shape"] for r in rows}, key=lambda s: -max(r["n"] * r["k"] for r in rows if r["shape"] == s))
    print(f"\n== {dev}, copy {copy_gbs:.0f} GB/s ==")
    for sh in shapes:
        fm = sorted({r["format"] for r in rows if r["shape"] == sh and r["method"] == "rocq"})
        mlist = sorted({r["M"] for r in rows if r["shape"] == sh and r["M"] > 0})
        print(f"-- {sh}: rocq (auto path) us at M=1, % copy BW; then time / bf16 time per M")
        print("format          M=1 us  %copy | " + " ".join(f"{m:>6d}" for m in mlist))
        for f in fm:
            r1 = by.get(("rocq", f, sh, 1))
            head = f"{f:15s} {r1['us']:7.1f} {r1['pct_copy']:5.1f}%" if r1 else f"{f:15s} {'-':>7s} {'-':>6s}"
            ratios = []
            for m in mlist:
                a, b = by.get(("rocq", f, sh, m)), by.get(("bf16", "bf16", sh, m))
                ratios.append(f"{a['us'] / b['us']:6.2f}" if a and b else f"{'-':>6s}")
            print(head + " | " + " ".join(ratios))
        for r in rows:
            if r["shape"] == sh and r["method"] == "dqonly":
                print(f"   dequantize {r['format']:15s} to bf16 alone: {r['us']:7.1f} us, {r['gbps']:5.0f} GB/s read+write "
                      f"({r['pct_copy']:.0f}% of copy)")


def plot(rows, meta, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shapes = sorted({r["shape"] for r in rows}, key=lambda s: -max(r["n"] * r["k"] for r in rows if r["shape"] == s))
    sh = shapes[0]
    fig, axes = plt.subplots(1, 2, figsize=(15, 6))
    ax = axes[0]
    for (method, fmt) in sorted({(r["method"], r["format"]) for r in rows if r["shape"] == sh}):
        if method not in ("rocq", "bf16", "int4"):
            continue
        pts = sorted((r["M"], r["us"]) for r in rows if r["shape"] == sh and r["method"] == method and r["format"] == fmt)
        style = "k-o" if method == "bf16" else ("k--s" if method == "int4" else "-")
        ax.plot([p[0] for p in pts], [p[1] for p in pts], style if method != "rocq" else "-",
                marker="o" if method == "rocq" else None, ms=3, label=f"{fmt}" if method == "rocq" else method)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("M (rows of x)")
    ax.set_ylabel("us per call")
    ax.set_title(f"qmatmul {sh}: rocq (auto path) vs bf16 F.linear")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(True, which="both", alpha=0.3)
    ax = axes[1]
    r1 = sorted((r for r in rows if r["shape"] == sh and r["M"] == 1 and r["method"] in ("rocq", "bf16", "int4")),
                key=lambda r: r["pct_copy"])
    ax.barh([f"{r['format']} ({r['method']})" for r in r1], [r["pct_copy"] for r in r1])
    ax.axvline(85, color="r", ls="--", lw=1)
    ax.set_xlabel("weight bytes / time at M=1, % of copy bandwidth")
    ax.set_title(f"{meta['device']}: copy {meta['copy_gbps']:.0f} GB/s")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
