"""Model-level CLI: the model part of ``python -m rocq demo``, ``rocq inspect FILE.gguf`` and
``rocq run FILE.gguf --prompt ...``. transformers is imported only where it is needed, so
``inspect`` works without it."""
from __future__ import annotations

import copy
import time

import torch

DEMO_FORMATS = ("q8_0", "q6_k", "q5_k", "q4_k", "q4_0", "iq4_xs", "mxfp4", "q3_k", "q2_k")


def _device(name):
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _model_bytes(model) -> int:
    seen, total = set(), 0
    for t in list(model.parameters()) + list(model.buffers()):
        if t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        total += t.numel() * t.element_size()
    return total


def _linear_bytes(model) -> int:
    from .nn import QuantLinear

    total = 0
    for name, m in model.named_modules():
        if name.endswith("lm_head"):
            continue
        if isinstance(m, QuantLinear):
            total += m.qweight.numel() + m.scales.numel()
        elif isinstance(m, torch.nn.Linear):
            total += m.weight.numel() * m.weight.element_size()
    return total


def _generate(model, ids, new_tokens):
    device = ids.device
    with torch.no_grad():
        model.generate(ids, max_new_tokens=2, min_new_tokens=2, do_sample=False)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        out = model.generate(ids, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
        _sync(device)
        dt = time.perf_counter() - t0
    return out[0, ids.shape[1]:], new_tokens / dt


def model_demo(args=None, formats=DEMO_FORMATS, new_tokens: int | None = None, file=None) -> int:
    """Build a small random Llama, quantize it to several formats, generate with each, and print
    weight memory, tokens/s and the logit error vs the unquantized model."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from .nn import quantize_model

    device = _device(getattr(args, "device", None))
    gpu = device.type == "cuda"
    if new_tokens is None:
        new_tokens = 32 if gpu else 8
    dtype = torch.bfloat16 if gpu else torch.float32
    cfg = LlamaConfig(
        vocab_size=32000 if gpu else 1024,
        hidden_size=2048 if gpu else 256,
        intermediate_size=5632 if gpu else 768,
        num_hidden_layers=8 if gpu else 2,
        num_attention_heads=16 if gpu else 4,
        num_key_value_heads=4 if gpu else 2,
        max_position_embeddings=512,
        bos_token_id=1, eos_token_id=2, pad_token_id=0,
    )
    torch.manual_seed(0)
    with torch.device(device):
        base = LlamaForCausalLM(cfg).to(dtype).eval()
    base.generation_config.pad_token_id = 0
    ids = torch.randint(3, cfg.vocab_size, (1, 32), device=device, generator=None)
    with torch.no_grad():
        ref = base(ids).logits.float()
    print(f"rocq model demo on {device} ({torch.cuda.get_device_name(device) if gpu else 'CPU'}), {dtype}: "
          f"random Llama, {cfg.num_hidden_layers} layers, hidden {cfg.hidden_size}, "
          f"ffn {cfg.intermediate_size}, vocab {cfg.vocab_size}; prompt 32 tokens, {new_tokens} new tokens, "
          f"greedy; lm_head kept in {str(dtype).replace('torch.', '')}", file=file)
    hdr = (f"{'format':>8} {'bits/w':>7} {'Linear MiB':>11} {'model MiB':>10} {'tok/s':>8} "
           f"{'logit rel.err':>14} {'top1 agree':>11} {'same tokens':>12}")
    print(hdr, file=file)
    base_tokens, tps = _generate(base, ids, new_tokens)
    name = str(dtype).replace("torch.", "")
    print(f"{name:>8} {16 if gpu else 32:>7} {_linear_bytes(base) / 2**20:11.1f} {_model_bytes(base) / 2**20:10.1f} "
          f"{tps:8.1f} {'-':>14} {'-':>11} {'-':>12}", file=file)
    from .formats import format_info

    for fmt in formats:
        try:
            info = format_info(fmt)
        except ValueError:
            continue
        if not info.can_quantize:
            continue
        m = copy.deepcopy(base)
        try:
            quantize_model(m, fmt, progress=False)
        except Exception as e:  # a format this build cannot produce
            print(f"{fmt:>8}  (skipped: {e})", file=file)
            continue
        if gpu:
            torch.cuda.empty_cache()
        with torch.no_grad():
            out = m(ids).logits.float()
        rel = ((out - ref).norm() / ref.norm()).item()
        top1 = (out.argmax(-1) == ref.argmax(-1)).float().mean().item()
        toks, tps = _generate(m, ids, new_tokens)
        same = int((toks == base_tokens).cumprod(0).sum().item())
        print(f"{fmt:>8} {info.bits_per_weight:7.3g} {_linear_bytes(m) / 2**20:11.1f} "
              f"{_model_bytes(m) / 2**20:10.1f} {tps:8.1f} {rel:14.4f} {top1:11.1%} {same:>5}/{new_tokens:<6}",
              file=file)
        del m
    if gpu:
        print(f"peak GPU memory allocated: {torch.cuda.max_memory_allocated(device) / 2**20:.0f} MiB", file=file)
    print("(random weights: logits are near-uniform, so 'same tokens' = greedy tokens equal to the "
          "unquantized model's before the first difference is a harsh test)", file=file)
    return 0


# --------------------------------------------------------------------------------------------
# inspect / run
# --------------------------------------------------------------------------------------------
def cmd_inspect(args) -> int:
    from .gguf_loader import GGUFError, inspect_gguf

    try:
        info = inspect_gguf(args.file)
    except (GGUFError, FileNotFoundError) as e:
        print(f"rocq inspect: {e}")
        return 1
    from .formats import format_info

    print(f"{info['path']}: {info['file_bytes'] / 2**20:.1f} MiB, architecture {info['architecture']}, "
          f"name {info['name']!r}")
    arch = info["architecture"]
    for k, v in info["metadata"].items():
        if k.startswith(f"{arch}.") or k in ("general.file_type", "general.quantization_version",
                                              "tokenizer.ggml.model", "tokenizer.ggml.tokens"):
            print(f"  {k} = {v}")
    print(f"{'type':>8} {'tensors':>8} {'MiB':>10}  rocq")
    for t, (n, b) in sorted(info["types"].items(), key=lambda kv: -kv[1][1]):
        try:
            ok = format_info(t.lower()).name
            ok = "kept quantized" if t not in ("F32", "F16", "BF16") else "dense"
        except ValueError:
            ok = "NOT SUPPORTED"
        print(f"{t:>8} {n:8d} {b / 2**20:10.2f}  {ok}")
    if getattr(args, "tensors", False):
        for name, t, shape, nb in info["tensors"]:
            print(f"  {name:40s} {t:>7} {str(shape):>20} {nb:>12}")
    return 0


def cmd_run(args) -> int:
    from .gguf_loader import GGUFError, load_gguf, load_gguf_tokenizer

    device = _device(args.device)
    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, None: None}[args.dtype]
    t0 = time.perf_counter()
    try:
        model = load_gguf(args.file, device=device, dtype=dtype)
    except (GGUFError, FileNotFoundError) as e:
        print(f"rocq run: {e}")
        return 1
    tok = load_gguf_tokenizer(args.file)
    print(f"loaded {args.file} in {time.perf_counter() - t0:.1f} s on {device} "
          f"({_model_bytes(model) / 2**20:.0f} MiB)")
    ids = tok(args.prompt, return_tensors="pt").input_ids.to(device)
    gen = dict(max_new_tokens=args.max_new_tokens, do_sample=args.temperature > 0)
    if args.temperature > 0:
        gen["temperature"] = args.temperature
    if args.compile:
        gen["cache_implementation"] = "static"
        model.forward = torch.compile(model.forward, fullgraph=True)
    with torch.no_grad():
        _sync(device)
        t0 = time.perf_counter()
        out = model.generate(ids, pad_token_id=tok.pad_token_id or tok.eos_token_id, **gen)
        _sync(device)
        dt = time.perf_counter() - t0
    new = out[0, ids.shape[1]:]
    print(tok.decode(out[0], skip_special_tokens=True))
    print(f"[{len(new)} tokens in {dt:.2f} s, {len(new) / dt:.1f} tokens/s]")
    return 0


def add_commands(sub) -> None:
    """Add ``inspect`` and ``run`` to the ``python -m rocq`` argparse subparsers."""
    i = sub.add_parser("inspect", help="architecture, metadata, tensor types and sizes of a GGUF file")
    i.add_argument("file")
    i.add_argument("--tensors", action="store_true", help="list every tensor")
    i.set_defaults(fn=cmd_inspect)

    r = sub.add_parser("run", help="load a GGUF file with its weights kept quantized and generate text")
    r.add_argument("file")
    r.add_argument("--prompt", default="Hello")
    r.add_argument("--max-new-tokens", type=int, default=32)
    r.add_argument("--temperature", type=float, default=0.0)
    r.add_argument("--device", default=None)
    r.add_argument("--dtype", choices=["fp32", "bf16", "fp16"], default=None)
    r.add_argument("--compile", action="store_true", help="torch.compile the forward (static KV cache)")
    r.set_defaults(fn=cmd_run)
