import numpy as np
import pytest

from mocap_cli.core.rotations import (
    euler_from_matrix,
    matrix_from_euler,
    quat_apply,
    quat_between,
    quat_continuous,
    quat_from_matrix,
    quat_from_rotvec,
    quat_mul,
    quat_normalize,
    quat_slerp,
    quat_to_matrix,
    quat_to_rotvec,
)

RNG = np.random.default_rng(7)
Q = quat_normalize(RNG.normal(size=(500, 4)))


def test_matrix_round_trip_and_action():
    m = quat_to_matrix(Q)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0)
    q2 = quat_from_matrix(m)
    assert np.allclose(np.abs(np.sum(q2 * Q, -1)), 1.0, atol=1e-12)
    v = RNG.normal(size=(500, 3))
    assert np.allclose(quat_apply(Q, v), np.einsum("nij,nj->ni", m, v), atol=1e-12)


def test_composition_order_is_b_then_a():
    a, b = Q[:250], Q[250:]
    v = RNG.normal(size=(250, 3))
    assert np.allclose(quat_apply(quat_mul(a, b), v), quat_apply(a, quat_apply(b, v)), atol=1e-12)


def test_known_rotation_about_y():
    q = quat_from_rotvec(np.array([0.0, np.pi / 2, 0.0]))
    assert np.allclose(quat_apply(q, np.array([0.0, 0.0, 1.0])), [1.0, 0.0, 0.0], atol=1e-12)


def test_rotvec_round_trip_including_small_angles():
    v = np.concatenate([RNG.normal(size=(100, 3)), 1e-10 * RNG.normal(size=(5, 3))])
    v = v / np.maximum(1.0, np.linalg.norm(v, axis=-1, keepdims=True) / 3.0)  # angles below pi
    assert np.allclose(quat_to_rotvec(quat_from_rotvec(v)), v, atol=1e-9)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "ZYX", "YXZ", "XZY", "YZX"])
def test_euler_round_trip(order):
    m = quat_to_matrix(Q)
    assert np.allclose(matrix_from_euler(euler_from_matrix(m, order), order), m, atol=1e-9)


def test_bvh_zxy_means_rz_rx_ry():
    a = np.array([0.3, -0.2, 0.5])
    rz = quat_to_matrix(quat_from_rotvec(np.array([0, 0, a[0]])))
    rx = quat_to_matrix(quat_from_rotvec(np.array([a[1], 0, 0])))
    ry = quat_to_matrix(quat_from_rotvec(np.array([0, a[2], 0])))
    assert np.allclose(matrix_from_euler(a, "ZXY"), rz @ rx @ ry)


def test_between_maps_directions_including_opposite():
    u, v = RNG.normal(size=(200, 3)), RNG.normal(size=(200, 3))
    u[0], v[0] = [1, 0, 0], [-1, 0, 0]
    r = quat_apply(quat_between(u, v), u)
    assert np.allclose(r / np.linalg.norm(r, axis=-1, keepdims=True), v / np.linalg.norm(v, axis=-1, keepdims=True))


def test_slerp_endpoints_midpoint_and_continuity():
    a, b = Q[:100], Q[100:200]
    assert np.allclose(np.abs(np.sum(quat_slerp(a, b, 0.0) * a, -1)), 1)
    assert np.allclose(np.abs(np.sum(quat_slerp(a, b, 1.0) * b, -1)), 1)
    mid = quat_slerp(a, b, 0.5)
    # equal angular distance to both ends
    da = np.abs(np.sum(mid * a, -1))
    db = np.abs(np.sum(mid * b, -1))
    assert np.allclose(da, db)
    seq = Q[:50] * np.where(RNG.random((50, 1)) < 0.5, -1.0, 1.0)
    seq = quat_slerp(seq[:1], seq[1:2], np.linspace(0, 1, 50)[:, None]) * np.where(RNG.random((50, 1)) < 0.5, -1, 1)
    cont = quat_continuous(seq)
    assert np.all(np.sum(cont[1:] * cont[:-1], -1) > 0)
