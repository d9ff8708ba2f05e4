"""Named evaluation splits, so that the figure we report was not also the figure we chose on.

- validation: every choice is made here (recipe, stem kernels, training seed, checkpoint, knob
  defaults, merge ratios). Seed 1001 written as 240 files; the in-training monitor (seed 1000) and
  merge-eval's validation (seed 2001) are validation seeds too.
- test: evaluated only to report, after every choice is frozen. Seed 3001 written as 480 files, twice
  the validation split so that its 95% interval is about ±2 points at 95% top-1.

Both are rendered on demand (deterministic: same seed, same files) into data/<name>/.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from .synth.scenes import TEST_SEEDS, VALIDATION_SEEDS


@dataclass(frozen=True)
class Split:
    name: str
    seed: int
    count: int

    def folder(self, root: str | Path = "data") -> Path:
        return Path(root) / self.name


SPLITS = {s.name: s for s in (Split("validation", 1001, 240), Split("test", 3001, 480))}
assert SPLITS["validation"].seed in VALIDATION_SEEDS and SPLITS["test"].seed in TEST_SEEDS


def ensure_written(split: Split, root: str | Path = "data", workers: int = 2, progress: bool = False) -> Path:
    """The split's folder, rendered and encoded first if it is missing or incomplete."""
    from .synth.split import write_split

    out = split.folder(root)
    labels = out / "labels.csv"
    if not labels.exists() or sum(1 for _ in labels.open()) - 1 != split.count:
        write_split(out, split.count, split.seed, workers=workers, progress=progress)
    return out


def wilson_interval(correct: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% interval of a proportion (Wilson score): honest near 100%, where the normal one overshoots."""
    if n == 0:
        return (0.0, 1.0)
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))
