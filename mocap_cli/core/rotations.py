"""Rotation utilities on numpy arrays.

One convention everywhere in mocap (the same as roma and glTF):
quaternions are ``(..., 4)`` arrays in **x, y, z, w** order, unit norm, acting on column vectors;
``quat_mul(a, b)`` applies ``b`` first, then ``a``. Rotation matrices are ``(..., 3, 3)``;
rotation vectors (axis * angle, radians) are ``(..., 3)``. All functions broadcast over leading axes.
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-12


def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    q = np.zeros(shape + (4,))
    q[..., 3] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def quat_conj(q: np.ndarray) -> np.ndarray:
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (rotate by ``b``, then by ``a``)."""
    ax, ay, az, aw = np.moveaxis(a, -1, 0)
    bx, by, bz, bw = np.moveaxis(b, -1, 0)
    return np.stack(
        [
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
            aw * bw - ax * bx - ay * by - az * bz,
        ],
        axis=-1,
    )


def quat_apply(q: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Rotate vectors ``v (..., 3)`` by quaternions ``q (..., 4)``."""
    xyz = q[..., :3]
    t = 2.0 * np.cross(xyz, v)
    return v + q[..., 3:4] * t + np.cross(xyz, t)


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    x, y, z, w = np.moveaxis(quat_normalize(q), -1, 0)
    m = np.stack(
        [
            1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
            2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
            2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Quaternion of a rotation matrix (Shepperd's method, stable for every angle), w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    batch = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    tr = np.trace(m, axis1=-2, axis2=-1)
    diag = np.diagonal(m, axis1=-2, axis2=-1)
    # Pick the largest of (w, x, y, z) to divide by.
    cand = np.concatenate([tr[:, None], diag], axis=1)
    k = np.argmax(cand, axis=1)
    q = np.empty((m.shape[0], 4))
    for case in range(4):
        idx = k == case
        if not np.any(idx):
            continue
        r = m[idx]
        if case == 0:
            s = np.sqrt(1.0 + tr[idx]) * 2
            q[idx] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                               (r[:, 1, 0] - r[:, 0, 1]) / s, 0.25 * s], axis=-1)
        elif case == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            q[idx] = np.stack([0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                               (r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 2, 1] - r[:, 1, 2]) / s], axis=-1)
        elif case == 2:
            s = np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2
            q[idx] = np.stack([(r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s,
                               (r[:, 1, 2] + r[:, 2, 1]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s], axis=-1)
        else:
            s = np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2
            q[idx] = np.stack([(r[:, 0, 2] + r[:, 2, 0]) / s, (r[:, 1, 2] + r[:, 2, 1]) / s,
                               0.25 * s, (r[:, 1, 0] - r[:, 0, 1]) / s], axis=-1)
    q = quat_normalize(q)
    q = np.where(q[:, 3:4] < 0, -q, q)
    return q.reshape(batch + (4,))


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    angle = np.linalg.norm(v, axis=-1, keepdims=True)
    half = 0.5 * angle
    # sin(half)/angle with its limit 0.5 at zero angle.
    scale = np.where(angle > 1e-8, np.sin(half) / np.maximum(angle, 1e-300), 0.5 - angle**2 / 48.0)
    return np.concatenate([v * scale, np.cos(half)], axis=-1)


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    q = quat_normalize(q)
    q = np.where(q[..., 3:4] < 0, -q, q)
    s = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, q[..., 3:4])
    scale = np.where(s > 1e-8, angle / np.maximum(s, 1e-300), 2.0)
    return q[..., :3] * scale


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction ``u`` onto direction ``v`` (both ``(..., 3)``, any length)."""
    u = u / np.maximum(np.linalg.norm(u, axis=-1, keepdims=True), _EPS)
    v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), _EPS)
    d = np.sum(u * v, axis=-1, keepdims=True)
    axis = np.cross(u, v)
    q = np.concatenate([axis, 1.0 + d], axis=-1)
    # Opposite directions: any axis perpendicular to u, angle pi.
    opposite = d[..., 0] < -1.0 + 1e-9
    if np.any(opposite):
        uo = u[opposite]
        helper = np.where(np.abs(uo[:, :1]) < 0.9, np.array([1.0, 0, 0]), np.array([0, 1.0, 0]))
        perp = np.cross(uo, helper)
        q[opposite] = np.concatenate([perp, np.zeros((len(uo), 1))], axis=-1)
    return quat_normalize(q)


def frame_from_vectors(primary: np.ndarray, secondary: np.ndarray) -> np.ndarray:
    """Orthonormal frame (..., 3, 3) whose columns are primary, the part of secondary orthogonal to it,
    and their cross product. Aligning two such frames gives the rotation that maps one pair of
    directions onto another (exactly on the primary, as closely as possible on the secondary)."""
    a = primary / np.maximum(np.linalg.norm(primary, axis=-1, keepdims=True), _EPS)
    b = secondary - np.sum(secondary * a, axis=-1, keepdims=True) * a
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), _EPS)
    c = np.cross(a, b)
    return np.stack([a, b, c], axis=-1)


def quat_slerp(q0: np.ndarray, q1: np.ndarray, t: np.ndarray | float) -> np.ndarray:
    """Spherical interpolation along the shorter arc; ``t`` broadcasts against ``q[..., :1]``."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim and t.shape[-1] != 1:
        t = t[..., None]
    d = np.sum(q0 * q1, axis=-1, keepdims=True)
    q1 = np.where(d < 0, -q1, q1)
    d = np.abs(d)
    theta = np.arccos(np.clip(d, -1.0, 1.0))
    sin_t = np.sin(theta)
    small = sin_t < 1e-6
    w0 = np.where(small, 1.0 - t, np.sin((1.0 - t) * theta) / np.where(small, 1.0, sin_t))
    w1 = np.where(small, t, np.sin(t * theta) / np.where(small, 1.0, sin_t))
    return quat_normalize(w0 * q0 + w1 * q1)


def quat_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.

    q and -q are the same rotation, but filters and interpolators need a continuous sequence."""
    q = np.moveaxis(np.array(q, dtype=np.float64, copy=True), axis, 0)
    for i in range(1, q.shape[0]):
        flip = np.sum(q[i] * q[i - 1], axis=-1, keepdims=True) < 0
        q[i] = np.where(flip, -q[i], q[i])
    return np.moveaxis(q, 0, axis)


_AXIS_INDEX = {"X": 0, "Y": 1, "Z": 2}


def _axis_matrix(axis: str, angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    o, z = np.ones_like(angle), np.zeros_like(angle)
    if axis == "X":
        m = [o, z, z, z, c, -s, z, s, c]
    elif axis == "Y":
        m = [c, z, s, z, o, z, -s, z, c]
    else:
        m = [c, -s, z, s, c, z, z, z, o]
    return np.stack(m, axis=-1).reshape(angle.shape + (3, 3))


def matrix_from_euler(angles: np.ndarray, order: str) -> np.ndarray:
    """Intrinsic Euler angles (radians): ``order='ZXY'`` means R = Rz(a0) @ Rx(a1) @ Ry(a2),
    which is how BVH channels ``Zrotation Xrotation Yrotation`` are applied."""
    m = _axis_matrix(order[0], angles[..., 0])
    for i in (1, 2):
        m = m @ _axis_matrix(order[i], angles[..., i])
    return m


def euler_from_matrix(m: np.ndarray, order: str) -> np.ndarray:
    """Inverse of :func:`matrix_from_euler` for any of the six Tait-Bryan orders (radians)."""
    i, j, k = (_AXIS_INDEX[a] for a in order)
    # Sign of the permutation decides the signs in the closed form.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    sy = np.clip(sign * m[..., i, k], -1.0, 1.0)
    b = np.arcsin(sy)
    cos_b = np.sqrt(np.maximum(1.0 - sy * sy, 0.0))
    regular = cos_b > 1e-6
    a = np.where(regular, np.arctan2(-sign * m[..., j, k], m[..., k, k]),
                 np.arctan2(sign * m[..., k, j], m[..., j, j]))
    c = np.where(regular, np.arctan2(-sign * m[..., i, j], m[..., i, i]), 0.0)
    return np.stack([a, b, c], axis=-1)
