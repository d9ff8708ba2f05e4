"""Plateau experiment (docs/decisions.md, "Training from scratch"): motion-tiny trained from scratch
with every patch kept and no halting, optionally distilled from teacher_cnn.py (its logits at
temperature 2, and its conv3 features regressed from the tokens of the first Glimpser block).
Prints validation accuracy on 96 rendered held-out clips every 50 steps. Not part of the package.

    PYTHONPATH=models python models/experiments/distill_vit.py [teacher=runs/plateau/teacher_default.pt]
        [hint=1] [kd=1] [min=10] [lr=1e-3] [channels=24,48 (conv3d stem)]        (teacher=none: the plain from-scratch baseline)
"""

import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from teacher_cnn import teacher_net, validation
from torch import nn

from haltingvt.config import preset
from haltingvt.losses import LossWeights, total_loss
from haltingvt.model import HaltingVT
from haltingvt.synth.scenes import DEFAULT_PARAMS
from haltingvt.synth.stream import make_training_clip, static_clip, to_tensor
from haltingvt.train import TrainConfig, lr_at

BATCH, STATIC, WARMUP, SCHEDULE = 16, 4, 100, 3000


def teacher_targets(teacher: nn.Sequential, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Teacher features in the student's token order (patch n-major, then frame) and its logits."""
    with torch.no_grad():
        h = teacher[:6](x)  # (B, 64, T, 14, 14)
        logits = teacher[6:](h)  # (B, classes)
        h = F.avg_pool3d(h, (1, 2, 2))  # (B, 64, T, 7, 7): one cell per 16x16 patch
        B, C, T, Y, X = h.shape
        tokens = h.permute(0, 3, 4, 2, 1).reshape(B, Y * X * T, C)  # (B, P*T, 64)
        tokens = (tokens - tokens.mean((0, 1))) / (tokens.std((0, 1)) + 1e-5)
    return tokens, logits


def main(args: dict[str, str]) -> None:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    lr, hint_w, kd_w = float(args.get("lr", 1e-3)), float(args.get("hint", 1.0)), float(args.get("kd", 1.0))
    path = args.get("teacher", "runs/plateau/teacher_default.pt")
    teacher = None
    if path != "none":
        teacher = teacher_net()
        teacher.load_state_dict(torch.load(path))
        teacher.eval()
    stem = {"stem": "conv3d", "stem_channels": tuple(int(c) for c in args["channels"].split(","))} if "channels" in args else {}
    cfg = preset("motion-tiny", embed_init="sincos", **stem)
    model = HaltingVT(cfg)
    glimpsed = {}
    model.blocks[0].register_forward_hook(lambda mod, inp, out: glimpsed.__setitem__("x", out[0]))
    hint_head = nn.Linear(cfg.embed_dim, 64)
    opt = torch.optim.Adam(list(model.parameters()) + list(hint_head.parameters()), lr=lr, weight_decay=1e-5)
    vx, vy = validation(DEFAULT_PARAMS)
    schedule = TrainConfig(lr=lr, warmup_steps=WARMUP, steps=SCHEDULE)
    t0, index, accs = time.time(), 0, []
    for step in range(1, 100_000):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, schedule)
        clips, labels = zip(*[make_training_clip(0, index + i) for i in range(BATCH)])
        index += BATCH
        real = np.stack(clips)
        static = np.stack([static_clip(real[i], index + i) for i in range(STATIC)])
        x_real = to_tensor(real)
        x = torch.cat([x_real, to_tensor(static)])  # (B+S, 3, T, H, W)
        y = torch.tensor(list(labels) + list(labels[:STATIC]))
        is_real = torch.cat([torch.ones(BATCH), torch.zeros(STATIC)]).long()
        out = model.forward_reference(x, keep=1.0, threshold=float(cfg.num_joint))
        loss, terms = total_loss(out.logits, out.motion_logits, out.rho, y, is_real, LossWeights(0.0, 1.0, 0.0))
        if teacher is not None:
            tokens, t_logits = teacher_targets(teacher, x_real)
            loss = loss + hint_w * F.mse_loss(hint_head(glimpsed["x"][:BATCH, 1:]), tokens)
            loss = loss + kd_w * 4 * F.kl_div(F.log_softmax(out.logits[:BATCH] / 2, -1), F.softmax(t_logits / 2, -1),
                                              reduction="batchmean")
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        accs.append(float((out.logits[:BATCH].argmax(-1) == y[:BATCH]).float().mean()))
        if step % 50 == 0:
            model.eval()
            with torch.no_grad():
                val = model.forward_reference(vx, keep=1.0, threshold=float(cfg.num_joint)).logits.argmax(-1)
            model.train()
            print(f"step {step} t {time.time() - t0:.0f}s task {terms['task']:.3f} "
                  f"train {np.mean(accs[-50:]):.3f} val {float((val == vy).float().mean()):.3f}", flush=True)
        if time.time() - t0 > float(args.get("min", 10)) * 60:
            break


if __name__ == "__main__":
    main(dict(a.split("=", 1) for a in sys.argv[1:]))
