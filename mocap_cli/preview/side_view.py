"""The right panel: the exported skeleton from the side, over a floor grid, with the body's path and planted feet.

"From the side" means from the filming camera's right, a little above the floor (``ELEVATION_DEGREES``), with
an orthographic projection: depth errors that the camera view cannot show (a body sliding towards the camera,
a foot through the floor) are plain to see here. The view is fixed for the whole clip (framed on every joint
of the motion and the floor under them), so the body moves through it as it does in the world.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mocap_cli.preview.camera_view import LEFT, RIGHT, SkeletonStyle, draw_skeleton
from mocap_cli.solve.camera_pose import CameraPose

ELEVATION_DEGREES = 15.0
GRID_STEP = 0.5  # metres between floor lines (the synthetic clips' checker tiles are 0.5 m too)
MARGIN = 0.08  # fraction of the panel kept free around the framed box
BACKGROUND = (38, 34, 32)
GRID = (78, 74, 70)
PATH_DONE = (120, 200, 240)
PATH_AHEAD = (80, 96, 104)
PLANTED = (90, 220, 90)
TEXT = (210, 210, 210)


@dataclass(frozen=True)
class SideProjection:
    """Orthographic world → panel pixels: ``pixel = centre + scale * (p · right, -(p · up))``."""

    right: np.ndarray  # (3,) world direction drawn to the panel's right
    up: np.ndarray  # (3,) world direction drawn upwards
    scale: float  # pixels per metre
    centre: np.ndarray  # (2,) pixel offset

    def __call__(self, points: np.ndarray) -> np.ndarray:
        """World points (..., 3) → panel pixels (..., 2)."""
        p = np.asarray(points, dtype=np.float64)
        return self.centre + self.scale * np.stack([p @ self.right, -(p @ self.up)], axis=-1)


def side_axes(camera: CameraPose | None) -> tuple[np.ndarray, np.ndarray]:
    """(right, up) screen axes of a view from the filming camera's right side (world frame, unit vectors).

    The view direction is the camera's right axis flattened onto the floor, tilted down by the elevation; the
    filming camera then sits towards the panel's left. A camera that turned during the clip (a per-frame pose)
    gives its mean heading: the view stays fixed, so the body moves through it as it does in the world."""
    flat = _flat_right(camera)
    elev = np.radians(ELEVATION_DEGREES)
    looking = -(np.cos(elev) * flat + np.sin(elev) * np.array([0.0, 1.0, 0.0]))  # from the eye towards the body
    right = np.cross(looking, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, looking)
    return right, up


def _flat_right(camera: CameraPose | None) -> np.ndarray:
    """The camera's right axis flattened onto the floor (3,), unit; averaged over the frames of a per-frame pose
    (frame 0's when the headings cancel out, a camera circling the whole way round)."""
    fallback = np.array([1.0, 0.0, 0.0])
    if camera is None:
        return fallback
    rights = np.asarray(camera.rotation, dtype=np.float64)[..., :, 0].reshape(-1, 3) * [1.0, 0.0, 1.0]
    lengths = np.linalg.norm(rights, axis=1)
    units = rights[lengths > 1e-6] / lengths[lengths > 1e-6, None]
    if not len(units):
        return fallback
    mean = units.mean(axis=0)
    norm = np.linalg.norm(mean)
    return mean / norm if norm > 0.3 else units[0]


def frame_projection(joints: np.ndarray, camera: CameraPose | None, size: tuple[int, int]) -> SideProjection:
    """The fixed projection that frames every joint of the clip (F, J, 3) and the floor under the path in a
    panel of ``size`` = (W, H) pixels."""
    right, up = side_axes(camera)
    pts = joints.reshape(-1, 3)
    pts = pts[np.all(np.isfinite(pts), axis=-1)]
    floor = pts.copy()
    floor[:, 1] = 0.0
    both = np.concatenate([pts, floor])
    xy = np.stack([both @ right, -(both @ up)], axis=-1)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    extent = np.maximum(hi - lo, 0.5)
    usable = np.array(size, dtype=np.float64) * (1.0 - 2.0 * MARGIN)
    scale = float(np.min(usable / extent))
    centre = np.array(size, dtype=np.float64) / 2.0 - scale * (lo + hi) / 2.0
    return SideProjection(right, up, scale, centre)


def floor_grid(projection: SideProjection, joints: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Floor lines (world y = 0, every ``GRID_STEP``) covering the path, one metre beyond it: (start, end) pixels."""
    xz = joints.reshape(-1, 3)[:, [0, 2]]
    xz = xz[np.all(np.isfinite(xz), axis=-1)]
    lo = np.floor((xz.min(axis=0) - 1.0) / GRID_STEP) * GRID_STEP
    hi = np.ceil((xz.max(axis=0) + 1.0) / GRID_STEP) * GRID_STEP
    lines = []
    for x in np.arange(lo[0], hi[0] + 1e-9, GRID_STEP):
        lines.append(projection(np.array([[x, 0.0, lo[1]], [x, 0.0, hi[1]]])))
    for z in np.arange(lo[1], hi[1] + 1e-9, GRID_STEP):
        lines.append(projection(np.array([[lo[0], 0.0, z], [hi[0], 0.0, z]])))
    return [(a, b) for a, b in lines]


class SideView:
    """Draws the side panel for one frame at a time; the grid, the path and the framing are computed once."""

    def __init__(
        self,
        joints: np.ndarray,
        root_path: np.ndarray,
        camera: CameraPose | None,
        size: tuple[int, int],
        parents: tuple[int, ...],
        names: tuple[str, ...],
    ) -> None:
        """joints (F, J, 3) of the whole clip (to frame the view), root_path (F, 3), size (W, H)."""
        self.size = size
        self.parents, self.names = parents, names
        self.projection = frame_projection(joints, camera, size)
        self.style = SkeletonStyle.for_height(size[1])
        floor_path = np.array(root_path, dtype=np.float64, copy=True)
        floor_path[:, 1] = 0.0
        self.path = self.projection(floor_path)
        self.background = np.full((size[1], size[0], 3), BACKGROUND, dtype=np.uint8)
        for a, b in floor_grid(self.projection, joints):
            cv2.line(self.background, _pt(a), _pt(b), GRID, 1, cv2.LINE_AA, 4)
        cv2.putText(
            self.background,
            "side view (camera on the left)",
            (8, 18),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            TEXT,
            1,
            cv2.LINE_AA,
        )
        for n, (label, colour) in enumerate((("left", LEFT), ("right", RIGHT), ("planted", PLANTED))):
            cv2.putText(
                self.background, label, (8 + 60 * n, 38), cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA
            )
        self.background_path = self.background.copy()
        self._polyline(self.background_path, self.path, PATH_AHEAD)

    def _polyline(self, image: np.ndarray, pixels: np.ndarray, colour: tuple[int, int, int]) -> None:
        if len(pixels) >= 2:
            cv2.polylines(image, [np.round(pixels * 16).astype(np.int32)], False, colour, 2, cv2.LINE_AA, 4)

    def draw(
        self,
        frame: int,
        joints: np.ndarray,
        confidence: np.ndarray,
        planted: np.ndarray | None,
        planted_joints: tuple[int, ...],
    ) -> np.ndarray:
        """The panel (H, W, 3) for motion frame ``frame``: joints (J, 3), confidence (J,), planted (K,) bools
        for the joints ``planted_joints`` (or None when the motion has no contacts)."""
        image = self.background_path.copy()
        self._polyline(image, self.path[: frame + 1], PATH_DONE)
        if planted is not None:
            for on, j in zip(planted, planted_joints):
                if on:
                    ground = joints[j].copy()
                    ground[1] = 0.0
                    cv2.circle(
                        image, _pt(self.projection(ground)), self.style.joint * 2 * 16, PLANTED, -1, cv2.LINE_AA, 4
                    )
        draw_skeleton(image, self.projection(joints), confidence, self.parents, self.names, self.style)
        return image


def _pt(p: np.ndarray) -> tuple[int, int]:
    return round(float(p[0]) * 16), round(float(p[1]) * 16)
