"""python -m haltingvt flops --preset P [--keep K] [--tokens n1,n2,...]"""

from __future__ import annotations

import argparse

from .config import preset
from .flops import gflops, per_layer_report


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt flops", description="GFLOPs per video (1 multiply-add = 1 FLOP)")
    ap.add_argument("--preset", default="paper-minik-g05-b20")
    ap.add_argument("--keep", type=float, default=1.0, help="Glimpser keep ratio (1.0 = dense)")
    ap.add_argument("--tokens", help="active tokens per joint layer, comma-separated (default: nothing halts)")
    args = ap.parse_args(argv)
    cfg = preset(args.preset)
    tokens = [int(t) for t in args.tokens.split(",")] if args.tokens else None
    print(f"{'stage':<14}{'tokens':>8}{'GFLOPs':>10}")
    for stage, n, g in per_layer_report(cfg, args.keep, tokens):
        print(f"{stage:<14}{n:>8}{g:>10.3f}")
    print(f"{'total':<14}{'':>8}{gflops(cfg, args.keep, tokens):>10.2f}")
    return 0
