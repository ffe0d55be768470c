"""Training augmentation: each change measured on known signals, and how datasets apply it."""

import numpy as np
import pytest
import torch

from asteroid_lass.data import QueryMixtureDataset
from asteroid_lass.data.augment import Augmentation, add_room, random_eq, repitch
from asteroid_lass.data.mixing import energy_snr_db
from conftest import small_corpus

SR = 16000


def _band_gains_db(before: np.ndarray, after: np.ndarray, edges) -> np.ndarray:
    power_before = np.abs(np.fft.rfft(before)) ** 2
    power_after = np.abs(np.fft.rfft(after)) ** 2
    freqs = np.fft.rfftfreq(before.shape[0], 1 / SR)
    gains = []
    for low, high in zip(edges[:-1], edges[1:]):
        band = (freqs >= low) & (freqs < high)
        gains.append(10 * np.log10(power_after[band].sum() / power_before[band].sum()))
    return np.array(gains)


def test_equaliser_stays_within_its_range_and_changes_the_colour():
    noise = np.random.default_rng(0).standard_normal(4 * SR)
    edges = [100, 200, 400, 800, 1600, 3200, 6400]
    spreads = []
    for seed in range(5):
        coloured = random_eq(np.random.default_rng(seed), noise, SR, max_db=6.0)
        gains = _band_gains_db(noise, coloured, edges)
        assert np.all(np.abs(gains) <= 6.0 + 0.05), gains
        spreads.append(gains.max() - gains.min())
    assert min(spreads) > 1.0  # every draw colours the sound audibly
    flat = random_eq(np.random.default_rng(0), noise, SR, max_db=0.0)
    np.testing.assert_allclose(flat, noise, atol=1e-5)


def test_room_response_decays_by_60_db_over_its_rt60():
    impulse = np.zeros(SR)
    impulse[0] = 1.0
    rt60 = 0.5
    wet = add_room(np.random.default_rng(1), impulse, SR, (rt60, rt60), (0.0, 0.0)) - impulse
    # Schroeder backward integration: energy still to come, in dB.
    remaining = np.cumsum(wet[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(remaining / remaining[0])
    t = np.arange(wet.shape[0]) / SR
    fit = (t > 0.02) & (t < 0.3)  # early part of the decay, before the response's end
    slope_db_per_s = np.polyfit(t[fit], decay_db[fit], 1)[0]
    assert slope_db_per_s == pytest.approx(-60 / rt60, rel=0.15)
    # A wet level of 0 dB: the reverberant part carries the dry sound's energy.
    assert np.sum(wet**2) == pytest.approx(1.0, rel=1e-6)


def test_level_scales_mixture_and_target_together_and_never_clips():
    rng = np.random.default_rng(2)
    target = 0.02 * rng.standard_normal(SR).astype(np.float32)
    mixture = target + 0.02 * rng.standard_normal(SR).astype(np.float32)  # peak about 0.11
    augmentation = Augmentation(gain_db=(-20.0, 20.0))
    gains = []
    for seed in range(20):
        louder_mix, louder_target = augmentation.level(np.random.default_rng(seed), mixture, target)
        gain = np.sum(louder_mix * mixture) / np.sum(mixture**2)
        np.testing.assert_allclose(louder_target, target * gain, rtol=1e-5, atol=1e-7)
        assert np.max(np.abs(louder_mix)) <= 1.0 + 1e-6
        gains.append(20 * np.log10(gain))
    assert min(gains) < -10 and max(gains) > 10
    assert max(gains) <= 20 * np.log10(1.0 / np.max(np.abs(mixture))) + 1e-4  # capped at 0 dBFS


def _peak_hz(wav: np.ndarray) -> float:
    padded = 8 * wav.shape[0]  # interpolated spectrum: a bin of 0.25 Hz at 2 s
    spectrum = np.abs(np.fft.rfft(wav * np.hanning(wav.shape[0]), padded))
    return float(np.fft.rfftfreq(padded, 1 / SR)[np.argmax(spectrum)])


def test_repitch_transposes_pitch_and_tempo_by_one_interval_within_its_range():
    length = 2 * SR
    augmentation = Augmentation(pitch_semitones=2.0)
    t = np.arange(augmentation.source_samples(length)) / SR
    tone = np.sin(2 * np.pi * 440.0 * t)
    clicks = np.zeros_like(t)
    clicks[:: SR // 4] = 1.0  # four a second
    intervals = []
    for seed in range(12):
        moved = repitch(np.random.default_rng(seed), tone, 2.0, length)
        assert moved.shape == (length,) and moved.dtype == np.float32
        # The whole output is sound: the crop was long enough for the fastest playback.
        assert np.abs(moved[-SR // 100 :]).max() > 0.5
        semitones = 12 * np.log2(_peak_hz(moved) / 440.0)
        assert abs(semitones) <= 2.0 + 0.05
        intervals.append(semitones)
        # The same draw moves the clicks: tempo follows pitch, as on a sampler.
        ticks = repitch(np.random.default_rng(seed), clicks, 2.0, length)
        peaks = np.flatnonzero(ticks > 0.5 * ticks.max())
        spacing = np.median(np.diff(peaks[np.diff(np.r_[-10, peaks]) > 5]))
        assert SR / 4 / spacing == pytest.approx(2 ** (semitones / 12), rel=0.01)
    assert min(intervals) < -1.0 and max(intervals) > 1.0  # both ways, spread over the range
    unmoved = Augmentation()
    assert unmoved.source_samples(length) == length


def test_conf_keys_build_the_augmentation_and_bad_values_are_named():
    assert Augmentation.from_conf({}) is None
    assert Augmentation.from_conf({"augment_eq_db": 0, "augment_gain_low_db": 0}) is None
    augmentation = Augmentation.from_conf(
        {"augment_eq_db": 3, "augment_gain_low_db": -12, "augment_gain_high_db": 0}
    )
    assert augmentation == Augmentation(eq_db=3.0, gain_db=(-12.0, 0.0))
    with pytest.raises(ValueError, match="augment_room_probability"):
        Augmentation.from_conf({"augment_room_probability": 1.5})
    with pytest.raises(ValueError, match="augment_gain_low_db"):
        Augmentation.from_conf({"augment_gain_low_db": 0, "augment_gain_high_db": -6})
    with pytest.raises(ValueError, match="augment_eq_db"):
        Augmentation.from_conf({"augment_eq_db": -1})
    assert Augmentation.from_conf({"augment_pitch_semitones": 1.5}) == Augmentation(
        pitch_semitones=1.5
    )
    for bad in (-1, 13, float("nan")):
        with pytest.raises(ValueError, match="augment_pitch_semitones"):
            Augmentation.from_conf({"augment_pitch_semitones": bad})
    for key in ("augment_eq_db", "augment_gain_high_db", "augment_pitch_semitones"):
        with pytest.raises(ValueError, match=f"^{key} must be a number, got 'high'.$"):
            Augmentation.from_conf({key: "high"})
        with pytest.raises(ValueError, match=f"^{key} must be a number, got True.$"):
            Augmentation.from_conf({key: True})


def test_augmented_items_keep_their_snr_and_are_reproducible(tmp_path):
    classes = ["Siren", "Bell", "Drum", "Piano", "Rain"]
    corpus = small_corpus(tmp_path, classes, clips_per_class=3, seconds_range=(2.0, 3.0))
    data = dict(
        sample_rate=8000,
        segment_seconds=1.5,
        max_interferers=2,
        snr_low=-5,
        snr_high=5,
        augment_pitch_semitones=2,
        augment_eq_db=6,
        augment_room_probability=0.5,
        augment_gain_low_db=-20,
        augment_gain_high_db=0,
    )
    augmented = QueryMixtureDataset.from_conf(corpus, data, seed=3)
    plain = QueryMixtureDataset.from_conf(
        corpus, {k: v for k, v in data.items() if not k.startswith("augment")}, seed=3
    )
    assert augmented.augmentation is not None and plain.augmentation is None
    for index in range(12):
        item, plain_item = augmented[index], plain[index]
        recipe = augmented.draw_recipe(np.random.default_rng([3, 0, index]))
        assert item["conditions"] == plain_item["conditions"] == [recipe["query"]]
        assert item["mixture"].shape == plain_item["mixture"].shape == (1, 12000)
        mixture, target = item["mixture"][0].numpy(), item["targets"][0, 0].numpy()
        measured = energy_snr_db(target, mixture - target)
        assert measured == pytest.approx(recipe["snr_db"], abs=0.1)
        assert not torch.allclose(item["targets"], plain_item["targets"], atol=1e-3)
        assert torch.equal(item["mixture"], augmented[index]["mixture"])
