"""Streamed, resumable download of a weights variant that has a ``direct_url`` into the cache.

Checkpoints are hundreds of MB and connections drop: bytes go to ``<file>.part`` and an interrupted download
resumes with an HTTP Range request; only a file whose sha256 (when published) and loader check pass is moved
into place.
"""

from __future__ import annotations

import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping

import mocap_cli
from mocap_cli.errors import MocapError
from mocap_cli.weights.cache import CHUNK_BYTES, InstalledWeights, install, installed, sha256_of, variant_dir
from mocap_cli.weights.registry import WeightSpec, get_spec, missing_message
from mocap_cli.weights.validate import run_validator

Progress = Callable[[int, "int | None"], None]
"""``progress(bytes_done, bytes_total_or_None)``, called as a download advances."""


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
    folder = variant_dir(spec.name)
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
            run_validator(validate, part, spec)
        except MocapError:
            part.unlink(missing_ok=True)
            raise
    return install(
        spec, part, folder / spec.cache_file_name, digest, validated=validate is not None, source=spec.direct_url
    )


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
        raise MocapError(
            f"Downloading {spec.name} failed (HTTP {exc.code}); try again later or get it from {spec.page}."
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise MocapError(
            f"Cannot reach {spec.direct_url} ({_reason(exc)}); check the network and run the command again."
        ) from exc
    with response:
        status = getattr(response, "status", 200)
        if status == 206:
            start = _content_range_start(response.headers.get("Content-Range", ""))
            if start != have:
                raise MocapError(
                    f"The server answered a resume request for {spec.name} with the wrong range; delete {part} and "
                    "try again."
                )
            mode = "ab"
        else:  # 200: the server ignored the Range header, start over
            have, mode = 0, "wb"
        length = response.headers.get("Content-Length")
        total = have + int(length) if length and length.isdigit() else None
        done = have
        try:
            with open(part, mode) as out:
                while True:
                    chunk = response.read(CHUNK_BYTES)
                    if not chunk:
                        break
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
        except OSError as exc:  # includes socket timeouts / resets mid-stream
            raise MocapError(
                f"The download of {spec.name} was interrupted ({_reason(exc)}); run the same command again to resume "
                "it."
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
