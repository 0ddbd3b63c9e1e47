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
from mocap_cli.solve.camera_pose import CameraPose, grounding_shift, record_camera_pose, recorded_pose
from mocap_cli.solve.posing import ground_motion, tilt_rotations

_UP = np.array([0.0, 1.0, 0.0])

_BODY = list(range(11, 33))


def on_one_floor(motions: list[Motion], weights: list[float]) -> list[Motion]:
    """The motions turned about the camera to one up (the mean of their own, weighted by ``weights``: the
    frames each person was seen) and grounded again; unchanged where a motion recorded no camera pose."""
    poses = [recorded_pose(m.provenance) for m in motions]
    if len(motions) < 2 or any(p is None for p in poses):
        return motions
    firsts = [p.at(0) for p in poses]  # type: ignore[union-attr]
    seen = np.maximum(np.asarray(weights, dtype=np.float64), 1e-9)
    up = sum(w * p.rotation.T @ _UP for w, p in zip(seen, firsts))  # camera axes
    up = up / np.linalg.norm(up)
    out = []
    for motion, first in zip(motions, firsts):
        q = quat_between(first.rotation @ up, _UP)
        turned = _carried(motion, first.translation - quat_to_matrix(q) @ first.translation, q)  # about the camera
        grounded = ground_motion(turned)  # its floor at height 0 again
        out.append(_carried(turned, -grounding_shift(turned.root_translation, grounded.root_translation)))
    return out


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
    motions = on_one_floor(motions, [float(t.detected.sum()) for t in tracks])
    shared = recorded_pose(motions[0].provenance)
    rotation = shared.rotation if shared is not None else CAMERA_TO_WORLD
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
        placed.append(_carried(motion, shift))
    origin = placed[0].root_translation[0] * np.array([1.0, 0.0, 1.0])
    out = []
    for i, m in enumerate(placed):
        m = _carried(m, -origin)
        out.append(replace(m, provenance={**m.provenance, "person": f"person_{i + 1}"}))
    return out


def _carried(motion: Motion, offset: np.ndarray, q: np.ndarray | None = None) -> Motion:
    """``motion`` carried with the whole world by ``p -> R(q) p + offset`` (``q`` a quaternion xyzw, none: no
    turn), its recorded camera pose with it."""
    r = np.eye(3) if q is None else quat_to_matrix(q)
    rotations = motion.rotations if q is None else tilt_rotations(motion.rotations, q)
    carried = replace(
        motion.with_rotations(rotations, motion.root_translation @ r.T + offset), provenance=dict(motion.provenance)
    )
    pose = recorded_pose(motion.provenance)
    if pose is not None:
        rotation = np.einsum("ij,...jk->...ik", r, pose.rotation)
        record_camera_pose(carried.provenance, CameraPose(rotation, pose.translation @ r.T + offset))
    return carried
