"""One config dataclass for HaltingVT and its named presets.

The paper presets reproduce the eight configs of the authors' code (github.com/dun-research/HaltingVT
at commit 4830e2a, `configs/{minik,activitynet}/HaltingVT_*.py`), released with the paper (Wu et al.,
2024, "HaltingVT", arXiv 2401.04975): DeiT-S (dim 384, 6 heads), 2 Glimpser + 10 joint blocks, keep
ratios [1.0, k], halt_scale 10 and eps 0.01.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np


@dataclass(frozen=True)
class HaltingVTConfig:
    img_size: int = 224  # square input crop, pixels
    patch_size: int = 16  # conv patch embedding kernel and stride
    # "patch": the authors' per-frame linear patch embedding (one conv, kernel = stride = patch_size).
    # "conv3d": layers.ConvStem3d, space-time convs with `stem_channels` hidden widths, for training
    # from scratch (the per-frame embedding leaves all motion to attention; docs/decisions.md).
    stem: str = "patch"
    stem_channels: tuple[int, ...] = ()
    # Spatial kernel of each conv3d-stem stage; () = each stage's stride (non-overlapping, so a token
    # sees exactly its own 16x16 patch). A wider kernel lets a token see its neighbours' pixels (and
    # the way the target moved across them); the stride, and so the token grid, stay the same.
    stem_kernels: tuple[int, ...] = ()
    in_chans: int = 3
    num_frames: int = 8  # T: frames per clip; time_embed has T rows
    embed_dim: int = 384  # D
    num_heads: int = 6
    mlp_ratio: float = 4.0  # MLP hidden = mlp_ratio * D
    glimpser_keep: tuple[float, ...] = (1.0, 0.5)  # one Glimpser (divided) block per entry; keep ratio of its top-k
    num_joint: int = 10  # joint space-time blocks with token halting
    num_classes: int = 200
    halt_scale: float = 10.0  # h = sigmoid(halt_scale * x[..., 0] - halt_center)
    halt_center: float = 20.0
    halt_eps: float = 0.01  # a token halts once its cumulative h reaches 1 - eps (the default threshold)
    ln_eps: float = 1e-6
    drop_path: float = 0.1  # stochastic depth, linspace(0, drop_path, depth) over all blocks (training only)
    motion_head: bool = True  # 2-way real-vs-static head used by the Motion Loss
    labels: tuple[str, ...] = ()  # class names; empty means "class_<i>"
    # "trunc_normal": the authors' init (space N(0, 0.02), time zeros), right when the spatial
    # weights come from an image model. "sincos": fixed sine-cosine tables as the starting point
    # for training from scratch: with time at zero every frame order looks the same, and six of
    # the benchmark's twelve classes are time-reversed pairs (left/right, grow/shrink, ...).
    embed_init: str = "trunc_normal"
    embed_init_scale: float = 0.5  # sincos amplitude, of the order of a fresh patch embedding
    # Quirks of the authors' code (dun-research/HaltingVT, `models/backbones/haltingvt_model.py` and
    # `glimpser_helpers.py`), labelled Qn where the code reproduces them. True reproduces their code
    # so their checkpoints give their results; False gives the "clean" alternative.
    quirk_drop_cls_residual: bool = True  # Q1: a pruning Glimpser block replaces the class token by cls_mean alone
    quirk_attend_halted: bool = True  # Q2: halted tokens stay as zero vectors that are still attended to
    quirk_cls_halts: bool = True  # Q3: the class token halts like any token (else only at the last layer)
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)  # Q10: inputs normalised to [-1, 1]
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)

    def __post_init__(self) -> None:
        assert self.img_size % self.patch_size == 0, f"img_size {self.img_size} not a multiple of patch {self.patch_size}"
        assert self.embed_dim % self.num_heads == 0, f"embed_dim {self.embed_dim} not divisible by {self.num_heads} heads"
        assert len(self.glimpser_keep) >= 1 and self.glimpser_keep[0] == 1.0, "the first Glimpser block must keep 1.0"
        assert all(0.0 < k <= 1.0 for k in self.glimpser_keep), f"keep ratios must lie in (0, 1]: {self.glimpser_keep}"
        assert self.num_joint >= 1
        assert not self.labels or len(self.labels) == self.num_classes, "labels must name every class"
        assert self.stem in ("patch", "conv3d"), f"unknown stem {self.stem!r}"
        assert self.stem == "conv3d" or not (self.stem_channels or self.stem_kernels), \
            "stem_channels and stem_kernels need stem='conv3d'"
        if self.stem == "conv3d":
            stem_stages(self)
        assert self.embed_init in ("trunc_normal", "sincos"), f"unknown embed_init {self.embed_init!r}"

    @property
    def patches_per_frame(self) -> int:
        return (self.img_size // self.patch_size) ** 2

    @property
    def mlp_hidden(self) -> int:
        return int(self.embed_dim * self.mlp_ratio)

    @property
    def num_glimpser(self) -> int:
        return len(self.glimpser_keep)

    @property
    def depth(self) -> int:
        return self.num_glimpser + self.num_joint

    @property
    def default_threshold(self) -> float:
        return 1.0 - self.halt_eps

    @property
    def label_names(self) -> list[str]:
        return list(self.labels) if self.labels else [f"class_{i}" for i in range(self.num_classes)]

    def replace(self, **changes) -> "HaltingVTConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "HaltingVTConfig":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        assert not unknown, f"unknown config fields: {unknown}"
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def kept_patches(keep: float, patches: int) -> int:
    """Patches per frame that a Glimpser block keeps: ceil(keep * P), computed in float32 exactly as
    the ONNX graph and the TypeScript mirror do, clamped to [1, P]. Golden cases: golden/kept_patches.json."""
    product = np.float32(keep) * np.float32(patches)  # float32, like the graph
    return int(min(max(math.ceil(float(product)), 1), patches))


class StemStage(NamedTuple):
    c_in: int
    c_out: int
    stride: int  # spatial; the temporal stride is 1
    kernel: int  # spatial; the temporal kernel is 3 (padding 1)
    pad: int  # spatial zero padding on each side


def stem_stages(cfg: HaltingVTConfig) -> list[StemStage]:
    """The conv3d stem's stages, for the module and the FLOPs count alike (the exporter reads the built
    layers): the first stride takes what the later factor-2 stages leave of patch_size; padding
    (k - s + 1) // 2 keeps each stage's output side at exactly input / stride, so the token grid
    never depends on the kernel."""
    widths = (cfg.in_chans, *cfg.stem_channels, cfg.embed_dim)
    stages, patch = len(widths) - 1, cfg.patch_size
    first = patch // 2 ** (stages - 1)
    assert first >= 1 and first * 2 ** (stages - 1) == patch, f"patch {patch} does not split into {stages} stages"
    strides = [first] + [2] * (stages - 1)
    kernels = list(cfg.stem_kernels) or strides
    assert len(kernels) == stages, f"stem_kernels {cfg.stem_kernels} must give one kernel per stage ({stages})"
    assert all(k >= s for k, s in zip(kernels, strides)), f"stem_kernels {kernels} smaller than the strides {strides}"
    result, side = [], cfg.img_size
    for i in range(stages):
        stage = StemStage(widths[i], widths[i + 1], strides[i], kernels[i], (kernels[i] - strides[i] + 1) // 2)
        assert (side + 2 * stage.pad - stage.kernel) // stage.stride + 1 == side // stage.stride, \
            f"stem kernel {stage.kernel} at stride {stage.stride} does not keep the token grid"
        result.append(stage)
        side //= stage.stride
    return result


def _paper(keep: float, center: float, frames: int) -> HaltingVTConfig:
    return HaltingVTConfig(num_frames=frames, glimpser_keep=(1.0, keep), halt_center=center)


PRESETS: dict[str, HaltingVTConfig] = {
    # Mini-Kinetics: 8 frames x 32 interval, 20 epochs.
    "paper-minik-g03-b5": _paper(0.3, 5.0, 8),
    "paper-minik-g03-b10": _paper(0.3, 10.0, 8),
    "paper-minik-g05-b20": _paper(0.5, 20.0, 8),
    "paper-minik-g07-b20": _paper(0.7, 20.0, 8),
    # ActivityNet-1.3: 10 frames x 64 interval, 50 epochs.
    "paper-anet-g03-b10": _paper(0.3, 10.0, 10),
    "paper-anet-g05-b10": _paper(0.5, 10.0, 10),
    "paper-anet-g05-b20": _paper(0.5, 20.0, 10),
    "paper-anet-g07-b20": _paper(0.7, 20.0, 10),
    # The embedded default model: the full architecture (2 Glimpser + halting joint blocks, 8 frames)
    # at 112x112 and dim 128, small enough to train on a 2-core CPU within the hour. Trained from
    # scratch, its class token fell into halting at the first joint layer within ~80 steps (once it
    # halts there with its whole remainder, its halting score gets no gradient that could undo it;
    # the authors start from DeiT at lr 1e-5 and don't meet this), so here only patch tokens halt.
    # It starts from a space-time conv stem (24, 48 channels) and sine-cosine position/time tables:
    # with the authors' linear patch embedding it sat at chance for > 950 steps. The stem's first
    # kernel is 8 pixels at stride 4 and the next two 3 at stride 2, so a token sees 32x32 pixels
    # around its 16x16 patch (where the target came from and where it goes): held-out top-1 went from
    # 53% (kernels = strides, 3300 steps) to 95.8% (4000 steps, seed 1; 89.6% with seed 0). The wider
    # kernels make the stem itself 18% of the model's dense FLOPs instead of 7% (a GPU sweep chose
    # them: docs/decisions.md, "Training from scratch").
    "motion-tiny": HaltingVTConfig(
        img_size=112, embed_dim=128, num_heads=4, num_joint=6, glimpser_keep=(1.0, 0.5),
        num_classes=12, halt_center=10.0, drop_path=0.0, quirk_cls_halts=False,
        stem="conv3d", stem_channels=(24, 48), stem_kernels=(8, 3, 3), embed_init="sincos",
    ),
    # Unit tests: 4 frames of 3x3 patches, fast everywhere.
    "test-micro": HaltingVTConfig(
        img_size=48, patch_size=16, num_frames=4, embed_dim=32, num_heads=2, num_joint=4,
        glimpser_keep=(1.0, 0.5), num_classes=5, halt_center=0.0, drop_path=0.0,
    ),
}


def preset(name: str, **overrides) -> HaltingVTConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[name].replace(**overrides) if overrides else PRESETS[name]
