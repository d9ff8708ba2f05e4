"""Write a held-out split as real video files plus labels.

Layout of DIR:
    videos/<seed>_<index:05d>.<mp4|webm>   one file per clip (format cycles through `formats` by
                                            index), or one per clip and format with all_formats
    labels.csv                              header "path,label"; path relative to DIR, label = class name
    classes.txt                             one class name per line, line number = class id
    split.json                              seed, count, formats and every scene parameter
    meta.jsonl                              per file: path, label, label_id, seed, index, format, fps,
                                            n_frames, duration, width, height
"""

from __future__ import annotations

import csv
import json
import multiprocessing
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace

from .scenes import CLASSES, DEFAULT_PARAMS, SceneParams, make_spec
from .stream import render_full_clip
from .video_io import FORMATS, write_video


def _write_one(out_dir: str, seed: int, index: int, fmts: tuple[str, ...], params: SceneParams,
               threads: int) -> list[dict]:
    spec = make_spec(seed, index, params)
    rows = []
    for fmt in fmts:
        rel = f"videos/{seed}_{index:05d}.{fmt}"
        n = write_video(os.path.join(out_dir, rel), render_full_clip(spec), spec.width, spec.height, spec.fps, fmt,
                        threads)
        assert n == spec.n_frames
        rows.append({"path": rel, "label": spec.label_name, "label_id": spec.label, "seed": seed, "index": index,
                     "format": fmt, "fps": spec.fps, "n_frames": spec.n_frames, "duration": spec.duration,
                     "width": spec.width, "height": spec.height})
    return rows


def write_split(out_dir: str | os.PathLike, count: int, seed: int, formats: tuple[str, ...] = FORMATS,
                all_formats: bool = False, workers: int = 2, start: int = 0,
                resolutions: tuple[tuple[int, int], ...] | None = None, params: SceneParams = DEFAULT_PARAMS,
                threads: int = 1, progress: bool = False) -> list[dict]:
    """Render and encode clips (seed, start .. start + count - 1); returns the meta rows (also written)."""
    out_dir = os.fspath(out_dir)
    formats = tuple(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if not formats or unknown:
        raise ValueError(f"formats must be a non-empty subset of {FORMATS}, got {formats}")
    if resolutions:
        params = replace(params, resolutions=tuple(resolutions))
    os.makedirs(os.path.join(out_dir, "videos"), exist_ok=True)
    jobs = [(out_dir, seed, i, formats if all_formats else (formats[i % len(formats)],), params, threads)
            for i in range(start, start + count)]
    t0 = time.perf_counter()
    rows: list[dict] = []
    tty = progress and sys.stdout.isatty()
    if workers <= 1:
        for k, j in enumerate(jobs):
            rows += _write_one(*j)
            if tty:
                print(f"\r{k + 1}/{count} clips", end="", flush=True)
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork")) as ex:
            futs = [ex.submit(_write_one, *j) for j in jobs]
            for k, f in enumerate(futs):
                rows += f.result()
                if tty:
                    print(f"\r{k + 1}/{count} clips", end="", flush=True)
    if progress:
        print(f"\rwrote {len(rows)} files for {count} clips to {out_dir} in {time.perf_counter() - t0:.1f} s")
    with open(os.path.join(out_dir, "labels.csv"), "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(["path", "label"])
        for r in rows:
            w.writerow([r["path"], r["label"]])
    with open(os.path.join(out_dir, "classes.txt"), "w") as f:
        f.write("".join(c + "\n" for c in CLASSES))
    with open(os.path.join(out_dir, "split.json"), "w") as f:
        json.dump({"seed": seed, "start": start, "count": count, "formats": list(formats), "all_formats": all_formats,
                   "classes": list(CLASSES), "params": asdict(params)}, f, indent=1)
        f.write("\n")
    with open(os.path.join(out_dir, "meta.jsonl"), "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    return rows
