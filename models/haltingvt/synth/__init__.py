"""Procedural motion benchmark: clips whose class is only visible in the motion.

- scenes: CLASSES, ClipSpec, make_spec(seed, index) (pure), seed namespaces
- render: render(spec, times, out_size, region) -> uint8 frames
- stream: training / eval sampling at model resolution (no files), torch SynthDataset
- split / video_io / cli: held-out split as MP4 (H.264) / WebM (VP9) files with labels.csv
"""

from .render import Renderer, frame_times, out_size_for, render
from .scenes import (CLASSES, DEFAULT_HELDOUT_SEED, DEFAULT_PARAMS, EASY_PARAMS, SCENE_PRESETS, DEFAULT_TRAIN_SEED, DEFAULT_VAL_SEED,
                     HELDOUT_SEEDS, NUM_CLASSES, TRAIN_SEEDS, ClipSpec, SceneParams, make_spec)
from .stream import (SynthDataset, iter_training_clips, make_eval_clip, make_training_clip, render_eval_clip,
                     render_full_clip, static_clip, to_tensor, tsn_indices)

__all__ = [
    "CLASSES", "NUM_CLASSES", "TRAIN_SEEDS", "HELDOUT_SEEDS", "DEFAULT_TRAIN_SEED", "DEFAULT_VAL_SEED",
    "DEFAULT_HELDOUT_SEED", "DEFAULT_PARAMS", "EASY_PARAMS", "SCENE_PRESETS", "SceneParams", "ClipSpec", "make_spec", "render", "Renderer",
    "frame_times", "out_size_for", "iter_training_clips", "make_training_clip", "make_eval_clip", "render_eval_clip",
    "render_full_clip", "static_clip", "to_tensor", "tsn_indices", "SynthDataset",
]
