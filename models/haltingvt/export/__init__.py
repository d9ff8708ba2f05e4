"""`python -m haltingvt export`: writes model.onnx, labels.txt and manifest.json (docs/contracts.md),
then checks ONNX Runtime against the PyTorch reference path before declaring success."""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..config import HaltingVTConfig
from ..flops import FlopsConstants, gflops
from ..merging import MAX_MERGE_RATIO, MERGE_MODES, merge_mode_index
from ..model import HaltingVT
from .graph import OPSET, build_graph

MANIFEST_FORMAT = "haltingvt-manifest/1"


def resize_short_side(cfg: HaltingVTConfig) -> int:
    """Test-time resize before the centre crop, scaled from the paper's 256 -> 224."""
    return int(cfg.img_size * 256 / 224 + 0.5)


def knobs(cfg: HaltingVTConfig) -> dict:
    return {
        "keep_ratio": {"default": cfg.glimpser_keep[-1], "min": 0.05, "max": 1.0,
                       "help": "share of patches per frame the Glimpser keeps"},
        "halt_threshold": {"default": round(cfg.default_threshold, 6), "min": 0.5, "max": float(cfg.num_joint),
                           "help": "cumulative halting score at which a token stops; >= joint layers - 1 disables halting"},
        "top_k": {"default": min(5, cfg.num_classes), "min": 1, "max": cfg.num_classes, "help": "labels returned"},
        "merge_mode": {"default": "none", "choices": list(MERGE_MODES),
                       "help": "training-free token merging in the joint layers: none, tome (ToMe) or tldr (vid-TLDR)"},
        "merge_ratio": {"default": 0.0, "min": 0.0, "max": MAX_MERGE_RATIO,
                        "help": "share of the live patch tokens each joint layer merges away (with merge_mode tome or tldr)"},
    }


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest(cfg: HaltingVTConfig, name: str, version: str, files: dict) -> dict:
    T, S, P = cfg.num_frames, cfg.img_size, cfg.patches_per_frame
    return {
        "format": MANIFEST_FORMAT,
        "name": name,
        "version": version,
        "config": cfg.to_dict(),
        "labels": cfg.label_names,
        "input": {
            "layout": "NCTHW", "frames": T, "size": S, "resize_short_side": resize_short_side(cfg),
            "resize_rounding": "floor(x + 0.5)", "scale_flags": "bilinear", "crop": "center",
            "sampling": "segment-centre", "color": "rgb24", "mean": list(cfg.mean), "std": list(cfg.std),
        },
        "graph": {
            "file": "model.onnx", "opset": OPSET,
            "inputs": [{"name": "video", "dtype": "float32", "shape": ["batch", 3, T, S, S]},
                       {"name": "keep_ratio", "dtype": "float32", "shape": []},
                       {"name": "halt_threshold", "dtype": "float32", "shape": []},
                       {"name": "merge_mode", "dtype": "int64", "shape": []},
                       {"name": "merge_ratio", "dtype": "float32", "shape": []}],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", cfg.num_classes]},
                        {"name": "active_tokens", "dtype": "int64", "shape": ["batch", cfg.num_joint]},
                        {"name": "patch_stop_layer", "dtype": "int64", "shape": ["batch", T, P]}],
        },
        "knobs": knobs(cfg),
        "flops": FlopsConstants.of(cfg).to_dict(),
        "dense_gflops": round(gflops(cfg, 1.0), 6),
        "files": files,
    }


def check_parity(model: HaltingVT, onnx_path: Path, batch: int = 2, seed: int = 0) -> dict:
    """ONNX Runtime vs the PyTorch reference path on random videos at the default knobs."""
    import onnxruntime as ort

    cfg = model.cfg
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(seed)
    video = torch.rand(batch, 3, cfg.num_frames, cfg.img_size, cfg.img_size, generator=g) * 2 - 1
    with torch.no_grad():
        ref = model.forward_reference(video)
    logits, tokens, _ = sess.run(None, feeds(video.numpy(), cfg.glimpser_keep[-1], cfg.default_threshold))
    rel = float(np.abs(logits - ref.logits.numpy()).max() / max(np.abs(ref.logits.numpy()).max(), 1e-12))
    same_tokens = bool(np.array_equal(tokens, ref.active_tokens.numpy()))
    if rel > 1e-4 or not same_tokens:
        raise AssertionError(f"ONNX Runtime disagrees with PyTorch: logits rel err {rel:.2e}, tokens equal {same_tokens}")
    return {"logits_rel_err": rel, "tokens_equal": same_tokens}


def feeds(video: np.ndarray, keep: float, threshold: float, merge_mode: str = "none",
          merge_ratio: float = 0.0) -> dict[str, np.ndarray]:
    return {"video": video.astype(np.float32), "keep_ratio": np.array(keep, np.float32),
            "halt_threshold": np.array(threshold, np.float32),
            "merge_mode": np.array(merge_mode_index(merge_mode), np.int64),
            "merge_ratio": np.array(merge_ratio, np.float32)}


def export_model(model: HaltingVT, out_dir: str | Path, name: str, version: str = "1.0.0") -> dict:
    """Writes model.onnx, labels.txt and manifest.json into out_dir. Every other file already in the
    folder (an evaluation report, say) is hashed into the manifest too."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.glob("model.*.onnx"):  # variants of the graph this export replaces (variants.py)
        stale.unlink()
    model = model.eval()
    onnx_path = out / "model.onnx"
    onnx_path.write_bytes(build_graph(model).SerializeToString())
    (out / "labels.txt").write_text("\n".join(model.cfg.label_names) + "\n")
    parity = check_parity(model, onnx_path)
    doc = manifest(model.cfg, name, version, folder_files(out))
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    return {"manifest": doc, "parity": parity}


def folder_files(out: Path) -> dict[str, dict]:
    """sha256 and size of the graph, the labels and every other file in the folder."""
    extra = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()
                   and p.name not in ("model.onnx", "labels.txt", "manifest.json"))
    return {n: {"sha256": sha256(out / n), "bytes": (out / n).stat().st_size} for n in ["model.onnx", "labels.txt"] + extra}


def rehash(out: Path) -> dict:
    """Re-lists the files of an exported folder (a report added after the export) and nothing else:
    the graph must be the one the manifest describes."""
    doc = json.loads((out / "manifest.json").read_text())
    files = folder_files(out)
    if files["model.onnx"] != doc["files"]["model.onnx"]:
        raise ValueError(f"{out / 'model.onnx'} is not the graph its manifest describes: export it again")
    doc["files"] = files
    (out / "manifest.json").write_text(json.dumps(doc, indent=2) + "\n")
    return doc


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="python -m haltingvt export", description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", help="our checkpoint (.pt); convert the authors' first")
    ap.add_argument("--out", required=True, help="output folder, e.g. models/NAME/")
    ap.add_argument("--name", help="model name (default: the folder name)")
    ap.add_argument("--version", default="1.0.0")
    ap.add_argument("--rehash", action="store_true", help="only re-list the folder's files in its manifest (a report added later)")
    ap.add_argument("--variants", default="", help="comma list of reduced-precision variants to add: int8, fp16 (see quantize)")
    args = ap.parse_args(argv)
    if args.rehash:
        doc = rehash(Path(args.out))
        print(f"{args.out}/manifest.json lists {len(doc['files'])} files")
        return 0
    if not args.checkpoint:
        ap.error("--checkpoint is required (or --rehash)")
    model, _ = load_checkpoint(args.checkpoint)
    result = export_model(model, args.out, args.name or Path(args.out).name, args.version)
    m = result["manifest"]
    print(f"wrote {args.out}: {m['files']['model.onnx']['bytes'] / 1e6:.1f} MB, dense {m['dense_gflops']:.3f} GFLOPs, "
          f"parity logits rel err {result['parity']['logits_rel_err']:.1e}")
    from .variants import main as quantize

    for precision in filter(None, args.variants.split(",")):
        quantize(["--model", args.out, "--precision", precision])
    return 0
