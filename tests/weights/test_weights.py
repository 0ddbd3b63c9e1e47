"""Weights registry (weights/*.toml), the cache, import, resumable download and name resolution."""

from __future__ import annotations

import hashlib
import http.server
import json
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch

from conftest import REPO, require_shared
from mocap_cli.errors import MocapError
from mocap_cli.nets.checkpoints import load_checkpoint, state_dict_from_checkpoint
from mocap_cli.weights import cache as C
from mocap_cli.weights import download as D
from mocap_cli.weights import registry as R

EXPECTED_NAMES = {
    "mixste-243",
    "mixste-81",
    "strided-351",
    "strided-351-refine",
    "maed",
    "int-16",
    "int-64",
    "hybrik-res34-cam",
    "hybrik-res34-cam-3dpw",
    "hybrik-res34-paper",
    "mixste-cmu",
}


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".") and "\n" not in message


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    return tmp_path / "home"


# ------------------------------------------------------------------------------------------- registry


def test_registry_has_every_variant_with_page_file_and_licence():
    registry = R.load_registry(REPO / "weights")
    assert set(registry) == EXPECTED_NAMES
    for spec in registry.values():
        assert spec.page.startswith("https://") or spec.shipped, spec.name  # shipped: the page is our training doc
        assert spec.file_name and spec.licence and spec.description, spec.name
        assert spec.layout in ("flat", "wrapped")
        assert spec.sha256 == "" or len(spec.sha256) == 64  # never invented: all unknown today
        # Drive / Baidu links are pages; only a plain file URL may be a direct_url
        assert not any(host in spec.direct_url for host in ("drive.google.com", "pan.baidu.com"))
        assert spec.input_frames is not None and spec.input_frames >= 1
    defaults = {s.family: s.name for s in registry.values() if s.is_default}
    assert defaults == {
        "mixste": "mixste-243",
        "strided": "strided-351",
        "maed": "maed",
        "int": "int-16",
        "hybrik": "hybrik-res34-cam",
    }


def _layout(model: str) -> dict[str, Any]:
    return json.loads(require_shared("reference", model, "official_layout.json").read_text())


def test_registry_matches_the_official_layouts():
    """Frame counts and tensor counts in the TOMLs agree with the key lists taken from the authors' code."""
    reg = R.load_registry(REPO / "weights")
    mixste = _layout("mixste")
    assert reg["mixste-243"].num_tensors == len(mixste["state_dict"]) == 204
    temporal = next(e for e in mixste["state_dict"] if e["key"] == "Temporal_pos_embed")
    assert temporal["shape"][1] == reg["mixste-243"].input_frames == reg["mixste-243"].arch["num_frame"]
    assert reg["mixste-243"].state_dict_key == mixste["checkpoint"]["state_dict_entry"]
    assert reg["mixste-243"].key_prefix == mixste["checkpoint"]["key_prefix"]
    assert list(reg["mixste-243"].top_level_keys) == mixste["checkpoint"]["top_level_keys"]
    assert {reg["mixste-243"].file_name, reg["mixste-81"].file_name} == set(
        mixste["checkpoint"]["file_names_reported_by_third_parties"]
    )

    strided = _layout("strided_transformer")
    released = strided["configs"]["frames351_released"]
    assert reg["strided-351"].num_tensors == released["num_state_entries"]
    assert released["state_dict_keys"]["Transformer.pos_embedding"][1] == reg["strided-351"].input_frames
    assert dict(reg["strided-351"].arch) == released["constructor"]
    assert reg["strided-351-refine"].num_tensors == len(strided["refine"]["state_dict_keys"])

    maed = _layout("maed")
    assert reg["maed"].num_tensors == maed["num_non_smpl_entries"]
    assert list(reg["maed"].top_level_keys) == maed["checkpoint_top_level_keys"]
    assert reg["maed"].key_prefix == maed["checkpoint_state_dict_prefix"]

    integer = _layout("int")["configurations"]
    for name, config in (("int-16", "model1_tempemb16"), ("int-64", "model2_tempemb64")):
        entry = integer[config]
        assert reg[name].page == entry["link"]
        assert reg[name].num_tensors == entry["num_non_smpl_tensors"]
        assert reg[name].arch["temporal_embedding"] == entry["temporal_pos_embedding_shape"][1]
        assert list(reg[name].top_level_keys) == entry["checkpoint_top_level_keys"]

    hybrik = _layout("hybrik")
    files = hybrik["meta"]["released_resnet34_checkpoints"]
    for name, config in (
        ("hybrik-res34-paper", "paper_version_pretrained_res34"),
        ("hybrik-res34-cam", "camera_model_2022_04_pretrained_w_cam"),
        ("hybrik-res34-cam-3dpw", "model_zoo_resnet34_w_3dpw"),
    ):
        keys = [e["key"] for e in hybrik[config]["keys"]]
        assert reg[name].num_tensors == sum(not k.startswith(reg[name].ignore_prefixes) for k in keys)
        assert files[config]["google_drive_file_id"] in reg[name].page
        assert reg[name].file_name == files[config].get("file_name_in_docs", reg[name].file_name)


def test_registry_env_override_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    assert R.registry_dir() == REPO / "weights"  # a checkout: the top-level folder
    assert set(R.load_registry()) == EXPECTED_NAMES
    (tmp_path / "one.toml").write_text(
        'family = "demo"\nlicence = "MIT"\n[variants.demo-1]\npage = "https://example.org"\n'
        'file_name = "demo.pth"\nlayout = "flat"\n'
    )
    monkeypatch.setenv("MOCAP_WEIGHTS_REGISTRY", str(tmp_path))
    assert list(R.load_registry()) == ["demo-1"]
    (tmp_path / "two.toml").write_text(
        '[variants.demo-2]\npage = "https://example.org"\nfile_name = "x.pth"\nlicence = "MIT"\nlayout = "zip"\n'
    )
    with pytest.raises(MocapError, match="layout 'zip'"):
        R.load_registry()
    (tmp_path / "two.toml").write_text(
        '[variants.demo-2]\nsha256 = "abc"\npage = "https://e.org"\n'
        'file_name = "x.pth"\nlicence = "MIT"\nlayout = "flat"\n'
    )
    with pytest.raises(MocapError, match="malformed sha256"):
        R.load_registry()
    with pytest.raises(MocapError, match="No weights registry"):
        R.load_registry(tmp_path / "empty")


def test_missing_message_names_the_page_and_the_import_command():
    reg = R.load_registry(REPO / "weights")
    message = R.missing_message("mixste-243", registry=reg)
    assert _one_sentence(message)
    assert reg["mixste-243"].page in message
    assert "`mocap weights import mixste-243 best_epoch_cpn_243f.bin`" in message
    # a model name means its default variant; a glob file name becomes FILE in the command
    assert "`mocap weights import hybrik-res34-cam pretrained_w_cam.pth`" in R.missing_message("unspat", registry=reg)
    strided = R.missing_message("strided", registry=reg)
    assert "`mocap weights import strided-351 FILE`" in strided and _one_sentence(strided)
    for name in reg:
        assert _one_sentence(R.missing_message(name, registry=reg)), name
    with pytest.raises(MocapError, match="Unknown weights name"):
        R.missing_message("vibe", registry=reg)


# ------------------------------------------------------------------------------------------- cache


def test_mocap_home_override(monkeypatch, tmp_path):
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "mh"))
    assert C.cache_dir() == tmp_path / "mh" / "weights"
    monkeypatch.delenv("MOCAP_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert C.cache_dir() == tmp_path / "user" / ".cache" / "mocap" / "weights"


def _refine_checkpoint(path: Path, *, wrong: bool = False) -> Path:
    """A flat state dict with the refine MLP's official keys and shapes (random values)."""
    keys = _layout("strided_transformer")["refine"]["state_dict_keys"]
    generator = torch.Generator().manual_seed(0)
    state = {k: torch.randn(*shape, generator=generator) for k, shape in keys.items()}
    if wrong:
        state["post_refine.0.weight"] = torch.randn(512, 102, generator=generator)
    torch.save(state, path)
    return path


class LayoutValidator:
    """What the lead's validator does: load with the safe loader, apply the registry layout, compare to the
    official key list."""

    def __init__(self, spec: R.WeightSpec) -> None:
        self.spec = spec
        self.calls = 0
        self.expected = {k: tuple(v) for k, v in _layout("strided_transformer")["refine"]["state_dict_keys"].items()}

    def __call__(self, path: Path) -> None:
        self.calls += 1
        state = state_dict_from_checkpoint(self.spec, load_checkpoint(path))
        found = {k: tuple(v.shape) for k, v in state.items()}
        if found != self.expected:
            raise MocapError(f"{path} does not have the {self.spec.name} layout; check that it is the refine file.")


def test_import_copies_records_sha_and_is_idempotent(tmp_path, home):
    reg = R.load_registry(REPO / "weights")
    spec = reg["strided-351-refine"]
    source = _refine_checkpoint(tmp_path / "refine_4_4365.pth")
    validator = LayoutValidator(spec)
    assert C.installed(spec.name) is None
    result = C.import_weights(spec.name, source, validate=validator, registry=reg)
    assert validator.calls == 1
    assert result.path == home / "weights" / spec.name / "refine_4_4365.pth"
    assert result.path.read_bytes() == source.read_bytes()
    assert result.sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert result.validated and not result.verified  # no published digest to verify against
    manifest = json.loads((result.path.parent / "manifest.json").read_text())
    assert manifest["sha256"] == result.sha256 and manifest["size"] == source.stat().st_size
    assert C.installed(spec.name) == result
    # again: nothing copied, validator not re-run
    stamp = result.path.stat().st_mtime_ns
    again = C.import_weights(spec.name, source, validate=validator, registry=reg)
    assert again == result and validator.calls == 1 and result.path.stat().st_mtime_ns == stamp
    assert C.resolve(spec.name, registry=reg) == result.path
    assert C.resolve(str(source), registry=reg) == source
    assert sorted(p.name for p in result.path.parent.iterdir()) == ["manifest.json", "refine_4_4365.pth"]


def test_import_refuses_a_file_the_validator_rejects(tmp_path, home):
    reg = R.load_registry(REPO / "weights")
    spec = reg["strided-351-refine"]
    bad = _refine_checkpoint(tmp_path / "refine_bad.pth", wrong=True)
    with pytest.raises(MocapError, match="does not have the strided-351-refine layout"):
        C.import_weights(spec.name, bad, validate=LayoutValidator(spec), registry=reg)
    assert C.installed(spec.name) is None
    assert not (home / "weights").exists() or not any((home / "weights").rglob("*"))

    def crashes(path: Path) -> None:
        raise KeyError("model_pos")

    with pytest.raises(MocapError, match="could not be opened as strided-351-refine weights") as err:
        C.import_weights(spec.name, bad, validate=crashes, registry=reg)
    assert _one_sentence(str(err.value))
    with pytest.raises(MocapError, match="does not exist"):
        C.import_weights(spec.name, tmp_path / "nope.pth", validate=crashes, registry=reg)
    assert not (home / "weights").exists() or not any((home / "weights").rglob("*"))


def test_resolve_errors(tmp_path, home):
    reg = R.load_registry(REPO / "weights")
    with pytest.raises(MocapError) as err:
        C.resolve("mixste-81", registry=reg)
    assert str(err.value) == R.missing_message("mixste-81", registry=reg)
    with pytest.raises(MocapError, match="does not exist"):
        C.resolve(str(tmp_path / "model.pth"), registry=reg)
    with pytest.raises(MocapError, match="Unknown weights name"):
        C.resolve("mixste-27", registry=reg)


def test_state_dict_from_checkpoint_applies_the_layout():
    reg = R.load_registry(REPO / "weights")
    t = torch.zeros(1)
    mixste = {"epoch": 1, "model_pos": {"module.head.1.bias": t, "module.Spatial_pos_embed": t}}
    assert set(state_dict_from_checkpoint(reg["mixste-243"], mixste)) == {"head.1.bias", "Spatial_pos_embed"}
    maed = {"state_dict": {"module.encoder.norm.weight": t, "module.decoder.smpl.v_template": t}}
    assert set(state_dict_from_checkpoint(reg["maed"], maed)) == {"encoder.norm.weight"}
    hybrik = {"model": {"fc1.weight": t, "smpl.parents": t}}  # the HybrIK demo's wrapped form
    assert set(state_dict_from_checkpoint(reg["hybrik-res34-cam"], hybrik)) == {"fc1.weight"}
    with pytest.raises(MocapError, match="no 'state_dict' entry"):
        state_dict_from_checkpoint(reg["int-16"], {"epoch": 3})


# ------------------------------------------------------------------------------------------- download


class _Server:
    """A local HTTP file server that honours (or, if told, ignores) Range and can cut a response short."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.honour_range = True
        self.cut_after: int | None = None
        self.requests: list[dict[str, Any]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                data = server.payload
                header = self.headers.get("Range")
                start = 0
                if header and server.honour_range:
                    start = int(header.removeprefix("bytes=").split("-")[0])
                    if start >= len(data):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(data)}")
                        self.end_headers()
                        server.requests.append({"range": header, "status": 416, "sent": 0})
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                else:
                    self.send_response(200)
                body = data[start:]
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if server.cut_after is not None:
                    body = body[: server.cut_after]
                self.wfile.write(body)
                server.requests.append({"range": header, "status": 206 if start else 200, "sent": len(body)})
                if server.cut_after is not None:
                    self.close_connection = True

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/weights.pth"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def payload() -> bytes:
    return bytes(range(256)) * 4096 + b"tail"  # 1 MiB + 4 bytes, spans several read chunks


@pytest.fixture
def server(payload: bytes) -> Iterator[_Server]:
    s = _Server(payload)
    yield s
    s.close()


def _registry(tmp_path: Path, url: str, sha256: str) -> dict[str, R.WeightSpec]:
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    (folder / "demo.toml").write_text(
        f'family = "demo"\nlicence = "test data"\n[variants.demo-net]\npage = "https://example.org/demo"\n'
        f'direct_url = "{url}"\nfile_name = "demo_net.pth"\nsha256 = "{sha256}"\nlayout = "flat"\n'
    )
    return R.load_registry(folder)


def test_download_streams_checks_sha_and_installs(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, hashlib.sha256(payload).hexdigest())
    seen: list[tuple[int, int | None]] = []
    result = D.download("demo-net", progress=lambda done, total: seen.append((done, total)), registry=reg)
    assert result.path == home / "weights" / "demo-net" / "demo_net.pth"
    assert result.path.read_bytes() == payload
    assert result.verified and result.source == server.url
    assert seen[-1] == (len(payload), len(payload)) and len(seen) >= 2
    assert not (result.path.parent / "demo_net.pth.part").exists()
    assert D.download("demo-net", registry=reg) == result and len(server.requests) == 1  # already installed


def test_download_resumes_a_partial_file_with_range(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, hashlib.sha256(payload).hexdigest())
    folder = home / "weights" / "demo-net"
    folder.mkdir(parents=True)
    done = 300_001
    (folder / "demo_net.pth.part").write_bytes(payload[:done])
    result = D.download("demo-net", registry=reg)
    assert server.requests == [{"range": f"bytes={done}-", "status": 206, "sent": len(payload) - done}]
    assert result.path.read_bytes() == payload and result.verified


def test_download_restarts_when_the_server_ignores_range(tmp_path, home, server, payload):
    server.honour_range = False
    reg = _registry(tmp_path, server.url, hashlib.sha256(payload).hexdigest())
    folder = home / "weights" / "demo-net"
    folder.mkdir(parents=True)
    (folder / "demo_net.pth.part").write_bytes(b"stale bytes from another file")
    assert D.download("demo-net", registry=reg).path.read_bytes() == payload
    assert server.requests[0]["status"] == 200 and server.requests[0]["sent"] == len(payload)


def test_interrupted_download_keeps_the_part_and_resumes(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, hashlib.sha256(payload).hexdigest())
    server.cut_after = 200_000
    with pytest.raises(MocapError, match="run the same command again to resume") as err:
        D.download("demo-net", registry=reg)
    assert _one_sentence(str(err.value))
    part = home / "weights" / "demo-net" / "demo_net.pth.part"
    assert part.stat().st_size == 200_000 and C.installed("demo-net") is None
    server.cut_after = None
    result = D.download("demo-net", registry=reg)
    assert server.requests[-1] == {"range": "bytes=200000-", "status": 206, "sent": len(payload) - 200_000}
    assert result.path.read_bytes() == payload


def test_download_with_wrong_sha_leaves_nothing(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, hashlib.sha256(b"some other file").hexdigest())
    with pytest.raises(MocapError, match="wrong sha256") as err:
        D.download("demo-net", registry=reg)
    assert _one_sentence(str(err.value))
    assert list((home / "weights" / "demo-net").iterdir()) == []
    assert C.installed("demo-net") is None


def test_download_validator_rejection_leaves_nothing(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, "")

    def reject(path: Path) -> None:
        raise MocapError(f"{path} is not a checkpoint; check the file.")

    with pytest.raises(MocapError, match="is not a checkpoint"):
        D.download("demo-net", validate=reject, registry=reg)
    assert list((home / "weights" / "demo-net").iterdir()) == []
    result = D.download("demo-net", registry=reg)  # without a published digest: installed, not verified
    assert not result.verified and result.path.read_bytes() == payload


def test_download_without_direct_url_explains_the_manual_route(home):
    reg = R.load_registry(REPO / "weights")
    with pytest.raises(MocapError) as err:
        D.download("maed", registry=reg)
    assert "mocap weights import maed model_best.pth.tar" in str(err.value)
    assert _one_sentence(str(err.value))


def test_unreachable_server_is_one_sentence(tmp_path, home):
    reg = _registry(tmp_path, "http://127.0.0.1:9/nothing.pth", "")
    with pytest.raises(MocapError, match="Cannot reach") as err:
        D.download("demo-net", registry=reg, timeout_s=5)
    assert _one_sentence(str(err.value))


def test_complete_part_file_is_finished_without_refetching(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, hashlib.sha256(payload).hexdigest())
    folder = home / "weights" / "demo-net"
    folder.mkdir(parents=True)
    (folder / "demo_net.pth.part").write_bytes(payload)
    result = D.download("demo-net", registry=reg)
    assert server.requests == [{"range": f"bytes={len(payload)}-", "status": 416, "sent": 0}]
    assert result.verified and result.path.read_bytes() == payload


def test_overlong_part_file_is_deleted(tmp_path, home, server, payload):
    reg = _registry(tmp_path, server.url, "")
    folder = home / "weights" / "demo-net"
    folder.mkdir(parents=True)
    (folder / "demo_net.pth.part").write_bytes(payload + b"junk")
    with pytest.raises(MocapError, match="longer than the file on the server"):
        D.download("demo-net", registry=reg)
    assert list(folder.iterdir()) == []
    assert D.download("demo-net", registry=reg).path.read_bytes() == payload


def test_importing_another_file_replaces_the_installed_one(tmp_path, home):
    reg = R.load_registry(REPO / "weights")
    spec = reg["strided-351-refine"]
    first = C.import_weights(
        spec.name, _refine_checkpoint(tmp_path / "refine_1_5000.pth"), validate=LayoutValidator(spec), registry=reg
    )
    second_source = tmp_path / "refine_9_4400.pth"
    torch.save({k: v + 1 for k, v in torch.load(first.path).items()}, second_source)
    second = C.import_weights(spec.name, second_source, validate=LayoutValidator(spec), registry=reg)
    assert second.sha256 != first.sha256 and second.path.name == "refine_9_4400.pth"
    assert sorted(p.name for p in second.path.parent.iterdir()) == ["manifest.json", "refine_9_4400.pth"]
    assert C.installed(spec.name) == second
