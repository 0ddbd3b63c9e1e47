"""Renders posed anny body frames to an H.264 clip with Blender (bpy, in a subprocess): the test suite's
ground-truth videos (``hand_render``: finger poses; ``floor_render``: floor work).

``render_clip`` takes posed vertices (Y-up, metres), one camera position per frame looking at a fixed target,
and optionally a floor plane; it renders with the Workbench engine (fast, no lights to set up) and encodes
the frames with ffmpeg. The camera is a pinhole with ``focal_px`` pixels of focal length.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

BODY_COLOR = (0.8, 0.6, 0.5)
FLOOR_COLOR = (0.33, 0.36, 0.4)

_BLENDER_SCRIPT = r"""
import sys, numpy as np, bpy
from mathutils import Vector
data = np.load(sys.argv[1]); out = sys.argv[2]; W, H, F = int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
AA = sys.argv[6]
bpy.ops.wm.read_factory_settings(use_empty=True)
sc = bpy.context.scene
sc.render.engine = "BLENDER_WORKBENCH"
sc.display.shading.light = "STUDIO"
sc.display.shading.color_type = "OBJECT"
sc.display.shading.show_cavity = True
sc.display.render_aa = AA
sc.render.resolution_x, sc.render.resolution_y = W, H
sc.render.image_settings.file_format = "PNG"
world = bpy.data.worlds.new("w"); sc.world = world
world.color = (0.55, 0.6, 0.65)
def zup(p): return (p[0], -p[2], p[1])
faces = data["faces"].tolist()
me = bpy.data.meshes.new("body"); me.from_pydata([zup(v) for v in data["vertices"][0]], [], faces); me.update()
ob = bpy.data.objects.new("body", me); sc.collection.objects.link(ob)
ob.color = (*data["body_color"], 1.0)
if "floor" in data.files:
    y, c, s = float(data["floor"]), data["floor_center"], 4.0
    corners = [zup((c[0] + dx * s, y, c[2] + dz * s)) for dx, dz in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
    fm = bpy.data.meshes.new("floor"); fm.from_pydata(corners, [], [[0, 1, 2, 3]]); fm.update()
    fo = bpy.data.objects.new("floor", fm); sc.collection.objects.link(fo)
    fo.color = (*data["floor_color"], 1.0)
cam_data = bpy.data.cameras.new("cam"); cam_data.sensor_fit = "HORIZONTAL"; cam_data.sensor_width = 36.0
cam_data.lens = F * 36.0 / W
cam = bpy.data.objects.new("cam", cam_data); sc.collection.objects.link(cam); sc.camera = cam
target = Vector(zup(data["target"]))
for i, (verts, eye) in enumerate(zip(data["vertices"], data["cameras"])):
    me.vertices.foreach_set("co", np.array([zup(v) for v in verts]).ravel())
    me.update()
    cam.location = Vector(zup(eye))
    cam.rotation_mode = "QUATERNION"
    cam.rotation_quaternion = (target - cam.location).to_track_quat("-Z", "Y")
    sc.render.filepath = f"{out}/frame_{i:04d}.png"
    bpy.ops.render.render(write_still=True)
"""


def render_clip(
    out_dir: Path,
    name: str,
    vertices: np.ndarray,
    faces: np.ndarray,
    cameras: np.ndarray,
    target: np.ndarray,
    size: tuple[int, int],
    focal_px: float,
    fps: float,
    floor: float | None = None,
    antialiasing: str = "8",
) -> Path:
    """Render ``out_dir/<name>.mp4``. vertices: (F, V, 3) Y-up metres; faces: (T, 3); cameras: (F, 3) camera
    positions looking at ``target`` (3,), Y up; size: (width, height) pixels; floor: height of a 8 m square
    floor plane under the body's first-frame centre, or None for none; antialiasing: Blender's Workbench
    setting ("8" samples, "FXAA": a single sample, several times faster)."""
    import imageio_ffmpeg

    out_dir.mkdir(parents=True, exist_ok=True)
    data = {
        "vertices": vertices,
        "faces": faces,
        "cameras": cameras,
        "target": target,
        "body_color": np.array(BODY_COLOR),
    }
    if floor is not None:
        data |= {
            "floor": np.array(floor),
            "floor_center": vertices[0].mean(axis=0),
            "floor_color": np.array(FLOOR_COLOR),
        }
    npz = out_dir / f"{name}_render.npz"
    np.savez(npz, **data)
    script = out_dir / "render.py"
    script.write_text(_BLENDER_SCRIPT)
    frames = out_dir / f"{name}_frames"
    frames.mkdir(exist_ok=True)
    proc = subprocess.run(
        [sys.executable, str(script), str(npz), str(frames), str(size[0]), str(size[1]), str(focal_px), antialiasing],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"render failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    clip = out_dir / f"{name}.mp4"
    subprocess.run(
        [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-y",
            "-loglevel",
            "error",
            "-framerate",
            str(fps),
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
