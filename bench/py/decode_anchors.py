"""Decode anchors for `make bench` section 4: PyAV and decord take the same 8 frames as the service
(segment centres of n, n = the container's frame count else the packet count), resized so the short
side is `short` (bilinear, the manifest's rule) and centre-cropped to `size`, at 1 decoder thread.
Each is timed inside this process (no interpreter start): median wall and CPU ms of `reps` runs after
one warm run. Prints one JSON object; an anchor that is not installed is left out. With --serve it
times one run per request line instead (see serve()).

  python bench/py/decode_anchors.py FILE FRAMES SIZE SHORT REPS
  python bench/py/decode_anchors.py --serve FILE FRAMES SIZE SHORT
  python bench/py/decode_anchors.py --pyav FRAMES SIZE SHORT REPS FILE...
"""

from __future__ import annotations

import json
import statistics
import sys
import time


def indices(n: int, frames: int) -> list[int]:
    return [((2 * i + 1) * n) // (2 * frames) for i in range(frames)]


def geometry(width: int, height: int, short: int, size: int) -> tuple[int, int, int, int]:
    s, l = min(width, height), max(width, height)
    long_ = int(l * short / s + 0.5)
    w, h = (short, long_) if width <= height else (long_, short)
    return w, h, (w - size) // 2, (h - size) // 2


def pyav_frames(path: str, frames: int, size: int, short: int):
    import av

    with av.open(path) as c:
        stream = c.streams.video[0]
        stream.codec_context.thread_count = 1
        keys, pts = [], []
        for p in c.demux(stream):
            if p.pts is None:
                continue
            pts.append(p.pts)
            if p.is_keyframe:
                keys.append(p.pts)
        order = sorted(pts)
        rank = {p: i for i, p in enumerate(order)}
        n = stream.frames or len(order)
        want = sorted(set(indices(n, frames)))
        keyframes = sorted(rank[k] for k in keys)
        out, nxt = [], 0
        c.seek(order[0], stream=stream, backward=True)
        decoder = None
        for target in want:
            key = max((k for k in keyframes if k <= target), default=None)
            if decoder is None or (key is not None and key > nxt):
                c.seek(order[key if key is not None else 0], stream=stream, backward=True)
                decoder = c.decode(stream)
            for f in decoder:
                i = rank.get(f.pts, -1)
                if i >= target:
                    break
            w, h, x, y = geometry(f.width, f.height, short, size)
            rgb = f.reformat(width=w, height=h, format="rgb24", interpolation="BILINEAR").to_ndarray()
            out.append(rgb[y:y + size, x:x + size])
            nxt = target + 1
        return out


def decord_frames(path: str, frames: int, size: int, short: int):
    import decord

    probe = decord.VideoReader(path, num_threads=1)
    h0, w0 = probe[0].shape[:2]
    w, h, x, y = geometry(w0, h0, short, size)
    vr = decord.VideoReader(path, width=w, height=h, num_threads=1)
    batch = vr.get_batch(sorted(set(indices(len(vr), frames)))).asnumpy()
    return batch[:, y:y + size, x:x + size]


def timed(fn, reps: int) -> dict:
    fn()
    wall, cpu = [], []
    for _ in range(reps):
        c0, t0 = time.process_time(), time.perf_counter()
        fn()
        wall.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    return {"wall_ms": statistics.median(wall), "cpu_ms": statistics.median(cpu)}


def serve(path: str, frames: int, size: int, short: int) -> None:
    """One timed run of an anchor per line read ("pyav" or "decord"), one JSON line back, so that the
    caller can alternate them with its own runs and both meet the same load on a shared machine."""
    anchors = {"pyav": pyav_frames, "decord": decord_frames}
    warmed: set[str] = set()
    for line in sys.stdin:
        name = line.strip()
        try:
            fn = anchors[name]
            if name not in warmed:
                fn(path, frames, size, short)
                warmed.add(name)
            c0, t0 = time.process_time(), time.perf_counter()
            fn(path, frames, size, short)
            answer = {"wall_ms": (time.perf_counter() - t0) * 1000, "cpu_ms": (time.process_time() - c0) * 1000}
        except ImportError as err:
            answer = {"error": f"{name} not installed: {err}"}
        print(json.dumps(answer), flush=True)


def pyav_each(frames: int, size: int, short: int, reps: int, paths: list[str]) -> None:
    """PyAV alone on each of several files (section 5's CPU floor), in one interpreter: the
    files' anchor costs without one Python start per file. Prints {"pyav": [timing per file]}."""
    try:
        import av  # noqa: F401
    except ImportError as err:
        print(json.dumps({"error": f"pyav not installed: {err}"}))
        return
    print(json.dumps({"pyav": [timed(lambda p=p: pyav_frames(p, frames, size, short), reps) for p in paths]}))


def main() -> None:
    if sys.argv[1] == "--serve":
        serve(sys.argv[2], *map(int, sys.argv[3:6]))
        return
    if sys.argv[1] == "--pyav":
        pyav_each(*map(int, sys.argv[2:6]), sys.argv[6:])
        return
    path, frames, size, short, reps = sys.argv[1], *map(int, sys.argv[2:6])
    result: dict = {}
    for name, fn in (("pyav", pyav_frames), ("decord", decord_frames)):
        try:
            result[name] = timed(lambda: fn(path, frames, size, short), reps)
        except ImportError as err:
            print(f"[decode_anchors] {name} not installed: {err}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
