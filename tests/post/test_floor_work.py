"""Floor work (hands and knees on the ground) through the whole default pipeline, against the exact ground
truth of a render (tests/floor_render.py: the anny body doing bird dogs on all fours, seen from the front-left).

Issue 11: any body part can touch the floor; no joint may end up more than 2 cm under it (about the body's
surface) and supporting hands are held like planted feet. Before the floor was fitted to the planted hands and
knees, the body sat ~20 cm under the feet's floor here (as on a real breakdance clip) and was lifted frame by
frame, so the pelvis bobbed by 12 cm while the truth's does not move; supporting hands slid 20-30 cm.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_INDEX, JOINT_NAMES, canonical_skeleton
from mocap_cli.pipeline import RunOptions, run_clip
from mocap_cli.post.contacts import CONTACT_JOINTS, contact_runs
from mocap_cli.post.foot_lock import apply_foot_lock
from mocap_cli.solve.posing import ground_motion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from floor_render import floor_clip, ground_truth_contacts, motion_rotations

HANDS = ("left_wrist", "right_wrist")
KNEES = ("left_knee", "right_knee")
# A held hand may move this much horizontally over its contact: the truth's does not move at all; 2 cm is the
# floor tolerance of issue 11 (about the body's surface) and a tenth of what an unheld hand slid here.
HAND_DRIFT = 0.02
# Below the floor (our output's floor is y = 0): a joint centre sits inside the body, about 2 cm from its skin.
BODY_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def floor_video(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    pytest.importorskip("bpy")
    return floor_clip(tmp_path_factory.mktemp("floor_work"))


# The default model, and `fused`, whose lifter (trained on people on their feet) gives way to MediaPipe's pose on
# the floor (before: the supporting right hand rested 14.1 cm up, the truth's 5.5 cm; its contact found in 22 %).
@pytest.fixture(scope="module", params=["mediapipe", "fused"])
def floor_run(request: pytest.FixtureRequest, floor_video: tuple[Path, dict]) -> dict:
    clip, scene = floor_video
    res = run_clip(clip, RunOptions(exports=(clip.with_suffix(".npz"),), overwrite=True, model=request.param))
    m = res.motion
    assert m.num_frames == len(scene["joints"]) and m.contacts is not None
    truth = ground_truth_contacts(scene["joints"], HANDS + KNEES)
    found = np.stack([m.contacts[:, CONTACT_JOINTS.index(n)] >= 0.5 for n in HANDS + KNEES], axis=1)
    return {"motion": m, "scene": scene, "truth": truth, "found": found}


def _drift(path: np.ndarray) -> float:
    """Largest horizontal distance (m) of a joint's positions (F, 3) from their median."""
    xz = path[:, [0, 2]]
    return float(np.linalg.norm(xz - np.median(xz, axis=0), axis=-1).max())


@pytest.mark.slow
@pytest.mark.blender
def test_no_joint_goes_under_the_floor(floor_run: dict) -> None:
    m, scene = floor_run["motion"], floor_run["scene"]
    heights = m.joints[:, :24, 1]
    truth = scene["joints"][..., 1] - scene["floor"]
    print("\njoint           min height above the floor: ours / truth (cm)")
    for j, name in enumerate(JOINT_NAMES):
        print(f"{name:15s} {100 * heights[:, j].min():6.1f} / {100 * truth[:, j].min():5.1f}")
    assert heights.min() >= -BODY_TOLERANCE, f"{JOINT_NAMES[int(heights.min(axis=0).argmin())]} under the floor"
    # The supporting hands rest on the floor, not above or in it: their median height over the truth's
    # contacts is within 3 cm of the truth's (5.5 cm: the wrist centre over a flat palm).
    for k, name in enumerate(HANDS):
        rest = np.median(heights[floor_run["truth"][:, k], JOINT_INDEX[name]])
        assert abs(rest - np.median(truth[floor_run["truth"][:, k], JOINT_INDEX[name]])) <= 0.03, (name, rest)


@pytest.mark.slow
@pytest.mark.blender
def test_hand_and_knee_contacts_are_found(floor_run: dict) -> None:
    truth, found = floor_run["truth"], floor_run["found"]
    for k, name in enumerate(HANDS):
        recall = (truth[:, k] & found[:, k]).sum() / truth[:, k].sum()
        precision = (truth[:, k] & found[:, k]).sum() / max(found[:, k].sum(), 1)
        print(f"{name}: contact recall {recall:.2f}, precision {precision:.2f}")
        assert recall >= 0.85 and precision >= 0.9, name
    # Knees: the estimate puts its knees 5-10 cm over the hands' floor and, from this view, swaps the legs
    # while one is raised; on all fours (every limb down in the truth) both knees are found.
    all_fours = truth.all(axis=1)
    for k, name in enumerate(KNEES, start=2):
        share = found[all_fours, k].mean()
        print(f"{name}: found in {share:.0%} of the all-fours frames")
        assert share >= 0.7, name


@pytest.mark.slow
@pytest.mark.blender
def test_supporting_hands_are_held_still(floor_run: dict) -> None:
    m, truth, found = floor_run["motion"], floor_run["truth"], floor_run["found"]
    for k, name in enumerate(HANDS):
        for start, end in contact_runs(found[:, k]):
            inside = truth[start:end, k].mean() >= 0.8  # a contact we found that the truth has too
            if not inside or end - start < 3:
                continue
            drift = _drift(m.joints[start:end, JOINT_INDEX[name]])
            print(f"{name} held {start}-{end}: drifts {100 * drift:.1f} cm")
            assert drift <= HAND_DRIFT, (name, start, end, drift)


@pytest.mark.slow
@pytest.mark.blender
@pytest.mark.xfail(
    reason="the contact-edge trimming and release of moving ends split the far hand's contact into two anchors; "
    "each found contact is held (test_supporting_hands_are_held_still), the whole ground-truth contact is not",
    strict=False,
)
def test_supporting_hands_are_still_over_each_whole_contact(floor_run: dict) -> None:
    m, truth = floor_run["motion"], floor_run["truth"]
    drifts = {
        (name, start): _drift(m.joints[start:end, JOINT_INDEX[name]])
        for k, name in enumerate(HANDS)
        for start, end in contact_runs(truth[:, k])
    }
    print({key: round(100 * d, 1) for key, d in drifts.items()})
    assert max(drifts.values()) <= HAND_DRIFT


def _ground_truth_locked() -> tuple[Motion, Motion]:
    """The render's own motion (no video), grounded by the pipeline's feet rule, before and after the stage."""
    sk = canonical_skeleton()
    rotations = motion_rotations()
    grounded = ground_motion(Motion.from_rotations(30.0, sk, rotations, np.tile(sk.offsets[0], (len(rotations), 1))))
    return grounded, apply_foot_lock(grounded)


def test_true_floor_work_keeps_its_contacts_and_stays_on_the_floor() -> None:
    before, after = _ground_truth_locked()
    truth = ground_truth_contacts(before.joints, HANDS + KNEES)
    for k, name in enumerate(HANDS + KNEES):
        found = after.contacts[:, CONTACT_JOINTS.index(name)] >= 0.5
        hits = (found & truth[:, k]).sum()
        assert hits / truth[:, k].sum() >= 0.95 and hits / max(found.sum(), 1) >= 0.95, name
    assert after.joints[..., 1].min() >= -BODY_TOLERANCE
    for k, name in enumerate(HANDS):
        for start, end in contact_runs(truth[:, k]):
            assert _drift(after.joints[start:end, JOINT_INDEX[name]]) <= 0.002, name


def test_true_floor_work_is_left_alone() -> None:
    """The render's own motion moves no joint by more than 1 cm (before the pelvis drop was measured against the
    limb's reach plus slack, a straight leg raised level counted as short of its own ankle: the pelvis dropped
    1.6 cm and the held straight arms bent, the elbows moving 7 cm)."""
    before, after = _ground_truth_locked()
    moved = after.joints - before.joints
    moved[..., 1] -= np.median(moved[..., 1])  # the floor may settle by one constant height
    assert np.linalg.norm(moved, axis=-1).max() <= 0.01
