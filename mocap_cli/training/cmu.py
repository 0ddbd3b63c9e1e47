"""CMU motion capture (ASF skeleton + AMC motion) → world joint positions → Human3.6M-17, for training lifters.

The CMU Graphics Lab database ships as ASF/AMC text files (shared/data/mocap/cmu_asfamc.tar.xz unpacks to
``cmu_asfamc/<subject>/{<subject>.asf, <subject>_<trial>.amc}``). We only need joint positions, so this is a
compact forward-kinematics reader, not a general ASF library:

* ASF: per bone a rest ``direction`` (unit, world axes), ``length``, ``axis`` (Euler angles of the bone's
  local frame, order XYZ) and its ``dof`` list; ``:hierarchy`` gives the parents. Units: lengths and root
  translation × ``CMU_TO_METRES``; angles in degrees.
* AMC (``:FULLY-SPECIFIED :DEGREES``): per frame the root's TX TY TZ RX RY RZ and each bone's dof values.
* FK (the ASF/AMC definition): ``L_bone = L_parent · C · M · C⁻¹`` with ``C`` the axis rotation and ``M``
  the frame's rotation (``Rz·Ry·Rx`` of the dof angles); the bone's end = its start + length · L_bone · dir.

The world frame is CMU's: Y up, metres. Human3.6M joints follow the definitions of the rendered evaluation
clips (joint centres: femoral heads, knees, ankles, gleno-humeral joints, elbows, wrists), see ``h36m_joints``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from mocap_cli.errors import MocapError

CMU_TO_METRES = 0.056444
CMU_FPS = 120.0

# Trials the public rendered evaluation clips (shared/data/synthetic) are made from: never train on them.
EXCLUDED_TRIALS: frozenset[str] = frozenset(
    {"05_02", "06_14", "10_05", "11_01", "13_11", "14_06", "16_32", "49_04", "93_06", "105_46", "105_53"}
)
# Held out for the validation curve: one or two trials of varied motion from several subjects.
VALIDATION_TRIALS: frozenset[str] = frozenset({"05_09", "06_15", "13_32", "16_36", "49_12", "105_20"})


@dataclass(frozen=True)
class Bone:
    name: str
    parent: str  # "root" for the first level
    direction: np.ndarray  # (3,) unit, world axes at rest
    length: float  # metres
    axis: np.ndarray  # (3, 3) C: rest local frame
    dofs: tuple[str, ...]  # subset of ("rx", "ry", "rz") in file order


@dataclass(frozen=True)
class Skeleton:
    bones: dict[str, Bone]  # in hierarchy order (parents before children)


def trial_name(amc: Path) -> str:
    """``.../02/02_05.amc`` → ``02_05``."""
    return amc.stem


def parse_asf(path: Path) -> Skeleton:
    """Read a CMU ASF file (bones, their rest frames and dofs, the hierarchy)."""
    text = Path(path).read_text(encoding="latin-1")
    try:
        bonedata = text.split(":bonedata", 1)[1].split(":hierarchy", 1)
        blocks = re.findall(r"begin(.*?)end", bonedata[0], flags=re.DOTALL)
        hierarchy = bonedata[1].split("begin", 1)[1].split("end", 1)[0]
    except IndexError as exc:
        raise MocapError(f"{path} is not a CMU ASF skeleton file (no :bonedata / :hierarchy section).") from exc
    raw: dict[str, dict[str, object]] = {}
    for block in blocks:
        fields: dict[str, object] = {}
        for line in block.strip().splitlines():
            parts = line.split()
            if not parts:
                continue
            key = parts[0]
            if key == "name":
                fields["name"] = parts[1]
            elif key == "direction":
                fields["direction"] = np.array([float(v) for v in parts[1:4]])
            elif key == "length":
                fields["length"] = float(parts[1]) * CMU_TO_METRES
            elif key == "axis":
                fields["axis"] = Rotation.from_euler("xyz", [float(v) for v in parts[1:4]], degrees=True).as_matrix()
            elif key == "dof":
                fields["dofs"] = tuple(p for p in parts[1:] if p in ("rx", "ry", "rz"))
        raw[str(fields["name"])] = fields
    parents: dict[str, str] = {}
    for line in hierarchy.strip().splitlines():
        parts = line.split()
        for child in parts[1:]:
            parents[child] = parts[0]
    ordered: dict[str, Bone] = {}
    pending = [c for c, p in parents.items() if p == "root"]
    while pending:
        name = pending.pop(0)
        f = raw[name]
        direction = np.asarray(f["direction"], dtype=np.float64)
        ordered[name] = Bone(
            name,
            parents[name],
            direction / max(np.linalg.norm(direction), 1e-12),
            float(f["length"]),
            np.asarray(f["axis"]),
            tuple(f.get("dofs", ())),
        )  # type: ignore[arg-type]
        pending += [c for c, p in parents.items() if p == name]
    return Skeleton(ordered)


def parse_amc(path: Path) -> dict[str, np.ndarray]:
    """Read an AMC motion: bone name → (F, n_values) array (root: TX TY TZ RX RY RZ; bones: their dofs)."""
    rows: dict[str, list[list[float]]] = {}
    frames = 0
    with open(path, encoding="latin-1") as f:
        for line in f:
            if not line or line[0] in "#:":
                continue
            parts = line.split()
            if not parts:
                continue
            if parts[0].isdigit() and len(parts) == 1:
                frames += 1
                continue
            rows.setdefault(parts[0], []).append([float(v) for v in parts[1:]])
    if frames == 0 or "root" not in rows:
        raise MocapError(f"{path} holds no AMC frames; check that it is a CMU .amc motion file.")
    out = {name: np.asarray(v, dtype=np.float64) for name, v in rows.items()}
    if any(len(v) != frames for v in out.values()):
        raise MocapError(f"{path} has frames with missing bones; the AMC file is truncated or damaged.")
    return out


def world_joints(skeleton: Skeleton, motion: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Forward kinematics: ``"root"`` and every bone name → (F, 3) world position of the bone's END, metres.

    A bone's start is its parent's end (the root's position for first-level bones).
    """
    root = motion["root"]
    frames = len(root)
    pos = {"root": root[:, :3] * CMU_TO_METRES}
    # Root axis is 0 in CMU files (C = I), so its global frame is just the dof rotation.
    frame = {"root": Rotation.from_euler("xyz", root[:, 3:6], degrees=True).as_matrix()}
    for bone in skeleton.bones.values():
        angles = np.zeros((frames, 3))
        values = motion.get(bone.name)
        if values is not None and bone.dofs:
            for k, dof in enumerate(bone.dofs):
                angles[:, "xyz".index(dof[1])] = values[:, k]
        local = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()  # (F, 3, 3) Rz·Ry·Rx
        c = bone.axis
        frame[bone.name] = frame[bone.parent] @ (c @ local @ c.T)
        pos[bone.name] = pos[bone.parent] + bone.length * (frame[bone.name] @ bone.direction)
    return pos


# Head top above the skull base, in CMU head-bone lengths (the head bone ends mid-skull; the rendered clips'
# H36M head is the skull-top vertex).
_HEAD_TOP_FACTOR = 1.9
_NOSE_FACTOR = 0.6


def h36m_joints(pos: dict[str, np.ndarray]) -> np.ndarray:
    """World joints from ``world_joints`` → (F, 17, 3) Human3.6M order (``keypoints.H36M_NAMES``), Y up, metres.

    hips = ends of the hip-joint bones (femoral heads); knees/ankles = ends of femur/tibia; shoulders = ends
    of the clavicles; elbows/wrists = ends of humerus/radius; pelvis = hip midpoint (as the rendered clips'
    GT and as MediaPipe's mid-hips); spine = end of lowerback; thorax = end of thorax (base of the neck);
    neck/nose and head = along the head bone from the skull base (``upperneck`` end), 0.6 and 1.9 head
    lengths (approximations: the adapter uses only the head top, for the head's direction).
    """
    skull = pos["upperneck"]
    head_axis = pos["head"] - skull
    joints = {
        "right_hip": pos["rhipjoint"], "right_knee": pos["rfemur"], "right_ankle": pos["rtibia"],
        "left_hip": pos["lhipjoint"], "left_knee": pos["lfemur"], "left_ankle": pos["ltibia"],
        "spine": pos["lowerback"], "thorax": pos["thorax"],
        "neck_nose": skull + _NOSE_FACTOR * head_axis, "head": skull + _HEAD_TOP_FACTOR * head_axis,
        "left_shoulder": pos["lclavicle"], "left_elbow": pos["lhumerus"], "left_wrist": pos["lradius"],
        "right_shoulder": pos["rclavicle"], "right_elbow": pos["rhumerus"], "right_wrist": pos["rradius"],
    }  # fmt: skip
    joints["pelvis"] = 0.5 * (joints["left_hip"] + joints["right_hip"])
    from mocap_cli.capture.keypoints import H36M_NAMES

    return np.stack([joints[n] for n in H36M_NAMES], axis=1)


@dataclass(frozen=True)
class Trial:
    name: str  # "02_05"
    joints: np.ndarray  # (F, 17, 3) H36M world joints at 120 fps, Y up, metres (float32)


def find_trials(root: Path) -> list[Path]:
    """Every ``<subject>/<trial>.amc`` under ``root`` (a ``cmu_asfamc`` folder or its parent), sorted."""
    root = Path(root)
    if (root / "cmu_asfamc").is_dir():
        root = root / "cmu_asfamc"
    found = sorted(root.glob("*/*.amc"))
    if not found:
        raise MocapError(
            f"No CMU .amc trials under {root}; unpack shared/data/mocap/cmu_asfamc.tar.xz and give that folder."
        )
    return found


def split_trials(paths: list[Path]) -> tuple[list[Path], list[Path]]:
    """(training, validation) trial files; the excluded evaluation trials are in neither."""
    usable = [p for p in paths if trial_name(p) not in EXCLUDED_TRIALS]
    return (
        [p for p in usable if trial_name(p) not in VALIDATION_TRIALS],
        [p for p in usable if trial_name(p) in VALIDATION_TRIALS],
    )


def load_trial(amc: Path) -> Trial:
    """One AMC trial (with its subject's ASF beside it) → H36M world joints at 120 fps."""
    if trial_name(amc) in EXCLUDED_TRIALS:
        raise MocapError(f"{amc.name} is an evaluation trial and must not be used for training.")
    asf = amc.parent / f"{amc.parent.name}.asf"
    if not asf.is_file():
        raise MocapError(f"{amc} needs its subject's skeleton {asf.name} in the same folder.")
    joints = h36m_joints(world_joints(parse_asf(asf), parse_amc(amc)))
    return Trial(trial_name(amc), joints.astype(np.float32))
