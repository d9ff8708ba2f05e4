"""Procedural motion benchmark (haltingvt.synth) and the ffmpeg frame sampler (haltingvt.video)."""

import csv
import json
import math
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from haltingvt.sampling import segment_centre_indices
from haltingvt.synth import (CLASSES, DEFAULT_PARAMS, NUM_CLASSES, SynthDataset, iter_training_clips, make_spec,
                             make_training_clip, out_size_for, render, render_eval_clip, static_clip, tsn_indices)
from haltingvt.synth import cli as synth_cli
from haltingvt.synth.render import Renderer
from haltingvt.synth.scenes import FPS_CHOICES, RESOLUTIONS, target_pose
from haltingvt.synth.split import write_split
from haltingvt.synth.video_io import write_video
from haltingvt.video import probe, resized_dims, sample_video

needs_ffmpeg = pytest.mark.skipif(not (shutil.which("ffmpeg") and shutil.which("ffprobe")), reason="needs ffmpeg")
SMALL = replace(DEFAULT_PARAMS, durations=(2.0, 3.0), resolutions=((160, 120), (96, 160)))
IDX = {c: i for i, c in enumerate(CLASSES)}


def test_class_list():
    assert len(CLASSES) >= 10 and len(set(CLASSES)) == len(CLASSES) == NUM_CLASSES
    from haltingvt.config import preset

    assert preset("motion-tiny").num_classes == NUM_CLASSES


def test_specs_are_deterministic_and_seeds_differ():
    assert make_spec(0, 5) == make_spec(0, 5)
    assert make_spec(0, 5) != make_spec(0, 6)
    assert make_spec(0, 5) != make_spec(1, 5)
    json.dumps(make_spec(0, 5).to_dict())  # plain data


def test_rendered_frames_are_deterministic():
    a, b, c = make_spec(3, 7), make_spec(3, 7), make_spec(4, 7)
    t = [0.0, 0.5, 1.7]
    fa = render(a, t, (64, 80))
    assert fa.dtype == np.uint8 and fa.shape == (3, 64, 80, 3)
    assert np.array_equal(fa, render(b, t, (64, 80)))
    assert not np.array_equal(fa, render(c, t, (64, 80)))
    x1, y1 = make_training_clip(0, 11)
    x2, y2 = make_training_clip(0, 11)
    assert np.array_equal(x1, x2) and y1 == y2
    assert not np.array_equal(x1, make_training_clip(1, 11)[0])


def test_region_render_matches_full_frame():
    spec = make_spec(0, 3)
    H, W = out_size_for(spec, 128)
    full = render(spec, [1.0], (H, W))
    part = render(spec, [1.0], (H, W), (5, 9, 40, 50))
    assert np.array_equal(full[:, 5:45, 9:59], part)


def test_class_balance():
    labels = [make_spec(1000, i).label for i in range(10 * NUM_CLASSES)]
    assert np.bincount(labels, minlength=NUM_CLASSES).tolist() == [10] * NUM_CLASSES
    assert labels[:NUM_CLASSES] != list(range(NUM_CLASSES))  # shuffled within blocks


def test_durations_fps_resolutions_sizes():
    specs = [make_spec(0, i) for i in range(300)]
    for s in specs:
        assert s.fps in FPS_CHOICES
        assert 2.0 - 1.0 / s.fps <= s.duration <= 12.0 + 1.0 / s.fps
        assert (s.width, s.height) in RESOLUTIONS
        for tau in (0.0, 0.5, 1.0):
            size = target_pose(s, tau)[2]
            lo, hi = DEFAULT_PARAMS.size_lo[0], DEFAULT_PARAMS.size_lo[1] * DEFAULT_PARAMS.size_ratio[1]
            assert lo - 1e-3 < size < hi + 1e-3  # 15 .. 32 % of the short side
    assert len({s.fps for s in specs}) == len(FPS_CHOICES)
    assert len({(s.width, s.height) for s in specs}) == len(RESOLUTIONS)
    durs = [s.duration for s in specs]
    assert min(durs) < 3 and max(durs) > 11


def test_scene_is_the_same_for_every_class():
    """Every random draw is shared by all classes: only the target's motion terms depend on the label."""
    for index in range(20):
        specs = [make_spec(0, index, label=k) for k in range(NUM_CLASSES)]
        keys = ("kind", "fill", "outline", "u0", "v0", "angle0", "size_lo", "size_ratio")
        for s in specs[1:]:
            assert replace(s, label=0, target=None) == replace(specs[0], label=0, target=None)
            assert all(getattr(s.target, k) == getattr(specs[0].target, k) for k in keys)
        # the first frame of every translation and rotation class is the same picture
        first = [render(specs[IDX[c]], [0.0], (48, 64)) for c in
                 ("move_left", "move_right", "move_up", "move_down", "rotate_clockwise", "rotate_counterclockwise")]
        assert all(np.array_equal(first[0], f) for f in first[1:])
        # grow at tau is shrink at 1 - tau, and the constant size of the other classes is one of them
        g, sh, mv = specs[IDX["grow"]], specs[IDX["shrink"]], specs[IDX["move_left"]]
        for tau in (0.0, 0.3, 1.0):
            assert math.isclose(target_pose(g, tau)[2], target_pose(sh, 1 - tau)[2])
        w = mv.target.size_a
        assert math.isclose(target_pose(mv, 0.7)[2], target_pose(g, w)[2])


def test_single_frame_statistics_do_not_depend_on_class():
    rng = np.random.default_rng(0)
    stats = {k: [] for k in range(NUM_CLASSES)}
    for i in range(40 * NUM_CLASSES):
        s = make_spec(0, i)
        u, v, size, ang = target_pose(s, float(rng.uniform()))
        stats[s.label].append((u, v, size, math.cos(ang), math.sin(ang)))
    allv = np.array([x for v in stats.values() for x in v])
    for k, v in stats.items():
        m = np.array(v).mean(0)
        assert np.all(np.abs(m - allv.mean(0)) < [0.15, 0.15, 0.025, 0.35, 0.35]), (CLASSES[k], m, allv.mean(0))


def _unwrap(d):
    return (d + 0.5) % 1.0 - 0.5


def test_motion_is_large_enough_and_unaliased_at_8_frames():
    for i in range(10 * NUM_CLASSES):
        s = make_spec(0, i)
        name = s.label_name
        taus = (np.arange(8) + 0.5) / 8
        poses = np.array([target_pose(s, t) for t in taus])
        du, dv = _unwrap(np.diff(poses[:, 0])), _unwrap(np.diff(poses[:, 1]))
        dang, dsize = np.diff(poses[:, 3]), np.diff(np.log(poses[:, 2]))
        if name.startswith("move_"):
            step = {"move_left": -du, "move_right": du, "move_up": -dv, "move_down": dv}[name]
            assert np.all(step > 0.03) and step.sum() * 8 / 7 >= 0.35 - 1e-9
        elif name.startswith("rotate_"):
            sgn = 1 if name == "rotate_clockwise" else -1
            assert np.all(sgn * dang > math.radians(20)) and np.all(sgn * dang < math.radians(90))
        elif name in ("grow", "shrink"):
            sgn = 1 if name == "grow" else -1
            min_ratio = math.log(DEFAULT_PARAMS.size_ratio[0]) * 7 / 8  # sampled frames span 7/8 of the clip
            assert np.all(sgn * dsize > 0) and abs(math.log(poses[-1, 2] / poses[0, 2])) > min_ratio - 1e-9
        elif name.startswith("oscillate_"):
            main_, other = (du, dv) if name.endswith("horizontal") else (dv, du)
            assert np.all(other == 0) and np.ptp(np.cumsum(main_)) > 0.15 and (np.diff(np.sign(main_)) != 0).any()
        elif name.startswith("orbit_"):
            sgn = 1 if name == "orbit_clockwise" else -1
            cross = du[:-1] * dv[1:] - dv[:-1] * du[1:]  # > 0: turning clockwise on screen (y down)
            assert np.all(sgn * cross > 0)
        else:
            raise AssertionError(name)


def _bare(spec, **target):
    """The spec with only the target on a black background."""
    return replace(spec, gratings=(), clutter=(), patches=(), distractors=(), background=(0.0, 0.0, 0.0),
                   target=replace(spec.target, fill=(255.0, 255.0, 255.0), outline=(255.0, 255.0, 255.0), **target))


def _centroid(img):
    m = img[..., 0].astype(float)
    ys, xs = np.mgrid[: m.shape[0], : m.shape[1]]
    return (xs * m).sum() / m.sum(), (ys * m).sum() / m.sum()


@pytest.mark.parametrize("name,sign", [("rotate_clockwise", 1), ("rotate_counterclockwise", -1),
                                       ("orbit_clockwise", 1), ("orbit_counterclockwise", -1)])
def test_turning_sense_on_screen(name, sign):
    """Clockwise means clockwise as displayed (image y axis points down)."""
    s = _bare(make_spec(0, 0, label=IDX[name]), kind="L", u0=0.5, v0=0.5, size_lo=0.2, size_ratio=1.0)
    frames = render(s, np.array([0.0, 0.04, 0.08]) * s.duration, (96, 96))
    if name.startswith("rotate"):  # the L's centroid is off its centre: follow it around the centre
        cx, cy = 48.0, 48.0
        pts = [_centroid(f) for f in frames]
        ang = [math.atan2(y - cy, x - cx) for x, y in pts]
    else:  # the orbit centre: the orbit phase says where the object starts
        pts = [_centroid(f) for f in frames]
        ang = [math.atan2(pts[k + 1][1] - pts[k][1], pts[k + 1][0] - pts[k][0]) for k in range(2)]
    d = np.diff(np.unwrap(ang))
    assert np.all(sign * d > 0), (name, ang)


def test_training_clips_and_static():
    clip, label = make_training_clip(0, 4, frames=8, size=112, train_resize=(128, 160))
    assert clip.shape == (8, 112, 112, 3) and clip.dtype == np.uint8 and 0 <= label < NUM_CLASSES
    st, label2 = make_training_clip(0, 4, static=True)
    assert label2 == label and all(np.array_equal(st[0], f) for f in st)
    assert any(np.array_equal(st[0], f) for f in clip)  # one of the clip's own frames
    s2 = static_clip(clip, 0)
    assert all(np.array_equal(s2[0], f) for f in s2)
    items = list(iter_training_clips(0, frames=4, size=48, train_resize=(56, 64), start=2, step=3, stop=9,
                                     with_static=True))
    assert len(items) == 3 and items[0][0].shape == (4, 48, 48, 3) and items[0][1].shape == (4, 48, 48, 3)
    with pytest.raises(ValueError):
        make_training_clip(1000, 0)
    idx = tsn_indices(100, 8, np.random.default_rng(0))
    assert all(i * 100 // 8 <= x < (i + 1) * 100 // 8 for i, x in enumerate(idx))


def test_torch_dataset():
    ds = SynthDataset(0, 4, mode="train", frames=4, size=48, train_resize=(56, 64), with_static=True)
    v, st, y = ds[1]
    assert tuple(v.shape) == (3, 4, 48, 48) and tuple(st.shape) == (3, 4, 48, 48)
    assert -1.0 <= float(v.min()) and float(v.max()) <= 1.0 and isinstance(y, int)
    ev = SynthDataset(1000, 2, mode="eval", frames=8, size=112)
    assert tuple(ev[0][0].shape) == (3, 8, 112, 112)


def test_render_speed_budget():
    import time

    specs = [make_spec(0, i) for i in range(6)]
    rs = [Renderer(s, (128, 128)) for s in specs]
    t0 = time.perf_counter()
    for r in rs:
        for k in range(8):
            r.frame(0.1 * k)
    per_frame = (time.perf_counter() - t0) / 48
    assert per_frame < 0.02  # measured ~0.3 ms; generous for loaded CI machines


def test_resize_rule_matches_contract():
    assert resized_dims(426, 240, 128) == (227, 128)
    assert resized_dims(360, 640, 128) == (128, 228)
    assert resized_dims(480, 480, 128) == (128, 128)
    s = make_spec(0, 0)
    assert out_size_for(s, 128)[::-1] == resized_dims(s.width, s.height, 128)


# ------------------------------------------------------------------------------------ files


@needs_ffmpeg
def test_split_writer_files_decode(tmp_path):
    rows = write_split(tmp_path, 3, 1001, ("mp4", "webm"), all_formats=False, workers=1, params=SMALL)
    assert [r["format"] for r in rows] == ["mp4", "webm", "mp4"]
    with open(tmp_path / "labels.csv") as f:
        table = list(csv.DictReader(f))
    assert [t["path"] for t in table] == [r["path"] for r in rows]
    assert all(t["label"] in CLASSES for t in table)
    assert (tmp_path / "classes.txt").read_text().split() == list(CLASSES)
    for r in rows:
        info = probe(tmp_path / r["path"])["streams"][0]
        assert info["codec_name"] == {"mp4": "h264", "webm": "vp9"}[r["format"]]
        assert info["pix_fmt"] == "yuv420p" and (info["width"], info["height"]) == (r["width"], r["height"])
        assert info["avg_frame_rate"] == f"{r['fps']}/1"
        got = sample_video(tmp_path / r["path"], 8, 112, 128)
        assert got.shape == (8, 112, 112, 3) and got.dtype == np.uint8
        want = render_eval_clip(make_spec(1001, r["index"], SMALL))
        assert np.abs(got.astype(int) - want).mean() < 6  # codec + swscale vs direct rendering


@needs_ffmpeg
def test_cli(tmp_path, capsys):
    assert synth_cli.main(["--out", str(tmp_path / "a"), "--count", "2", "--workers", "1", "--formats", "webm",
                           "--resolutions", "96x64", "--quiet"]) == 0
    assert len((tmp_path / "a" / "labels.csv").read_text().splitlines()) == 3
    assert all(p.suffix == ".webm" for p in (tmp_path / "a" / "videos").iterdir())
    assert synth_cli.main(["--out", str(tmp_path / "b"), "--count", "1", "--seed", "0"]) == 2


def _grey_video(path, n, fps=15, w=64, h=48, fmt=None):
    frames = (np.full((h, w, 3), 8 * k + 4, np.uint8) for k in range(n))
    write_video(path, frames, w, h, fps, fmt)


@needs_ffmpeg
@pytest.mark.parametrize("ext", ["mp4", "webm"])
@pytest.mark.parametrize("n,frames", [(29, 8), (5, 8), (30, 3)])
def test_sample_video_returns_segment_centre_frames(tmp_path, ext, n, frames):
    path = tmp_path / f"grey.{ext}"
    _grey_video(path, n)
    got = sample_video(path, frames, 32, 40)
    assert got.shape == (frames, 32, 32, 3)
    found = np.round((got.reshape(frames, -1).mean(1) - 4) / 8).astype(int).tolist()
    assert found == segment_centre_indices(n, frames)


@needs_ffmpeg
def test_sample_video_respects_rotation(tmp_path):
    src, rot = tmp_path / "src.mp4", tmp_path / "rot.mp4"
    fr = np.zeros((48, 64, 3), np.uint8)
    fr[:24] = 250  # bright top half
    write_video(src, (fr for _ in range(6)), 64, 48, 15)
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90",
                    str(rot)], check=True)
    plain = sample_video(src, 2, 32, 40).astype(float).mean(axis=(0, 3))
    rotated = sample_video(rot, 2, 32, 40).astype(float).mean(axis=(0, 3))
    assert plain[:8].mean() > 200 and plain[-8:].mean() < 50  # top bright, bottom dark
    cols = rotated.mean(0)
    assert abs(cols[:8].mean() - cols[-8:].mean()) > 150  # now split left/right
    assert np.ptp(rotated.mean(1)) < 30


def test_faded_scene_keeps_the_target_and_fades_the_rest():
    from haltingvt.synth.scenes import faded_scene

    assert faded_scene(1.0) is DEFAULT_PARAMS and faded_scene(3.0) is DEFAULT_PARAMS
    flat = make_spec(0, 3, faded_scene(0.0))
    assert flat.label == make_spec(0, 3).label  # labels do not depend on the scene parameters
    assert not flat.clutter and not flat.distractors and not flat.patches
    assert all(c == 0.0 for g in flat.gratings for c in g.color)
    frame = render(flat, [0.5], (120, 160))[0].reshape(-1, 3).astype(int)
    background = np.all(np.abs(frame - np.round(flat.background)) <= 1, axis=1)
    assert 0.6 < background.mean() < 1.0  # a flat background and a visible target
    half = faded_scene(0.5)
    assert half.clutter_density == tuple(0.5 * d for d in DEFAULT_PARAMS.clutter_density)
    assert half.distractors == (0, DEFAULT_PARAMS.distractors[1])
