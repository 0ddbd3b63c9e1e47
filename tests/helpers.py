"""Test helpers: real motion to export, and the real importers/validators run in subprocesses."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, require_shared
from mocap_cli.core.motion import Motion
from mocap_cli.core.skeleton import canonical_skeleton
from mocap_cli.solve.ik import solve_ik

PROBE = Path(__file__).with_name("blender_probe.py")
BENCHMARK = REPO / "benchmarks" / "accuracy.py"
FIT_JOINT_DEFINITIONS = REPO / "scripts" / "fit_joint_definitions.py"
VALIDATOR = Path(__file__).parent / "js" / "validate_gltf.js"


def real_motion(clip: str = "dance_05_02", frames: int | None = 60, fps: float = 30.0) -> Motion:
    """CMU motion capture (as retargeted onto the rendered clips' body) through our fitting and IK."""
    gt = np.load(require_shared("data", "synthetic", clip, "gt.npz"))
    joints = gt["joints3d_world"][:frames, :24].astype(np.float64)
    sk = canonical_skeleton().fitted_to(joints)
    rotations, root = solve_ik(sk, joints)
    return Motion.from_rotations(fps, sk, rotations, root, provenance={"input": clip, "model": "gt"})


@functools.cache
def _file_module(path: Path):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def accuracy_benchmark():  # type: ignore[no-untyped-def]
    """``benchmarks/accuracy.py`` as a module, so tests measure exactly as its tables do (``evaluate``,
    ``planted_mask``, ``ground_contact``)."""
    return _file_module(BENCHMARK)


def unpack_cmu(dest: Path, subjects: tuple[str, ...]) -> Path:
    """These subjects of the shared CMU archive unpacked under ``dest`` (never into the repository) → the
    ``cmu_asfamc`` folder."""
    import tarfile

    archive = require_shared("data", "mocap", "cmu_asfamc.tar.xz")
    with tarfile.open(archive, "r:xz") as tar:
        wanted = [m for m in tar if m.isfile() and m.name.split("/")[:2] in (["cmu_asfamc", s] for s in subjects)]
        tar.extractall(dest, members=wanted, filter="data")
    return dest / "cmu_asfamc"


def cmu_behind_rendered_clip(cmu_root: Path, clip: str) -> tuple[np.ndarray, np.ndarray]:
    """The CMU joints behind a rendered clip and its ground truth, as ``scripts/fit_joint_definitions.py`` pairs
    them (``trial_behind_clip``). The trial is read only to compare skeletons (training refuses it)."""
    return _file_module(FIT_JOINT_DEFINITIONS).trial_behind_clip(require_shared("data", "synthetic", clip), cmu_root)


def child_processes() -> set[int]:
    """Child processes of this test process (all threads), from /proc."""
    found: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{task}/children") as fh:
            found.update(int(p) for p in fh.read().split())
    return found


def to_blender(p: np.ndarray) -> np.ndarray:
    """Our Y-up world → Blender's Z-up world (the importers' default axis conversion)."""
    p = np.asarray(p)
    return np.stack([p[..., 0], -p[..., 2], p[..., 1]], axis=-1)


def run_blender(request: list[dict], tmp: Path) -> list[dict]:
    """Import several files in ONE Blender subprocess (see blender_probe.py for the request items)."""
    try:
        import bpy  # noqa: F401
    except ImportError:
        pytest.skip("bpy (Blender as a Python module) is not installed")
    req, res = Path(tmp) / "probe_request.json", Path(tmp) / "probe_result.json"
    req.write_text(json.dumps(request))
    proc = subprocess.run([sys.executable, str(PROBE), str(req), str(res)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"Blender probe failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(res.read_text())


def blender_probe(path: Path, fps: float, frames: list[int]) -> dict:
    """One file through the probe, as {bones, parents, fps, frame_range, positions, meshes}."""
    res = run_blender([{"path": str(path), "fps": fps, "frames": frames}], Path(path).parent)[0]
    assert res["import_result"] == ["FINISHED"] and res["armatures"], f"Blender failed to import {path.name}"
    return {
        "bones": list(res["bones"]),
        "parents": res["bones"],
        "fps": res["fps"] / res["fps_base"],
        "frame_range": res["action_frame_range"],
        "scene_range": res["scene_range"],
        "positions": {k: v["heads"] for k, v in res["frames"].items()},
        "meshes": res["mesh_info"],
    }


def gltf_validate(path: Path) -> dict:
    node = shutil.which("node")
    if node is None or not (VALIDATOR.parent / "node_modules" / "gltf-validator").is_dir():
        pytest.skip("gltf-validator not installed (run: npm install --prefix tests/js)")
    res = subprocess.run([node, str(VALIDATOR), str(path)], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def assert_blender_matches(
    report: dict,
    motion: Motion,
    frames: list[int],
    names: list[str] | None = None,
    scale: float = 1.0,
    tol: float = 0.01,
) -> float:
    """World positions of bone heads in Blender vs our forward kinematics; returns the worst error (m)."""
    worst = 0.0
    names = names or list(motion.skeleton.names)
    for f in frames:
        for name in names:
            j = motion.skeleton.index(name)
            got = np.array(report["positions"][str(f)][name]) / scale
            want = to_blender(motion.joints[f, j])
            worst = max(worst, float(np.linalg.norm(got - want)))
    assert worst <= tol, f"Blender positions differ from our FK by {worst * 100:.2f} cm"
    return worst


__all__ = [
    "REPO",
    "child_processes",
    "real_motion",
    "to_blender",
    "run_blender",
    "blender_probe",
    "gltf_validate",
    "assert_blender_matches",
]
