import math

import pytest
import torch

from asteroid_lass.converters.tuss import convert_tuss, released_layout
from asteroid_lass.errors import LASSInputError
from asteroid_lass.losses import brute_force_min, build_objective, neg_snr_capped, pairwise
from asteroid_lass.models import TUSS
from asteroid_lass.models.base import save_model_file
from asteroid_lass.models.layers import InterleavedRotaryEmbedding
from asteroid_lass.models.tuss import band_widths
from tuss_layout import (
    BANDS_48K,
    HPARAMS_MEDIUM,
    PREFIX,
    PROMPTS,
    random_released_checkpoint,
    released_shapes,
)


def n_trainable(model):
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return TUSS("tiny").eval()


def ids(model, names, batch=1):
    return torch.tensor([model.vocabulary_indices(names)] * batch)


# ----------------------------------------------------------------------------- sizes
def test_released_parameter_counts():
    medium = TUSS("medium")
    assert n_trainable(medium) == 11_132_296
    assert n_trainable(TUSS("large")) == 38_210_056
    assert medium.vocabulary == PROMPTS
    assert medium.sample_rate == 48000


def test_band_splits():
    assert band_widths(48000, 2048) == BANDS_48K
    # 44.1 kHz: 24 + 12 + 8 + 8 + 8 bands up to 16 kHz (768 bins), the other 257 in two.
    assert band_widths(44100, 2048) == [2] * 24 + [4] * 12 + [12] * 8 + [24] * 8 + [48] * 8 + [
        128,
        129,
    ]
    for n_fft in (256, 512, 1024):
        widths = band_widths(16000, n_fft)
        assert sum(widths) == n_fft // 2 + 1 and min(widths) >= 2
    with pytest.raises(ValueError, match=r"22050.*\(16000, 44100, 48000\)"):
        band_widths(22050, 1024)
    with pytest.raises(ValueError, match="too small"):
        band_widths(48000, 64)
    with pytest.raises(ValueError, match="sample_rate 8000"):
        TUSS("tiny", sample_rate=8000)


def test_rotary_embedding_rotates_adjacent_pairs():
    rope = InterleavedRotaryEmbedding(4)  # frequencies 1 and 10000^(-1/2) = 0.01
    x = torch.tensor([1.0, 0.0, 0.0, 2.0]).expand(3, 4)  # same vector at positions 0, 1, 2
    out = rope(x)
    for p in range(3):
        expected = [math.cos(p), math.sin(p), -2 * math.sin(0.01 * p), 2 * math.cos(0.01 * p)]
        assert torch.allclose(out[p], torch.tensor(expected), atol=1e-6)
    # Scores depend on relative position only.
    q, k = rope(torch.randn(1, 4).expand(6, 4)), rope(torch.randn(1, 4).expand(6, 4))
    scores = q @ k.T
    assert torch.allclose(scores.diagonal(1), scores[0, 1].expand(5), atol=1e-5)


# ----------------------------------------------------------------------------- behaviour
@pytest.mark.parametrize("length", [1001, 16000 + 3, 64 * 10])
def test_output_has_the_input_length(tiny, length):
    mix = torch.randn(2, 1, length)
    with torch.no_grad():
        out = tiny(mix, ids(tiny, ["speech", "sfx", "speech"], 2))
    assert out.shape == (2, 3, 1, length)
    assert torch.isfinite(out).all()


def test_input_untouched_and_scale_equivariant(tiny):
    mix = torch.randn(1, 1, 4000)
    copy = mix.clone()
    prompts = ids(tiny, ["speech", "sfxbg"])
    with torch.no_grad():
        out = tiny(mix, prompts)
        scaled = tiny(mix * 7.5, prompts)
    assert torch.equal(mix, copy)
    # The mixture is divided by its std and the outputs multiplied back.
    assert torch.allclose(scaled, 7.5 * out, rtol=1e-4, atol=1e-5)


def test_channels_are_separated_as_batch_items(tiny):
    stereo = torch.randn(1, 2, 3000)
    prompts = ids(tiny, ["drums", "vocals"])
    with torch.no_grad():
        out = tiny(stereo, prompts)
        left = tiny(stereo[:, :1], prompts)
        right = tiny(stereo[:, 1:], prompts)
    assert out.shape == (1, 2, 2, 3000)
    assert torch.allclose(out[:, :, :1], left, atol=1e-6)
    assert torch.allclose(out[:, :, 1:], right, atol=1e-6)


def test_rows_of_a_batch_are_independent(tiny):
    mix = torch.randn(2, 1, 2500)
    rows = torch.tensor(
        [tiny.vocabulary_indices(["speech", "sfx"]), tiny.vocabulary_indices(["bass", "bass"])]
    )
    with torch.no_grad():
        together = tiny(mix, rows)
        alone = [tiny(mix[i : i + 1], rows[i : i + 1]) for i in range(2)]
    assert torch.allclose(together, torch.cat(alone), atol=1e-5)


def test_prompt_n_sits_at_position_n(tiny):
    frames = torch.randn(1, 5, len(tiny.encoder.widths), tiny.emb_dim)
    names = ["sfx", "speech", "sfx"]
    sequence = tiny.prompt_sequence(frames, ids(tiny, names))
    assert sequence.shape[1] == len(names) + 1 + 5
    for n, name in enumerate(names):
        row = tiny.prompt_embeddings[tiny.vocabulary.index(name)]
        assert torch.equal(sequence[0, n], row.expand_as(sequence[0, n]))
    assert torch.equal(sequence[0, 3], tiny.start_token.expand_as(sequence[0, 3]))
    assert torch.equal(sequence[:, 4:], frames)


def test_output_n_is_extracted_with_refined_prompt_n_alone(tiny):
    """After the cross-prompt module, outputs do not interact: output n depends only on the
    mixture and refined prompt vector n, so permuting those vectors permutes the outputs."""
    spec = tiny._stft(torch.randn(1, 3000))
    with torch.no_grad():
        refined, frames = tiny.cross_prompt_module(
            tiny.encoder(spec), ids(tiny, ["speech", "sfx", "musicbg"])
        )
        joint = tiny.decoder(tiny.extract(frames, refined))
        single = [tiny.decoder(tiny.extract(frames, refined[:, n : n + 1])) for n in range(3)]
        permuted = tiny.decoder(tiny.extract(frames, refined[:, [2, 0, 1]]))
    for n in range(3):
        assert torch.allclose(joint[n], single[n][0], atol=1e-5)
    assert torch.allclose(permuted, joint[[2, 0, 1]], atol=1e-5)


def test_repeated_prompts_give_distinct_outputs_and_order_is_positional(tiny):
    """Rotary positions cover the prompts: two identical prompts get different outputs (that
    is how ``[speech, speech]`` separates two talkers), and so swapping two prompts is not an
    exact swap of their outputs."""
    mix = torch.randn(1, 1, 4000)
    with torch.no_grad():
        same = tiny(mix, ids(tiny, ["sfx", "speech", "sfx"]))
        ab = tiny(mix, ids(tiny, ["speech", "sfx"]))
        ba = tiny(mix, ids(tiny, ["sfx", "speech"]))
    scale = same.abs().max()
    assert (same[:, 0] - same[:, 2]).abs().max() > 1e-3 * scale
    assert (ab[:, [1, 0]] - ba).abs().max() > 1e-4 * ab.abs().max()


def test_separate_names_outputs_in_prompt_order(tiny):
    query = ["speech", "sfx", "speech"]
    wav = torch.randn(1234)
    out = tiny.separate(wav, query=query)
    assert out.shape == (3, 1234)
    with torch.no_grad():
        direct = tiny(wav[None, None], ids(tiny, query))[0, :, 0]
    assert torch.allclose(out, direct, atol=1e-6)
    assert tiny.output_names(query) == ["speech", "sfx", "speech-2"]
    with pytest.raises(LASSInputError, match="expected one of"):
        tiny.separate(wav, query=["guitar"])


def test_bad_conditions_are_clear_errors(tiny):
    with pytest.raises(LASSInputError, match="prompt indices must be in 0..7"):
        tiny(torch.randn(1, 1, 500), torch.tensor([[8]]))
    with pytest.raises(LASSInputError, match="needs prompts"):
        tiny(torch.randn(1, 1, 500), None)


def test_vocabulary_argument():
    model = TUSS("tiny", prompts=["voice", "noise"])
    assert model.prompt_embeddings.shape == (2, 16)
    with torch.no_grad():
        out = model(torch.randn(1, 1, 800), torch.tensor([[1, 0, 1]]))
    assert out.shape == (1, 3, 1, 800)


def test_serialize_round_trip(tiny, tmp_path):
    path = tmp_path / "tuss.pth"
    save_model_file(tiny, str(path))
    loaded = TUSS.from_pretrained(str(path))
    assert loaded.get_model_args() == tiny.get_model_args()
    mix = torch.randn(1, 1, 2000)
    prompts = ids(tiny, ["speech", "sfxbg"])
    with torch.no_grad():
        assert torch.equal(loaded(mix, prompts), tiny(mix, prompts))


def test_tiny_preset_trains_one_step():
    torch.manual_seed(1)
    model = TUSS("tiny").train()
    objective = build_objective({"objective": "tuss"})
    targets = torch.randn(2, 3, 1, 2000)
    targets[1, 2] = 0  # a silent reference
    batch = {
        "mixture": targets.sum(dim=1),
        "targets": targets,
        "condition_ids": torch.tensor([[0, 1, 0], [3, 4, 5]]),
    }
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    terms = objective(model.training_outputs(batch["mixture"], batch["condition_ids"]), batch)
    terms["loss"].backward()
    used = {0, 1, 3, 4, 5}
    grads = model.prompt_embeddings.grad.abs().sum(dim=1)
    assert all((grads[i] > 0) == (i in used) for i in range(8))
    optimizer.step()
    changed = [k for k, v in model.named_parameters() if not torch.equal(v, before[k])]
    assert len(changed) == len(before)
    assert torch.isfinite(terms["loss"])


# ----------------------------------------------------------------------------- loss
def test_loss_values_by_hand():
    objective = build_objective({"objective": "tuss"})
    target = torch.zeros(1, 2, 1, 100)
    target[0, 0, 0, 0] = 2.0  # energy 4
    estimate = torch.zeros(1, 2, 1, 100)
    estimate[0, 0, 0, 0] = 1.0  # error energy 1 -> 10 log10((1 + 0.004) / 4)
    estimate[0, 1, 0, 1] = 0.1  # silent reference, estimate energy 0.01
    mixture = torch.zeros(1, 1, 100)
    mixture[0, 0, :10] = 1.0  # energy 10 -> floor 0.01
    batch = {"mixture": mixture, "targets": target, "condition_ids": torch.tensor([[0, 1]])}
    loss = objective({"estimates": estimate}, batch)["loss"]
    active = 10 * math.log10(1.004 / 4)
    silent = 0.1 * 10 * math.log10(0.01 + 0.01)
    assert loss.item() == pytest.approx((active + silent) / 2, abs=1e-4)


def test_loss_permutes_only_within_a_prompt():
    torch.manual_seed(3)
    targets = torch.randn(1, 4, 1, 200)
    groups = [0, 1, 0, 0]
    # Estimates near a permutation of the references that crosses prompts.
    estimates = targets[:, [1, 0, 3, 2]] + 0.1 * torch.randn(1, 4, 1, 200)
    batch = {
        "mixture": targets.sum(dim=1),
        "targets": targets,
        "condition_ids": torch.tensor([groups]),
    }
    loss = build_objective({"objective": "tuss"})({"estimates": estimates}, batch)["loss"].item()
    matrix = pairwise(neg_snr_capped, estimates, targets)[0]
    assert loss == pytest.approx(brute_force_min(matrix, groups), abs=1e-4)
    # The unrestricted optimum (swapping outputs 0 and 1 across prompts) is much lower.
    assert brute_force_min(matrix) < loss - 5
    fixed = build_objective({"objective": "tuss", "assignment": "fixed"})
    assert fixed({"estimates": estimates}, batch)["loss"].item() > loss + 1


# ----------------------------------------------------------------------------- converter
def test_layout_table_matches_the_reference_numbers():
    shapes = released_shapes()
    assert len(shapes) == 909
    trainable = sum(math.prod(s) for k, s in shapes.items() if not k.endswith("rope.freqs"))
    assert trainable == 11_132_296


@pytest.fixture(scope="module")
def released(tmp_path_factory):
    path = tmp_path_factory.mktemp("released") / "model.pth"
    state = random_released_checkpoint()
    state["loss.some_buffer"] = torch.zeros(1)  # outside the separator: ignored
    torch.save(state, path)
    return str(path), state


def test_converter_maps_every_released_tensor(released, tmp_path):
    path, state = released
    hparams = tmp_path / "hparams.yaml"
    hparams.write_text(HPARAMS_MEDIUM)
    out = tmp_path / "tuss_medium.pth"
    convert_tuss(path, str(out), hparams_yaml=str(hparams))
    model = TUSS.from_pretrained(str(out))
    assert n_trainable(model) == 11_132_296
    assert model.get_model_args()["cross_prompt"] == TUSS("medium").cross_prompt_conf

    layout = released_layout(model)
    assert set(layout) == set(released_shapes())
    target = model.state_dict()
    spot_checks = {
        "cross_prompt_module.2.freq_path.ffn.1.conv1d.weight": (
            "cross_prompt.2.band_path.ffn_before.conv.weight"
        ),
        "cross_prompt_module.0.frame_path.ffn.0.deconv1d.bias": (
            "cross_prompt.0.time_path.ffn_after.deconv.bias"
        ),
        "cond_tse_module.1.frame_path.ffn_norm.1.gamma": (
            "extraction.1.time_path.ffn_before_norm.weight"
        ),
        "cond_tse_module.0.freq_path.attn.aggregate_heads.0.weight": (
            "extraction.0.band_path.attn.out.weight"
        ),
        "band_split_module.band_split_module.60.1.weight": "encoder.bands.60.proj.weight",
        "band_split_module.bandwise_decoding_module.7.5.bias": "decoder.bands.7.fc3.bias",
        "band_split_module.bandwise_decoding_module.0.3.weight": "decoder.bands.0.fc2.weight",
    }
    for source, name in spot_checks.items():
        assert torch.equal(target[name], state[PREFIX + source]), source
    landed = 0
    for key, (kind, where) in layout.items():
        if kind == "copy":
            assert torch.equal(target[where], state[PREFIX + key]), key
            landed += 1
    assert landed == len(target) - 2
    for row, name in enumerate(PROMPTS):
        assert torch.equal(model.prompt_embeddings[row], state[PREFIX + f"prompts.{name}"].view(-1))
    assert torch.equal(model.start_token, state[PREFIX + "sos_token"].view(-1))
    # Without hparams.yaml: the preset and the released prompts.
    by_preset = convert_tuss(path, preset="medium").state_dict()
    assert all(torch.equal(by_preset[k], v) for k, v in target.items())


def test_converter_rejects_settings_tuss_does_not_implement(released, tmp_path):
    path, _ = released
    for old, new, name in [
        ("tf_order: ft", "tf_order: tf", "tf_order"),
        ("window_type: sqrt_hann", "window_type: hann", "window_type"),
        ("use_sos_token: true", "use_sos_token: false", "use_sos_token"),
    ]:
        hparams = tmp_path / "hparams.yaml"
        hparams.write_text(HPARAMS_MEDIUM.replace(old, new, 1))
        with pytest.raises(ValueError, match=name):
            convert_tuss(path, hparams_yaml=str(hparams))


def test_converter_lists_wrong_and_missing_keys(released, tmp_path):
    _, state = released
    broken = dict(state)
    del broken[PREFIX + "cond_tse_module.1.frame_path.attn.qkv.weight"]
    del broken[PREFIX + "prompts.musicbg"]
    broken[PREFIX + "cross_prompt_module.4.freq_path.attn.qkv.weight"] = torch.zeros(384, 64)
    broken[PREFIX + "sos_token"] = torch.zeros(32, 1, 1)
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(ValueError) as info:
        convert_tuss(str(path), preset="medium")
    message = str(info.value)
    assert "unexpected keys: model.separator.cross_prompt_module.4.freq_path" in message
    assert "model.separator.cond_tse_module.1.frame_path.attn.qkv.weight" in message
    assert "model.separator.prompts.musicbg" in message
    assert "model.separator.sos_token: (32, 1, 1), expected (64, 1, 1)" in message
    torch.save({"state_dict": {"other.weight": torch.zeros(1)}}, tmp_path / "alien.pth")
    with pytest.raises(ValueError, match="no 'model.separator.' tensors"):
        convert_tuss(str(tmp_path / "alien.pth"))


def test_encoder_reads_bins_with_adjacent_real_and_imaginary_parts():
    """Band 0: channel 2j + 1 is the imaginary part of bin j (bin-major, re/im minor)."""
    tiny = TUSS("tiny")
    width = tiny.encoder.widths[0]
    spec = torch.zeros(1, sum(tiny.encoder.widths), 6, dtype=torch.complex64)
    spec[0, 1, 4] = 1j  # only bin 1, frame 4, imaginary
    band = tiny.encoder.bands[0]
    with torch.no_grad():
        for channel in range(2 * width):
            band.proj.weight.zero_()
            band.proj.bias.zero_()
            band.proj.weight[0, channel, 0] = 1.0
            out = tiny.encoder(spec)[0, :, 0, 0]  # frames of band 0, feature 0
            assert (out.argmax() == 4 and out.max() > out.min() + 1) == (channel == 3)


def test_decoder_writes_real_parts_then_imaginary():
    tiny = TUSS("tiny")
    width = tiny.decoder.widths[0]
    pattern = torch.arange(1.0, 2 * width + 1)
    fc3 = tiny.decoder.bands[0].fc3
    with torch.no_grad():
        fc3.weight.zero_()
        fc3.bias.copy_(torch.cat((pattern, torch.full((2 * width,), 30.0))))  # gates ~ 1
        mask = tiny.decoder(torch.randn(1, 3, len(tiny.decoder.widths), tiny.emb_dim))
    assert torch.allclose(mask[0, :width, 0].real, pattern[:width])
    assert torch.allclose(mask[0, :width, 0].imag, pattern[width:])
