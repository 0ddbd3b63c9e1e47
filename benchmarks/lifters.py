"""Throughput of the keypoint lifters at the released sizes: frames per second of whole-clip lifting.

Runs ``lifting.lift_clip`` (the path ``mocap run --model mixste|strided`` takes, flip averaging on) on a
random clip with randomly initialised networks of the released shapes (speed does not depend on the
weights): MixSTE 243x512x8 and 81x512x8, Strided Transformer 351 frames (3/9/13 strides). CPU always;
CUDA (fp32 and float16 autocast) when a GPU is present.

    python benchmarks/lifters.py --quick            # a short run (a few minutes on a small CPU)
    python benchmarks/lifters.py --markdown         # full run, markdown table for a README / report

Frames/s counts output frames: MixSTE lifts T frames per window (the last window of a clip overlaps),
Strided runs one window per output frame, so their costs scale differently with the clip length.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mocap_cli.models.lifters.windows import lift_clip  # noqa: E402
from mocap_cli.nets.mixste import MixSTE2, MixSTEConfig  # noqa: E402
from mocap_cli.nets.strided import StridedConfig, StridedTransformer  # noqa: E402


@dataclass(frozen=True)
class Case:
    label: str
    build: object  # () -> nn.Module
    window: int
    frames: int  # clip length lifted per measurement


def cases(quick: bool, model_filter: str) -> list[Case]:
    out = [
        Case("MixSTE 243x512x8", lambda: MixSTE2(MixSTEConfig(num_frame=243)), 243, 243 if quick else 243 * 8),
        Case("MixSTE 81x512x8", lambda: MixSTE2(MixSTEConfig(num_frame=81)), 81, 162 if quick else 243 * 8),
        Case("Strided 351 (3/9/13)", lambda: StridedTransformer(StridedConfig()), 351, 16 if quick else 512),
    ]
    return [c for c in out if model_filter in c.label.lower()]


def clip(frames: int, seed: int = 0) -> np.ndarray:
    """A plausible normalised keypoint clip: a fixed body outline with smooth random motion (shape (F, 17, 2))."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(-0.3, 0.3, size=(1, 17, 2))
    drift = np.cumsum(rng.normal(scale=0.003, size=(frames, 17, 2)), axis=0)
    return (base + drift).astype(np.float32)


def measure(model: torch.nn.Module, kp: np.ndarray, batch: int, device: str, autocast: bool, repeats: int) -> float:
    """Best-of-``repeats`` frames per second of ``lift_clip`` on ``kp``."""
    best = float("inf")
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        lift_clip(model, kp, flip=True, batch_size=batch, device=device, autocast=autocast)
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return len(kp) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="short clips, fewer batch sizes, one repeat")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", help="windows per forward pass (default: 1 4 16, quick: 1 4)"
    )
    parser.add_argument("--model", default="", help="only cases whose label contains this (e.g. mixste, strided, 243)")
    parser.add_argument("--markdown", action="store_true", help="also print the table as markdown")
    args = parser.parse_args(argv)

    torch.manual_seed(0)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no CUDA GPU is available")
    devices = {"cpu": ["cpu"], "cuda": ["cuda"]}.get(
        args.device, ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    )
    batches = args.batch_sizes or ([1, 4] if args.quick else [1, 4, 16])
    repeats = 1 if args.quick else 3
    console = Console() if sys.stdout.isatty() else Console(width=130)
    env = f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    if "cuda" in devices:
        env += f", {torch.cuda.get_device_name(0)}"

    rows: list[tuple[str, ...]] = []
    for case in cases(args.quick, args.model.lower()):
        net = case.build().eval()
        kp = clip(case.frames)
        windows = len(range(0, case.frames, case.window)) if "MixSTE" in case.label else case.frames
        for device in devices:
            for autocast in [False, True] if device == "cuda" else [False]:
                if device == "cuda":
                    measure(net, kp[: case.window], 1, device, autocast, 1)  # warm-up (allocations, kernels)
                for batch in batches:
                    if "MixSTE" in case.label and batch > windows and batch != batches[0]:
                        continue  # every window already fits in one batch: same as the previous row
                    fps = measure(net, kp, batch, device, autocast, repeats)
                    precision = "fp16 autocast" if autocast else "fp32"
                    rows.append(
                        (case.label, str(case.window), device, precision, str(batch), str(case.frames), f"{fps:.1f}")
                    )
                    console.print(" | ".join(rows[-1]), style="dim", highlight=False)
        net.to("cpu")

    headers = ("model", "window", "device", "precision", "batch (windows)", "clip frames", "frames/s")
    table = Table(*headers, title=f"lifter throughput, flip averaging on ({env})", title_justify="left")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    if args.markdown:
        print(f"\nLifter throughput, flip averaging on ({env})\n")
        print("| " + " | ".join(headers) + " |")
        print("|" + "---|" * len(headers))
        for row in rows:
            print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
