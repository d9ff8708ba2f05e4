"""python -m haltingvt COMMAND [...]: one entry point for the toolkit."""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "flops": ("haltingvt.flops_cli", "FLOPs per layer and per video for a preset"),
    "convert": ("haltingvt.convert", "authors' mmengine checkpoint -> ours"),
    "export": ("haltingvt.export", "checkpoint -> ONNX model folder with manifest, parity-checked"),
    "quantize": ("haltingvt.export.variants", "int8 / fp16 variants beside an exported model.onnx, parity-checked, in its manifest"),
    "synth": ("haltingvt.synth.cli", "procedural motion benchmark: stream or write a split"),
    "train": ("haltingvt.train", "train end to end (task + ponder + Motion Loss)"),
    "eval": ("haltingvt.evaluate", "accuracy, GFLOPs and tokens on a split; keep/threshold sweep"),
    "merge-eval": ("haltingvt.merge_eval", "accuracy vs GFLOPs of an exported model: keep, halting, ToMe, vid-TLDR"),
    "golden": ("haltingvt.golden", "write the golden cases shared with the TypeScript side"),
}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m haltingvt COMMAND [...]\n")
        for name, (_, help_) in COMMANDS.items():
            print(f"  {name:<8} {help_}")
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    module = importlib.import_module(COMMANDS[argv[0]][0])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))


def cli() -> None:
    sys.exit(main(sys.argv[1:]))
