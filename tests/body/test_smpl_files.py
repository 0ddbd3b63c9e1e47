"""SMPL .pkl import: restricted unpickling, SMPL validation, .npz cache, lookup order."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import require_shared
from mocap_cli.body import smpl_files
from mocap_cli.body.smpl_files import find_smpl, import_smpl, load_smpl_npz, read_smpl_pkl
from mocap_cli.errors import MocapError
from smpl_synthetic import SMPL_PARENTS, write_malicious_pkl, write_synthetic_smpl_pkl

PKL_NAME = "basicModel_neutral_lbs_10_207_0_v1.0.0.pkl"


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    path = tmp_path_factory.mktemp("smpl") / PKL_NAME
    return path, write_synthetic_smpl_pkl(path, seed=7)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_SMPL_DIR", raising=False)
    return tmp_path / "home"


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".") and "\n" not in message


def test_import_converts_pkl_to_npz_with_the_pickled_values(synthetic, home):
    pkl, data = synthetic
    out = import_smpl(pkl)
    assert out == home / "smpl" / "smpl_neutral.npz"
    arrays = load_smpl_npz(out)
    np.testing.assert_allclose(arrays["v_template"], data["v_template"], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(arrays["shapedirs"], data["shapedirs"].x, rtol=1e-6, atol=1e-9)  # chumpy x
    np.testing.assert_allclose(arrays["posedirs"], data["posedirs"], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(arrays["J_regressor"], data["J_regressor"].toarray(), rtol=1e-6, atol=1e-9)  # sparse
    np.testing.assert_allclose(arrays["weights"], data["weights"], rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(arrays["faces"], data["f"].astype(np.int64))
    assert arrays["kintree_table"][0].tolist() == SMPL_PARENTS  # root stored as 2**32-1 becomes -1
    assert arrays["kintree_table"][1].tolist() == list(range(24))
    assert sorted(arrays) == sorted(
        ["v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "faces"]
    )
    # the npz is a plain array file: loads without pickle support
    with np.load(out, allow_pickle=False) as npz:
        assert npz["posedirs"].shape == (6890, 3, 207)


def test_import_is_done_once(synthetic, home):
    pkl, _ = synthetic
    out = import_smpl(pkl)
    stamp = out.stat().st_mtime_ns
    os.utime(out, ns=(stamp - 10**9, stamp - 10**9))
    assert import_smpl(pkl) == out
    assert out.stat().st_mtime_ns == stamp - 10**9  # not rewritten
    assert [p.name for p in (home / "smpl").iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_gender_comes_from_the_file_name(tmp_path, home):
    pkl = tmp_path / "basicModel_f_lbs_10_207_0_v1.0.0.pkl"
    write_synthetic_smpl_pkl(pkl, seed=3, num_betas=300)
    out = import_smpl(pkl)
    assert out.name == "smpl_female.npz"
    assert load_smpl_npz(out)["shapedirs"].shape == (6890, 3, 300)


def test_protocol2_pickle_with_latin1_strings(tmp_path, home):
    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    data = write_synthetic_smpl_pkl(pkl, seed=11, protocol=2)
    arrays = read_smpl_pkl(pkl)
    np.testing.assert_allclose(arrays["J_regressor"], data["J_regressor"].toarray(), rtol=1e-6, atol=1e-9)


def test_malicious_pickle_is_refused_and_never_runs(tmp_path, home):
    marker = tmp_path / "marker"
    for inside in (True, False):
        pkl = tmp_path / f"evil_{inside}.pkl"
        write_malicious_pkl(pkl, marker, inside_smpl_dict=inside)
        with pytest.raises(MocapError, match="refused for safety") as err:
            import_smpl(pkl)
        assert _one_sentence(str(err.value))
        assert not marker.exists()
    assert not (home / "smpl").exists() or not any((home / "smpl").iterdir())


def test_smplx_shaped_pickle_names_what_it_is(tmp_path, home):
    pkl = tmp_path / "SMPLX_NEUTRAL.pkl"
    parents = [-1] + [max(0, (i - 1) // 2) for i in range(1, 55)]
    write_synthetic_smpl_pkl(pkl, seed=5, num_vertices=10475, num_faces=20908, parents=parents, pose_basis=9)
    with pytest.raises(MocapError, match="SMPL-X") as err:
        import_smpl(pkl)
    assert _one_sentence(str(err.value))
    assert not (home / "smpl").exists()


def test_smplh_shaped_pickle_names_what_it_is(tmp_path, home):
    pkl = tmp_path / "SMPLH_male.pkl"
    parents = SMPL_PARENTS[:22] + [20 if i < 37 else 21 for i in range(22, 52)]
    write_synthetic_smpl_pkl(pkl, seed=6, parents=parents, pose_basis=9)
    with pytest.raises(MocapError, match=r"SMPL\+H") as err:
        import_smpl(pkl)
    assert _one_sentence(str(err.value))


@pytest.mark.parametrize(
    "payload, expected",
    [
        ({"a": np.zeros((3, 3)), "b": [1, 2, 3]}, "not a body model"),
        ([np.ones(5), "text"], "pickle of list"),
        ({"v_template": np.zeros((500, 3)), "weights": np.zeros((500, 10))}, "500 vertices"),
    ],
)
def test_random_pickles_give_one_sentence(tmp_path, home, payload, expected):
    pkl = tmp_path / "random.pkl"
    pkl.write_bytes(pickle.dumps(payload, protocol=4))
    with pytest.raises(MocapError, match=expected) as err:
        import_smpl(pkl)
    assert _one_sentence(str(err.value))


def test_smpl_sized_but_wrong_array_is_named(tmp_path, home):
    pkl = tmp_path / "SMPL_NEUTRAL.pkl"
    write_synthetic_smpl_pkl(pkl, seed=8, pose_basis=100)
    with pytest.raises(MocapError, match=r"posedirs is shaped \(6890, 3, 100\), expected 6890x3x207") as err:
        import_smpl(pkl)
    assert _one_sentence(str(err.value))


def test_not_a_pickle(tmp_path, home):
    bad = tmp_path / "SMPL_NEUTRAL.pkl"
    bad.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(MocapError) as err:
        import_smpl(bad)
    assert _one_sentence(str(err.value))
    with pytest.raises(MocapError, match="does not exist"):
        import_smpl(tmp_path / "missing.pkl")


def test_find_smpl_order(synthetic, home, tmp_path, monkeypatch):
    pkl, _ = synthetic
    assert find_smpl(None) is None
    cached = import_smpl(pkl)
    assert find_smpl(None) == cached
    env_dir = tmp_path / "models" / "smpl"
    env_dir.mkdir(parents=True)
    env_file = env_dir / "SMPL_NEUTRAL.pkl"
    env_file.write_bytes(pkl.read_bytes())
    monkeypatch.setenv("MOCAP_SMPL_DIR", str(tmp_path / "models"))  # smplx-style layout: <dir>/smpl/SMPL_NEUTRAL.pkl
    assert find_smpl(None) == env_file
    assert find_smpl(pkl) == pkl  # --smpl wins
    assert find_smpl(env_dir) == env_file
    assert find_smpl(None, gender="male") is None
    with pytest.raises(MocapError, match="does not exist"):
        find_smpl(tmp_path / "nope.pkl")
    with pytest.raises(MocapError, match="No SMPL male model"):
        find_smpl(env_dir, gender="male")
    np.testing.assert_array_equal(smpl_files.load_smpl(env_file)["faces"], load_smpl_npz(cached)["faces"])


def test_missing_message_is_one_sentence():
    message = smpl_files.missing_smpl_message()
    assert _one_sentence(message)
    assert "mocap smpl import basicModel_neutral_lbs_10_207_0_v1.0.0.pkl" in message


def test_shared_synthetic_npz_loads():
    path = require_shared("reference", "hybrik", "synthetic_smpl.npz")
    arrays = load_smpl_npz(path)
    assert arrays["posedirs"].shape == (6890, 3, 207)  # rebuilt from the two stored factors
    assert arrays["kintree_table"][0].tolist() == SMPL_PARENTS
    with np.load(path) as raw:
        expected = (raw["posedirs_U"].astype(np.float64) @ raw["posedirs_V"].astype(np.float64)).reshape(6890, 3, 207)
    np.testing.assert_allclose(arrays["posedirs"], expected, rtol=1e-6, atol=1e-9)
