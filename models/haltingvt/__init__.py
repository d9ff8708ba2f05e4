"""HaltingVT toolkit: model, training, FLOPs accounting, checkpoint conversion and ONNX export."""

from .config import PRESETS, HaltingVTConfig, kept_patches, preset
from .model import HaltingOutput, HaltingVT

__all__ = ["PRESETS", "HaltingVTConfig", "HaltingOutput", "HaltingVT", "kept_patches", "preset"]
