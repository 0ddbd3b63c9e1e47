"""Rotation utilities on numpy arrays: scipy's ``Rotation`` for the conversions, plus what it lacks.

One convention everywhere in mocap (the same as roma, glTF and scipy): quaternions are ``(..., 4)``
arrays in **x, y, z, w** order, unit norm, acting on column vectors; ``quat_mul(a, b)`` applies ``b``
first, then ``a``. Rotation matrices are ``(..., 3, 3)``; rotation vectors (axis * angle, radians) are
``(..., 3)``. All functions broadcast over leading axes (scipy's ``Rotation`` takes N-D batches but not
numpy broadcasting, so the wrappers broadcast first).

Conversions (matrix, rotation vector, Euler angles in any order), rotating vectors and slerp are scipy's.
Kept here, small and batched, is only what scipy lacks: the quaternion product that leaves the identity
exact (scipy renormalises every composition, see ``quat_mul``), the shortest arc between many pairs of
directions (``align_vectors`` solves one pair at a time), an orthonormal frame from two directions, and
sign continuity over time (q and -q are the same rotation to scipy, not to a filter).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.spatial.transform import Rotation

_EPS = 1e-12


def _writable(x: np.ndarray) -> np.ndarray:
    """float64 array scipy accepts (its Cython code rejects read-only views such as ``np.broadcast_to``)."""
    x = np.asarray(x, dtype=np.float64)
    return x if x.flags.writeable else x.copy()


def _broadcast_quats(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shape = np.broadcast_shapes(np.shape(a), np.shape(b))
    return np.broadcast_to(a, shape), np.broadcast_to(b, shape)


def _rotation(q: np.ndarray) -> Rotation:
    return Rotation.from_quat(_writable(q))


def _unit_rotation(q: np.ndarray) -> Rotation:
    """Trusts q to be unit (the module's convention) and skips scipy's renormalisation."""
    return Rotation(_writable(q), normalize=False, copy=False)


def quat_identity(shape: tuple[int, ...] = ()) -> np.ndarray:
    """Identity quaternions ``shape + (4,)``."""
    q = np.zeros(shape + (4,))
    q[..., 3] = 1.0
    return q


def quat_normalize(q: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(..., 4)``; a zero quaternion stays zero."""
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), _EPS)


def quat_conj(q: np.ndarray) -> np.ndarray:
    """Conjugate ``(..., 4)``: the inverse rotation of a unit quaternion."""
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of ``(..., 4)`` quaternions (rotate by ``b``, then by ``a``).

    Written out rather than scipy's ``Rotation.__mul__``, which renormalises every product: composing
    with the identity must return the rotations bit for bit (renaming-only rig presets rely on it)."""
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
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    shape = np.broadcast_shapes(q.shape[:-1], v.shape[:-1])
    return _unit_rotation(np.broadcast_to(q, shape + (4,))).apply(_writable(np.broadcast_to(v, shape + (3,))))


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """Rotation matrices ``(..., 3, 3)`` of quaternions ``(..., 4)`` (normalised first)."""
    return _rotation(q).as_matrix()


def quat_from_matrix(m: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` with w >= 0 of rotation matrices ``(..., 3, 3)``.

    Markley's method straight on the given matrix (``assume_valid``): callers pass rotations, and skipping
    scipy's orthogonalising SVD keeps the result identical to the matrix's own entries. A matrix that is no
    rotation at all (a frame from a zero-length vector) gives some unit quaternion, not an error."""
    q = Rotation.from_matrix(_writable(m), assume_valid=True).as_quat()
    return np.where(q[..., 3:4] < 0, -q, q)


def quat_from_rotvec(v: np.ndarray) -> np.ndarray:
    """Quaternions ``(..., 4)`` of rotation vectors ``(..., 3)`` (w < 0 for angles above pi)."""
    return Rotation.from_rotvec(_writable(v)).as_quat()


def quat_to_rotvec(q: np.ndarray) -> np.ndarray:
    """Rotation vectors ``(..., 3)``, angle in [0, pi], of quaternions ``(..., 4)``."""
    return _rotation(q).as_rotvec()


def quat_between(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Smallest rotation ``(..., 4)`` taking direction ``u`` onto direction ``v`` (both ``(..., 3)``, any length)."""
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
    """Spherical interpolation ``(..., 4)`` from ``q0`` to ``q1`` along the shorter arc; ``t`` broadcasts
    against ``q[..., :1]`` (a trailing axis of length 1 is added when missing). The result keeps q0's sign."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim and t.shape[-1] != 1:
        t = t[..., None]
    q0, q1 = _broadcast_quats(q0, q1)
    start = _rotation(q0)
    step = (start.inv() * _rotation(q1)).as_rotvec()  # angle <= pi: the shorter arc
    return (start * Rotation.from_rotvec(step * t)).as_quat()


def quat_continuous(q: np.ndarray, axis: int = 0) -> np.ndarray:
    """Flip signs along ``axis`` (time) so consecutive quaternions lie in the same hemisphere.

    q and -q are the same rotation, but filters and interpolators need a continuous sequence."""
    q = np.moveaxis(np.array(q, dtype=np.float64, copy=True), axis, 0)
    for i in range(1, q.shape[0]):
        flip = np.sum(q[i] * q[i - 1], axis=-1, keepdims=True) < 0
        q[i] = np.where(flip, -q[i], q[i])
    return np.moveaxis(q, 0, axis)


def matrix_from_euler(angles: np.ndarray, order: str) -> np.ndarray:
    """Matrices ``(..., 3, 3)`` of intrinsic Euler angles ``(..., 3)`` (radians): ``order='ZXY'`` means
    R = Rz(a0) @ Rx(a1) @ Ry(a2), which is how BVH channels ``Zrotation Xrotation Yrotation`` are applied."""
    return Rotation.from_euler(order.upper(), _writable(angles)).as_matrix()


def euler_from_matrix(m: np.ndarray, order: str) -> np.ndarray:
    """Inverse of :func:`matrix_from_euler` for any of the six Tait-Bryan orders: ``(..., 3)`` radians,
    the middle angle in [-pi/2, pi/2]; at gimbal lock the third angle is 0."""
    rotation = Rotation.from_matrix(_writable(m), assume_valid=True)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Gimbal lock detected")
        return rotation.as_euler(order.upper())
