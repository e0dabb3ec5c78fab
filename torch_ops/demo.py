"""`python -m rocq demo`, layer part: quantize one random layer into every format rocq can
produce, on the best device present, and print bits/weight, error vs fp32 and qmatmul time."""
from __future__ import annotations

import statistics
import time

import torch

from . import ops
from .formats import formats


def best_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def time_us(fn, device: str, reps: int) -> float:
    """Median wall time of fn() in microseconds (CUDA events on the GPU)."""
    for _ in range(3):
        fn()
    samples = []
    for _ in range(reps):
        if device == "cuda":
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            fn()
            b.record()
            b.synchronize()
            samples.append(a.elapsed_time(b) * 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            samples.append((time.perf_counter() - t0) * 1e6)
    return statistics.median(samples)


def layer_demo(device: str | None = None, n: int | None = None, k: int | None = None, seed: int = 0) -> list[dict]:
    device = device or best_device()
    n = n or (4096 if device == "cuda" else 1024)
    k = k or (4096 if device == "cuda" else 1024)
    reps = 50 if device == "cuda" else 5
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(n, k, generator=g) * 0.02)
    x = torch.randn(1, k, generator=g)
    w_dev, x_dev = w.to(device), x.to(device)
    xb, wb = x_dev.bfloat16() if device == "cuda" else x_dev, w_dev.bfloat16() if device == "cuda" else w_dev
    base_us = time_us(lambda: torch.nn.functional.linear(xb, wb), device, reps)
    y_ref = x.double() @ w.double().T
    print(f"rocq demo: one {n}x{k} layer, random N(0, 0.02^2) weights, on {device}"
          f" ({torch.cuda.get_device_name() if device == 'cuda' else 'CPU'})")
    print(f"baseline F.linear ({'bf16' if device == 'cuda' else 'fp32'}) at M=1: {base_us:9.1f} us")
    print(f"{'format':>15} {'bits/w':>7} {'weight rel.RMSE':>16} {'y rel.err':>10} {'qmatmul M=1':>12} {'vs base':>8}")
    rows = []
    for f in formats():
        if not f.can_quantize:
            continue
        qw, sc = ops.quantize(w, f.id)
        qw, sc = qw.to(device), sc.to(device) if sc.numel() else None
        wq = ops.dequantize(qw, sc, f.id, n, k).cpu().double()
        werr = ((wq - w.double()).norm() / w.double().norm()).item()
        y = ops.qmatmul(x_dev, qw, sc, f.id, n, k).cpu().double()
        yerr = ((y - y_ref).norm() / y_ref.norm()).item()
        us = time_us(lambda: ops.qmatmul(x_dev, qw, sc, f.id, n, k), device, reps)
        rows.append(dict(format=f.name, bits=f.bits_per_weight, weight_rmse=werr, y_err=yerr, us=us))
        print(f"{f.name:>15} {f.bits_per_weight:7.2f} {werr:16.4f} {yerr:10.4f} {us:9.1f} us {base_us / us:7.2f}x")
    return rows
