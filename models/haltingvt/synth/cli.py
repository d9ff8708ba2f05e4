"""`python -m haltingvt synth`: write a held-out split of the procedural motion benchmark.

Seeds: 0..999 are training streams (`iter_training_clips`), 1000..2999 validation (1000: in-memory
validation during training, 1001: the validation split written as files), 3000..3999 test (evaluated
only to report; `haltingvt.splits` names the splits). The writer refuses training seeds unless
--allow-train-seed.
"""

from __future__ import annotations

import argparse
import sys

from .scenes import CLASSES, DEFAULT_HELDOUT_SEED, HELDOUT_SEEDS, SCENE_PRESETS, TRAIN_SEEDS
from .split import write_split
from .video_io import FORMATS


def _resolutions(text: str) -> tuple[tuple[int, int], ...]:
    out = []
    for part in text.split(","):
        w, _, h = part.strip().lower().partition("x")
        if not (w.isdigit() and h.isdigit()) or int(w) % 2 or int(h) % 2 or min(int(w), int(h)) < 2:
            raise argparse.ArgumentTypeError(f"bad resolution {part!r} (want even WIDTHxHEIGHT)")
        out.append((int(w), int(h)))
    return tuple(out)


def _formats(text: str) -> tuple[str, ...]:
    fmts = tuple(f.strip().lower() for f in text.split(",") if f.strip())
    bad = [f for f in fmts if f not in FORMATS]
    if not fmts or bad:
        raise argparse.ArgumentTypeError(f"formats must be from {','.join(FORMATS)}, got {text!r}")
    return fmts


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m haltingvt synth",
        description="Write a held-out split of the procedural motion benchmark as video files "
                    f"({len(CLASSES)} classes: {', '.join(CLASSES)}). Seeds {TRAIN_SEEDS.start}..{TRAIN_SEEDS.stop - 1} "
                    f"are reserved for training, {HELDOUT_SEEDS.start}..{HELDOUT_SEEDS.stop - 1} for held-out data.")
    p.add_argument("--out", required=True, help="output folder (videos/, labels.csv, classes.txt, meta.jsonl)")
    p.add_argument("--count", type=int, default=100, help="number of clips (default 100)")
    p.add_argument("--seed", type=int, default=DEFAULT_HELDOUT_SEED, help=f"scene seed (default {DEFAULT_HELDOUT_SEED})")
    p.add_argument("--start", type=int, default=0, help="first clip index (default 0)")
    p.add_argument("--formats", type=_formats, default=FORMATS, help="comma list of mp4,webm (default both)")
    p.add_argument("--all-formats", action="store_true",
                   help="write every clip in every format (default: formats alternate by clip index)")
    p.add_argument("--resolutions", type=_resolutions, default=None,
                   help="comma list of WIDTHxHEIGHT to draw from (default 320x240,426x240,640x360,360x640,480x480)")
    p.add_argument("--scenes", choices=sorted(SCENE_PRESETS), default="default",
                   help="scene difficulty preset; must match the one the model was trained on (default: default)")
    p.add_argument("--workers", type=int, default=2, help="parallel clips (default 2)")
    p.add_argument("--allow-train-seed", action="store_true", help="allow a seed from the training namespace")
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.count < 1:
        print("synth: --count must be >= 1", file=sys.stderr)
        return 2
    if args.seed in TRAIN_SEEDS and not args.allow_train_seed:
        print(f"synth: seed {args.seed} is reserved for training (use {HELDOUT_SEEDS.start}..{HELDOUT_SEEDS.stop - 1},"
              " or --allow-train-seed)", file=sys.stderr)
        return 2
    write_split(args.out, args.count, args.seed, args.formats, args.all_formats, max(1, args.workers),
                args.start, args.resolutions, params=SCENE_PRESETS[args.scenes], progress=not args.quiet)
    return 0


main_synth = main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
