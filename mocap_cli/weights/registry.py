"""Pretrained-weights registry and the local weights cache.

What each released checkpoint is (download page, file name, licence, layout) is data, kept in
``weights/*.toml`` (one file per model family), not in code. This module reads those files and manages the
cache: ``$MOCAP_HOME/weights`` (default ``~/.cache/mocap/weights``), one folder per variant holding the file
and a small ``manifest.json`` (sha256, size, where it came from, whether it was checked).

Most released files sit behind Google Drive / Baidu pages that cannot be fetched by a plain HTTP client, so
the normal path is ``mocap weights import NAME FILE`` after a manual download; :func:`download` covers the
variants that do have a ``direct_url``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import tomllib

import mocap_cli
from mocap_cli.errors import MocapError

REGISTRY_ENV = "MOCAP_WEIGHTS_REGISTRY"
HOME_ENV = "MOCAP_HOME"
MANIFEST_NAME = "manifest.json"
LAYOUTS = ("flat", "wrapped")
_CHUNK = 1 << 20
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")

Progress = Callable[[int, "int | None"], None]
"""``progress(bytes_done, bytes_total_or_None)``, called as a download advances."""


@dataclass(frozen=True)
class WeightSpec:
    """One released checkpoint file, as described in ``weights/<family>.toml``."""

    name: str  # registry name, e.g. "mixste-243"
    family: str  # the TOML file it came from, e.g. "mixste"
    model: str  # the mocap model that uses it, e.g. "mixste", "unspat"
    description: str
    page: str  # the authors' download page (may be a Drive / Baidu page)
    file_name: str  # published / reported file name; may be a glob ("no_refine_*.pth")
    licence: str
    layout: str  # "flat" (the file is the state dict) or "wrapped" (state dict under state_dict_key)
    mirrors: tuple[str, ...] = ()
    direct_url: str = ""  # plain HTTP(S) URL a client can stream; empty when only a page exists
    sha256: str = ""  # published / verified digest; empty when unknown
    file_name_note: str = ""
    input: str = ""  # "keypoints2d", "image", ...
    input_frames: int | None = None
    input_size: int | None = None
    input_joints: int | None = None
    top_level_keys: tuple[str, ...] = ()
    state_dict_key: str = ""
    alt_state_dict_key: str = ""  # a second wrapper key some tools write (HybrIK demo: "model")
    key_prefix: str = ""  # prefix every state-dict key carries in the file ("module.")
    ignore_prefixes: tuple[str, ...] = ()  # keys (after prefix removal) that are not network weights
    num_tensors: int | None = None  # network tensors expected after removing ignored keys
    notes: str = ""
    code: str = ""
    paper: str = ""
    arch: Mapping[str, Any] = field(default_factory=dict)
    is_default: bool = False  # the family's default variant
    shipped: str = ""  # weights that come with mocap: path relative to the registry folder (mocap's own training)

    @property
    def cache_file_name(self) -> str:
        """The name the file gets in the cache when downloaded (globs cannot be file names)."""
        return self.file_name if not _is_glob(self.file_name) else f"{self.name}.pth"

    def where_to_get(self) -> str:
        """The download page, plus the first mirror, as a short phrase."""
        return self.page + (f" (mirror: {self.mirrors[0]})" if self.mirrors else "")


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


# --------------------------------------------------------------------------------------------- registry


def registry_dir() -> Path:
    """Folder holding ``*.toml``: ``$MOCAP_WEIGHTS_REGISTRY``, else the copy installed as package data
    (``mocap_cli/_weights``, present only in a built wheel), else the repository's top-level ``weights/``."""
    env = os.environ.get(REGISTRY_ENV)
    if env:
        return Path(env)
    package_dir = Path(mocap_cli.__file__).resolve().parent
    for candidate in (package_dir / "_weights", package_dir.parent / "weights"):
        if candidate.is_dir() and any(candidate.glob("*.toml")):
            return candidate
    return package_dir.parent / "weights"


def load_registry(directory: Path | None = None) -> dict[str, WeightSpec]:
    """Every variant of every ``*.toml`` in ``directory`` (default :func:`registry_dir`), by name."""
    folder = Path(directory) if directory is not None else registry_dir()
    files = sorted(folder.glob("*.toml")) if folder.is_dir() else []
    if not files:
        raise MocapError(f"No weights registry (*.toml) found in {folder}; set {REGISTRY_ENV} to the weights/ folder.")
    registry: dict[str, WeightSpec] = {}
    for path in files:
        for spec in _parse_family(path):
            if spec.name in registry:
                raise MocapError(f"Weights name {spec.name} is defined twice in {folder}; rename one of them.")
            registry[spec.name] = spec
    return registry


def _parse_family(path: Path) -> list[WeightSpec]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise MocapError(f"Weights registry file {path} is not valid TOML ({exc}); fix or remove it.") from exc
    family = str(data.get("family", path.stem))
    variants = data.get("variants")
    if not isinstance(variants, dict) or not variants:
        raise MocapError(f"Weights registry file {path} defines no [variants.NAME] tables; add at least one.")
    default = str(data.get("default", ""))
    specs = []
    for name, entry in variants.items():
        merged = {
            "licence": data.get("licence", ""),
            "code": data.get("code", ""),
            "paper": data.get("paper", ""),
            "model": data.get("model", family),
            **entry,
        }
        specs.append(_spec_from_table(name, family, merged, name == default, path))
    return specs


def _spec_from_table(name: str, family: str, t: dict[str, Any], is_default: bool, path: Path) -> WeightSpec:
    def text(key: str) -> str:
        return str(t.get(key, "")).strip()

    def optional_int(key: str) -> int | None:
        value = t.get(key)
        return int(value) if value is not None else None

    missing = [k for k in ("page", "file_name", "licence", "layout") if not text(k)]
    if missing:
        raise MocapError(f"Weights entry {name} in {path} lacks {', '.join(missing)}; every variant needs them.")
    layout = text("layout")
    if layout not in LAYOUTS:
        raise MocapError(f"Weights entry {name} in {path} has layout {layout!r}; use one of {', '.join(LAYOUTS)}.")
    sha = text("sha256").lower()
    if sha and not _SHA256_RE.match(sha):
        raise MocapError(f"Weights entry {name} in {path} has a malformed sha256; give 64 hex digits or leave it empty.")
    direct_url = text("direct_url")
    if direct_url and not direct_url.startswith(("http://", "https://")):
        raise MocapError(f"Weights entry {name} in {path} has a direct_url that is not http(s); leave it empty instead.")
    if layout == "wrapped" and not text("state_dict_key"):
        raise MocapError(f"Weights entry {name} in {path} is 'wrapped' but names no state_dict_key; add it.")
    return WeightSpec(
        name=name,
        family=family,
        model=text("model"),
        description=text("description"),
        page=text("page"),
        file_name=text("file_name"),
        licence=text("licence"),
        layout=layout,
        mirrors=tuple(str(m) for m in t.get("mirrors", ())),
        direct_url=direct_url,
        sha256=sha,
        file_name_note=text("file_name_note"),
        input=text("input"),
        input_frames=optional_int("input_frames"),
        input_size=optional_int("input_size"),
        input_joints=optional_int("input_joints"),
        top_level_keys=tuple(str(k) for k in t.get("top_level_keys", ())),
        state_dict_key=text("state_dict_key"),
        alt_state_dict_key=text("alt_state_dict_key"),
        key_prefix=text("key_prefix"),
        ignore_prefixes=tuple(str(p) for p in t.get("ignore_prefixes", ())),
        num_tensors=optional_int("num_tensors"),
        notes=text("notes"),
        code=text("code"),
        paper=text("paper"),
        arch=dict(t.get("arch", {})),
        is_default=is_default,
        shipped=text("shipped"),
    )


def get_spec(name: str, registry: Mapping[str, WeightSpec] | None = None) -> WeightSpec:
    """The variant called ``name``; a family/model name ("mixste", "unspat") gives its default variant."""
    reg = registry if registry is not None else load_registry()
    if name in reg:
        return reg[name]
    defaults = [s for s in reg.values() if s.is_default and name in (s.family, s.model)]
    if len(defaults) == 1:
        return defaults[0]
    raise MocapError(f"Unknown weights name {name!r}; known names are {', '.join(sorted(reg))}.")


def state_dict_from_checkpoint(spec: WeightSpec, obj: Any) -> dict[str, Any]:
    """The network state dict inside a loaded checkpoint object, per the spec's layout: unwrapped, prefix
    removed, non-weight entries (``ignore_prefixes``) dropped. Values are returned as they are."""
    inner = obj
    if isinstance(obj, Mapping):
        for key in (spec.state_dict_key, spec.alt_state_dict_key):
            if key and key in obj and isinstance(obj[key], Mapping):
                inner = obj[key]
                break
        else:
            if spec.layout == "wrapped":
                raise MocapError(
                    f"The file for {spec.name} has no '{spec.state_dict_key}' entry; check that it is {spec.file_name} "
                    f"from {spec.page}."
                )
    if not isinstance(inner, Mapping):
        raise MocapError(f"The file for {spec.name} does not hold a state dict; check that it is the right file.")
    out: dict[str, Any] = {}
    prefixes = tuple(p for p in (spec.key_prefix, "module.") if p)
    for key, value in inner.items():
        key = str(key)
        for prefix in prefixes:
            if key.startswith(prefix):
                key = key[len(prefix):]
                break
        if spec.ignore_prefixes and key.startswith(spec.ignore_prefixes):
            continue
        out[key] = value
    return out


# --------------------------------------------------------------------------------------------- cache


def mocap_home() -> Path:
    """``$MOCAP_HOME``, else ``~/.cache/mocap``."""
    env = os.environ.get(HOME_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mocap"


def cache_dir() -> Path:
    """Where installed weights live: ``<mocap_home>/weights``."""
    return mocap_home() / "weights"


def _variant_dir(name: str) -> Path:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
        raise MocapError(f"{name!r} is not a valid weights name; use letters, digits, '.', '-' and '_'.")
    return cache_dir() / name


def installed(name: str) -> InstalledWeights | None:
    """The cached file of variant ``name`` per its manifest, or None when absent or incomplete (the file is
    missing or its size differs from the manifest). Does not re-hash the file. A variant mocap ships (registry
    ``shipped``) counts as installed when its file is present; an imported copy in the cache takes precedence."""
    folder = _variant_dir(name)
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
    registry = load_registry()
    spec = registry.get(name)
    if spec is None or not spec.shipped:
        return None
    path = registry_dir() / spec.shipped
    if not path.is_file():
        return None
    digest = sha256_of(path)
    return InstalledWeights(name=name, path=path, sha256=digest, size=path.stat().st_size,
                            verified=bool(spec.sha256) and digest == spec.sha256, validated=True, source="shipped")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
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
    _run_validator(validate, source, spec)
    folder = _variant_dir(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    target_name = source.name
    if _is_glob(target_name) or target_name == MANIFEST_NAME or target_name.startswith(".") or target_name.endswith(".part"):
        target_name = spec.cache_file_name
    tmp = _temp_path(folder, target_name)
    try:
        shutil.copyfile(source, tmp)
        _fsync(tmp)
        if sha256_of(tmp) != digest:
            raise MocapError(f"{source} changed while it was being copied; import it again.")
        return _install(spec, tmp, folder / target_name, digest, validated=True, source=f"import:{source.resolve()}")
    finally:
        tmp.unlink(missing_ok=True)


def download(
    name: str,
    *,
    progress: Progress | None = None,
    validate: Callable[[Path], None] | None = None,
    registry: Mapping[str, WeightSpec] | None = None,
    timeout_s: float = 60.0,
) -> InstalledWeights:
    """Fetch variant ``name`` from its ``direct_url`` into the cache.

    Streams into ``<file>.part`` and resumes an interrupted download with an HTTP Range request. The result is
    checked against the published sha256 when the registry has one (mismatch: the partial file is deleted and
    MocapError raised), optionally validated, then renamed into place atomically.
    """
    spec = get_spec(name, registry)
    current = installed(spec.name)
    if current is not None and (not spec.sha256 or current.sha256 == spec.sha256):
        return current
    if not spec.direct_url:
        raise MocapError(missing_message(spec.name, registry=registry, downloadable=False))
    folder = _variant_dir(spec.name)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / (spec.cache_file_name + ".part")
    _fetch_resumable(spec, part, progress, timeout_s)
    digest = sha256_of(part)
    if spec.sha256 and digest != spec.sha256:
        part.unlink(missing_ok=True)
        raise MocapError(
            f"The download of {spec.name} from {spec.direct_url} has the wrong sha256 and was deleted; try again "
            f"later or get {spec.file_name} from {spec.page}."
        )
    if validate is not None:
        try:
            _run_validator(validate, part, spec)
        except MocapError:
            part.unlink(missing_ok=True)
            raise
    return _install(spec, part, folder / spec.cache_file_name, digest, validated=validate is not None, source=spec.direct_url)


def _fetch_resumable(spec: WeightSpec, part: Path, progress: Progress | None, timeout_s: float) -> None:
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(spec.direct_url, headers={"User-Agent": f"mocap/{mocap_cli.__version__}"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and have:
            total = re.match(r"\s*bytes\s+\*/(\d+)", exc.headers.get("Content-Range", "") if exc.headers else "")
            if total is None or int(total.group(1)) == have:
                return  # the partial file already holds everything the server has; the hash check decides
            part.unlink(missing_ok=True)
            raise MocapError(
                f"The partial download of {spec.name} was longer than the file on the server and was deleted; run the "
                "same command again."
            ) from exc
        raise MocapError(f"Downloading {spec.name} failed (HTTP {exc.code}); try again later or get it from {spec.page}.") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise MocapError(f"Cannot reach {spec.direct_url} ({_reason(exc)}); check the network and run the command again.") from exc
    with response:
        status = getattr(response, "status", 200)
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise MocapError(f"The server answered a resume request for {spec.name} with the wrong range; delete {part} and try again.")
            mode = "ab"
        else:  # 200: the server ignored the Range header, start over
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        done = have
        try:
            with open(part, mode) as out:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
                out.flush()
                os.fsync(out.fileno())
        except OSError as exc:  # includes socket timeouts / resets mid-stream
            raise MocapError(
                f"The download of {spec.name} was interrupted ({_reason(exc)}); run the same command again to resume it."
            ) from exc
    if total is not None and done != total:
        raise MocapError(
            f"The download of {spec.name} stopped at {done} of {total} bytes; run the same command again to resume it."
        )


def _content_range_start(header: str) -> int | None:
    match = re.match(r"\s*bytes\s+(\d+)-", header)
    return int(match.group(1)) if match else None


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None)
    return str(reason if reason is not None else exc) or exc.__class__.__name__


def _run_validator(validate: Callable[[Path], None], path: Path, spec: WeightSpec) -> None:
    try:
        validate(path)
    except MocapError:
        raise
    except Exception as exc:  # a validator bug or a loader error must not leave a traceback for the user
        raise MocapError(
            f"{path} could not be opened as {spec.name} weights ({exc.__class__.__name__}: {exc}); check that it is "
            f"{spec.file_name} from {spec.page}."
        ) from exc


def _install(spec: WeightSpec, tmp: Path, target: Path, digest: str, *, validated: bool, source: str) -> InstalledWeights:
    """Move a complete temp file into place and write its manifest (both atomic renames)."""
    folder = target.parent
    previous = installed(spec.name)
    os.replace(tmp, target)
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
    manifest_tmp = _temp_path(folder, MANIFEST_NAME)
    manifest_tmp.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    os.replace(manifest_tmp, folder / MANIFEST_NAME)
    if previous is not None and previous.path != target:
        previous.path.unlink(missing_ok=True)  # a re-import under another file name replaces the old file
    result = installed(spec.name)
    assert result is not None
    return result


def _temp_path(folder: Path, name: str) -> Path:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
    os.close(fd)
    return Path(tmp)


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _is_glob(name: str) -> bool:
    return any(c in name for c in "*?[")


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
        raise MocapError(f"Weights file {candidate} does not exist; check the path or give a registry name such as {next(iter(sorted(reg)))}.")
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


def choose_weights(model: str, explicit: str | Path | None = None, *,
                   accept: Callable[[WeightSpec], bool] = lambda spec: True) -> ChosenWeights:
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


def missing_message(model: str, *, registry: Mapping[str, WeightSpec] | None = None, downloadable: bool | None = None) -> str:
    """One sentence: where to get the weights of ``model`` (a variant or model name) and how to import them."""
    spec = get_spec(model, registry)
    file_hint = spec.file_name if not _is_glob(spec.file_name) else f"the {spec.file_name} file"
    command = f"mocap weights import {spec.name} {spec.file_name if not _is_glob(spec.file_name) else 'FILE'}"
    can_download = bool(spec.direct_url) if downloadable is None else downloadable
    if can_download:
        return (
            f"The {spec.name} weights are not installed; run `mocap weights download {spec.name}`, or download "
            f"{file_hint} from {spec.direct_url} and run `{command}`."
        )
    return f"The {spec.name} weights are not installed; download {file_hint} from {spec.where_to_get()} and run `{command}`."


def matches_file_name(spec: WeightSpec, path: Path) -> bool:
    """Whether ``path`` has the published name (or matches its glob); a hint only, files get renamed."""
    return fnmatch.fnmatch(Path(path).name, spec.file_name)
