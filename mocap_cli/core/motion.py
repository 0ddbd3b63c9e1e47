"""``Motion``: the one result type every model produces and every exporter consumes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from mocap_cli.core.skeleton import Skeleton, forward_kinematics
from mocap_cli.errors import MocapError

NPZ_FORMAT = "mocap.motion"
NPZ_VERSION = 2  # 2: optional ground contacts ("contacts", "contact_joints"); version 1 files still load


@dataclass
class Motion:
    """An animation on a skeleton, in the world frame (Y up, metres; see ``mocap_cli.core.skeleton``).

    rotations: (F, J, 4) local joint rotations, quaternions x, y, z, w (identity = rest T-pose).
    root_translation: (F, 3) world position of the root joint (pelvis).
    joints: (F, J, 3) world joint positions; equal to forward kinematics of the two above.
    confidence: (F, J) in [0, 1]; 0 marks frames/joints filled by interpolation (no detection).
    provenance: where it came from: input file, model, weights, mocap version, settings.
    betas: optional SMPL shape coefficients (10,) for mesh models.
    contacts: optional (F, K) probability in [0, 1] that joint ``contact_joints[k]`` is planted on the floor
        in frame f (>= 0.5: planted); None until the contact stage (``mocap_cli.post.contacts``) has run.
    """

    fps: float
    skeleton: Skeleton
    rotations: np.ndarray
    root_translation: np.ndarray
    joints: np.ndarray
    confidence: np.ndarray
    provenance: dict[str, str] = field(default_factory=dict)
    betas: np.ndarray | None = None
    contacts: np.ndarray | None = None
    contact_joints: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        f, j = self.rotations.shape[:2]
        if j != self.skeleton.num_joints or self.rotations.shape[2:] != (4,):
            raise ValueError(f"rotations must be (F, {self.skeleton.num_joints}, 4), got {self.rotations.shape}")
        if self.root_translation.shape != (f, 3) or self.joints.shape != (f, j, 3):
            raise ValueError("root_translation / joints shapes disagree with rotations")
        if self.confidence.shape != (f, j):
            raise ValueError("confidence must be (F, J)")
        if not self.fps > 0:
            raise ValueError("fps must be positive")
        if self.contacts is not None and self.contacts.shape != (f, len(self.contact_joints)):
            raise ValueError("contacts must be (F, len(contact_joints))")

    @property
    def num_frames(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def from_rotations(
        cls,
        fps: float,
        skeleton: Skeleton,
        rotations: np.ndarray,
        root_translation: np.ndarray,
        confidence: np.ndarray | None = None,
        provenance: dict[str, str] | None = None,
        betas: np.ndarray | None = None,
    ) -> "Motion":
        """Build a Motion whose ``joints`` are the forward kinematics of the rotations."""
        joints, _ = forward_kinematics(skeleton, rotations, root_translation)
        if confidence is None:
            confidence = np.ones(rotations.shape[:2])
        return cls(fps, skeleton, rotations, root_translation, joints, confidence, dict(provenance or {}), betas)

    def with_rotations(self, rotations: np.ndarray, root_translation: np.ndarray | None = None) -> "Motion":
        """A copy with new rotations (and root path), joints recomputed by forward kinematics."""
        root = self.root_translation if root_translation is None else root_translation
        joints, _ = forward_kinematics(self.skeleton, rotations, root)
        return replace(self, rotations=rotations, root_translation=root, joints=joints)

    # -- persistence -------------------------------------------------------------------------------

    def save_npz(self, path: Path) -> None:
        """Write the versioned raw format (re-exportable with ``mocap export``). Caller handles atomicity."""
        arrays: dict[str, np.ndarray] = {
            "format": np.array(NPZ_FORMAT),
            "version": np.array(NPZ_VERSION),
            "fps": np.array(self.fps, dtype=np.float64),
            "joint_names": np.array(self.skeleton.names),
            "parents": np.array(self.skeleton.parents, dtype=np.int32),
            "offsets": self.skeleton.offsets.astype(np.float64),
            "rotations": self.rotations.astype(np.float32),
            "root_translation": self.root_translation.astype(np.float32),
            "joints": self.joints.astype(np.float32),
            "confidence": self.confidence.astype(np.float32),
            "provenance": np.array(json.dumps(self.provenance, sort_keys=True)),
        }
        if self.betas is not None:
            arrays["betas"] = np.asarray(self.betas, dtype=np.float32)
        if self.contacts is not None:
            arrays["contacts"] = self.contacts.astype(np.float32)
            arrays["contact_joints"] = np.array(self.contact_joints)
        with open(path, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    @classmethod
    def load_npz(cls, path: Path) -> "Motion":
        """Read a file written by ``save_npz`` (never unpickling anything); a damaged or hand-edited file is
        refused with one sentence naming what is wrong (``core.motion_check``)."""
        from mocap_cli.core.motion_check import InvalidMotion, check_motion_arrays

        try:
            data = np.load(path, allow_pickle=False)
            fmt = str(data["format"])
            version = int(data["version"])
        except Exception as exc:  # noqa: BLE001 - any failure means "not our file"
            raise MocapError(f"{path} is not a mocap motion file (.npz written by `mocap run`).") from exc
        if fmt != NPZ_FORMAT:
            raise MocapError(f"{path} is not a mocap motion file (.npz written by `mocap run`).")
        if version > NPZ_VERSION:
            raise MocapError(
                f"{path} was written by a newer mocap (format version {version}); upgrade mocap to read it."
            )
        redo = "export the motion again with `mocap run --export out.npz`"
        needed = (
            "fps",
            "joint_names",
            "parents",
            "offsets",
            "rotations",
            "root_translation",
            "joints",
            "confidence",
            "provenance",
        )
        missing = [name for name in needed if name not in data.files]
        if missing:
            raise MocapError(f"{path} cannot be used: it has no {missing[0]} array; {redo}.")
        try:
            arrays = {name: data[name] for name in needed}
            betas = data["betas"] if "betas" in data.files else None
            check_motion_arrays(
                arrays["fps"],
                arrays["parents"],
                arrays["offsets"],
                rotations=arrays["rotations"],
                root_translation=arrays["root_translation"],
                joints=arrays["joints"],
                confidence=arrays["confidence"],
                betas=betas,
            )
            names = arrays["joint_names"]
            if names.ndim != 1 or names.dtype.kind not in "US" or len(names) != len(arrays["parents"]):
                raise InvalidMotion("has joint names that do not match its skeleton")
            provenance = json.loads(str(arrays["provenance"]))
            if not isinstance(provenance, dict):
                raise InvalidMotion("has a damaged provenance record")
            skeleton = Skeleton(
                tuple(str(n) for n in names),
                tuple(int(p) for p in arrays["parents"]),
                arrays["offsets"].astype(np.float64),
            )
            return cls(
                fps=float(arrays["fps"]),
                skeleton=skeleton,
                rotations=arrays["rotations"].astype(np.float64),
                root_translation=arrays["root_translation"].astype(np.float64),
                joints=arrays["joints"].astype(np.float64),
                confidence=arrays["confidence"].astype(np.float64),
                provenance={str(k): str(v) for k, v in provenance.items()},
                betas=None if betas is None else betas.astype(np.float64),
                contacts=data["contacts"].astype(np.float64) if "contacts" in data.files else None,
                contact_joints=tuple(str(n) for n in data["contact_joints"]) if "contacts" in data.files else (),
            )
        except InvalidMotion as exc:
            raise MocapError(f"{path} cannot be used: the motion {exc}; {redo}.") from exc
        except Exception as exc:  # noqa: BLE001 - unreadable members (pickled objects, damaged zip entries)
            raise MocapError(
                f"{path} cannot be used: part of it is damaged or holds Python objects "
                f"({exc.__class__.__name__}); {redo}."
            ) from exc
