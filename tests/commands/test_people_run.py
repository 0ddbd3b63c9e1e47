"""`--people all` end to end on a real two-person clip: two people listed, one GLB with two skins, BVH/NPZ
per person, everyone on one floor and apart from each other."""

from __future__ import annotations

import numpy as np
import pygltflib
import pytest

from mocap_cli.core.motion import Motion
from mocap_cli.people_pipeline import run_people
from mocap_cli.pipeline import RunOptions
from mocap_cli.solve.camera_pose import recorded_pose
from tests.conftest import video


@pytest.mark.slow
def test_people_all_on_the_courtyard_duet(tmp_path):
    clip = video("3dpw_courtyard_two_people_portrait.mp4")
    exports = (tmp_path / "duet.glb", tmp_path / "duet.bvh", tmp_path / "duet.npz")
    result = run_people(clip, RunOptions(exports=exports), "all")
    assert [p.name for p in result.people] == ["person_1", "person_2"]
    assert all(p.frames >= 30 for p in result.people)  # of 40
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["duet.glb", "duet.person_1.bvh", "duet.person_1.npz", "duet.person_2.bvh", "duet.person_2.npz"]
    gltf = pygltflib.GLTF2().load(str(tmp_path / "duet.glb"))
    assert [s.name for s in gltf.skins] == ["person_1", "person_2"]
    a, b = (Motion.load_npz(tmp_path / f"duet.person_{i}.npz") for i in (1, 2))
    # One floor: each person's lowest joint over the clip is just above height 0, and both were put in a world
    # with the same up as seen from the camera (each model's own up put their floors 10° apart).
    for m in (a, b):
        assert -0.02 <= m.joints[..., 1].min() < 0.1
    up_a, up_b = (recorded_pose(m.provenance).at(0).rotation[1] for m in (a, b))
    np.testing.assert_allclose(up_a, up_b, atol=1e-7)
    # Side by side, not stacked at the origin: pelvises between 0.3 and 3 m apart on the ground plane.
    gap = np.linalg.norm(a.root_translation[:, [0, 2]] - b.root_translation[:, [0, 2]], axis=1)
    assert 0.3 < np.median(gap) < 3.0, np.median(gap)


@pytest.mark.slow
def test_people_all_with_a_lifter_gives_each_person_their_own_motion(tmp_path, monkeypatch):
    """A 2D→3D lifter (MixSTE, a small random-weight checkpoint in the authors' layout) on the duet: each
    person's own 2D track goes through the lifter, so both people get full-length motions that differ, placed
    apart in one world and written as one FBX with an armature each."""
    from lifter_checkpoints import write_mixste
    from mocap_cli.models.base import ModelSettings

    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    weights = write_mixste(tmp_path / "best_epoch_test.bin")
    clip = video("3dpw_courtyard_two_people_portrait.mp4")
    exports = (tmp_path / "duet.fbx", tmp_path / "duet.npz")
    options = RunOptions(exports=exports, model="mixste", settings=ModelSettings(weights=weights, batch_size=4))
    result = run_people(clip, options, 2)
    assert [p.name for p in result.people] == ["person_1", "person_2"]
    a, b = (Motion.load_npz(tmp_path / f"duet.person_{i}.npz") for i in (1, 2))
    assert a.num_frames == b.num_frames == 40
    assert a.provenance["model"] == b.provenance["model"] == "mixste"
    assert np.abs(a.rotations - b.rotations).max() > 0.05  # different 2D in, different poses out
    gap = np.linalg.norm(a.root_translation[:, [0, 2]] - b.root_translation[:, [0, 2]], axis=1)
    assert 0.3 < np.median(gap) < 3.0, np.median(gap)
    data = (tmp_path / "duet.fbx").read_bytes()
    assert data.count(b"person_1\x00\x01Model") == 1 and data.count(b"person_2\x00\x01Model") == 1
