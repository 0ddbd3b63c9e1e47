"""The mesh-network adapter (MAED, INT): crops → schedule → Motion, with and without the SMPL files.

End-to-end runs use small random-weight networks saved in the authors' checkpoint layouts (the loaders infer
every size from the tensor shapes), on short real clips; the SMPL model is the synthetic test pickle.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import video
from helpers import blender_probe, gltf_validate
from mesh_helpers import small_int_file, small_maed_file
from mocap_cli.body.select import mesh_for
from mocap_cli.capture.video import Frame
from mocap_cli.core.rotations import quat_apply, quat_to_matrix
from mocap_cli.core.skeleton import JOINT_INDEX, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.export import ExportOptions, export_motion
from mocap_cli.models.base import ModelSettings
from mocap_cli.models.mesh.adapter import StreamingCrops, camera_root_to_world, motion_from_mesh_sequence
from mocap_cli.models.mesh.crops import SquareBoxes
from mocap_cli.models.mesh.inference import MeshSequence
from mocap_cli.models.registry import create_model, registry
from mocap_cli.pipeline import RunOptions, run_clip
from smpl_synthetic import write_synthetic_smpl_pkl

CHECKPOINTS = {"maed": small_maed_file, "int": small_int_file}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {name: make(folder / f"{name}.pth.tar") for name, make in CHECKPOINTS.items()}


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An empty mocap home (no installed weights, no imported SMPL)."""
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def smpl_pkl(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("smpl") / "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"
    write_synthetic_smpl_pkl(path, seed=7)
    return path


# ------------------------------------------------------------------------------------------ camera → world


def _rx(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])


def _ry(deg: float) -> np.ndarray:
    a = np.radians(deg)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def _sequence(root_cam: np.ndarray, cam: np.ndarray) -> MeshSequence:
    n = len(cam)
    rotmats = np.tile(np.eye(3), (n, 24, 1, 1))
    rotmats[:, 0] = root_cam
    return MeshSequence(rotmats.astype(np.float32), np.zeros((n, 10), np.float32), cam.astype(np.float32))


def test_upright_person_facing_the_camera_is_upright_and_faces_plus_z():
    # In the networks' frame (y down, z away from the camera) SMPL's upright body facing the camera is
    # SMPL's canonical pose turned 180° about x: head towards −y (image up), front towards −z (the camera).
    root_cam = _rx(180.0)
    assert np.allclose(root_cam @ [0, 1, 0], [0, -1, 0]) and np.allclose(root_cam @ [0, 0, 1], [0, 0, -1])
    assert np.allclose(camera_root_to_world(root_cam[None])[0], np.eye(3), atol=1e-12)

    windows = SquareBoxes(np.array([[320.0, 240.0]] * 3), np.array([300.0] * 3))
    motion = motion_from_mesh_sequence(
        _sequence(np.stack([root_cam] * 3), np.array([[0.9, 0, 0]] * 3)), windows, (640, 480), 30.0, focal=500.0
    )
    # Gravity alignment stands the neck exactly above the ankles; the default skeleton's neck sits 2 cm behind
    # them at rest, so the root leans back by < 1° about X.
    root = quat_to_matrix(motion.rotations[:, 0])
    lean = np.degrees(np.arccos(np.clip((np.trace(root, axis1=1, axis2=2) - 1) / 2, -1, 1)))
    assert np.all(lean < 1.0)
    assert np.allclose(root[:, :, 0], [1, 0, 0], atol=1e-9)  # no turn, no roll
    j = motion.joints[0]
    assert j[JOINT_INDEX["head"], 1] > j[JOINT_INDEX["pelvis"], 1] + 0.4  # upright
    assert j[JOINT_INDEX["left_hip"], 0] > j[JOINT_INDEX["right_hip"], 0]  # its left on +X
    forward = quat_apply(motion.rotations[0, 0], np.array([0.0, 0.0, 1.0]))
    assert forward[2] > 0.9998 and abs(forward[0]) < 1e-9  # faces +Z, towards the camera
    assert abs(min(j[JOINT_INDEX["left_ankle"], 1], j[JOINT_INDEX["right_ankle"], 1]) - 0.068) < 0.01  # grounded


def test_turning_and_walking_away_in_the_camera_frame():
    # Frame 1 turned 90° to the camera's right about the image vertical; frame 2: the crop scale halves
    # with the window unchanged, i.e. the person is twice as far from the camera.
    upright = _rx(180.0)
    turned = _ry(90.0) @ upright  # about the camera's y (down) axis
    roots = np.stack([upright, turned, upright])
    cam = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [0.5, 0.0, 0.0]])
    windows = SquareBoxes(np.array([[320.0, 240.0]] * 3), np.array([200.0] * 3))
    focal = 600.0
    motion = motion_from_mesh_sequence(_sequence(roots, cam), windows, (640, 480), 30.0, focal=focal)
    depth_1 = 2 * focal / (1.0 * 200.0)  # 6 m, from the pinhole: the body's 2 units span s·side pixels
    root = motion.root_translation
    # moved 6 m further (towards −Z), up to the < 1° gravity lean of the default skeleton (see above)
    assert np.isclose(root[0, 2] - root[2, 2], depth_1, rtol=2e-4)
    assert abs(root[2, 0] - root[0, 0]) < 1e-9 and abs(root[2, 1] - root[0, 1]) < depth_1 * np.sin(np.radians(1.0))
    facing = quat_apply(motion.rotations[1, 0], np.array([0.0, 0.0, 1.0]))
    # Ry(90°) in the camera frame turns the front, which faced the camera (−z), to −x (image left): world −X.
    assert np.allclose(facing, [-1, 0, 0], atol=0.02)


def test_a_panning_camera_does_not_turn_or_move_a_still_body():
    # A body standing still 4 m in front of a camera that pans 40° to the right over 5 frames: in each frame's
    # camera axes the body turns and slides the other way. Given the camera's turn (camera f axes → camera 0
    # axes, as ``Clip.camera_motion`` measures it) the world body neither turns nor moves.
    from mocap_cli.solve.camera_motion import CameraMotion

    turns = np.stack([_ry(a) for a in np.linspace(0.0, 40.0, 5)])
    body, place = _ry(30.0) @ _rx(180.0), np.array([0.5, 0.2, 4.0])
    roots = np.einsum("fji,jk->fik", turns, body)  # R_f^T @ body
    seen = np.einsum("fji,j->fi", turns, place)  # R_f^T @ place
    side, focal = 200.0, 600.0
    cam = np.stack([2 * focal / (seen[:, 2] * side), seen[:, 0], seen[:, 1]], axis=1)
    windows = SquareBoxes(np.array([[320.0, 240.0]] * 5), np.array([side] * 5))
    panning = CameraMotion(turns, np.ones(5, dtype=bool))
    still = motion_from_mesh_sequence(_sequence(roots, cam), windows, (640, 480), 30.0, focal=focal, camera=panning)
    assert np.allclose(quat_to_matrix(still.rotations[:, 0]), quat_to_matrix(still.rotations[:1, 0]), atol=1e-5)
    assert np.allclose(still.root_translation, still.root_translation[:1], atol=1e-5)
    turned = motion_from_mesh_sequence(_sequence(roots, cam), windows, (640, 480), 30.0, focal=focal)
    heading = quat_apply(turned.rotations[:, 0], np.array([0.0, 0.0, 1.0]))
    assert np.degrees(np.arccos(np.clip(heading[0] @ heading[-1], -1, 1))) > 35  # what it did without


def test_crop_stream_holds_only_what_the_schedule_asks_for():
    h, w = 48, 64
    frames = (Frame(i, i / 30, np.full((h, w, 3), i % 256, np.uint8)) for i in range(300))
    windows = SquareBoxes(np.tile([[32.0, 24.0]], (300, 1)), np.full(300, 40.0))
    stream = StreamingCrops(frames, windows, 8, "cpu")
    from mocap_cli.models.mesh.inference import SCHEDULES, window_clips

    sources = window_clips(300, SCHEDULES["maed"])
    for batch in sources:
        lo, hi = int(batch.min()), int(batch.max()) + 1
        crops = stream(lo, hi)
        # each crop is its own frame: the flat grey level i, ImageNet-normalised
        level = crops[:, 0, 4, 4] * 0.229 + 0.485
        assert torch.allclose(level * 255, torch.arange(lo, hi, dtype=torch.float32) % 256, atol=1e-3)
    assert lo < 256  # the last window's reflection padding reached back into the previous window
    assert stream.held_max <= 2 * 128


# ------------------------------------------------------------------------------------------ messages


def test_missing_weights_is_one_sentence(home):
    for name, variant in (("maed", "maed"), ("int", "int-16")):
        ready = registry()[name].readiness(ModelSettings())
        assert not ready.ready and f"mocap weights import {variant}" in ready.detail
        with pytest.raises(MocapError) as err:
            create_model(name, ModelSettings())
        message = str(err.value)
        assert message.count(". ") == 0 and message.endswith(".") and "weights are not installed" in message


def test_readiness_reports_smpl(home, checkpoints, smpl_pkl):
    ready = registry()["int"].readiness(ModelSettings(weights=checkpoints["int"]))
    assert ready.ready and "default proportions" in ready.detail
    ready = registry()["int"].readiness(ModelSettings(weights=checkpoints["int"], smpl=smpl_pkl))
    assert ready.ready and str(smpl_pkl) in ready.detail


def test_wrong_weights_file_is_one_sentence(home, checkpoints):
    model = create_model("maed", ModelSettings(weights=checkpoints["int"]))
    with pytest.raises(MocapError, match="not a MAED checkpoint") as err:
        model.network()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("kind", ["smplx_like", "random_pickle"])
def test_wrong_smpl_file_is_one_sentence(home, tmp_path, kind):
    from mocap_cli.body.smpl_files import load_smpl

    path = tmp_path / "model.pkl"
    if kind == "smplx_like":
        write_synthetic_smpl_pkl(path, seed=3, num_vertices=10475, num_faces=20908, parents=[-1] + [0] * 54)
    else:
        import pickle

        path.write_bytes(pickle.dumps({"weights": np.zeros(3), "hello": [1, 2, 3]}))
    with pytest.raises(MocapError) as err:
        load_smpl(path)
    assert "\n" not in str(err.value) and str(err.value).endswith(".")


def test_missing_smpl_for_the_mesh_is_one_sentence(home):
    from mocap_cli.body.smpl_files import require_smpl

    with pytest.raises(MocapError) as err:
        require_smpl(None)
    assert "mocap smpl import" in str(err.value) and "\n" not in str(err.value)


def test_wrong_smpl_file_fails_before_decoding(home, checkpoints, tmp_path):
    bad = tmp_path / "SMPLX_NEUTRAL.pkl"
    write_synthetic_smpl_pkl(bad, seed=3, num_vertices=10475, num_faces=20908, parents=[-1] + [0] * 54)
    with pytest.raises(MocapError) as err:
        create_model("maed", ModelSettings(weights=checkpoints["maed"], smpl=bad))
    assert "\n" not in str(err.value)


def test_smpl_mesh_on_another_skeleton_is_fitted_to_its_bones(home, smpl_pkl):
    windows = SquareBoxes(np.array([[320.0, 240.0]] * 2), np.array([300.0] * 2))
    motion = motion_from_mesh_sequence(
        _sequence(np.stack([_rx(180.0)] * 2), np.array([[0.9, 0, 0]] * 2)), windows, (640, 480), 30.0, focal=500.0
    )
    mesh = mesh_for(motion, "smpl", smpl_pkl)  # a motion run without SMPL files: default skeleton
    assert mesh.vertices.shape == (6890, 3) and np.all(np.isfinite(mesh.vertices))
    assert np.allclose(mesh.weights.sum(axis=1), 1.0, atol=1e-5)


def test_smpl_command_imports_and_shows(home, smpl_pkl, tmp_path):
    from mocap_cli.commands.smpl import app

    runner = CliRunner()
    res = runner.invoke(app, ["show"])
    assert res.exit_code == 0 and "not found" in res.output and "smpl.is.tue.mpg.de" in res.output
    res = runner.invoke(app, ["import", str(smpl_pkl)])
    assert res.exit_code == 0, res.output
    assert (home / "smpl" / "smpl_neutral.npz").is_file()
    res = runner.invoke(app, ["show"])
    assert res.exit_code == 0 and str(home / "smpl" / "smpl_neutral.npz") in res.output.replace("\n", "")
    bad = tmp_path / "x.pkl"
    bad.write_text("not a pickle")
    res = runner.invoke(app, ["import", str(bad)])
    assert res.exit_code == 1 and "Traceback" not in res.output


# ------------------------------------------------------------------------------------------ end to end


def _run(name: str, clip: str, weights: Path, tmp_path: Path, smpl: Path | None = None, end: float | None = None):
    out = tmp_path / f"{name}.npz"
    options = RunOptions(exports=(out,), model=name, end=end, settings=ModelSettings(weights=weights, smpl=smpl))
    t0 = time.perf_counter()
    result = run_clip(video(clip), options)
    return result, time.perf_counter() - t0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["maed", "int"])
def test_end_to_end_without_smpl(name, home, checkpoints, tmp_path):
    result, seconds = _run(name, "street_walk_5frames.mp4", checkpoints[name], tmp_path)
    motion = result.motion
    assert result.frames == 5 and motion.num_frames == 5
    assert abs(motion.fps - float(result.video.fps)) < 1e-9
    assert motion.provenance["model"] == name and motion.provenance["skeleton"] == "canonical"
    assert np.allclose(motion.skeleton.offsets[:24], canonical_skeleton().offsets)  # body; fingers follow
    assert motion.betas is not None and motion.betas.shape == (10,)
    assert np.all(np.isfinite(motion.joints))
    print(f"{name}: 5 frames end to end in {seconds:.1f} s")


@pytest.mark.slow
@pytest.mark.blender
@pytest.mark.parametrize("name", ["int", "maed"])
def test_end_to_end_with_smpl_mesh_glb(name, home, checkpoints, smpl_pkl, tmp_path):
    from mocap_cli.body.smpl_body import smpl_rest
    from mocap_cli.body.smpl_files import import_smpl, load_smpl, require_smpl

    if name == "int":  # found through the cache, as after `mocap smpl import`
        imported = import_smpl(smpl_pkl)
        result, seconds = _run(name, "3dpw_courtyard_basketball_portrait.mp4", checkpoints[name], tmp_path, end=1.0)
        expected_frames = round(1.0 * float(result.video.fps))
    else:  # given as --smpl FILE
        imported = require_smpl(smpl_pkl)
        result, seconds = _run(name, "street_walk_5frames.mp4", checkpoints[name], tmp_path, smpl=smpl_pkl)
        expected_frames = 5
    motion = result.motion
    assert abs(motion.num_frames - expected_frames) <= 1 and result.frames == motion.num_frames
    assert abs(motion.fps - float(result.video.fps)) < 1e-9
    assert motion.provenance["skeleton"] == f"smpl:{imported}"
    skeleton, _ = smpl_rest(load_smpl(imported), motion.betas)
    assert np.allclose(motion.skeleton.offsets[:24], skeleton.offsets)  # body; fingers follow

    mesh = mesh_for(motion, "smpl", imported)
    assert mesh.vertices.shape == (6890, 3) and mesh.joints.shape == (6890, 4)
    path = tmp_path / f"{name}_smpl.glb"
    export_motion(motion, path, ExportOptions(mesh=mesh))
    report = gltf_validate(path)
    assert report["issues"]["numErrors"] == 0, report["issues"]["messages"]
    probe = blender_probe(path, motion.fps, [0, motion.num_frames - 1])
    # (Blender's glTF importer adds an "Icosphere" bone-display shape of its own)
    bodies = [m for m in probe["meshes"] if m["name"] == "smpl"]
    assert len(bodies) == 1
    assert [obj for kind, obj in bodies[0]["modifiers"] if kind == "ARMATURE"] == ["skeleton"]
    assert len(bodies[0]["vertex_groups"]) == 54  # 24 body + 30 finger groups (--hands auto)
    print(f"{name} + SMPL: {motion.num_frames} frames end to end in {seconds:.1f} s")


def test_an_installed_other_variant_is_used_when_the_default_is_missing(home, checkpoints):
    import json
    import shutil

    from mocap_cli.weights.cache import MANIFEST_NAME, sha256_of

    folder = home / "weights" / "int-64"
    folder.mkdir(parents=True)
    target = folder / "model_best.pth.tar"
    shutil.copy(checkpoints["int"], target)
    manifest = {"file": target.name, "size": target.stat().st_size, "sha256": sha256_of(target)}
    (folder / MANIFEST_NAME).write_text(json.dumps(manifest))
    model = create_model("int", ModelSettings())
    assert model.weights == target
    assert registry()["int"].readiness(ModelSettings()).detail.startswith(f"weights {target}")
