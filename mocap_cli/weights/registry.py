"""The pretrained-weights registry: what each released checkpoint is, read from ``weights/*.toml``.

What each released checkpoint is (download page, file name, licence, layout, the loader that opens it) is
data, kept in ``weights/*.toml`` (one file per model family), not in code. This module only reads and checks
those files; the local cache is ``weights/cache.py``, downloads ``weights/download.py``, and checking a file
with its family's loader ``weights/validate.py``.
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import mocap_cli
from mocap_cli.errors import MocapError

REGISTRY_ENV = "MOCAP_WEIGHTS_REGISTRY"
LAYOUTS = ("flat", "wrapped")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Loaders are named as "mocap_cli.<module>:<function>" so a registry file can only point into this package.
_LOADER_RE = re.compile(r"^mocap_cli(\.[A-Za-z_][A-Za-z0-9_]*)+:[A-Za-z_][A-Za-z0-9_]*$")


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
    loader: str = ""  # "module:function" that builds the network from the file; also the import validator

    @property
    def cache_file_name(self) -> str:
        """The name the file gets in the cache when downloaded (globs cannot be file names)."""
        return self.file_name if not is_glob(self.file_name) else f"{self.name}.pth"

    def where_to_get(self) -> str:
        """The download page, plus the first mirror, as a short phrase."""
        return self.page + (f" (mirror: {self.mirrors[0]})" if self.mirrors else "")


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
            "loader": data.get("loader", ""),
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
        raise MocapError(
            f"Weights entry {name} in {path} has a malformed sha256; give 64 hex digits or leave it empty."
        )
    direct_url = text("direct_url")
    if direct_url and not direct_url.startswith(("http://", "https://")):
        raise MocapError(
            f"Weights entry {name} in {path} has a direct_url that is not http(s); leave it empty instead."
        )
    loader = text("loader")
    if loader and not _LOADER_RE.match(loader):
        raise MocapError(
            f"Weights entry {name} in {path} has loader {loader!r}; write it as mocap_cli.module:function."
        )
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
        loader=loader,
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


def family_spec(family: str) -> WeightSpec:
    """The default variant of ``family`` in the current registry: the layout a loader reads a file with
    when it is not told which variant the file is (variants of one family share their layout)."""
    return get_spec(family)


def missing_message(
    model: str, *, registry: Mapping[str, WeightSpec] | None = None, downloadable: bool | None = None
) -> str:
    """One sentence: where to get the weights of ``model`` (a variant or model name) and how to import them."""
    spec = get_spec(model, registry)
    file_hint = spec.file_name if not is_glob(spec.file_name) else f"the {spec.file_name} file"
    command = f"mocap weights import {spec.name} {spec.file_name if not is_glob(spec.file_name) else 'FILE'}"
    can_download = bool(spec.direct_url) if downloadable is None else downloadable
    if can_download:
        return (
            f"The {spec.name} weights are not installed; run `mocap weights download {spec.name}`, or download "
            f"{file_hint} from {spec.direct_url} and run `{command}`."
        )
    return (
        f"The {spec.name} weights are not installed; download {file_hint} from {spec.where_to_get()} "
        f"and run `{command}`."
    )


def matches_file_name(spec: WeightSpec, path: Path) -> bool:
    """Whether ``path`` has the published name (or matches its glob); a hint only, files get renamed."""
    return fnmatch.fnmatch(Path(path).name, spec.file_name)


def is_glob(name: str) -> bool:
    """Whether a registry file name is a pattern (``no_refine_*.pth``) rather than a name."""
    return any(c in name for c in "*?[")
