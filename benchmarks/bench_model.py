"""Whole-model timing: decode tokens/s and prefill time of a HuggingFace Llama-architecture
model (random weights, built from a config: no download) in bf16 vs rocq formats, eager and
torch.compile, side by side in one process on one device.

    python benchmarks/bench_model.py --formats bf16,q4_k,q8_0 --out benchmarks/results

Modes (--modes):
  eager     greedy generate() of --new tokens after a --prompt-token prompt;
  compile   the same with a static KV cache and the forward compiled by inductor (default mode:
            generate() with transformers 5.17's static cache reads the outputs of a CUDA graph
            after its next replay, so no CUDA graphs here);
  graphs    our own greedy loop with the step compiled with mode="reduce-overhead" (CUDA
            graphs) on a static cache allocated before compiling (transformers' recipe).
Prefill: one forward over --prefill tokens (eager, or the compiled forward). Reports tokens/s,
ms and the weight bytes of the linear layers; writes JSON.
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

import torch

import rocq


def build_model(args, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(hidden_size=args.hidden, intermediate_size=args.intermediate, num_hidden_layers=args.layers,
                      num_attention_heads=args.hidden // 128, num_key_value_heads=max(1, args.hidden // 512),
                      vocab_size=args.vocab, max_position_embeddings=4096, tie_word_embeddings=False)
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
    return model


def timed(fn, device, reps):
    fn()
    out = []
    for _ in range(reps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def linear_bytes(model) -> int:
    total = 0
    for m in model.modules():
        if isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
        elif type(m).__name__ == "QuantLinear":
            total += m.qweight.numel() + m.scales.numel()
    return total


def graph_decoder(model, args, device):
    """Greedy decode of args.new tokens with a CUDA-graph (reduce-overhead) compiled step."""
    cache = rocq.static_cache(model, args.prompt + args.new + 1)

    def step(ids, pos):
        return model(input_ids=ids, cache_position=pos, past_key_values=cache, use_cache=True).logits[:, -1:]

    cstep = torch.compile(step, mode="reduce-overhead", fullgraph=True, dynamic=False)

    def run(prompt):
        cache.reset()
        tok = cstep(prompt, torch.arange(args.prompt, device=device)).argmax(-1)
        for i in range(args.new - 1):
            tok = cstep(tok, torch.tensor([args.prompt + i], device=device)).argmax(-1)
        return tok

    return run


@torch.no_grad()
def measure(model, args, device, mode: str) -> dict:
    gen = torch.Generator(device="cpu").manual_seed(1)
    prompt = torch.randint(0, args.vocab, (1, args.prompt), generator=gen).to(device)
    long = torch.randint(0, args.vocab, (1, args.prefill), generator=gen).to(device)
    kw = dict(max_new_tokens=args.new, min_new_tokens=args.new, do_sample=False, pad_token_id=0)
    fwd = model.forward
    if mode == "compile":
        kw["cache_implementation"] = "static"
        model.forward = torch.compile(fwd, mode=args.compile_mode, fullgraph=True)
    try:
        if mode == "graphs":
            run = graph_decoder(model, args, device)
            decode_s = timed(lambda: run(prompt), device, args.reps)
        else:
            decode_s = timed(lambda: model.generate(prompt, **kw), device, args.reps)
        prefill_s = timed(lambda: model(long, use_cache=False), device, args.reps)
    finally:
        model.forward = fwd
    return {"decode_tok_s": args.new / decode_s, "decode_ms_per_token": 1e3 * decode_s / args.new,
            "prefill_ms": 1e3 * prefill_s, "prefill_tok_s": args.prefill / prefill_s}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--formats", default="bf16,q4_k,q4_0,q8_0,q6_k,mxfp4")
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--intermediate", type=int, default=8192)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--prefill", type=int, default=512)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--modes", default="eager,compile,graphs")
    p.add_argument("--compile-mode", default="default", help="torch.compile mode of the compiled runs")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default=None, help="folder for bench_model.json")
    args = p.parse_args(argv)
    device = args.device
    base = build_model(args, device)
    results = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "torch": torch.__version__,
               "config": {k: getattr(args, k) for k in ("hidden", "intermediate", "layers", "vocab", "prompt", "new",
                                                        "prefill")}, "runs": []}
    print(f"{'format':>8} {'mode':>8} {'linear MB':>10} {'decode tok/s':>13} {'ms/token':>9} {'prefill ms':>11}")
    for fmt in args.formats.split(","):
        model = base if fmt == "bf16" else copy.deepcopy(base)
        if fmt != "bf16":
            rocq.quantize_model(model, fmt, progress=False)
        mb = linear_bytes(model) / 1e6
        for mode in args.modes.split(","):
            torch._dynamo.reset()
            try:
                r = measure(model, args, device, mode)
            except Exception as e:  # report, keep going with the other formats
                print(f"{fmt:>8} {mode:>8} failed: {type(e).__name__}: {e}")
                results["runs"].append({"format": fmt, "mode": mode, "error": f"{type(e).__name__}: {e}"})
                continue
            r.update(format=fmt, mode=mode, linear_mb=mb)
            results["runs"].append(r)
            print(f"{fmt:>8} {mode:>8} {mb:10.1f} {r['decode_tok_s']:13.1f} {r['decode_ms_per_token']:9.2f} "
                  f"{r['prefill_ms']:11.1f}")
        if model is not base:
            del model
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        Path(args.out, "bench_model.json").write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
