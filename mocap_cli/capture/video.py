"""Video input: probe a clip and stream its frames as RGB arrays through an ffmpeg pipe.

Design choices (why, not what):

* **ffmpeg binary**: ``$MOCAP_FFMPEG`` if set, else ``ffmpeg`` on ``PATH``, else the static binary shipped in the
  ``imageio-ffmpeg`` wheel. Commands are built with ``ffmpeg-python``. There is no ``ffprobe`` in that wheel.
* **Probing without ffprobe**: one demux-only pass, ``ffmpeg -i clip -map 0:v:0 -c copy -f framecrc pipe:1``. It
  decodes nothing (tens of ms even for long clips) and prints every video packet's pts and duration in the stream
  time base (``#tb``), plus codec and stored size. From the exact integer pts we get the exact frame rate as a
  ``Fraction`` (e.g. 24000/1001 from a 1/24000 time base and 1001-tick frames), the frame count, the presentation
  time of every frame (``VideoInfo.frame_times``) and whether the rate is variable. Rotation comes from the display
  matrix ffmpeg prints on stderr for ``-i``. A demux error ("partial file") during that pass means a damaged or
  truncated file, which we refuse up front instead of failing half-way through a long run.
* **Per-frame timestamps while decoding**: ``showinfo`` in the filter graph logs each frame's pts (and size) on
  stderr just before the frame is written to stdout; ``-fps_mode passthrough`` stops ffmpeg from duplicating or
  dropping frames, so log lines and raw frames pair one to one. A thread drains stderr (so neither pipe can fill
  and deadlock) and the reader pairs the n-th log line with the n-th frame. Each decoded time is snapped to the
  matching probed packet time, so ``Frame.time`` equals an entry of ``VideoInfo.frame_times`` and ``Frame.index``
  is the frame's position in the file, also when slicing with ``start``.
* **Rotation**: ffmpeg's default autorotation applies the display matrix before our filters, so phone clips come
  out upright; the frame size is read from ``showinfo`` rather than guessed.
* **Memory**: frames are read one at a time from the pipe into a fresh buffer; nothing is accumulated.
* **Cleanup**: the generator's ``finally`` kills and reaps ffmpeg when the consumer stops early (``close()``,
  ``break``, an exception, or garbage collection of the generator).
"""

from __future__ import annotations

import os
import queue
import re
import shutil
import subprocess
import threading
from collections import deque
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Literal

import ffmpeg
import numpy as np

from mocap_cli.errors import MocapError

# Demuxers that read single pictures; ffmpeg happily "opens" an image as a one-frame video.
_IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "webp", "apng")
# Packet flag bits in framecrc's "F=0x.." column (AV_PKT_FLAG_*): corrupt, discard (edit-list pre-roll).
_PKT_FLAG_CORRUPT = 0x2
_PKT_FLAG_DISCARD = 0x4
_NOPTS = -(2**63)
PixelFormat = Literal["rgb24", "bgr24"]  # byte order of the yielded frames


@dataclass(frozen=True)
class VideoInfo:
    """What ``probe`` learned about a clip's first video stream.

    width, height: size of the frames ``iter_frames`` yields (after rotation and non-square-pixel correction).
    fps: frame rate as an exact fraction (30000/1001, not 29.97). For a variable-frame-rate clip: the dominant
        rate if at least half the frame intervals share it (e.g. a 30 fps clip with dropped frames), else the mean
        rate; use ``frame_times`` to resample.
    frame_count: number of video packets (= frames for every common codec); the decoded count can differ for
        exotic or damaged streams, hence "estimate".
    duration: seconds from the file start to the end of the last frame.
    rotation: degrees the stored picture is turned clockwise for display (0, 90, 180, 270), the convention of the
        MP4 "rotate" tag phones write; frames are yielded already turned.
    codec: ffmpeg codec name (h264, hevc, msmpeg4v3, ...).
    frame_times: (frame_count,) presentation time of every frame in seconds from the file start, ascending.
    variable_frame_rate: True when frame intervals differ by more than the time base's rounding.
    time_base: the stream's time base (seconds per pts tick).
    pixel_aspect: stored sample aspect ratio; frames are stretched to square pixels when it is not 1.
    decode_offset: decoder timestamp minus container timestamp of frame 0 (non-zero for dts-only AVI files).
    """

    path: Path
    width: int
    height: int
    fps: Fraction
    frame_count: int
    duration: float
    rotation: int
    codec: str
    frame_times: np.ndarray = field(repr=False, compare=False)
    variable_frame_rate: bool = False
    time_base: Fraction = Fraction(1, 1)
    pixel_aspect: Fraction = Fraction(1, 1)
    decode_offset: float = 0.0


@dataclass
class Frame:
    """One decoded frame: position in the file, presentation time in seconds, RGB uint8 image (H, W, 3) (BGR when
    decoded with ``pixel_format="bgr24"``)."""

    index: int
    time: float
    image: np.ndarray


def ffmpeg_executable() -> str:
    """Path of the ffmpeg binary to run (``$MOCAP_FFMPEG``, then ``PATH``, then the imageio-ffmpeg wheel)."""
    explicit = os.environ.get("MOCAP_FFMPEG")
    if explicit:
        return explicit
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError as exc:
        raise MocapError("ffmpeg was not found; install it or `pip install imageio-ffmpeg`.") from exc
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError as exc:
        raise MocapError("ffmpeg was not found; install it or `pip install imageio-ffmpeg`.") from exc


def _command(stream: object, exe: str) -> list[str]:
    """ffmpeg-python puts global options after the output; ffmpeg wants them first."""
    return [exe, "-nostdin", "-hide_banner", "-nostats", *ffmpeg.get_args(stream)]


def _check_path(path: Path) -> None:
    if not path.exists():
        raise MocapError(f"Video file {path} does not exist; check the path.")
    if path.is_dir():
        raise MocapError(f"{path} is a folder, not a video file; give the path of a video.")
    if path.stat().st_size == 0:
        raise MocapError(f"Video file {path} is empty (0 bytes); re-export or re-download it.")


# -- probing ---------------------------------------------------------------------------------------


_INPUT_RE = re.compile(r"^Input #0, ([^,]+(?:,[^,\s]+)*), from ", re.M)
_ROTATION_RE = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.I)


def _snap_rate(pts: np.ndarray, tb: Fraction) -> tuple[Fraction, bool]:
    """Exact frame rate from integer pts ticks, and whether the clip has a variable frame rate."""
    diffs = np.diff(pts)
    if diffs.size == 0 or diffs.min() <= 0:
        # 1 frame, or repeated timestamps (broken muxer): no usable interval information.
        return Fraction(0), False
    if diffs.min() == diffs.max():
        return 1 / (int(diffs[0]) * tb), False
    mean_rate = Fraction(len(diffs)) / (int(pts[-1] - pts[0]) * tb)
    if diffs.max() - diffs.min() <= 1:
        # Jitter of one tick is rounding (e.g. 29.97 fps in a 1/1000 time base): find the simple rational rate
        # that reproduces every timestamp to within a tick.
        def worst(candidate: Fraction) -> float:
            return float(np.abs(pts[0] + np.arange(len(pts)) / float(candidate * tb) - pts).max())

        best = min(_usual_rates(mean_rate), key=worst)
        return (best if worst(best) <= 1.0 + 1e-6 else mean_rate), False
    # Variable rate: report the dominant rate when most intervals share it (a constant-rate clip with dropped
    # frames), else the mean rate.
    values, counts = np.unique(diffs, return_counts=True)
    mode = values[np.argmax(counts)]
    near = diffs[np.abs(diffs - mode) <= 1]  # within a tick of the most common interval
    if len(near) * 2 >= len(diffs):
        rate = Fraction(len(near)) / (int(near.sum()) * tb)

        def miss(candidate: Fraction) -> float:
            return abs(float(1 / (candidate * tb)) - float(near.mean()))

        best = min(_usual_rates(rate), key=miss)
        return (best if miss(best) < 0.5 else rate), True
    return mean_rate, True


def _usual_rates(rate: Fraction) -> list[Fraction]:
    """The integer and the NTSC (N * 1000/1001) rate nearest ``rate``: what cameras and encoders actually use."""
    whole = Fraction(round(rate))
    ntsc = Fraction(round(rate * Fraction(1001, 1000)) * 1000, 1001)
    return [r for r in (whole, ntsc) if r > 0]


def probe(path: Path | str) -> VideoInfo:
    """Read a clip's metadata and frame timestamps without decoding it; ``MocapError`` if it is not a usable video."""
    path = Path(path)
    _check_path(path)
    exe = ffmpeg_executable()
    cmd = _command(ffmpeg.input(str(path)).output("pipe:", map="0:v:0", c="copy", format="framecrc"), exe)
    done = _run_ffmpeg(cmd, path)
    err = done.stderr.decode("utf-8", "replace")
    out = done.stdout.decode("utf-8", "replace")

    opened = _INPUT_RE.search(err)
    if opened is None and "moov atom not found" in err:
        raise MocapError(
            f"{path} is not a complete MP4/MOV video (its index, the 'moov' atom, is missing: a truncated or "
            "unfinished recording, or not a video at all); re-export or re-download it."
        )
    if opened is None:
        raise MocapError(f"{path} is not a video file ffmpeg can read ({_last_error(err).lower()}).")
    demuxer = opened.group(1)
    if any(tag in demuxer for tag in _IMAGE_DEMUXERS):
        raise MocapError(f"{path} is a still image, not a video; give a video clip (mp4, mov, avi, mkv, ...).")
    if "matches no streams" in err:
        raise MocapError(f"{path} has no video stream; give a clip with video.")
    if done.returncode != 0 or "partial file" in err or "Invalid data" in err:
        raise MocapError(f"{path} is truncated or damaged ({_last_error(err)}); re-export or re-download it.")

    header: dict[str, str] = {}
    pts_list: list[int] = []
    durations: list[int] = []
    for line in out.splitlines():
        if line.startswith("#"):
            key, _, value = line[1:].partition(":")
            header[key.strip()] = value.strip()
            continue
        cols = [c.strip() for c in line.split(",")]
        if len(cols) < 6:
            continue
        flags = next((int(c[2:], 16) for c in cols[6:] if c.startswith("F=")), 0)
        if flags & _PKT_FLAG_DISCARD:
            continue
        pts = int(cols[2])
        # AVI and other dts-only containers print AV_NOPTS_VALUE for pts; their frames present in dts order.
        pts_list.append(int(cols[1]) if pts == _NOPTS else pts)
        durations.append(int(cols[3]))
    if not pts_list:
        raise MocapError(f"{path} contains no video frames; check that the file is a complete video.")

    tb = Fraction(header.get("tb 0", "1/1"))
    codec = header.get("codec_id 0", "unknown")
    stored_w, stored_h = (int(v) for v in header.get("dimensions 0", "0x0").split("x"))
    sar_text = header.get("sar 0", "1/1").replace(":", "/")
    sar = Fraction(sar_text) if not sar_text.startswith("0") else Fraction(1)  # 0/1 = unknown = square

    pts = np.sort(np.asarray(pts_list, dtype=np.int64))
    fps, variable = _snap_rate(pts, tb)
    if fps == 0:
        # A single frame (or unusable timestamps): fall back on the packet duration, then the stream's nominal rate.
        nominal = re.search(r"Video:.*?, (\d+(?:\.\d+)?) (?:fps|tbr)", err)
        if durations[0] > 0:
            fps = 1 / (durations[0] * tb)
        elif nominal:
            fps = Fraction(nominal.group(1)).limit_denominator(1001)
        else:
            fps = Fraction(25)
    last_duration = max(durations[int(np.argmax(pts_list))], 0) * tb or 1 / fps

    rot_match = _ROTATION_RE.search(err)
    # ffmpeg prints the counter-clockwise angle; report it as the clockwise "rotate" tag phones write.
    rotation = int(round(-float(rot_match.group(1)) / 90.0)) * 90 % 360 if rot_match else 0

    times = np.array([float(p * tb) for p in pts], dtype=np.float64)
    # Decode the first frame: proves the codec works, gives the true output size (after rotation and aspect
    # correction) and the decoder's timestamp of frame 0, which can differ from the container's (dts-only AVI:
    # the decoder adds its reordering delay). Later decoded times are shifted back by that offset.
    width, height, first_time = _first_frame(path, exe, sar)
    return VideoInfo(
        path=path,
        width=width,
        height=height,
        fps=fps,
        frame_count=len(times),
        duration=float(pts[-1] * tb + last_duration),
        rotation=rotation,
        codec=codec,
        frame_times=times,
        variable_frame_rate=variable,
        time_base=tb,
        pixel_aspect=sar,
        decode_offset=first_time - float(times[0]),
    )


def _first_frame(path: Path, exe: str, sar: Fraction) -> tuple[int, int, float]:
    cmd = _decode_command(path, exe, sar, seek=0.0, output="null", max_frames=1)
    done = _run_ffmpeg(cmd, path)
    err = done.stderr.decode("utf-8", "replace")
    m = _SHOWINFO_RE.search(err)
    if done.returncode != 0 or m is None:
        raise MocapError(f"{path} could not be decoded ({_last_error(err)}); re-encode it as H.264 mp4.")
    tb = _TIMEBASE_RE.search(err)
    meta = _parse_showinfo(m)
    return meta.width, meta.height, _frame_time(meta, Fraction(int(tb.group(1)), int(tb.group(2))) if tb else None, 0.0)


def _decode_command(
    path: Path,
    exe: str,
    pixel_aspect: Fraction,
    *,
    seek: float,
    output: str = "rawvideo",
    max_frames: int | None = None,
    size: tuple[int, int] | None = None,
    pixel_format: PixelFormat = "rgb24",
) -> list[str]:
    """ffmpeg command decoding the first video stream to upright RGB24 (or ``pixel_format``), scaled to ``size``
    when given, with a showinfo line per frame (after the scaling: the reader sizes its reads from it)."""
    source = ffmpeg.input(str(path), ss=seek) if seek > 0 else ffmpeg.input(str(path))
    video = source.video
    if size is not None:
        # Straight to the wanted size (pixel centres aligned, as cv2.resize does); bilinear is plenty for a
        # downscale of at most 2x and cheaper than the default bicubic.
        video = video.filter("scale", w=size[0], h=size[1], flags="bilinear").filter("setsar", "1")
    elif pixel_aspect != 1:
        # Non-square pixels: stretch the width so the pose model sees true proportions.
        video = video.filter("scale", w="trunc(iw*sar+0.5)", h="ih").filter("setsar", "1")
    video = video.filter("showinfo")
    options: dict[str, object] = {
        "format": output,
        "pix_fmt": pixel_format,
        "fps_mode": "passthrough",
        "an": None,
        "sn": None,
        "dn": None,
    }
    if max_frames is not None:
        options["frames:v"] = max_frames
    return _command(video.output("pipe:", **options), exe)


def _run_ffmpeg(cmd: list[str], path: Path) -> subprocess.CompletedProcess[bytes]:
    """One ffmpeg call reading ``path`` (output captured, at most 10 minutes); ``MocapError`` if it cannot run."""
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MocapError(
            f"Could not run ffmpeg to read {path} ({exc.__class__.__name__}); check the ffmpeg install."
        ) from exc


def _last_error(stderr: str) -> str:
    """The most telling line of an ffmpeg log, trimmed of the ``[tag @ 0x...]`` prefix."""
    lines = [re.sub(r"^\[[^\]]*\]\s*", "", ln).strip() for ln in stderr.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith(("Input #", "Stream", "Metadata", "Duration"))]
    for ln in reversed(lines):
        if re.search(r"error|invalid|partial|not found|no such|unsupported|corrupt", ln, re.I):
            return ln.rstrip(".")
    return lines[-1].rstrip(".") if lines else "unknown ffmpeg error"


# -- decoding --------------------------------------------------------------------------------------


_SHOWINFO_RE = re.compile(r"\] n:\s*(\d+) pts:\s*(-?\d+|NOPTS) pts_time:(\S+).*? s:(\d+)x(\d+)")
_TIMEBASE_RE = re.compile(r"Parsed_showinfo.*config in time_base: (\d+)/(\d+)")


@dataclass
class _FrameMeta:
    pts: int | None
    pts_time: float
    width: int
    height: int


def _parse_showinfo(m: re.Match[str]) -> _FrameMeta:
    pts = None if m.group(2) == "NOPTS" else int(m.group(2))
    try:
        pts_time = float(m.group(3))
    except ValueError:
        pts_time = float("nan")
    return _FrameMeta(pts, pts_time, int(m.group(4)), int(m.group(5)))


def _drain_stderr(
    pipe: object, metas: "queue.Queue[_FrameMeta | None]", tail: deque[str], tb_box: list[Fraction]
) -> None:
    """Thread body: parse showinfo lines into ``metas``, keep the last log lines for error messages."""
    try:
        for raw in iter(pipe.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode("utf-8", "replace").rstrip()
            m = _SHOWINFO_RE.search(line)
            if m:
                metas.put(_parse_showinfo(m))
                continue
            tb = _TIMEBASE_RE.search(line)
            if tb and int(tb.group(1)) > 0 and int(tb.group(2)) > 0 and not tb_box:
                tb_box.append(Fraction(int(tb.group(1)), int(tb.group(2))))
            elif "Parsed_showinfo" not in line:
                tail.append(line)
    except (OSError, ValueError):
        pass
    finally:
        metas.put(None)


def _read_exact(pipe: object, nbytes: int) -> bytearray | None:
    buf = bytearray(nbytes)
    view = memoryview(buf)
    got = 0
    while got < nbytes:
        n = pipe.readinto(view[got:])  # type: ignore[attr-defined]
        if not n:
            return None
        got += n
    return buf


def iter_frames(
    path: Path | str,
    *,
    start: float | None = None,
    end: float | None = None,
    info: VideoInfo | None = None,
    size: tuple[int, int] | None = None,
    pixel_format: PixelFormat = "rgb24",
) -> Iterator[Frame]:
    """Stream the frames with ``start <= time < end`` (seconds from the file start) as upright RGB arrays.

    Validates eagerly (bad file, empty range: ``MocapError`` at the call); ffmpeg starts on the first ``next``.
    Close the generator (or use ``contextlib.closing``) to stop early; ffmpeg is then killed and reaped.
    ``info`` is reused when given (saves a probe). ``size`` (W, H) has ffmpeg scale the upright frames (one pass
    with the colour conversion, cheaper than decoding full size and resizing); ``pixel_format="bgr24"`` yields
    OpenCV's BGR order instead of RGB (for drawing, not for the detectors).
    """
    path = Path(path)
    if info is None:
        info = probe(path)
    if start is not None and start < 0:
        raise MocapError(f"--start must be 0 or more seconds, got {start}.")
    if end is not None and start is not None and end <= start:
        raise MocapError(f"--end ({end} s) must be after --start ({start} s).")
    lo, hi, tol = _window(info, start, end)
    if count_frames(info, start, end) == 0:
        window = f"after {lo:g} s" if end is None else f"between {lo:g} s and {hi:g} s"
        raise MocapError(f"{path} has no frames {window} (it is {info.duration:.2f} s long); adjust --start/--end.")
    return _frame_generator(path, info, lo, hi, tol, size, pixel_format)


def _window(info: VideoInfo, start: float | None, end: float | None) -> tuple[float, float, float]:
    lo = 0.0 if start is None else float(start)
    hi = float("inf") if end is None else float(end)
    # Times are compared with a tolerance far below a frame interval: --end 2.0 excludes a frame at 2.0 s.
    tol = min(1e-3, 0.25 / float(info.fps)) if info.fps > 0 else 1e-3
    return lo, hi, tol


def close_frames(frames: object) -> None:
    """Stop a frame stream early: an ``iter_frames`` generator kills its ffmpeg; other iterables are left alone."""
    close = getattr(frames, "close", None)
    if callable(close):
        close()


def count_frames(info: VideoInfo, start: float | None = None, end: float | None = None) -> int:
    """How many frames ``iter_frames(..., start=start, end=end)`` will yield (for progress bars)."""
    lo, hi, tol = _window(info, start, end)
    return int(np.count_nonzero((info.frame_times >= lo - tol) & (info.frame_times < hi - tol)))


def _frame_generator(
    path: Path,
    info: VideoInfo,
    lo: float,
    hi: float,
    tol: float,
    size: tuple[int, int] | None,
    pixel_format: PixelFormat,
) -> Iterator[Frame]:
    # Seek a little before the first wanted frame (input seeking is frame-accurate, but timestamps round to the
    # time base) and keep exactly [lo, hi) ourselves. ffmpeg seeks on the decoder's timeline.
    seek = max(0.0, lo + info.decode_offset - 2.0 / float(info.fps)) if lo > 0 and info.fps > 0 else 0.0
    cmd = _decode_command(path, ffmpeg_executable(), info.pixel_aspect, seek=seek, size=size, pixel_format=pixel_format)
    metas: queue.Queue[_FrameMeta | None] = queue.Queue()
    tail: deque[str] = deque(maxlen=40)
    tb_box: list[Fraction] = []
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    reader = threading.Thread(target=_drain_stderr, args=(proc.stderr, metas, tail, tb_box), daemon=True)
    reader.start()
    stdout = proc.stdout
    finished = False
    yielded = 0
    last_index = -1
    first_size: tuple[int, int] | None = None
    try:
        while True:
            meta = metas.get()
            if meta is None:
                finished = True
                break
            if first_size is None:
                first_size = (meta.width, meta.height)
            elif (meta.width, meta.height) != first_size:
                raise MocapError(
                    f"{path} changes picture size mid-stream ({first_size[0]}x{first_size[1]} to "
                    f"{meta.width}x{meta.height}); re-encode it to one size first."
                )
            buf = _read_exact(stdout, meta.width * meta.height * 3)
            if buf is None:
                finished = True
                break
            time = _frame_time(meta, tb_box[0] if tb_box else None, seek) - info.decode_offset
            index, time = _match_probed(info.frame_times, time, tol, last_index)
            last_index = index
            if time < lo - tol:
                continue
            if time >= hi - tol:
                break
            image = np.frombuffer(buf, dtype=np.uint8).reshape(meta.height, meta.width, 3)
            yielded += 1
            yield Frame(index=index, time=time, image=image)
        if finished:
            rc = proc.wait()
            reader.join(timeout=5)
            if rc != 0:
                raise MocapError(f"Decoding {path} failed after {yielded} frames ({_last_error(chr(10).join(tail))}).")
        if yielded == 0:
            window = f"after {lo:g} s" if hi == float("inf") else f"between {lo:g} s and {hi:g} s"
            raise MocapError(f"{path} has no decodable frames {window}; adjust --start/--end.")
    finally:
        if proc.poll() is None:
            proc.kill()
        stdout.close()
        proc.wait()
        reader.join(timeout=5)
        proc.stderr.close()


def _frame_time(meta: _FrameMeta, tb: Fraction | None, seek: float) -> float:
    """Seconds on the decoder's timeline: exact pts x time base when the log gave the base, else the rounded
    ``pts_time`` ffmpeg prints (6 significant digits)."""
    if meta.pts is not None and tb is not None:
        exact = float(meta.pts * tb)
        if np.isnan(meta.pts_time) or abs(exact - meta.pts_time) <= 1e-3 * max(1.0, abs(meta.pts_time)):
            return exact + seek
    return meta.pts_time + seek


def _match_probed(times: np.ndarray, t: float, tol: float, last_index: int) -> tuple[int, float]:
    """Index and exact time of the probed frame at time ``t`` (decoded frames map one to one to packets)."""
    k = int(np.searchsorted(times, t))
    best = min((i for i in (k - 1, k) if 0 <= i < len(times)), key=lambda i: abs(times[i] - t), default=None)
    if best is not None and abs(times[best] - t) <= tol and best > last_index:
        return best, float(times[best])
    return last_index + 1, t


def constant_rate_indices(frame_times: np.ndarray, fps: float, start: float | None = None) -> np.ndarray:
    """For resampling to a constant rate: index of the nearest frame at each tick ``start + k / fps``.

    Covers ``[frame_times[0], frame_times[-1]]``; for a constant-frame-rate clip sampled at its own rate this is
    ``arange(len(frame_times))``.
    """
    frame_times = np.asarray(frame_times, dtype=np.float64)
    t0 = frame_times[0] if start is None else start
    n = int(np.floor((frame_times[-1] - t0) * fps + 1e-6)) + 1
    ticks = t0 + np.arange(max(n, 1)) / fps
    k = (
        np.clip(np.searchsorted(frame_times, ticks), 1, len(frame_times) - 1)
        if len(frame_times) > 1
        else np.zeros(len(ticks), int)
    )
    if len(frame_times) > 1:
        k = np.where(np.abs(frame_times[k - 1] - ticks) <= np.abs(frame_times[k] - ticks), k - 1, k)
    return k.astype(np.int64)
