"""Rasterise a ClipSpec at arbitrary timestamps and resolutions (numpy only, deterministic).

The scene is defined in continuous coordinates (short-side units), so the same clip renders at any
output size; `region` renders only a window of that output (training renders just its crop).
Pixel (i, j) of an output of size (H, W) samples the scene at ((j + 0.5) * ex / W, (i + 0.5) * ey / H).
Edges are anti-aliased from the signed distance (1 pixel ramp), so rendering directly at 128 px
resembles downscaling a high-resolution rendering. Nothing depends on velocity (no motion blur).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .scenes import SHAPES, ClipSpec, distractor_pose, patch_pos, target_pose

_SHAPE_RADIUS = 0.7072  # every shape lies inside [-0.5, 0.5]^2


def _sdf(kind: str, lx: np.ndarray, ly: np.ndarray) -> np.ndarray:
    """Signed distance (local units, negative inside) to the union of the shape's primitives."""
    d = None
    for prim in SHAPES[kind]:
        if prim[0] == "box":
            _, x0, y0, x1, y1 = prim
            qx = np.abs(lx - 0.5 * (x0 + x1)) - 0.5 * (x1 - x0)
            qy = np.abs(ly - 0.5 * (y0 + y1)) - 0.5 * (y1 - y0)
            e = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0)) + np.minimum(np.maximum(qx, qy), 0.0)
        else:
            _, cx, cy, r = prim
            e = np.hypot(lx - cx, ly - cy) - r
        d = e if d is None else np.minimum(d, e)
    return d


class Canvas:
    """A float32 window (h, w, 3) of an output frame of size (H, W) of a scene of extent (ex, ey)."""

    def __init__(self, extent: tuple[float, float], out_size: tuple[int, int],
                 region: tuple[int, int, int, int] | None = None) -> None:
        H, W = (int(v) for v in out_size)
        y0, x0, h, w = region if region is not None else (0, 0, H, W)
        assert h > 0 and w > 0 and 0 <= y0 and 0 <= x0 and y0 + h <= H and x0 + w <= W, (out_size, region)
        ex, ey = extent
        self.sx, self.sy = W / ex, H / ey  # pixels per scene unit
        self.px = 0.5 * (self.sx + self.sy)
        self.x0, self.y0, self.h, self.w = x0, y0, h, w
        self.xs = ((x0 + np.arange(w) + 0.5) / self.sx).astype(np.float32)
        self.ys = ((y0 + np.arange(h) + 0.5) / self.sy).astype(np.float32)

    # index ranges of the pixels whose centres lie in [lo, hi) along each axis
    def _cols(self, lo: float, hi: float) -> tuple[int, int]:
        return (max(0, math.ceil(lo * self.sx - self.x0 - 0.5)), min(self.w, math.ceil(hi * self.sx - self.x0 - 0.5)))

    def _rows(self, lo: float, hi: float) -> tuple[int, int]:
        return (max(0, math.ceil(lo * self.sy - self.y0 - 0.5)), min(self.h, math.ceil(hi * self.sy - self.y0 - 0.5)))

    def draw_shape(self, img: np.ndarray, kind: str, cx: float, cy: float, size: float, angle: float,
                   fill: Sequence[float], outline: Sequence[float] | None, opacity: float = 1.0,
                   clip: tuple[float, float, float, float] | None = None) -> None:
        """Composite one shape onto img (this canvas' window). clip = (xmin, xmax, ymin, ymax) scene units."""
        r = _SHAPE_RADIUS * size + 1.5 / self.px
        j0, j1 = self._cols(cx - r, cx + r)
        i0, i1 = self._rows(cy - r, cy + r)
        if clip is not None:
            c0, c1 = self._cols(clip[0], clip[1])
            r0, r1 = self._rows(clip[2], clip[3])
            j0, j1, i0, i1 = max(j0, c0), min(j1, c1), max(i0, r0), min(i1, r1)
        if j0 >= j1 or i0 >= i1:
            return
        c, s = math.cos(angle), math.sin(angle)
        dx = (self.xs[j0:j1] - np.float32(cx))[None, :]
        dy = (self.ys[i0:i1] - np.float32(cy))[:, None]
        inv = np.float32(1.0 / size)
        lx = (np.float32(c) * dx + np.float32(s) * dy) * inv  # rotate by -angle into shape coordinates
        ly = (np.float32(-s) * dx + np.float32(c) * dy) * inv
        dpx = _sdf(kind, lx, ly) * np.float32(size * self.px)  # signed distance in pixels
        a = np.clip(np.float32(0.5) - dpx, 0.0, 1.0)
        if opacity != 1.0:
            a *= np.float32(opacity)
        win = img[i0:i1, j0:j1]
        fill_v = np.asarray(fill, np.float32)
        if outline is None:
            win += a[..., None] * (fill_v - win)
        else:
            ow = max(1.0, 0.1 * size * self.px)
            out_v = np.asarray(outline, np.float32)
            t = np.clip(np.float32(0.5 - ow) - dpx, 0.0, 1.0)[..., None]
            col = out_v + t * (fill_v - out_v)
            win += a[..., None] * (col - win)


class Renderer:
    """Precomputes the static background of `spec` for one output window, then renders frames."""

    def __init__(self, spec: ClipSpec, out_size: tuple[int, int], region: tuple[int, int, int, int] | None = None):
        self.spec = spec
        self.cv = cv = Canvas(spec.extent, out_size, region)
        ex, ey = spec.extent
        a = spec.arena
        self.arena = ((ex - a) / 2, (ey - a) / 2, a)
        # gratings, separable: cos(2pi(fx x + fy y) + ph) = cos(A) cos(B) - sin(A) sin(B)
        g = spec.gratings
        fx = np.array([q.fx for q in g], np.float64)
        fy = np.array([q.fy for q in g], np.float64)
        ph = np.array([q.phase for q in g], np.float64)
        col = np.array([q.color for q in g], np.float64).reshape(len(g), 3)  # (K, 3)
        A = 2 * np.pi * cv.xs.astype(np.float64)[:, None] * fx[None]  # (w, K)
        B = 2 * np.pi * cv.ys.astype(np.float64)[:, None] * fy[None] + ph[None]  # (h, K)
        cA, sA, cB, sB = np.cos(A), np.sin(A), np.cos(B), np.sin(B)
        bg = np.zeros((cv.h, cv.w, 3), np.float32)
        for k in range(len(g)):  # elementwise only (no BLAS): a window renders exactly as the full frame
            wave = (np.multiply.outer(cB[:, k], cA[:, k]) - np.multiply.outer(sB[:, k], sA[:, k])).astype(np.float32)
            bg += wave[..., None] * col[k].astype(np.float32)
        bg += np.asarray(spec.background, np.float32)
        for sh in spec.clutter:
            cv.draw_shape(bg, sh.kind, sh.x, sh.y, sh.size, sh.angle, sh.fill, sh.outline, sh.opacity)
        self.background = bg

    def _patch(self, img: np.ndarray, pt, tau: float) -> None:
        cv = self.cv
        px, py = patch_pos(pt, tau)
        r = 3.0 * pt.sigma
        j0, j1 = cv._cols(px - r, px + r)
        i0, i1 = cv._rows(py - r, py + r)
        if j0 >= j1 or i0 >= i1:
            return
        dx = (cv.xs[j0:j1] - np.float32(px))[None, :]
        dy = (cv.ys[i0:i1] - np.float32(py))[:, None]
        a = np.float32(pt.opacity) * np.exp((dx * dx + dy * dy) * np.float32(-0.5 / pt.sigma ** 2))
        g = pt.grating
        tex = np.cos(np.float32(2 * np.pi * g.fx) * dx + np.float32(2 * np.pi * g.fy) * dy + np.float32(g.phase))
        col = np.asarray(pt.color, np.float32) + 2.0 * tex[..., None] * np.asarray(g.color, np.float32)
        win = img[i0:i1, j0:j1]
        win += a[..., None] * (col - win)

    def render_float(self, t: float) -> np.ndarray:
        """Frame at time t seconds, float32 (h, w, 3) in 0..255 units (not clipped)."""
        spec, cv = self.spec, self.cv
        tau = float(t) / spec.duration
        img = self.background.copy()
        for pt in spec.patches:
            self._patch(img, pt, tau)
        for d in spec.distractors:
            x, y, ang = distractor_pose(d, tau)
            cv.draw_shape(img, d.shape.kind, x, y, d.shape.size, ang, d.shape.fill, d.shape.outline)
        g = spec.target
        u, v, size, ang = target_pose(spec, tau)
        ax, ay, a = self.arena
        clip = (ax, ax + a, ay, ay + a)
        for du in (-1, 0, 1):  # toroidal wrap inside the arena: draw the copies that overlap it
            for dv in (-1, 0, 1):
                cx, cy = ax + a * (u + du), ay + a * (v + dv)
                r = _SHAPE_RADIUS * size
                if cx + r < ax or cx - r > ax + a or cy + r < ay or cy - r > ay + a:
                    continue
                cv.draw_shape(img, g.kind, cx, cy, size, ang, g.fill, g.outline, 1.0, clip)
        return img

    def frame(self, t: float) -> np.ndarray:
        """Frame at time t seconds, uint8 (h, w, 3) RGB."""
        img = self.render_float(t)
        img += 0.5
        np.clip(img, 0.0, 255.0, out=img)
        return img.astype(np.uint8)


def render(spec: ClipSpec, times: Sequence[float] | np.ndarray, out_size: tuple[int, int],
           region: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """uint8 frames (len(times), h, w, 3) RGB of `spec` at `times` (seconds), for an output of size
    out_size = (H, W); region = (y0, x0, h, w) renders only that window (default: the whole frame)."""
    r = Renderer(spec, out_size, region)
    out = np.empty((len(times), r.cv.h, r.cv.w, 3), np.uint8)
    for k, t in enumerate(times):
        out[k] = r.frame(float(t))
    return out


def frame_times(spec: ClipSpec, indices: Sequence[int] | np.ndarray) -> np.ndarray:
    """Timestamps (seconds) of frame indices of the virtual video (frame k at k / fps)."""
    return np.asarray(indices, np.float64) / spec.fps


def out_size_for(spec: ClipSpec, short_side: int) -> tuple[int, int]:
    """(H, W) after resizing the clip's resolution so its short side is `short_side`, long side
    floor(long * short_side / short + 0.5) as in the eval contract."""
    w, h = spec.width, spec.height
    if w >= h:
        return short_side, int(math.floor(w * short_side / h + 0.5))
    return int(math.floor(h * short_side / w + 0.5)), short_side
