"""Clips for training and validation, rendered directly at model resolution (no video files).

Training sampling (paper / TSN style, applied to the virtual video of n = spec.n_frames frames at
spec.fps): frame index i is drawn uniformly in segment [floor(i n / T), floor((i + 1) n / T)), the
short side is rescaled to an integer drawn uniformly in train_resize (long side by the eval
rounding rule), and a size x size crop is taken at a uniform offset inside the centred
short-side square (the arena that holds the labelled object is centred, so a crop along the whole
long side of a 16:9 frame would often miss it). Only the crop is rendered. No flips: they would
swap left/right and clockwise/counter-clockwise labels.

Eval sampling (`render_eval_clip`) mirrors `haltingvt.video.sample_video` on the written file:
segment-centre indices, short side resized to resize_short_side, centre crop (without the codec).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..video import segment_centre_indices
from .render import Renderer, out_size_for, render
from .scenes import DEFAULT_PARAMS, DEFAULT_TRAIN_SEED, HELDOUT_SEEDS, TRAIN_SEEDS, ClipSpec, SceneParams, clip_rng, make_spec

MEAN = 127.5  # contract normalisation: (pixel - 127.5) / 127.5
STD = 127.5


def tsn_indices(n: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """One random frame index in each of `frames` equal segments of 0..n-1 (TSN training sampling)."""
    starts = (np.arange(frames) * n) // frames
    ends = np.maximum((np.arange(1, frames + 1) * n) // frames, starts + 1)
    return np.minimum(rng.integers(starts, ends), n - 1)


def _check_train_seed(seed: int) -> None:
    if seed not in TRAIN_SEEDS:
        raise ValueError(f"seed {seed} is outside the training namespace {TRAIN_SEEDS} (held-out seeds: {HELDOUT_SEEDS})")


def make_training_clip(seed: int, index: int, frames: int = 8, size: int = 112,
                       train_resize: tuple[int, int] = (128, 160), static: bool = False,
                       params: SceneParams = DEFAULT_PARAMS) -> tuple[np.ndarray, int]:
    """(clip uint8 [frames, size, size, 3] RGB, label) for clip (seed, index) with training augmentation.

    Deterministic in (seed, index). static=True renders one of the clip's sampled frames (chosen at
    random) repeated `frames` times, same crop: the negative of the Motion Loss."""
    _check_train_seed(seed)
    spec = make_spec(seed, index, params)
    rng = clip_rng(seed, index, 1)
    idx = tsn_indices(spec.n_frames, frames, rng)
    short = int(rng.integers(train_resize[0], train_resize[1] + 1))
    if short < size:
        raise ValueError(f"train_resize {train_resize} below crop size {size}")
    H, W = out_size_for(spec, short)
    y0 = (H - short) // 2 + int(rng.integers(0, short - size + 1))
    x0 = (W - short) // 2 + int(rng.integers(0, short - size + 1))
    j = int(rng.integers(frames))  # drawn always, so static and moving clips share crop and indices
    times = idx / spec.fps
    if static:
        one = render(spec, times[j:j + 1], (H, W), (y0, x0, size, size))
        return np.repeat(one, frames, axis=0), spec.label
    return render(spec, times, (H, W), (y0, x0, size, size)), spec.label


def static_clip(clip: np.ndarray, rng: np.random.Generator | int | None = None) -> np.ndarray:
    """One random frame of `clip` [T, ...] repeated T times."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    j = int(rng.integers(clip.shape[0]))
    return np.repeat(clip[j:j + 1], clip.shape[0], axis=0)


def iter_training_clips(seed: int = DEFAULT_TRAIN_SEED, frames: int = 8, size: int = 112,
                        train_resize: tuple[int, int] = (128, 160), start: int = 0, step: int = 1,
                        stop: int | None = None, with_static: bool = False,
                        params: SceneParams = DEFAULT_PARAMS) -> Iterator[tuple]:
    """Endless (unless stop) stream of (clip, label), or (clip, static, label) with with_static.

    Clip indices start, start + step, ...: give DataLoader worker w of k start=w, step=k."""
    _check_train_seed(seed)
    index = start
    while stop is None or index < stop:
        clip, label = make_training_clip(seed, index, frames, size, train_resize, False, params)
        if with_static:
            yield clip, static_clip(clip, np.random.Generator(np.random.PCG64([seed, index, 2]))), label
        else:
            yield clip, label
        index += step


def render_eval_clip(spec: ClipSpec, frames: int = 8, size: int = 112, resize_short_side: int = 128) -> np.ndarray:
    """uint8 [frames, size, size, 3]: the contract's eval sampling applied to the virtual video."""
    idx = segment_centre_indices(spec.n_frames, frames)
    H, W = out_size_for(spec, resize_short_side)
    y0, x0 = (H - size) // 2, (W - size) // 2
    return render(spec, np.asarray(idx) / spec.fps, (H, W), (y0, x0, size, size))


def make_eval_clip(seed: int, index: int, frames: int = 8, size: int = 112, resize_short_side: int = 128,
                   params: SceneParams = DEFAULT_PARAMS) -> tuple[np.ndarray, int]:
    spec = make_spec(seed, index, params)
    return render_eval_clip(spec, frames, size, resize_short_side), spec.label


def render_full_clip(spec: ClipSpec) -> Iterator[np.ndarray]:
    """Every frame of the virtual video at the spec's file resolution (for the split writer)."""
    r = Renderer(spec, (spec.height, spec.width))
    for k in range(spec.n_frames):
        yield r.frame(k / spec.fps)


def to_tensor(clip: np.ndarray):
    """uint8 [T, H, W, 3] (or [B, T, H, W, 3]) -> normalised float32 torch tensor [3, T, H, W] ([B, 3, T, H, W])."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(clip)).float().sub_(MEAN).div_(STD)
    return x.permute(3, 0, 1, 2) if x.ndim == 4 else x.permute(0, 4, 1, 2, 3)


def _dataset_base():
    try:
        from torch.utils.data import Dataset
    except ImportError:  # pragma: no cover
        return object
    return Dataset


class SynthDataset(_dataset_base()):
    """Map-style torch dataset over clips (seed, start + i), i < length.

    mode "train": make_training_clip (augmented; needs a training seed); "eval": make_eval_clip.
    Items: (video float32 [3, T, size, size], label) or, with with_static,
    (video, static video, label). Deterministic per item, so any number of workers works."""

    def __init__(self, seed: int, length: int, mode: str = "train", frames: int = 8, size: int = 112,
                 train_resize: tuple[int, int] = (128, 160), resize_short_side: int = 128, start: int = 0,
                 with_static: bool = False, params: SceneParams = DEFAULT_PARAMS) -> None:
        assert mode in ("train", "eval"), mode
        if mode == "train":
            _check_train_seed(seed)
        self.seed, self.length, self.mode, self.frames, self.size = seed, int(length), mode, frames, size
        self.train_resize, self.resize_short_side, self.start = train_resize, resize_short_side, start
        self.with_static, self.params = with_static, params

    def __len__(self) -> int:
        return self.length

    def scene(self, index: int) -> SceneParams:
        """Scene parameters of clip `index` (subclasses vary them, e.g. a training curriculum)."""
        return self.params

    def __getitem__(self, i: int):
        if not 0 <= i < self.length:
            raise IndexError(i)
        index = self.start + int(i)
        params = self.scene(index)
        if self.mode == "train":
            clip, label = make_training_clip(self.seed, index, self.frames, self.size, self.train_resize,
                                             False, params)
        else:
            clip, label = make_eval_clip(self.seed, index, self.frames, self.size, self.resize_short_side, params)
        if self.with_static:
            st = static_clip(clip, np.random.Generator(np.random.PCG64([self.seed, index, 2])))
            return to_tensor(clip), to_tensor(st), label
        return to_tensor(clip), label


def training_seconds_per_clip(n: int = 20, **kw) -> float:
    """Measured seconds to make one training clip (for reports)."""
    import time

    t0 = time.perf_counter()
    for i in range(n):
        make_training_clip(DEFAULT_TRAIN_SEED, 10_000_000 + i, **kw)
    return (time.perf_counter() - t0) / n

