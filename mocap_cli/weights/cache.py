"""The local weights cache: ``$MOCAP_HOME/weights`` (default ``~/.cache/mocap/weights``).

One folder per variant holding the file and a small ``manifest.json`` (sha256, size, where it came from,
whether it was checked). Most released files sit behind Google Drive / Baidu pages that cannot be fetched by
a plain HTTP client, so the normal way in is ``mocap weights import NAME FILE`` after a manual download
(:func:`import_weights`); ``weights/download.py`` covers the variants that have a ``direct_url``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

import mocap_cli
from mocap_cli.core.atomic import commit, temp_path_beside, write_text_atomic
from mocap_cli.errors import MocapError
from mocap_cli.weights.registry import WeightSpec, get_spec, is_glob, load_registry, missing_message, registry_dir
from mocap_cli.weights.validate import run_validator

HOME_ENV = "MOCAP_HOME"
MANIFEST_NAME = "manifest.json"
CHUNK_BYTES = 1 << 20  # read and hash files, and stream downloads, in pieces of this size


@dataclass(frozen=True)
class InstalledWeights:
    """A weights file in the cache, with what its manifest records."""

    name: str
    path: Path
    sha256: str
    size: int
    verified: bool  # its sha256 matched the digest published in the registry
    validated: bool  # the model's loader opened it and checked its layout when it was installed
    source: str  # "import:<original path>" or the URL it was downloaded from


def mocap_home() -> Path:
    """``$MOCAP_HOME``, else ``~/.cache/mocap``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mocap"


def cache_dir() -> Path:
    """Where installed weights live: ``<mocap_home>/weights``."""
    return mocap_home() / "weights"


def variant_dir(name: str) -> Path:
    """The cache folder of variant ``name`` (the name is checked: it becomes a path)."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise MocapError(f"{name!r} is not a valid weights name; use letters, digits, '.', '-' and '_'.")
    return cache_dir() / name


def installed(name: str) -> InstalledWeights | None:
    """The cached file of variant ``name`` per its manifest, or None when absent or incomplete (the file is
    missing or its size differs from the manifest). Does not re-hash the file. A variant mocap ships (registry
    ``shipped``) counts as installed when its file is present; an imported copy in the cache takes precedence."""
    folder = variant_dir(name)
    if not (folder / MANIFEST_NAME).is_file():
        return shipped_weights(name)
    try:
        record = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        path = folder / str(record["file"])
        size = int(record["size"])
        if Path(record["file"]).name != record["file"] or not path.is_file() or path.stat().st_size != size:
            return None
        return InstalledWeights(
            name=name,
            path=path,
            sha256=str(record["sha256"]),
            size=size,
            verified=bool(record.get("verified", False)),
            validated=bool(record.get("validated", False)),
            source=str(record.get("source", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def shipped_weights(name: str) -> InstalledWeights | None:
    """The weights file that comes with mocap for variant ``name`` (``shipped`` in its registry entry, relative to
    the registry folder), or None. ``verified``: its sha256 matches the registry's."""
    spec = load_registry().get(name)
    if spec is None or not spec.shipped:
        return None
    path = registry_dir() / spec.shipped
    if not path.is_file():
        return None
    digest = sha256_of(path)
    return InstalledWeights(
        name=name,
        path=path,
        sha256=digest,
        size=path.stat().st_size,
        verified=bool(spec.sha256) and digest == spec.sha256,
        validated=True,
        source="shipped",
    )


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_weights(
    name: str,
    file: Path,
    *,
    validate: Callable[[Path], None],
    registry: Mapping[str, WeightSpec] | None = None,
) -> InstalledWeights:
    """Install a manually downloaded checkpoint as variant ``name``.

    ``validate(path)`` is the model's own check (load it, check the layout); it must raise (preferably
    MocapError) when the file is wrong, and nothing is written then. The file is copied atomically into the
    cache with its sha256 recorded. Importing the same file again is a no-op.
    """
    spec = get_spec(name, registry)
    source = Path(file).expanduser()
    if source.is_dir():
        raise MocapError(f"{source} is a folder; give the path of the downloaded {spec.file_name} itself.")
    if not source.is_file():
        raise MocapError(f"{source} does not exist; give the path of the downloaded {spec.file_name}.")
    digest = sha256_of(source)
    if spec.sha256 and digest != spec.sha256:
        raise MocapError(
            f"{source} is not the published {spec.name} file (its sha256 differs); download {spec.file_name} "
            f"again from {spec.page}."
        )
    current = installed(spec.name)
    if current is not None and current.sha256 == digest:
        return current
    run_validator(validate, source, spec)
    folder = variant_dir(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    target_name = source.name
    if (
        is_glob(target_name)
        or target_name == MANIFEST_NAME
        or target_name.startswith(".")
        or target_name.endswith(".part")
    ):
        target_name = spec.cache_file_name
    tmp = temp_path_beside(folder / target_name)
    try:
        shutil.copyfile(source, tmp)
        if sha256_of(tmp) != digest:
            raise MocapError(f"{source} changed while it was being copied; import it again.")
        return install(spec, tmp, folder / target_name, digest, validated=True, source=f"import:{source.resolve()}")
    finally:
        tmp.unlink(missing_ok=True)


def install(
    spec: WeightSpec, tmp: Path, target: Path, digest: str, *, validated: bool, source: str
) -> InstalledWeights:
    """Move a complete temp file into place and write its manifest (both atomic renames)."""
    folder = target.parent
    previous = installed(spec.name)
    commit(tmp, target)
    size = target.stat().st_size
    record = {
        "name": spec.name,
        "file": target.name,
        "sha256": digest,
        "size": size,
        "verified": bool(spec.sha256) and digest == spec.sha256,
        "validated": validated,
        "source": source,
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "mocap_version": mocap_cli.__version__,
    }
    write_text_atomic(folder / MANIFEST_NAME, json.dumps(record, indent=2) + "\n")
    if previous is not None and previous.path != target:
        previous.path.unlink(missing_ok=True)  # a re-import under another file name replaces the old file
    result = installed(spec.name)
    assert result is not None
    return result


# --------------------------------------------------------------------------------------------- lookup


def resolve(name_or_path: str | Path, *, registry: Mapping[str, WeightSpec] | None = None) -> Path:
    """The weights file to load for ``--weights X``: an existing file path as given, else the installed file
    of registry name X (a model name means its default variant). MocapError says what to do otherwise."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_file():
        return candidate
    text = str(name_or_path)
    reg = registry if registry is not None else load_registry()
    looks_like_path = os.sep in text or "/" in text or candidate.suffix in {".pth", ".pt", ".bin", ".tar", ".ckpt"}
    if looks_like_path and text not in reg:
        raise MocapError(
            f"Weights file {candidate} does not exist; check the path or give a registry name such as "
            f"{next(iter(sorted(reg)))}."
        )
    spec = get_spec(text, reg)
    found = installed(spec.name)
    if found is None:
        raise MocapError(missing_message(spec.name, registry=reg))
    return found.path


@dataclass(frozen=True)
class ChosenWeights:
    """The checkpoint a model runs with."""

    path: Path
    variant: str | None  # registry variant name, None for a file given directly
    sha256: str  # "" when not recorded


def choose_weights(
    model: str, explicit: str | Path | None = None, *, accept: Callable[[WeightSpec], bool] = lambda spec: True
) -> ChosenWeights:
    """``--weights`` (a file or a registry name), else the first installed variant of ``model`` that
    ``accept`` takes, the registry default first. MocapError (where to get them, the import command) when
    nothing is found."""
    registry = load_registry()
    if explicit is not None:
        given = Path(explicit).expanduser()
        if given.is_file():
            return ChosenWeights(given, None, "")
        path = resolve(str(explicit), registry=registry)
        spec = get_spec(str(explicit), registry)
        found = installed(spec.name)
        return ChosenWeights(path, spec.name, found.sha256 if found else "")
    default = get_spec(model, registry)
    specs = [s for s in registry.values() if s.model == default.model and accept(s)]
    # The authors' checkpoints (default first), then the weights mocap ships.
    for spec in sorted(specs, key=lambda s: (bool(s.shipped), s.name != default.name, not s.is_default, s.name)):
        found = installed(spec.name)
        if found is not None:
            return ChosenWeights(found.path, spec.name, found.sha256)
    raise MocapError(missing_message(default.name, registry=registry))
