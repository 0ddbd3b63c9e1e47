"""``--reference-pose``: a bind-pose frame 0 before an otherwise unchanged animation, in our Motion and in Blender."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import real_motion, run_blender
from mocap_cli.errors import MocapError
from mocap_cli.export import export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.export.reference_pose import check_reference_pose, with_reference_frame
from mocap_cli.export.rig_presets import load_rig_preset
from mocap_cli.export.root_motion import apply_root_mode

REST_TOLERANCE_DEG = 0.1


def _angle_deg(q: np.ndarray) -> np.ndarray:
    return np.degrees(2.0 * np.arccos(np.clip(np.abs(q[..., 3]), 0.0, 1.0)))


def test_reference_frame_is_prepended_and_the_rest_is_unchanged():
    motion = real_motion("walk_16_32", frames=40)
    for preset in ("blender", "ue5"):
        for pose in ("t", "a"):
            plain, _ = prepare_export(motion, preset=preset, mesh="none")
            ref, _ = prepare_export(motion, preset=preset, mesh="none", reference_pose=pose)
            assert ref.num_frames == plain.num_frames + 1 and ref.fps == plain.fps
            np.testing.assert_allclose(ref.rotations[1:], plain.rotations, atol=1e-12)
            np.testing.assert_allclose(ref.joints[1:], plain.joints, atol=1e-12)
            np.testing.assert_allclose(ref.root_translation[1:], plain.root_translation, atol=1e-12)
            # The pose that matches the rig's rest is exactly the rest (identity locals) on that rig.
            if (pose, preset) in (("t", "blender"), ("a", "ue5")):
                assert _angle_deg(ref.rotations[0]).max() < 1e-6
            else:
                assert _angle_deg(ref.rotations[0]).max() > 10.0  # the arms differ from the rig's rest


def test_reference_frame_stands_on_the_floor_at_the_first_position_facing_the_camera():
    motion = real_motion("walk_16_32", frames=40)
    ref = with_reference_frame(motion, "t", load_rig_preset("blender"))
    rest = motion.skeleton.rest_positions()
    np.testing.assert_allclose(ref.joints[0] - ref.joints[0, 0], rest - rest[0], atol=1e-9)
    assert ref.root_translation[0, 1] == pytest.approx(motion.skeleton.offsets[0, 1])
    np.testing.assert_allclose(ref.root_translation[0, [0, 2]], motion.root_translation[0, [0, 2]])
    a = with_reference_frame(motion, "a", load_rig_preset("blender"))
    li, le = motion.skeleton.index("left_shoulder"), motion.skeleton.index("left_elbow")
    arm = a.joints[0, le] - a.joints[0, li]
    assert np.degrees(np.arctan2(-arm[1], arm[0])) == pytest.approx(45.0, abs=1e-6)  # arm 45° below horizontal
    in_place = with_reference_frame(apply_root_mode(motion, "in-place"), "t", load_rig_preset("blender"))
    assert in_place.root_translation[0, 0] == in_place.root_translation[0, 2] == 0.0
    assert with_reference_frame(motion, "none", load_rig_preset("blender")) is motion


def test_unknown_reference_pose():
    with pytest.raises(MocapError, match="none, t, a"):
        check_reference_pose("x")


@pytest.mark.blender
def test_blender_first_frame_is_the_rest_pose_and_the_animation_is_identical(tmp_path):
    motion = real_motion("jump_13_11", frames=30)
    frames = [0, 5, 17, 29]
    request, expect = [], []
    for preset, pose, ext in (
        ("blender", "t", ".glb"),
        ("blender", "t", ".fbx"),
        ("blender", "t", ".bvh"),
        ("ue5", "a", ".fbx"),
    ):
        for ref in ("none", pose):
            prepared, options = prepare_export(motion, preset=preset, mesh="none", reference_pose=ref)
            path = tmp_path / f"{preset}_{ref}{ext}"
            export_motion(prepared, path, options)
            shifted = [f + 1 for f in frames] if ref != "none" else frames
            request.append({"path": str(path), "fps": motion.fps, "frames": [0, *shifted], "rest_angles": True})
            expect.append((preset, ref, ext))
    results = run_blender(request, tmp_path)
    for k in range(0, len(results), 2):
        preset, ref, ext = expect[k + 1]
        plain, withref = results[k], results[k + 1]
        assert withref["import_result"] == ["FINISHED"], (preset, ext)
        angles = withref["frames"]["0"]["rest_angles"]
        assert max(angles.values()) <= REST_TOLERANCE_DEG, (preset, ext, max(angles.items(), key=lambda kv: kv[1]))
        assert withref["action_frame_range"][1] - withref["action_frame_range"][0] == pytest.approx(
            plain["action_frame_range"][1] - plain["action_frame_range"][0] + 1
        )
        for f in frames:
            a, b = plain["frames"][str(f)]["heads"], withref["frames"][str(f + 1)]["heads"]
            worst = max(np.linalg.norm(np.subtract(a[n], b[n])) for n in a)
            assert worst < 1e-4, (preset, ext, f, worst)
    # Without a reference frame, frame 0 of the animation is not the rest pose (the test can fail).
    assert max(results[0]["frames"]["0"]["rest_angles"].values()) > 5.0
