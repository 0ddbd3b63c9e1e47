"""The preview's drawing pieces on ground truth: the synthetic clips' true camera and CMU motion through our IK.

With the camera the clip was rendered with, the painter must draw each joint where that camera sees it; the
body silhouette must cover the trunk; planted feet, lost spans and failures must show (or not) as documented.
"""

from __future__ import annotations

from fractions import Fraction

import cv2
import numpy as np
import pytest

from conftest import require_shared
from helpers import real_motion
from mocap_cli.body.anny_body import anny_available
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.errors import MocapError
from mocap_cli.preview.camera_view import body_parts, silhouette_mask
from mocap_cli.preview.clip import preview_mesh
from mocap_cli.preview.paths import check_preview_path
from mocap_cli.preview.render import (
    PreviewInputs,
    PreviewPainter,
    planted_contacts,
    write_preview,
)
from mocap_cli.preview.side_view import PLANTED, side_axes
from mocap_cli.preview.timeline import LOST, lost_spans
from mocap_cli.solve.camera import Pinhole
from mocap_cli.solve.camera_pose import CameraPose, SolvedCamera

CLIP = "jump_13_11"  # a static camera
FRAMES = 40


def true_camera(gt) -> SolvedCamera:
    """The render camera: gt R, t map world → camera (OpenCV axes), K its intrinsics."""
    k, r, t = gt["K"].astype(float), gt["R"][0].astype(float), gt["t"][0].astype(float)
    assert k[0, 0] == k[1, 1]
    return SolvedCamera(Pinhole(k[0, 0], k[0, 2], k[1, 2]), CameraPose(r.T, -r.T @ t))


def true_turning_camera(gt) -> SolvedCamera:
    """The render camera of every frame (a clip whose camera moves): one pose per frame."""
    k, r, t = gt["K"].astype(float), gt["R"].astype(float), gt["t"].astype(float)
    r_t = np.transpose(r, (0, 2, 1))
    return SolvedCamera(Pinhole(k[0, 0], k[0, 2], k[1, 2]), CameraPose(r_t, -np.einsum("fij,fj->fi", r_t, t)))


@pytest.fixture(scope="module")
def scene():
    gt = np.load(require_shared("data", "synthetic", CLIP, "gt.npz"))
    video = require_shared("data", "synthetic", CLIP, "video.mp4")
    motion = real_motion(CLIP, frames=FRAMES)
    frames = [f for _, f in zip(range(FRAMES), iter_frames(video))]
    return gt, motion, frames


def inputs_for(motion, camera, mesh=None, detected=None) -> PreviewInputs:
    n = motion.num_frames
    detected = np.ones(n, bool) if detected is None else detected
    return PreviewInputs(motion, camera, mesh, np.where(detected, 0.9, 0.0), detected, np.arange(n) / motion.fps)


def test_joints_are_drawn_where_the_true_camera_sees_them(scene):
    gt, motion, frames = scene
    painter = PreviewPainter(inputs_for(motion, true_camera(gt)), (640, 480))
    errors = []
    for i, frame in enumerate(frames):
        drawn = painter.paint(i, frame.image)
        at_source = (drawn.joints + 0.5) / painter.layout.scale - 0.5
        errors.append(np.linalg.norm(at_source - gt["joints2d"][i, :24], axis=-1))
    err = np.array(errors)
    # Only our IK's fit of the CMU joints separates the two (millimetres, about a pixel at 3.5 m).
    print(f"drawn vs true projection: mean {err.mean():.2f} px, max {err.max():.2f} px")
    assert err.mean() < 1.0 and err.max() < 3.0, (err.mean(), err.max())


def test_a_turning_camera_is_followed_frame_by_frame():
    """dance_05_02's camera orbits ~100°: with its true per-frame pose each frame is drawn where that frame's
    camera sees the joints, the last as well as the first; the side view takes the clip's mean heading."""
    clip, frames = "dance_05_02", 150
    gt = np.load(require_shared("data", "synthetic", clip, "gt.npz"))
    motion = real_motion(clip, frames=frames)
    camera = true_turning_camera(gt)
    painter = PreviewPainter(inputs_for(motion, camera), (640, 480))
    errors = {}
    for i, frame in enumerate(iter_frames(require_shared("data", "synthetic", clip, "video.mp4"))):
        if i % 10 == 0 or i == frames - 1:
            drawn = painter.paint(i, frame.image)
            at_source = (drawn.joints + 0.5) / painter.layout.scale - 0.5
            errors[i] = np.linalg.norm(at_source - gt["joints2d"][i, :24], axis=-1).mean()
    # Our IK's fit of this body (up to 4 cm at the head) is all that separates them; frame 0's pose for the last
    # frame, where the camera has turned ~100°, would miss by hundreds of pixels.
    assert np.mean(list(errors.values())) < 1.5 and max(errors.values()) < 5.0, errors
    stale = SolvedCamera(camera.intrinsics, camera.pose.at(0)).project(motion.joints[-1])[0]
    assert np.nanmean(np.linalg.norm(stale - gt["joints2d"][-1, :24], axis=-1)) > 50.0
    right, _ = side_axes(camera.pose)
    first, last = (np.array([r[0], 0.0, r[2]]) / np.hypot(r[0], r[2]) for r in camera.pose.rotation[[0, -1], :, 0])
    between = np.degrees(np.arccos(np.clip(first @ last, -1, 1)))
    assert between > 90.0
    # The side view looks along the mean heading: between the first and the last camera, not at either.
    looking = np.cross([0.0, 1.0, 0.0], right)
    to_first = np.degrees(np.arccos(abs(looking @ first) / np.linalg.norm(looking)))
    assert abs(to_first - between / 2.0) < 15.0, (to_first, between)


@pytest.mark.skipif(not anny_available(), reason="the anny body is not installed")
def test_body_silhouette_covers_the_trunk(scene):
    gt, motion, _ = scene
    camera = true_camera(gt)
    mesh = preview_mesh(motion, "anny", None)
    painter = PreviewPainter(inputs_for(motion, camera, mesh), (640, 480))
    trunk = [motion.skeleton.index(n) for n in ("pelvis", "spine1", "spine2", "spine3", "neck")]
    for i in (0, 20, 39):
        verts, _ = camera.project(painter._body(i))
        mask = silhouette_mask(verts, body_parts(mesh.joints, mesh.weights), (640, 480))
        px = np.rint(camera.project(motion.joints[i, trunk])[0]).astype(int)
        assert np.all(mask[px[:, 1], px[:, 0]] == 255), i
        assert 0.02 < (mask > 0).mean() < 0.4  # a person, not the whole frame
        exact = np.zeros_like(mask)  # every triangle filled on its own: the true silhouette
        for tri in np.rint(verts[mesh.faces]).astype(np.int32):
            cv2.fillConvexPoly(exact, tri, 255)
        iou = np.logical_and(mask, exact).sum() / np.logical_or(mask, exact).sum()
        print(f"frame {i}: silhouette IoU {iou:.3f}")
        assert iou > 0.9, (i, iou)


def test_planted_feet_are_marked_only_when_the_motion_has_contacts(scene):
    gt, motion, frames = scene
    plain = PreviewPainter(inputs_for(motion, true_camera(gt)), (640, 480))
    assert planted_contacts(motion) is None
    with_contacts = real_motion(CLIP, frames=FRAMES)
    contacts = np.zeros((FRAMES, 4))
    contacts[:10, :2] = 1.0  # left ankle and ball planted for the first 10 frames
    with_contacts.contacts = contacts  # Motion's ground contacts (post.contacts)
    with_contacts.contact_joints = ("left_ankle", "left_foot", "right_ankle", "right_foot")
    marked = PreviewPainter(inputs_for(with_contacts, true_camera(gt)), (640, 480))
    lay = marked.layout

    def green(painter, i):
        side = painter.paint(i, frames[i].image).image[: lay.side[1], lay.camera[0] :]
        return int(np.all(np.abs(side[50:].astype(int) - PLANTED) <= 8, axis=-1).sum())

    assert green(marked, 5) > 50 and green(marked, 15) == 0 and green(plain, 5) == 0


def test_timeline_marks_lost_spans(scene):
    gt, motion, frames = scene
    detected = np.ones(FRAMES, bool)
    detected[10:25] = False
    assert lost_spans(detected) == [(10, 25)]
    painter = PreviewPainter(inputs_for(motion, true_camera(gt), detected=detected), (640, 480))
    strip = painter.paint(0, frames[0].image).image[painter.layout.camera[1] :]

    def column(i: int) -> np.ndarray:
        return strip[:, painter.timeline.column(i) + 1]

    assert np.all(column(17) == LOST) and not np.any(np.all(column(5) == LOST, axis=-1))


def test_failed_preview_leaves_nothing_and_keeps_an_existing_file(scene, tmp_path):
    gt, motion, frames = scene
    out = tmp_path / "preview.mp4"
    out.write_bytes(b"keep me")

    def broken():
        yield from frames[:5]
        raise MocapError("decoding stopped")

    with pytest.raises(MocapError, match="decoding stopped"):
        write_preview(out, broken(), (640, 480), Fraction(30), inputs_for(motion, true_camera(gt)))
    assert out.read_bytes() == b"keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["preview.mp4"]
    count = write_preview(out, iter(frames), (640, 480), Fraction(30), inputs_for(motion, true_camera(gt)))
    made = probe(out)
    assert count == made.frame_count == FRAMES and made.fps == 30 and made.codec == "h264"


def test_preview_path_checks(tmp_path):
    with pytest.raises(MocapError, match=".mp4"):
        check_preview_path(tmp_path / "p.gif", overwrite=False)
    with pytest.raises(MocapError, match="does not exist"):
        check_preview_path(tmp_path / "no" / "p.mp4", overwrite=False)
    (tmp_path / "p.mp4").write_bytes(b"x")
    with pytest.raises(MocapError, match="--overwrite"):
        check_preview_path(tmp_path / "p.mp4", overwrite=False)
    with pytest.raises(MocapError, match="its own name"):
        check_preview_path(tmp_path / "p.mp4", overwrite=True, taken=[tmp_path / "p.mp4"])
    check_preview_path(tmp_path / "p.mp4", overwrite=True)


def test_frames_are_composed_from_the_frame_given(scene):
    """The camera panel is the source frame (BGR), not a stale or blank buffer."""
    gt, motion, frames = scene
    painter = PreviewPainter(inputs_for(motion, true_camera(gt)), (640, 480))
    img = painter.paint(3, frames[3].image).image
    corner = img[400:470, 5:60].astype(int)  # floor, away from the body and the labels
    assert np.abs(corner - frames[3].image[400:470, 5:60, ::-1]).max() == 0


def test_motion_frames_follow_the_video_times_when_resampled():
    """``--fps 15`` on a 30 fps clip: video frame i shows the motion at i/30 s, i.e. halfway between frames."""
    from mocap_cli.preview.render import motion_samples

    times = 100.0 + np.arange(10) / 30.0  # a clip trimmed with --start: times from the file start
    i0, i1, alpha = motion_samples(times, 15.0, 5)
    np.testing.assert_array_equal(i0, [0, 0, 1, 1, 2, 2, 3, 3, 4, 4])
    np.testing.assert_allclose(alpha, [0, 0.5] * 4 + [0, 0], atol=1e-9)
    assert np.all(i1[:8] == i0[:8] + 1) and np.all(i1[8:] == 4)  # held at the last motion frame
