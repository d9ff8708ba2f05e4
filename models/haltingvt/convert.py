"""Converts an authors' mmengine checkpoint (dun-research/HaltingVT) into ours.

Their keys (what `models/backbones/haltingvt_model.py` and `models/heads/haltingvt_head.py` of
github.com/dun-research/HaltingVT at commit 4830e2a register): `state_dict` with `backbone.model.*`
(timm / TimeSformer names, blocks.0-1 Glimpser, blocks.2-11 joint), `cls_head.fc_cls.*` and
`cls_head.fc_motion.*`.
Every key must be accounted for: a mismatch lists all missing, unexpected and mis-shaped keys at once.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from .checkpoint import save_checkpoint
from .config import HaltingVTConfig, preset
from .model import HaltingVT

PREFIXES = (("backbone.model.", ""), ("cls_head.fc_cls.", "fc_cls."), ("cls_head.fc_motion.", "fc_motion."))


class CheckpointMismatch(ValueError):
    pass


def ours_to_theirs(key: str) -> str:
    for theirs, ours in reversed(PREFIXES):
        if ours and key.startswith(ours):
            return theirs + key[len(ours):]
    return PREFIXES[0][0] + key


def theirs_to_ours(key: str) -> str | None:
    for theirs, ours in PREFIXES:
        if key.startswith(theirs):
            return ours + key[len(theirs):]
    return None


def config_from_state(state: dict[str, torch.Tensor], base: HaltingVTConfig) -> HaltingVTConfig:
    """Takes frames, dim, classes, image size and depth from the tensors; keep ratios and halting
    settings (not stored in the weights) from the preset."""
    dim = state["backbone.model.cls_token"].shape[-1]
    frames = state["backbone.model.time_embed"].shape[1]
    patches = state["backbone.model.pos_embed"].shape[1] - 1
    patch = state["backbone.model.patch_embed.proj.weight"].shape[-1]
    depth = 1 + max(int(k.split(".")[3]) for k in state if k.startswith("backbone.model.blocks."))
    classes = state["cls_head.fc_cls.weight"].shape[0]
    side = int(round(patches ** 0.5))
    return base.replace(embed_dim=dim, num_frames=frames, patch_size=patch, img_size=side * patch,
                        num_joint=depth - base.num_glimpser, num_classes=classes,
                        motion_head="cls_head.fc_motion.weight" in state, labels=())


def convert_state(state: dict[str, torch.Tensor], model: HaltingVT) -> dict[str, torch.Tensor]:
    ours = model.state_dict()
    mapped, seen, unexpected, misshaped = {}, set(), [], []
    for key, value in state.items():
        target = theirs_to_ours(key)
        if target is None or target not in ours:
            unexpected.append(key)
            continue
        seen.add(target)
        if tuple(value.shape) != tuple(ours[target].shape):
            misshaped.append(f"{key}: checkpoint {tuple(value.shape)} vs model {tuple(ours[target].shape)}")
        else:
            mapped[target] = value
    missing = [ours_to_theirs(k) for k in ours if k not in seen]
    if missing or unexpected or misshaped:
        lines = [f"checkpoint does not match the model: {len(missing)} missing, {len(unexpected)} unexpected, "
                 f"{len(misshaped)} mis-shaped"]
        lines += [f"  missing:    {k}" for k in missing]
        lines += [f"  unexpected: {k}" for k in unexpected]
        lines += [f"  mis-shaped: {k}" for k in misshaped]
        raise CheckpointMismatch("\n".join(lines))
    return mapped


def load_theirs(path: str | Path, trust_pickle: bool = False) -> dict[str, torch.Tensor]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=not trust_pickle)
    except Exception as err:  # mmengine's `meta` may hold objects the safe loader refuses
        raise ValueError(f"{path}: cannot read safely ({err}); if you trust the file, pass --trust-pickle") from err
    state = payload.get("state_dict", payload)
    return {k.removeprefix("module."): v for k, v in state.items()}


def convert_file(path: str | Path, base: HaltingVTConfig, labels: list[str] | None = None,
                 trust_pickle: bool = False) -> HaltingVT:
    state = load_theirs(path, trust_pickle)
    cfg = config_from_state(state, base)
    if labels:
        cfg = cfg.replace(labels=tuple(labels))
    model = HaltingVT(cfg)
    model.load_state_dict(convert_state(state, model))
    return model.eval()


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt convert", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True, help="authors' .pth (mmengine)")
    ap.add_argument("--preset", default="paper-minik-g05-b20", help="keep ratios and halting settings to use")
    ap.add_argument("--labels", help="text file, one class name per line")
    ap.add_argument("--out", required=True, help="our checkpoint (.pt)")
    ap.add_argument("--trust-pickle", action="store_true", help="allow arbitrary pickled objects in the file")
    args = ap.parse_args(argv)
    labels = Path(args.labels).read_text().splitlines() if args.labels else None
    try:
        model = convert_file(args.checkpoint, preset(args.preset), labels, args.trust_pickle)
    except (CheckpointMismatch, ValueError) as err:
        print(err)
        return 1
    save_checkpoint(args.out, model, meta={"converted_from": str(args.checkpoint), "preset": args.preset})
    print(f"wrote {args.out}: {model.cfg.num_frames} frames, {model.cfg.num_classes} classes, keep {model.cfg.glimpser_keep}")
    return 0
