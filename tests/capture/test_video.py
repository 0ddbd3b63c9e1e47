"""Video probing and frame streaming on the team's real clips (and files derived from them with ffmpeg)."""

from __future__ import annotations

import re
import subprocess
import tracemalloc
from contextlib import closing
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from conftest import require_shared, video
from helpers import child_processes
from mocap_cli.capture.video import constant_rate_indices, count_frames, ffmpeg_executable, iter_frames, probe
from mocap_cli.errors import MocapError


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_executable(), "-nostdin", "-v", "error", "-y", *args], check=True)


def _manifest_rows() -> list[tuple[str, str, int]]:
    """(file, "W x H" column, frames) from the videos MANIFEST (counts measured there with OpenCV)."""
    text = require_shared("data", "videos", "MANIFEST.md").read_text()
    rows = []
    for line in text.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) >= 8 and re.fullmatch(r"[\w.]+\.(mp4|avi)", cols[0]) and cols[6].isdigit():
            rows.append((cols[0], cols[5], int(cols[6])))
    return rows


@pytest.mark.parametrize(
    "name, fps",
    [
        ("taiji_frontal.mp4", Fraction(24000, 1001)),
        ("fitness_dance_white_bg.mp4", Fraction(30000, 1001)),
        ("basketball_practice_lowres.mp4", Fraction(30000, 1001)),
        ("juggle_park.mp4", Fraction(24)),
        ("3dpw_courtyard_basketball_portrait.mp4", Fraction(12)),
        ("street_dance_crowd.avi", Fraction(50)),
    ],
)
def test_exact_rational_frame_rate(name: str, fps: Fraction) -> None:
    info = probe(video(name))
    assert isinstance(info.fps, Fraction)
    assert info.fps == fps
    assert not info.variable_frame_rate
    assert np.allclose(np.diff(info.frame_times), 1 / float(fps), atol=1e-9)


def test_frame_counts_match_manifest() -> None:
    rows = _manifest_rows()
    assert len(rows) == 13
    for name, size, frames in rows:
        info = probe(video(name))
        assert info.frame_count == frames, name
        assert len(info.frame_times) == frames, name
        assert info.frame_times[0] == 0.0 and np.all(np.diff(info.frame_times) > 0), name
        stored_w, stored_h = (int(v) for v in re.findall(r"\d+", size)[:2])
        if info.pixel_aspect == 1:
            assert (info.width, info.height) == (stored_w, stored_h), name
        else:  # arm_wrestling is 340x256 stored with 64:51 pixels: shown (and yielded) 427 wide
            assert (info.width, info.height) == (round(stored_w * info.pixel_aspect), stored_h), name


@pytest.mark.parametrize(
    "name",
    ["street_walk_5frames.mp4", "3dpw_courtyard_basketball_portrait.mp4", "ntu_drink_water_S001C001P001R001A001.avi"],
)
def test_decoded_frames_match_probe(name: str) -> None:
    info = probe(video(name))
    frames = [(f.index, f.time, f.image.shape, f.image.dtype) for f in iter_frames(video(name), info=info)]
    assert [f[0] for f in frames] == list(range(info.frame_count))
    assert np.array_equal([f[1] for f in frames], info.frame_times)
    assert all(f[2] == (info.height, info.width, 3) and f[3] == np.uint8 for f in frames)


def test_portrait_clip_is_1080_wide_1920_high() -> None:
    path = video("3dpw_courtyard_basketball_portrait.mp4")
    info = probe(path)
    # The container stores the picture portrait (no rotation tag); it must stay 1080 wide x 1920 high.
    assert (info.width, info.height, info.rotation) == (1080, 1920, 0)
    with closing(iter_frames(path, info=info)) as frames:
        assert next(frames).image.shape == (1920, 1080, 3)


@pytest.mark.parametrize("ccw, rotation, k", [(90, 270, 1), (-90, 90, -1), (180, 180, 2)])
def test_rotation_metadata_is_applied(tmp_path: Path, ccw: int, rotation: int, k: int) -> None:
    """A phone-style display matrix (added without re-encoding) must yield the picture turned upright."""
    src = video("street_walk_5frames.mp4")
    rotated = tmp_path / "rotated.mp4"
    # -display_rotation: degrees counter-clockwise to turn the picture for display (ffmpeg docs).
    _ffmpeg("-display_rotation", str(ccw), "-i", str(src), "-c", "copy", str(rotated))
    info = probe(rotated)
    assert info.rotation == rotation
    assert (info.width, info.height) == ((540, 960) if rotation in (90, 270) else (960, 540))
    plain = [f.image for f in iter_frames(src)]
    turned = [f.image for f in iter_frames(rotated, info=info)]
    assert len(turned) == 5
    for a, b in zip(plain, turned):
        assert b.shape == (info.height, info.width, 3)
        # np.rot90(k=1) turns an image 90 degrees counter-clockwise as displayed.
        assert np.abs(np.rot90(a, k).astype(int) - b).mean() < 1.0


def test_start_end_slice_is_exact() -> None:
    path = video("taiji_frontal.mp4")
    info = probe(path)
    full = {f.index: f.image for f in iter_frames(path, end=3.0, info=info)}
    sliced = list(iter_frames(path, start=1.5, end=2.5, info=info))
    expected = [i for i, t in enumerate(info.frame_times) if 1.5 <= t < 2.5]
    assert [f.index for f in sliced] == expected  # frames 36..59 at 24000/1001 fps
    assert expected[0] == 36 and expected[-1] == 59
    assert count_frames(info, 1.5, 2.5) == 24 and count_frames(info) == 412
    for f in sliced:
        assert f.time == info.frame_times[f.index]
        assert np.array_equal(f.image, full[f.index])


def test_slice_of_dts_only_avi_is_exact() -> None:
    """AVI carries no pts; the decoder's timeline is offset by its reorder delay, which probe measures."""
    path = video("ntu_drink_water_S001C001P001R001A001.avi")
    info = probe(path)
    full = {f.index: f.image for f in iter_frames(path, end=2.0, info=info)}
    sliced = list(iter_frames(path, start=1.0, end=1.5, info=info))
    assert [f.index for f in sliced] == list(range(30, 45))
    assert all(np.array_equal(f.image, full[f.index]) for f in sliced)


def test_variable_frame_rate_times(tmp_path: Path) -> None:
    """Frames 10.. of a real clip shifted by 0.5 s: times must show the gap, not a constant rate."""
    vfr = tmp_path / "vfr.mp4"
    _ffmpeg(
        "-i", str(video("juggle_park.mp4")), "-frames:v", "20",
        "-vf", "scale=320:180,setpts='(N/24+gte(N,10)*0.5)/TB'", "-fps_mode", "vfr", "-video_track_timescale", "12000",
        "-c:v", "libx264", "-preset", "ultrafast", str(vfr),
    )  # fmt: skip
    expected = np.arange(20) / 24 + (np.arange(20) >= 10) * 0.5
    info = probe(vfr)
    assert info.variable_frame_rate
    assert info.fps == 24  # 18 of the 19 intervals are 1/24 s
    assert np.allclose(info.frame_times, expected, atol=1e-6)
    times = [f.time for f in iter_frames(vfr, info=info)]
    assert np.allclose(times, expected, atol=1e-6)
    # Resampling at 24 fps picks the nearest real frame at every tick, across the gap.
    picks = constant_rate_indices(info.frame_times, 24)
    assert len(picks) == 32 and picks[0] == 0 and picks[9] == 9 and picks[-1] == 19
    assert np.array_equal(picks[10:22], [9] * 6 + [10] * 6)


def test_real_clip_with_dropped_frames_is_flagged_variable() -> None:
    info = probe(video("two_people_interaction_lab.mp4"))
    gaps = np.diff(info.frame_times)
    assert info.variable_frame_rate and info.fps == 30
    assert np.isclose(gaps.max(), 0.2) and np.isclose(np.median(gaps), 1 / 30)


def test_memory_stays_bounded() -> None:
    path = video("juggle_park.mp4")
    info = probe(path)
    frame_bytes = info.width * info.height * 3
    tracemalloc.start()
    try:
        count = 0
        for _frame in iter_frames(path, end=6.0, info=info):
            count += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 144
    assert peak < 4 * frame_bytes, f"peak {peak / 1e6:.1f} MB for {count} frames of {frame_bytes / 1e6:.1f} MB"


def test_early_stop_kills_ffmpeg() -> None:
    path = video("juggle_park.mp4")
    before = child_processes()
    frames = iter_frames(path)
    assert child_processes() == before  # nothing starts until the first frame is requested
    next(frames)
    started = child_processes() - before
    assert len(started) == 1
    frames.close()
    assert child_processes() == before
    for pid in started:
        assert not Path(f"/proc/{pid}").exists()

    with pytest.raises(RuntimeError):
        for frame in iter_frames(path):
            if frame.index == 3:
                raise RuntimeError("consumer failed")
    assert child_processes() == before

    for frame in iter_frames(path):
        if frame.index == 2:
            break
    assert child_processes() == before


def _bad(tmp_path: Path, kind: str) -> Path:
    real = video("juggle_park.mp4")  # moov atom at the front: cutting it leaves a readable header, missing data
    target = tmp_path / f"{kind}.mp4"
    if kind == "text":
        target.write_text("this is a note, not a video\n")
    elif kind == "empty":
        target.write_bytes(b"")
    elif kind == "truncated":
        target.write_bytes(real.read_bytes()[:400_000])
    elif kind == "truncated_tail_index":  # moov atom at the end: the cut removes the index
        target.write_bytes(video("street_walk_5frames.mp4").read_bytes()[:150_000])
    elif kind == "png":
        target = tmp_path / "still.png"
        _ffmpeg("-i", str(real), "-frames:v", "1", str(target))
    elif kind == "png_named_mp4":
        _ffmpeg("-i", str(real), "-frames:v", "1", "-f", "image2", "-c:v", "png", str(target))
    elif kind == "missing":
        target = tmp_path / "nowhere" / "clip.mp4"
    elif kind == "folder":
        target = tmp_path
    return target


@pytest.mark.parametrize(
    "kind, words",
    [
        ("text", "not a complete MP4"),
        ("empty", "empty"),
        ("truncated", "truncated or damaged"),
        ("truncated_tail_index", "truncated"),
        ("png", "still image"),
        ("png_named_mp4", "still image"),
        ("missing", "does not exist"),
        ("folder", "folder"),
    ],
)
def test_bad_inputs_raise_one_sentence(tmp_path: Path, kind: str, words: str) -> None:
    path = _bad(tmp_path, kind)
    with pytest.raises(MocapError) as err:
        iter_frames(path)
    message = str(err.value)
    assert words in message and str(path) in message
    assert message.endswith(".") and "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize(
    "start, end, words",
    [
        (20.0, None, "no frames after 20 s"),
        (5.01, 5.03, "no frames between"),
        (-1.0, None, "0 or more"),
        (3.0, 2.0, "after --start"),
    ],
)
def test_bad_ranges(start: float, end: float | None, words: str) -> None:
    with pytest.raises(MocapError, match=words):
        iter_frames(video("juggle_park.mp4"), start=start, end=end)


def test_ntsc_rate_in_millisecond_time_base(tmp_path: Path) -> None:
    """Matroska stores times in ms: 29.97 fps frames are 33 or 34 ticks apart, which is rounding, not VFR."""
    mkv = tmp_path / "clip.mkv"
    _ffmpeg("-i", str(video("fitness_dance_white_bg.mp4")), "-c", "copy", str(mkv))
    info = probe(mkv)
    assert info.time_base == Fraction(1, 1000)
    assert set(np.round(np.diff(info.frame_times) * 1000).astype(int)) == {33, 34}
    assert info.fps == Fraction(30000, 1001) and not info.variable_frame_rate
    assert info.frame_count == 300
