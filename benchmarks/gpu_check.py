"""GPU check: every learned model on CUDA (fp32 vs autocast, speed, memory) and the pipeline end to end.

One command, ≤ 8 minutes on one GPU, prints one markdown table:

* every network with full-size random weights in the authors' layouts (MixSTE 243, Strided 351, MAED, INT,
  UNSPAT with a trained-shape temporal part, HybrIK-only UNSPAT): CUDA fp32 vs float16 autocast outputs on the
  rendered clips' real inputs (lifters: the clips' exact 2D H36M-17 keypoints; image models: person crops of
  the rendered frames) — max / mean abs difference of joints in mm (lifters: their 3D joints; image models:
  their SMPL rotations through the canonical skeleton) and of rotations in degrees; frames/s at batch sizes
  1 / 8 / 32 (lifters: windows per forward, flip averaging on; image models: clips per forward); peak GPU memory;
* the default pipeline end to end on a 1080p clip with ``--device cuda`` (frames/s, wall time);
* ``mocap batch --jobs 4`` on 8 rendered clips (clips done, wall time).

Without CUDA it exits with one sentence. ``--device cpu --quick`` is a dry run of the same logic with tiny
network configs, few frames and a 5-frame clip (what the tests run); its numbers mean nothing.

usage: python benchmarks/gpu_check.py [--device cuda|cpu] [--quick] [--batches 1,8,32] [--skip-pipeline]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/unspat.py (StreamingUnspat)

from mocap_cli.capture.keypoints import normalize_screen
from mocap_cli.capture.video import iter_frames
from mocap_cli.core.rotations import quat_from_matrix
from mocap_cli.core.skeleton import canonical_skeleton, forward_kinematics
from mocap_cli.models.mesh.crops import CROP_SCALE, boxes_from_landmarks, warp_crops

SHARED = Path(os.environ.get("MOCAP_SHARED_DIR", Path(__file__).resolve().parents[2] / "shared"))
NO_CUDA = (
    "No CUDA device is available, so the GPU check cannot run; run it on a machine with an NVIDIA GPU, "
    "or use --device cpu --quick for a dry run."
)
BIG_CLIP = "fitness_dance_white_bg.mp4"  # 1920x1080, 300 frames
SMALL_CLIP = "street_walk_5frames.mp4"


@dataclass
class Case:
    """One network: how to build it and how to run it on ``batch`` units of the shared inputs."""

    name: str
    kind: str  # "lifter" | "mesh" | "unspat"
    build: Callable[[], torch.nn.Module]
    clip_length: int  # frames per clip (image models)


@dataclass
class Inputs:
    keypoints: np.ndarray  # (F, 17, 2) normalised screen coordinates (the lifters' input)
    crops224: torch.Tensor  # (N, 3, 224, 224) ImageNet-normalised MAED/INT crops
    crops256: torch.Tensor  # (N, 3, 256, 256) HybrIK-normalised UNSPAT crops


def cases(quick: bool) -> list[Case]:
    from unspat import StreamingUnspat  # benchmarks/unspat.py

    from mocap_cli.nets.int_hmr import INT, INTConfig
    from mocap_cli.nets.maed import MAED, MAEDConfig
    from mocap_cli.nets.mixste import MixSTE2, MixSTEConfig
    from mocap_cli.nets.strided import StridedConfig, StridedTransformer
    from mocap_cli.nets.unspat import UNSPAT, UnspatConfig

    tiny = {"layers": (1, 1, 1), "channels": (128, 128, 128), "stem_chs": 32}
    if quick:
        return [
            Case(
                "MixSTE (tiny)",
                "lifter",
                lambda: MixSTE2(MixSTEConfig(num_frame=27, embed_dim=32, depth=2, num_heads=2)),
                1,
            ),
            Case(
                "Strided (tiny)",
                "lifter",
                lambda: StridedTransformer(
                    StridedConfig(layers=1, channel=32, d_hid=64, frames=27, stride_num=(3, 3, 3))
                ),
                1,
            ),
            Case(
                "MAED (tiny)",
                "mesh",
                lambda: MAED(
                    MAEDConfig(embed_dim=64, num_blocks=1, num_heads=1, representation_size=64, hidden_dim=64, **tiny)
                ),
                4,
            ),
            Case(
                "INT (tiny)",
                "mesh",
                lambda: INT(
                    INTConfig(embed_dim=64, depth=1, num_heads=1, temporal_layers=1, temporal_num_heads=1, **tiny)
                ),
                4,
            ),
            Case(
                "UNSPAT (tiny)", "unspat", lambda: StreamingUnspat(UNSPAT(UnspatConfig(deconv=(16, 16, 16))), True), 4
            ),
        ]
    return [
        Case("MixSTE 243", "lifter", lambda: MixSTE2(MixSTEConfig(num_frame=243)), 1),
        Case("Strided 351", "lifter", lambda: StridedTransformer(StridedConfig()), 1),
        Case("MAED", "mesh", lambda: MAED(), 16),
        Case("INT", "mesh", lambda: INT(), 16),
        Case("UNSPAT (temporal)", "unspat", lambda: StreamingUnspat(UNSPAT(), True), 16),
        Case("UNSPAT (HybrIK only)", "unspat", lambda: StreamingUnspat(UNSPAT(), False), 16),
    ]


def load_inputs(frames_per_clip: int, clips: int, keypoint_frames: int | None = None) -> Inputs:
    """Real inputs from the rendered clips: exact 2D keypoints, and crops around the true joints."""
    from mocap_cli.models.unspat import hybrik_crops

    folders = sorted(p for p in (SHARED / "data" / "synthetic").iterdir() if (p / "gt.npz").is_file())[:clips]
    if not folders:
        raise SystemExit(f"No rendered clips found under {SHARED / 'data' / 'synthetic'}; set MOCAP_SHARED_DIR.")
    kps, c224, c256 = [], [], []
    for folder in folders:
        gt = np.load(folder / "gt.npz")
        w, h = (int(v) for v in gt["image_size"])
        proj = gt["h36m17"].astype(np.float64) @ gt["K"].astype(np.float64).T
        kps.append(normalize_screen(proj[:keypoint_frames, :, :2] / proj[:keypoint_frames, :, 2:], w, h))
        images = []
        for frame in iter_frames(folder / "video.mp4"):
            images.append(frame.image)
            if len(images) == frames_per_clip:
                break
        images_np = np.stack(images)
        boxes = boxes_from_landmarks(gt["joints2d"][: len(images_np)].astype(np.float64))
        c224.append(warp_crops(images_np, boxes.scaled(CROP_SCALE["maed"]), 224))
        c256.append(hybrik_crops(images_np, boxes.scaled(1.25), 256, "cpu"))
    return Inputs(np.concatenate(kps), torch.cat(c224), torch.cat(c256))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def _clips(crops: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """(count, length, 3, S, S) clips of consecutive crops, cycling through the available ones."""
    idx = torch.arange(count * length) % crops.shape[0]
    return crops[idx].reshape(count, length, *crops.shape[1:])


def run_case(
    case: Case, net: torch.nn.Module, data: Inputs, batch: int, device: torch.device, amp: bool
) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """(joints (N, J, 3) metres or None, rotations (N, 24, 3, 3) or None, frames) of one forward schedule."""
    from mocap_cli.models.lifters.windows import lift_clip

    if case.kind == "lifter":
        joints = lift_clip(net, data.keypoints, flip=True, batch_size=batch, device=str(device), autocast=amp)
        return joints, None, len(data.keypoints)
    crops = data.crops224 if case.kind == "mesh" else data.crops256
    x = _clips(crops, batch, case.clip_length).to(device)
    with torch.no_grad(), _autocast(device, amp):
        out = net(x)
    rot = out.rotmats.float().cpu().numpy().reshape(-1, 24, 3, 3)
    return None, rot, batch * case.clip_length


def fk_joints(rotmats: np.ndarray) -> np.ndarray:
    """SMPL local rotations (N, 24, 3, 3) → canonical-skeleton joints (N, 24, 3), root at the origin."""
    sk = canonical_skeleton()
    q = quat_from_matrix(rotmats.astype(np.float64))
    joints, _ = forward_kinematics(sk, q, np.zeros((len(rotmats), 3)))
    return joints


def rotation_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Geodesic angle (degrees) between rotation matrices (..., 3, 3)."""
    rel = np.einsum("...ji,...jk->...ik", a, b)
    cos = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    return np.degrees(np.arccos(cos))


def model_rows(case: Case, data: Inputs, device: torch.device, batches: list[int]) -> list[list[str]]:
    torch.manual_seed(0)
    net = case.build().to(device).eval()
    rows = []
    # parity at the middle batch size: same input, same weights, fp32 vs autocast
    joints32, rot32, _ = run_case(case, net, data, batches[min(1, len(batches) - 1)], device, False)
    joints16, rot16, _ = run_case(case, net, data, batches[min(1, len(batches) - 1)], device, True)
    if rot32 is not None:
        joints32, joints16 = fk_joints(rot32), fk_joints(rot16)
        deg = rotation_degrees(rot32, rot16)
        rot_cell = f"{deg.max():.3f} / {deg.mean():.4f}"
    else:
        rot_cell = "-"
    mm = np.linalg.norm(joints32 - joints16, axis=-1) * 1000
    parity = [f"{mm.max():.3f} / {mm.mean():.4f}", rot_cell]
    for batch in batches:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        run_case(case, net, data, batch, device, device.type == "cuda")  # warm-up (cudnn autotune, allocator)
        _sync(device)
        t0 = time.perf_counter()
        _, _, frames = run_case(case, net, data, batch, device, device.type == "cuda")
        _sync(device)
        fps = frames / (time.perf_counter() - t0)
        peak = f"{torch.cuda.max_memory_allocated(device) / 2**20:.0f}" if device.type == "cuda" else "-"
        rows.append([case.name, str(batch), f"{fps:.1f}", peak, *parity])
    del net
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def _mocap(args: list[str], timeout: float) -> tuple[int, float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "mocap_cli.cli", *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return proc.returncode, time.perf_counter() - t0, tail[-1] if tail else ""


def pipeline_rows(device: torch.device, quick: bool) -> list[list[str]]:
    """The default pipeline on a 1080p clip, and ``mocap batch --jobs 4`` on 8 rendered clips."""
    from mocap_cli.capture.video import probe

    rows = []
    clip = SHARED / "data" / "videos" / (SMALL_CLIP if quick else BIG_CLIP)
    frames = probe(clip).frame_count
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.glb"
        code, secs, last = _mocap(["run", str(clip), "-e", str(out), "--device", device.type], 300)
        ok = code == 0 and out.is_file()
        rate = f"{frames / secs:.1f}" if ok and frames else "-"
        rows.append(
            [
                f"mocap run {clip.name} --device {device.type}",
                "-",
                rate,
                "-",
                "-",
                "-",
                f"{'ok' if ok else 'FAILED: ' + last} in {secs:.1f} s",
            ]
        )
        src = Path(tmp) / "clips"
        src.mkdir()
        folders = sorted(p for p in (SHARED / "data" / "synthetic").iterdir() if (p / "video.mp4").is_file())
        count, jobs = (2, 2) if quick else (8, 4)
        for i in range(count):
            video = (SHARED / "data" / "videos" / SMALL_CLIP) if quick else folders[i % len(folders)] / "video.mp4"
            os.symlink(video, src / f"clip{i}_{video.parent.name if not quick else 'walk'}.mp4")
        dst = Path(tmp) / "out"
        code, secs, last = _mocap(
            ["batch", str(src), "-o", str(dst), "--jobs", str(jobs), "--device", device.type], 400
        )
        done = len(list(dst.rglob("*.glb"))) if dst.is_dir() else 0
        rows.append(
            [
                f"mocap batch --jobs {jobs} ({count} clips)",
                "-",
                "-",
                "-",
                "-",
                "-",
                f"{done}/{count} clips written, exit {code}, {secs:.1f} s" + ("" if code == 0 else f": {last}"),
            ]
        )
        shutil.rmtree(src, ignore_errors=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="dry run: tiny configs, few frames, a 5-frame clip")
    ap.add_argument("--batches", default="", help="comma-separated batch sizes (default 1,8,32; quick: 1,2)")
    ap.add_argument("--skip-pipeline", action="store_true", help="networks only")
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit(NO_CUDA)
    device = torch.device(args.device)
    batches = [int(b) for b in args.batches.split(",")] if args.batches else ([1, 2] if args.quick else [1, 8, 32])
    data = load_inputs(8 if args.quick else 64, 2 if args.quick else 9, 24 if args.quick else None)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    precision = "float16 autocast" if device.type == "cuda" else "bfloat16 autocast (lifters: fp32)"
    print(
        f"GPU check on {name}, torch {torch.__version__}; speed with {precision if device.type == 'cuda' else 'fp32'}; "
        f"parity fp32 vs {precision}{' (DRY RUN: tiny configs)' if args.quick else ''}"
    )
    header = ["item", "batch", "frames/s", "peak GPU MiB", "joints Δ max / mean (mm)", "rotations Δ max / mean (°)"]
    rows: list[list[str]] = []
    for case in cases(args.quick):
        rows += [r + [""] for r in model_rows(case, data, device, batches)]
    if not args.skip_pipeline:
        rows += pipeline_rows(device, args.quick)
    header.append("note")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
