"""Write random but structurally faithful SMPL-format pickles for tests (no SMPL data involved).

The official SMPL ``.pkl`` is a dict of numpy arrays plus ``chumpy.ch.Ch`` objects (``shapedirs``) and scipy
sparse matrices (``J_regressor``, ``J_regressor_prior``). Chumpy is not installed, so a tiny class that pickles
under the name ``chumpy.ch.Ch`` (with chumpy's ``__getstate__`` layout) stands in for it while dumping.
"""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse

SMPL_PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21]


class Ch:
    """Pickles like a leaf ``chumpy.ch.Ch``: state is its ``__dict__`` minus weak dicts, value under ``x``."""

    def __init__(self, x: np.ndarray) -> None:
        self.x = np.asarray(x, dtype=np.float64)
        self._dirty_vars = {"x"}
        self._itr = None
        self._make_dense = False
        self._make_sparse = False
        self._depends_on_deps: dict[str, Any] = {}

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Malicious:
    """Unpickling it with a plain ``pickle.load`` would run ``touch <marker>``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        import os

        return (os.system, (f"touch '{self.marker}'",))


def _dump_with_fake_chumpy(obj: Any, path: Path, protocol: int) -> None:
    """Pickle ``obj`` while a fake ``chumpy.ch`` module holds :class:`Ch`, so references read ``chumpy.ch.Ch``."""
    saved = {name: sys.modules.get(name) for name in ("chumpy", "chumpy.ch")}
    chumpy = types.ModuleType("chumpy")
    ch_module = types.ModuleType("chumpy.ch")
    chumpy.ch = ch_module  # type: ignore[attr-defined]
    ch_module.Ch = Ch  # type: ignore[attr-defined]
    old_module, old_qualname = Ch.__module__, Ch.__qualname__
    sys.modules["chumpy"], sys.modules["chumpy.ch"] = chumpy, ch_module
    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    try:
        with open(path, "wb") as f:
            pickle.dump(obj, f, protocol=protocol)
    finally:
        Ch.__module__, Ch.__qualname__ = old_module, old_qualname
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def synthetic_smpl_dict(
    seed: int,
    *,
    num_vertices: int = 6890,
    num_faces: int = 13776,
    parents: list[int] | None = None,
    num_betas: int = 10,
    pose_basis: int | None = None,
) -> dict[str, Any]:
    """The dict an official SMPL pickle holds, filled with random numbers of the right shapes and kinds."""
    rng = np.random.default_rng(seed)
    parents = SMPL_PARENTS if parents is None else parents
    joints = len(parents)
    pose_basis = 9 * (joints - 1) if pose_basis is None else pose_basis
    regressor = np.zeros((joints, num_vertices))
    for j in range(joints):
        cols = rng.choice(num_vertices, size=12, replace=False)
        regressor[j, cols] = rng.dirichlet(np.ones(12))
    weights = rng.dirichlet(np.ones(joints) * 0.2, size=num_vertices)
    kintree = np.array([parents, list(range(joints))], dtype=np.int64)
    kintree[0, 0] = 4294967295  # how the official files store the root's parent
    return {
        "v_template": rng.normal(0.0, 0.3, (num_vertices, 3)),
        "shapedirs": Ch(rng.normal(0.0, 0.01, (num_vertices, 3, num_betas))),
        "posedirs": rng.normal(0.0, 0.01, (num_vertices, 3, pose_basis)),
        "J_regressor": scipy.sparse.csc_matrix(regressor),
        "J_regressor_prior": scipy.sparse.csc_matrix(regressor),
        "J": rng.normal(0.0, 0.3, (joints, 3)),
        "weights": weights,
        "weights_prior": weights.copy(),
        "kintree_table": kintree,
        "f": rng.integers(0, num_vertices, (num_faces, 3)).astype(np.uint32),
        "vert_sym_idxs": rng.permutation(num_vertices),
        "bs_style": "lbs",
        "bs_type": "lrotmin",
        "pose_training_info": {"num_poses": 1786, "seed": seed},
    }


def write_synthetic_smpl_pkl(path: Path, seed: int, *, protocol: int = 4, **shape: Any) -> dict[str, Any]:
    """Write a random SMPL-format ``.pkl`` (chumpy ``shapedirs``, scipy-sparse ``J_regressor``) to ``path``;
    returns the dict that was pickled. ``shape`` keywords go to :func:`synthetic_smpl_dict`."""
    data = synthetic_smpl_dict(seed, **shape)
    _dump_with_fake_chumpy(data, Path(path), protocol)
    return data


def write_malicious_pkl(path: Path, marker: Path, *, inside_smpl_dict: bool = True) -> None:
    """A pickle whose loading would call ``os.system("touch marker")`` (must be refused, never executed)."""
    payload: Any = _Malicious(marker)
    if inside_smpl_dict:
        payload = {**synthetic_smpl_dict(0), "bs_style": payload}
    _dump_with_fake_chumpy(payload, Path(path), protocol=4)
