"""Procedural motion scenes: a clip is a pure function of (seed, index) -> ClipSpec.

Geometry. Scene coordinates are in units of the frame's short side: x in [0, ex], y in [0, ey]
with ex = width / short, ey = height / short (one of them is 1), y pointing down. The object that
carries the label (the *target*) lives in the *arena*, the centred square of side
`params.arena` (0.8 short sides, inside the 0.875 centre crop of the eval pipeline), where it wraps
around toroidally: its position at time tau is `(u0, v0) + motion(tau)` modulo 1 in arena units,
and it is clipped to the arena.

Why no single frame tells the class (every marginal below is the same for every class):
- position: (u0, v0) is uniform on the arena torus, so the position at any time is uniform;
- size: every class draws (lo, ratio, w); grow renders lo * ratio**tau, shrink lo * ratio**(1-tau),
  the other classes the constant lo * ratio**w with w ~ U(0, 1): at a uniformly random time all
  three have the same size distribution;
- angle: uniform start angle for every class (rotation classes add a spin);
- shape, colour, outline: drawn from the same distributions for every class; distractors and
  clutter use the same shape family; nothing is drawn that depends on velocity (no blur, trails).
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from dataclasses import dataclass

import numpy as np

# ---------------------------------------------------------------------------------------------
# Seed namespaces. A clip is identified by (seed, index); different seeds are independent streams.
TRAIN_SEEDS = range(0, 1000)  # training streams (iter_training_clips refuses other seeds)
HELDOUT_SEEDS = range(1000, 4000)  # never trained on: validation 1000-2999, test 3000-3999 (haltingvt.splits)
VALIDATION_SEEDS = range(1000, 3000)  # every choice (recipe, seed, checkpoint, knob defaults) is made here
TEST_SEEDS = range(3000, 4000)  # evaluated only to report figures, never to choose
DEFAULT_TRAIN_SEED = 0
DEFAULT_VAL_SEED = 1000  # in-memory validation during training (render_eval_clip)
DEFAULT_HELDOUT_SEED = 1001  # the validation split written as video files

CLASSES: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "rotate_clockwise",
    "rotate_counterclockwise",
    "grow",
    "shrink",
    "oscillate_horizontal",
    "oscillate_vertical",
    "orbit_clockwise",
    "orbit_counterclockwise",
)
NUM_CLASSES = len(CLASSES)

# Shape family (union of boxes and disks in local coordinates [-0.5, 0.5]^2, y down). None of them
# has a rotational symmetry, so the sense of a rotation of less than 180 degrees is unambiguous.
# Boxes overlap instead of abutting, so the union's signed distance has no seams inside.
Prim = tuple  # ("box", x0, y0, x1, y1) | ("disk", cx, cy, r)
SHAPES: dict[str, tuple[Prim, ...]] = {
    "L": (("box", -0.5, -0.5, -0.1, 0.5), ("box", -0.5, 0.1, 0.5, 0.5)),
    "T": (("box", -0.5, -0.5, 0.5, -0.12), ("box", -0.18, -0.5, 0.18, 0.5)),
    "F": (("box", -0.45, -0.5, -0.1, 0.5), ("box", -0.45, -0.5, 0.45, -0.2), ("box", -0.45, -0.05, 0.25, 0.22)),
    "P": (("box", -0.4, -0.5, 0.4, 0.12), ("box", -0.4, -0.5, 0.0, 0.5)),
    "key": (("disk", 0.0, -0.2, 0.3), ("box", -0.1, -0.2, 0.1, 0.5), ("box", 0.0, 0.22, 0.3, 0.38)),
    "tadpole": (("disk", -0.12, -0.12, 0.36), ("disk", 0.3, 0.3, 0.17), ("box", -0.05, -0.05, 0.3, 0.2)),
}
SHAPE_NAMES: tuple[str, ...] = tuple(SHAPES)

RESOLUTIONS: tuple[tuple[int, int], ...] = ((320, 240), (426, 240), (640, 360), (360, 640), (480, 480))
FPS_CHOICES: tuple[int, ...] = (12, 15, 24, 25, 30)


@dataclass(frozen=True)
class SceneParams:
    """Distributions of every random quantity. Units: short sides unless the name says arena."""

    durations: tuple[float, float] = (2.0, 12.0)  # seconds, uniform
    fps_choices: tuple[int, ...] = FPS_CHOICES
    resolutions: tuple[tuple[int, int], ...] = RESOLUTIONS  # (width, height) of the written file; also the aspect
    arena: float = 0.8  # side of the centred square the target lives in
    # target
    size_lo: tuple[float, float] = (0.24, 0.28)  # smallest size (side of the shape's unit square)
    size_ratio: tuple[float, float] = (1.35, 1.5)  # largest / smallest: sizes span 0.24 .. 0.42 (4-15% of the frame)
    travel: tuple[float, float] = (0.5, 0.8)  # move_*: distance over the clip, arena units
    spin_deg: tuple[float, float] = (180.0, 450.0)  # rotate_*: total rotation over the clip
    osc_amp: tuple[float, float] = (0.12, 0.22)  # oscillate_*: peak displacement, arena units
    osc_cycles: tuple[float, float] = (1.0, 1.75)  # periods over the clip (>= 4.5 of 8 frames per period)
    orbit_radius: tuple[float, float] = (0.12, 0.22)  # orbit_*: arena units
    orbit_revs: tuple[float, float] = (0.75, 1.4)  # revolutions over the clip (< 64 degrees per segment of 8)
    # distractors: same shapes and colours as the target, jittering in place
    distractors: tuple[int, int] = (1, 1)  # inclusive
    distractor_size: tuple[float, float] = (0.07, 0.14)
    distractor_amp: tuple[float, float] = (0.01, 0.04)  # jitter amplitude (sum of 3 sinusoids per axis)
    distractor_freq: tuple[float, float] = (0.5, 3.0)  # jitter frequencies, cycles per clip
    distractor_wobble_deg: float = 25.0
    # background
    gratings: int = 6
    grating_freq: tuple[float, float] = (1.5, 12.0)  # cycles per short side
    grating_amp: tuple[float, float] = (3.0, 10.0)  # 0..255 units
    clutter_density: tuple[float, float] = (3.0, 6.0)  # static shapes per short side squared
    clutter_size: tuple[float, float] = (0.04, 0.14)
    clutter_opacity: tuple[float, float] = (0.35, 0.85)
    drift_patches: tuple[int, int] = (0, 1)  # inclusive; soft textured blobs drifting slowly
    drift_sigma: tuple[float, float] = (0.05, 0.1)
    drift_speed: tuple[float, float] = (0.02, 0.1)  # distance over the clip


# Tuned so that the default model (motion-tiny, trained from scratch on 2 CPU cores in under an
# hour) can learn the motion: with targets of 0.075-0.22 (then 0.15-0.32) short sides and 1-4 (then
# 1-2) distractors it stayed at chance for 200+ steps, the moving pixels being 1-3% of the frame.
DEFAULT_PARAMS = SceneParams()
# Fewer distractors, sparser and fainter clutter: a fallback if a small model cannot learn the
# default scenes in its budget. Same classes, same single-frame invariances.
EASY_PARAMS = SceneParams(distractors=(0, 1), clutter_density=(3.0, 6.0), grating_amp=(3.0, 10.0),
                          drift_patches=(0, 1))
SCENE_PRESETS: dict[str, SceneParams] = {"default": DEFAULT_PARAMS, "easy": EASY_PARAMS}


def faded_scene(difficulty: float, full: SceneParams = DEFAULT_PARAMS) -> SceneParams:
    """`full` with its background texture, clutter and distractors faded in: 0 = the target alone
    on a flat background, 1 = `full`. Classes and the target's distributions are the same at
    every difficulty (the scene's draws shift, so a clip index is another scene).

    A curriculum for training from scratch: on the full scenes a fresh ViT (and a small 3D CNN)
    sat at chance for hundreds of steps while it looked for the one moving object."""
    d = min(max(float(difficulty), 0.0), 1.0)
    if d == 1.0:
        return full
    half = d >= 0.5
    return dataclasses.replace(
        full, grating_amp=(full.grating_amp[0] * d, full.grating_amp[1] * d),
        clutter_density=(full.clutter_density[0] * d, full.clutter_density[1] * d),
        clutter_opacity=(full.clutter_opacity[0] * d, full.clutter_opacity[1] * d),
        distractors=(0, full.distractors[1] if half else 0), drift_patches=(0, full.drift_patches[1] if half else 0))


@dataclass(frozen=True)
class Shape:
    kind: str  # key of SHAPES
    x: float  # centre, scene units
    y: float
    size: float
    angle: float  # radians, positive = clockwise on screen (y down)
    fill: tuple[float, float, float]  # 0..255
    outline: tuple[float, float, float] | None  # 0..255, None = no outline
    opacity: float = 1.0


@dataclass(frozen=True)
class Grating:
    fx: float  # cycles per short side along x
    fy: float
    phase: float
    color: tuple[float, float, float]  # per-channel amplitude, 0..255 units


@dataclass(frozen=True)
class DriftPatch:
    x: float  # centre at tau = 0
    y: float
    vx: float  # displacement over the whole clip
    vy: float
    sigma: float
    grating: Grating  # texture, moving with the patch
    color: tuple[float, float, float]
    opacity: float


@dataclass(frozen=True)
class Distractor:
    shape: Shape  # rest pose
    freqs: tuple[float, ...]  # cycles per clip, 3 per axis: x then y
    phases: tuple[float, ...]
    amps: tuple[float, ...]
    wobble: float  # radians
    wobble_freq: float
    wobble_phase: float


@dataclass(frozen=True)
class Target:
    kind: str
    fill: tuple[float, float, float]
    outline: tuple[float, float, float]
    u0: float  # arena units, in [0, 1)
    v0: float
    angle0: float
    spin: float  # radians over the clip (signed; + = clockwise)
    size_lo: float
    size_ratio: float
    size_a: float  # size = size_lo * size_ratio ** (size_a + size_b * tau)
    size_b: float
    vel: tuple[float, float]  # arena units over the clip
    osc: tuple[float, float]  # amplitude vector, arena units
    osc_cycles: float
    osc_phase: float
    orbit_radius: float  # arena units
    orbit_revs: float  # signed; + = clockwise
    orbit_phase: float


@dataclass(frozen=True)
class ClipSpec:
    seed: int
    index: int
    label: int
    fps: int
    n_frames: int  # frame k of the virtual video shows time k / fps
    width: int  # resolution of the written file; its aspect is the scene's aspect
    height: int
    arena: float
    background: tuple[float, float, float]
    gratings: tuple[Grating, ...]
    clutter: tuple[Shape, ...]
    patches: tuple[DriftPatch, ...]
    distractors: tuple[Distractor, ...]
    target: Target

    @property
    def label_name(self) -> str:
        return CLASSES[self.label]

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def extent(self) -> tuple[float, float]:
        """(ex, ey): scene width and height in short sides."""
        s = min(self.width, self.height)
        return self.width / s, self.height / s

    def to_dict(self) -> dict:
        return dataclasses.asdict(self) | {"label_name": self.label_name}


# ---------------------------------------------------------------------------------------------


def clip_rng(seed: int, index: int, stream: int = 0) -> np.random.Generator:
    """Independent generator for (seed, index, stream); stream 0 = scene, 1 = training augmentation."""
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index), int(stream)])))


def clip_label(seed: int, index: int) -> int:
    """Labels are balanced in every block of NUM_CLASSES consecutive indices (shuffled per block)."""
    block = np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), int(index) // NUM_CLASSES, 7])))
    return int(block.permutation(NUM_CLASSES)[int(index) % NUM_CLASSES])


def _vivid(rng: np.random.Generator) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    h, s, v = rng.uniform(), rng.uniform(0.55, 1.0), rng.uniform(0.6, 1.0)
    fill = tuple(float(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))
    outline = tuple(float(255 * c) for c in colorsys.hsv_to_rgb(h, s, v * rng.uniform(0.15, 0.35)))
    return fill, outline


def _muted(rng: np.random.Generator) -> tuple[float, float, float]:
    h, s, v = rng.uniform(), rng.uniform(0.05, 0.45), rng.uniform(0.25, 0.9)
    return tuple(float(255 * c) for c in colorsys.hsv_to_rgb(h, s, v))


def _grating(rng: np.random.Generator, p: SceneParams, freq: tuple[float, float] | None = None) -> Grating:
    f = rng.uniform(*(freq or p.grating_freq))
    th = rng.uniform(0, math.pi)
    amp = rng.uniform(*p.grating_amp)
    tint = rng.uniform(-0.5, 0.5, 3) + 1.0  # mostly luminance, a little colour
    return Grating(float(f * math.cos(th)), float(f * math.sin(th)), float(rng.uniform(0, 2 * math.pi)),
                   tuple(float(amp * c) for c in tint))


def make_spec(seed: int, index: int, params: SceneParams = DEFAULT_PARAMS, label: int | None = None) -> ClipSpec:
    """The clip (seed, index): a pure function of its arguments.

    label forces the class while keeping every random draw (the scene is the same for every
    label: only the target's motion terms change), which the tests use to compare classes."""
    p = params
    rng = clip_rng(seed, index, 0)
    label = clip_label(seed, index) if label is None else int(label)
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"label {label} outside 0..{NUM_CLASSES - 1}")
    name = CLASSES[label]

    fps = int(rng.choice(p.fps_choices))
    duration = rng.uniform(*p.durations)
    n_frames = max(2, int(round(duration * fps)))
    width, height = p.resolutions[int(rng.integers(len(p.resolutions)))]
    s = min(width, height)
    ex, ey = width / s, height / s

    # background
    background = tuple(float(c) for c in rng.uniform(70, 170) + rng.uniform(-20, 20, 3))
    gratings = tuple(_grating(rng, p) for _ in range(p.gratings))
    n_clutter = int(rng.poisson(rng.uniform(*p.clutter_density) * ex * ey))
    clutter = tuple(
        Shape(kind=SHAPE_NAMES[int(rng.integers(len(SHAPE_NAMES)))], x=float(rng.uniform(0, ex)),
              y=float(rng.uniform(0, ey)), size=float(rng.uniform(*p.clutter_size)),
              angle=float(rng.uniform(0, 2 * math.pi)), fill=_muted(rng), outline=None,
              opacity=float(rng.uniform(*p.clutter_opacity)))
        for _ in range(n_clutter))
    patches = []
    for _ in range(int(rng.integers(p.drift_patches[0], p.drift_patches[1] + 1))):
        d, th = rng.uniform(*p.drift_speed), rng.uniform(0, 2 * math.pi)
        patches.append(DriftPatch(x=float(rng.uniform(0, ex)), y=float(rng.uniform(0, ey)),
                                  vx=float(d * math.cos(th)), vy=float(d * math.sin(th)),
                                  sigma=float(rng.uniform(*p.drift_sigma)), grating=_grating(rng, p, (4.0, 10.0)),
                                  color=_muted(rng), opacity=float(rng.uniform(0.4, 0.75))))

    distractors = []
    for _ in range(int(rng.integers(p.distractors[0], p.distractors[1] + 1))):
        fill, outline = _vivid(rng)
        shape = Shape(kind=SHAPE_NAMES[int(rng.integers(len(SHAPE_NAMES)))], x=float(rng.uniform(0, ex)),
                      y=float(rng.uniform(0, ey)), size=float(rng.uniform(*p.distractor_size)),
                      angle=float(rng.uniform(0, 2 * math.pi)), fill=fill, outline=outline)
        amp = rng.uniform(*p.distractor_amp)
        distractors.append(Distractor(
            shape=shape, freqs=tuple(float(f) for f in rng.uniform(*p.distractor_freq, 6)),
            phases=tuple(float(f) for f in rng.uniform(0, 2 * math.pi, 6)),
            amps=tuple(float(a) for a in amp * rng.dirichlet(np.ones(3), 2).reshape(-1)),
            wobble=float(math.radians(rng.uniform(0, p.distractor_wobble_deg))),
            wobble_freq=float(rng.uniform(*p.distractor_freq)), wobble_phase=float(rng.uniform(0, 2 * math.pi))))

    # target: every class draws every quantity in the same order; the class only decides which
    # motion terms are switched on and their signs.
    fill, outline = _vivid(rng)
    kind = SHAPE_NAMES[int(rng.integers(len(SHAPE_NAMES)))]
    u0, v0 = float(rng.uniform()), float(rng.uniform())
    angle0 = float(rng.uniform(0, 2 * math.pi))
    size_lo, size_ratio, size_w = rng.uniform(*p.size_lo), rng.uniform(*p.size_ratio), rng.uniform()
    travel = rng.uniform(*p.travel)
    spin = math.radians(rng.uniform(*p.spin_deg))
    osc_amp, osc_cycles, osc_phase = rng.uniform(*p.osc_amp), rng.uniform(*p.osc_cycles), rng.uniform(0, 2 * math.pi)
    orbit_r, orbit_revs, orbit_phase = (rng.uniform(*p.orbit_radius), rng.uniform(*p.orbit_revs),
                                        rng.uniform(0, 2 * math.pi))

    vel, osc, orb, sp, (size_a, size_b) = (0.0, 0.0), (0.0, 0.0), 0.0, 0.0, (size_w, 0.0)
    if name == "move_left":
        vel = (-travel, 0.0)
    elif name == "move_right":
        vel = (travel, 0.0)
    elif name == "move_up":
        vel = (0.0, -travel)
    elif name == "move_down":
        vel = (0.0, travel)
    elif name == "rotate_clockwise":
        sp = spin
    elif name == "rotate_counterclockwise":
        sp = -spin
    elif name == "grow":
        size_a, size_b = 0.0, 1.0
    elif name == "shrink":
        size_a, size_b = 1.0, -1.0
    elif name == "oscillate_horizontal":
        osc = (osc_amp, 0.0)
    elif name == "oscillate_vertical":
        osc = (0.0, osc_amp)
    elif name == "orbit_clockwise":
        orb = orbit_revs
    elif name == "orbit_counterclockwise":
        orb = -orbit_revs
    else:  # pragma: no cover
        raise AssertionError(name)
    target = Target(kind=kind, fill=fill, outline=outline, u0=u0, v0=v0, angle0=angle0, spin=float(sp),
                    size_lo=float(size_lo), size_ratio=float(size_ratio), size_a=float(size_a), size_b=float(size_b),
                    vel=(float(vel[0]), float(vel[1])), osc=(float(osc[0]), float(osc[1])),
                    osc_cycles=float(osc_cycles), osc_phase=float(osc_phase),
                    orbit_radius=float(orbit_r) if orb else 0.0, orbit_revs=float(orb), orbit_phase=float(orbit_phase))

    return ClipSpec(seed=int(seed), index=int(index), label=label, fps=fps, n_frames=n_frames, width=int(width),
                    height=int(height), arena=p.arena, background=background, gratings=gratings, clutter=clutter,
                    patches=tuple(patches), distractors=tuple(distractors), target=target)


# ---------------------------------------------------------------------------------------------
# Poses at normalised time tau = t / duration.


def target_pose(spec: ClipSpec, tau: float) -> tuple[float, float, float, float]:
    """(u, v, size, angle): arena position in [0, 1) (wrapped), size in short sides, angle in radians."""
    g = spec.target
    u = g.u0 + g.vel[0] * tau + g.osc[0] * math.sin(2 * math.pi * g.osc_cycles * tau + g.osc_phase)
    v = g.v0 + g.vel[1] * tau + g.osc[1] * math.sin(2 * math.pi * g.osc_cycles * tau + g.osc_phase)
    if g.orbit_radius:
        th = g.orbit_phase + 2 * math.pi * g.orbit_revs * tau
        u += g.orbit_radius * math.cos(th)
        v += g.orbit_radius * math.sin(th)
    size = g.size_lo * g.size_ratio ** (g.size_a + g.size_b * tau)
    return u % 1.0, v % 1.0, size, g.angle0 + g.spin * tau


def distractor_pose(d: Distractor, tau: float) -> tuple[float, float, float]:
    """(x, y, angle) in scene units."""
    w = [a * math.sin(2 * math.pi * f * tau + ph) for a, f, ph in zip(d.amps, d.freqs, d.phases)]
    ang = d.shape.angle + d.wobble * math.sin(2 * math.pi * d.wobble_freq * tau + d.wobble_phase)
    return d.shape.x + sum(w[:3]), d.shape.y + sum(w[3:]), ang


def patch_pos(pt: DriftPatch, tau: float) -> tuple[float, float]:
    return pt.x + pt.vx * tau, pt.y + pt.vy * tau


__all__ = [
    "CLASSES", "NUM_CLASSES", "SHAPES", "SHAPE_NAMES", "RESOLUTIONS", "FPS_CHOICES", "SceneParams", "DEFAULT_PARAMS",
    "EASY_PARAMS", "SCENE_PRESETS", "faded_scene",
    "Shape", "Grating", "DriftPatch", "Distractor", "Target", "ClipSpec", "make_spec", "clip_rng", "clip_label",
    "target_pose", "distractor_pose", "patch_pos", "TRAIN_SEEDS", "HELDOUT_SEEDS", "VALIDATION_SEEDS", "TEST_SEEDS", "DEFAULT_TRAIN_SEED",
    "DEFAULT_VAL_SEED", "DEFAULT_HELDOUT_SEED",
]
