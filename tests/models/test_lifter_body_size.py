"""The lifted body's size: measured on real poses, set to the size the weights record, kept where they record none."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from conftest import require_shared, video
from lifter_checkpoints import write_mixste
from mocap_cli.capture.detect import detect
from mocap_cli.capture.keypoints import H36M, H36M_PARENTS
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.models.base import Clip, ModelSettings
from mocap_cli.models.lifters.adapter import LifterModel
from mocap_cli.models.lifters.loading import load_mixste, trained_body_size
from mocap_cli.solve.body_size import BODY_SIZE_KEY, LIMB_BONES, SAMPLED_BODIES, at_body_size, limb_size
from mocap_cli.weights import registry as W

CLIP = "3dpw_courtyard_basketball_portrait.mp4"


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "mocap_home"))
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    return tmp_path / "mocap_home"


def _truth_pose(name: str = "turn_105_53") -> np.ndarray:
    """A rendered clip's exact H36M-17 joints, root-relative (F, 17, 3)."""
    h36m = np.load(require_shared("data", "synthetic", name) / "gt.npz")["h36m17"].astype(np.float64)
    return h36m - h36m[:, :1]


def test_limb_size_is_the_summed_limb_lengths_of_a_real_body():
    """On the exact joints of a rendered body every limb keeps its length over the clip, so the size is the sum of
    the eight limb bones measured in any one frame (here the middle one, bone by bone from the skeleton's parents)."""
    pose = _truth_pose()
    frame = pose[len(pose) // 2]
    limbs = {H36M[f"{s}_{p}"] for s in ("left", "right") for p in ("knee", "ankle", "elbow", "wrist")}
    by_hand = sum(np.linalg.norm(frame[j] - frame[H36M_PARENTS[j]]) for j in limbs)
    assert limb_size(pose) == pytest.approx(by_hand, abs=0.01)
    assert 2.2 < limb_size(pose) < 3.2  # an adult's two arms and two legs


def test_at_body_size_scales_about_the_root_and_keeps_every_direction():
    pose = _truth_pose()
    scaled = at_body_size(pose, 2.5)
    assert limb_size(scaled) == pytest.approx(2.5, rel=1e-9)
    np.testing.assert_allclose(scaled[:, 0], 0.0, atol=1e-12)
    ratio = np.linalg.norm(scaled[:, 1:], axis=-1) / np.linalg.norm(pose[:, 1:], axis=-1)
    np.testing.assert_allclose(ratio, 2.5 / limb_size(pose), rtol=1e-9)
    cos = np.sum(scaled[:, 1:] * pose[:, 1:], -1) / np.linalg.norm(scaled[:, 1:], axis=-1)
    np.testing.assert_allclose(cos, np.linalg.norm(pose[:, 1:], axis=-1), rtol=1e-9)
    # A collapsed pose (every joint on the root) has no size to scale: it comes back as it is.
    np.testing.assert_array_equal(at_body_size(np.zeros((4, 17, 3)), 2.5), np.zeros((4, 17, 3)))


def test_shipped_weights_record_the_training_bodies_size():
    """The recorded size is the mean of the sampled training bodies: the limb lengths listed in
    body_proportions.json agree with it to a few percent (the targets' shoulders sit at the anatomical joints)."""
    spec = W.get_spec("mixste-cmu")
    recorded = trained_body_size(W.registry_dir() / spec.shipped)
    assert recorded is not None
    bodies = json.loads(SAMPLED_BODIES.read_text())["bodies"]
    listed = np.mean([sum(b["lengths"][f"{a}-{c}"] for a, c in LIMB_BONES) for b in bodies])
    assert recorded == pytest.approx(listed, rel=0.03)


def test_unrecorded_or_implausible_sizes_are_ignored(tmp_path):
    authors = write_mixste(tmp_path / "best_epoch_test.bin")
    assert trained_body_size(authors) is None  # the authors' checkpoints keep their own size
    net, _ = load_mixste(authors)
    for value, expected in (("2.7", 2.7), ("27", None), ("-1", None), ("tall", None), (None, None)):
        path = tmp_path / f"own_{value}.safetensors"
        metadata = {"num_heads": "8"} | ({BODY_SIZE_KEY: value} if value is not None else {})
        save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(path), metadata=metadata)
        assert trained_body_size(path) == expected
    (tmp_path / "broken.safetensors").write_bytes(b"not a safetensors file")
    assert trained_body_size(tmp_path / "broken.safetensors") is None


def test_lifted_pose_takes_the_recorded_size_and_unrecorded_weights_keep_theirs(tmp_path):
    """The same network, with and without the record, on a real clip: the record sets the lifted body's size and
    nothing else (the two poses differ by that one scale about the root)."""
    net, _ = load_mixste(write_mixste(tmp_path / "best_epoch_test.bin"))
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    plain, sized = tmp_path / "plain.safetensors", tmp_path / "sized.safetensors"
    save_file(state, str(plain), metadata={"num_heads": "8"})
    save_file(state, str(sized), metadata={"num_heads": "8", BODY_SIZE_KEY: "2.6"})
    with safe_open(str(sized), "pt") as f:
        assert f.metadata()[BODY_SIZE_KEY] == "2.6"
    info = probe(video(CLIP))
    clip = Clip(info, detect(iter_frames(video(CLIP), info=info), info), lambda: iter_frames(video(CLIP), info=info))
    own = LifterModel("mixste", ModelSettings(weights=plain)).lift(clip).pose_3d
    set_ = LifterModel("mixste", ModelSettings(weights=sized)).lift(clip).pose_3d
    assert limb_size(set_) == pytest.approx(2.6, rel=1e-6)
    np.testing.assert_allclose(set_, own * (2.6 / limb_size(own)), rtol=1e-6, atol=1e-9)
