"""Training and evaluation data: the generated motion benchmark, or a user's videos.

A user's videos come as a folder with one sub-folder per class, or a CSV of `path,label` (paths
relative to the CSV). Sampling follows the paper (Wu et al., 2024, "HaltingVT", arXiv 2401.04975)
and, for resizing and cropping, the authors' pipelines (github.com/dun-research/HaltingVT at commit
4830e2a, `configs/minik/data_pipeline_ml_8x32.py`):
- train: one random frame in each of T equal segments, random short-side rescale, random crop;
- test: segment-centre frames, short side resized, centre crop (the service's exact sampling).
Every item also carries a static clip (one random frame of the same clip repeated T times) for the
Motion Loss, as their `datasets/rawframe_fakevid_dataset.py` builds it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from . import video as vio
from .synth import stream as synth_stream
from .synth.scenes import CLASSES, SceneParams, faded_scene

VIDEO_SUFFIXES = {".mp4", ".webm", ".mkv", ".mov", ".avi", ".m4v"}


@dataclass(frozen=True)
class Sampling:
    frames: int
    size: int
    resize_short_side: int  # test
    train_resize: tuple[int, int]  # train: short side drawn uniformly in this range


def list_videos(root: str | Path) -> tuple[list[tuple[Path, int]], list[str]]:
    """(path, class id) pairs and class names from a class-per-folder tree or a path,label CSV."""
    root = Path(root)
    if root.is_dir() and (root / "labels.csv").is_file():
        root = root / "labels.csv"  # a split written by `python -m haltingvt synth`
    if root.is_file() and root.suffix == ".csv":
        with open(root, newline="") as f:
            rows = [(r["path"], r["label"]) for r in csv.DictReader(f)]
        classes = root.parent / "classes.txt"  # class ids in the benchmark's order, not sorted names
        names = classes.read_text().split() if classes.is_file() else sorted({label for _, label in rows})
        unknown = sorted({label for _, label in rows} - set(names))
        if unknown:
            raise ValueError(f"{root}: labels not in {classes.name}: {unknown}")
        return [(root.parent / p, names.index(label)) for p, label in rows], names
    names = sorted(d.name for d in root.iterdir() if d.is_dir())
    items = [(p, i) for i, n in enumerate(names) for p in sorted((root / n).rglob("*")) if p.suffix.lower() in VIDEO_SUFFIXES]
    if not items:
        raise ValueError(f"{root}: no videos found (expected one sub-folder per class, or a CSV of path,label)")
    return items, names


def decode_train_clip(path: Path, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """uint8 [T, size, size, 3] with the paper's training sampling, decoded by ffmpeg through the
    same filter builder as the test-time sampler (rotation handled by ffmpeg's autorotate)."""
    n = vio.count_frames(path)
    idx = synth_stream.tsn_indices(n, s.frames, rng)
    short = int(rng.integers(s.train_resize[0], s.train_resize[1] + 1))
    crop_at = (float(rng.random()), float(rng.random()))
    uniq = sorted(set(int(i) for i in idx))
    raw = vio._run(vio.ffmpeg_sampling_args(path, uniq, s.size, short, crop_at), "ffmpeg decode")
    got = np.frombuffer(raw, np.uint8).reshape(-1, s.size, s.size, 3)
    pos = {v: k for k, v in enumerate(uniq)}
    return got[[pos[int(i)] for i in idx]]


class VideoFolderDataset(Dataset):
    """Items: (video float32 [3, T, S, S], static float32 [3, T, S, S], label)."""

    def __init__(self, items: list[tuple[Path, int]], sampling: Sampling, train: bool, seed: int = 0) -> None:
        self.items, self.s, self.train, self.seed = items, sampling, train, seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        path, label = self.items[i]
        rng = np.random.Generator(np.random.PCG64([self.seed, self.epoch, i]))
        if self.train:
            clip = decode_train_clip(path, self.s, rng)
        else:
            clip = vio.sample_video(path, self.s.frames, self.s.size, self.s.resize_short_side)
        static = synth_stream.static_clip(clip, rng)
        return synth_stream.to_tensor(clip), synth_stream.to_tensor(static), label


@dataclass(frozen=True)
class SceneRamp:
    """Scene difficulty by training clip index: flat backgrounds until clip `clean_until`, the full
    benchmark from clip `full_from`, linear in between (see synth.scenes.faded_scene)."""

    clean_until: int = 0
    full_from: int = 0

    def __call__(self, index: int) -> float:
        if index >= self.full_from:
            return 1.0
        return max(0.0, (index - self.clean_until) / max(self.full_from - self.clean_until, 1))


class SynthTrainStream(synth_stream.SynthDataset):
    """The generated benchmark as an (effectively endless) indexable stream of training clips, each
    with its static clip; the scenes follow `ramp`."""

    def __init__(self, seed: int, length: int, sampling: Sampling, start: int = 0, ramp: SceneRamp = SceneRamp()) -> None:
        super().__init__(seed, length, mode="train", frames=sampling.frames, size=sampling.size,
                         train_resize=sampling.train_resize, with_static=True, start=start)
        self.ramp = ramp

    def scene(self, index: int) -> SceneParams:
        return faded_scene(self.ramp(index), self.params)


def synth_eval_set(seed: int, length: int, sampling: Sampling) -> Dataset:
    return synth_stream.SynthDataset(seed, length, mode="eval", frames=sampling.frames, size=sampling.size,
                                     resize_short_side=sampling.resize_short_side, with_static=True)


def synth_labels() -> list[str]:
    return list(CLASSES)


def collate(batch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    videos, statics, labels = zip(*batch)
    return torch.stack(videos), torch.stack(statics), torch.tensor(labels)  # (B, 3, T, S, S) x2, (B,)
