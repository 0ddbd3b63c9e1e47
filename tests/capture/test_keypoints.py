"""Keypoint layouts, MediaPipe → Human3.6M conversion on real detections vs ground truth, normalisation, gap filling."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.capture.keypoints import (
    H36M,
    H36M_LEFT,
    H36M_NAMES,
    H36M_PARENTS,
    H36M_RIGHT,
    MEDIAPIPE_NAMES,
    coco_to_h36m,
    denormalize_screen,
    fill_low_confidence,
    lifter_input,
    mediapipe_to_coco,
    mediapipe_to_h36m,
    normalize_screen,
)
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.windows import LEFT, RIGHT

DIRECT = ["right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
          "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist"]  # fmt: skip


def test_mediapipe_names_match_mediapipe() -> None:
    mp = pytest.importorskip("mediapipe")
    enum = mp.solutions.pose.PoseLandmark
    assert len(MEDIAPIPE_NAMES) == len(enum) == 33
    assert all(MEDIAPIPE_NAMES[m.value] == m.name.lower() for m in enum)


def test_h36m_layout_matches_specs_and_ground_truth() -> None:
    assert H36M_PARENTS == (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15)  # both specs
    assert list(H36M_LEFT) == LEFT == [4, 5, 6, 11, 12, 13] and list(H36M_RIGHT) == RIGHT == [1, 2, 3, 14, 15, 16]
    assert all(H36M_NAMES[i].startswith("left_") for i in H36M_LEFT)
    assert all(H36M_NAMES[i].startswith("right_") for i in H36M_RIGHT)
    gt = np.load(require_shared("data", "synthetic", "walk_16_32", "gt.npz"))
    theirs = [str(n).replace("l_", "left_", 1) if str(n).startswith("l_") else str(n) for n in gt["h36m17_names"]]
    theirs = [n.replace("r_", "right_", 1) if n.startswith("r_") else n for n in theirs]
    assert theirs == list(H36M_NAMES)


def _run_mediapipe(images: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Real MediaPipe Pose (static images) → landmarks (N, 33, 3) in pixels (z scaled by width), visibility."""
    mp = pytest.importorskip("mediapipe")
    landmarks, visibility = [], []
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        for img in images:
            h, w = img.shape[:2]
            result = pose.process(img)
            assert result.pose_landmarks is not None
            lm = result.pose_landmarks.landmark
            landmarks.append([[p.x * w, p.y * h, p.z * w] for p in lm])
            visibility.append([p.visibility for p in lm])
    return np.array(landmarks), np.array(visibility)


def _rgb(path) -> np.ndarray:
    cv2 = pytest.importorskip("cv2")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _errors_in_torso_lengths(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    torso = np.linalg.norm(gt[:, H36M["thorax"]] - gt[:, H36M["pelvis"]], axis=-1)
    err = np.linalg.norm(pred - gt, axis=-1) / torso[:, None]
    return {name: float(np.median(err[:, j])) for j, name in enumerate(H36M_NAMES)}


def test_mediapipe_to_h36m_on_human36m_ground_truth() -> None:
    folder = require_shared("data", "pose_gt", "h36m")
    data = np.load(folder / "test_h36m_body3d.npz", allow_pickle=True)
    landmarks, visibility = _run_mediapipe([_rgb(folder / str(name)) for name in data["imgname"]])
    h36m, conf = mediapipe_to_h36m(landmarks[..., :2], visibility)
    assert h36m.shape == (4, 17, 2) and conf.shape == (4, 17)
    errs = _errors_in_torso_lengths(h36m, data["part"][:, :, :2])
    print({k: round(v, 3) for k, v in errs.items()})
    # MediaPipe's hips sit ~0.15 torso lengths below Human3.6M's hip joints: a definition offset we keep
    assert all(errs[n] < 0.25 for n in DIRECT + ["pelvis", "spine"]), errs
    assert errs["thorax"] < 0.08 and errs["neck_nose"] < 0.06 and errs["head"] < 0.1, errs


def test_mediapipe_to_h36m_on_synthetic_ground_truth() -> None:
    cv2 = pytest.importorskip("cv2")
    clip = require_shared("data", "synthetic", "jumpingjacks_14_06")
    gt = np.load(clip / "gt.npz")
    cap = cv2.VideoCapture(str(clip / "video.mp4"))
    frames = []
    while len(frames) < 150:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    picked = list(range(0, len(frames), 12))
    landmarks, visibility = _run_mediapipe([frames[i] for i in picked])
    proj = gt["h36m17"][picked] @ gt["K"].T
    gt2d = proj[..., :2] / proj[..., 2:]
    h36m, conf = mediapipe_to_h36m(landmarks[..., :2], visibility)
    errs = _errors_in_torso_lengths(h36m, gt2d)
    print({k: round(v, 3) for k, v in errs.items()})
    assert all(errs[n] < 0.12 for n in DIRECT + ["pelvis", "spine", "thorax", "neck_nose"]), errs
    assert errs["head"] < 0.25, errs  # the synthetic "head" is the skull-top vertex, H36M's sits lower
    # sides: swapping left and right must be clearly worse on the limbs
    swapped = h36m.copy()
    swapped[:, list(H36M_LEFT) + list(H36M_RIGHT)] = h36m[:, list(H36M_RIGHT) + list(H36M_LEFT)]
    swapped_errs = _errors_in_torso_lengths(swapped, gt2d)
    assert np.mean([swapped_errs[n] for n in DIRECT]) > 2 * np.mean([errs[n] for n in DIRECT])
    # 3-channel landmarks convert the same way; x, y are unchanged
    h36m3, _ = mediapipe_to_h36m(landmarks, visibility)
    assert h36m3.shape == (len(picked), 17, 3) and np.allclose(h36m3[..., :2], h36m)


def test_confidence_is_the_weakest_source() -> None:
    rng = np.random.default_rng(1)
    lm = rng.normal(size=(2, 33, 2))
    vis = np.ones((2, 33))
    vis[0, MEDIAPIPE_NAMES.index("left_ear")] = 0.1
    vis[1, MEDIAPIPE_NAMES.index("nose")] = 0.2
    vis[1, MEDIAPIPE_NAMES.index("right_hip")] = 0.3
    out, conf = mediapipe_to_h36m(lm, vis)
    assert conf[0, H36M["head"]] == pytest.approx(0.1) and conf[0, H36M["thorax"]] == 1
    assert conf[1, H36M["thorax"]] == pytest.approx(0.2) and conf[1, H36M["neck_nose"]] == pytest.approx(0.2)
    assert conf[1, H36M["pelvis"]] == pytest.approx(0.3) and conf[1, H36M["right_hip"]] == pytest.approx(0.3)
    hips = (lm[:, MEDIAPIPE_NAMES.index("left_hip")] + lm[:, MEDIAPIPE_NAMES.index("right_hip")]) / 2
    assert np.allclose(out[:, H36M["pelvis"]], hips)
    with pytest.raises(MocapError):
        mediapipe_to_h36m(lm[:, :17], vis[:, :17])


def test_normalize_screen() -> None:
    w, h = 1920, 1080
    corners = np.array([[0.0, 0.0], [w, h], [w / 2, h / 2]])
    norm = normalize_screen(corners, w, h)
    assert norm.dtype == np.float32
    np.testing.assert_allclose(norm, [[-1, -h / w], [1, h / w], [0, 0]], atol=1e-7)
    pix = np.random.default_rng(0).uniform(0, 1000, size=(5, 17, 2))
    np.testing.assert_allclose(denormalize_screen(normalize_screen(pix, 1000, 1002), 1000, 1002), pix, atol=1e-3)
    with pytest.raises(MocapError):
        normalize_screen(pix, 0, 10)


def test_fill_low_confidence_exact_cases() -> None:
    frames = np.arange(10, dtype=float)
    kp = np.stack([frames, 2 * frames], axis=-1)[:, None, :].repeat(2, axis=1)  # (10, 2, 2) linear motion
    conf = np.ones((10, 2))
    conf[[0, 1, 4, 5, 9], 0] = 0.1  # leading, inner and trailing gaps on joint 0
    noisy = kp.copy()
    noisy[conf < 0.5] = 999.0
    noisy[7, 1] = np.nan  # a non-finite value is a gap too
    out = fill_low_confidence(noisy, conf, 0.5)
    np.testing.assert_allclose(out[2:9, 0], kp[2:9, 0])  # inner gap interpolated exactly
    np.testing.assert_allclose(out[:2, 0], kp[[2, 2], 0])  # edges hold the nearest good value
    np.testing.assert_allclose(out[9, 0], kp[8, 0])
    np.testing.assert_allclose(out[:, 1], kp[:, 1])
    never = noisy.copy()
    never[:, 1] = np.nan
    with pytest.raises(MocapError):
        fill_low_confidence(never, conf, 0.5)
    with pytest.raises(MocapError):
        fill_low_confidence(kp, np.zeros((10, 2)), 0.5)


def test_fill_low_confidence_on_real_motion() -> None:
    gt = np.load(require_shared("data", "synthetic", "walk_16_32", "gt.npz"))
    kp = gt["joints2d"][:, :24].astype(np.float64)  # pixels, 30 fps walking
    conf = np.ones(kp.shape[:2])
    conf[50:53, 20] = 0.0  # left wrist lost for three frames
    conf[:2, 4] = 0.0  # left knee missing at the start
    garbage = kp.copy()
    garbage[conf == 0] = 0.0  # what a detector reports for a lost joint
    out = fill_low_confidence(garbage, conf, 0.5)
    gap_err = np.linalg.norm(out[50:53, 20] - kp[50:53, 20], axis=-1).max()
    assert gap_err < 5.0, gap_err  # pixels; a 640x480 walking clip
    assert np.linalg.norm(out[:2, 4] - kp[:2, 4], axis=-1).max() < 10.0
    assert np.array_equal(out[conf > 0], kp[conf > 0])


def test_default_spine_and_thorax_are_the_strided_demo_rules() -> None:
    """Spine/thorax of the default rule = the Strided demo's ``demo/lib/preprocess.py`` (``coco_to_h36m``) on the
    COCO points MediaPipe has; neck/nose and head keep ours; ``rule="midpoints"`` is the former rule."""
    rng = np.random.default_rng(3)
    lm = rng.uniform(0, 640, size=(20, 33, 2))
    vis = rng.uniform(0, 1, size=(20, 33))
    ours, conf = mediapipe_to_h36m(lm, vis)
    demo = coco_to_h36m(mediapipe_to_coco(lm).astype(np.float32))
    for name in ("spine", "thorax", "pelvis", *DIRECT):
        np.testing.assert_allclose(ours[:, H36M[name]], demo[:, H36M[name]], atol=1e-3, err_msg=name)
    old, _ = mediapipe_to_h36m(lm, vis, rule="midpoints")
    for name in ("neck_nose", "head", "pelvis", *DIRECT):
        np.testing.assert_array_equal(ours[:, H36M[name]], old[:, H36M[name]])
    # the thorax is *lowered* (image y down) when the eyes are above the nose, by 2/3 of that height
    face = np.zeros((1, 33, 2))
    face[0, MEDIAPIPE_NAMES.index("nose")] = (0, 100)
    face[0, [MEDIAPIPE_NAMES.index("left_eye"), MEDIAPIPE_NAMES.index("right_eye")]] = (0, 85)
    face[0, [MEDIAPIPE_NAMES.index("left_shoulder"), MEDIAPIPE_NAMES.index("right_shoulder")]] = (0, 160)
    up, _ = mediapipe_to_h36m(face, np.ones((1, 33)))
    before, _ = mediapipe_to_h36m(face, np.ones((1, 33)), rule="midpoints")
    assert up[0, H36M["thorax"], 1] == pytest.approx(before[0, H36M["thorax"], 1] + 10.0)
    # the demo's thorax uses the eyes, its spine the nose: confidence is the weakest of them
    vis2 = np.ones((1, 33))
    vis2[0, MEDIAPIPE_NAMES.index("left_eye")] = 0.2
    vis2[0, MEDIAPIPE_NAMES.index("nose")] = 0.4
    _, c = mediapipe_to_h36m(face, vis2)
    assert c[0, H36M["thorax"]] == pytest.approx(0.2) and c[0, H36M["spine"]] == pytest.approx(0.4)
    with pytest.raises(MocapError):
        mediapipe_to_h36m(lm, vis, rule="demo")  # type: ignore[arg-type]


def test_lifter_input_keeps_positions_and_fills_only_detection_gaps() -> None:
    rng = np.random.default_rng(5)
    lm = rng.uniform(0, 640, size=(12, 33, 3))
    vis = rng.uniform(0, 1, size=(12, 33))
    vis[:, MEDIAPIPE_NAMES.index("nose")] = 0.01  # turned away: positions must still be used as they are
    detected = np.ones(12, bool)
    detected[[0, 5, 6, 11]] = False
    lm[~detected] = np.nan
    kp, conf = lifter_input(lm, vis, detected)
    ref, _ = mediapipe_to_h36m(lm[..., :2], vis)
    np.testing.assert_array_equal(kp[detected], ref[detected])
    np.testing.assert_allclose(kp[5], ref[4] + (ref[7] - ref[4]) / 3)  # inner gap: linear in time
    np.testing.assert_array_equal(kp[0], ref[1])  # ends hold the nearest detection
    np.testing.assert_array_equal(kp[11], ref[10])
    assert np.all(conf[~detected] == 0) and np.all(conf[detected, H36M["neck_nose"]] <= 0.01)
    with pytest.raises(MocapError):
        lifter_input(lm, vis, np.zeros(12, bool))


@pytest.mark.slow
def test_lifter_input_follows_the_body_where_visibility_is_low() -> None:
    """Issue 15 item 3 on a rendered clip (run_49_04, side view, the far-side joints and the face have low
    visibility): our detector's H36M-17 input vs the exact ``h36m17`` joints projected with ``K``. Feeding the
    positions must beat the former rule (low-visibility joints interpolated, held at the ends) overall and by
    far on the low-visibility joint-frames (measured 3.9 vs 11.5 px overall, 6.9 vs 74.9 px on them)."""
    from mocap_cli.capture.detect import detect
    from mocap_cli.capture.video import iter_frames, probe

    clip = require_shared("data", "synthetic", "run_49_04")
    gt = np.load(clip / "gt.npz")
    info = probe(clip / "video.mp4")
    track = detect(iter_frames(clip / "video.mp4", info=info), info)
    proj = gt["h36m17"].astype(np.float64) @ gt["K"].T
    truth = proj[..., :2] / proj[..., 2:]
    n = min(len(truth), track.num_frames)
    vis = np.where(track.detected[:, None], np.nan_to_num(track.visibility), 0.0)
    kp, conf = lifter_input(track.landmarks, track.visibility, track.detected, rule="midpoints")
    ref, conf_ref = mediapipe_to_h36m(track.landmarks[..., :2], vis, rule="midpoints")
    former = fill_low_confidence(fill_low_confidence(ref, np.isfinite(ref).all(-1).astype(float), 0.5), conf_ref, 0.5)
    low = (conf < 0.5)[:n]
    assert low.mean() > 0.05  # the clip exercises the rule
    err_new = np.linalg.norm(kp[:n] - truth[:n], axis=-1)
    err_old = np.linalg.norm(former[:n] - truth[:n], axis=-1)
    print(
        f"all {err_old.mean():.2f} -> {err_new.mean():.2f} px; low-vis {err_old[low].mean():.2f} -> "
        f"{err_new[low].mean():.2f} px"
    )
    assert err_new.mean() < 0.6 * err_old.mean()
    assert err_new[low].mean() < 0.25 * err_old[low].mean()
    assert err_new[low].mean() < 15.0  # px on a 640x480 clip
    default, _ = lifter_input(track.landmarks, track.visibility, track.detected)
    assert np.linalg.norm(default[:n] - truth[:n], axis=-1).mean() < 5.0
