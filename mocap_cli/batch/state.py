"""What a batch keeps in OUT_DIR between runs: the resume records (``.mocap/<clip path>.json``), the lock
that keeps two batches out of one folder, and the clean-up of outputs and temp files that must not stay.

* **Resume**: a clip is skipped when its sidecar says it was done with the same input and settings and all
  its outputs still exist with the recorded sizes. The input is identified by size + mtime (ns) + SHA-256
  of its first and last MiB: cheap on folders of multi-GB clips (a full hash would read every byte on every
  resume), and any edit changes the mtime; a copy that does not preserve mtimes is redone (safe side).
  Settings = model, weights (name or file size+mtime), formats, smoothing preset (name and values), output
  fps, field of view, rig preset (by content), --hands (with fingers on, the shipped finger readings by content),
  --people, mocap version. Anything else is redone. The sidecar
  is written only after all outputs of a clip exist, and lists them all (with ``--people all|N`` the
  per-person files, whose number only the run knows).
* **No partial files**: every file is written through ``core.atomic`` (temp ``.NAME.XXXX.part`` + rename).
  A worker killed mid-write leaves its temp file; every run sweeps ``.*.part`` files out of OUT_DIR at its
  start and end, and the lock in ``OUT_DIR/.mocap/`` guarantees that no other batch owns them.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from mocap_cli import __version__
from mocap_cli.core.atomic import TEMP_SUFFIX, write_text_atomic
from mocap_cli.errors import MocapError
from mocap_cli.export.person_files import existing_person_files, one_file_per_person
from mocap_cli.settings import RunSettings

if TYPE_CHECKING:
    from mocap_cli.batch.plan import ClipJob

STATE_DIR = ".mocap"
SIDECAR_FORMAT = 1
_HASH_SPAN = 1 << 20  # bytes hashed at each end of an input


def sidecar_path(out_dir: Path, rel: str) -> Path:
    return out_dir / STATE_DIR / f"{rel}.json"


def _file_record(path: Path | str | None) -> Any:
    """A path as given, plus size and mtime when it names a file or folder here (so a replaced file counts)."""
    if path is None:
        return None
    p = Path(path)
    if not p.exists():
        return str(path)  # e.g. a registry variant name
    st = p.stat()
    return {"path": str(p.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def settings_record(settings: RunSettings) -> dict[str, Any]:
    """What a sidecar stores about the settings; two runs with equal records give the same outputs.
    Presets, and with fingers on the fitted finger readings the hand stage ships, are recorded by content, so a
    change to one redoes the clips that used it."""
    from mocap_cli.core.preset_files import preset_dir
    from mocap_cli.post.smoothing import load_smoothing_preset
    from mocap_cli.solve.hand_ik import finger_reading_files

    rig = preset_dir("rig") / f"{settings.preset}.toml"
    return {
        "mocap_version": __version__,
        "model": settings.model.lower(),
        "weights": _file_record(settings.weights),
        "smpl": _file_record(settings.smpl),
        "formats": sorted(settings.formats),
        "smooth": asdict(load_smoothing_preset(settings.smooth)),
        "preset": {"name": settings.preset, "sha256": _sha256(rig)},
        "root": settings.root,
        "mesh": settings.mesh,
        "hands": settings.hands
        if settings.hands == "off"
        else {"mode": settings.hands, "readings": {f.name: _sha256(f) for f in finger_reading_files()}},
        "fps": settings.fps,
        "fov": settings.fov,
        "start": settings.start,
        "end": settings.end,
        "foot_lock": settings.foot_lock
        if settings.foot_lock == "off"
        else {
            "mode": settings.foot_lock,
            "sha256": _sha256(preset_dir("contact") / "default.toml"),
        },
        # only when set, so the records of runs without them stay up to date
        **({"reference_pose": settings.reference_pose} if settings.reference_pose != "none" else {}),
        **({"preview": True} if settings.preview else {}),
        **({"people": str(settings.people_choice())} if settings.people_choice() != "largest" else {}),
        **({"height": settings.height} if settings.height is not None else {}),
    }


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def input_record(path: Path) -> dict[str, Any]:
    """Identity of an input file: size, mtime (ns) and SHA-256 of its first and last MiB."""
    st = path.stat()
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        digest.update(f.read(_HASH_SPAN))
        if st.st_size > _HASH_SPAN:
            f.seek(max(_HASH_SPAN, st.st_size - _HASH_SPAN))
            digest.update(f.read(_HASH_SPAN))
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_tail_sha256": digest.hexdigest()}


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def planned_files(job: ClipJob) -> list[Path]:
    """The outputs a clip writes under their planned names (every one, except per-person formats with
    ``--people all|N``, which are written as ``NAME.person_N.ext`` instead)."""
    return [p for p in job.outputs if not (job.per_person and one_file_per_person(p))]


def clip_files(job: ClipJob) -> list[Path]:
    """Every output path of a clip: the planned ones (existing or not) and, with ``--people all|N``, the
    per-person files that exist now. What a failed, cancelled or redone clip removes."""
    files = planned_files(job)
    if job.per_person:
        files += [f for p in job.outputs if one_file_per_person(p) for f in existing_person_files(p)]
    return files


def up_to_date(job: ClipJob, settings: dict[str, Any]) -> dict[str, Any] | None:
    """The sidecar of a clip that needs no redo (same input, same settings, outputs intact), else None."""
    record = _read_json(job.sidecar)
    if not record or record.get("format") != SIDECAR_FORMAT:
        return None
    if record.get("input") != job.input or record.get("settings") != settings:
        return None
    sizes = record.get("outputs", {})
    folder = job.outputs[0].parent
    if any(p.name not in sizes for p in planned_files(job)):
        return None
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return None
    return record


def write_sidecar(job: ClipJob, settings: dict[str, Any], row: dict[str, Any], run_id: str, finished: str) -> None:
    """Record a clip as done; call only once all its outputs exist (their sizes are part of the record)."""
    sizes = {p.name: p.stat().st_size for p in clip_files(job) if p.is_file()}
    record = {
        "format": SIDECAR_FORMAT,
        "clip": job.rel,
        "input": job.input,
        "settings": settings,
        "outputs": sizes,
        "row": row,
        "run_id": run_id,
        "finished": finished,
    }
    write_text_atomic(job.sidecar, json.dumps(record, indent=2) + "\n")


@contextmanager
def output_lock(out_dir: Path) -> Iterator[None]:
    """Exclusive use of OUT_DIR by this batch (an advisory lock the OS drops if the process dies)."""
    import fcntl

    state = out_dir / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    with open(state / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise MocapError(
                f"Another mocap batch is writing to {out_dir}; wait for it or choose another --out."
            ) from exc
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def sweep_partials(out_dir: Path) -> list[Path]:
    """Delete temp files (``.NAME.XXXX.part``) that killed workers or an interrupted run left in OUT_DIR."""
    removed: list[Path] = []
    if not out_dir.is_dir():
        return removed
    for root, _dirs, files in os.walk(out_dir):
        for name in files:
            if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                path = Path(root) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed


def remove_outputs(paths: tuple[Path, ...] | list[Path]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)
