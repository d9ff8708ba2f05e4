"""python -m haltingvt merge-eval: accuracy against GFLOPs of an exported model folder, run by ONNX
Runtime (the graph that is served), for the Glimpser keep ratio, the halting threshold, ToMe and
vid-TLDR merge ratios and their combinations.

Choices are made on a validation split only (synth seed 2001 by default, a seed nothing else in the
project chose on); the test split's scenes (seed 3001, haltingvt.splits, rendered in memory rather than
through a codec) only report them. Writes merging.md, merging.json and merging_accuracy_vs_gflops.png.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .config import HaltingVTConfig, kept_patches
from .export import feeds
from .flops import FlopsConstants, video_macs
from .plots import accuracy_cost_axes
from .splits import SPLITS
from .synth import stream

VALIDATION_SEED = 2001
TEST_SEED = SPLITS["test"].seed
OFF = 6.0  # halt_threshold >= joint layers: no token halts


@dataclass(frozen=True)
class Setting:
    family: str
    keep: float
    threshold: float
    mode: str = "none"
    ratio: float = 0.0

    def label(self) -> str:
        thr = "off" if self.threshold >= OFF else f"{self.threshold:g}"
        merge = "" if self.mode == "none" else f", {self.mode} {self.ratio:g}"
        return f"keep {self.keep:g}, halt {thr}{merge}"


def settings(default_keep: float, default_thr: float) -> list[Setting]:
    s = [Setting("keep ratio", k, default_thr) for k in (0.3, 0.4, 0.5, 0.7, 1.0)]
    s += [Setting("halting threshold", default_keep, t) for t in (0.8, 0.9, 0.95, OFF)]
    for mode in ("tome", "tldr"):
        s += [Setting(f"{mode} ratio", default_keep, default_thr, mode, r) for r in (0.05, 0.1, 0.15, 0.2, 0.3, 0.4)]
        s += [Setting(f"{mode}, halting off", default_keep, OFF, mode, r) for r in (0.1, 0.2, 0.3)]
        s += [Setting("combination", k, default_thr, mode, r) for k in (0.3, 0.4) for r in (0.1, 0.2)]
    return s


@dataclass
class Scored:
    setting: Setting
    top1: float
    gflops: float
    tokens_per_layer: list[float]


def clips_of(cfg: HaltingVTConfig, rs: int, seed: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    pairs = [stream.make_eval_clip(seed, i, cfg.num_frames, cfg.img_size, rs) for i in range(count)]
    return np.stack([c for c, _ in pairs]), np.array([y for _, y in pairs])


def score(sess, k: FlopsConstants, clips: np.ndarray, labels: np.ndarray, s: Setting, batch: int = 16) -> Scored:
    kept = kept_patches(s.keep, k.patches) if s.keep < 1.0 else k.patches
    right, macs, tokens = 0, [], []
    for i in range(0, len(clips), batch):
        video = stream.to_tensor(clips[i:i + batch]).numpy()
        logits, active, _ = sess.run(None, feeds(video, s.keep, s.threshold, s.mode, s.ratio))
        right += int((logits.argmax(-1) == labels[i:i + batch]).sum())
        macs += [video_macs(k, kept, t, s.mode, s.ratio) for t in active.tolist()]
        tokens.append(active)
    return Scored(s, right / len(clips), float(np.mean(macs)) / 1e9, np.concatenate(tokens).mean(0).round(1).tolist())


def recommend(val: list[Scored], baseline: Scored, points: float = 1.0) -> dict[str, Scored]:
    """On validation: the cheapest setting overall, and the largest ToMe / vid-TLDR ratio at the
    default keep and threshold, whose top-1 is within `points` of the default knobs'."""
    ok = [r for r in val if r.top1 >= baseline.top1 - points / 100]
    best = {"overall": min(ok, key=lambda r: r.gflops)}
    for mode in ("tome", "tldr"):
        same = [r for r in ok if r.setting.family == f"{mode} ratio"]
        if same:
            best[f"{mode} at the default knobs"] = min(same, key=lambda r: r.gflops)
    return best


def markdown(val: list[Scored], test: list[Scored], dense: float, default_gflops: float) -> str:
    lines = ["| family | setting | validation top-1 (%) | test top-1 (%) | GFLOPs/video | % of dense | vs default knobs | mean tokens per joint layer |",
             "|---|---|---|---|---|---|---|---|"]
    for v, t in zip(val, test):
        lines.append(f"| {v.setting.family} | {v.setting.label()} | {100 * v.top1:.1f} | {100 * t.top1:.1f} | {t.gflops:.3f} | "
                     f"{100 * t.gflops / dense:.0f} | {100 * (t.gflops / default_gflops - 1):+.0f}% | "
                     f"{' / '.join(f'{x:.0f}' for x in t.tokens_per_layer)} |")
    return "\n".join(lines) + "\n"


def plot(test: list[Scored], path: Path, title: str) -> None:
    xlabel = "GFLOPs per video (1 MAC = 1 FLOP, merge cost included)"
    with accuracy_cost_axes(path, title, xlabel, "test top-1 (%)", (7, 4.5), 7) as ax:
        for family in dict.fromkeys(r.setting.family for r in test):
            rs = sorted((r for r in test if r.setting.family == family), key=lambda r: r.gflops)
            style = "o" if family == "combination" else "o-"
            ax.plot([r.gflops for r in rs], [100 * r.top1 for r in rs], style, label=family, markersize=4)


def main(argv: list[str]) -> int:
    import onnxruntime as ort

    ap = argparse.ArgumentParser(prog="python -m haltingvt merge-eval", description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="models/default", help="exported model folder")
    ap.add_argument("--val-seed", type=int, default=VALIDATION_SEED)
    ap.add_argument("--val-count", type=int, default=120)
    ap.add_argument("--test-seed", type=int, default=TEST_SEED)
    ap.add_argument("--test-count", type=int, default=SPLITS["test"].count)
    ap.add_argument("--out", help="folder for merging.md, merging.json and merging_accuracy_vs_gflops.png")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    folder = Path(args.model)
    manifest = json.loads((folder / "manifest.json").read_text())
    cfg = HaltingVTConfig.from_dict(manifest["config"])
    k = FlopsConstants.from_dict(manifest["flops"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = args.threads
    sess = ort.InferenceSession(str(folder / manifest["graph"]["file"]), opts, providers=["CPUExecutionProvider"])
    knobs = manifest["knobs"]
    default = Setting("default knobs", knobs["keep_ratio"]["default"], knobs["halt_threshold"]["default"])
    grid = [default] + settings(default.keep, default.threshold)
    rs = manifest["input"]["resize_short_side"]
    results = {}
    for split, seed, count in (("validation", args.val_seed, args.val_count), ("test", args.test_seed, args.test_count)):
        clips, labels = clips_of(cfg, rs, seed, count)
        results[split] = [score(sess, k, clips, labels, s) for s in grid]
        print(f"{split}: {count} clips, default knobs top-1 {100 * results[split][0].top1:.1f}%", flush=True)
    val, test = results["validation"], results["test"]
    picks = recommend(val, val[0])
    by_setting = {r.setting: r for r in test}
    report = {
        "validation": {"seed": args.val_seed, "clips": args.val_count}, "test": {"seed": args.test_seed, "clips": args.test_count},
        "dense_gflops": manifest["dense_gflops"],
        "recommended_on_validation": {name: {"setting": asdict(r.setting), "validation_top1": r.top1,
                                             "test_top1": by_setting[r.setting].top1, "gflops": by_setting[r.setting].gflops}
                                      for name, r in picks.items()},
        "results": [{"setting": asdict(v.setting), "validation_top1": v.top1, "test_top1": t.top1, "gflops": t.gflops,
                     "validation_gflops": v.gflops, "tokens_per_layer": t.tokens_per_layer} for v, t in zip(val, test)],
    }
    table = markdown(val, test, manifest["dense_gflops"], test[0].gflops)
    print(table)
    print(json.dumps(report["recommended_on_validation"], indent=1))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "merging.json").write_text(json.dumps(report, indent=1) + "\n")
        (out / "merging.md").write_text(table)
        plot(test, out / "merging_accuracy_vs_gflops.png",
             f"{manifest['name']} {manifest['version']}: {args.test_count} test clips")
    return 0
