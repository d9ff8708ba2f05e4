"""python -m haltingvt eval: top-1/top-5 (with a 95% interval and the clip count), GFLOPs per video
and active tokens per layer on a split, optionally swept over Glimpser keep ratios and halting
thresholds (a Markdown table in the shape of the paper's Table 1 and a PNG plot of accuracy against
GFLOPs), plus the motion checks: accuracy on static clips (one frame repeated) and the motion head's
real-vs-static accuracy.

`--split validation` is where choices are made, `--split test` only reports (haltingvt.splits); the
model is a training checkpoint (PyTorch) or an exported folder (ONNX Runtime, the served graph).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from .checkpoint import load_checkpoint
from .config import HaltingVTConfig, kept_patches
from .data import list_videos
from .export import feeds, resize_short_side
from .flops import FlopsConstants, video_macs
from .model import HaltingVT
from .plots import accuracy_cost_axes
from .splits import SPLITS, ensure_written, wilson_interval
from .synth import stream as synth_stream
from .synth.scenes import DEFAULT_HELDOUT_SEED, TRAIN_SEEDS
from . import video as vio

SWEEP_KEEPS = (0.3, 0.4, 0.5, 0.7, 1.0)


@dataclass
class Result:
    keep: float
    threshold: float
    top1: float
    top5: float
    gflops: float
    tokens_per_layer: list[float]
    static_top1: float | None = None
    motion_acc: float | None = None
    clips: int = 0
    top1_interval: tuple[float, float] = (0.0, 1.0)  # 95%, Wilson


class Runner:
    """One model behind one call: a training checkpoint run by PyTorch, or an exported folder run by
    ONNX Runtime (no motion head there: the served graph does not compute it)."""

    def __init__(self, cfg: HaltingVTConfig, flops: FlopsConstants, model: HaltingVT | None = None, sess=None) -> None:
        self.cfg, self.flops, self.model, self.sess = cfg, flops, model, sess

    @classmethod
    def of(cls, model: HaltingVT) -> "Runner":
        return cls(model.cfg, FlopsConstants.of(model.cfg), model=model.eval())

    @classmethod
    def load(cls, path: str, threads: int, variant: str | None = None) -> "Runner":
        folder = Path(path)
        if not folder.is_dir():
            return cls.of(load_checkpoint(path)[0])
        import onnxruntime as ort

        manifest = json.loads((folder / "manifest.json").read_text())
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        graph = manifest["variants"][variant]["file"] if variant else manifest["graph"]["file"]  # KeyError: no such variant
        sess = ort.InferenceSession(str(folder / graph), opts, providers=["CPUExecutionProvider"])
        return cls(HaltingVTConfig.from_dict(manifest["config"]), FlopsConstants.from_dict(manifest["flops"]), sess=sess)

    def __call__(self, video: torch.Tensor, keep: float, threshold: float):
        """video (b, 3, T, S, S) -> logits (b, C), active tokens per joint layer (b, L), motion logits (b, 2) or None"""
        if self.sess is None:
            out = self.model.forward_compact(video, keep, threshold)
            return out.logits, out.active_tokens, out.motion_logits
        wanted = {i.name for i in self.sess.get_inputs()}  # graphs exported before merging lack its inputs
        logits, active, _ = self.sess.run(None, {k: v for k, v in feeds(video.numpy(), keep, threshold).items() if k in wanted})
        return torch.from_numpy(logits), torch.from_numpy(active), None


def load_clips(cfg: HaltingVTConfig, data: str, count: int, seed: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """uint8 clips [N, T, S, S, 3] and labels [N] with the test-time sampling."""
    rs = resize_short_side(cfg)
    if data == "synth":
        assert seed not in TRAIN_SEEDS, f"seed {seed} is a training seed: evaluate on held-out seeds (>= 1000)"
        pairs = [synth_stream.make_eval_clip(seed, i, cfg.num_frames, cfg.img_size, rs) for i in range(count)]
    else:
        items, names = list_videos(data)
        if names != cfg.label_names:
            raise ValueError(f"split classes {names} differ from the model's {cfg.label_names}")
        items = items[:count] if count else items
        pairs = [(vio.sample_video(p, cfg.num_frames, cfg.img_size, rs), y)
                 for p, y in tqdm(items, desc="decode", disable=not progress)]
    return np.stack([c for c, _ in pairs]), np.array([y for _, y in pairs])


@torch.no_grad()
def run(model: Runner, clips: np.ndarray, labels: np.ndarray, keep: float, threshold: float,
        batch: int = 16, static: bool = True) -> Result:
    k = model.flops
    kept = kept_patches(keep, k.patches) if keep < 1.0 else k.patches
    top1 = top5 = st1 = mot = 0
    macs, tokens = [], []
    for i in range(0, len(clips), batch):
        video = synth_stream.to_tensor(clips[i:i + batch])  # (b, 3, T, S, S)
        y = torch.from_numpy(labels[i:i + batch])
        logits, active, motion = model(video, keep, threshold)  # (b, C), (b, L), (b, 2) | None
        rank = logits.topk(min(5, logits.shape[1]), dim=-1).indices  # (b, 5)
        top1 += int((rank[:, 0] == y).sum())
        top5 += int((rank == y[:, None]).any(-1).sum())
        tokens.append(active.float())
        macs += [video_macs(k, kept, t) for t in active.tolist()]
        if static:  # one frame repeated: a model that really uses motion should be near chance here
            frozen = video[:, :, :1].expand_as(video).contiguous()
            st_logits, _, st_motion = model(frozen, keep, threshold)
            st1 += int((st_logits.argmax(-1) == y).sum())
            if motion is not None:
                mot += int((motion.argmax(-1) == 1).sum()) + int((st_motion.argmax(-1) == 0).sum())
    n = len(clips)
    has_motion = static and model.cfg.motion_head and model.sess is None
    return Result(keep, threshold, top1 / n, top5 / n, float(np.mean(macs)) / 1e9,
                  torch.cat(tokens).mean(0).tolist(), st1 / n if static else None,
                  mot / (2 * n) if has_motion else None, n, wilson_interval(top1, n))


def sweep(model: Runner, clips, labels, thresholds: list[float], progress: bool) -> list[Result]:
    settings = [(k, t) for t in thresholds for k in SWEEP_KEEPS]
    return [run(model, clips, labels, k, t, static=False) for k, t in tqdm(settings, desc="sweep", disable=not progress)]


def markdown(results: list[Result], dense_gflops: float) -> str:
    lines = ["| Glimpser keep | halting threshold | top-1 (%) | top-5 (%) | GFLOPs/V | % of dense | mean tokens per joint layer |",
             "|---|---|---|---|---|---|---|"]
    for r in results:
        thr = "off" if r.threshold >= 2 else f"{r.threshold:g}"
        lines.append(f"| {r.keep:g} | {thr} | {100 * r.top1:.1f} | {100 * r.top5:.1f} | {r.gflops:.3f} | "
                     f"{100 * r.gflops / dense_gflops:.0f} | {' / '.join(f'{t:.0f}' for t in r.tokens_per_layer)} |")
    return "\n".join(lines) + "\n"


def plot(results: list[Result], path: Path, title: str) -> None:
    with accuracy_cost_axes(path, title, "GFLOPs per video (1 MAC = 1 FLOP)", "top-1 (%)", (6, 4), 8) as ax:
        for thr in sorted({r.threshold for r in results}):
            rs = sorted((r for r in results if r.threshold == thr), key=lambda r: r.gflops)
            label = "no halting" if thr >= 2 else f"threshold {thr:g}"
            ax.plot([r.gflops for r in rs], [100 * r.top1 for r in rs], marker="o", label=label)
            for r in rs:
                ax.annotate(f"{r.keep:g}", (r.gflops, 100 * r.top1), textcoords="offset points", xytext=(3, 3), fontsize=7)


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt eval", description=__doc__.splitlines()[0])
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--checkpoint", help="a training checkpoint (.pt), run by PyTorch")
    which.add_argument("--model", help="an exported model folder, run by ONNX Runtime as served")
    ap.add_argument("--variant", choices=("int8", "fp16"),
                    help="with --model: run the folder's reduced-precision graph (manifest variants) instead of model.onnx")
    ap.add_argument("--split", choices=sorted(SPLITS),
                    help="a named split (rendered into data/NAME first if missing): validation chooses, test only reports")
    ap.add_argument("--data", default="synth", help="'synth' (rendered in memory), a split folder, or a path,label CSV")
    ap.add_argument("--count", type=int, default=0, help="clips (synth: required; folders: 0 = all)")
    ap.add_argument("--seed", type=int, default=DEFAULT_HELDOUT_SEED, help="held-out seed for --data synth")
    ap.add_argument("--keep", type=float, help="Glimpser keep ratio (default: the model's)")
    ap.add_argument("--threshold", type=float, help="halting threshold (default: 1 - eps)")
    ap.add_argument("--sweep", action="store_true", help="keep ratios x thresholds (0.99 and halting off)")
    ap.add_argument("--out", help="folder for results.json, sweep.md and accuracy_vs_gflops.png (prefixed SPLIT- with --split)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.variant and not args.model:
        ap.error("--variant needs --model")
    model = Runner.load(args.checkpoint or args.model, args.threads, args.variant)
    cfg = model.cfg
    if args.split:
        args.data = str(ensure_written(SPLITS[args.split], workers=args.threads, progress=not args.quiet))
    count = args.count or (240 if args.data == "synth" else 0)
    clips, labels = load_clips(cfg, args.data, count, args.seed, not args.quiet)
    keep = cfg.glimpser_keep[-1] if args.keep is None else args.keep
    threshold = cfg.default_threshold if args.threshold is None else args.threshold
    main_result = run(model, clips, labels, keep, threshold)
    dense = run(model, clips, labels, 1.0, float(cfg.num_joint), static=False)
    report = {"clips": len(clips), "split": args.split, "data": args.data, "model": args.checkpoint or args.model,
              "variant": args.variant or ("fp32" if args.model else None),
              "default": asdict(main_result), "dense": asdict(dense)}
    print(json.dumps(report, indent=1))
    if args.sweep:
        results = sweep(model, clips, labels, [cfg.default_threshold, float(cfg.num_joint)], not args.quiet)
        report["sweep"] = [asdict(r) for r in results]
        table = markdown(results, dense.gflops)
        print(table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        prefix = f"{args.split}-" if args.split else ""
        (out / f"{prefix}results.json").write_text(json.dumps(report, indent=1) + "\n")
        if args.sweep:
            (out / f"{prefix}sweep.md").write_text(table)
            plot(results, out / f"{prefix}accuracy_vs_gflops.png", f"{len(clips)} {args.split or 'held-out'} clips")
    return 0
