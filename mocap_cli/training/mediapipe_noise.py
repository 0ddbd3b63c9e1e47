"""How MediaPipe's 2D keypoints (as our lifters receive them) differ from projected ground-truth joints.

A lifter trained on clean projections of mocap joints sees something else at run time: MediaPipe's landmarks
are not joint centres (its hips sit lower and wider than femoral heads, its shoulders higher...), and they
jitter, drift and drop out. We fit both effects on the public rendered clips, where MediaPipe's output and
the exact joints exist side by side (``scripts/fit_mediapipe_noise.py`` writes ``mediapipe_noise.json``):

(a) the systematic offset per H36M joint, a constant 3D vector in the body's local frame
    (``body_frames``: origin pelvis, x from right to left hip, y up the trunk, z forward), fitted by linear
    least squares on the pixel residual through the projection's Jacobian;
(b) the remaining error, in metres at the joint's depth (pixels × depth / focal, so it does not depend on
    the camera): per joint and image axis a robust spread, a lag-1 temporal correlation (AR(1) model),
    and a gross-error rate and size; plus, per joint, the fraction of frames whose confidence falls below
    the adapter's threshold and the mean length of those runs (the adapter interpolates them over time).

``MediaPipeNoise.corrupt`` applies the fitted model to projected training joints.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mocap_cli.capture.keypoints import H36M

NOISE_FILE = Path(__file__).with_name("mediapipe_noise.json")


def body_frames(joints: np.ndarray) -> np.ndarray:
    """(F, 17, 3) H36M joints → (F, 3, 3) rotations whose columns are the body's local axes: x = right hip →
    left hip, y = pelvis → thorax made orthogonal to x, z = x × y. Fit and use apply it the same way."""
    x = joints[:, H36M["left_hip"]] - joints[:, H36M["right_hip"]]
    x /= np.linalg.norm(x, axis=-1, keepdims=True) + 1e-9
    up = joints[:, H36M["thorax"]] - joints[:, H36M["pelvis"]]
    y = up - (up * x).sum(-1, keepdims=True) * x
    y /= np.linalg.norm(y, axis=-1, keepdims=True) + 1e-9
    z = np.cross(x, y)
    return np.stack([x, y, z], axis=-1)


def project(points: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Camera-frame points (..., 3) (x right, y down, z forward) → pixels (..., 2) through intrinsics ``k`` (3, 3)."""
    z = np.maximum(points[..., 2:3], 1e-6)
    return points[..., :2] / z * np.array([k[0, 0], k[1, 1]]) + np.array([k[0, 2], k[1, 2]])


@dataclass(frozen=True)
class FitClip:
    """One rendered clip for fitting: exact camera-frame joints, intrinsics, MediaPipe's H36M keypoints."""

    name: str
    joints_cam: np.ndarray  # (F, 17, 3) metres, y down
    k: np.ndarray  # (3, 3)
    keypoints: np.ndarray  # (F, 17, 2) pixels from keypoints.mediapipe_to_h36m (NaN where not detected)
    confidence: np.ndarray  # (F, 17)


@dataclass(frozen=True)
class MediaPipeNoise:
    """Fitted model of MediaPipe's keypoints relative to true joints (see the module docstring)."""

    offsets: np.ndarray  # (17, 3) metres, body-local frame
    sigma: np.ndarray  # (17, 2) metres at the joint's depth, image x / y, robust (1.4826 · MAD)
    rho: np.ndarray  # (17, 2) lag-1 correlation of the residual at the fit clips' 30 fps
    outlier_rate: np.ndarray  # (17,) fraction of frames with an error beyond 4 sigma
    outlier_scale: np.ndarray  # (17,) RMS size of those errors, metres
    dropout_rate: np.ndarray  # (17,) fraction of frames below the confidence threshold
    dropout_length: np.ndarray  # (17,) mean run length of those frames
    threshold: float
    fitted_on: tuple[str, ...]

    def to_json(self) -> str:
        data = {k: (v.round(6).tolist() if isinstance(v, np.ndarray) else v) for k, v in asdict(self).items()}
        data["fitted_on"] = list(self.fitted_on)
        return json.dumps(data, indent=1)

    @classmethod
    def from_json(cls, text: str) -> MediaPipeNoise:
        d = json.loads(text)
        arrays = {
            k: np.asarray(d[k], dtype=np.float64)
            for k in ("offsets", "sigma", "rho", "outlier_rate", "outlier_scale", "dropout_rate", "dropout_length")
        }
        return cls(**arrays, threshold=float(d["threshold"]), fitted_on=tuple(d["fitted_on"]))

    @classmethod
    def load(cls, path: Path = NOISE_FILE) -> MediaPipeNoise:
        return cls.from_json(Path(path).read_text(encoding="utf-8"))

    def offset_joints(self, joints_cam: np.ndarray, scale: float = 1.0) -> np.ndarray:
        """(F, 17, 3) true camera-frame joints → where MediaPipe's joints sit (offset in the body frame)."""
        return joints_cam + np.einsum("fab,jb->fja", body_frames(joints_cam), scale * self.offsets)

    def sample_errors(
        self, rng: np.random.Generator, count: int, frames: int, gain: np.ndarray | float = 1.0
    ) -> np.ndarray:
        """(count, frames, 17, 2) random errors in metres at the joints' depth: AR(1) per joint and axis with
        the fitted spread and correlation, plus gross errors. ``gain`` (count,) scales each sequence."""
        white = rng.standard_normal((frames, count, 17, 2))
        out = np.empty_like(white)
        out[0] = white[0]
        innovation = np.sqrt(1 - self.rho**2)
        for t in range(1, frames):
            out[t] = self.rho * out[t - 1] + innovation * white[t]
        out = out.transpose(1, 0, 2, 3) * self.sigma
        gross = rng.random((count, frames, 17)) < self.outlier_rate
        size = self.outlier_scale / np.sqrt(2)  # RMS over both axes → per axis
        out += np.where(gross[..., None], rng.standard_normal(out.shape) * size[:, None], 0.0)
        return out * np.reshape(gain, (-1, 1, 1, 1))

    def dropout_mask(self, rng: np.random.Generator, count: int, frames: int) -> np.ndarray:
        """(count, frames, 17) True where a joint is 'not confident': runs with exponential lengths of the fitted
        mean ``L``, starting with probability ``rate / (L (1 - rate))`` per frame (an on/off renewal process
        whose on-fraction is the fitted rate), and already under way at frame 0 with probability ``rate``."""
        mask = np.zeros((count, frames, 17), dtype=bool)
        length = np.maximum(self.dropout_length, 1.0)
        rate = np.clip(self.dropout_rate, 0.0, 0.9)
        starts = rng.random((count, frames, 17)) < rate / (length * (1 - rate))
        starts[:, 0] = rng.random((count, 17)) < rate
        for b, s, j in zip(*np.nonzero(starts)):
            mask[b, s : s + max(1, round(rng.exponential(length[j]))), j] = True
        return mask


def _runs(mask: np.ndarray) -> list[int]:
    lengths, n = [], 0
    for m in mask:
        if m:
            n += 1
        elif n:
            lengths.append(n)
            n = 0
    if n:
        lengths.append(n)
    return lengths


def fit_noise(clips: list[FitClip], threshold: float) -> MediaPipeNoise:
    """Fit offsets and error statistics on rendered clips (see the module docstring)."""
    a_rows: list[list[np.ndarray]] = [[] for _ in range(17)]
    r_rows: list[list[np.ndarray]] = [[] for _ in range(17)]
    for c in clips:
        ok = np.isfinite(c.keypoints).all(-1) & (c.confidence >= threshold)
        frames = body_frames(c.joints_cam)
        x, y, z = (c.joints_cam[..., i] for i in range(3))
        fx, fy = c.k[0, 0], c.k[1, 1]
        jac = np.zeros(c.joints_cam.shape[:2] + (2, 3))  # (F, 17, 2, 3) d pixel / d point
        jac[..., 0, 0], jac[..., 0, 2] = fx / z, -fx * x / z**2
        jac[..., 1, 1], jac[..., 1, 2] = fy / z, -fy * y / z**2
        a = jac @ frames[:, None]  # d pixel / d local offset
        r = c.keypoints - project(c.joints_cam, c.k)
        for j in range(17):
            a_rows[j].append(a[ok[:, j], j].reshape(-1, 3))
            r_rows[j].append(r[ok[:, j], j].reshape(-1))
    offsets = np.zeros((17, 3))
    for j in range(17):
        a_all, r_all = np.concatenate(a_rows[j]), np.concatenate(r_rows[j])
        # Robust: one least-squares pass, then again without the worst 5 % (MediaPipe's gross errors).
        d = np.linalg.lstsq(a_all, r_all, rcond=None)[0]
        res = np.abs(a_all @ d - r_all).reshape(-1, 2).max(-1).repeat(2)
        keep = res <= np.quantile(res, 0.95)
        offsets[j] = np.linalg.lstsq(a_all[keep], r_all[keep], rcond=None)[0]

    model = MediaPipeNoise(
        offsets,
        np.zeros((17, 2)),
        np.zeros((17, 2)),
        np.zeros(17),
        np.zeros(17),
        np.zeros(17),
        np.zeros(17),
        threshold,
        tuple(c.name for c in clips),
    )
    residuals, lag_pairs, low, runs = [], [], [], []
    for c in clips:
        moved = model.offset_joints(c.joints_cam)
        res = (c.keypoints - project(moved, c.k)) * c.joints_cam[..., 2:3] / np.array([c.k[0, 0], c.k[1, 1]])
        ok = np.isfinite(res).all(-1) & (c.confidence >= threshold)
        res = np.where(ok[..., None], res, np.nan)
        residuals.append(res)
        lag_pairs.append((res[:-1], res[1:]))
        low.append(c.confidence < threshold)
        runs.append([_runs(c.confidence[:, j] < threshold) for j in range(17)])
    all_res = np.concatenate(residuals)  # (N, 17, 2)
    med = np.nanmedian(all_res, axis=0)
    sigma = 1.4826 * np.nanmedian(np.abs(all_res - med), axis=0)
    big = np.abs(all_res - med) > 4 * sigma
    big_any = big.any(-1) & np.isfinite(all_res).all(-1)
    valid = np.isfinite(all_res).all(-1)
    outlier_rate = big_any.sum(0) / np.maximum(valid.sum(0), 1)
    outlier_scale = np.array(
        [
            np.sqrt(np.nanmean(((all_res - med)[big_any[:, j], j] ** 2).sum(-1))) if big_any[:, j].any() else 0.0
            for j in range(17)
        ]
    )
    prev = np.concatenate([p for p, _ in lag_pairs]) - med
    nxt = np.concatenate([n for _, n in lag_pairs]) - med
    inlier = np.isfinite(prev) & np.isfinite(nxt) & (np.abs(prev) < 4 * sigma) & (np.abs(nxt) < 4 * sigma)
    rho = np.clip(
        np.where(inlier, prev * nxt, 0).sum(0)
        / np.maximum(np.sqrt(np.where(inlier, prev**2, 0).sum(0) * np.where(inlier, nxt**2, 0).sum(0)), 1e-12),
        0.0,
        0.98,
    )
    low_all = np.concatenate(low)
    dropout_rate = low_all.mean(0)
    dropout_length = np.array(
        [np.mean([n for r in runs for n in r[j]]) if any(r[j] for r in runs) else 1.0 for j in range(17)]
    )
    return MediaPipeNoise(
        offsets,
        sigma,
        rho,
        outlier_rate,
        outlier_scale,
        dropout_rate,
        dropout_length,
        threshold,
        tuple(c.name for c in clips),
    )
