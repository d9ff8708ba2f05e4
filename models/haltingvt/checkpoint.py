"""Our checkpoint format: {"format", "config", "state_dict", "labels", "meta"} in one torch file."""

from __future__ import annotations

from pathlib import Path

import torch

from .config import HaltingVTConfig
from .model import HaltingVT

FORMAT = "haltingvt-checkpoint/1"


def save_checkpoint(path: str | Path, model: HaltingVT, meta: dict | None = None,
                    optimizer: dict | None = None) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "config": model.cfg.to_dict(), "state_dict": model.state_dict(), "meta": meta or {}}
    if optimizer is not None:
        payload["optimizer"] = optimizer
    tmp = Path(f"{path}.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)  # atomic: a crash mid-save never leaves a truncated checkpoint


def load_checkpoint(path: str | Path) -> tuple[HaltingVT, dict]:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file (format={payload.get('format')!r}); "
                         "authors' mmengine checkpoints go through `python -m haltingvt convert` first")
    model = HaltingVT(HaltingVTConfig.from_dict(payload["config"]))
    model.load_state_dict(payload["state_dict"])
    return model.eval(), payload
