"""The import check is the family's own loader, named by its TOML entry; one unwrapping function for all files."""

from __future__ import annotations

import pytest
import torch

from conftest import REPO
from lifter_checkpoints import write_mixste, write_strided
from mocap_cli.errors import MocapError
from mocap_cli.models.lifters.loading import load_mixste, load_strided
from mocap_cli.nets.checkpoints import read_state_dict, state_dict_from_checkpoint
from mocap_cli.weights.registry import load_registry
from mocap_cli.weights.validate import family_loader, has_loader, validator_for


def _one_sentence(message: str) -> bool:
    return message.endswith(".") and ". " not in message.rstrip(".") and "\n" not in message


def test_every_registry_entry_names_a_loader_that_exists():
    for spec in load_registry(REPO / "weights").values():
        assert has_loader(spec), spec.name
        loader = family_loader(spec)
        assert callable(loader) and loader.__module__.startswith("mocap_cli."), spec.name


def test_the_validator_is_the_loader(tmp_path):
    reg = load_registry(REPO / "weights")
    mixste, strided = write_mixste(tmp_path / "m.bin"), write_strided(tmp_path / "s.pth")
    validator_for(reg["mixste-243"])(mixste)  # loads: no error
    validator_for(reg["strided-351"])(strided)
    # a wrong file: the import check says exactly what the model's loader says
    for spec_name, wrong, load in (("mixste-243", strided, load_mixste), ("strided-351", mixste, load_strided)):
        with pytest.raises(MocapError) as by_loader:
            load(wrong)
        with pytest.raises(MocapError) as by_import:
            validator_for(reg[spec_name])(wrong)
        assert str(by_import.value) == str(by_loader.value) and _one_sentence(str(by_import.value))


def test_loader_outside_the_package_or_missing_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "registry"
    folder.mkdir()
    table = '[variants.demo-net]\npage = "https://example.org/demo"\nfile_name = "demo.pth"\nlayout = "flat"\n'
    (folder / "demo.toml").write_text('family = "demo"\nlicence = "test"\nloader = "os:system"\n' + table)
    with pytest.raises(MocapError, match="mocap_cli.module:function") as err:
        load_registry(folder)
    assert _one_sentence(str(err.value))
    (folder / "demo.toml").write_text(
        'family = "demo"\nlicence = "test"\nloader = "mocap_cli.nets.maed:no_such"\n' + table
    )
    spec = load_registry(folder)["demo-net"]
    torch.save({"w": torch.zeros(1)}, tmp_path / "demo.pth")
    with pytest.raises(MocapError, match="names loader mocap_cli.nets.maed:no_such") as err:
        validator_for(spec)(tmp_path / "demo.pth")
    assert _one_sentence(str(err.value))


def test_one_unwrapping_for_every_layout(tmp_path):
    reg = load_registry(REPO / "weights")
    t = torch.ones(2)
    # MixSTE: wrapped under model_pos, DataParallel prefix
    assert set(state_dict_from_checkpoint(reg["mixste-81"], {"epoch": 3, "model_pos": {"module.a": t}})) == {"a"}
    # Strided: flat; a stray DataParallel prefix is removed too
    assert set(state_dict_from_checkpoint(reg["strided-351"], {"module.b": t, "c": t})) == {"b", "c"}
    # HybrIK: flat or under the demo's "model" key; smpl.* buffers dropped
    for obj in ({"fc1.weight": t, "smpl.parents": t}, {"model": {"module.fc1.weight": t, "smpl.parents": t}}):
        assert set(state_dict_from_checkpoint(reg["hybrik-res34-paper"], obj)) == {"fc1.weight"}
    # non-tensor values, an empty dict, or only ignored buffers are not a state dict
    for bad in ({"model_pos": {"a": 1}}, {"model_pos": {}}):
        with pytest.raises(MocapError, match="is not a MixSTE checkpoint") as err:
            state_dict_from_checkpoint(reg["mixste-243"], bad, where="x.bin", what="MixSTE")
        assert _one_sentence(str(err.value))
    with pytest.raises(MocapError, match="holds no"):
        state_dict_from_checkpoint(reg["int-16"], {"state_dict": {"smpl.shapedirs": t}})
    # read_state_dict: garbage on disk is one sentence, not a traceback
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(MocapError) as err:
        read_state_dict(garbage, reg["maed"], "MAED")
    assert _one_sentence(str(err.value))
