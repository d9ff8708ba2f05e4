"""python -m haltingvt train: end-to-end training (task + ponder + Motion Loss) on the generated
motion benchmark or on a user's videos.

As the authors: every batch holds real clips and static clips (one frame repeated) with the same
labels; the task CE applies to both, the motion head tells them apart; Adam, linear warm-up then
cosine, gradient clipping. Unlike the authors we train from scratch (no DeiT weights can be
downloaded here), so the learning rate is higher than their fine-tuning 1e-5.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from .checkpoint import load_checkpoint, save_checkpoint
from .config import preset
from .data import Sampling, SceneRamp, SynthTrainStream, VideoFolderDataset, collate, list_videos, synth_labels
from .export import resize_short_side
from .flops import gflops
from .losses import LossWeights, total_loss
from .model import HaltingVT
from .synth.scenes import DEFAULT_TRAIN_SEED


@dataclass
class TrainConfig:
    preset: str = "motion-tiny"
    data: str = "synth"  # "synth", a class-per-folder tree, or a path,label CSV
    out: str = "runs/motion-tiny"
    steps: int = 3000
    batch_size: int = 16  # real clips per batch; as many static clips are added
    lr: float = 1e-3
    warmup_steps: int = 150
    weight_decay: float = 1e-5  # Adam's L2 as the authors (not AdamW)
    clip_grad: float = 5.0
    ponder: float = 5e-4
    motion: float = 1.0
    distr_prior: float = 0.0
    halt_center: float | None = None  # override the preset's
    keep_choices: tuple[float, ...] = ()  # Glimpser keep ratio drawn per step (robust keep knob); () = the preset's
    train_clips: int = 0  # synth: cycle over this many clips (0 = a new clip for every sample)
    # Curriculum for training from scratch (the authors fine-tune DeiT, where the Glimpser's class
    # attention is already meaningful and halting emerges slowly at lr 1e-5): keep every patch until
    # prune_start, then draw keep_choices; no halting and no ponder loss until halt_start. Without it
    # the random top-k drops the moving object and, pushed by the ponder loss through Adam, most
    # patches halt at the first joint layer before the task is learned; neither decision gets a
    # gradient that could undo it, and the loss stayed at chance for 750 steps.
    prune_start: int = 0
    halt_start: int = 0
    # synth only: flat backgrounds for the first clean_steps, the full scenes from full_scene_step
    # (faded in between); 0, 0 = the full benchmark from the start.
    clean_steps: int = 0
    full_scene_step: int = 0
    # Static clips per batch for the Motion Loss; 0 = one per real clip, as the authors. A few per
    # batch teach the motion head as well (it is near-perfect within 100 steps) and the batch costs
    # 40% less, so the budget buys more steps on the task.
    static_clips: int = 0
    embed_init: str | None = None  # override the preset's ("sincos" for from-scratch runs; see config.py)
    stop_at: int = 0  # stop (and save) at this step while the schedule still runs to `steps`; 0 = at `steps`
    train_resize: tuple[int, int] = (128, 160)
    seed: int = 0
    data_seed: int = DEFAULT_TRAIN_SEED
    workers: int = 1
    threads: int = 2
    device: str = "auto"
    save_every: int = 250
    time_budget_min: float = 0.0  # stop early (and save) after this many minutes; 0 = no limit
    resume: str | None = None
    labels: list[str] = field(default_factory=list)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def lr_at(step: int, tc: TrainConfig) -> float:
    """Linear warm-up from 0.1x (the authors' start_factor), then cosine to 0."""
    if step < tc.warmup_steps:
        return tc.lr * (0.1 + 0.9 * step / max(tc.warmup_steps, 1))
    progress = (step - tc.warmup_steps) / max(tc.steps - tc.warmup_steps, 1)
    return tc.lr * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


def build(tc: TrainConfig, start_step: int = 0) -> tuple[HaltingVT, Sampling, torch.utils.data.Dataset]:
    base = preset(tc.preset)
    sampling = Sampling(base.num_frames, base.img_size, resize_short_side(base), tc.train_resize)
    if tc.data == "synth":
        labels = synth_labels()
        seen = start_step * tc.batch_size  # the stream is indexed: a resumed run continues with new clips
        length = tc.train_clips or (tc.steps - start_step) * tc.batch_size
        ramp = SceneRamp(tc.clean_steps * tc.batch_size, tc.full_scene_step * tc.batch_size)
        dataset = SynthTrainStream(tc.data_seed, length, sampling, start=0 if tc.train_clips else seen, ramp=ramp)
    else:
        items, labels = list_videos(tc.data)
        dataset = VideoFolderDataset(items, sampling, train=True, seed=tc.seed)
    overrides = {"num_classes": len(labels), "labels": tuple(labels)}
    if tc.halt_center is not None:
        overrides["halt_center"] = tc.halt_center
    if tc.embed_init is not None:
        overrides["embed_init"] = tc.embed_init
    return HaltingVT(base.replace(**overrides)), sampling, dataset


def curriculum(step: int, tc: TrainConfig, rng: np.random.Generator, model: HaltingVT,
               weights: LossWeights) -> tuple[float | None, float | None, LossWeights]:
    """(keep ratio, halting threshold, loss weights) for this step; None = the model's defaults."""
    keep = None
    if step < tc.prune_start:
        keep = 1.0
    elif tc.keep_choices:
        keep = float(rng.choice(tc.keep_choices))
    if step < tc.halt_start:  # a threshold no cumulative score reaches before the last layer
        return keep, float(model.cfg.num_joint), LossWeights(0.0, weights.motion, 0.0)
    return keep, None, weights


def batches(loader: DataLoader, dataset):
    epoch = 0
    while True:
        if hasattr(dataset, "epoch"):
            dataset.epoch = epoch
        yield from loader
        epoch += 1


def train(tc: TrainConfig, progress: bool = True) -> dict:
    torch.manual_seed(tc.seed)
    random.seed(tc.seed)
    np.random.seed(tc.seed)
    torch.set_num_threads(tc.threads)
    device = pick_device(tc.device)
    payload = load_checkpoint(tc.resume)[1] if tc.resume else None
    start = int(payload["meta"]["step"]) if payload else 0
    model, sampling, dataset = build(tc, start)
    weights = LossWeights(tc.ponder, tc.motion, tc.distr_prior)
    opt = torch.optim.Adam(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    out = Path(tc.out)
    if payload:
        model.load_state_dict(payload["state_dict"])
        opt.load_state_dict(payload["optimizer"])
    model.to(device).train()
    loader = DataLoader(dataset, batch_size=tc.batch_size, shuffle=tc.data != "synth", num_workers=tc.workers,
                        collate_fn=collate, drop_last=True, persistent_workers=tc.workers > 0,
                        generator=torch.Generator().manual_seed(tc.seed))
    it = batches(loader, dataset)
    history, t0 = [], time.time()
    keep_rng = np.random.default_rng(tc.seed + start)
    bar = tqdm(range(start, tc.steps), initial=start, total=tc.steps, disable=not progress, desc="train")
    for step in bar:
        video, static, labels = (t.to(device) for t in next(it))
        if tc.static_clips:
            static = static[: tc.static_clips]  # (S, 3, T, H, W)
        for group in opt.param_groups:
            group["lr"] = lr_at(step, tc)
        clips = torch.cat([video, static])  # (2B, 3, T, S, S): real then static
        static_labels = labels[: len(static)]  # (S,)
        is_real = torch.cat([torch.ones_like(labels), torch.zeros_like(static_labels)])
        keep, threshold, step_weights = curriculum(step, tc, keep_rng, model, weights)
        out_ = model.forward_reference(clips, keep=keep, threshold=threshold)
        loss, terms = total_loss(out_.logits, out_.motion_logits, out_.rho, torch.cat([labels, static_labels]), is_real,
                                 step_weights, out_.halting_per_layer)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.clip_grad)
        opt.step()
        tokens = out_.active_tokens[: len(labels)].float().mean(0).tolist()  # real clips only
        acc = float((out_.logits[: len(labels)].argmax(-1) == labels).float().mean())
        history.append({"step": step + 1, "loss": float(loss.detach()), **terms, "acc": acc, "tokens": tokens})
        bar.set_postfix_str(" ".join(f"{k} {v:.3f}" for k, v in terms.items())
                            + f" acc {acc:.2f} tok " + "/".join(f"{t:.0f}" for t in tokens))
        done = step + 1 in (tc.steps, tc.stop_at) or (tc.time_budget_min and time.time() - t0 > tc.time_budget_min * 60)
        if (step + 1) % tc.save_every == 0 or done:
            save(out / "last.pt", model, opt, tc, step + 1)
        if done:
            break
    (out / "history.json").write_text(json.dumps(history) + "\n")
    model.eval().cpu()
    final = history[-1] if history else {}
    save(out / "final.pt", model, None, tc, final.get("step", start))
    return {"steps": final.get("step", start), "seconds": time.time() - t0, "last": final,
            "dense_gflops": gflops(model.cfg, 1.0)}


def save(path: Path, model: HaltingVT, opt, tc: TrainConfig, step: int) -> None:
    meta = {"step": step, "train_config": asdict(tc)}
    save_checkpoint(path, model, meta, opt.state_dict() if opt is not None else None)


def parse(argv: list[str]) -> tuple[TrainConfig, bool]:
    tc = TrainConfig()
    ap = argparse.ArgumentParser(prog="python -m haltingvt train", description=__doc__.splitlines()[0])
    for name, value in asdict(tc).items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            ap.add_argument(flag, type=lambda s: s.lower() in ("1", "true", "yes"), default=value)
        elif isinstance(value, tuple):
            cast = float if name == "keep_choices" else int
            ap.add_argument(flag, type=lambda s, cast=cast: tuple(cast(x) for x in s.split(",") if x), default=value)
        elif isinstance(value, list):
            continue
        elif value is None:
            ap.add_argument(flag, type=float if name == "halt_center" else str, default=None,
                            **({"choices": ("trunc_normal", "sincos")} if name == "embed_init" else {}))
        else:
            ap.add_argument(flag, type=type(value), default=value)
    ap.add_argument("--quiet", action="store_true", help="no progress bar")
    args = vars(ap.parse_args(argv))
    quiet = args.pop("quiet")
    return TrainConfig(**args), quiet


def main(argv: list[str]) -> int:
    tc, quiet = parse(argv)
    result = train(tc, progress=not quiet)
    print(json.dumps({k: v for k, v in result.items() if k != "last"} | {"last": result["last"]}, indent=1))
    return 0
