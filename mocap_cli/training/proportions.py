"""Training windows on the bodies the lifter will meet: many proportions, and joints where anatomy puts them.

Two things made a lifter trained on CMU's joints wrong before it saw a single noisy keypoint. Measured on the
nine rendered clips, where the same CMU motion drives an Anny body (per-frame Procrustes error of the 12 limb
joints between the CMU trial's own joints and the rendered body's exact ones, i.e. a perfect lifter's floor):

1. **Proportions.** CMU has 14 subjects (two of them two thirds of the frames), so the lifter learns their limb
   lengths: the shipped weights' upper arms came out 29 mm too long and the shoulders 37 mm too narrow on
   average. Each window is re-proportioned (``reproportion``) onto a body sampled from the Anny body model
   (``scripts/sample_body_proportions.py`` → ``body/body_proportions.json``): every Human3.6M segment keeps CMU's
   direction and takes the body's length, parents before children; the head follows the trunk's scale.
   Floor 45 → 33 mm.
2. **Joint definitions.** CMU's skeleton is fitted to markers on the skin: its spine and thorax joints lie
   6 cm behind the anatomical ones, its shoulders (clavicle ends) 7 cm above and 9 cm behind the
   gleno-humeral centres that the rendered bodies, SMPL and MediaPipe's landmarks use. ``redefine`` moves
   them by constant offsets in the body's own frames (spine, thorax in the pelvis frame; shoulders, with the
   arm below them, and the head in the chest frame), fitted by ``scripts/fit_joint_definitions.py`` on the
   rendered clips (→ ``joint_definitions.json``; the same clips the MediaPipe offsets are fitted on; their
   trials' motion is read to compare the two skeletons and never becomes a training window). Floor 33 → 9 mm
   (10 mm with each clip left out of its own fit).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import H36M
from mocap_cli.errors import MocapError
from mocap_cli.models.joints import unit
from mocap_cli.solve.body_size import SAMPLED_BODIES

DEFINITIONS_FILE = Path(__file__).with_name("joint_definitions.json")

# (parent, child) in the order a re-proportioning walks the Human3.6M tree.
SEGMENTS: tuple[tuple[str, str], ...] = (
    ("pelvis", "right_hip"), ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("pelvis", "spine"), ("spine", "thorax"),
    ("thorax", "left_shoulder"), ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("thorax", "right_shoulder"), ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
)  # fmt: skip
# Segments whose length scales with the trunk (pelvis → spine → thorax): the body model has no joint there.
HEAD_SEGMENTS: tuple[tuple[str, str], ...] = (("thorax", "neck_nose"), ("neck_nose", "head"))
# Joints ``redefine`` moves, by the frame their offset is expressed in; an arm moves with its shoulder.
PELVIS_FRAME_JOINTS = ("spine", "thorax")
CHEST_FRAME_JOINTS = ("left_shoulder", "right_shoulder", "neck_nose", "head")
_MOVES_WITH = {"left_shoulder": ("left_elbow", "left_wrist"), "right_shoulder": ("right_elbow", "right_wrist")}


def _frame(lateral: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations whose columns are lateral (towards the body's left), up, forward."""
    up = unit(up)
    lateral = unit(lateral - (lateral * up).sum(-1, keepdims=True) * up)
    return np.stack([lateral, up, np.cross(lateral, up)], axis=-1)


def body_frames(joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 17, 3) joints → pelvis frames (hips across, pelvis → thorax up) and chest frames (shoulders across,
    spine → thorax up), each (T, 3, 3)."""
    j = joints
    pelvis = _frame(j[:, H36M["left_hip"]] - j[:, H36M["right_hip"]], j[:, H36M["thorax"]] - j[:, H36M["pelvis"]])
    chest = _frame(
        j[:, H36M["left_shoulder"]] - j[:, H36M["right_shoulder"]], j[:, H36M["thorax"]] - j[:, H36M["spine"]]
    )
    return pelvis, chest


def segment_lengths(joints: np.ndarray) -> np.ndarray:
    """(T, 17, 3) Human3.6M joints → (T, len(SEGMENTS)) lengths of ``SEGMENTS``."""
    return np.stack([np.linalg.norm(joints[:, H36M[b]] - joints[:, H36M[a]], axis=-1) for a, b in SEGMENTS], axis=-1)


def reproportion(joints: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """(T, 17, 3) Human3.6M joints → the same motion on a body with segment ``lengths`` (len(SEGMENTS),).

    The pelvis stays where it is; each child = new parent + old offset scaled to the new length."""
    out = joints.copy()

    def move(a: str, b: str, scale: np.ndarray | float) -> None:
        out[:, H36M[b]] = out[:, H36M[a]] + scale * (joints[:, H36M[b]] - joints[:, H36M[a]])

    def trunk(j: np.ndarray) -> np.ndarray:
        return np.linalg.norm(j[:, H36M["thorax"]] - j[:, H36M["spine"]], axis=-1) + np.linalg.norm(
            j[:, H36M["spine"]] - j[:, H36M["pelvis"]], axis=-1
        )

    old = segment_lengths(joints)
    for k, ((a, b), length) in enumerate(zip(SEGMENTS, lengths)):
        move(a, b, length / np.maximum(old[:, k : k + 1], 1e-6))
    ratio = (trunk(out) / np.maximum(trunk(joints), 1e-6))[:, None]
    for a, b in HEAD_SEGMENTS:
        move(a, b, ratio)
    return out


def redefine(joints: np.ndarray, offsets: dict[str, np.ndarray]) -> np.ndarray:
    """(T, 17, 3) joints with CMU's definitions → anatomical ones: ``offsets[name]`` (3,) metres, in the
    frame of ``PELVIS_FRAME_JOINTS`` / ``CHEST_FRAME_JOINTS`` (``body_frames`` of the input)."""
    pelvis, chest = body_frames(joints)
    out = joints.copy()
    for name in PELVIS_FRAME_JOINTS:
        out[:, H36M[name]] += pelvis @ offsets[name]
    for name in CHEST_FRAME_JOINTS:
        shift = chest @ offsets[name]
        for joint in (name, *_MOVES_WITH.get(name, ())):
            out[:, H36M[joint]] += shift
    return out


@dataclass(frozen=True)
class Bodies:
    """Sampled segment lengths (N, len(SEGMENTS)) and the CMU → anatomical joint offsets."""

    lengths: np.ndarray
    offsets: dict[str, np.ndarray]

    @classmethod
    def load(cls, proportions: Path = SAMPLED_BODIES, definitions: Path = DEFINITIONS_FILE) -> Bodies:
        try:
            bodies = json.loads(Path(proportions).read_text())["bodies"]
            lengths = np.array([[b["lengths"][f"{a}-{c}"] for a, c in SEGMENTS] for b in bodies], dtype=np.float64)
            fitted = json.loads(Path(definitions).read_text())["offsets_m"]
            offsets = {n: np.asarray(fitted[n], dtype=np.float64) for n in PELVIS_FRAME_JOINTS + CHEST_FRAME_JOINTS}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise MocapError(
                f"Cannot read the training bodies ({exc}); run scripts/sample_body_proportions.py and "
                "scripts/fit_joint_definitions.py."
            ) from exc
        return cls(lengths, offsets)

    def apply(self, joints: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(T, 17, 3) CMU joints → a random sampled body performing them, with anatomical joints."""
        return redefine(reproportion(joints, self.lengths[rng.integers(len(self.lengths))]), self.offsets)
