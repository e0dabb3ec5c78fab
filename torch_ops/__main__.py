"""rocq command line: `python -m rocq {demo,formats,inspect,run} ...` (also the `rocq` script)."""
from __future__ import annotations

import argparse
import sys


def _cmd_formats(args) -> int:
    from .formats import formats

    print(f"{'name':>15} {'id':>4} {'block':>6} {'bytes':>6} {'bits/w':>7} {'scales':>7} {'quantize':>9}")
    for f in formats():
        print(f"{f.name:>15} {f.id:4d} {f.block_elems:6d} {f.block_bytes:6d} {f.bits_per_weight:7.2f} "
              f"{'plane' if f.scale_plane else 'inline':>7} {'yes' if f.can_quantize else 'no':>9}")
    return 0


def _cmd_demo(args) -> int:
    from .demo import layer_demo

    layer_demo(device=args.device, n=args.n, k=args.k)
    if args.layer_only:
        return 0
    try:
        from .cli_model import model_demo
    except ImportError as e:  # transformers is an optional dependency
        print(f"\n(model demo skipped: {e})")
        return 0
    print()
    return model_demo(args) or 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rocq", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="quantize a random layer (and a small Llama model) into rocq formats, "
                                    "print bits/weight, error and speed; needs no download")
    d.add_argument("--device", default=None, help="cpu or cuda (default: the GPU if present)")
    d.add_argument("--n", type=int, default=None, help="layer output features")
    d.add_argument("--k", type=int, default=None, help="layer input features")
    d.add_argument("--layer-only", action="store_true", help="skip the model part")
    d.set_defaults(fn=_cmd_demo)

    f = sub.add_parser("formats", help="list the formats of this build")
    f.set_defaults(fn=_cmd_formats)

    try:  # model-level commands (inspect, run) live beside the HF integration
        from .cli_model import add_commands
    except ImportError:
        add_commands = None
    if add_commands is not None:
        add_commands(sub)
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
