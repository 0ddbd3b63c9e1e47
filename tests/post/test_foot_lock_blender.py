"""A planted foot stays put in Blender: GLB and FBX of a locked real clip imported with bpy."""

from __future__ import annotations

import numpy as np
import pytest

from helpers import real_motion, run_blender
from mocap_cli.export import export_motion
from mocap_cli.export.prepare import prepare_export
from mocap_cli.post.contacts import CONTACT_JOINTS, contact_runs
from mocap_cli.post.foot_lock import apply_foot_lock


@pytest.mark.blender
def test_planted_foot_is_still_in_blender(tmp_path):
    motion = apply_foot_lock(real_motion("walk_16_32", frames=90))
    planted = motion.contacts[:, CONTACT_JOINTS.index("left_ankle")] >= 0.5
    start, end = max(contact_runs(planted), key=lambda r: r[1] - r[0])
    assert end - start >= 5
    frames = list(range(start, end))
    rigged, options = prepare_export(motion, preset="blender", root="world", mesh="none")
    paths = {ext: tmp_path / f"walk.{ext}" for ext in ("glb", "fbx")}
    for path in paths.values():
        export_motion(rigged, path, options)
    results = run_blender([{"path": str(p), "fps": motion.fps, "frames": frames} for p in paths.values()], tmp_path)
    bone = rigged.skeleton.names[motion.skeleton.index("left_ankle")]
    for ext, res in zip(paths, results):
        heads = np.array([res["frames"][str(f)]["heads"][bone] for f in frames])
        spread = np.linalg.norm(heads - heads.mean(axis=0), axis=-1).max()
        assert spread <= 0.002, f"{ext}: the planted left ankle moves {spread * 1000:.1f} mm in Blender"
