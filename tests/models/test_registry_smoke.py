"""One smoke check over every entry of the model registry (as timm's tests iterate theirs).

Each ``--model`` name, with no weights installed, either builds and runs on a tiny real clip (a model that
needs nothing downloaded) or refuses in one sentence naming the weights it lacks and the import command; a
model that needs weights then builds from a small random-weight checkpoint in its authors' file layout and
runs on the same clip. A model added to the registry is picked up here without editing this file; if it
needs weights, the test fails until a checkpoint writer for it is added to ``TEST_CHECKPOINTS``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch

from conftest import video
from lifter_checkpoints import write_mixste, write_strided
from mesh_helpers import hybrik_layout_checkpoint, small_int_file, small_maed_file
from mocap_cli.capture.detect import detect
from mocap_cli.capture.video import iter_frames, probe
from mocap_cli.errors import MocapError
from mocap_cli.models.base import Clip, ModelSettings
from mocap_cli.models.registry import create_model, registry
from mocap_cli.weights.registry import get_spec

TINY = "street_walk_5frames.mp4"  # 5 frames at 5 fps

# A writer per registry entry that needs weights: (folder) -> a checkpoint in the authors' layout.
TEST_CHECKPOINTS: dict[str, Callable[[Path], Path]] = {
    "mixste": lambda folder: write_mixste(folder / "best_epoch_test.bin"),
    "strided": lambda folder: write_strided(folder / "no_refine_1_9999.pth"),
    "maed": lambda folder: small_maed_file(folder / "maed.pth.tar"),
    "int": lambda folder: small_int_file(folder / "int.pth.tar"),
    "unspat": lambda folder: hybrik_layout_checkpoint(
        folder / "pretrained_res34.pth", "paper_version_pretrained_res34", "paper24"
    ),
}


@pytest.fixture(autouse=True)
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No installed weights, no imported SMPL model, the repository's weights registry."""
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    torch.set_num_threads(2)
    return tmp_path / "home"


@pytest.fixture(scope="module")
def clip() -> Clip:
    path = video(TINY)
    info = probe(path)
    return Clip(info, detect(iter_frames(path), info), lambda: iter_frames(path))


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".") and "\n" not in message


def test_every_entry_is_covered() -> None:
    """The registry is not empty and every writer here belongs to a registry entry (no stale rows)."""
    names = set(registry())
    assert "mediapipe" in names and len(names) >= 2
    assert set(TEST_CHECKPOINTS) <= names


@pytest.mark.parametrize("name", sorted(registry()))
def test_entry_builds_and_runs_or_names_its_missing_weights(name: str, clip: Clip, tmp_path: Path) -> None:
    settings = ModelSettings(device="cpu", batch_size=4)
    try:
        model = create_model(name, settings)
    except MocapError as exc:
        message = str(exc)
        weights = get_spec(name)  # the registry's default weights for this model
        assert _one_sentence(message), message
        assert weights.name in message and f"mocap weights import {weights.name}" in message, message
        writer = TEST_CHECKPOINTS.get(name)
        assert writer is not None, (
            f"model {name} needs weights: add a test checkpoint writer for it to TEST_CHECKPOINTS"
        )
        model = create_model(name, ModelSettings(device="cpu", batch_size=4, weights=writer(tmp_path)))
    motion = model.estimate(clip)
    frames = len(clip.track.landmarks)
    assert motion.rotations.shape == (frames, motion.skeleton.num_joints, 4)
    assert np.isfinite(motion.rotations).all() and np.isfinite(motion.joints).all()
    assert np.allclose(np.linalg.norm(motion.rotations, axis=-1), 1.0, atol=1e-5)
    assert motion.fps == pytest.approx(float(clip.video.fps), rel=1e-6)
    assert motion.provenance.get("model") == name
