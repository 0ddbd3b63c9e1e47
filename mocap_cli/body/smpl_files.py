"""The SMPL body-model file: safe one-time conversion of the official ``.pkl`` into a plain ``.npz``.

The official SMPL ``.pkl`` files are Python-2 pickles holding numpy arrays, ``chumpy`` objects and a scipy
sparse ``J_regressor``. Unpickling normally needs chumpy (unmaintained) and can run arbitrary code, so we read
them with a restricted unpickler: only numpy's array reconstruction, a few builtin containers and inert
stand-ins for chumpy and scipy-sparse objects (which just keep their pickled state) are allowed; anything
else is refused. The arrays are checked to be SMPL (not SMPL-H / SMPL-X / something else) and written once to
``$MOCAP_HOME/smpl/smpl_<gender>.npz`` (default ``~/.cache/mocap/smpl``), which is what the tool loads.

The SMPL model is licensed by the Max Planck Society (non-commercial); users download it themselves from
https://smpl.is.tue.mpg.de, and nothing derived from it ships with mocap.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import json
import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from mocap_cli.core.atomic import atomic_write, write_text_atomic
from mocap_cli.errors import MocapError
from mocap_cli.weights.cache import mocap_home

SMPL_DIR_ENV = "MOCAP_SMPL_DIR"
SMPL_SITE = "https://smpl.is.tue.mpg.de"
GENDERS = ("neutral", "male", "female")
NUM_VERTICES = 6890
NUM_JOINTS = 24
NUM_FACES = 13776

# Arrays kept in the .npz, with their names in the official pickle.
_PKL_KEYS = {
    "v_template": "v_template",
    "shapedirs": "shapedirs",
    "posedirs": "posedirs",
    "J_regressor": "J_regressor",
    "weights": "weights",
    "kintree_table": "kintree_table",
    "faces": "f",
}


def smpl_cache_dir() -> Path:
    """``<mocap_home>/smpl``: where imported SMPL models live."""
    return mocap_home() / "smpl"


def missing_smpl_message(gender: str = "neutral", who: str = "This model") -> str:
    """One sentence telling the user how to provide the SMPL model."""
    return (
        f"{who} needs the SMPL body model, which cannot be shipped with mocap: register at {SMPL_SITE}, download "
        f"'SMPL for Python' and run `mocap smpl import basicModel_{_short(gender)}_lbs_10_207_0_v1.0.0.pkl` "
        f"(or pass --smpl PATH, or set {SMPL_DIR_ENV})."
    )


# ----------------------------------------------------------------------------------------- unpickling


class _StandIn:
    """An inert object standing for a class we refuse to import; it only records what the pickle gives it."""

    origin = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_args"] = args
        self.__dict__["_state"] = None

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state

    def state_dict(self) -> dict[str, Any]:
        state = self.__dict__.get("_state")
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):  # (dict, slots)
            state = state[0]
        return state if isinstance(state, dict) else {}


class _ChumpyStandIn(_StandIn):
    """Stands for ``chumpy.ch.Ch`` and friends. A plain ``Ch`` keeps its value in ``x``."""

    def to_array(self, key: str, source: Path) -> np.ndarray:
        x = self.state_dict().get("x")
        if isinstance(x, _ChumpyStandIn):
            return x.to_array(key, source)
        if isinstance(x, np.ndarray) and x.dtype != object:
            return x
        raise MocapError(
            f"{source} stores {key} as a computed chumpy expression ({self.origin}) that cannot be read without "
            f"chumpy; import the SMPL .pkl exactly as downloaded from {SMPL_SITE}."
        )


class _SparseStandIn(_StandIn):
    """Stands for a scipy.sparse csc/csr/coo matrix; converted to a dense array with numpy alone."""

    def to_array(self, key: str, source: Path) -> np.ndarray:
        s = self.state_dict()
        shape = s.get("_shape", s.get("shape"))
        fmt = self.origin.rsplit(".", 1)[-1][:3]
        try:
            rows, cols = (int(n) for n in shape)  # type: ignore[union-attr]
            data = np.asarray(s["data"], dtype=np.float64)
            dense = np.zeros((rows, cols), dtype=np.float64)
            if fmt == "coo":
                r = np.asarray(s["row"], dtype=np.int64)
                c = np.asarray(s["col"], dtype=np.int64)
            else:
                indices = np.asarray(s["indices"], dtype=np.int64)
                indptr = np.asarray(s["indptr"], dtype=np.int64)
                outer = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
                r, c = (indices, outer) if fmt == "csc" else (outer, indices)
            np.add.at(dense, (r, c), data)
        except (KeyError, TypeError, ValueError, IndexError) as exc:
            raise MocapError(
                f"{source} has a damaged sparse matrix for {key}; download the SMPL .pkl again from {SMPL_SITE}."
            ) from exc
        return dense


def _safe_reconstructor(cls: type, base: type, state: Any) -> Any:
    """Replacement for ``copyreg._reconstructor`` (protocol 0/1 pickles) limited to our stand-ins."""
    if not (isinstance(cls, type) and issubclass(cls, _StandIn)) or base is not object:
        raise pickle.UnpicklingError(f"refused object reconstruction of {cls!r} from {base!r}")
    return cls.__new__(cls)


def _latin1_encode(text: str, encoding: str = "latin1", errors: str = "strict") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1", errors)


_SPARSE_MODULES = {
    "scipy.sparse",
    "scipy.sparse.csc",
    "scipy.sparse._csc",
    "scipy.sparse.csr",
    "scipy.sparse._csr",
    "scipy.sparse.coo",
    "scipy.sparse._coo",
    "scipy.sparse.compressed",
    "scipy.sparse._compressed",
}
_SPARSE_NAMES = {"csc_matrix", "csr_matrix", "coo_matrix", "csc_array", "csr_array", "coo_array"}


def _numpy_allowed() -> dict[tuple[str, str], Any]:
    allowed: dict[tuple[str, str], Any] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        for sub, names in (("multiarray", ("_reconstruct", "scalar")), ("numeric", ("_frombuffer",))):
            try:
                module = __import__(f"{core}.{sub}", fromlist=list(names))
            except ImportError:
                continue
            for name in names:
                if hasattr(module, name):
                    allowed[(f"{core}.{sub}", name)] = getattr(module, name)
    dtypes = getattr(np, "dtypes", None)
    for name in dir(dtypes) if dtypes is not None else ():
        if name.endswith("DType"):
            allowed[("numpy.dtypes", name)] = getattr(dtypes, name)
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the globals an SMPL pickle legitimately needs."""

    def __init__(self, file: io.BufferedIOBase) -> None:
        super().__init__(file, encoding="latin1")
        self._allowed = _numpy_allowed()
        for builtins_name in ("__builtin__", "builtins"):
            for name, obj in (("object", object), ("set", set), ("frozenset", frozenset), ("slice", slice)):
                self._allowed[(builtins_name, name)] = obj
        for copyreg_name in ("copy_reg", "copyreg"):
            self._allowed[(copyreg_name, "_reconstructor")] = _safe_reconstructor
        # Python 3 writes bytes as _codecs.encode(text, "latin1") in protocol 0-2 pickles; it only encodes.
        self._allowed[("_codecs", "encode")] = _latin1_encode
        self._stand_ins: dict[tuple[str, str], type] = {}

    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        if module == "chumpy" or module.startswith("chumpy."):
            return self._stand_in(key, _ChumpyStandIn)
        if module in _SPARSE_MODULES and name in _SPARSE_NAMES:
            return self._stand_in(key, _SparseStandIn)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")

    def _stand_in(self, key: tuple[str, str], base: type) -> type:
        if key not in self._stand_ins:
            self._stand_ins[key] = type(key[1], (base,), {"origin": f"{key[0]}.{key[1]}"})
        return self._stand_ins[key]


def _unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except pickle.UnpicklingError as exc:
        if "refused" in str(exc):
            raise MocapError(
                f"{path} contains Python objects an SMPL model file never has ({exc}) and was refused for safety; "
                f"use the .pkl exactly as downloaded from {SMPL_SITE}."
            ) from exc
        raise MocapError(
            f"{path} is not a readable pickle ({exc}); download the SMPL .pkl again from {SMPL_SITE}."
        ) from exc
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, ImportError, MemoryError) as exc:
        raise MocapError(
            f"{path} is not a readable SMPL pickle ({exc.__class__.__name__}); download it again from {SMPL_SITE}."
        ) from exc


# ----------------------------------------------------------------------------------------- validation


def _as_array(value: Any, key: str, source: Path) -> np.ndarray:
    if isinstance(value, (_ChumpyStandIn, _SparseStandIn)):
        return value.to_array(key, source)
    if isinstance(value, _StandIn):
        raise MocapError(
            f"{source} stores {key} in an unexpected form; import the SMPL .pkl exactly as downloaded from {SMPL_SITE}."
        )
    array = np.asarray(value)
    if array.dtype == object:
        raise MocapError(
            f"{source} stores {key} in an unexpected form; import the SMPL .pkl exactly as downloaded from {SMPL_SITE}."
        )
    return array


def _describe(raw: dict[str, Any], arrays: dict[str, np.ndarray]) -> str | None:
    """What a non-SMPL model file looks like, or None when its size says SMPL (6890 vertices, 24 joints)."""
    template = arrays.get("v_template")
    if template is None or template.ndim != 2 or template.shape[-1] != 3:
        return "not a body model at all (it has no v_template vertex array)"
    n_vertices = template.shape[0]
    weights = arrays.get("weights")
    n_joints = weights.shape[1] if weights is not None and weights.ndim == 2 else None
    known = {
        10475: "an SMPL-X model (10475 vertices)",
        778: "a MANO hand model (778 vertices)",
        5023: "a FLAME head model (5023 vertices)",
    }
    if n_vertices in known:
        return known[n_vertices]
    if n_vertices == NUM_VERTICES and (n_joints == 52 or "hands_componentsl" in raw):
        return "an SMPL+H model (52 joints)"
    if n_vertices != NUM_VERTICES:
        return f"a body model with {n_vertices} vertices"
    if n_joints is not None and n_joints != NUM_JOINTS:
        return f"a 6890-vertex model with {n_joints} joints"
    return None


def _check_smpl(raw: dict[str, Any], arrays: dict[str, np.ndarray], source: Path) -> None:
    what = _describe(raw, arrays)
    if what is not None:
        found = f"is {what}" if what.startswith("not ") else f"looks like {what}, not SMPL"
        raise MocapError(
            f"{source} {found}; import the SMPL for Python .pkl (6890 vertices, 24 joints) from {SMPL_SITE} instead."
        )
    expected: dict[str, tuple[int | None, ...]] = {
        "v_template": (NUM_VERTICES, 3),
        "shapedirs": (NUM_VERTICES, 3, None),
        "posedirs": (NUM_VERTICES, 3, 9 * (NUM_JOINTS - 1)),
        "J_regressor": (NUM_JOINTS, NUM_VERTICES),
        "weights": (NUM_VERTICES, NUM_JOINTS),
        "kintree_table": (2, NUM_JOINTS),
        "faces": (NUM_FACES, 3),
    }
    for key, shape in expected.items():
        array = arrays.get(key)
        ok = (
            array is not None
            and array.ndim == len(shape)
            and all(e is None or e == a for e, a in zip(shape, array.shape))
        )
        if ok and key == "shapedirs":
            ok = array.shape[2] >= 10  # type: ignore[union-attr]
        if not ok:
            found = "missing" if array is None else f"shaped {tuple(array.shape)}"
            want = "x".join("N" if e is None else str(e) for e in shape)
            raise MocapError(
                f"{source} is not a complete SMPL model ({key} is {found}, expected {want}); import the SMPL for "
                f"Python .pkl from {SMPL_SITE} instead."
            )
    faces = arrays["faces"]
    if faces.min() < 0 or faces.max() >= NUM_VERTICES:
        raise MocapError(
            f"{source} has faces that index missing vertices; download the SMPL .pkl again from {SMPL_SITE}."
        )
    parents = arrays["kintree_table"][0]
    if parents[0] != -1 or any(not 0 <= parents[i] < i for i in range(1, NUM_JOINTS)):
        raise MocapError(
            f"{source} has a broken joint hierarchy (kintree_table); download the SMPL .pkl again from {SMPL_SITE}."
        )


def _normalise(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Canonical dtypes; the root's parent (stored as 2**32-1 in the official files) becomes -1."""
    out = {}
    for key, array in arrays.items():
        if key == "kintree_table":
            table = np.asarray(array).astype(np.int64)
            table[0, 0] = -1
            table[0][table[0] >= NUM_JOINTS] = -1
            out[key] = table
        elif key == "faces":
            out[key] = np.asarray(array).astype(np.int64).astype(np.int32)
        else:
            out[key] = np.ascontiguousarray(array, dtype=np.float32)
    return out


def read_smpl_pkl(path: Path) -> dict[str, np.ndarray]:
    """The SMPL arrays of an official ``.pkl`` (restricted unpickling), validated, canonical dtypes."""
    path = Path(path)
    if not path.is_file():
        raise MocapError(f"SMPL file {path} does not exist; check the path.")
    raw = _unpickle(path)
    if not isinstance(raw, dict):
        raise MocapError(
            f"{path} looks like a pickle of {type(raw).__name__}, not an SMPL model; import the SMPL for Python .pkl "
            f"from {SMPL_SITE} instead."
        )
    raw = {str(k): v for k, v in raw.items()}
    arrays: dict[str, np.ndarray] = {}
    for out_key, pkl_key in _PKL_KEYS.items():
        if pkl_key in raw:
            arrays[out_key] = _as_array(raw[pkl_key], pkl_key, path)
    arrays = _normalise(arrays) if _describe(raw, arrays) is None else arrays
    _check_smpl(raw, arrays, path)
    return arrays


def load_smpl_npz(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a converted SMPL ``.npz`` (no pickles allowed), validated. Also reads a file that stores
    ``posedirs`` as two factors ``posedirs_U @ posedirs_V`` (the shared synthetic test model)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError as exc:
        raise MocapError(f"SMPL file {path} does not exist; check the path or run `mocap smpl import`.") from exc
    except (OSError, ValueError, EOFError) as exc:
        raise MocapError(
            f"{path} is not a readable .npz file ({exc.__class__.__name__}); import the SMPL .pkl again."
        ) from exc
    if "posedirs" not in arrays and "posedirs_U" in arrays and "posedirs_V" in arrays:
        product = arrays["posedirs_U"].astype(np.float64) @ arrays["posedirs_V"].astype(np.float64)
        arrays["posedirs"] = product.astype(np.float32).reshape(NUM_VERTICES, 3, -1)
    if "faces" not in arrays and "f" in arrays:
        arrays["faces"] = arrays.pop("f")
    if _describe(arrays, arrays) is None:
        arrays.update(_normalise({k: arrays[k] for k in _PKL_KEYS if k in arrays}))
    _check_smpl(arrays, arrays, path)
    return arrays


def load_smpl(path: Path) -> dict[str, np.ndarray]:
    """Either kind of SMPL file: an official ``.pkl`` (converted in memory) or a converted ``.npz``."""
    path = Path(path)
    return load_smpl_npz(path) if path.suffix.lower() == ".npz" else read_smpl_pkl(path)


# ----------------------------------------------------------------------------------------- import / find


def gender_from_name(name: str) -> str:
    """neutral / male / female from an SMPL file name (official names: basicModel_f_lbs_..., SMPL_MALE.pkl);
    'neutral' when the name does not say."""
    lower = Path(name).name.lower()
    if "neutral" in lower:
        return "neutral"
    if "female" in lower or "_f_" in lower or lower.startswith("f_"):
        return "female"
    if "male" in lower or "_m_" in lower or lower.startswith("m_"):
        return "male"
    return "neutral"


def import_smpl(pkl_path: Path, *, gender: str | None = None) -> Path:
    """Convert an official SMPL ``.pkl`` (or an SMPL ``.npz``) once into ``<smpl_cache_dir>/smpl_<gender>.npz``
    and return that path. Re-importing the same file is a no-op."""
    source = Path(pkl_path).expanduser()
    if not source.is_file():
        raise MocapError(f"SMPL file {source} does not exist; give the path of the downloaded .pkl.")
    gender = gender or gender_from_name(source.name)
    if gender not in GENDERS:
        raise MocapError(f"Unknown SMPL gender {gender!r}; use one of {', '.join(GENDERS)}.")
    digest = _sha256(source)
    folder = smpl_cache_dir()
    target = folder / f"smpl_{gender}.npz"
    info_path = folder / f"smpl_{gender}.json"
    if target.is_file() and info_path.is_file():
        try:
            if json.loads(info_path.read_text(encoding="utf-8")).get("source_sha256") == digest:
                return target
        except (OSError, ValueError):
            pass
    arrays = load_smpl(source)
    arrays = {k: arrays[k] for k in _PKL_KEYS}
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_write(target, "wb") as f:
        np.savez(f, **arrays)
    info = {"gender": gender, "source_name": source.name, "source_sha256": digest, "format": 1}
    write_text_atomic(info_path, json.dumps(info, indent=2) + "\n")
    return target


def find_smpl(explicit: Path | None = None, *, gender: str = "neutral") -> Path | None:
    """The SMPL file to use: ``--smpl PATH`` (a file, or a folder holding one), then ``$MOCAP_SMPL_DIR``, then the
    imported cache; None when there is none (callers then raise :func:`missing_smpl_message`)."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if path.is_file():
            return path
        if path.is_dir():
            found = _find_in_dir(path, gender)
            if found is None:
                raise MocapError(
                    f"No SMPL {gender} model file found in {path}; point --smpl at the .pkl or .npz itself."
                )
            return found
        raise MocapError(f"SMPL path {path} does not exist; check --smpl.")
    env = os.environ.get(SMPL_DIR_ENV)
    if env:
        found = _find_in_dir(Path(env).expanduser(), gender)
        if found is not None:
            return found
    cached = smpl_cache_dir() / f"smpl_{gender}.npz"
    return cached if cached.is_file() else None


def _find_in_dir(folder: Path, gender: str) -> Path | None:
    if not folder.is_dir():
        return None
    short = _short(gender)
    wanted = [
        f"smpl_{gender}.npz",
        f"smpl_{gender}.pkl",
        f"basicmodel_{short}_lbs_10_207_0_v1.0.0.pkl",
        f"basicmodel_{short}_lbs_10_207_0_v1.1.0.pkl",
    ]
    for sub in (folder, folder / "smpl"):
        if not sub.is_dir():
            continue
        by_lower = {p.name.lower(): p for p in sorted(sub.iterdir()) if p.is_file()}
        for name in wanted:
            if name in by_lower:
                return by_lower[name]
    return None


def _short(gender: str) -> str:
    return {"neutral": "neutral", "male": "m", "female": "f"}.get(gender, gender)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def require_smpl(explicit: Path | None = None, who: str = "This model") -> Path:
    """The SMPL file (``--smpl``, ``$MOCAP_SMPL_DIR``, the imported cache), or a one-sentence ``MocapError``
    telling the user how to provide it."""
    found = find_smpl(explicit)
    if found is None:
        raise MocapError(missing_smpl_message(who=who))
    return found
