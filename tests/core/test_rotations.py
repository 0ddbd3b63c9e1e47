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


# The conversions are scipy's; these pin them to the explicit textbook formulas (and to our conventions:
# x, y, z, w order; intrinsic Euler orders; w >= 0 from matrices; sign of q0 kept by slerp) to 1e-9.
def _hamilton(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (x1, y1, z1, w1), (x2, y2, z2, w2) = np.moveaxis(a, -1, 0), np.moveaxis(b, -1, 0)
    return np.stack(
        [
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        ],
        axis=-1,
    )


def _textbook_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = np.moveaxis(q, -1, 0)
    rows = [
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ]
    return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def _axis_rotation(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s, o, z = np.cos(angle), np.sin(angle), np.ones_like(angle), np.zeros_like(angle)
    m = {"X": [o, z, z, z, c, -s, z, s, c], "Y": [c, z, s, z, o, z, -s, z, c], "Z": [c, -s, z, s, c, z, z, z, o]}
    return np.stack(m[axis], axis=-1).reshape(angle.shape + (3, 3))


def test_product_apply_and_matrix_match_explicit_algebra():
    a, b = Q[:250].reshape(25, 10, 4), Q[250:].reshape(25, 10, 4)
    np.testing.assert_allclose(quat_mul(a, b), _hamilton(a, b), atol=1e-12)
    np.testing.assert_allclose(quat_mul(a, b[0]), _hamilton(a, b[0]), atol=1e-12)  # broadcasting
    v = RNG.normal(size=(25, 10, 3))
    pure = np.concatenate([v, np.zeros((25, 10, 1))], axis=-1)
    rotated = _hamilton(_hamilton(a, pure), a * np.array([-1.0, -1, -1, 1]))[..., :3]  # q v q*
    np.testing.assert_allclose(quat_apply(a, v), rotated, atol=1e-12)
    np.testing.assert_allclose(
        quat_apply(a[:, :1], v), np.einsum("nkij,nkj->nki", _textbook_matrix(a[:, :1]), v), atol=1e-12
    )
    np.testing.assert_allclose(quat_to_matrix(3.0 * a), _textbook_matrix(a), atol=1e-12)  # normalised first


def test_matrix_to_quaternion_has_nonnegative_w_and_inverts_the_matrix():
    q = quat_from_matrix(_textbook_matrix(Q))
    assert np.all(q[:, 3] >= 0)
    np.testing.assert_allclose(q, Q * np.sign(Q[:, 3:4]), atol=1e-12)
    half_turns = quat_from_matrix(np.stack([np.diag([1.0, -1, -1]), np.diag([-1.0, 1, -1]), np.diag([-1.0, -1, 1])]))
    np.testing.assert_allclose(np.abs(half_turns), np.eye(4)[:3], atol=1e-12)


def test_rotation_vectors_match_axis_angle_formula():
    v = np.concatenate([RNG.normal(size=(200, 3)), 1e-10 * RNG.normal(size=(3, 3)), np.zeros((1, 3))])
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    axis = v / np.maximum(angle, 1e-300)
    expected = np.concatenate([axis * np.sin(angle / 2), np.cos(angle / 2)], axis=-1)
    expected[-1] = [0, 0, 0, 1]
    np.testing.assert_allclose(quat_from_rotvec(v), expected, atol=1e-12)
    # Back: angle in [0, pi], from either sign of the quaternion.
    back = quat_to_rotvec(-Q)
    w = np.abs(Q[:, 3:4])
    expected_back = 2 * np.arccos(np.clip(w, 0, 1)) * (Q[:, :3] * np.sign(Q[:, 3:4])) / np.sqrt(1 - w**2)
    np.testing.assert_allclose(back, expected_back, atol=1e-9)


@pytest.mark.parametrize("order", ["ZXY", "XYZ", "ZYX", "YXZ", "XZY", "YZX"])
def test_euler_matches_products_of_axis_rotations(order):
    angles = RNG.uniform(-np.pi, np.pi, size=(300, 3)) * np.array([1.0, 0.5, 1.0])
    expected = (
        _axis_rotation(order[0], angles[:, 0])
        @ _axis_rotation(order[1], angles[:, 1])
        @ _axis_rotation(order[2], angles[:, 2])
    )
    np.testing.assert_allclose(matrix_from_euler(angles, order), expected, atol=1e-12)
    np.testing.assert_allclose(euler_from_matrix(expected, order), angles, atol=1e-9)
    locked = angles[:5].copy()
    locked[:, 1] = np.pi / 2
    m = matrix_from_euler(locked, order)
    got = euler_from_matrix(m, order)
    assert np.all(got[:, 2] == 0.0)  # gimbal lock: the whole turn goes to the first angle
    np.testing.assert_allclose(matrix_from_euler(got, order), m, atol=1e-9)


def test_slerp_matches_the_sine_formula_and_keeps_q0s_sign():
    a, b = Q[:200], Q[200:400]
    t = RNG.random((200, 1))
    b_near = np.where(np.sum(a * b, -1, keepdims=True) < 0, -b, b)  # shorter arc
    theta = np.arccos(np.clip(np.sum(a * b_near, -1, keepdims=True), -1, 1))
    expected = (np.sin((1 - t) * theta) * a + np.sin(t * theta) * b_near) / np.sin(theta)
    np.testing.assert_allclose(quat_slerp(a, b, t), expected, atol=1e-9)
    np.testing.assert_allclose(quat_slerp(a, b, t[:, 0]), expected, atol=1e-9)
    np.testing.assert_allclose(quat_slerp(a, a, 0.3), a, atol=1e-12)
