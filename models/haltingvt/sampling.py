"""Which frames a clip is classified from; mirrored by src/engine/sample.ts (golden/sampling.json)."""

from __future__ import annotations


def segment_centre_indices(n: int, frames: int) -> list[int]:
    """Frame i of n decoded frames: floor((i + 0.5) * n / frames), the centre of `frames` equal
    segments (mmaction's test-mode clip covering the whole video); repeats frames when n < frames."""
    assert n >= 1 and frames >= 1, f"need at least one frame, got n={n}, frames={frames}"
    return [min(int((i + 0.5) * n / frames), n - 1) for i in range(frames)]
