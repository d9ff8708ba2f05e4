"""Write rendered frames as real video files through ffmpeg (argument arrays, rawvideo on stdin)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

import numpy as np

from ..video import FFMPEG, VideoError

FORMATS = ("mp4", "webm")

# Encoder settings per container. Fast and small; yuv420p so every browser/decoder plays them.
CODEC_ARGS: dict[str, list[str]] = {
    "mp4": ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart"],
    "webm": ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1",
             "-b:v", "0", "-crf", "32", "-pix_fmt", "yuv420p"],
}


def encode_args(path: str | os.PathLike, width: int, height: int, fps: int, fmt: str, threads: int = 0) -> list[str]:
    if fmt not in CODEC_ARGS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(CODEC_ARGS)}")
    if width % 2 or height % 2:
        raise ValueError(f"yuv420p needs even dimensions, got {width}x{height}")
    return [FFMPEG, "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(fps), "-i", "pipe:0",
            "-an", *CODEC_ARGS[fmt], "-threads", str(threads), "-fflags", "+bitexact", "-map_metadata", "-1",
            os.fspath(path)]


def write_video(path: str | os.PathLike, frames: Iterable[np.ndarray], width: int, height: int, fps: int,
                fmt: str | None = None, threads: int = 0) -> int:
    """Encode uint8 RGB frames (height, width, 3), streamed one by one, to path. Returns the frame count.

    fmt defaults to the path's extension (mp4 = H.264, webm = VP9)."""
    path = os.fspath(path)
    fmt = fmt or os.path.splitext(path)[1].lstrip(".").lower()
    args = encode_args(path, width, height, fps, fmt, threads)
    proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    n = 0
    try:
        for fr in frames:
            if fr.shape != (height, width, 3) or fr.dtype != np.uint8:
                raise ValueError(f"frame {n}: expected uint8 {(height, width, 3)}, got {fr.dtype} {fr.shape}")
            proc.stdin.write(np.ascontiguousarray(fr).tobytes())
            n += 1
    except BrokenPipeError:
        pass
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
    err = proc.stderr.read()
    proc.stderr.close()
    if proc.wait() != 0:
        raise VideoError(f"ffmpeg encode of {path} failed ({proc.returncode}): {err.decode(errors='replace')[-2000:]}")
    return n
