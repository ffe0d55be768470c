"""AudioSlots and the set-prediction objective: equivariance, exact matching, empty slots."""

import itertools
import math

import numpy as np
import pytest
import torch
from conftest import quiet_trainer
from torch.utils.data import DataLoader

from asteroid_lass import losses
from asteroid_lass.data.batch import collate_separation, separation_item
from asteroid_lass.errors import LASSInputError
from asteroid_lass.inference import separate_waveform
from asteroid_lass.models import AudioSlots
from asteroid_lass.system import SeparationSystem

SR = 8000
TINY = dict(
    sample_rate=SR,
    n_fft=64,
    hop_length=16,
    chunk_seconds=0.0625,  # 500 samples
    d_model=32,
    n_heads=2,
    encoder_layers=1,
    slot_layers=2,
    ff_dim=64,
    decoder_width=32,
    decoder_depth=2,
    n_fourier_bands=4,
)


def tiny(**kwargs) -> AudioSlots:
    torch.manual_seed(0)
    return AudioSlots(**{**TINY, **kwargs})


def tones(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(batch, 1, length): sums of three sinusoids of random frequency, gain and phase."""
    time = torch.arange(length) / SR
    freq = 200 + 2800 * torch.rand(batch, 3, 1, generator=generator)
    gain = torch.rand(batch, 3, 1, generator=generator)
    phase = 2 * math.pi * torch.rand(batch, 3, 1, generator=generator)
    return (gain * torch.sin(2 * math.pi * freq * time + phase)).sum(1, keepdim=True)


# ----------------------------------------------------------------------------- equivariance
@pytest.mark.parametrize(
    "slot_update, slot_init, length, sees_mixture",
    [
        ("transformer", "queries", 500, False),
        ("slot_attention", "queries", 333, False),
        ("transformer", "gaussian", 499, False),
        ("slot_attention", "gaussian", 500, False),
        ("transformer", "queries", 500, True),
    ],
)
def test_permuting_the_initial_slots_permutes_the_outputs(
    slot_update, slot_init, length, sees_mixture
):
    n_slots = 4
    model = tiny(
        slot_update=slot_update,
        slot_init=slot_init,
        n_slots=n_slots,
        decoder_sees_mixture=sees_mixture,
    ).eval()
    mixture = torch.randn(2, 1, length, generator=torch.Generator().manual_seed(1))
    init = model.initial_slots(2)
    perm = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        base = model(mixture, slot_init=init)
        permuted = model(mixture, slot_init=init[:, perm])
    # The slots must differ, or any permutation would trivially leave the outputs alone.
    assert (base[:, 0] - base[:, 1]).abs().max() > 1e-3 * base.abs().max()
    torch.testing.assert_close(permuted, base[:, perm], rtol=1e-4, atol=1e-6)
    # Without slot_init the model uses its own initial slots: same result as passing them,
    # whether given once for the batch or per mixture.
    with torch.no_grad():
        torch.testing.assert_close(model(mixture), base, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(model(mixture, slot_init=init[:1]), base, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(model(mixture, slot_init=init[0]), base, rtol=1e-5, atol=1e-7)

    with torch.no_grad():
        out = model.training_outputs(mixture, slot_init=init)
        out_p = model.training_outputs(mixture, slot_init=init[:, perm])
    for key in ("magnitudes", "slots"):
        torch.testing.assert_close(out_p[key], out[key][:, perm], rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(out_p["mixture_magnitude"], out["mixture_magnitude"])


# ----------------------------------------------------------------------------- long inputs
# 1777 samples in windows of one chunk (500) overlapping by 125: starts 0, 375, 750, 1125, 1500.
LONG = 1777


@pytest.mark.parametrize("slot_update", ["transformer", "slot_attention"])
def test_a_long_input_keeps_each_slot_on_one_output(slot_update):
    """Permuting the learned slots permutes every output of a long input by that one
    permutation (the alignment between windows follows the slots), and between overlaps each
    output is one of that window's own outputs."""
    n_slots, perm = 4, [2, 0, 3, 1]
    model = tiny(slot_update=slot_update, n_slots=n_slots).eval()
    permuted = tiny(slot_update=slot_update, n_slots=n_slots).eval()
    with torch.no_grad():
        permuted.slot_queries.copy_(model.slot_queries[perm])
    mixture = torch.randn(2, 1, LONG, generator=torch.Generator().manual_seed(4))
    base = model.separate(mixture)
    assert base.shape == (2, n_slots, 1, LONG)
    torch.testing.assert_close(permuted.separate(mixture), base[:, perm], rtol=1e-4, atol=1e-6)

    with torch.no_grad():  # the second window alone; [500, 750) is covered by it only
        own = model(mixture[..., 375:875])[..., 125:375]
    for item in range(2):
        matches = [
            [j for j in range(n_slots) if torch.allclose(base[item, i, ..., 500:750], own[item, j])]
            for i in range(n_slots)
        ]
        assert sorted(m[0] for m in matches if len(m) == 1) == list(range(n_slots))


def test_a_long_input_through_forward_separate_and_file_inference_agrees():
    model = tiny(n_slots=3).eval()
    mixture = torch.randn(2, 1, LONG, generator=torch.Generator().manual_seed(5))
    separated = model.separate(mixture)
    assert separated.shape == (2, 3, 1, LONG)
    for item in range(2):
        np.testing.assert_array_equal(
            separate_waveform(model, mixture[item], SR, overlap=model.chunk_overlap),
            separated[item].numpy(),
        )
    with torch.no_grad():  # validation on longer mixtures: forward windows the same way
        torch.testing.assert_close(model(mixture), separated)
        assert model.training_outputs(mixture)["estimates"].shape == (2, 3, 1, LONG)
    assert model.separate(mixture[0, 0]).shape == (3, LONG)


def test_training_on_chunks_validates_on_longer_mixtures():
    """A real Trainer: training crops of one chunk, validation mixtures of 1200 samples
    (validation runs without gradients, so forward separates them in windows)."""
    model = tiny(n_slots=2)
    generator = torch.Generator().manual_seed(9)

    def items(length):
        targets = tones(8, 2 * length, generator).reshape(8, 2, 1, length)
        return [separation_item(t.sum(0), t, None) for t in targets]

    train = DataLoader(items(500), 4, collate_fn=collate_separation)
    valid = DataLoader(items(1200), 4, collate_fn=collate_separation)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    objective = losses.build_objective({"objective": "slots"})
    system = SeparationSystem(model, optimizer, objective, train, valid)
    trainer = quiet_trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=2)
    trainer.fit(system)
    assert trainer.global_step == 1
    assert torch.isfinite(trainer.callback_metrics["val_loss"])
    assert torch.isfinite(trainer.callback_metrics["val_si_sdri"])


def test_a_long_input_with_gradients_or_slot_init_is_refused():
    model = tiny(n_slots=2)
    mixture = torch.randn(1, 1, 501)
    with pytest.raises(ValueError, match="crops of at most chunk_seconds"):
        model(mixture)
    with pytest.raises(ValueError, match="crops of at most chunk_seconds"):
        model.training_outputs(mixture)
    with torch.no_grad(), pytest.raises(ValueError, match="slot_init applies"):
        model(mixture, slot_init=model.initial_slots(1))


def test_gaussian_slots_are_deterministic_in_eval_and_random_in_training():
    model = tiny(slot_init="gaussian", n_slots=3)
    model.train()
    assert not torch.equal(model.initial_slots(1), model.initial_slots(1))
    model.eval()
    first = model.initial_slots(2)
    assert torch.equal(first, model.initial_slots(2))
    assert torch.equal(first[0], first[1])
    assert (first[0, 0] - first[0, 1]).abs().max() > 0.1  # distinct slots


# ----------------------------------------------------------------------------- matching
def brute_force_with_silence(pair_costs, silence_costs, weight):
    """min over slot orders of (matched costs + weight * spare slots' silence) / N."""
    n_est, n_ref = pair_costs.shape
    best = float("inf")
    for order in itertools.permutations(range(n_est)):
        total = sum(float(pair_costs[order[n], n]) for n in range(n_ref))
        total += weight * sum(float(silence_costs[k]) for k in order[n_ref:])
        best = min(best, total / n_ref)
    return best


@pytest.mark.parametrize("n_est, n_ref", [(1, 1), (2, 2), (3, 2), (3, 3), (4, 1), (4, 2), (4, 4)])
def test_silence_padded_assignment_is_the_brute_force_minimum(n_est, n_ref):
    generator = torch.Generator().manual_seed(n_est * 10 + n_ref)
    for weight in (0.0, 0.5, 1.0):
        costs = torch.rand(5, n_est, n_ref, generator=generator)
        silence = torch.rand(5, n_est, generator=generator)
        loss, order = losses.silence_padded_assignment(costs, silence, weight)
        assert sorted(order[0].tolist()) == list(range(n_est))
        for b in range(5):
            expected = brute_force_with_silence(costs[b], silence[b], weight)
            assert loss[b].item() == pytest.approx(expected, rel=1e-6)
            if weight == 0.0 or n_est == n_ref:
                # Nothing left to silence (or free to): the package's brute force applies.
                assert loss[b].item() == pytest.approx(losses.brute_force_min(costs[b]), rel=1e-6)


def test_padded_assignment_needs_enough_slots():
    with pytest.raises(ValueError, match="at least as many outputs"):
        losses.silence_padded_assignment(torch.rand(1, 2, 3), torch.rand(1, 2))


def _magnitude(wav: torch.Tensor, n_fft: int, hop: int) -> torch.Tensor:
    spec = torch.stft(
        wav.reshape(-1, wav.shape[-1]),
        n_fft,
        hop,
        window=torch.hann_window(n_fft),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )
    return spec.abs().reshape(*wav.shape[:-1], *spec.shape[-2:])


@pytest.mark.parametrize("spec_loss, power", [("l1", 1), ("mse", 2)])
@pytest.mark.parametrize("n_est, n_ref", [(2, 2), (3, 2), (4, 3)])
def test_slots_objective_is_the_minimum_over_slot_orders(spec_loss, power, n_est, n_ref):
    """Generic blind outputs (no magnitudes, no STFT): the objective takes their STFT."""
    generator = torch.Generator().manual_seed(n_est + 7 * n_ref)
    n_fft, hop, batch = 64, 16, 3
    targets = torch.randn(batch, n_ref, 1, 400, generator=generator)
    mixture = targets.sum(1)
    estimates = torch.randn(batch, n_est, 1, 400, generator=generator)
    estimates[:, -1] *= 0.1  # a quieter slot, so the best matching is not arbitrary
    objective = losses.build_objective(
        {"objective": "slots", "spec_loss": spec_loss, "n_fft": n_fft, "hop_length": hop}
    )
    terms = objective({"estimates": estimates}, {"mixture": mixture, "targets": targets})

    est_mag, ref_mag = _magnitude(estimates, n_fft, hop), _magnitude(targets, n_fft, hop)
    norm = _magnitude(mixture, n_fft, hop).pow(power).mean(dim=(1, 2, 3))
    expected = []
    for b in range(batch):
        best = float("inf")
        for order in itertools.permutations(range(n_est)):
            total = sum(
                (est_mag[b, order[n]] - ref_mag[b, n]).abs().pow(power).mean() for n in range(n_ref)
            )
            total = total + sum(est_mag[b, k].pow(power).mean() for k in order[n_ref:])
            best = min(best, float(total / norm[b]) / n_ref)
        expected.append(best)
    assert terms["loss"].item() == pytest.approx(sum(expected) / batch, rel=1e-4)


def test_slots_objective_sisdr_term_and_model_outputs():
    model = tiny(n_slots=3)
    generator = torch.Generator().manual_seed(3)
    targets = torch.randn(2, 2, 1, 500, generator=generator)
    batch = {"mixture": targets.sum(1), "targets": targets}
    outputs = model.training_outputs(batch["mixture"])
    assert outputs["magnitudes"].shape == (2, 3, 1, 33, 32)
    plain = losses.build_objective({"objective": "slots"})(outputs, batch)
    with_sisdr = losses.build_objective({"objective": "slots", "sisdr_weight": 0.5})(outputs, batch)
    assert with_sisdr["spec_loss"].item() == pytest.approx(plain["spec_loss"].item())
    assert with_sisdr["loss"].item() == pytest.approx(
        plain["loss"].item() + 0.5 * with_sisdr["neg_sisdr"].item(), rel=1e-5
    )
    with_sisdr["loss"].backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    with pytest.raises(ValueError, match="no 'stft'"):
        losses.build_objective({"objective": "slots"})({"estimates": outputs["estimates"]}, batch)


# ----------------------------------------------------------------------------- training
def test_an_empty_slot_learns_silence():
    """Two slots, one source: the spare slot must fall silent, the other must not.

    -20 dB below the mixture's energy is where an output is 1 % of the mixture's energy: an
    inaudible residue under speech, and far below the untrained model (about -11 dB).
    """
    torch.set_num_threads(2)
    model = tiny(n_slots=2)
    objective = losses.build_objective({"objective": "slots"})
    generator = torch.Generator().manual_seed(1)
    validation = tones(16, 500, generator)

    def slot_levels_db():
        with torch.no_grad():
            energy = model.eval()(validation).square().sum(-1)[:, :, 0]
        model.train()
        relative = 10 * torch.log10(energy / validation.square().sum(-1))
        return relative.min(1).values.mean().item(), relative.max(1).values.mean().item()

    quiet_before, _ = slot_levels_db()
    # 3e-3 drove both softplus outputs of this tiny model into saturation (silence).
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(40):
        mixture = tones(8, 500, generator)
        terms = objective(
            model.training_outputs(mixture), {"mixture": mixture, "targets": mixture[:, None]}
        )
        optimizer.zero_grad()
        terms["loss"].backward()
        optimizer.step()
    quiet, loud = slot_levels_db()
    assert quiet < -20.0
    assert quiet < quiet_before - 10.0
    # Not both slots silenced: the other one carries the source (about -11 dB here, the
    # energy of a spectrum not yet localised, regressed to its mean by the squared error).
    assert loud > quiet + 20.0


# ----------------------------------------------------------------------------- contract
@pytest.mark.parametrize("length", [1, 63, 499, 501, 1001, 1777])
def test_output_length_equals_input_length(length):
    model = tiny(n_slots=3).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 1, length))
    assert out.shape == (2, 3, 1, length)
    assert torch.isfinite(out).all()


def test_blind_contract_and_multichannel():
    model = tiny(n_slots=2, in_channels=2).eval()
    wav = torch.randn(1, 2, 700)
    assert model.separate(wav).shape == (1, 2, 2, 700)
    with pytest.raises(LASSInputError, match="blind"):
        model.separate(wav, query="speech")
    with pytest.raises(ValueError, match="conditions must be None"):
        model(wav, torch.zeros(1, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="slot_init must have shape"):
        model(wav[..., :400], slot_init=torch.zeros(2, 5))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="slot_update"):
        tiny(slot_update="gru")
    with pytest.raises(ValueError, match="chunk_overlap"):
        tiny(chunk_overlap=0.0)
    with pytest.raises(ValueError, match="chunk_overlap"):
        tiny(chunk_overlap=0.6)
    with pytest.raises(ValueError, match="n_heads"):
        tiny(d_model=30, n_heads=4)


@pytest.mark.parametrize("slot_init", ["queries", "gaussian"])
def test_serialize_round_trip(tmp_path, slot_init):
    model = tiny(slot_init=slot_init, n_slots=3).eval()
    path = tmp_path / "audioslots.pth"
    torch.save(model.serialize(), path)
    loaded = AudioSlots.from_pretrained(str(path))
    assert not loaded.training
    assert loaded.get_model_args() == model.get_model_args()
    assert loaded.max_input_seconds == model.max_input_seconds == 0.0625
    assert loaded.max_input_samples == model.chunk_samples == 500
    wav = torch.randn(1, 1, 1333)
    with torch.no_grad():
        torch.testing.assert_close(loaded(wav), model(wav))
    if slot_init == "gaussian":  # a shared Gaussian can draw any number of slots
        more = AudioSlots.from_pretrained(str(path), n_slots=5)
        with torch.no_grad():
            assert more(wav).shape == (1, 5, 1, 1333)


def test_default_size():
    """The CPU default's size, by hand from the layer shapes (d=256, ff=512, W=128)."""
    model = AudioSlots()
    d, ff, w, n_freq = 256, 512, 128, 129
    layer_norm = 2 * d
    attention = 4 * d * d + 4 * d
    feed_forward = d * ff + ff + ff * d + d
    encoder = 4 * (attention + feed_forward + 2 * layer_norm) + layer_norm
    slot_reader = 3 * (2 * attention + feed_forward + 3 * layer_norm) + layer_norm
    fourier = 2 * (1 + 2 * 7)
    decoder = (d * w + w) + fourier * w + 2 * (w * w + w) + (w + 1)
    expected = (n_freq * d + d) + encoder + 2 * d + slot_reader + decoder
    assert sum(p.numel() for p in model.parameters()) == expected


def test_a_decoder_that_sees_the_mixture_masks_its_magnitude(tmp_path):
    model = tiny(n_slots=3, decoder_sees_mixture=True).eval()
    mixture = tones(2, 500, torch.Generator().manual_seed(3))
    with torch.no_grad():
        out = model.training_outputs(mixture)
    mixture_magnitude = out["mixture_magnitude"][:, None]
    # A mask in [0, 1] on the mixture: never above it, zero where the mixture is silent.
    assert (out["magnitudes"] <= mixture_magnitude * (1 + 1e-6)).all()
    assert (out["magnitudes"] >= 0).all()
    silent = torch.zeros(1, 1, 500)
    with torch.no_grad():
        assert model(silent).abs().max() == 0
    # The option is part of the model's arguments, so a saved model rebuilds with it.
    path = str(tmp_path / "slots.pth")
    torch.save(model.serialize(), path)
    reloaded = AudioSlots.from_pretrained(path)
    assert reloaded.decoder_sees_mixture
    with torch.no_grad():
        torch.testing.assert_close(reloaded(mixture), model(mixture))
