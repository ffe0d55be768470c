import filecmp

import numpy as np
import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader

from asteroid_lass.data import (
    FixedMixtureDataset,
    ManifestError,
    QueryMixtureDataset,
    load_manifest,
    write_fixed_mixtures,
)
from asteroid_lass.data.batch import collate_separation
from asteroid_lass.data.mixing import energy_snr_db
from asteroid_lass.data.synth import CLASSES, EVENT_CLASSES, INSTRUMENT_CLASSES, make_corpus
from conftest import write_wav

SR = 8000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    return make_corpus(
        str(root), clips_per_class=6, sample_rate=SR, seconds_range=(2, 3), split="train"
    )


def _multi_label_manifest(tmp_path) -> str:
    """Clips with overlapping multi-label sets, to catch interferers sharing any label."""
    rng = np.random.RandomState(0)
    label_sets = [
        "Dog;Bark",
        "Dog;Growling",
        "Cat;Meow",
        "Music;Piano",
        "Music;Guitar",
        "Speech",
        "Bark",
    ]
    rows = []
    for k, labels in enumerate(label_sets * 3):
        name = f"clip{k}.wav"
        write_wav(tmp_path / name, 0.3 * rng.randn(SR * 2), SR)
        rows.append(dict(path=name, labels=labels))
    path = tmp_path / "multi.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_manifest_errors_name_every_bad_row(tmp_path):
    write_wav(tmp_path / "good.wav", np.zeros(800), SR)
    (tmp_path / "broken.wav").write_bytes(b"RIFF nonsense")
    pd.DataFrame(
        [
            dict(path="good.wav", labels="Dog"),
            dict(path="gone.wav", labels="Cat"),
            dict(path="broken.wav", labels="Bell"),
            dict(path="good.wav", labels=" ; "),
        ]
    ).to_csv(tmp_path / "m.csv", index=False)
    with pytest.raises(ManifestError) as info:
        load_manifest(str(tmp_path / "m.csv"))
    message = str(info.value)
    assert "row 2: missing file gone.wav" in message
    assert "row 3: unreadable audio broken.wav" in message
    assert "row 4: empty labels" in message
    assert "row 1" not in message

    pd.DataFrame([dict(path="good.wav", labels="Dog", mood="happy")]).to_csv(
        tmp_path / "u.csv", index=False
    )
    with pytest.raises(ManifestError, match=r"unknown columns \['mood'\]"):
        load_manifest(str(tmp_path / "u.csv"))


def test_interferers_never_share_a_label_with_the_target(tmp_path):
    dataset = QueryMixtureDataset(
        _multi_label_manifest(tmp_path), SR, segment_seconds=1.0, max_interferers=3, seed=3
    )
    labels_of = dict(zip(dataset.table["path"], dataset.table["label_list"]))
    counts = set()
    for k in range(500):
        recipe = dataset.draw_recipe(np.random.default_rng([7, k]))
        target_labels = set(labels_of[recipe["target_path"]])
        counts.add(len(recipe["interferer_paths"]))
        for path in recipe["interferer_paths"]:
            assert not target_labels & set(labels_of[path]), (recipe["target_path"], path)
        assert recipe["query"] in target_labels
    assert counts == {1, 2, 3}


def test_mixtures_have_the_requested_snr(corpus):
    dataset = QueryMixtureDataset(
        corpus, SR, segment_seconds=1.5, max_interferers=2, snr_range=(-10, 10), seed=1
    )
    for index in range(40):
        item = dataset[index]
        mixture, target = item["mixture"][0], item["targets"][0, 0]
        recipe = dataset.draw_recipe(np.random.default_rng([1, 0, index]))
        assert item["conditions"] == [recipe["query"]]
        measured = energy_snr_db(target.numpy(), (mixture - target).numpy())
        assert abs(measured - recipe["snr_db"]) < 0.1
        assert mixture.abs().max() <= 0.9 + 1e-6


def test_items_follow_the_batch_format_and_collate(corpus):
    dataset = QueryMixtureDataset(corpus, SR, segment_seconds=1.0, seed=2)
    item = dataset[0]
    assert item["mixture"].shape == (1, SR) and item["targets"].shape == (1, 1, SR)
    assert item["mixture"].dtype == item["targets"].dtype == torch.float32
    assert isinstance(item["conditions"], list) and len(item["conditions"]) == 1
    assert item["conditions"][0] in CLASSES
    loader = DataLoader(dataset, batch_size=3, collate_fn=collate_separation)
    batch = next(iter(loader))
    assert batch["mixture"].shape == (3, 1, SR) and batch["targets"].shape == (3, 1, 1, SR)
    assert batch["conditions"] == [dataset[i]["conditions"] for i in range(3)]
    torch.testing.assert_close(batch["targets"][2], dataset[2]["targets"])


def test_items_are_reproducible_per_epoch_and_differ_across_epochs(corpus):
    dataset = QueryMixtureDataset(corpus, SR, segment_seconds=1.0, seed=5)
    first = dataset[3]["mixture"]
    assert torch.equal(first, dataset[3]["mixture"])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[3]["mixture"])
    dataset.set_epoch(0)
    assert torch.equal(first, dataset[3]["mixture"])


def test_fixed_sets_are_byte_identical_and_read_back_as_drawn(corpus, tmp_path):
    dataset = QueryMixtureDataset(corpus, SR, segment_seconds=1.0, max_interferers=2, seed=0)
    paths = [write_fixed_mixtures(dataset, str(tmp_path / f"t{k}.csv"), 20, seed=4) for k in (1, 2)]
    assert filecmp.cmp(paths[0], paths[1], shallow=False)
    other = write_fixed_mixtures(dataset, str(tmp_path / "other.csv"), 20, seed=5)
    assert not filecmp.cmp(paths[0], other, shallow=False)

    fixed = FixedMixtureDataset(paths[0])
    assert len(fixed) == 20 and fixed.sample_rate == SR
    recipe = dataset.draw_recipe(np.random.default_rng([4, 0]))
    item = fixed[0]
    assert item["conditions"] == [recipe["query"]]
    from asteroid_lass.data.datasets import render

    expected_mix, expected_target = render(dataset.store, recipe, dataset.segment)
    np.testing.assert_array_equal(item["mixture"].numpy(), expected_mix[None])
    np.testing.assert_array_equal(item["targets"].numpy(), expected_target[None, None])
    infos = fixed.get_infos()
    assert infos["licenses"][0]["license"] == "MIT"


def _log_spectrum(wav: np.ndarray) -> np.ndarray:
    frames = np.lib.stride_tricks.sliding_window_view(wav, 512)[::256] * np.hanning(512)
    return np.log(np.mean(np.abs(np.fft.rfft(frames, axis=-1)) ** 2, axis=0) + 1e-8)


def test_builtin_corpus_classes_are_distinct_and_varied(tmp_path):
    manifest = load_manifest(
        make_corpus(str(tmp_path), clips_per_class=6, sample_rate=16000, split="c")
    )
    assert len(EVENT_CLASSES) == 12 and manifest["labels"].nunique() == len(EVENT_CLASSES)
    import soundfile as sf

    spectra = np.stack([_log_spectrum(sf.read(p, dtype="float32")[0]) for p in manifest["path"]])
    labels = manifest["labels"].to_numpy()
    # Distinct: a nearest-class-mean classifier, leave-one-out, recognises the classes.
    correct = 0
    for i in range(len(labels)):
        others = np.arange(len(labels)) != i
        means = {c: spectra[others & (labels == c)].mean(axis=0) for c in EVENT_CLASSES}
        guess = min(means, key=lambda c: np.sum((spectra[i] - means[c]) ** 2))
        correct += guess == labels[i]
    assert correct / len(labels) > 0.8
    # Varied: no two clips of a class share a spectrum, and durations differ.
    for label in EVENT_CLASSES:
        members = spectra[labels == label]
        distances = [np.abs(a - b).mean() for i, a in enumerate(members) for b in members[i + 1 :]]
        assert min(distances) > 0.05, label
        assert manifest[manifest.labels == label]["duration"].nunique() == 6


def _periodicity(wav: np.ndarray, sr: int):
    """Per active 40 ms frame (within 25 dB of the loudest): the normalised autocorrelation's
    peak over the lags of 60 to 1100 Hz, and the f0 of that lag."""
    size = int(0.04 * sr)
    frames = np.lib.stride_tricks.sliding_window_view(wav, size)[:: size // 2]
    energy = np.mean(frames**2, axis=1)
    frames = frames[energy > energy.max() * 10**-2.5]
    frames = frames - frames.mean(axis=1, keepdims=True)
    spectrum = np.fft.rfft(frames, 2 * size, axis=1)
    autocorr = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :size]
    lags = np.arange(int(sr / 1100), int(sr / 60) + 1)
    # Normalised by the overlap length too, so that long lags are not penalised.
    normalised = autocorr[:, lags] / autocorr[:, :1] * size / (size - lags)
    peak = normalised.max(axis=1)
    # Every multiple of the period correlates as well: the shortest lag near the peak is f0.
    best = np.argmax(normalised >= 0.9 * peak[:, None], axis=1)
    return peak, sr / lags[best], len(frames) / len(energy)


def test_builtin_instrument_classes_are_sustained_harmonic_and_share_a_register(tmp_path):
    import soundfile as sf

    manifest = load_manifest(
        make_corpus(
            str(tmp_path), 6, 16000, (3.0, 4.0), classes=list(INSTRUMENT_CLASSES), split="i"
        )
    )
    periodicity, clip_f0, active, spectra = {}, {}, {}, {}
    for label, path in zip(manifest["labels"], manifest["path"]):
        wav = sf.read(path, dtype="float64")[0]
        strength, f0, share = _periodicity(wav, 16000)
        periodicity.setdefault(label, []).extend(strength)
        clip_f0.setdefault(label, []).append(np.median(f0))
        active.setdefault(label, []).append(share)
        spectra.setdefault(label, []).append(_log_spectrum(wav.astype(np.float32)))
    for label in INSTRUMENT_CLASSES:
        assert np.mean(active[label]) > 0.7, (label, np.mean(active[label]))  # sustained
        assert np.median(periodicity[label]) > 0.6, (label, np.median(periodicity[label]))
        # Varied: no two clips of a class share a spectrum.
        members = spectra[label]
        distances = [np.abs(a - b).mean() for i, a in enumerate(members) for b in members[i + 1 :]]
        assert min(distances) > 0.05, label
    # Five of them play in one register: the spans of their clips' median f0 overlap.
    one_register = ["Violin, fiddle", "Flute", "Clarinet", "Trumpet", "Singing"]
    spans = {label: (min(clip_f0[label]), max(clip_f0[label])) for label in one_register}
    assert max(low for low, _ in spans.values()) < min(high for _, high in spans.values()), spans


def test_builtin_corpus_clips_are_never_silent(tmp_path):
    """Short clips too: every clip holds its class's sound (peak-normalised to 0.3..0.9)."""
    manifest = load_manifest(
        make_corpus(
            str(tmp_path), clips_per_class=6, sample_rate=8000, seconds_range=(0.5, 1.5), split="x"
        )
    )
    import soundfile as sf

    silent = [
        (label, path)
        for label, path in zip(manifest["labels"], manifest["path"])
        if np.abs(sf.read(path, dtype="float32")[0]).max() < 0.29
    ]
    assert not silent
