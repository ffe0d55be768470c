import hashlib

import pytest
import torch

from asteroid_lass import LASSResUNet
from asteroid_lass.cli import main as cli_main
from asteroid_lass.converters.audiosep import audiosep_key_to_lass, convert_audiosep
from audiosep_layout import audiosep_shapes, random_audiosep_state_dict, trainable_count


def _lightning_checkpoint(path, separator_state):
    state = {"ss_model." + k: v for k, v in separator_state.items()}
    state["query_encoder.model.logit_scale_a"] = torch.tensor(1.0)
    torch.save({"state_dict": state, "epoch": 3, "global_step": 4_000_000}, path)
    return str(path)


PLACEHOLDER = b"placeholder: the converter records the CLAP file, it does not load CLAP"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """(AudioSep state dict, folder, model file) converted once through the CLI."""
    folder = tmp_path_factory.mktemp("convert")
    source = random_audiosep_state_dict()
    ckpt = _lightning_checkpoint(folder / "audiosep.ckpt", source)
    clap = folder / "clap.pt"
    clap.write_bytes(PLACEHOLDER)
    out = folder / "converted.pth"
    args = ["convert-audiosep", ckpt, "--clap-checkpoint", str(clap), "--out", str(out)]
    assert cli_main(args) == 0
    assert cli_main(args) == 2  # an existing output is kept without --force
    return source, folder, out


def test_converted_model_records_clap_by_name_and_hash(converted):
    _, folder, out = converted
    model = LASSResUNet.from_pretrained(str(out))
    # File name and content hash: the model file carries no path of this machine.
    assert model.query_encoder_spec == {
        "name": "clap",
        "checkpoint": "clap.pt",
        "sha256": hashlib.sha256(PLACEHOLDER).hexdigest(),
        "amodel": "HTSAT-base",
    }
    assert str(folder).encode() not in out.read_bytes()


def test_every_tensor_lands_where_it_belongs(converted):
    source, _, out = converted
    model = LASSResUNet.from_pretrained(str(out))
    assert not model.training
    target = model.state_dict()
    spot_checks = {
        "film.encoder_block3->conv_block1->beta2.weight": "encoder_blocks.2.unit.film2.weight",
        "film.conv_block7a->conv_block1->beta1.bias": "bottleneck.film1.bias",
        "film.decoder_block1->beta1.weight": "decoder_blocks.0.film.weight",
        "film.decoder_block6->conv_block2->beta2.weight": "decoder_blocks.5.unit.film2.weight",
        "base.decoder_block2.conv1.weight": "decoder_blocks.1.upsample.weight",
        "base.decoder_block4.conv_block2.shortcut.bias": "decoder_blocks.3.unit.shortcut.bias",
        "base.encoder_block5.conv_block1.bn2.running_var": "encoder_blocks.4.unit.bn2.running_var",
        "base.bn0.running_mean": "bn0.running_mean",
        "base.after_conv.weight": "after_conv.weight",
    }
    for source_key, target_key in spot_checks.items():
        assert torch.equal(target[target_key], source[source_key]), source_key
    used = 0
    for key, tensor in source.items():
        name = audiosep_key_to_lass(key)
        if name is None:
            assert "stft" in key or ".bn2." in key or "->beta2." in key
            continue
        assert torch.equal(target[name], tensor), key
        used += 1
    assert used == len(target)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == trainable_count(audiosep_shapes(), used_only=True)


def test_missing_and_unexpected_keys_are_all_listed(tmp_path):
    source = random_audiosep_state_dict()
    del source["base.encoder_block2.conv_block1.conv1.weight"]
    del source["film.decoder_block3->conv_block2->beta1.bias"]
    source["base.encoder_block9.conv_block1.conv1.weight"] = torch.zeros(1)
    ckpt = _lightning_checkpoint(tmp_path / "bad.ckpt", source)
    clap = tmp_path / "clap.pt"
    clap.write_bytes(b"x")
    out = tmp_path / "converted.pth"
    with pytest.raises(ValueError) as info:
        convert_audiosep(ckpt, str(clap), out_path=str(out))
    assert not out.exists()
    message = str(info.value)
    assert "ss_model.base.encoder_block9.conv_block1.conv1.weight" in message
    assert "encoder_blocks.1.unit.conv1.weight" in message
    assert "decoder_blocks.2.unit.film1.bias" in message


def test_checkpoint_with_pickled_code_is_refused(tmp_path):
    ckpt = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hook": _Hook()}, ckpt)
    clap = tmp_path / "clap.pt"
    clap.write_bytes(b"x")
    with pytest.raises(ValueError, match="weights_only"):
        convert_audiosep(str(ckpt), str(clap))


class _Hook:
    """An arbitrary object: unpickling it would mean importing and running code."""
