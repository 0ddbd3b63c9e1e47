"""End to end: ``--model mixste`` / ``--model strided`` on real clips with checkpoints built here.

The checkpoints are small configurations written in each authors' exact file layout (MixSTE: run.py's
wrapped dict with ``module.`` keys and a pickled RandomState; Strided Transformer: a flat state dict) with
random weights, so these tests check the plumbing (config read from the file, windows, padding, frame
count, fps, export, IK), never accuracy.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from typer.testing import CliRunner

from conftest import video
from lifter_checkpoints import WINDOW, write_mixste, write_strided
from mocap_cli.capture.detect import detect
from mocap_cli.capture.keypoints import mediapipe_to_h36m
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.cli import app as cli_app
from mocap_cli.commands.weights import app as weights_app
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, RIGID_GROUPS, forward_kinematics
from mocap_cli.errors import MocapError
from mocap_cli.models.base import Clip, ModelSettings
from mocap_cli.models.lifters.adapter import LifterModel, smpl_joints_from_h36m
from mocap_cli.models.mediapipe import smpl_joints_from_mediapipe
from mocap_cli.models.registry import create_model, model_entry
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.solve.camera import Pinhole

SHORT = "street_walk_5frames.mp4"  # 5 frames: shorter than the 27-frame windows (padding / clamping)
LONGER = "3dpw_courtyard_basketball_portrait.mp4"  # 40 frames: several windows, last one aligned to the end


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("ckpt")
    return {
        "mixste": write_mixste(folder / "best_epoch_test.bin"),
        "strided": write_strided(folder / "no_refine_1_9999.pth"),
    }


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "mocap_home"
    monkeypatch.setenv("MOCAP_HOME", str(home))
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    return home


@pytest.fixture(scope="module")
def clip() -> Clip:
    path = video(LONGER)
    info = probe(path)
    return Clip(info, detect(iter_frames(path), info), lambda: iter_frames(path))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("model", ["mixste", "strided"])
@pytest.mark.parametrize("name", [SHORT, LONGER])
def test_run_writes_bvh_and_glb_with_the_clips_frames_and_fps(model, name, checkpoints, tmp_path):
    path = video(name)
    info = probe(path)
    bvh, glb = tmp_path / "out.bvh", tmp_path / "out.glb"
    options = RunOptions(
        exports=(bvh, glb), model=model, settings=ModelSettings(weights=checkpoints[model], batch_size=4)
    )
    result = run_clip(path, options)
    frames, fps = info.frame_count, float(info.fps)
    assert result.frames == frames and result.motion.num_frames == frames and result.motion.fps == fps

    lines = bvh.read_text().splitlines()
    assert f"Frames: {frames}" in lines and f"Frame Time: {1 / fps:.10f}" in lines
    gltf = pygltflib.GLTF2().load(str(glb))
    times = gltf.accessors[gltf.animations[0].samplers[0].input]
    assert times.count == frames and abs(times.max[0] - (frames - 1) / fps) < 1e-5

    motion = result.motion
    assert np.isfinite(motion.joints).all() and np.isfinite(motion.rotations).all()
    fk, _ = forward_kinematics(motion.skeleton, motion.rotations, motion.root_translation)
    assert np.abs(fk - motion.joints).max() < 1e-6  # IK round trip: the rotations reproduce the joints
    prov = motion.provenance
    assert prov["model"] == model and prov["window_frames"] == str(WINDOW)  # config read from the file
    assert prov["weights_file"] == str(checkpoints[model]) and prov["weights_sha256"] == _sha(checkpoints[model])


@pytest.mark.parametrize("model", ["mixste", "strided"])
def test_ik_puts_every_bone_along_the_lifted_bone(model, checkpoints, clip):
    """Each bone of a single-child joint points exactly along the lifted target bone, up to the camera's own
    turn in each frame (measured from the background and undone: a hand-held clip turns by a degree or two) and
    the one global rotation (camera → world, gravity) that the whole clip shares."""
    lifter = LifterModel(model, ModelSettings(weights=checkpoints[model]))
    cfg = lifter.net.config  # read from the file's tensor shapes, nothing passed
    if model == "mixste":
        assert (cfg.num_frame, cfg.embed_dim, cfg.depth, cfg.mlp_ratio) == (WINDOW, 32, 2, 2.0)
    else:
        assert (cfg.frames, cfg.channel, cfg.d_hid, cfg.layers, cfg.stride_num) == (WINDOW, 32, 64, 2, (3, 3, 3))
    lifted = lifter.lift(clip)
    motion = lifter.estimate(clip)
    assert lifted.pose_3d.shape == (clip.track.num_frames, 17, 3) and np.isfinite(lifted.joints_cam).all()

    parents = motion.skeleton.parents
    bones = [j for j, p in enumerate(parents) if p >= 0 and JOINT_NAMES[p] not in RIGID_GROUPS]

    def directions(joints: np.ndarray) -> np.ndarray:
        d = joints[:, bones] - joints[:, [parents[j] for j in bones]]
        return (d / np.linalg.norm(d, axis=-1, keepdims=True)).reshape(-1, 3)

    turns = clip.camera_motion(Pinhole.from_fov(*clip.track.image_size)).rotations
    src, dst = directions(np.einsum("fij,fkj->fki", turns, lifted.joints_cam)), directions(motion.joints)
    u, _, vt = np.linalg.svd(dst.T @ src)
    rot = u @ np.diag([1, 1, np.linalg.det(u @ vt)]) @ vt  # Kabsch: the best rotation src -> dst
    angles = np.degrees(np.arccos(np.clip(np.sum((src @ rot.T) * dst, axis=-1), -1, 1)))
    assert angles.max() < 0.05, angles.max()
    assert abs(np.linalg.det(rot) - 1) < 1e-9 and rot[1] @ np.array([0, 1.0, 0]) < -0.5  # camera y-down -> world Y-up


def test_h36m_mapping_rebuilds_the_default_models_joints(clip):
    """Fed the H36M joints built from MediaPipe's own 3D landmarks, the lifter mapping gives back the default
    model's joints: limbs and trunk identical, head = ear midpoint, feet and hands along the same directions."""
    track = clip.track
    ok = track.detected
    world, vis = track.world_landmarks[ok].astype(np.float64), track.visibility[ok]
    h36m, conf = mediapipe_to_h36m(world, vis)
    ours, our_conf, hints = smpl_joints_from_h36m(h36m, conf, world, vis)
    ref, _, ref_hints = smpl_joints_from_mediapipe(world, vis)
    tips = [JOINT_INDEX[f"{s}_{t}"] for s in ("left", "right") for t in ("foot", "hand")]
    rest = [j for j in range(24) if j not in tips]
    assert np.abs(ours[:, rest] - ref[:, rest]).max() < 1e-9
    for s in ("left", "right"):
        for tip, base in (("foot", "ankle"), ("hand", "wrist")):
            a = ours[:, JOINT_INDEX[f"{s}_{tip}"]] - ours[:, JOINT_INDEX[f"{s}_{base}"]]
            b = ref[:, JOINT_INDEX[f"{s}_{tip}"]] - ref[:, JOINT_INDEX[f"{s}_{base}"]]
            cos = np.sum(a * b, -1) / np.linalg.norm(a, axis=-1) / np.linalg.norm(b, axis=-1)
            assert cos.min() > 1 - 1e-9
            assert 0.03 < np.median(np.linalg.norm(a, axis=-1)) < 0.25  # default proportions, subject-scaled
    assert set(hints) == set(ref_hints) and ((0 <= our_conf) & (our_conf <= 1)).all()


def test_missing_weights_is_one_sentence_naming_the_import_command(tmp_path):
    out = tmp_path / "out.glb"
    # mixste runs out of the box on the weights mocap ships; the authors' checkpoint must be imported.
    result = CliRunner().invoke(
        cli_app, ["run", str(video(SHORT)), "--model", "mixste", "--weights", "mixste-243", "--export", str(out)]
    )
    assert result.exit_code != 0 and not out.exists()
    message = " ".join(result.stderr.split())
    assert "mocap weights import mixste-243" in message and "best_epoch_cpn_243f.bin" in message
    body = message.removeprefix("error: ")
    assert body.endswith(".") and ". " not in body  # one sentence
    ready = model_entry("strided").readiness(ModelSettings())
    assert not ready.ready and "mocap weights import strided-351" in ready.detail


@pytest.mark.parametrize("model", ["mixste", "strided"])
def test_imported_weights_are_the_default_and_named_weights_resolve(model, checkpoints, empty_home, tmp_path):
    variant = {"mixste": "mixste-243", "strided": "strided-351"}[model]
    result = CliRunner().invoke(weights_app, ["import", model, str(checkpoints[model])])
    assert result.exit_code == 0, result.output
    installed = empty_home / "weights" / variant / checkpoints[model].name
    assert installed.read_bytes() == checkpoints[model].read_bytes()
    ready = model_entry(model).readiness(ModelSettings())
    assert ready.ready and str(installed) in ready.detail
    for settings in (ModelSettings(), ModelSettings(weights=Path(variant))):
        out = tmp_path / f"{len(os.listdir(tmp_path))}.bvh"
        motion = run_clip(video(SHORT), RunOptions(exports=(out,), model=model, settings=settings)).motion
        assert motion.provenance["weights"] == variant and motion.provenance["weights_file"] == str(installed)
        assert motion.provenance["weights_sha256"] == _sha(checkpoints[model]) and motion.num_frames == 5


def test_malicious_or_wrong_weights_are_refused(checkpoints, tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.bin"
    torch.save({"epoch": 1, "model_pos": {"module.x": torch.zeros(1)}, "payload": Exploit()}, evil)
    for model in ("mixste", "strided"):
        with pytest.raises(MocapError, match="refused"):
            create_model(model, ModelSettings(weights=evil))
    assert not marker.exists()
    with pytest.raises(MocapError, match="not a MixSTE checkpoint"):
        create_model("mixste", ModelSettings(weights=checkpoints["strided"]))
    with pytest.raises(MocapError, match="not a Strided Transformer"):
        create_model("strided", ModelSettings(weights=checkpoints["mixste"]))
    with pytest.raises(MocapError, match="does not exist"):
        create_model("mixste", ModelSettings(weights=tmp_path / "nope.bin"))
