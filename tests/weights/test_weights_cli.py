"""``mocap weights list / import / download`` through the Typer sub-app, with the cache in a temp MOCAP_HOME."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path
from typing import Any, Iterator

import pytest
import torch
from typer.testing import CliRunner

from conftest import require_shared
from lifter_checkpoints import write_mixste, write_strided
from mocap_cli.commands.weights import app
from mocap_cli.weights import cache as C
from mocap_cli.weights import registry as R

runner = CliRunner()


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOCAP_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MOCAP_WEIGHTS_REGISTRY", raising=False)
    monkeypatch.setenv("COLUMNS", "250")  # keep table rows on one line
    return tmp_path / "home"


def _flat(text: str) -> str:
    return " ".join(text.split())


def _manifest(home: Path, name: str) -> dict[str, Any]:
    return json.loads((home / "weights" / name / "manifest.json").read_text())


def _row(output: str, name: str) -> str:
    return next(line for line in output.splitlines() if f" {name} " in line)


def test_list_shows_every_variant_and_what_is_installed(tmp_path, home):
    result = runner.invoke(app, ["list"])
    assert result.exit_code == 0, result.output
    for name, spec in R.load_registry().items():
        assert ("│ yes " if spec.shipped else "│ no ") in _row(result.stdout, name)  # shipped weights come installed
    assert str(home / "weights") in result.stdout

    ckpt = write_mixste(tmp_path / "best_epoch_cpn_81f.bin")
    assert runner.invoke(app, ["import", "mixste-81", str(ckpt)]).exit_code == 0
    result = runner.invoke(app, ["list"])
    row = _row(result.stdout, "mixste-81")
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert "yes" in row and digest[:12] in row and str(home / "weights" / "mixste-81" / ckpt.name) in row
    assert "│ no " in _row(result.stdout, "mixste-243")


@pytest.mark.parametrize("name,writer", [("mixste", write_mixste), ("strided-351", write_strided)])
def test_import_validates_records_sha_and_copies(name, writer, tmp_path, home):
    source = writer(tmp_path / "downloaded.pth")
    result = runner.invoke(app, ["import", name, str(source)])
    assert result.exit_code == 0, result.output
    variant = R.get_spec(name).name
    record = _manifest(home, variant)
    assert record["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
    assert record["validated"] is True and record["verified"] is False  # no digest is published
    assert (home / "weights" / variant / "downloaded.pth").read_bytes() == source.read_bytes()
    assert record["sha256"] in result.stdout


def test_import_refuses_wrong_and_malicious_files(tmp_path, home):
    wrong = write_strided(tmp_path / "lifter.pth")
    result = runner.invoke(app, ["import", "mixste", str(wrong)])
    assert (
        result.exit_code == 1
        and _flat(result.stderr).startswith("error: ")
        and "not a MixSTE checkpoint" in result.stderr
    )
    assert not (home / "weights" / "mixste-243").exists() or not any((home / "weights" / "mixste-243").iterdir())

    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    torch.save({"Transformer.pos_embedding": torch.zeros(1), "x": Exploit()}, evil)
    result = runner.invoke(app, ["import", "strided-351", str(evil)])
    assert result.exit_code == 1 and "refused" in result.stderr and not marker.exists()
    assert C.installed("strided-351") is None

    result = runner.invoke(app, ["import", "no-such-net", str(wrong)])
    assert result.exit_code == 1 and "Unknown weights name" in result.stderr
    result = runner.invoke(app, ["import", "mixste", str(tmp_path / "absent.bin")])
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_import_hybrik_uses_its_loader(tmp_path, home):
    path = require_shared("reference", "hybrik", "case_head_smpl24_b2_seed102.pt")
    torch.save(
        torch.load(path, map_location="cpu", weights_only=False)["state_dict"], tmp_path / "pretrained_res34.pth"
    )
    torch.save({f"w{i}": torch.zeros(2) for i in range(247)}, tmp_path / "other.pth")
    result = runner.invoke(app, ["import", "hybrik-res34-paper", str(tmp_path / "other.pth")])
    assert result.exit_code == 1 and "no HybrIK heatmap layer" in _flat(result.stderr)
    result = runner.invoke(app, ["import", "hybrik-res34-paper", str(tmp_path / "pretrained_res34.pth")])
    assert result.exit_code == 0, result.output
    assert "note:" not in result.stderr and C.installed("hybrik-res34-paper").validated


def test_family_without_a_loader_gets_the_checkpoint_check_and_a_note(tmp_path, monkeypatch, home):
    folder = tmp_path / "registry"
    folder.mkdir()
    (folder / "demo.toml").write_text('family = "demo"\nlicence = "test data"\n[variants.demo-net]\n'
                                      'page = "https://example.org/demo"\nfile_name = "demo.pth"\nlayout = "flat"\n'
                                      'num_tensors = 3\n')  # fmt: skip
    monkeypatch.setenv("MOCAP_WEIGHTS_REGISTRY", str(folder))
    torch.save({f"w{i}": torch.zeros(2) for i in range(10)}, tmp_path / "ten.pth")
    torch.save({f"w{i}": torch.zeros(2) for i in range(3)}, tmp_path / "three.pth")
    result = runner.invoke(app, ["import", "demo-net", str(tmp_path / "ten.pth")])
    assert result.exit_code == 1 and "holds 10 weight tensors but demo-net has 3" in _flat(result.stderr)
    result = runner.invoke(app, ["import", "demo-net", str(tmp_path / "three.pth")])
    assert result.exit_code == 0, result.output
    assert "only the checkpoint format and tensor count were checked" in _flat(result.stderr)


class _Server:
    """Serves one payload on 127.0.0.1, honouring Range requests, and records the Range headers it saw."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.ranges: list[str | None] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                header = self.headers.get("Range")
                server.ranges.append(header)
                start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
                body = server.payload[start:]
                self.send_response(206 if header else 200)
                if header:
                    self.send_header("Content-Range", f"bytes {start}-{len(server.payload) - 1}/{len(server.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/lifter.pth"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def checkpoint_bytes(tmp_path_factory) -> bytes:
    return write_strided(tmp_path_factory.mktemp("src") / "lifter.pth").read_bytes()


@pytest.fixture
def server(checkpoint_bytes: bytes) -> Iterator[_Server]:
    s = _Server(checkpoint_bytes)
    yield s
    s.close()


def _registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, sha256: str) -> None:
    folder = tmp_path / "registry"
    folder.mkdir(exist_ok=True)
    (folder / "strided.toml").write_text(
        'family = "strided"\nmodel = "strided"\ndefault = "strided-test"\nlicence = "test data"\n'
        'loader = "mocap_cli.models.lifters.loading:load_strided"\n'
        f'[variants.strided-test]\npage = "https://example.org/strided"\ndirect_url = "{url}"\n'
        f'file_name = "strided_test.pth"\nsha256 = "{sha256}"\nlayout = "flat"\ninput = "keypoints2d"\n'
        '[variants.strided-manual]\npage = "https://example.org/manual"\nfile_name = "manual.pth"\nlayout = "flat"\n'
        'input = "keypoints2d"\n'
    )
    monkeypatch.setenv("MOCAP_WEIGHTS_REGISTRY", str(folder))


def test_download_streams_verifies_validates_and_installs(tmp_path, monkeypatch, home, server, checkpoint_bytes):
    digest = hashlib.sha256(checkpoint_bytes).hexdigest()
    _registry(tmp_path, monkeypatch, server.url, digest)
    result = runner.invoke(app, ["download", "strided-test"])
    assert result.exit_code == 0, result.output
    installed = C.installed("strided-test")
    assert installed is not None and installed.verified and installed.validated
    assert installed.path.read_bytes() == checkpoint_bytes and installed.source == server.url
    assert digest in result.stdout and server.ranges == [None]
    again = runner.invoke(app, ["download", "strided-test"])
    assert again.exit_code == 0 and "already installed" in again.stdout and len(server.ranges) == 1
    listed = runner.invoke(app, ["list"])
    row = _row(listed.stdout, "strided-test")
    assert "download" in row and "yes" in row and digest[:12] in row


def test_download_resumes_a_partial_file(tmp_path, monkeypatch, home, server, checkpoint_bytes):
    _registry(tmp_path, monkeypatch, server.url, hashlib.sha256(checkpoint_bytes).hexdigest())
    folder = home / "weights" / "strided-test"
    folder.mkdir(parents=True)
    half = len(checkpoint_bytes) // 2
    (folder / "strided_test.pth.part").write_bytes(checkpoint_bytes[:half])
    result = runner.invoke(app, ["download", "strided-test"])
    assert result.exit_code == 0, result.output
    assert server.ranges == [f"bytes={half}-"]
    assert (folder / "strided_test.pth").read_bytes() == checkpoint_bytes


def test_download_with_a_wrong_digest_or_no_url_fails_in_one_sentence(tmp_path, monkeypatch, home, server):
    _registry(tmp_path, monkeypatch, server.url, "0" * 64)
    result = runner.invoke(app, ["download", "strided-test"])
    assert result.exit_code == 1 and "wrong sha256" in result.stderr
    assert C.installed("strided-test") is None and not any((home / "weights" / "strided-test").iterdir())

    result = runner.invoke(app, ["download", "strided-manual"])
    message = _flat(result.stderr).removeprefix("error: ")
    assert result.exit_code == 1 and ". " not in message and message.endswith(".")
    assert "https://example.org/manual" in message and "mocap weights import strided-manual FILE" in message


def test_download_refuses_a_file_that_does_not_load(tmp_path, monkeypatch, home):
    bad = write_mixste(tmp_path / "mixste.bin").read_bytes()  # a valid checkpoint, but not a Strided lifter
    s = _Server(bad)
    try:
        _registry(tmp_path, monkeypatch, s.url, hashlib.sha256(bad).hexdigest())
        result = runner.invoke(app, ["download", "strided-test"])
    finally:
        s.close()
    assert result.exit_code == 1 and "not a Strided Transformer" in result.stderr
    assert C.installed("strided-test") is None
