"""MixSTE training on CMU motion capture: the data split, the ASF/AMC reader checked against the rendered clips,
the MediaPipe noise model, the authors' losses and flip augmentation, a few-step `mocap train mixste`, and the
weights mocap ships (found without any import, loaded with the MixSTE loader, accurate on a rendered clip)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from conftest import require_shared
from helpers import cmu_behind_rendered_clip, unpack_cmu
from mocap_cli.capture.keypoints import H36M, normalize_screen
from mocap_cli.cli import app as cli_app
from mocap_cli.core.alignment import procrustes_errors
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.loading import load_mixste, trained_body_size
from mocap_cli.training import cmu
from mocap_cli.training.mediapipe_noise import NOISE_FILE, MediaPipeNoise, project
from mocap_cli.training.mixste import (
    CameraRanges,
    draw_weights,
    flip_batch,
    make_windows,
    mixste_loss,
    random_camera,
)
from mocap_cli.weights import registry as W
from mocap_cli.weights.cache import choose_weights

SUBJECTS = ("02", "05", "10")  # small subjects: 05 and 10 hold evaluation trials 05_02 and 10_05
# Shipped lifter on jumpingjacks_14_06 (MediaPipe 2D in, no IK): measured PA-MPJPE 35.5 mm (weights trained on CMU's
# own skeletons: 54, first weights 58); margin for platform noise.
PA_MPJPE_LIMIT_M = 0.05


@pytest.fixture(scope="module")
def cmu_root(tmp_path_factory) -> Path:
    """A few subjects of the shared CMU archive, unpacked to a temp folder."""
    return unpack_cmu(tmp_path_factory.mktemp("cmu"), SUBJECTS)


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "mocap_home"
    monkeypatch.setenv("MOCAP_HOME", str(home))
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    return home


def _listed_trials() -> list[Path]:
    rows = csv.DictReader(require_shared("data", "mocap", "clips.csv").open())
    return [Path(r["file"]) for r in rows if r["format"] == "amc"]


# --------------------------------------------------------------------------------------------- split


def test_no_evaluation_trial_reaches_training_or_validation():
    listed = _listed_trials()
    names = {cmu.trial_name(p) for p in listed}
    assert cmu.EXCLUDED_TRIALS <= names  # every evaluation trial is in the archive, so excluding it matters
    train, val = cmu.split_trials(listed)
    train_names, val_names = {cmu.trial_name(p) for p in train}, {cmu.trial_name(p) for p in val}
    assert not train_names & cmu.EXCLUDED_TRIALS and not val_names & cmu.EXCLUDED_TRIALS
    assert val_names == cmu.VALIDATION_TRIALS and not train_names & val_names
    assert train_names | val_names | cmu.EXCLUDED_TRIALS == names
    # the subjects of the rendered clips' trials, from their own records
    for gt in sorted(require_shared("data", "synthetic").glob("*/gt.npz")):
        source = str(np.load(gt)["source"])
        assert any(t in source for t in cmu.EXCLUDED_TRIALS), source


def test_loading_an_evaluation_trial_is_refused(cmu_root):
    with pytest.raises(MocapError, match="evaluation trial"):
        cmu.load_trial(cmu_root / "05" / "05_02.amc")


# --------------------------------------------------------------------------------------------- ASF/AMC


@pytest.mark.parametrize("clip", ["dance_05_02", "kick_10_05"])
def test_forward_kinematics_matches_the_rendered_clips_limbs(cmu_root, clip):
    """The rendered clips drive each body bone with the CMU bone's global rotation, so every limb direction of
    our FK must equal the ground truth's (the joints themselves differ: another body's proportions)."""
    ours, truth = cmu_behind_rendered_clip(cmu_root, clip)
    n = min(len(ours), len(truth))
    assert n >= 0.95 * len(truth)
    for a, b in [
        ("left_hip", "left_knee"),
        ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"),
        ("right_knee", "right_ankle"),
        ("left_shoulder", "left_elbow"),
        ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"),
        ("right_elbow", "right_wrist"),
        ("right_hip", "left_hip"),
    ]:
        u = ours[:n, H36M[b]] - ours[:n, H36M[a]]
        v = truth[:n, H36M[b]] - truth[:n, H36M[a]]
        cos = (u * v).sum(-1) / np.linalg.norm(u, axis=-1) / np.linalg.norm(v, axis=-1)
        assert np.degrees(np.arccos(np.clip(cos.min(), -1, 1))) < 0.5, (a, b)


def test_trial_joints_are_a_plausible_human_at_120_fps(cmu_root):
    trial = cmu.load_trial(cmu_root / "02" / "02_01.amc")  # walk
    j = trial.joints
    assert j.shape == (343, 17, 3)  # clips.csv: 343 frames
    shin = np.linalg.norm(j[:, H36M["left_ankle"]] - j[:, H36M["left_knee"]], axis=-1)
    assert shin.std() < 1e-4 and 0.35 < shin.mean() < 0.5
    assert -0.05 < j[..., 1].min() < 0.15 and 1.5 < j[:, H36M["head"], 1].mean() < 1.95  # feet on the floor, standing
    walked = np.linalg.norm(j[-1, 0, [0, 2]] - j[0, 0, [0, 2]])
    assert 2.0 < walked < 6.0  # about 3 s of walking
    forward = np.cross(j[:, H36M["left_hip"]] - j[:, H36M["right_hip"]], [0.0, 1.0, 0.0])
    velocity = np.gradient(j[:, 0], axis=0)
    assert ((forward * velocity).sum(-1) > 0).mean() > 0.95  # the subject's left is on their left


# --------------------------------------------------------------------------------------------- noise


def test_fitted_noise_file_is_plausible_and_generates_what_it_says():
    noise = MediaPipeNoise.load()
    assert len(noise.fitted_on) == 9 and noise.threshold == 0.5
    assert (np.abs(noise.offsets) < 0.1).all()  # landmark definitions differ by centimetres, not decimetres
    assert ((noise.sigma > 0.003) & (noise.sigma < 0.05)).all() and ((noise.rho >= 0) & (noise.rho < 1)).all()
    rng = np.random.default_rng(0)
    clean = noise.sample_errors(rng, 3000, 20)  # many short sequences: the AR(1) correlation is high
    spread = 1.4826 * np.median(np.abs(clean - np.median(clean, axis=(0, 1))), axis=(0, 1))
    assert np.allclose(spread, noise.sigma, rtol=0.2)  # gross errors widen it a little
    # Robust lag-1 correlation (gross errors left out, as fitted): var(e[t] - e[t-1]) = 2 sigma^2 (1 - rho).
    step = clean[:, 1:] - clean[:, :-1]
    step_spread = 1.4826 * np.median(np.abs(step - np.median(step, axis=(0, 1))), axis=(0, 1))
    lag = 1 - step_spread**2 / (2 * spread**2)
    assert np.abs(lag - noise.rho).max() < 0.1
    mask = noise.dropout_mask(rng, 400, 150)
    assert (np.abs(mask.mean((0, 1)) - noise.dropout_rate) < 0.25 * noise.dropout_rate + 0.01).all()


@pytest.mark.slow
def test_offsets_bring_projected_joints_closer_to_mediapipe():
    """On a rendered clip, the detector's H36M keypoints are nearer the offset joints than the true joints."""
    from mocap_cli.capture.detect import detect
    from mocap_cli.capture.keypoints import mediapipe_to_h36m
    from mocap_cli.capture.video import iter_frames, probe

    folder = require_shared("data", "synthetic", "jumpingjacks_14_06")
    gt = np.load(folder / "gt.npz")
    info = probe(folder / "video.mp4")
    track = detect(iter_frames(folder / "video.mp4", info=info), info)
    kp, conf = mediapipe_to_h36m(track.landmarks[..., :2], track.visibility)
    noise = MediaPipeNoise.load()
    ok = conf >= 0.5
    raw = np.linalg.norm(kp - project(gt["h36m17"], gt["K"]), axis=-1)[ok]
    moved = np.linalg.norm(kp - project(noise.offset_joints(gt["h36m17"]), gt["K"]), axis=-1)[ok]
    assert np.median(moved) < 0.85 * np.median(raw)


# --------------------------------------------------------------------------------------------- windows, loss


def test_windows_are_root_relative_camera_frames_with_matching_inputs(cmu_root):
    trials = [cmu.load_trial(cmu_root / "02" / "02_01.amc")]
    silent = MediaPipeNoise(
        np.zeros((17, 3)),
        np.full((17, 2), 1e-9),
        np.zeros((17, 2)),
        np.zeros(17),
        np.zeros(17),
        np.zeros(17),
        np.ones(17),
        0.5,
        ("none",),
    )
    x, y = make_windows(np.random.default_rng(3), trials, 6, 27, silent, CameraRanges(), pad_prob=0.0)
    assert x.shape == (6, 27, 17, 2) and y.shape == (6, 27, 17, 3)
    assert np.abs(y[:, :, H36M["pelvis"]]).max() < 1e-6  # root-relative
    assert (y[:, :, H36M["head"], 1] < -0.3).all()  # y down: the head is above the pelvis
    assert (
        0.3 < np.linalg.norm(y[:, :, H36M["left_knee"]] - y[:, :, H36M["left_ankle"]], axis=-1).mean() < 0.5
    )  # metres
    # Without noise, the input is the projection: its bone directions follow the 3D ones seen from the camera.
    knee_ankle_2d = x[:, :, H36M["left_ankle"]] - x[:, :, H36M["left_knee"]]
    knee_ankle_3d = y[:, :, H36M["left_ankle"], :2] - y[:, :, H36M["left_knee"], :2]
    cos = (knee_ankle_2d * knee_ankle_3d).sum(-1) / (
        np.linalg.norm(knee_ankle_2d, axis=-1) * np.linalg.norm(knee_ankle_3d, axis=-1) + 1e-9
    )
    assert np.median(cos) > 0.95
    assert np.abs(x).max() < 2.0  # normalised screen coordinates (÷ width): the body is in the frame


def test_oversampled_trials_are_drawn_that_many_times_as_often(cmu_root):
    """``--oversample 10_06=4``: CMU 10_06 (a kick) is drawn four times as often as its length alone gives; a
    subject's key weights all its trials; a key naming no training trial is refused."""
    trials = [cmu.load_trial(p) for p in cmu.split_trials(cmu.find_trials(cmu_root))[0]]
    names = [t.name for t in trials]
    plain = draw_weights(trials)
    assert plain.tolist() == [len(t.joints) for t in trials]
    kick = draw_weights(trials, (("10_06", 4.0),))
    k = names.index("10_06")
    assert kick[k] == 4 * plain[k] and np.delete(kick, k).tolist() == np.delete(plain, k).tolist()
    subject = draw_weights(trials, (("02", 3.0),))
    assert all((subject[i] == 3 * plain[i]) == n.startswith("02_") for i, n in enumerate(names))
    for typo in ("10_05", "99", "10_6"):  # an excluded trial, an absent subject, a misspelt trial
        with pytest.raises(MocapError, match="--oversample"):
            draw_weights(trials, ((typo, 2.0),))
    # Windows come only from trials with weight: a trial of NaN joints never drawn leaves every window finite.
    poisoned = cmu.Trial("nan", np.full_like(trials[k].joints, np.nan))
    noise = MediaPipeNoise.load()
    x, y = make_windows(
        np.random.default_rng(0), [trials[k], poisoned], 20, 9, noise, CameraRanges(), draw=np.array([1.0, 0.0])
    )
    assert np.isfinite(x).all() and np.isfinite(y).all()
    with np.errstate(invalid="ignore"):
        _, y = make_windows(
            np.random.default_rng(0), [trials[k], poisoned], 20, 9, noise, CameraRanges(), draw=np.array([0.0, 1.0])
        )
    assert np.isnan(y).all()


def test_cameras_keep_the_body_in_frame_but_not_always_centred(cmu_root):
    """Subjects walk across a static camera's view: the aim point moves off the body, the body stays in frame."""
    world = cmu.load_trial(cmu_root / "02" / "02_01.amc").joints[:160:4].astype(np.float64)
    rng = np.random.default_rng(7)
    centres, heights = [], []
    for _ in range(60):
        rot, eye, k, (w, h) = random_camera(rng, world, CameraRanges())
        px = project((world - eye) @ rot.T, k)
        assert (px >= 0).all() and (px[..., 0] <= w).all() and (px[..., 1] <= h).all()
        centres.append((px[:, H36M["pelvis"]].mean(0) - [w / 2, h / 2]) / [w, h])
        heights.append(np.ptp(px[..., 1], axis=1).mean() / h)
    centres = np.array(centres)
    assert np.abs(centres).max() > 0.2 and centres.std(0).min() > 0.06  # off-centre in both directions
    assert min(heights) < 0.4 < max(heights)  # far (small) and near (large) subjects


def test_loss_and_flip_augmentation():
    rng = np.random.default_rng(0)
    gt = torch.from_numpy(rng.normal(size=(2, 9, 17, 3)).astype(np.float32))
    still = gt[:, :1].expand(-1, 9, -1, -1)  # a motionless pose: perfect prediction costs nothing
    assert mixste_loss(still, still)[0].item() < 1e-6 < mixste_loss(still + 0.01, still)[0].item()
    _, terms = mixste_loss(gt, gt)  # moving: only the temporal-consistency term (the prediction's own speed)
    assert terms["wmpjpe"] < 1e-6 and terms["mpjve"] < 1e-6 and terms["tcl"] > 0.1
    shifted = gt + 0.1 * torch.tensor([1.0, 0, 0])  # a constant offset: no velocity error, position error 0.1 m
    _, terms = mixste_loss(shifted, gt)
    assert (
        abs(terms["mpjve"]) < 1e-6
        and abs(terms["wmpjpe"] - 0.1 * np.mean([1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4]))
        < 1e-5
    )
    # Mirroring the camera-frame pose mirrors its centred-pinhole projection; flipping twice is the identity.
    k = np.array([[500.0, 0, 320.0], [0, 500.0, 240.0], [0, 0, 1]])  # normalize_screen centres x = w/2 on 0
    pose = gt[:1, :1].numpy().astype(np.float64) * 0.2 + np.array([0, 0, 4.0])
    x = torch.from_numpy(normalize_screen(project(pose, k), 640, 480))
    fx, fy = flip_batch(x, gt[:1, :1], torch.tensor([True]))
    mirrored = pose * np.array([-1.0, 1, 1])
    want = normalize_screen(project(mirrored, k), 640, 480)[
        :, :, [0, 4, 5, 6, 1, 2, 3, 7, 8, 9, 10, 14, 15, 16, 11, 12, 13]
    ]
    assert np.allclose(fx.numpy(), want, atol=1e-5)
    back = flip_batch(fx, fy, torch.tensor([True]))
    assert torch.allclose(back[0], x) and torch.allclose(back[1], gt[:1, :1])


# --------------------------------------------------------------------------------------------- command


def test_train_command_smoke_writes_a_loadable_file(cmu_root, tmp_path):
    out = tmp_path / "m.safetensors"
    args = [
        "train",
        "mixste",
        "--data",
        str(cmu_root),
        "--out",
        str(out),
        "--steps",
        "3",
        "--frames",
        "9",
        "--width",
        "16",
        "--depth",
        "1",
        "--max-trials",
        "4",
        "--quiet",
    ]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 0, result.output
    _, config = load_mixste(out)
    assert (config.num_frame, config.embed_dim, config.depth, config.num_heads) == (9, 16, 1, 8)
    # The size every lifted body gets (solve/body_size.py): the sampled adults' (2.68 m of limbs).
    assert 2.6 < trained_body_size(out) < 2.8
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["steps"] == 3 and record["curve"] and record["curve"][-1]["val_mpjpe_mm"] > 0
    assert not set(record["train_trials"]) & cmu.EXCLUDED_TRIALS and not set(record["val_trials"]) & cmu.EXCLUDED_TRIALS
    assert set(record["val_trials"]) <= cmu.VALIDATION_TRIALS


def test_train_command_continues_from_init_weights(cmu_root, tmp_path):
    from safetensors import safe_open

    start, out = tmp_path / "start.safetensors", tmp_path / "more.safetensors"
    base = [
        "train",
        "mixste",
        "--data",
        str(cmu_root),
        "--frames",
        "9",
        "--width",
        "16",
        "--depth",
        "1",
        "--max-trials",
        "4",
        "--quiet",
    ]
    assert CliRunner().invoke(cli_app, [*base, "--out", str(start), "--steps", "2"]).exit_code == 0
    result = CliRunner().invoke(
        cli_app, [*base, "--out", str(out), "--steps", "1", "--lr", "1e-12", "--init", str(start)]
    )
    assert result.exit_code == 0, result.output
    a, b = load_mixste(start)[0].state_dict(), load_mixste(out)[0].state_dict()
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)  # a vanishing step keeps the starting weights
    with safe_open(str(out), "pt") as f:
        assert hashlib.sha256(start.read_bytes()).hexdigest() in f.metadata()["initialised_from"]
    wrong = CliRunner().invoke(
        cli_app,
        [*base, "--out", str(tmp_path / "bad.safetensors"), "--steps", "1", "--frames", "11", "--init", str(start)],
    )
    assert (
        wrong.exit_code != 0 and "same --frames" in " ".join(wrong.output.split()) and "Traceback" not in wrong.output
    )
    assert not (tmp_path / "bad.safetensors").exists()


def test_train_command_errors_are_one_sentence_and_write_nothing(cmu_root, tmp_path):
    for args, text in (
        [["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "m.safetensors")], "is not a folder"],
        [["--data", str(cmu_root), "--out", str(tmp_path / "m.pth")], ".safetensors"],
        [["--data", str(tmp_path), "--out", str(tmp_path / "m.safetensors")], "No CMU .amc trials"],
        [["--data", str(cmu_root), "--out", str(tmp_path / "m.safetensors"), "--oversample", "10_06"], "TRIAL=FACTOR"],
        [["--data", str(cmu_root), "--out", str(tmp_path / "m.safetensors"), "--oversample", "x=-1"], "TRIAL=FACTOR"],
        [
            ["--data", str(cmu_root), "--out", str(tmp_path / "m.safetensors"), "--oversample", "99=2"],
            "--oversample 99",
        ],
    ):
        result = CliRunner().invoke(cli_app, ["train", "mixste", *args, "--steps", "1", "--quiet"])
        assert result.exit_code != 0 and text in " ".join(result.output.split())
        assert "Traceback" not in result.output
    assert not list(tmp_path.glob("*.safetensors")) and not list(tmp_path.glob("*.pth"))


# --------------------------------------------------------------------------------------------- shipped weights


def test_shipped_weights_are_registered_small_and_used_by_default():
    from mocap_cli.models.base import ModelSettings
    from mocap_cli.models.registry import model_entry

    spec = W.get_spec("mixste-cmu")
    path = W.registry_dir() / spec.shipped
    assert path.is_file() and path.stat().st_size <= 20 * 2**20
    assert hashlib.sha256(path.read_bytes()).hexdigest() == spec.sha256
    assert "CMU" in spec.licence and "commercial" in spec.licence
    chosen = choose_weights("mixste", accept=lambda s: s.input == "keypoints2d")
    assert chosen.path == path and chosen.variant == "mixste-cmu" and chosen.sha256 == spec.sha256
    ready = model_entry("mixste").readiness(ModelSettings())
    assert ready.ready and "mixste-cmu" in ready.detail and "shipped" in ready.detail
    net, config = load_mixste(path)
    assert config.num_frame == spec.input_frames and len(net.state_dict()) == spec.num_tensors
    assert (config.embed_dim, config.depth) == (spec.arch["embed_dim_ratio"], spec.arch["depth"])
    assert NOISE_FILE.is_file()  # the training input model travels with the package too
    listed = " ".join(CliRunner().invoke(cli_app, ["models"]).output.split())
    assert "mixste-cmu" in listed


@pytest.mark.slow
def test_shipped_weights_lift_a_rendered_clip_accurately():
    """The shipped lifter on MediaPipe's 2D of a rendered clip (its trial never trained on), against the exact
    joints: per-frame Procrustes error of the 12 limb joints, root-relative camera frame."""
    from mocap_cli.capture.detect import detect
    from mocap_cli.capture.video import iter_frames, probe
    from mocap_cli.models.base import Clip, ModelSettings
    from mocap_cli.models.lifters.adapter import LifterModel

    folder = require_shared("data", "synthetic", "jumpingjacks_14_06")
    gt = np.load(folder / "gt.npz")
    info = probe(folder / "video.mp4")
    clip = Clip(
        info, detect(iter_frames(folder / "video.mp4", info=info), info), lambda: iter_frames(folder / "video.mp4")
    )
    model = LifterModel("mixste", ModelSettings())
    assert model.weights.variant == "mixste-cmu"
    pose = model.lift(clip).pose_3d
    limbs = [
        H36M[f"{s}_{p}"] for s in ("left", "right") for p in ("hip", "knee", "ankle", "shoulder", "elbow", "wrist")
    ]
    errors = procrustes_errors(pose[:, limbs], gt["h36m17"][: len(pose), limbs])
    assert errors.mean() < PA_MPJPE_LIMIT_M
