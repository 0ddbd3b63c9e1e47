"""Mesh-network speed: clips/s and frames/s of the full-size networks (random weights, the released sizes),
on the CPU and on CUDA when present, fp32 and autocast, with the autocast-vs-fp32 output difference.

usage: python benchmarks/mesh.py [--quick] [--device cpu|cuda|all] [--repeats N] [--only MAED,INT] [--cpu-autocast]

One "batch" is one 128-frame window of the authors' evaluation schedule (MAED: 8 clips × 16 frames; INT:
2 clips × 64 frames), i.e. what ``run_clip_model`` feeds per forward. ``--quick`` runs one 16-frame clip per
model (INT then runs T=16 instead of its evaluation T=64), one timed repeat, CPU fp32 only (plus CUDA when
present; ``--cpu-autocast`` adds the CPU bf16 row). Autocast is float16 on CUDA (what ``mocap run`` uses) and bfloat16
on the CPU (reported for the
record; ``mocap run`` runs fp32 on the CPU). Parity: max |Δ| of rotation matrices, betas and camera
between autocast and fp32 on the same input and weights. Prints a markdown table.

UNSPAT's rows come from ``unspat_factory`` (``benchmarks/unspat.py`` has the per-stage UNSPAT benchmark).
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from mocap_cli.models.mesh.inference import SCHEDULES


@dataclass
class BenchNet:
    name: str
    net: nn.Module
    clip_length: int  # T the authors evaluate
    clips_per_window: int


def maed_factory() -> BenchNet:
    from mocap_cli.nets.maed import MAED

    s = SCHEDULES["maed"]
    return BenchNet("MAED", MAED(), s.seqlen, s.stride)


def int_factory() -> BenchNet:
    from mocap_cli.nets.int_hmr import INT

    s = SCHEDULES["int"]
    return BenchNet("INT", INT(), s.seqlen, s.stride)


def unspat_factory(trained: bool = True) -> BenchNet | None:
    """UNSPAT as ``mocap run`` runs it (``benchmarks/unspat.py``: trunk once per frame, one 16-frame window per
    output frame); ``trained=False``: HybrIK-only weights, where only the head runs. 8 clips × 16 frames."""
    from unspat import StreamingUnspat  # benchmarks/unspat.py, beside this script

    from mocap_cli.nets.unspat import UNSPAT

    return BenchNet("UNSPAT" if trained else "UNSPAT (HybrIK only)", StreamingUnspat(UNSPAT(), trained), 16, 8)


FACTORIES: dict[str, Callable[[], BenchNet | None]] = {
    "MAED": maed_factory,
    "INT": int_factory,
    "UNSPAT": unspat_factory,
    "UNSPAT-HYBRIK": lambda: unspat_factory(False),
}


def _amp(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    if not enabled:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def _time(net: nn.Module, x: torch.Tensor, device: torch.device, autocast: bool, repeats: int):  # type: ignore[no-untyped-def]
    if device.type == "cuda":
        with _amp(device, autocast):
            net(x)  # warm-up (cudnn autotune, allocator)
        _sync(device)
    t0 = time.perf_counter()
    out = None
    for _ in range(repeats):
        with _amp(device, autocast):
            out = net(x)
    _sync(device)
    return (time.perf_counter() - t0) / repeats, out


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).abs().max())


def bench(
    bn: BenchNet, device: torch.device, quick: bool, repeats: int, cpu_autocast: bool = False
) -> list[dict[str, str]]:
    torch.manual_seed(0)
    net = bn.net.to(device).eval()
    clips, length = (1, 16) if quick else (bn.clips_per_window, bn.clip_length)
    x = torch.randn(clips, length, 3, 224, 224, device=device)
    rows = []
    modes = [False] if quick and device.type == "cpu" and not cpu_autocast else [False, True]
    reference = None
    for autocast in modes:
        seconds, out = _time(net, x, device, autocast, repeats)
        if not autocast:
            reference = out
            parity = "-"
        else:
            assert reference is not None
            parity = (
                f"R {_max_diff(out.rotmats, reference.rotmats):.1e}, β {_max_diff(out.betas, reference.betas):.1e}, "
                f"cam {_max_diff(out.cam, reference.cam):.1e}"
            )
        precision = "fp32" if not autocast else ("fp16 autocast" if device.type == "cuda" else "bf16 autocast")
        rows.append(
            {
                "model": bn.name,
                "device": device.type,
                "precision": precision,
                "batch": f"{clips}×{length}",
                "s/batch": f"{seconds:.2f}",
                "clips/s": f"{clips / seconds:.2f}",
                "frames/s": f"{clips * length / seconds:.1f}",
                "parity vs fp32": parity,
            }
        )
    net.to("cpu")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--device", default="all", choices=["cpu", "cuda", "all"])
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated model names (default: all)")
    ap.add_argument("--cpu-autocast", action="store_true", help="also time CPU bf16 autocast in --quick")
    args = ap.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    devices = []
    if args.device in ("cpu", "all"):
        devices.append(torch.device("cpu"))
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append(torch.device("cuda"))
    columns = ["model", "device", "precision", "batch", "s/batch", "clips/s", "frames/s", "parity vs fp32"]
    print(
        f"torch {torch.__version__}, CPU threads {torch.get_num_threads()}"
        + (f", {torch.cuda.get_device_name()}" if torch.cuda.is_available() else "")
    )
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    only = {n.strip().upper() for n in args.only.split(",") if n.strip()}
    for name, factory in FACTORIES.items():
        if only and name not in only:
            continue
        bn = factory()
        if bn is None:
            print(f"| {name} | – | – | – | – | – | – | not available yet |")
            continue
        for device in devices:
            for row in bench(bn, device, args.quick, repeats, args.cpu_autocast):
                print("| " + " | ".join(row[c] for c in columns) + " |", flush=True)


if __name__ == "__main__":
    main()
