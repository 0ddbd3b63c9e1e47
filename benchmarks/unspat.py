"""UNSPAT inference speed as ``mocap run --model unspat`` runs it: frames/s of the two stages.

1. features: uint8 frames → HybrIK crops (256²) → ResNet-34 trunk, once per frame (kept as float16);
2. windows: one 16-frame window per output frame, gathered from the feature cache → SAM → uncertainty →
   transformer → HybrIK head → IK (float32) on the canonical rest template ("windows", a trained model);
   with HybrIK weights only the temporal part is exactly the identity and only the head runs ("head-only").

Full-size network with fresh (random) weights, the released HybrIK ResNet-34 sizes; synthetic 1280×720
frames. Runs on the CPU, and on CUDA when present, with fp32 and with autocast (float16 on CUDA; on the CPU
``mocap run`` uses fp32 and autocast is a no-op, so the CPU autocast row is left out). Reports frames/s per
stage, overall, and the fp32-vs-autocast difference of the rotation matrices.

A second table measures HybrIK's flip test (``mocap run --model unspat`` with HybrIK-only weights, default on):
the per-frame path (trunk + head + IK) with the flip test off and on (trunk and head also on the mirrored
crops), frames/s and the cost factor.

usage: python benchmarks/unspat.py [--quick] [--frames N] [--device cpu|cuda|all] [--window-batch N] [--flip-only]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mocap_cli.capture.video import Frame
from mocap_cli.models.mesh.crops import SquareBoxes
from mocap_cli.models.unspat import FEATURE_DTYPE, canonical_template, run_windows, stream_features
from mocap_cli.nets.unspat import UNSPAT, UnspatConfig


class StreamingUnspat(nn.Module):
    """For ``benchmarks/mesh.py``: (clips, T, 3, S, S) crops, each clip read as T consecutive video frames, →
    per-frame rotmats/betas/cam the way ``mocap run --model unspat`` computes them (trunk once per frame into a
    float16 feature cache on the CPU, then one window per output frame). Crops of another size are resized to
    the network's 256²; ``trained=False`` takes the exact head-only path of HybrIK-only weights."""

    def __init__(self, model: UNSPAT, trained: bool = True) -> None:
        super().__init__()
        self.model, self.trained, self.template = model, trained, canonical_template()

    def forward(self, x: torch.Tensor):  # type: ignore[no-untyped-def]
        clips, length = x.shape[:2]
        size = self.model.cfg.img_size
        images = x.reshape(clips * length, *x.shape[2:])
        if images.shape[-1] != size:
            images = F.interpolate(images, size=(size, size), mode="bilinear", align_corners=False)
        f = self.model.backbone(images)
        feats = f.to("cpu", FEATURE_DTYPE).reshape(clips, length, *f.shape[1:])
        device = x.device
        amp = torch.is_autocast_enabled(device.type)
        seqs = [
            run_windows(self.model, f, self.template, device=device, autocast=amp, skip_identity=not self.trained)
            for f in feats
        ]

        class Out:
            rotmats = torch.from_numpy(np.stack([s.rotmats for s in seqs])).reshape(-1, 24, 3, 3)
            betas = torch.from_numpy(np.stack([s.betas for s in seqs])).reshape(-1, 10)
            cam = torch.from_numpy(np.stack([s.cam for s in seqs])).reshape(-1, 3)

        return Out()


def _frames(n: int, seed: int = 0) -> list[Frame]:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (720, 1280, 3), dtype=np.uint8)
    return [Frame(i, i / 30.0, np.roll(base, 3 * i, axis=1)) for i in range(n)]


def _windows(n: int) -> SquareBoxes:
    t = np.arange(n)
    centers = np.stack([640 + 50 * np.sin(t / 10), 360 + 10 * np.cos(t / 7)], -1)
    return SquareBoxes(centers, np.full(n, 600.0))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(model: UNSPAT, frames: list[Frame], device: torch.device, autocast: bool, window_batch: int) -> dict:
    windows = _windows(len(frames))
    tpl = canonical_template()
    model = model.to(device).eval()
    if device.type == "cuda":  # warm-up: cudnn autotune, allocator
        f = stream_features(model.backbone, iter(frames[:8]), windows[:8], 256, device=device, autocast=autocast)
        run_windows(model, f, tpl, device=device, autocast=autocast, batch=window_batch)
        _sync(device)
    it: Iterator[Frame] = iter(frames)
    t0 = time.perf_counter()
    feats = stream_features(model.backbone, it, windows, 256, device=device, autocast=autocast)
    _sync(device)
    t1 = time.perf_counter()
    seq = run_windows(model, feats, tpl, device=device, autocast=autocast, batch=window_batch, skip_identity=False)
    _sync(device)
    t2 = time.perf_counter()
    run_windows(model, feats, tpl, device=device, autocast=autocast, batch=window_batch, skip_identity=True)
    _sync(device)
    t3 = time.perf_counter()
    n = len(frames)
    return {
        "features_fps": n / (t1 - t0),
        "windows_fps": n / (t2 - t1),
        "total_fps": n / (t2 - t0),
        "head_only_fps": n / (t3 - t2),
        "untrained_total_fps": n / (t1 - t0 + t3 - t2),
        "rotmats": seq.rotmats,
    }


def bench_flip(model: UNSPAT, frames: list[Frame], device: torch.device, autocast: bool, window_batch: int) -> dict:
    """Per-frame HybrIK path (untrained temporal part) without and with the flip test: frames/s of each."""
    windows = _windows(len(frames))
    tpl = canonical_template()
    model = model.to(device).eval()
    out = {}
    for flip in (False, True):
        if device.type == "cuda":
            f = stream_features(
                model.backbone, iter(frames[:8]), windows[:8], 256, device=device, autocast=autocast, flip=flip
            )
            run_windows(
                model,
                f[0] if flip else f,
                tpl,
                device=device,
                autocast=autocast,
                batch=window_batch,
                flipped=f[1] if flip else None,
            )
            _sync(device)
        t0 = time.perf_counter()
        feats = stream_features(model.backbone, iter(frames), windows, 256, device=device, autocast=autocast, flip=flip)
        plain, flipped = (feats[0], feats[1]) if flip else (feats, None)
        run_windows(model, plain, tpl, device=device, autocast=autocast, batch=window_batch, flipped=flipped)
        _sync(device)
        out["on" if flip else "off"] = len(frames) / (time.perf_counter() - t0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="16 frames, CPU fp32 (+ CUDA when present)")
    ap.add_argument("--frames", type=int, default=64)
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--window-batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    ap.add_argument("--flip-only", action="store_true", help="only the flip-test table")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    n = 16 if args.quick else args.frames
    torch.manual_seed(0)
    model = UNSPAT(UnspatConfig())
    frames = _frames(n)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    print(
        f"UNSPAT inference, {n} frames 1280x720, window batch {args.window_batch}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} CPU threads"
    )
    if not args.flip_only:
        table(model, frames, devices, args.window_batch)
    print("\nHybrIK per-frame path (HybrIK-only weights), flip test off / on")
    print("| device | precision | fps flip off | fps flip on | cost factor |")
    print("|---|---|---|---|---|")
    for device in devices:
        for amp in [False] if device.type == "cpu" else [False, True]:
            r = bench_flip(model, frames, device, amp, args.window_batch)
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
            print(
                f"| {name} | {'autocast fp16' if amp else 'fp32'} | {r['off']:.2f} | {r['on']:.2f} | "
                f"{r['off'] / r['on']:.2f}x |"
            )


def table(model: UNSPAT, frames: list[Frame], devices: list[torch.device], window_batch: int) -> None:
    """The main table: per stage, per device and precision."""
    print(
        "| device | precision | features fps | windows fps | total fps | head-only fps (untrained) | total fps "
        "(untrained) | max abs rot diff vs fp32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for device in devices:
        modes = [False] if device.type == "cpu" else [False, True]
        ref = None
        for amp in modes:
            r = bench(model, frames, device, amp, window_batch)
            diff = "-" if ref is None else f"{np.abs(r['rotmats'] - ref).max():.2e}"
            ref = r["rotmats"] if ref is None else ref
            name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
            print(
                f"| {name} | {'autocast fp16' if amp else 'fp32'} | {r['features_fps']:.2f} | {r['windows_fps']:.2f} | "
                f"{r['total_fps']:.2f} | {r['head_only_fps']:.2f} | {r['untrained_total_fps']:.2f} | {diff} |"
            )


if __name__ == "__main__":
    main()
