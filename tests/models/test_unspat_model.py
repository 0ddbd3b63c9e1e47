"""``--model unspat`` end to end on real clips, and ``mocap train unspat``.

The HybrIK checkpoint is built here with random weights at the released ResNet-34 shapes (key names and
shapes from ``reference/hybrik/official_layout.json``); the synthetic SMPL-shaped body of the HybrIK reference
cases stands in for the user's SMPL model. No HybrIK or SMPL data is involved.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import require_shared, video
from mesh_helpers import hybrik_layout_checkpoint
from mocap_cli import pipeline
from mocap_cli.capture.video import iter_frames
from mocap_cli.core.rotations import quat_to_matrix
from mocap_cli.errors import MocapError
from mocap_cli.models.base import ModelSettings
from mocap_cli.models.registry import create_model, registry
from mocap_cli.models.unspat import (
    UnspatModel,
    canonical_template,
    crop_camera,
    frame_step,
    hybrik_crops,
    readiness,
)
from mocap_cli.nets.hybrik import SMPLBody, build_hybrik_from_state_dict
from mocap_cli.pipeline import RunOptions, run_clip

WALK = "street_walk_5frames.mp4"  # 5 frames at 5 fps


@pytest.fixture(scope="module")
def paper_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hybrik_layout_checkpoint(
        tmp_path_factory.mktemp("hybrik") / "pretrained_res34.pth", "paper_version_pretrained_res34", "paper24"
    )


@pytest.fixture(scope="module")
def cam_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hybrik_layout_checkpoint(
        tmp_path_factory.mktemp("hybrik") / "pretrained_w_cam.pth", "camera_model_2022_04_pretrained_w_cam", "cam29"
    )


@pytest.fixture(scope="module")
def smpl_file() -> Path:
    return require_shared("reference", "hybrik", "synthetic_smpl.npz")


@pytest.fixture(autouse=True)
def _few_threads() -> None:
    torch.set_num_threads(2)


@pytest.fixture
def no_installed_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)


def _capture_model(monkeypatch: pytest.MonkeyPatch) -> list[UnspatModel]:
    made: list[UnspatModel] = []

    def create(name: str, settings: ModelSettings):  # type: ignore[no-untyped-def]
        model = create_model(name, settings)
        made.append(model)
        return model

    monkeypatch.setattr(pipeline, "create_model", create)
    return made


def _bvh_frames(path: Path) -> tuple[int, float]:
    text = path.read_text()
    frames = int(re.search(r"Frames:\s*(\d+)", text).group(1))  # type: ignore[union-attr]
    frame_time = float(re.search(r"Frame Time:\s*([0-9.eE+-]+)", text).group(1))  # type: ignore[union-attr]
    return frames, frame_time


def _glb_times(path: Path) -> np.ndarray:
    from pygltflib import GLTF2

    gltf = GLTF2().load(str(path))
    sampler = gltf.animations[0].samplers[0]
    acc = gltf.accessors[sampler.input]
    view = gltf.bufferViews[acc.bufferView]
    blob = gltf.binary_blob()
    start = (view.byteOffset or 0) + (acc.byteOffset or 0)
    return np.frombuffer(blob[start : start + 4 * acc.count], dtype=np.float32)


# ----------------------------------------------------------------------------------------------- units


def test_frame_step_and_crop_camera() -> None:
    assert [frame_step(f) for f in (5, 12, 25, 30, 44, 46, 60, 120)] == [1, 1, 1, 1, 1, 2, 2, 4]
    # a pelvis at crop position (0.1, -0.2) with the crop spanning 2.2 m: s·(0 + t) gives back 2·uv
    cam = crop_camera(torch.tensor([[0.1, -0.2, 0.0]]), torch.tensor([2.2]))
    assert torch.allclose(cam * torch.tensor([[1.0, cam[0, 0], cam[0, 0]]]), torch.tensor([[2 / 2.2, 0.2, -0.4]]))


def test_canonical_template_is_the_skeletons_rest_pose() -> None:
    from mocap_cli.core.skeleton import canonical_skeleton

    tpl = canonical_template()
    joints = tpl.joints(torch.zeros(2, 10), 29)
    assert joints.shape == (2, 29, 3)
    assert np.allclose(joints[0, :24].numpy(), canonical_skeleton().rest_positions(), atol=1e-6)
    head_top, left_tip = joints[0, 24], joints[0, 25]
    assert head_top[1] > joints[0, 15, 1] and left_tip[0] > joints[0, 22, 0]  # above the head, beyond the left hand


def test_hybrik_crop_normalisation_is_hybriks_not_imagenet() -> None:
    from mocap_cli.models.mesh.crops import SquareBoxes

    img = np.full((1, 40, 40, 3), 255, np.uint8)
    crops = hybrik_crops(img, SquareBoxes(np.array([[19.5, 19.5]]), np.array([80.0])), 32, "cpu")
    inside, outside = crops[0, :, 16, 16], crops[0, :, 0, 0]  # window twice the image: black border
    assert torch.allclose(
        inside, (1 - torch.tensor([0.406, 0.457, 0.480])) / torch.tensor([0.225, 0.224, 0.229]), atol=1e-5
    )
    assert torch.allclose(
        outside, -torch.tensor([0.406, 0.457, 0.480]) / torch.tensor([0.225, 0.224, 0.229]), atol=1e-5
    )


# ----------------------------------------------------------------------------------------------- registry, errors


def test_registered_and_missing_weights_is_one_sentence(no_installed_weights: None) -> None:
    entry = registry()["unspat"]
    assert entry.kind == "mesh"
    ready = entry.readiness(ModelSettings())
    assert not ready.ready and "hybrik-res34-cam" in ready.detail and "mocap weights import" in ready.detail
    with pytest.raises(MocapError) as err:
        create_model("unspat", ModelSettings())
    message = str(err.value)
    assert message.count(". ") == 0 and "pretrained_w_cam.pth" in message


def test_a_wrong_weights_file_fails_when_the_model_is_built(tmp_path: Path, no_installed_weights: None) -> None:
    wrong = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3)}, wrong)
    with pytest.raises(MocapError, match="no HybrIK heatmap layer"):
        create_model("unspat", ModelSettings(weights=wrong))
    with pytest.raises(MocapError, match="feature cache"):
        create_model("unspat", ModelSettings(weights=wrong, extra={"features": "int8"}))


def test_readiness_says_untrained_and_which_rest_joints(
    paper_ckpt: Path, smpl_file: Path, no_installed_weights: None
) -> None:
    r = readiness("unspat", ModelSettings(weights=paper_ckpt))
    assert r.ready and "temporal modules untrained" in r.detail and "canonical T-pose" in r.detail
    r = readiness("unspat", ModelSettings(weights=paper_ckpt, smpl=smpl_file))
    assert r.ready and str(smpl_file) in r.detail


# ----------------------------------------------------------------------------------------------- end to end


@pytest.mark.parametrize("variant", ["paper24", pytest.param("cam29", marks=pytest.mark.slow)])
@pytest.mark.parametrize("flip", [False, True])
def test_untrained_unspat_on_a_real_clip_equals_per_frame_hybrik(
    tmp_path: Path,
    variant: str,
    flip: bool,
    request: pytest.FixtureRequest,
    smpl_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    no_installed_weights: None,
) -> None:
    """HybrIK-only weights: the pipeline equals per-frame HybrIK on the same crops as the authors run it on
    video: camera model through its own box path; paper model in its 2.0 m depth unit, x/y back-projected
    through the crop and the pipeline's pinhole camera (``hybrik_video``); flip test (default on) = the head
    on the mirrored crops, mirrored back and averaged."""
    from mocap_cli.models.hybrik_video import bone_lengths, flip_average, paper_skeleton_on_video
    from mocap_cli.solve.camera import Pinhole

    paper_ckpt = request.getfixturevalue("paper_ckpt" if variant == "paper24" else "cam_ckpt")
    clip = video(WALK)
    made = _capture_model(monkeypatch)
    bvh, glb = tmp_path / "out.bvh", tmp_path / "out.glb"
    settings = ModelSettings(weights=paper_ckpt, smpl=smpl_file, extra={} if flip else {"flip": "0"})
    result = run_clip(
        clip, RunOptions(exports=(bvh, glb), model="unspat", smooth="none", foot_lock="off", settings=settings)
    )

    motion = result.motion
    assert result.frames == 5 and motion.num_frames == 5 and motion.fps == pytest.approx(5.0)
    assert _bvh_frames(bvh) == (5, pytest.approx(0.2))
    times = _glb_times(glb)
    assert len(times) == 5 and times[-1] == pytest.approx(0.8, abs=1e-5)
    assert motion.provenance["temporal"] == "temporal modules untrained (per-frame HybrIK)"
    assert motion.provenance["flip_test"] == ("on" if flip else "off")
    kind = "HybrIK paper model" if variant == "paper24" else "HybrIK camera model"
    assert motion.provenance["weights"] == f"weights file ({kind})"
    assert "SMPL model" in motion.provenance["ik_rest_template"] and motion.betas is not None
    assert np.isfinite(motion.joints).all() and np.isfinite(motion.root_translation).all()

    # per-frame HybrIK on the same crops (the stored float16 features), through its own SMPL layer
    windows, seq = made[0].last_run  # type: ignore[misc]
    sd = torch.load(paper_ckpt, weights_only=True)
    hybrik, _ = build_hybrik_from_state_dict(sd)
    body = SMPLBody.from_npz(smpl_file)
    hybrik.attach_body(body)
    images = np.stack([f.image for f in iter_frames(clip)])
    height, width = images.shape[1:3]
    geometry = {}
    if variant == "cam29":  # HybrIK's demo path: the square crop box and the image centre
        half = windows.sides[:, None] / 2
        boxes = np.concatenate([windows.centers - half, windows.centers + half], axis=1)
        geometry = {
            "bboxes": torch.tensor(boxes, dtype=torch.float32),
            "img_center": torch.tensor([[width / 2, height / 2]] * 5),
        }
    with torch.no_grad():
        crops = hybrik_crops(images, windows, 256, "cpu")
        feats = hybrik.backbone(crops)
        head = hybrik.head(feats.half().float())
        if flip:
            head = flip_average(head, hybrik.head(hybrik.backbone(crops.flip(-1)).half().float()))
        if variant == "cam29":
            from mocap_cli.nets.hybrik import predict_from_head

            ref = predict_from_head(head, "cam29", body, **geometry)
            want = ref.smpl["rot_mats"].numpy()
        else:
            camera = Pinhole.from_fov(width, height, ModelSettings().fov_degrees)
            rest = made[0].template().joints(head.betas, 24)
            skel, z_root = paper_skeleton_on_video(
                head.uvd,
                torch.tensor(windows.centers),
                torch.tensor(windows.sides),
                camera.focal,
                (camera.cx, camera.cy),
                bone_lengths(rest),
            )
            want = body.hybrik(skel, head.betas, head.phis, head.leaf)["rot_mats"].numpy()
            # the crop camera places the pelvis at the solved depth: Tz = 2 f / (s · side)
            tz = 2 * camera.focal / (seq.cam[:, 0] * windows.sides)
            np.testing.assert_allclose(tz, z_root.numpy(), rtol=1e-4)
    assert seq.rotmats.shape == (5, 24, 3, 3)
    assert np.abs(seq.rotmats - want).max() < 1e-4
    assert np.abs(seq.betas - head.betas.numpy()).max() < 1e-5
    if not flip:
        # the same through real 16-frame windows (SAM, uncertainty, transformer all run: exact identities untrained)
        from mocap_cli.models.unspat import run_windows, stream_features

        net, _ = made[0].network()
        cache = stream_features(net.backbone, iter_frames(clip), windows, 256)
        assert cache.dtype == torch.float16 and cache.shape == (5, 512, 8, 8)
        camera = Pinhole.from_fov(width, height, ModelSettings().fov_degrees)
        windowed = run_windows(
            net,
            cache,
            made[0].template(),
            skip_identity=False,
            windows=windows,
            image_size=(width, height),
            camera=camera,
        )
        assert np.abs(windowed.rotmats - want).max() < 1e-4 and np.abs(windowed.cam - seq.cam).max() < 1e-6

    # the Motion carries those rotations 1:1 below the root (paper model's right hand: kept straight, A.7)
    got = quat_to_matrix(motion.rotations)
    assert np.abs(got[:, 1:23] - want[:, 1:23]).max() < 1e-4
    if variant == "paper24":
        assert np.allclose(got[:, 23], np.eye(3), atol=1e-6)
    else:
        assert np.abs(got[:, 23] - want[:, 23]).max() < 1e-4


def test_canonical_stand_in_without_smpl(tmp_path: Path, paper_ckpt: Path, no_installed_weights: None) -> None:
    out = tmp_path / "out.npz"
    result = run_clip(
        video(WALK), RunOptions(exports=(out,), model="unspat", settings=ModelSettings(weights=paper_ckpt))
    )
    m = result.motion
    assert m.num_frames == 5 and m.betas is None
    assert "canonical T-pose" in m.provenance["ik_rest_template"] and m.provenance["skeleton"] == "canonical"
    from mocap_cli.core.skeleton import canonical_skeleton

    assert np.allclose(m.skeleton.offsets[:24], canonical_skeleton().offsets)  # the body; fingers follow
    assert np.isfinite(m.joints).all()
    # grounded: the lowest sole point over the clip sits near the floor
    assert -0.2 < m.joints[..., 1].min() < 0.2


@pytest.mark.slow
def test_train_command_then_run_with_the_checkpoint(
    tmp_path: Path, paper_ckpt: Path, no_installed_weights: None
) -> None:
    from typer.testing import CliRunner

    from mocap_cli.commands.train import app

    src = require_shared("data", "synthetic", "walk_16_32")
    data = tmp_path / "data"
    data.mkdir()
    (data / src.name).symlink_to(src)  # one clip keeps the test short
    ckpt = tmp_path / "unspat_test.safetensors"
    args = [
        "unspat",
        "--data",
        str(data),
        "--out",
        str(ckpt),
        "--steps",
        "3",
        "--batch-size",
        "2",
        "--device",
        "cpu",
        "--init-weights",
        str(paper_ckpt),
        "--img-size",
        "64",
        "--seq-len",
        "4",
        "--max-frames",
        "24",
        "--quiet",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert "over 3 steps" in res.output and ckpt.is_file() and ckpt.with_suffix(".json").is_file()

    out = tmp_path / "out.bvh"
    result = run_clip(
        video(WALK), RunOptions(exports=(out,), model="unspat", smooth="none", settings=ModelSettings(weights=ckpt))
    )
    assert result.motion.provenance["temporal"] == "temporal modules trained"
    assert "4 frames, centre 2" in result.motion.provenance["window"]
    assert _bvh_frames(out)[0] == 5 and np.isfinite(result.motion.joints).all()
    assert "temporal modules trained" in readiness("unspat", ModelSettings(weights=ckpt)).detail


def test_train_command_errors_are_one_sentence(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from mocap_cli.commands.train import app

    res = CliRunner().invoke(
        app, ["unspat", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "x.safetensors")]
    )
    assert res.exit_code == 1 and "is not a folder" in res.output and "Traceback" not in res.output
    empty = tmp_path / "empty"
    empty.mkdir()
    res = CliRunner().invoke(app, ["unspat", "--data", str(empty), "--out", str(tmp_path / "x.safetensors"), "--quiet"])
    assert res.exit_code == 1 and "No training clips" in res.output


def test_head_only_shortcut_is_exact_for_untrained_temporal_modules() -> None:
    from mocap_cli.models.unspat import run_windows, temporal_is_identity
    from mocap_cli.nets.unspat import UNSPAT, UnspatConfig

    torch.manual_seed(3)
    model = UNSPAT(UnspatConfig(deconv=(8, 8, 8))).eval()
    nn.init.normal_(model.head.heatmap_conv.weight, std=0.5)  # heatmaps that are not flat
    for i in (1, 2, 3):
        nn.init.kaiming_normal_(getattr(model.head, f"deconv{i}").weight)
    feats = (torch.randn(11, 512, 8, 8) * 2).half()
    tpl = canonical_template()
    assert temporal_is_identity(model)
    fast = run_windows(model, feats, tpl, step=2, batch=4)
    full = run_windows(model, feats, tpl, step=2, batch=4, skip_identity=False)
    for name in ("rotmats", "betas", "cam", "uvd", "sigma"):
        assert np.array_equal(getattr(fast, name), getattr(full, name)), name
    nn.init.normal_(model.transformer.blocks[2].mlp.fc2.weight, std=0.02)  # "trained": windows matter now
    assert not temporal_is_identity(model)
    moved = run_windows(model, feats, tpl, step=2, batch=4)
    assert np.abs(moved.uvd - full.uvd).max() > 1e-4 and np.abs(full.uvd[:, 1:] - full.uvd[:, :1]).max() > 1e-2


def test_windows_follow_the_spec_and_stay_inside_track_segments() -> None:
    from mocap_cli.models.unspat import track_segments, window_indices
    from mocap_cli.nets.unspat import sliding_window_indices

    one = window_indices(np.zeros(40), 16, 8, 2)
    assert torch.equal(one, sliding_window_indices(40, 16, 8, 2))
    assert torch.equal(one[20], torch.arange(4, 36, 2))  # frame n at position 8, neighbours 2 apart
    tracked = np.array([True] * 10 + [False] * 3 + [True] * 7)
    seg = track_segments(tracked)
    assert seg.tolist() == [0] * 10 + [1] * 3 + [2] * 7
    idx = window_indices(seg, 16, 8)
    assert torch.equal(idx[:, 8], torch.arange(20))
    assert idx[:10].max() == 9 and idx[10:13].min() == 10 and idx[10:13].max() == 12 and idx[13:].min() == 13
    assert idx[9, 15] == 9 and idx[13, 0] == 13  # edge replication at the break


@pytest.mark.slow
def test_mocap_run_cli_on_a_portrait_clip(
    tmp_path: Path, paper_ckpt: Path, smpl_file: Path, no_installed_weights: None
) -> None:
    from typer.testing import CliRunner

    from mocap_cli.cli import app

    glb, bvh = tmp_path / "out.glb", tmp_path / "out.bvh"
    args = [
        "run",
        str(video("3dpw_courtyard_basketball_portrait.mp4")),
        "--end",
        "1",
        "--model",
        "unspat",
        "--weights",
        str(paper_ckpt),
        "--smpl",
        str(smpl_file),
        "--export",
        str(glb),
        "--export",
        str(bvh),
        "--quiet",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert _bvh_frames(bvh) == (12, pytest.approx(1 / 12))  # 12 fps, first second
    times = _glb_times(glb)
    assert len(times) == 12 and times[-1] == pytest.approx(11 / 12, abs=1e-5)
