"""Decode the model input from a video file with ffmpeg, exactly as the contract says.

`sample_video(path, frames, size, resize_short_side)` returns uint8 [frames, size, size, 3] RGB:

1. n = the frame count of the first video stream: the container's nb_frames when it states one
   (MP4), else the number of its packets (`ffprobe -count_packets`, demuxing only; WebM). This is
   the service's rule too (src/engine/decode/frame-plan.ts frameCountOf), which also counts packets
   when nb_frames promises more frames than there are packets (a truncated file).
2. indices = segment centres floor((i + 0.5) * n / frames), i = 0..frames-1 (repeats when n < frames;
   haltingvt.sampling, golden/sampling.json).
3. One ffmpeg run decodes the file (autorotate on, as by default), and the filter graph
       select='eq(n,i1)+eq(n,i2)+...',
       scale=w=W:h=H:flags=bilinear, format=rgb24,
       crop=w=size:h=size:x=floor((iw-size)/2):y=floor((ih-size)/2):exact=1
   with (W, H) the rotated display size resized so the short side is `resize_short_side` and the
   long side floor(long * resize_short_side / short + 0.5) (computed inside the filter from iw/ih,
   after autorotate) goes out through `-fps_mode passthrough -f rawvideo -pix_fmt rgb24 pipe:1`.
   Scaling and the YUV->RGB conversion happen in the same swscale call (bilinear); the
   crop is done in RGB so its offset is exact. Only the selected frames are ever held in memory.
   Sample aspect ratio is ignored (storage pixels are treated as square).
4. If the file yields fewer frames than n said (lying nb_frames, truncated file), the missing
   slots repeat the last frame that did decode (the service repeats the nearest decoded one).

`ffmpeg_sampling_args` returns the exact argument list so the service can mirror it.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
from collections.abc import Sequence

import numpy as np

from .sampling import segment_centre_indices

FFMPEG = os.environ.get("HALTINGVT_FFMPEG", "ffmpeg")
FFPROBE = os.environ.get("HALTINGVT_FFPROBE", "ffprobe")


class VideoError(RuntimeError):
    pass


def resized_dims(width: int, height: int, short_side: int) -> tuple[int, int]:
    """(width, height) after resizing so the short side is short_side; long = floor(long * S / short + 0.5)."""
    if width >= height:
        return int(math.floor(width * short_side / height + 0.5)), short_side
    return short_side, int(math.floor(height * short_side / width + 0.5))


def _run(args: list[str], what: str) -> bytes:
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    except FileNotFoundError as e:
        raise VideoError(f"{what}: {args[0]} not found") from e
    if p.returncode != 0:
        raise VideoError(f"{what} failed ({p.returncode}): {p.stderr.decode(errors='replace').strip()[-2000:]}")
    return p.stdout


@functools.lru_cache(maxsize=None)
def _fps_mode_option() -> list[str]:
    """`-fps_mode passthrough` (ffmpeg >= 5.1) or the older `-vsync passthrough`."""
    p = subprocess.run([FFMPEG, "-hide_banner", "-h", "full"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return ["-fps_mode", "passthrough"] if b"-fps_mode" in p.stdout else ["-vsync", "passthrough"]


def probe(path: str | os.PathLike) -> dict:
    """ffprobe's JSON for the first video stream and the format (no decoding)."""
    out = _run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-show_entries",
                "stream=codec_name,width,height,pix_fmt,avg_frame_rate,r_frame_rate,nb_frames,duration:"
                "stream_side_data=rotation:stream_tags=rotate:format=format_name,duration",
                "-of", "json", os.fspath(path)], "ffprobe")
    info = json.loads(out)
    if not info.get("streams"):
        raise VideoError(f"{path}: no video stream")
    return info


def frame_count(path: str | os.PathLike) -> int:
    """n for sampling: the container's nb_frames if it states one, else the stream's packet count."""
    info = probe(path)
    nb = str(info["streams"][0].get("nb_frames", "")).strip()
    if nb.isdigit() and int(nb) > 0:
        return int(nb)
    out = _run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
                "stream=nb_read_packets", "-of", "csv=p=0", os.fspath(path)], "ffprobe -count_packets")
    text = out.decode().strip().split("\n")[0].strip().rstrip(",")
    if not text.isdigit() or int(text) < 1:
        raise VideoError(f"{path}: cannot count frames (ffprobe said {text!r})")
    return int(text)


def count_frames(path: str | os.PathLike) -> int:
    """Number of frames the decoder produces for the first video stream (decodes the file)."""
    out = _run([FFPROBE, "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                "stream=nb_read_frames", "-of", "csv=p=0", os.fspath(path)], "ffprobe -count_frames")
    text = out.decode().strip().split("\n")[0].strip().rstrip(",")
    if not text.isdigit():
        raise VideoError(f"{path}: cannot count frames (ffprobe said {text!r})")
    return int(text)


def sampling_filter(indices: Sequence[int], size: int, resize_short_side: int,
                    crop_at: tuple[float, float] | None = None) -> str:
    """The -vf filter graph (see the module docstring); indices must be sorted and unique.
    crop_at: (fx, fy) in [0, 1], where in the free margin the crop sits (training's random crop);
    None = the centre, written exactly as the service writes it."""
    S, c = int(resize_short_side), int(size)
    if c > S:
        raise ValueError(f"crop size {c} larger than the resized short side {S}")
    sel = "+".join(f"eq(n,{i})" for i in indices)
    w = f"if(gte(iw,ih),floor(iw*{S}/ih+0.5),{S})"
    h = f"if(gte(iw,ih),{S},floor(ih*{S}/iw+0.5))"
    x, y = ((f"floor((iw-{c})/2)", f"floor((ih-{c})/2)") if crop_at is None
            else (f"floor((iw-{c})*{float(crop_at[0])!r})", f"floor((ih-{c})*{float(crop_at[1])!r})"))
    return (f"select='{sel}',scale=w='{w}':h='{h}':flags=bilinear,format=rgb24,"
            f"crop=w={c}:h={c}:x='{x}':y='{y}':exact=1")


def ffmpeg_sampling_args(path: str | os.PathLike, indices: Sequence[int], size: int, resize_short_side: int,
                         crop_at: tuple[float, float] | None = None) -> list[str]:
    """ffmpeg argument list that writes the selected frames (sorted, unique) as rgb24 to stdout."""
    return [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-i", os.fspath(path), "-map", "0:v:0",
            "-vf", sampling_filter(indices, size, resize_short_side, crop_at), *_fps_mode_option(),
            "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def sample_video(path: str | os.PathLike, frames: int = 8, size: int = 112, resize_short_side: int = 128,
                 n_frames: int | None = None) -> np.ndarray:
    """Model input frames of a video file: uint8 [frames, size, size, 3] RGB (contract sampling).

    n_frames: the frame count if already known (skips probing); it must be what frame_count(path)
    returns, or the indices differ from the service's."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(path)
    n = frame_count(path) if n_frames is None else int(n_frames)
    if n < 1:
        raise VideoError(f"{path}: no decodable frames")
    idx = segment_centre_indices(n, frames)
    uniq = sorted(set(idx))
    raw = _run(ffmpeg_sampling_args(path, uniq, size, resize_short_side), "ffmpeg decode")
    fsz = size * size * 3
    got_n = min(len(raw) // fsz, len(uniq))
    if got_n == 0:
        raise VideoError(f"{path}: ffmpeg decoded none of the frames {uniq} (n={n})")
    got = np.frombuffer(raw, np.uint8)[:got_n * fsz].reshape(got_n, size, size, 3)
    pos = {v: min(k, got_n - 1) for k, v in enumerate(uniq)}  # missing tail frames: repeat the last decoded
    return np.ascontiguousarray(got[[pos[i] for i in idx]])


__all__ = ["VideoError", "segment_centre_indices", "resized_dims", "probe", "frame_count", "count_frames", "sampling_filter",
           "ffmpeg_sampling_args", "sample_video"]
