"""Root motion modes (--root world|in-place|none) and frame-rate resampling (--fps) on real motion."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import real_motion, run_blender, to_blender
from mocap_cli.core.motion import Motion
from mocap_cli.errors import MocapError
from mocap_cli.export import export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.root_motion import apply_root_mode
from mocap_cli.post.resample import resample_motion


@pytest.fixture(scope="module")
def motion() -> Motion:
    # A walk: the root really travels (checked below), so in-place has work to do.
    return real_motion("walk_16_32", frames=90, fps=30.0)


def test_world_keeps_everything(motion: Motion) -> None:
    assert apply_root_mode(motion, "world") is motion


def test_in_place_removes_the_horizontal_path_and_keeps_height(motion: Motion) -> None:
    travel = np.ptp(motion.root_translation[:, [0, 2]], axis=0).max()
    assert travel > 0.3, "test clip should move through the scene"
    out = apply_root_mode(motion, "in-place")
    assert np.abs(out.root_translation[:, [0, 2]]).max() == 0.0
    np.testing.assert_array_equal(out.root_translation[:, 1], motion.root_translation[:, 1])
    np.testing.assert_array_equal(out.rotations, motion.rotations)  # turning is kept
    # The body relative to its root is untouched; joints follow by forward kinematics.
    rel_in, rel_out = motion.joints - motion.joints[:, :1], out.joints - out.joints[:, :1]
    np.testing.assert_allclose(rel_out, rel_in, atol=1e-9)
    assert out.provenance["root_motion"] == "in-place" and "root_motion" not in motion.provenance


def test_none_pins_the_root_at_rest_height(motion: Motion) -> None:
    out = apply_root_mode(motion, "none")
    want = np.array([0.0, motion.skeleton.offsets[0, 1], 0.0])
    np.testing.assert_array_equal(out.root_translation, np.broadcast_to(want, out.root_translation.shape))
    np.testing.assert_allclose(out.joints - out.joints[:, :1], motion.joints - motion.joints[:, :1], atol=1e-9)


def test_unknown_mode_is_one_sentence(motion: Motion) -> None:
    with pytest.raises(MocapError, match="^Unknown root motion mode 'fixed'; choose one of world, in-place, none.$"):
        apply_root_mode(motion, "fixed")


@pytest.mark.blender
def test_in_place_and_none_as_blender_sees_them(motion: Motion, tmp_path: Path) -> None:
    """Blender's importers put the pelvis over the origin (in-place: height still varies; none: fixed)."""
    items, expect = [], []
    for root in ("in-place", "none"):
        rigged, options = prepare_export(motion, preset="ue5", root=root, mesh="none")
        for fmt in ("bvh", "glb", "fbx"):
            path = tmp_path / f"{root}.{fmt}"
            export_motion(rigged, path, options)
            items.append({"path": str(path), "fps": 30.0, "frames": [0, 45, 89]})
            expect.append((root, fmt, rigged, 100.0 if fmt == "bvh" else 1.0))
    results = run_blender(items, tmp_path)
    for (root, fmt, rigged, scale), res in zip(expect, results):
        heads = np.array([res["frames"][str(f)]["heads"]["pelvis"] for f in (0, 45, 89)]) / scale
        np.testing.assert_allclose(heads[:, :2], 0.0, atol=1e-4, err_msg=f"{root} {fmt}")  # Blender X, Y = ground
        np.testing.assert_allclose(heads, to_blender(rigged.joints[[0, 45, 89], 0]), atol=1e-4)
        if root == "none":
            assert np.ptp(heads[:, 2]) < 1e-4


def test_resampling_matches_interpolated_joints(motion: Motion) -> None:
    """30 -> 24 fps: slerped rotations put every joint within 1 cm of the straight-line interpolation of the
    source joints at the same times, and exactly on them where the two frame grids meet (every 1/6 s)."""
    out = resample_motion(motion, 24.0)
    assert out.fps == 24.0 and out.num_frames == int(np.floor((motion.num_frames - 1) / 30.0 * 24.0 + 1e-6)) + 1
    t_src = np.arange(motion.num_frames) / 30.0
    t_new = np.arange(out.num_frames) / 24.0
    lin = np.empty_like(out.joints)
    for j in range(24):
        for k in range(3):
            lin[:, j, k] = np.interp(t_new, t_src, motion.joints[:, j, k])
    assert np.linalg.norm(out.joints - lin, axis=-1).max() < 0.01
    common = min(len(out.joints[::4]), len(motion.joints[::5]))
    np.testing.assert_allclose(out.joints[::4][:common], motion.joints[::5][:common], atol=1e-9)


def test_resampling_round_trip(motion: Motion) -> None:
    """30 -> 24 -> 30 fps comes back to the original joints (mean < 2 mm, worst < 2 cm on a walk); the
    clip can only lose its last, partial frame interval."""
    back = resample_motion(resample_motion(motion, 24.0), 30.0)
    assert motion.num_frames - 1 <= back.num_frames <= motion.num_frames
    err = np.linalg.norm(back.joints - motion.joints[: back.num_frames], axis=-1)
    assert err.mean() < 0.002 and err.max() < 0.02, (err.mean(), err.max())
