"""``mocap train``: train models the tool can run. ``mocap train unspat`` trains UNSPAT's temporal modules
(and head) on rendered clips with ground truth (``<data>/<clip>/{video.mp4, gt.npz}``), backbone frozen.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from mocap_cli.commands import user_errors
from mocap_cli.errors import MocapError

app = typer.Typer(help="Train a model's learnable parts on clips with ground truth.", no_args_is_help=True)
_console = Console(stderr=True, soft_wrap=True)


@app.callback()
def _train() -> None:
    """Train a model's learnable parts on clips with ground truth."""


class _TrainLog:
    """Feeds ``train_unspat``'s log lines to a progress bar (steps) and prints the others."""

    def __init__(self, progress: Progress | None, task: int | None, console: Console) -> None:
        self.progress, self.task, self.console = progress, task, console
        self.last = ""

    def __call__(self, line: str) -> None:
        if line.startswith("step ") and self.progress is not None and self.task is not None:
            done = int(line.split()[1].split("/")[0])
            terms = dict(kv.split("=", 1) for kv in line.split()[2:] if "=" in kv)
            self.progress.update(self.task, completed=done, loss=f"loss {terms.get('total', '?')}")
            self.last = line
        elif not line.startswith("wrote "):  # the command reports the written files itself
            self.console.print(line, highlight=False)


@app.command("unspat")
@user_errors
def unspat(
    data: Path = typer.Option(..., "--data", help="Folder of clips: <clip>/video.mp4 + <clip>/gt.npz."),
    out: Path = typer.Option(..., "--out", help="Checkpoint to write (.safetensors; a .json is written beside it)."),
    steps: int = typer.Option(1000, "--steps", min=1, help="Optimiser steps."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Clips per step."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    init_weights: Optional[Path] = typer.Option(
        None,
        "--init-weights",
        help="HybrIK ResNet-34 file (.pth) to start from, as the paper does; without it everything starts random.",
    ),
    img_size: int = typer.Option(256, "--img-size", min=32, help="Crop size (multiple of 32; HybrIK uses 256)."),
    seq_len: int = typer.Option(16, "--seq-len", min=2, help="Frames per window (the paper: 16)."),
    lr: float = typer.Option(1e-4, "--lr", help="Adam learning rate."),
    max_clips: Optional[int] = typer.Option(None, "--max-clips", min=1, help="Use only the first N clips."),
    max_frames: Optional[int] = typer.Option(
        None, "--max-frames", min=2, help="Use only the first N frames of each clip."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train UNSPAT (SAM, uncertainty network, transformer, head) and write a checkpoint for `--model unspat
    --weights`."""
    try:
        from mocap_cli.models.base import resolve_device
        from mocap_cli.settings import check_device
        from mocap_cli.training.unspat import train_unspat

        if init_weights is not None and not init_weights.is_file():
            raise MocapError(f"{init_weights} does not exist; give the HybrIK ResNet-34 .pth file for --init-weights.")
        if not data.is_dir():
            raise MocapError(f"{data} is not a folder; give the folder holding <clip>/video.mp4 and gt.npz.")
        if out.suffix not in ("", ".safetensors"):
            raise MocapError(
                f"{out.name}: UNSPAT checkpoints are .safetensors files; use e.g. --out unspat.safetensors."
            )
        dev = resolve_device(check_device(device))
        columns = [
            TextColumn("[bold]train unspat"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=_console, disable=quiet) as progress:
            task = progress.add_task("train", total=steps, loss="")
            log = _TrainLog(progress, task, _console)
            result = train_unspat(
                data,
                out,
                steps=steps,
                batch_size=batch_size,
                device=dev,
                init_weights=init_weights,
                log=log,
                seq_len=seq_len,
                img_size=img_size,
                lr=lr,
                max_clips=max_clips,
                max_frames=max_frames,
                seed=seed,
            )
    except KeyboardInterrupt:
        _console.print("[yellow]interrupted; no checkpoint was written.[/]")
        raise typer.Exit(130) from None
    first, last = result.losses[0], result.losses[-1]
    _console.print(f"loss {first:.4f} → {last:.4f} over {result.steps} steps", highlight=False)
    if result.terms:
        _console.print(
            "final terms: " + ", ".join(f"{k} {v:.4f}" for k, v in result.terms[-1].items()), highlight=False
        )
    _console.print(f"wrote {result.checkpoint} (+ {result.checkpoint.with_suffix('.json').name})", highlight=False)


def _oversample_entry(text: str) -> tuple[str, float]:
    """ "10_06=4" → ("10_06", 4.0)."""
    key, _, factor = text.partition("=")
    try:
        value = float(factor)
    except ValueError:
        value = math.nan
    if not key or not math.isfinite(value) or value <= 0:
        raise MocapError(
            f"--oversample {text} is not TRIAL=FACTOR with a positive factor; write e.g. 10_06=4 or 135=3."
        )
    return key, value


@app.command("mixste")
@user_errors
def mixste(
    data: Path = typer.Option(
        ..., "--data", help="CMU ASF/AMC folder (cmu_asfamc/<subject>/*.asf, *.amc, or its parent)."
    ),
    out: Path = typer.Option(
        ..., "--out", help="Weights to write (.safetensors; a .json with the curve is written beside it)."
    ),
    minutes: Optional[float] = typer.Option(
        None,
        "--minutes",
        min=0.1,
        help="Wall-clock budget; the learning-rate schedule spans it and the best weights so far are always on disk.",
    ),
    steps: int = typer.Option(
        100_000, "--steps", min=1, help="Optimiser steps (the run ends at --steps or --minutes)."
    ),
    frames: int = typer.Option(81, "--frames", min=9, help="Window length T."),
    width: int = typer.Option(64, "--width", min=8, help="Channels (multiple of 8: the loader assumes 8 heads)."),
    depth: int = typer.Option(3, "--depth", min=1, help="Spatial/temporal block pairs."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, help="Windows per step."),
    lr: float = typer.Option(1e-3, "--lr", help="Peak AdamW learning rate."),
    val_every: float = typer.Option(120.0, "--val-every", min=1.0, help="Seconds between validations."),
    threads: Optional[int] = typer.Option(None, "--threads", min=1, help="CPU threads for torch."),
    max_trials: Optional[int] = typer.Option(
        None, "--max-trials", min=1, help="Use only the first N training trials (smoke tests)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    init: Optional[Path] = typer.Option(
        None, "--init", help="Continue from these MixSTE weights (same --frames, --width, --depth), fresh schedule."
    ),
    cmu_bodies: bool = typer.Option(
        False,
        "--cmu-bodies",
        help="Keep the CMU subjects' own skeletons instead of sampled bodies with anatomical joints "
        "(mocap_cli/training/README.md).",
    ),
    oversample: list[str] = typer.Option(
        [],
        "--oversample",
        metavar="KEY=FACTOR",
        help="TRIAL=FACTOR or SUBJECT=FACTOR (e.g. 10_06=4, 135=3): draw windows from those trials FACTOR times "
        "as often. Repeat for several.",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Train MixSTE on CMU motion capture (inputs made to look like MediaPipe's) for `--model mixste --weights`."""
    try:
        from mocap_cli.training.mixste import TrainSettings, train_mixste

        if not data.is_dir():
            raise MocapError(f"{data} is not a folder; unpack cmu_asfamc.tar.xz and give the cmu_asfamc folder.")
        if width % 8:
            raise MocapError(f"--width {width} is not a multiple of 8; MixSTE uses 8 attention heads.")
        settings = TrainSettings(
            frames=frames,
            width=width,
            depth=depth,
            batch_size=batch_size,
            lr=lr,
            steps=steps,
            minutes=minutes,
            val_every_s=val_every,
            seed=seed,
            threads=threads,
            body_proportions=not cmu_bodies,
            oversample=tuple(_oversample_entry(text) for text in oversample),
        )
        columns = [
            TextColumn("[bold]train mixste"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
        ]
        with Progress(*columns, console=_console, disable=quiet) as progress:
            task = progress.add_task("train", total=1.0, loss="")

            def advance(fraction: float, terms: dict[str, float]) -> None:
                progress.update(task, completed=fraction, loss=f"loss {terms['loss']:.4f}")

            if init is not None and not init.is_file():
                raise MocapError(f"--init {init} is not a file; give MixSTE weights written by mocap train mixste.")
            result = train_mixste(
                data,
                out,
                settings,
                max_trials=max_trials,
                init=init,
                progress=advance,
                log=lambda line: _console.print(line, highlight=False),
            )
    except KeyboardInterrupt:
        _console.print(f"[yellow]interrupted; {out} holds the best weights validated so far (if any).[/]")
        raise typer.Exit(130) from None
    _console.print(
        f"{result.steps} steps in {result.seconds / 60:.1f} min ({result.frames_per_s:.0f} frames/s); "
        f"best validation MPJPE {result.best_val_mpjpe_mm:.1f} mm",
        highlight=False,
    )
    _console.print(f"wrote {result.checkpoint} (+ {result.checkpoint.with_suffix('.json').name})", highlight=False)
