"""Aligning one point set onto another (Kabsch/Umeyama): the measure behind every MPJPE / PA-MPJPE number the
project reports (``benchmarks/accuracy.py``, the training fits and their tests), kept in one place so they agree."""

from __future__ import annotations

import numpy as np


def similarity_align(a: np.ndarray, b: np.ndarray, scale: bool = False) -> tuple[np.ndarray, float, np.ndarray]:
    """R (3, 3), s, t minimising |s R a + t - b| over points a, b (N, 3); s = 1 unless ``scale``."""
    ma, mb = a.mean(0), b.mean(0)
    a0, b0 = a - ma, b - mb
    u, sig, vt = np.linalg.svd(a0.T @ b0)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    r = (u @ fix @ vt).T
    s = float((sig * np.diag(fix)).sum() / (a0**2).sum()) if scale else 1.0
    return r, s, mb - s * r @ ma


def procrustes_errors(ours: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(F, J) distances after aligning each frame of ``ours`` (F, J, 3) onto ``truth`` by a similarity transform."""
    out = np.empty(ours.shape[:2])
    for f, (a, b) in enumerate(zip(ours, truth)):
        r, s, t = similarity_align(a, b, scale=True)
        out[f] = np.linalg.norm(s * a @ r.T + t - b, axis=-1)
    return out
