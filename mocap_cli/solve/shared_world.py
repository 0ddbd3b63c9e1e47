"""Several people in one world: one camera, one floor, each person where the camera saw them.

Each model places its person on its own (root path relative to where the clip starts, own floor, and its own
"up": the camera's pitch and roll read from that person's body and soles, ``posing.world_tilt``; the two
people of the shared duets came out with floors 8-10° apart). Here everyone is first turned about the camera
to one up, the mean of theirs weighted by the frames each was seen (``on_one_floor``). Then every person's hip
path is solved again in the *same* pinhole camera (``solve.camera``) from their 2D landmarks and MediaPipe's
metric 3D landmarks; the depth between people therefore rests on MediaPipe's metric body size, i.e. an adult
body-size prior (a child is placed somewhat too far away). Each person keeps their model's motion and own
floor contact (height 0, so everyone stands on one floor) and is shifted horizontally so its median position
is the camera's; finally everyone is shifted together so the most prominent person starts above the world
origin.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from mocap_cli.capture.detect import Track2D
from mocap_cli.core.motion import Motion
from mocap_cli.core.rotations import quat_between, quat_to_matrix
from mocap_cli.solve.camera import (
    CAMERA_TO_WORLD,
    Pinhole,
    interpolate_nans,
    solve_translation,
)
from mocap_cli.solve.camera_pose import (
    PROVENANCE_KEY,
    CameraPose,
    grounding_shift,
    record_camera_pose,
    solved_camera,
)
from mocap_cli.solve.posing import ground_motion, tilt_rotations

_UP = np.array([0.0, 1.0, 0.0])

_BODY = list(range(11, 33))


def on_one_floor(motions: list[Motion], image_size: tuple[int, int], weights: list[float]) -> list[Motion]:
    """The motions turned about the camera to one up (the mean of their own, weighted by ``weights``: the
    frames each person was seen) and grounded again; unchanged where a motion recorded no camera pose."""
    cameras = [solved_camera(m.provenance, *image_size) for m in motions]
    if len(motions) < 2 or any(c is None for c in cameras):
        return motions
    poses = [c.pose.at(0) for c in cameras]  # type: ignore[union-attr]
    seen = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
    up = sum(w * p.rotation.T @ _UP for w, p in zip(seen, poses))  # camera axes
    up = up / np.linalg.norm(up)
    return [
        _turned(m, quat_between(p.rotation @ up, _UP), c.pose, p.translation)  # type: ignore[union-attr]
        for m, c, p in zip(motions, cameras, poses)
    ]


def _turned(motion: Motion, q: np.ndarray, pose: CameraPose, centre: np.ndarray) -> Motion:
    """``motion`` turned by ``q`` (quaternion xyzw) about ``centre`` (the camera), grounded again, with its
    camera pose turned and shifted alike."""
    r = quat_to_matrix(q)
    root = (motion.root_translation - centre) @ r.T + centre
    grounded = ground_motion(motion.with_rotations(tilt_rotations(motion.rotations, q), root))
    grounded = replace(grounded, provenance=dict(motion.provenance))
    shift = grounding_shift(root, grounded.root_translation)
    rotation = np.einsum("ij,...jk->...ik", r, pose.rotation)
    record_camera_pose(grounded.provenance, CameraPose(rotation, (pose.translation - centre) @ r.T + centre - shift))
    return grounded


def hip_path(track: Track2D, camera: Pinhole, rotation: np.ndarray = CAMERA_TO_WORLD) -> np.ndarray:
    """(F, 3) world-axis (Y up) position of the mid-hip seen by ``camera``, NaN where never solvable, turned into
    the world by ``rotation`` (3, 3) or (F, 3, 3) (world from camera; by default the camera's axes, Y up)."""
    weights = np.where(track.detected[:, None], np.clip(track.visibility[:, _BODY], 0.0, 1.0), 0.0)
    weights = np.where(weights > 0.5, weights, 0.0)
    world = np.nan_to_num(track.world_landmarks[:, _BODY])
    pixels = np.nan_to_num(track.landmarks[:, _BODY, :2])
    cam = solve_translation(world, pixels, weights, camera)
    if np.isfinite(cam).all(axis=1).any():
        cam = interpolate_nans(cam)
    if np.ndim(rotation) == 3:
        n = min(len(cam), len(rotation))
        return np.einsum("fij,fj->fi", rotation[:n], cam[:n])
    return cam @ np.asarray(rotation).T


def place_people(motions: list[Motion], tracks: list[Track2D], fov_degrees: float) -> list[Motion]:
    """The motions (one per track, most prominent first) moved into one shared world."""
    width, height = tracks[0].image_size
    camera = Pinhole.from_fov(width, height, fov_degrees)
    motions = on_one_floor(motions, (width, height), [float(t.detected.sum()) for t in tracks])
    shared = solved_camera(motions[0].provenance, width, height)
    rotation = shared.pose.rotation if shared is not None else CAMERA_TO_WORLD
    placed: list[Motion] = []
    for motion, track in zip(motions, tracks):
        seen = hip_path(track, camera, rotation)
        ok = np.isfinite(seen).all(axis=1)
        if not ok.any():
            placed.append(motion)
            continue
        n = min(len(seen), motion.num_frames)
        both = ok[:n]
        shift = np.zeros(3)
        shift[[0, 2]] = np.median(seen[:n][both][:, [0, 2]] - motion.root_translation[:n][both][:, [0, 2]], axis=0)
        placed.append(_moved(motion, shift))
    origin = placed[0].root_translation[0] * np.array([1.0, 0.0, 1.0])
    out = []
    for i, m in enumerate(placed):
        m = _moved(m, -origin)
        out.append(replace(m, provenance={**m.provenance, "person": f"person_{i + 1}"}))
    return out


def _moved(motion: Motion, offset: np.ndarray) -> Motion:
    """``motion`` moved by ``offset`` (3,), its recorded camera pose with it."""
    moved = replace(
        motion.with_rotations(motion.rotations, motion.root_translation + offset), provenance=dict(motion.provenance)
    )
    text = motion.provenance.get(PROVENANCE_KEY)
    if text:
        pose = CameraPose.from_json(text)
        record_camera_pose(moved.provenance, CameraPose(pose.rotation, pose.translation + offset))
    return moved
