"""benchmarks/gpu_check.py's CPU-side logic: the no-CUDA refusal and a dry run of its table on real inputs."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_shared

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_check.py"


def _module():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("gpu_check", BENCH)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_without_cuda_it_exits_with_one_sentence() -> None:
    gc = _module()
    with pytest.raises(SystemExit) as err:
        gc.main([])
    message = str(err.value.code)
    assert message == gc.NO_CUDA and message.count(". ") == 0 and message.endswith(".")


@pytest.mark.slow
def test_dry_run_table_on_the_rendered_clips(capsys: pytest.CaptureFixture[str]) -> None:
    require_shared("data", "synthetic")
    gc = _module()
    gc.main(["--device", "cpu", "--quick", "--skip-pipeline"])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| ")]
    header, rows = lines[0], lines[1:]
    assert "joints Δ max / mean (mm)" in header and "frames/s" in header
    names = {r.split(" | ")[0].strip("| ") for r in rows}
    assert names == {"MixSTE (tiny)", "Strided (tiny)", "MAED (tiny)", "INT (tiny)", "UNSPAT (tiny)"}
    assert len(rows) == 5 * 2  # batch sizes 1 and 2
    for r in rows:
        cells = [c.strip() for c in r.strip("|").split("|")]
        assert float(cells[2]) > 0  # frames/s
        joints_max = float(cells[4].split("/")[0])
        assert np.isfinite(joints_max) and joints_max >= 0
        if "MixSTE" in cells[0] or "Strided" in cells[0]:
            assert cells[5] == "-" and joints_max == 0.0  # CPU lifters run fp32 both times
        else:
            assert float(cells[5].split("/")[0]) >= 0  # bf16 autocast vs fp32, degrees


def test_rotation_degrees_and_fk_are_exact() -> None:
    gc = _module()
    from scipy.spatial.transform import Rotation

    a = Rotation.from_rotvec(np.random.default_rng(0).normal(size=(5, 3))).as_matrix()
    b = a @ Rotation.from_rotvec([0, 0, np.radians(7.0)]).as_matrix()
    np.testing.assert_allclose(gc.rotation_degrees(a, b), 7.0, atol=1e-6)
    joints = gc.fk_joints(np.broadcast_to(np.eye(3), (2, 24, 3, 3)).copy())
    from mocap_cli.core.skeleton import canonical_skeleton

    rest = canonical_skeleton().rest_positions()
    np.testing.assert_allclose(joints[0], rest - rest[0], atol=1e-9)  # identity rotations: the rest pose, root at 0
