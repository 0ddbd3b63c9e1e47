"""Property-based fuzzing of the command line (issue 16): whatever option values and whatever damaged motion
file a user gives, `mocap` exits 0, 1 or 2, never prints a traceback, leaves no temp or stray file, and never
touches an existing output when it fails. Derandomized and few examples, so it is reproducible and quick."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from cli_main import run_main, stray_files
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import video
from helpers import real_motion

FUZZ = settings(
    max_examples=40, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow]
)

NUMBER_TEXT = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**12), max_value=10**12).map(str),
    st.sampled_from(["0", "-0", "1e-9", "1e308", "nan", "inf", "-inf", "", "abc", "1,5", "0x10", "179.0001"]),
)
ARRAYS = (
    "fps",
    "parents",
    "offsets",
    "rotations",
    "root_translation",
    "joints",
    "confidence",
    "provenance",
    "joint_names",
    "format",
    "version",
)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A folder with a real motion file (CMU capture through our IK) and a real 5-frame clip."""
    folder = tmp_path_factory.mktemp("fuzz")
    real_motion(frames=20).save_npz(folder / "a.npz")
    shutil.copy(video("street_walk_5frames.mp4"), folder / "small.mp4")
    return folder


def _check_outcome(res, folder: Path, existing: Path, before: bytes, new_out: Path) -> None:
    assert res.code in (0, 1, 2), (res.code, res.text)
    assert "Traceback" not in res.text, res.text
    if res.code != 0:
        assert res.err.strip(), "a failure must say why"
        assert existing.read_bytes() == before, "an existing output was touched by a failed run"
        assert not new_out.exists(), "a failed run left an output behind"
    assert stray_files(folder) == []


def _fresh_outputs(folder: Path) -> tuple[Path, bytes, Path]:
    out = folder / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    existing = out / "kept.glb"
    existing.write_bytes(b"an earlier export that must survive a failure")
    return existing, existing.read_bytes(), out / "new.bvh"


@FUZZ
@given(
    fps=st.one_of(st.none(), NUMBER_TEXT),
    preset=st.sampled_from(["blender", "ue5", "nope", ""]),
    root=st.sampled_from(["world", "in-place", "none", "sideways"]),
    overwrite=st.booleans(),
)
def test_export_option_values(workspace, fps, preset, root, overwrite):
    existing, before, new_out = _fresh_outputs(workspace)
    args = [
        "export",
        workspace / "a.npz",
        "--export",
        new_out,
        "--export",
        existing,
        "--preset",
        preset,
        "--root",
        root,
    ]
    if fps is not None:
        args += ["--fps", fps]
    if overwrite:
        args.append("--overwrite")
    res = run_main(*args)
    _check_outcome(res, workspace / "out", existing, before, new_out)
    if not overwrite:
        assert res.code != 0  # kept.glb exists and --overwrite was not given


@FUZZ
@given(data=st.data())
def test_corrupted_motion_files(workspace, data):
    arrays = dict(np.load(workspace / "a.npz"))
    for _ in range(data.draw(st.integers(1, 3), label="edits")):
        name = data.draw(st.sampled_from(ARRAYS), label="array")
        kind = data.draw(
            st.sampled_from(
                [
                    "drop",
                    "nan",
                    "inf",
                    "huge",
                    "zero",
                    "truncate",
                    "reshape",
                    "object",
                    "text",
                    "scalar",
                    "negative",
                    "bool",
                ]
            ),
            label="edit",
        )
        value = arrays.get(name)
        if kind == "drop" or value is None:
            arrays.pop(name, None)
            continue
        value = np.array(value, copy=True)
        if kind in ("nan", "inf", "huge", "zero", "negative") and value.dtype.kind in "fiu" and value.size:
            value = value.astype(np.float64)
            index = data.draw(st.integers(0, value.size - 1), label="index")
            value.flat[index] = {"nan": np.nan, "inf": np.inf, "huge": 1e30, "zero": 0.0, "negative": -7.0}[kind]
        elif kind == "truncate" and value.ndim:
            value = value[: data.draw(st.integers(0, max(0, len(value) - 1)), label="keep")]
        elif kind == "reshape" and value.size:
            value = value.reshape(-1)
        elif kind == "object":
            value = np.array([None, 1, "x"], dtype=object)
        elif kind == "text":
            value = np.array(data.draw(st.text(max_size=8), label="text"))
        elif kind == "scalar":
            value = np.array(data.draw(st.floats(allow_nan=True, allow_infinity=True), label="scalar"))
        elif kind == "bool":
            value = value.astype(bool) if value.dtype.kind != "U" else value
        arrays[name] = value
    bad = workspace / "bad.npz"
    np.savez(bad, **arrays)
    existing, before, new_out = _fresh_outputs(workspace)
    res = run_main("export", bad, "--export", new_out, "--export", existing, "--overwrite")
    _check_outcome(res, workspace / "out", existing, before, new_out)


@settings(max_examples=12, deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fov=st.one_of(st.none(), NUMBER_TEXT),
    fps=st.one_of(st.none(), NUMBER_TEXT),
    batch_size=st.one_of(st.none(), st.sampled_from(["0", "-1", "1", "2.5", "x", "99999999999999999999"])),
    start=st.one_of(st.none(), NUMBER_TEXT),
    device=st.sampled_from([None, "cpu", "cuda", "tpu", "AUTO"]),
)
def test_run_option_values(workspace, fov, fps, batch_size, start, device):
    """`mocap run` with fuzzed numbers. Values that pass every check run the real pipeline on a 5-frame clip,
    so the example count is kept small."""
    existing, before, new_out = _fresh_outputs(workspace)
    args = ["run", workspace / "small.mp4", "--export", new_out, "-q"]
    for flag, value in (
        ("--fov", fov),
        ("--fps", fps),
        ("--batch-size", batch_size),
        ("--start", start),
        ("--device", device),
    ):
        if value is not None:
            args += [flag, value]
    res = run_main(*args)
    _check_outcome(res, workspace / "out", existing, before, new_out)
    if res.code == 0:
        assert new_out.is_file()
