"""Training MixSTE on CMU motion capture so that it lifts MediaPipe's keypoints (``mocap train mixste``).

Each training window is built on the fly from a CMU trial (``training.cmu``, 120 fps):

1. Frame rate: every 2nd-5th mocap frame (60, 40, 30, 24 fps; 30 most often) from a random start, T frames.
2. Camera: a pinhole camera as phones film (``CameraRanges``): image size (landscape or portrait), field of
   view, height, heading all round the subject, slight roll, looking at the window's mean position; the
   distance is the nearest that keeps the body in frame, times a random margin; the aim point moves off the
   body (subjects are not always centred) while the body stays in frame.
3. Input: the joints in that camera, moved to where MediaPipe puts them and corrupted with its fitted
   errors and low-visibility runs (``mediapipe_noise.MediaPipeNoise``; runs are interpolated over time as
   the adapter does), pelvis and spine rebuilt from the noisy hips/shoulders as ``keypoints.mediapipe_to_h36m``
   builds them, then ``keypoints.normalize_screen``.
4. Target: the exact joints in the camera frame (x right, y down, z forward, metres), minus the pelvis.

Loss (the authors', shared/specs/mixste.md §13): weighted MPJPE + 0.5 temporal consistency + 2 MPJVE; flip
augmentation (mirror 2D and 3D, swap sides) on half the windows; AdamW with warm-up and cosine decay over the
run (the run's length is the smaller of ``steps`` and the wall-clock budget). Validation: fixed windows of
held-out trials at 30 fps with fixed cameras and noise, evaluated with flip averaging as ``lift_clip`` does;
the best-on-validation weights are written as they improve, so a run cut short still leaves a usable file.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from mocap_cli.capture.keypoints import H36M, normalize_screen
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.windows import flip_keypoints_2d, unflip_pose_3d
from mocap_cli.nets.mixste import MixSTE2, MixSTEConfig
from mocap_cli.solve.body_size import BODY_SIZE_KEY, limb_size
from mocap_cli.training.cmu import Trial, find_trials, load_trial, split_trials
from mocap_cli.training.mediapipe_noise import MediaPipeNoise, project
from mocap_cli.training.proportions import Bodies, redefine, reproportion
from mocap_cli.weights.cache import sha256_of

# The authors' per-joint weights of the position loss (H36M order).
JOINT_WEIGHTS = (1, 1, 2.5, 2.5, 1, 2.5, 2.5, 1, 1, 1, 1.5, 1.5, 4, 4, 1.5, 4, 4)
STRIDES = (2, 3, 4, 4, 4, 4, 5)  # of 120 fps mocap: 60, 40, 30 (most), 24 fps
IMAGE_SIZES = ((1920, 1080), (1280, 720), (640, 480), (1080, 1920), (720, 1280))


@dataclass(frozen=True)
class CameraRanges:
    """Random pinhole cameras as people film with phones (angles in degrees, lengths in metres)."""

    fov_long_side: tuple[float, float] = (38.0, 80.0)  # 52 mm to 22 mm full-frame equivalent
    height: tuple[float, float] = (0.3, 2.2)
    look_at_height: tuple[float, float] = (0.5, 1.2)
    roll_sigma: float = 4.0
    margin: tuple[float, float] = (1.0, 2.6)  # distance / nearest distance that keeps the body in frame
    # The aim point moves off the body by up to this fraction of the half field of view (sideways and up/down),
    # as a static camera sees a subject walk across or stand off-centre; the body stays in frame.
    off_centre: float = 0.8


@dataclass(frozen=True)
class TrainSettings:
    frames: int = 81
    width: int = 64
    depth: int = 3
    heads: int = 8
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 100
    steps: int = 100_000
    minutes: float | None = None
    val_every_s: float = 120.0
    val_windows: int = 96
    noise_gain: tuple[float, float] = (0.7, 1.5)  # per-window scale of the fitted errors
    seed: int = 0
    threads: int | None = None
    body_proportions: bool = True  # sampled bodies with anatomical joints (``training.proportions``)
    # (trial "10_06" or subject "135", factor): windows come from matching trials this many times as often as
    # their length alone gives (motion the data has little of, e.g. kicks).
    oversample: tuple[tuple[str, float], ...] = ()


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    seconds: float
    frames_per_s: float
    best_val_mpjpe_mm: float
    curve: list[dict[str, float]] = field(default_factory=list)  # step, seconds, train loss, val mm


# --------------------------------------------------------------------------------------------- windows


def look_at(eye: np.ndarray, target: np.ndarray, roll_deg: float) -> np.ndarray:
    """World (Y up) → OpenCV camera rotation (rows: x right, y down, z forward) looking from eye at target."""
    f = target - eye
    f /= np.linalg.norm(f)
    r = np.cross(f, [0.0, 1.0, 0.0])
    r /= np.linalg.norm(r)
    d = np.cross(f, r)
    c, s = math.cos(math.radians(roll_deg)), math.sin(math.radians(roll_deg))
    return np.stack([c * r + s * d, -s * r + c * d, f])


def random_camera(
    rng: np.random.Generator, world: np.ndarray, ranges: CameraRanges
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """A camera filming (T, 17, 3) Y-up world joints → (R (3,3), eye (3,), K (3,3), (W, H))."""
    w, h = IMAGE_SIZES[rng.integers(len(IMAGE_SIZES))]
    fov = math.radians(rng.uniform(*ranges.fov_long_side))
    focal = 0.5 * max(w, h) / math.tan(fov / 2)
    k = np.array([[focal, 0, w / 2 - 0.5], [0, focal, h / 2 - 0.5], [0, 0, 1.0]])
    centre = world[:, H36M["pelvis"]].mean(0)
    target = np.array([centre[0], rng.uniform(*ranges.look_at_height), centre[2]])
    yaw = rng.uniform(0, 2 * math.pi)
    roll = rng.normal(0, ranges.roll_sigma)
    height = rng.uniform(*ranges.height)
    flat = world.reshape(-1, 3)
    distance = 1.5
    for _ in range(40):
        eye = np.array([target[0] + distance * math.sin(yaw), height, target[2] + distance * math.cos(yaw)])
        rot = look_at(eye, target, roll)
        cam = (flat - eye) @ rot.T
        if (cam[:, 2] > 0.3).all():
            px = project(cam, k)
            if (px >= 0.05 * np.array([w, h])).all() and (px <= 0.95 * np.array([w, h])).all():
                break
        distance *= 1.12
    distance *= rng.uniform(*ranges.margin)
    eye = np.array([target[0] + distance * math.sin(yaw), height, target[2] + distance * math.cos(yaw)])
    rot = look_at(eye, target, roll)
    half = np.array([w, h]) / (2 * focal) * np.linalg.norm(target - eye)  # half frame (metres) at the aim point
    for shrink in (1.0, 0.6, 0.3):
        shift = rng.uniform(-1, 1, size=2) * ranges.off_centre * shrink * half
        aim = target + shift[0] * rot[0] + shift[1] * rot[1]
        moved = look_at(eye, aim, roll)
        px = project((flat - eye) @ moved.T, k)
        if (px >= 0.02 * np.array([w, h])).all() and (px <= 0.98 * np.array([w, h])).all():
            return moved, eye, k, (w, h)
    return rot, eye, k, (w, h)


def _interpolate_masked(kp: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(T, 17, 2) keypoints with (T, 17) unreliable frames replaced by linear interpolation over time."""
    out = kp.copy()
    frames = np.arange(len(kp))
    for j in np.flatnonzero(mask.any(0)):
        ok = ~mask[:, j]
        if ok.any():
            for d in range(2):
                out[~ok, j, d] = np.interp(frames[~ok], frames[ok], kp[ok, j, d])
    return out


def population_body_size(trials: list[Trial], bodies: Bodies | None, frames: int = 120) -> float:
    """The training population's mean ``body_size.limb_size`` (metres): every sampled body performing the first
    ``frames`` frames of the first trial, or without ``bodies`` each trial's own subject, weighted by its length
    (what the windows are drawn by). Exact, not a sample of windows."""
    if bodies is not None:
        pose = trials[0].joints[:frames].astype(np.float64)
        return float(
            np.mean([limb_size(redefine(reproportion(pose, lengths), bodies.offsets)) for lengths in bodies.lengths])
        )
    sizes = np.array([float(limb_size(t.joints.astype(np.float64))) for t in trials])
    weights = np.array([len(t.joints) for t in trials], dtype=np.float64)
    return float(np.sum(sizes * weights) / weights.sum())


def draw_weights(trials: list[Trial], oversample: tuple[tuple[str, float], ...] = ()) -> np.ndarray:
    """(len(trials),) relative draw weights: each trial's length, times the factor of each ``oversample`` entry
    naming it ("10_06") or its subject ("135"). An entry that names no trial is a typo: MocapError."""
    weights = np.array([len(t.joints) for t in trials], dtype=np.float64)
    for key, factor in oversample:
        hits = [i for i, t in enumerate(trials) if key in (t.name, t.name.split("_")[0])]
        if not hits:
            raise MocapError(
                f"--oversample {key}: no training trial or subject has that name; give a trial such as 10_06 or a "
                "subject such as 135 (excluded and validation trials are not trained on)."
            )
        weights[hits] *= factor
    return weights


def make_windows(
    rng: np.random.Generator,
    trials: list[Trial],
    count: int,
    frames: int,
    noise: MediaPipeNoise,
    ranges: CameraRanges,
    *,
    strides: tuple[int, ...] = STRIDES,
    gain: tuple[float, float] = (0.7, 1.5),
    pad_prob: float = 0.1,
    bodies: Bodies | None = None,
    draw: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``count`` training windows → inputs (count, T, 17, 2) normalised screen, targets (count, T, 17, 3) metres.

    ``bodies``: each window is performed by one of them, with anatomical joints (``proportions.Bodies``); None
    keeps the CMU subject's own skeleton. ``draw``: (len(trials),) how often each trial is drawn, relative
    (``draw_weights``); None: in proportion to its length."""
    weights = draw_weights(trials) if draw is None else draw
    chance = weights / weights.sum()
    inputs = np.empty((count, frames, 17, 2), np.float32)
    targets = np.empty((count, frames, 17, 3), np.float32)
    errors = noise.sample_errors(rng, count, frames, rng.uniform(*gain, size=count))
    dropped = noise.dropout_mask(rng, count, frames)
    for i in range(count):
        trial = trials[rng.choice(len(trials), p=chance)]
        stride = int(strides[rng.integers(len(strides))])
        span = (frames - 1) * stride + 1
        if len(trial.joints) >= span:
            start = int(rng.integers(len(trial.joints) - span + 1))
            idx = start + stride * np.arange(frames)
        else:  # short trial: hold its last frame
            idx = np.minimum(stride * np.arange(frames), len(trial.joints) - 1)
        if rng.random() < pad_prob:  # a clip shorter than the window is padded with its last frame at run time
            keep = int(rng.integers(frames // 4, frames))
            idx[keep:] = idx[keep - 1]
        world = trial.joints[idx].astype(np.float64)
        if bodies is not None:
            world = bodies.apply(world, rng)
        rot, eye, k, (w, h) = random_camera(rng, world, ranges)
        cam = (world - eye) @ rot.T
        seen = noise.offset_joints(cam)
        px = project(seen, k) + errors[i] * k[0, 0] / seen[..., 2:3]
        px = _interpolate_masked(px, dropped[i])
        px[:, H36M["pelvis"]] = 0.5 * (px[:, H36M["left_hip"]] + px[:, H36M["right_hip"]])
        shoulders = 0.5 * (px[:, H36M["left_shoulder"]] + px[:, H36M["right_shoulder"]])
        px[:, H36M["spine"]] = 0.5 * (px[:, H36M["pelvis"]] + shoulders)
        inputs[i] = normalize_screen(px, w, h)
        targets[i] = cam - cam[:, H36M["pelvis"] : H36M["pelvis"] + 1]
    return inputs, targets


# --------------------------------------------------------------------------------------------- loss


def mixste_loss(pred: torch.Tensor, gt: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Authors' loss on (B, T, 17, 3): weighted MPJPE + 0.5 temporal consistency + 2 MPJVE."""
    w = torch.tensor(JOINT_WEIGHTS, dtype=pred.dtype, device=pred.device)
    wmpjpe = (w * torch.linalg.norm(pred - gt, dim=-1)).mean()
    dpred = pred[:, 1:] - pred[:, :-1]
    tcl = (w[:, None] * dpred**2).mean()
    mpjve = torch.linalg.norm(dpred - (gt[:, 1:] - gt[:, :-1]), dim=-1).mean()
    total = wmpjpe + 0.5 * tcl + 2.0 * mpjve
    return total, {"wmpjpe": wmpjpe.item(), "tcl": tcl.item(), "mpjve": mpjve.item()}


def flip_batch(x: torch.Tensor, y: torch.Tensor, which: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mirror the windows where ``which`` (B,) is True: 2D and 3D (negate x, swap sides)."""
    x = torch.where(which[:, None, None, None], flip_keypoints_2d(x), x)
    y = torch.where(which[:, None, None, None], unflip_pose_3d(y), y)
    return x, y


@torch.no_grad()
def validate(model: MixSTE2, inputs: torch.Tensor, targets: torch.Tensor, batch: int = 32) -> float:
    """MPJPE (mm) with flip averaging, root-relative, on fixed validation windows."""
    model.eval()
    errs = []
    for s in range(0, len(inputs), batch):
        x = inputs[s : s + batch]
        pred = (model(x) + unflip_pose_3d(model(flip_keypoints_2d(x)))) / 2
        pred = pred - pred[:, :, :1]
        errs.append(torch.linalg.norm(pred - targets[s : s + batch], dim=-1).mean(dim=(1, 2)))
    model.train()
    return float(torch.cat(errs).mean()) * 1000


# --------------------------------------------------------------------------------------------- checkpoint


def save_checkpoint(model: MixSTE2, path: Path, metadata: dict[str, str]) -> None:
    """MixSTE2 state dict (authors' key names, no prefix) as safetensors, written atomically."""
    from safetensors.torch import save_file

    tmp = path.with_name(f".{path.name}.part")
    save_file({k: v.detach().contiguous().float() for k, v in model.state_dict().items()}, str(tmp), metadata=metadata)
    tmp.replace(path)


def train_mixste(
    data: Path,
    out: Path,
    settings: TrainSettings = TrainSettings(),
    *,
    noise: MediaPipeNoise | None = None,
    ranges: CameraRanges = CameraRanges(),
    max_trials: int | None = None,
    init: Path | None = None,
    log: Callable[[str], None] = print,
    progress: Callable[[float, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train MixSTE2 on the CMU trials under ``data`` and write the best-on-validation weights to ``out``.

    ``progress(fraction_done, terms)`` is called after every step; ``log`` gets one line per validation.
    ``init``: start from these MixSTE weights (same window, width and depth) instead of a random initialisation,
    to continue a run with a fresh schedule (the optimiser state is not stored, so it restarts).
    """
    out = Path(out)
    if out.suffix != ".safetensors":
        raise MocapError(
            f"{out.name}: MixSTE training writes .safetensors files; use e.g. --out mixste-cmu.safetensors."
        )
    if not out.parent.is_dir():
        raise MocapError(f"The folder {out.parent} does not exist; create it or choose another --out.")
    noise = noise or MediaPipeNoise.load()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    if settings.threads:
        torch.set_num_threads(settings.threads)

    train_files, val_files = split_trials(find_trials(data))
    if max_trials is not None:
        train_files, val_files = train_files[:max_trials], val_files[: max(1, max_trials // 4)]
    if not train_files or not val_files:
        raise MocapError(f"{data} needs both training and validation trials (see mocap_cli/training/README.md).")
    trials = [load_trial(p) for p in train_files]
    val_trials = [load_trial(p) for p in val_files]
    log(
        f"{len(trials)} training trials ({sum(len(t.joints) for t in trials) / 120 / 60:.1f} min), "
        f"{len(val_trials)} validation trials ({', '.join(t.name for t in val_trials)})"
    )

    draw = draw_weights(trials, settings.oversample)
    bodies = Bodies.load() if settings.body_proportions else None
    val_rng = np.random.default_rng(10_000 + settings.seed)
    vx, vy = make_windows(
        val_rng,
        val_trials,
        settings.val_windows,
        settings.frames,
        noise,
        ranges,
        strides=(4,),
        gain=(1.0, 1.0),
        pad_prob=0.0,
        bodies=bodies,
    )
    val_x, val_y = torch.from_numpy(vx), torch.from_numpy(vy)

    config = MixSTEConfig(
        num_frame=settings.frames, embed_dim=settings.width, depth=settings.depth, num_heads=settings.heads
    )
    model = MixSTE2(config)
    if init is not None:
        from mocap_cli.models.lifters.loading import load_mixste

        start, start_config = load_mixste(init, settings.heads)
        found = (start_config.num_frame, start_config.embed_dim, start_config.depth)
        if found != (settings.frames, settings.width, settings.depth):
            raise MocapError(
                f"{Path(init).name} has {found[0]} frames, width {found[1]}, depth {found[2]}; "
                "give the same --frames, --width and --depth to continue from it."
            )
        model.load_state_dict(start.state_dict())
    else:
        for name, p in model.named_parameters():  # the released code initialises the position tables with zeros
            if "pos_embed" in name:
                torch.nn.init.trunc_normal_(p, std=0.02)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    budget = settings.minutes * 60 if settings.minutes else math.inf
    metadata = {
        "format": "mocap-mixste-1",
        "num_heads": str(settings.heads),
        "settings": json.dumps(asdict(settings)),
        "training_data": "CMU Graphics Lab Motion Capture Database (mocap.cs.cmu.edu), "
        f"{len(trials)} trials; excluded: the rendered evaluation clips' trials",
        "noise_fitted_on": ",".join(noise.fitted_on),
        "bodies": f"{len(bodies.lengths)} sampled Anny bodies, anatomical joints" if bodies else "CMU subjects' own",
        # The lifter's output is scaled to this size at run time (solve/body_size.py).
        BODY_SIZE_KEY: f"{population_body_size(trials, bodies):.4f}",
    }
    if init is not None:
        metadata["initialised_from"] = f"{Path(init).name} (sha256 {sha256_of(Path(init))})"

    best = math.inf
    curve: list[dict[str, float]] = []
    t0 = time.perf_counter()
    last_val = t0
    step, loss_avg = 0, 0.0
    frames_done = 0
    while True:
        elapsed = time.perf_counter() - t0
        done = max(step / settings.steps, elapsed / budget)
        if done >= 1.0:
            break
        lr = settings.lr * min(1.0, (step + 1) / settings.warmup_steps) * 0.5 * (1 + math.cos(math.pi * min(done, 1.0)))
        for group in opt.param_groups:
            group["lr"] = lr
        xb, yb = make_windows(
            rng,
            trials,
            settings.batch_size,
            settings.frames,
            noise,
            ranges,
            gain=settings.noise_gain,
            bodies=bodies,
            draw=draw,
        )
        x, y = flip_batch(
            torch.from_numpy(xb), torch.from_numpy(yb), torch.from_numpy(rng.random(settings.batch_size) < 0.5)
        )
        loss, terms = mixste_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        frames_done += x.shape[0] * x.shape[1]
        loss_avg = loss.item() if step == 1 else 0.98 * loss_avg + 0.02 * loss.item()
        if progress is not None:
            progress(
                min(max(step / settings.steps, (time.perf_counter() - t0) / budget), 1.0), {"loss": loss_avg, **terms}
            )
        now = time.perf_counter()
        if now - last_val >= settings.val_every_s or step == settings.steps or now - t0 >= budget:
            last_val = now
            val = validate(model, val_x, val_y)
            curve.append(
                {
                    "step": step,
                    "seconds": round(now - t0, 1),
                    "train_loss": round(loss_avg, 5),
                    "val_mpjpe_mm": round(val, 2),
                }
            )
            improved = val < best
            if improved:
                best = val
                save_checkpoint(
                    model,
                    out,
                    {**metadata, "steps": str(step), "val_mpjpe_mm": f"{val:.2f}", "curve": json.dumps(curve)},
                )
            log(
                f"step {step}  {now - t0:.0f} s  train loss {loss_avg:.4f}  val MPJPE {val:.1f} mm"
                + ("  (saved)" if improved else "")
            )
    seconds = time.perf_counter() - t0
    if not curve or curve[-1]["step"] != step:
        val = validate(model, val_x, val_y)
        curve.append(
            {
                "step": step,
                "seconds": round(seconds, 1),
                "train_loss": round(loss_avg, 5),
                "val_mpjpe_mm": round(val, 2),
            }
        )
        if val < best:
            best = val
            save_checkpoint(
                model, out, {**metadata, "steps": str(step), "val_mpjpe_mm": f"{val:.2f}", "curve": json.dumps(curve)}
            )
        log(f"step {step}  {seconds:.0f} s  train loss {loss_avg:.4f}  val MPJPE {val:.1f} mm")
    out.with_suffix(".json").write_text(
        json.dumps(
            {
                "settings": asdict(settings),
                "steps": step,
                "seconds": round(seconds, 1),
                "best_val_mpjpe_mm": round(best, 2),
                "curve": curve,
                "train_trials": [t.name for t in trials],
                "val_trials": [t.name for t in val_trials],
            },
            indent=1,
        )
        + "\n"
    )
    return TrainResult(out, step, seconds, frames_done / seconds, best, curve)
