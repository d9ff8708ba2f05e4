"""Plateau experiment (docs/decisions.md, "Training from scratch"): a small 3D CNN on the motion
benchmark, as a yardstick and as the teacher of distill_vit.py. Not part of the package.

    PYTHONPATH=models python models/experiments/teacher_cnn.py [scene=default|clean] [min=6.5] [out=runs/plateau]
"""

import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from haltingvt.synth.scenes import DEFAULT_PARAMS, faded_scene
from haltingvt.synth.stream import make_eval_clip, make_training_clip, to_tensor


def teacher_net(classes: int = 12) -> nn.Sequential:
    """(B, 3, 8, 112, 112) -> (B, classes); layers [:6] give (B, 64, 8, 14, 14) local motion features."""
    return nn.Sequential(
        nn.Conv3d(3, 32, (3, 5, 5), (1, 2, 2), (1, 2, 2)), nn.ReLU(),
        nn.Conv3d(32, 64, 3, (1, 2, 2), 1), nn.ReLU(),
        nn.Conv3d(64, 64, 3, (1, 2, 2), 1), nn.ReLU(),
        nn.Conv3d(64, 128, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool3d(1), nn.Flatten(), nn.Linear(128, classes))


def validation(scene, count: int = 96) -> tuple[torch.Tensor, torch.Tensor]:
    clips = [make_eval_clip(1000, i, params=scene) for i in range(count)]
    return to_tensor(np.stack([c for c, _ in clips])), torch.tensor([label for _, label in clips])


def main(args: dict[str, str]) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    scene = faded_scene(0.0) if args.get("scene") == "clean" else DEFAULT_PARAMS
    out = Path(args.get("out", "runs/plateau"))
    out.mkdir(parents=True, exist_ok=True)
    net = teacher_net()
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    vx, vy = validation(scene)
    t0, index = time.time(), 0
    for step in range(1, 100_000):
        clips, labels = zip(*[make_training_clip(0, index + i, params=scene) for i in range(16)])
        index += 16
        loss = nn.functional.cross_entropy(net(to_tensor(np.stack(clips))), torch.tensor(labels))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            with torch.no_grad():
                acc = float((net(vx).argmax(-1) == vy).float().mean())
            print(f"step {step} t {time.time() - t0:.0f}s loss {loss.item():.3f} val {acc:.3f}", flush=True)
        if time.time() - t0 > float(args.get("min", 6.5)) * 60:
            break
    torch.save(net.state_dict(), out / f"teacher_{args.get('scene', 'default')}.pt")


if __name__ == "__main__":
    main(dict(a.split("=", 1) for a in sys.argv[1:]))
