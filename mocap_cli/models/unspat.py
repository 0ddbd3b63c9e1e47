"""UNSPAT on a video: person crops → HybrIK ResNet-34 features → sliding temporal windows → SMPL rotations → Motion.

Stages (spec specs/unspat.md §6, appendix A.3):

1. Crop windows from the MediaPipe track: square person boxes around the visible landmarks (larger side of
   their extent × 1.1, like a detector box), smoothed over time, then × 1.25 (HybrIK's ``scale_mult``) and
   warped to ``img_size``² (256 for the released backbone), black outside the image, rounded to uint8 levels,
   ÷255 and HybrIK's own normalisation (reversed ImageNet statistics, A.3 — *not* ``crops.IMAGENET_*``).
2. One streaming pass over a second decode (``clip.frames()``): a few frames at a time are cropped and run
   through the frozen ResNet-34 trunk on the model device (fp16 autocast on CUDA); only the (512, 8, 8)
   feature map of each frame is kept, as float16 (64 KB per frame). Frames and crops are never accumulated.
3. The temporal part over windows: output frame ``n`` sees frames ``n + k·(i − c)``, ``i = 0..T−1``, clamped at
   the clip ends, ``k = max(1, round(fps/30))`` (§6.2); windows are gathered from the feature cache and run in
   batches (SAM → uncertainty → transformer → HybrIK head), then HybrIK's inference IK in float32.
4. Rotations go 1:1 onto the skeleton (SMPL joint order) and the pelvis path from the head's own crop camera
   (see :func:`crop_camera`), both through the MAED/INT adapter's conversion
   (``mesh_model.motion_from_mesh_sequence``: y-down camera → Y-up world, pinhole root path from ``--fov``,
   gravity alignment, grounding).

IK rest template: HybrIK's IK needs SMPL rest joints. With the user's SMPL model (``--smpl`` / imported) they
come from its ``J_regressor · (v_template + shapedirs · β)`` with the predicted β, and the Motion skeleton is
that SMPL body at the clip's median β. Without SMPL we never ship SMPL data: the rest joints are the canonical
skeleton's T-pose joints (default proportions; the five 29-joint leaf tips from ``skeleton.LEAF_TIPS``), and
the Motion uses that same canonical skeleton, so the solved rotations are exact for it (β is ignored).

The paper-version HybrIK file (the default) has a 24-joint child map in which the right hand's "child" is the
pelvis (A.7), which makes its rotation meaningless; the Motion keeps the right hand straight on the wrist
(identity local rotation) for that variant. :func:`run_unspat` returns HybrIK's rotations unchanged.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from mocap_cli import __version__
from mocap_cli.capture.detect import Track2D
from mocap_cli.capture.video import Frame, close_frames
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import JOINT_NAMES, LEAF_TIPS, Skeleton, canonical_skeleton
from mocap_cli.errors import MocapError
from mocap_cli.models.base import Clip, ModelSettings, Progress, Readiness
from mocap_cli.models.mesh.adapter import median_betas, motion_from_mesh_sequence, smpl_path
from mocap_cli.models.mesh.crops import SquareBoxes, boxes_from_landmarks, smooth_boxes, warp_crops
from mocap_cli.models.mesh.inference import MeshSequence
from mocap_cli.solve.camera import Pinhole

MODEL_NAME = "unspat"
BOX_EXTENT_SCALE = 1.1  # person box = 1.1 × larger side of the visible-landmark extent (a detector-like box)
CROP_SCALE = 1.25  # HybrIK's scale_mult (A.3)
DECODE_BATCH = 8  # frames cropped and run through the trunk together
WINDOW_BATCH = 8  # windows through the temporal part together (CPU cap, see UnspatModel._window_batch)
TRAINING_FPS = 30.0  # windows are spread to match the 25-30 fps training clips (§6.2)
FEATURE_DTYPE = torch.float16
CROP_WIDTH_RANGE_M = (0.2, 50.0)  # plausible metres spanned by a person crop; outside it the camera is ignored
# 29-joint leaf tips (head top, left/right middle fingertip, left/right big toe) → the canonical leaf they end.
_LEAF_TIP_JOINTS = ("head", "left_hand", "right_hand", "left_foot", "right_foot")
_RIGHT_HAND = JOINT_NAMES.index("right_hand")


# --------------------------------------------------------------------------------------------- resources


def chosen_weights(settings: ModelSettings) -> "ChosenWeights":  # noqa: F821 - lazy import
    """``--weights`` (a file: HybrIK ``.pth`` or our ``.safetensors``; or a registry name), else an installed
    HybrIK ResNet-34 variant, the registry default first: the camera model (``pretrained_w_cam.pth``, what the
    authors' video demos run) before the paper model when both are installed."""
    from mocap_cli.weights.cache import choose_weights

    return choose_weights(MODEL_NAME, settings.weights)


def weights_path(settings: ModelSettings) -> Path:
    return chosen_weights(settings).path


VARIANT_LABELS = {"cam29": "HybrIK camera model", "paper24": "HybrIK paper model"}


def weights_label(variant: str | None, hybrik_variant: str | None = None) -> str:
    """What ran, for ``mocap models`` and the run summary: registry variant (or "weights file") and model kind."""
    from mocap_cli.weights.registry import load_registry

    kind = VARIANT_LABELS.get(hybrik_variant or "")
    if kind is None and variant:
        spec = load_registry().get(variant)
        kind = VARIANT_LABELS.get("cam29" if spec is not None and spec.arch.get("num_joints") == 29 else "paper24")
    name = variant or "weights file"
    return f"{name} ({kind})" if kind else name


def temporal_status(path: Path) -> str:
    """Provenance phrase for a weights file without loading it: our checkpoint's sidecar says whether the
    temporal modules were trained; a HybrIK file never has them."""
    side = path.with_suffix(".json")
    if path.suffix == ".safetensors" and side.is_file():
        try:
            trained = bool(json.loads(side.read_text()).get("temporal_trained", False))
        except (OSError, ValueError):
            trained = False
        if trained:
            return "temporal modules trained"
    return "temporal modules untrained (per-frame HybrIK)"


@dataclass(frozen=True)
class RestTemplate:
    """Rest joints for HybrIK's IK: the user's SMPL (shape-dependent) or the canonical T-pose stand-in."""

    description: str
    smpl: dict[str, torch.Tensor] | None = None  # v_template (V,3), shapedirs (V,3,10), j_regressor (24,V)
    fixed: torch.Tensor | None = None  # (29, 3) canonical joints + leaf tips, metres, SMPL model frame

    def joints(self, betas: torch.Tensor, num_joints: int) -> torch.Tensor:
        """(B, 10) → (B, num_joints, 3) rest joints (num_joints 24, or 29 with the leaf tips)."""
        from mocap_cli.nets.hybrik import LEAF_VERTEX_IDS, rest_joints_from_betas

        if self.smpl is not None:
            s = {k: v.to(betas.device) for k, v in self.smpl.items()}
            leaves = torch.tensor(LEAF_VERTEX_IDS, device=betas.device) if num_joints == 29 else None
            n_b = min(betas.shape[1], s["shapedirs"].shape[-1])
            return rest_joints_from_betas(
                betas[:, :n_b], s["v_template"], s["shapedirs"][..., :n_b], s["j_regressor"], leaves
            )[1]
        assert self.fixed is not None
        return self.fixed[:num_joints].to(betas.device, betas.dtype).expand(betas.shape[0], -1, -1)


def canonical_template() -> RestTemplate:
    """Stand-in without SMPL: the canonical skeleton's T-pose joints in SMPL order, leaf tips appended."""
    sk = canonical_skeleton()
    rest = sk.rest_positions()
    tips = [rest[sk.index(n)] + np.asarray(LEAF_TIPS[n]) for n in _LEAF_TIP_JOINTS]
    fixed = torch.tensor(np.concatenate([rest, np.stack(tips)]), dtype=torch.float32)
    return RestTemplate("canonical T-pose skeleton (no SMPL model; shape β ignored)", fixed=fixed)


def smpl_template(arrays: dict[str, np.ndarray], source: Path) -> RestTemplate:
    """The user's SMPL model (arrays of ``body.smpl_files.load_smpl``) as an IK template."""

    def dense(a: object) -> np.ndarray:
        return np.asarray(a.toarray() if hasattr(a, "toarray") else a, dtype=np.float32)

    smpl = {
        "v_template": torch.from_numpy(dense(arrays["v_template"])),
        "shapedirs": torch.from_numpy(dense(arrays["shapedirs"])),
        "j_regressor": torch.from_numpy(dense(arrays["J_regressor"])),
    }
    return RestTemplate(f"SMPL model {source}", smpl=smpl)


def readiness(name: str, settings: ModelSettings) -> Readiness:
    try:
        chosen = chosen_weights(settings)
        smpl = smpl_path(settings)
    except MocapError as exc:
        return Readiness(False, str(exc).rstrip("."))
    body = (
        f"IK rest joints from SMPL {smpl}"
        if smpl
        else "no SMPL model: canonical T-pose rest joints (see `mocap smpl import`)"
    )
    return Readiness(
        True, f"weights {weights_label(chosen.variant)}: {chosen.path}, {temporal_status(chosen.path)}; {body}"
    )


# --------------------------------------------------------------------------------------------- crops and features


def crop_windows(track: Track2D) -> SquareBoxes:
    """The crop window of every frame: smoothed detector-like boxes × HybrIK's 1.25."""
    boxes = boxes_from_landmarks(
        track.landmarks[..., :2], track.visibility, extent_scale=BOX_EXTENT_SCALE, extent="max_side"
    )
    return smooth_boxes(boxes).scaled(CROP_SCALE)


def hybrik_crops(
    images: np.ndarray | torch.Tensor, windows: SquareBoxes, size: int, device: torch.device | str
) -> torch.Tensor:
    """(N, H, W, 3) uint8 RGB → (N, 3, size, size) as HybrIK's loader prepares them (A.3 steps 3-4)."""
    from mocap_cli.nets.hybrik import PIXEL_MEAN, PIXEL_STD

    crops = warp_crops(images, windows, size, device=device, normalize=False, quantize=True)
    mean = torch.tensor(PIXEL_MEAN, device=crops.device).view(1, 3, 1, 1)
    std = torch.tensor(PIXEL_STD, device=crops.device).view(1, 3, 1, 1)
    return (crops - mean) / std


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.float16)
    return contextlib.nullcontext()


def _frame_batches(frames: Iterator[Frame], count: int, batch: int) -> Iterator[np.ndarray]:
    """Exactly ``count`` images in batches; a second decode that ends early repeats its last frame."""
    last: np.ndarray | None = None
    done = 0
    while done < count:
        images = []
        for _ in range(min(batch, count - done)):
            frame = next(frames, None)
            if frame is not None:
                last = frame.image
            elif last is None:
                raise MocapError("The video could not be decoded a second time for the person crops; check the file.")
            images.append(last)
        done += len(images)
        yield np.stack(images)


@torch.no_grad()
def stream_features(
    backbone: torch.nn.Module,
    frames: Iterator[Frame],
    windows: SquareBoxes,
    img_size: int,
    *,
    device: torch.device | str = "cpu",
    autocast: bool = True,
    batch: int = DECODE_BATCH,
    progress: Progress | None = None,
    total: int | None = None,
    dtype: torch.dtype = FEATURE_DTYPE,
    flip: bool = False,
) -> torch.Tensor:
    """Trunk features of every frame, (F, C, h, w) on the CPU (float16 by default), from one pass over ``frames``.

    ``flip``: also the features of each horizontally mirrored crop (HybrIK's flip test), returned stacked as
    (2, F, C, h, w): plain, mirrored.
    """
    device = torch.device(device)
    count = len(windows)
    out: torch.Tensor | None = None
    done = 0
    for images in _frame_batches(frames, count, batch):
        n = len(images)
        crops = hybrik_crops(images, windows[done : done + n], img_size, device)
        if flip:
            crops = torch.cat([crops, crops.flip(-1)])
        with _autocast(device, autocast):
            feats = backbone(crops)
        if out is None:
            out = torch.empty(((2, count) if flip else (count,)) + tuple(feats.shape[1:]), dtype=dtype)
        if flip:
            out[:, done : done + n] = feats.reshape(2, n, *feats.shape[1:]).to("cpu", dtype)
        else:
            out[done : done + n] = feats.to("cpu", dtype)
        done += n
        if progress:
            progress(done, total or count)
    assert out is not None
    return out


# --------------------------------------------------------------------------------------------- temporal part + IK


@dataclass
class UnspatSequence:
    """Per-frame results of one track (float32 numpy, frame order)."""

    rotmats: np.ndarray  # (F, 24, 3, 3) HybrIK IK local rotations; joint 0 global in camera axes (y down)
    betas: np.ndarray  # (F, 10)
    cam: np.ndarray  # (F, 3) weak-perspective crop camera [s, tx, ty] on pelvis-relative points ([-1, 1] crop units)
    uvd: np.ndarray  # (F, J, 3) heatmap keypoints, crop-normalised
    sigma: np.ndarray  # (F, J) HybrIK/UNSPAT per-joint scale (untrained head branch for HybrIK files)
    frame_step: int = 1
    seconds: dict[str, float] = field(default_factory=dict)
    flip_test: bool = False


def frame_step(fps: float) -> int:
    """Spacing of window frames: ``max(1, round(fps/30))`` (§6.2, choice 33)."""
    return max(1, int(round(float(fps) / TRAINING_FPS)))


def track_segments(tracked: np.ndarray) -> np.ndarray:
    """(F,) bool (person tracked: detected or gap-filled) → (F,) segment id: runs of equal values, so
    windows never reach across a track break (spec §6.2); untracked runs are their own segments."""
    tracked = np.asarray(tracked, dtype=bool)
    if len(tracked) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([[0], np.cumsum(tracked[1:] != tracked[:-1])]).astype(np.int64)


def window_indices(segments: np.ndarray, seq_len: int, center: int, step: int = 1) -> torch.Tensor:
    """(F, T) source frames of every output frame's window: frame ``n + step·(i − center)``, clamped to the
    first/last frame of ``n``'s segment (edge replication)."""
    segments = np.asarray(segments)
    num = len(segments)
    frames = np.arange(num)
    starts = np.zeros(num, dtype=np.int64)
    ends = np.full(num, num - 1, dtype=np.int64)
    breaks = np.flatnonzero(np.diff(segments) != 0) + 1
    bounds = np.concatenate([[0], breaks, [num]])
    for a, b in zip(bounds[:-1], bounds[1:]):
        starts[a:b], ends[a:b] = a, b - 1
    idx = frames[:, None] + step * (np.arange(seq_len)[None, :] - center)
    return torch.from_numpy(np.clip(idx, starts[:, None], ends[:, None]))


def crop_camera(uvd_root: torch.Tensor, crop_width_m: torch.Tensor) -> torch.Tensor:
    """[s, tx, ty] (B, 3) in the VIBE convention (``s·(X_xy + t)`` lands in [−1, 1] crop coordinates).

    The head gives the pelvis position in the crop (``uvd_root`` u, v in [−0.5, 0.5)) and, through its metric
    convention, how many metres the crop spans at the pelvis depth: camera models ``256/1000 · z_root`` (A.6);
    the HybrIK paper model on video ``side · z_root / focal`` (``hybrik_video``); a trained UNSPAT head 2.2 m
    (the §2.7 reading of the heatmap cube). Hence ``s = 2/width``, ``t = uv·width``.
    """
    w = crop_width_m.reshape(-1, 1)
    return torch.cat([2.0 / w, uvd_root[:, :2] * w], dim=1)


def _crop_width(pred: "HybrIKPrediction") -> torch.Tensor:  # noqa: F821 - lazy import
    from mocap_cli.nets.hybrik import FOCAL_LENGTH, INPUT_SIZE

    fallback = torch.full_like(pred.head.uvd[:, 0, 0], pred.depth_factor)
    if pred.cam_root is None:
        return fallback
    # camera models: the crop spans 256/f · z_root metres at the pelvis depth z_root = Zc + d_0·D; a
    # non-positive or absurd predicted scale (z outside CROP_WIDTH_RANGE_M) falls back to the cube size
    width = INPUT_SIZE / FOCAL_LENGTH * pred.cam_root[:, 2].float()
    lo, hi = CROP_WIDTH_RANGE_M
    return torch.where(torch.isfinite(width) & (width > lo) & (width < hi), width, fallback)


def solve_rotations(pred: "HybrIKPrediction", template: RestTemplate) -> torch.Tensor:  # noqa: F821
    """HybrIK's inference IK (adaptive) on the head's skeleton, against ``template`` (float32)."""
    from mocap_cli.nets.hybrik import hybrik_children, hybrik_ik, hybrik_parents, quat_wxyz_to_rotmat

    skel = pred.skeleton_m.float()
    n = skel.shape[1]
    leaf = pred.head.leaf
    leaf_rot = quat_wxyz_to_rotmat(leaf.float()) if leaf is not None else None
    rest = template.joints(pred.head.betas.float(), n)
    parents = hybrik_parents(n).to(skel.device)
    with torch.autocast(skel.device.type, enabled=False):  # float32 even inside a caller's autocast region
        rot, _ = hybrik_ik(
            skel, pred.head.phis.float(), rest, parents, hybrik_children(parents), leaf_rot, adaptive=True
        )
    return rot


def temporal_is_identity(model: "UNSPAT") -> bool:  # noqa: F821
    """True when every transformer block's residual branches end in all-zero layers (attention output
    projection and MLP ``fc2``, weights and biases), i.e. the transformer returns its input exactly; SAM
    never changes the centre frame, so the centre feature is then the frame's own feature."""
    blocks = getattr(model.transformer, "blocks", [])
    return all(
        not torch.any(lin.weight) and (lin.bias is None or not torch.any(lin.bias))
        for blk in blocks
        for lin in (blk.attn.proj, blk.mlp.fc2)
    )


def _box_geometry(windows: SquareBoxes, image_size: tuple[int, int], device: torch.device) -> dict[str, torch.Tensor]:
    half = windows.sides[:, None] / 2
    boxes = np.concatenate([windows.centers - half, windows.centers + half], axis=1)
    centre = np.broadcast_to(np.array([image_size[0] / 2, image_size[1] / 2]), (len(windows), 2))
    return {
        "bboxes": torch.as_tensor(boxes, dtype=torch.float32, device=device),
        "img_center": torch.as_tensor(np.ascontiguousarray(centre), dtype=torch.float32, device=device),
    }


@torch.no_grad()
def run_windows(
    model: "UNSPAT",  # noqa: F821
    features: torch.Tensor,
    template: RestTemplate,
    *,
    step: int = 1,
    device: torch.device | str = "cpu",
    autocast: bool = True,
    batch: int = WINDOW_BATCH,
    progress: Progress | None = None,
    progress_offset: int = 0,
    progress_total: int | None = None,
    windows: SquareBoxes | None = None,
    image_size: tuple[int, int] | None = None,
    skip_identity: bool = True,
    segments: np.ndarray | None = None,
    camera: Pinhole | None = None,
    flipped: torch.Tensor | None = None,
) -> UnspatSequence:
    """The temporal part over every frame's window (features (F, C, h, w) from :func:`stream_features`).

    When the temporal modules are exactly the identity (HybrIK weights only: zero-initialised residual
    branches, see :func:`temporal_is_identity`) the centre feature equals the frame's own feature bit for bit,
    so with ``skip_identity`` the windows are not built and only the head runs (same result, about half the
    work per frame). ``segments`` (F,) (see :func:`track_segments`): windows stay inside their segment.

    Camera models (``cam29``) get the centre frame's crop box and the image centre when ``windows`` and
    ``image_size`` are given, as HybrIK's demo does (A.6 box path). With HybrIK-only weights, the paper model
    (``paper24``) reads its heatmaps in its own 2.0 m depth unit and back-projects x/y through the crop and
    ``camera`` when ``windows`` and ``camera`` are given (``hybrik_video.paper_skeleton_on_video``); a trained
    UNSPAT keeps the §2.7 reading it was trained with. ``flipped`` (F, C, h, w): features of the mirrored crops;
    with HybrIK-only weights the head then runs the flip test (``hybrik_video.flip_average``).
    """
    from mocap_cli.models.hybrik_video import bone_lengths, flip_average, paper_prediction, paper_skeleton_on_video
    from mocap_cli.nets.hybrik import predict_from_head

    device = torch.device(device)
    cfg = model.cfg
    num = features.shape[0]
    index = window_indices(np.zeros(num) if segments is None else segments, cfg.seq_len, cfg.center_index, step)
    per_frame = skip_identity and temporal_is_identity(model)
    paper_video = (
        cfg.variant == "paper24" and temporal_is_identity(model) and windows is not None and camera is not None
    )
    rot, betas, cam, uvd, sigma = [], [], [], [], []
    for first in range(0, num, batch):
        idx = index[first : first + batch]
        geometry = (
            _box_geometry(windows[first : first + len(idx)], image_size, device)
            if cfg.variant == "cam29" and windows is not None and image_size
            else {}
        )
        width: torch.Tensor | None = None
        with _autocast(device, autocast):
            if per_frame:  # exactly the centre frame's own features: run the head only
                out = model.head(features[first : first + len(idx)].to(device).float())
                if flipped is not None:
                    out = flip_average(out, model.head(flipped[first : first + len(idx)].to(device).float()))
            else:
                window = features[idx].to(device).float()  # (B, T, C, h, w)
                out = None
                pred = model(features=window, with_smpl=False, **geometry).pred
        if paper_video:
            assert windows is not None and camera is not None
            head = out if out is not None else pred.head
            win = windows[first : first + len(idx)]
            centers = torch.as_tensor(win.centers, dtype=torch.float64, device=device)
            sides = torch.as_tensor(win.sides, dtype=torch.float64, device=device)
            lengths = bone_lengths(template.joints(head.betas.float(), 24))
            skel, z_root = paper_skeleton_on_video(
                head.uvd.float(), centers, sides, camera.focal, (camera.cx, camera.cy), lengths
            )
            pred = paper_prediction(head, skel)
            width = (sides * z_root.double() / camera.focal).float()
        elif out is not None:
            with _autocast(device, autocast):
                pred = predict_from_head(out, cfg.variant, None, **geometry)
        rot.append(solve_rotations(pred, template).cpu())
        width = _crop_width(pred) if width is None else width
        cam.append(crop_camera(pred.head.uvd[:, 0].float(), width.float()).cpu())
        betas.append(pred.head.betas.float().cpu())
        uvd.append(pred.head.uvd.float().cpu())
        sigma.append(pred.head.sigma.float().cpu())
        if progress:
            progress(progress_offset + first + len(idx), progress_total or num)
    cat = lambda xs: torch.cat(xs).numpy().astype(np.float32)  # noqa: E731
    return UnspatSequence(cat(rot), cat(betas), cat(cam), cat(uvd), cat(sigma), frame_step=step)


def run_unspat(
    model: "UNSPAT",  # noqa: F821
    frames: Iterator[Frame],
    windows: SquareBoxes,
    fps: float,
    template: RestTemplate,
    *,
    image_size: tuple[int, int] | None = None,
    segments: np.ndarray | None = None,
    device: torch.device | str = "cpu",
    autocast: bool = True,
    decode_batch: int = DECODE_BATCH,
    window_batch: int = WINDOW_BATCH,
    feature_dtype: torch.dtype = FEATURE_DTYPE,
    progress: Progress | None = None,
    camera: Pinhole | None = None,
    flip: bool = False,
) -> UnspatSequence:
    """Features in one streaming pass, then the windows; ``windows`` has one crop window per frame.

    ``flip``: HybrIK's flip test, for HybrIK-only weights (per-frame features); ignored for a trained temporal
    model (the UNSPAT paper describes no flip test). ``camera``: the full-image pinhole camera (paper model).
    """
    model = model.to(device).eval()
    num = len(windows)
    flip = flip and temporal_is_identity(model)
    t0 = time.perf_counter()
    feats = stream_features(
        model.backbone,
        frames,
        windows,
        model.cfg.img_size,
        device=device,
        autocast=autocast,
        batch=decode_batch,
        progress=progress,
        total=2 * num,
        dtype=feature_dtype,
        flip=flip,
    )
    flipped = None
    if flip:
        feats, flipped = feats[0], feats[1]
    t1 = time.perf_counter()
    seq = run_windows(
        model,
        feats,
        template,
        step=frame_step(fps),
        device=device,
        autocast=autocast,
        batch=window_batch,
        progress=progress,
        progress_offset=num,
        progress_total=2 * num,
        windows=windows,
        image_size=image_size,
        segments=segments,
        camera=camera,
        flipped=flipped,
    )
    seq.flip_test = flip
    seq.seconds = {"features": t1 - t0, "windows": time.perf_counter() - t1}
    return seq


# --------------------------------------------------------------------------------------------- the adapter


class UnspatModel:
    """``MotionModel`` for ``--model unspat``."""

    def __init__(self, name: str, settings: ModelSettings) -> None:
        self.name = name
        self.settings = settings
        self.device = settings.torch_device  # "auto" resolved; cuda without a GPU fails here
        self.chosen = chosen_weights(settings)  # fails early, before decoding
        self.weights = self.chosen.path
        self.smpl = smpl_path(settings)
        self._smpl_model: dict[str, np.ndarray] | None = None
        if self.smpl is not None:  # a wrong SMPL file fails now, not after decoding
            from mocap_cli.body.smpl_files import load_smpl

            self._smpl_model = load_smpl(self.smpl)
        self._loaded: tuple[object, object] | None = None
        self._feature_dtype()  # a bad option fails now
        self.network()  # so does an unreadable or incompatible weights file (before the clip is decoded)
        self.last_run: tuple[SquareBoxes, UnspatSequence] | None = None  # crop windows and raw results of the last clip

    def network(self) -> tuple["UNSPAT", "UnspatLoadInfo"]:  # noqa: F821
        from mocap_cli.nets.unspat import load_unspat

        if self._loaded is None:
            self._loaded = load_unspat(self.weights)
        return self._loaded  # type: ignore[return-value]

    def template(self) -> RestTemplate:
        """IK rest joints: the user's SMPL, else the canonical T-pose stand-in."""
        if self._smpl_model is None or self.smpl is None:
            return canonical_template()
        return smpl_template(self._smpl_model, self.smpl)

    def _autocast(self) -> bool:
        return self.settings.extra.get("autocast", "1").lower() not in ("0", "false", "no")

    def _window_batch(self) -> int:
        """``--batch-size`` windows per forward; at most ``WINDOW_BATCH`` on the CPU, where the 64³ heatmaps of
        the head (≈100 MB of temporaries per window) dominate memory."""
        size = max(1, int(self.settings.batch_size))
        return size if torch.device(self.device).type == "cuda" else min(size, WINDOW_BATCH)

    def _flip(self) -> bool:
        """``extra["flip"]``: HybrIK's flip test on the per-frame HybrIK path (default on, as the authors' demo)."""
        return self.settings.extra.get("flip", "1").lower() not in ("0", "false", "no", "off")

    def _feature_dtype(self) -> torch.dtype:
        """``extra["features"]``: "float16" (default, 64 KB per frame) or "float32" (exact per-frame features)."""
        choice = self.settings.extra.get("features", "float16").lower()
        if choice not in ("float16", "float32"):
            raise MocapError(f"Unknown feature cache type {choice!r}; use float16 or float32.")
        return torch.float16 if choice == "float16" else torch.float32

    def run(
        self, clip: Clip, windows: SquareBoxes, template: RestTemplate, progress: Progress | None = None
    ) -> UnspatSequence:
        model, _ = self.network()
        frames = clip.frames()
        try:
            return run_unspat(
                model,
                frames,
                windows,
                float(clip.track.fps),
                template,
                image_size=clip.track.image_size,
                segments=track_segments(np.asarray(clip.track.detected) | np.asarray(clip.track.filled)),
                device=self.device,
                autocast=self._autocast(),
                window_batch=self._window_batch(),
                feature_dtype=self._feature_dtype(),
                progress=progress,
                camera=Pinhole.from_fov(clip.track.image_size[0], clip.track.image_size[1], self.settings.fov_degrees),
                flip=self._flip(),
            )
        finally:
            close_frames(frames)  # stops ffmpeg if the clip ended early

    def estimate(self, clip: Clip, progress: Progress | None = None) -> Motion:
        track = clip.track
        model, info = self.network()
        template = self.template()
        windows = crop_windows(track)
        seq = self.run(clip, windows, template, progress)
        self.last_run = (windows, seq)
        detected = np.asarray(track.detected, dtype=bool)
        betas = median_betas(seq.betas, detected.astype(float))
        # the IK solved against the canonical T-pose without SMPL, so that skeleton is exact for the rotations
        skeleton: Skeleton = canonical_skeleton()
        if self._smpl_model is not None:
            from mocap_cli.body.smpl_body import smpl_rest

            skeleton, _ = smpl_rest(self._smpl_model, betas)
        rotmats = seq.rotmats.copy()
        if model.cfg.variant == "paper24":
            rotmats[:, _RIGHT_HAND] = np.eye(3)  # HybrIK's 24-joint right-hand rotation is meaningless (A.7)
        confidence = np.repeat(detected.astype(np.float64)[:, None], 24, axis=1)
        camera = Pinhole.from_fov(track.image_size[0], track.image_size[1], self.settings.fov_degrees)
        cfg = model.cfg
        provenance = {
            "model": self.name,
            "input": str(clip.video.path),
            "weights": weights_label(self.chosen.variant, info.variant),
            "weights_file": ", ".join(info.sources) or str(self.weights),
            "hybrik_variant": info.variant,
            "flip_test": "on" if seq.flip_test else "off",
            "temporal": info.note,
            "mocap_version": __version__,
            "fov_degrees": f"{self.settings.fov_degrees:g}",
            "ik_rest_template": template.description,
            "skeleton": f"smpl:{self.smpl}" if self.smpl else "canonical",
            "window": f"{cfg.seq_len} frames, centre {cfg.center_index}, frame step {seq.frame_step}, stride 1",
        }
        return motion_from_mesh_sequence(
            MeshSequence(rotmats, seq.betas, seq.cam),
            windows,
            track.image_size,
            float(track.fps),
            focal=camera.focal,
            skeleton=skeleton,
            confidence=confidence,
            betas=betas.astype(np.float32) if self._smpl_model is not None else None,
            provenance=provenance,
            camera=clip.camera_motion(camera),
        )
