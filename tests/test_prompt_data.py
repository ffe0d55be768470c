"""Prompt-sequence mixtures (TUSS-style data), fixed task test sets, and the speech synth."""

import filecmp
import json
import os
import shutil
from collections import Counter

import numpy as np
import pandas as pd
import pyloudnorm
import pytest
import soundfile as sf
import torch
from scipy.signal import butter, sosfiltfilt

from asteroid_lass.data.prompt_mixing import (
    STEMS,
    TASKS,
    FixedPromptMixtureDataset,
    MultiChannelClipStore,
    PromptBatchSampler,
    PromptMixtureDataset,
    PromptSequenceSampler,
    collate_prompt_mixtures,
    make_unified_corpus,
    make_unified_manifest,
    write_prompt_test_set,
)
from asteroid_lass.data.speech_synth import F0_RANGES, make_speaker, synth_utterance

SR = 8000
EVENT_CLASSES = ["Siren", "Bell", "Whistle", "Beep, bleep", "Rain", "Wind"]


def write_fake_musdb(root, n_songs=3, seconds=4.0, stereo=True, seed=0):
    """A MUSDB18-HQ-layout folder: ``{train,test}/<song>/{stems,mixture}.wav``; every stem
    is noise-modulated tones at its own pitch, the mixture their sum."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    t = np.arange(n) / SR
    for split in ("train", "test"):
        for s in range(n_songs):
            song_dir = os.path.join(root, split, f"Artist {s} - Song")
            os.makedirs(song_dir)
            stems = {}
            for k, stem in enumerate(STEMS):
                tone = np.sin(2 * np.pi * (110 * (k + 1) + 20 * s) * t)
                envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t) ** 2
                wav = 0.2 * tone * envelope + 0.01 * rng.standard_normal(n)
                wav = np.stack([wav, 0.8 * wav], 1) if stereo else wav
                stems[stem] = wav.astype(np.float32)
                sf.write(os.path.join(song_dir, f"{stem}.wav"), stems[stem], SR, subtype="FLOAT")
            mixture = sum(stems.values())
            sf.write(os.path.join(song_dir, "mixture.wav"), mixture, SR, subtype="FLOAT")
    return str(root)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("prompt")
    music = write_fake_musdb(root / "musdb")
    manifests = make_unified_corpus(
        str(root / "corpus"),
        n_speakers=4,
        utterances_per_speaker=2,
        clips_per_class=3,
        sample_rate=SR,
        seconds_range=(2.0, 3.0),
        music_dir=music,
        test_fraction=0.5,
        event_classes=EVENT_CLASSES,
    )
    return dict(root=root, music=music, **manifests)


def _binomial_tolerance(p: float, trials: int, z: float = 4.5) -> float:
    """Half-width of a z-sigma binomial interval, plus one count of slack."""
    return z * np.sqrt(p * (1 - p) / trials) + 1.0 / trials


def _category_of(csv_path: str) -> dict:
    """Absolute clip path -> category, straight from the manifest CSV."""
    table = pd.read_csv(csv_path)
    root = os.path.dirname(os.path.abspath(csv_path))
    return {os.path.normpath(os.path.join(root, p)): c for p, c in zip(table.path, table.category)}


def _measured_gain_db(target: np.ndarray, path: str, offset: int, segment: int) -> tuple:
    """Gain (dB) of ``target`` relative to the whole clip at -23 LUFS, cropped at
    ``offset``, and the relative residual of that fit."""
    wav, rate = sf.read(path, dtype="float64", always_2d=True)
    assert rate == SR
    mono = wav.mean(axis=1)
    loudness = pyloudnorm.Meter(SR).integrated_loudness(mono)
    reference = mono * 10 ** ((-23.0 - loudness) / 20)
    reference = np.pad(reference[offset : offset + segment], (0, segment))[:segment]
    target = target.astype(np.float64)
    gain = np.dot(target, reference) / np.dot(reference, reference)
    residual = np.linalg.norm(target - gain * reference) / np.linalg.norm(target)
    return 20 * np.log10(gain), residual


# ----------------------------------------------------------------------------- prompt lists
INIT = {"speech": 0.5, "sfx": 0.3, "drums": 0.2}
TRANSITION = {
    "speech": {"speech": 0.2, "sfx": 0.7, "drums": 0.1},
    "sfx": {"speech": 0.45, "sfx": 0.45, "drums": 0.1},
    "drums": {"sfx": 0.25, "drums": 0.75},
}


def test_first_prompts_transitions_and_counts_follow_the_tables():
    sampler = PromptSequenceSampler(INIT, TRANSITION, (2, 3, 4), (0.2, 0.5, 0.3), no_repeat=())
    draws = 6000
    first, counts = Counter(), Counter()
    pairs = {k: Counter() for k in TRANSITION}
    for index in range(draws):
        prompts = sampler.draw(np.random.default_rng([5, index]))
        counts[len(prompts)] += 1
        first[prompts[0]] += 1
        for previous, following in zip(prompts, prompts[1:]):
            pairs[previous][following] += 1
    for category, p in INIT.items():
        assert abs(first[category] / draws - p) <= _binomial_tolerance(p, draws), category
    for count, p in zip((2, 3, 4), (0.2, 0.5, 0.3)):
        assert abs(counts[count] / draws - p) <= _binomial_tolerance(p, draws), count
    assert set(counts) == {2, 3, 4}
    for previous, row in TRANSITION.items():
        trials = sum(pairs[previous].values())
        assert trials > 1000
        for following in INIT:
            p = row.get(following, 0.0)
            frequency = pairs[previous][following] / trials
            if p == 0:
                assert pairs[previous][following] == 0, (previous, following)
            else:
                assert abs(frequency - p) <= _binomial_tolerance(p, trials), (previous, following)


def test_no_repeat_renormalises_and_dead_ends_are_refused():
    sampler = PromptSequenceSampler(
        {"a": 1.0}, {"a": {"a": 0.9, "b": 0.1}, "b": {"a": 1.0}}, (2,), (1.0,), no_repeat=("a",)
    )
    assert all(sampler.draw(np.random.default_rng(i)) == ["a", "b"] for i in range(50))
    with pytest.raises(ValueError, match=r"\['a', 'b'\] cannot continue"):
        PromptSequenceSampler(
            {"a": 1.0}, {"a": {"a": 0.9, "b": 0.1}, "b": {"a": 1.0}}, (3,), (1.0,), ("a",)
        )
    with pytest.raises(ValueError, match="transition\\['a'\\]"):
        PromptSequenceSampler({"a": 1.0}, {"a": {"a": 0.5}}, (2,), (1.0,), ())
    with pytest.raises(ValueError, match="num_sources_weights needs 3"):
        PromptSequenceSampler(INIT, TRANSITION, (2, 3, 4), (0.5, 0.5), ())


def test_default_tables_never_repeat_stems_nor_mix_musicbg_with_stems():
    sampler = PromptSequenceSampler()
    for index in range(3000):
        prompts = sampler.draw(np.random.default_rng([1, index]))
        assert 2 <= len(prompts) <= 4
        used = Counter(prompts)
        assert all(used[c] <= 1 for c in STEMS + ("musicbg",)), prompts
        assert not ("musicbg" in used and any(c in used for c in STEMS)), prompts


# ----------------------------------------------------------------------------- items
GAINS = {
    "speech": (-6.0, -1.0),
    "sfx": (-20.0, -12.0),
    "sfxbg": (-15.0, -5.0),
    "drums": (-10.0, -8.0),
    "bass": (-4.0, 0.0),
    "vocals": (-3.0, -2.0),
    "other": (-9.0, -1.0),
    "musicbg": (-7.0, -4.0),
}


def test_items_sum_order_and_gains(corpus):
    dataset = PromptMixtureDataset(
        corpus["train"], SR, segment_seconds=1.5, gain_ranges=GAINS, peak_limit=None, seed=3
    )
    categories = _category_of(corpus["train"])
    seen = Counter()
    for index in range(16):
        item, recipe = dataset[index], dataset.recipe(index)
        mixture, targets, conditions = item["mixture"], item["targets"], item["conditions"]
        assert mixture.dtype == targets.dtype == torch.float32
        assert mixture.shape == (1, dataset.segment)
        assert targets.shape == (len(conditions), 1, dataset.segment)
        assert 2 <= len(conditions) <= 4
        torch.testing.assert_close(mixture, targets.sum(0), atol=1e-6, rtol=0)
        assert len(set(recipe["paths"])) == len(conditions)  # repeated prompts: other clips
        for k, prompt in enumerate(conditions):
            seen[prompt] += 1
            # The k-th target is a scaled crop of the k-th clip, whose category is prompt k.
            assert categories[recipe["paths"][k]] == prompt
            gain_db, residual = _measured_gain_db(
                targets[k, 0].numpy(), recipe["paths"][k], recipe["offsets"][k], dataset.segment
            )
            low, high = GAINS[prompt]
            assert low - 0.01 <= gain_db <= high + 0.01, (prompt, gain_db)
            assert abs(gain_db - recipe["gains_db"][k]) < 0.01
            assert residual < 1e-4
    assert len(seen) >= 4
    # Same (seed, epoch, index): same item; another epoch: another draw.
    torch.testing.assert_close(dataset[2]["mixture"], dataset[2]["mixture"])
    before = dataset.recipe(2)
    dataset.set_epoch(1)
    assert dataset.recipe(2)["paths"] != before["paths"] or dataset.recipe(2)["offsets"] != (
        before["offsets"]
    )


def test_source_count_weights_and_batching(corpus):
    dataset = PromptMixtureDataset(
        corpus["train"],
        SR,
        segment_seconds=1.0,
        num_sources_weights=(0.6, 0.1, 0.3),
        items_per_epoch=3000,
    )
    counts = Counter(dataset.num_sources(i) for i in range(len(dataset)))
    for count, p in zip((2, 3, 4), (0.6, 0.1, 0.3)):
        assert abs(counts[count] / 3000 - p) <= _binomial_tolerance(p, 3000)
    for index in range(6):  # num_sources is the item's own count
        assert len(dataset.recipe(index)["prompts"]) == dataset.num_sources(index)

    small = PromptMixtureDataset(corpus["train"], SR, segment_seconds=0.5, items_per_epoch=24)
    sampler = PromptBatchSampler(small, batch_size=3, seed=1)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(24))
    assert batches == list(sampler) and len(sampler) == len(batches)
    for batch in batches[:4]:
        collated = collate_prompt_mixtures([small[i] for i in batch])
        n = len(collated["conditions"][0])
        assert collated["targets"].shape == (len(batch), n, 1, small.segment)
        assert collated["mixture"].shape == (len(batch), 1, small.segment)
    two = next(i for i in range(24) if small.num_sources(i) == 2)
    four = next(i for i in range(24) if small.num_sources(i) == 4)
    with pytest.raises(ValueError, match="PromptBatchSampler"):
        collate_prompt_mixtures([small[two], small[four]])


def test_stems_share_song_and_offset_and_musicbg_avoids_their_song(corpus):
    music_only = {"drums": 0.25, "bass": 0.25, "vocals": 0.25, "other": 0.25}
    stem_row = {s: {o: 1 / 3 for o in STEMS if o != s} for s in STEMS}
    dataset = PromptMixtureDataset(
        corpus["train"], SR, 1.0, music_only, stem_row, (4,), (1.0,), seed=2
    )
    for index in range(10):
        recipe = dataset.recipe(index)
        assert sorted(recipe["prompts"]) == sorted(STEMS)
        assert len({os.path.dirname(p) for p in recipe["paths"]}) == 1
        assert len(set(recipe["offsets"])) == 1
        assert [os.path.basename(p) for p in recipe["paths"]] == [
            f"{s}.wav" for s in recipe["prompts"]
        ]
    # With musicbg next to a stem, it comes from another song.
    mixed = PromptMixtureDataset(
        corpus["train"],
        SR,
        1.0,
        {"drums": 0.5, "musicbg": 0.5},
        {"drums": {"musicbg": 1.0}, "musicbg": {"drums": 1.0}},
        (2,),
        (1.0,),
        seed=4,
    )
    for index in range(10):
        first, second = mixed.recipe(index)["paths"]
        assert os.path.dirname(first) != os.path.dirname(second)

    # Without a song column, stems are independent draws.
    table = pd.read_csv(corpus["train"]).drop(columns=["song"])
    no_song = os.path.join(os.path.dirname(corpus["train"]), "no_song.csv")
    table.to_csv(no_song, index=False)
    independent = PromptMixtureDataset(no_song, SR, 1.0, music_only, stem_row, (4,), (1.0,))
    songs_per_item = [
        len({os.path.dirname(p) for p in independent.recipe(i)["paths"]}) for i in range(10)
    ]
    assert max(songs_per_item) > 1


def test_repeated_speech_prompts_use_different_talkers(corpus):
    speakers = pd.read_csv(corpus["test"]).set_index("path")["speaker"]
    path = write_prompt_test_set(
        str(corpus["root"] / "sets" / "sep.json"), corpus["test"], "speech_separation", 12, 0, SR
    )
    with open(path) as handle:
        document = json.load(handle)
    root = os.path.dirname(corpus["test"])
    for mixture in document["mixtures"]:
        talkers = [
            speakers[os.path.relpath(os.path.join(os.path.dirname(path), s["path"]), root)]
            for s in mixture["sources"]
        ]
        assert talkers[0] != talkers[1]


def test_peak_limit_scales_mixture_and_targets_together(corpus):
    loud = {c: (0.0, 0.0) for c in GAINS}
    args = (corpus["train"], SR, 1.0, None, None, (4,), (1.0,), loud)
    limited = PromptMixtureDataset(*args, peak_limit=0.05, seed=7)
    free = PromptMixtureDataset(*args, peak_limit=None, seed=7)
    item, reference = limited[0], free[0]
    assert item["mixture"].abs().max() <= 0.05 + 1e-6
    scale = item["mixture"].abs().max() / reference["mixture"].abs().max()
    torch.testing.assert_close(item["targets"], reference["targets"] * scale, atol=1e-6, rtol=0)


def test_stereo_items(corpus):
    dataset = PromptMixtureDataset(corpus["train"], SR, 1.0, channels=2, seed=1)
    for index in range(6):
        item = dataset[index]
        assert item["mixture"].shape == (2, dataset.segment)
        for k, prompt in enumerate(item["conditions"]):
            left, right = item["targets"][k]
            if prompt in ("speech", "sfx", "sfxbg"):  # mono clips on both channels
                torch.testing.assert_close(left, right)
            elif left.abs().max() > 0:  # the fake stems' right channel is 0.8 x the left
                torch.testing.assert_close(right, 0.8 * left, atol=1e-5, rtol=1e-4)


def test_missing_categories_are_named(corpus, tmp_path):
    table = pd.read_csv(corpus["train"])
    table = table[table.category != "musicbg"]
    table["path"] = [os.path.join(os.path.dirname(corpus["train"]), p) for p in table.path]
    table.to_csv(tmp_path / "partial.csv", index=False)
    with pytest.raises(ValueError, match=r"no clips of categories \['musicbg'\]"):
        PromptMixtureDataset(str(tmp_path / "partial.csv"), SR)


# ----------------------------------------------------------------------------- test sets
@pytest.mark.parametrize("extension", [".csv", ".json"])
def test_fixed_sets_are_byte_identical_relative_and_render(corpus, tmp_path, extension):
    sets = corpus["root"] / f"sets{extension}"
    for task, prompts in TASKS.items():
        first = str(sets / f"{task}{extension}")
        again = str(sets / f"{task}_again{extension}")
        other = str(sets / f"{task}_seed1{extension}")
        write_prompt_test_set(first, corpus["test"], task, 4, 0, SR, segment_seconds=2.0)
        write_prompt_test_set(again, corpus["test"], task, 4, 0, SR, segment_seconds=2.0)
        write_prompt_test_set(other, corpus["test"], task, 4, 1, SR, segment_seconds=2.0)
        assert filecmp.cmp(first, again, shallow=False)
        assert not filecmp.cmp(first, other, shallow=False)
        if extension == ".csv":
            table = pd.read_csv(first)
            assert filecmp.cmp(first[:-4] + ".json", again[:-4] + ".json", shallow=False)
            relative = table.path.tolist()
        else:
            with open(first) as handle:
                document = json.load(handle)
            relative = [s["path"] for m in document["mixtures"] for s in m["sources"]]
        assert not any(os.path.isabs(p) for p in relative)
        assert all(os.path.isfile(os.path.join(sets, p)) for p in relative)

        dataset = FixedPromptMixtureDataset(first)
        assert len(dataset) == 4
        for item in dataset:
            assert item["conditions"] == list(prompts)
            assert item["targets"].shape == (len(prompts), 1, 2 * SR)
            torch.testing.assert_close(item["mixture"], item["targets"].sum(0), atol=1e-6, rtol=0)

    # The list and its audio move together: the copy renders the same, from the copy.
    moved = tmp_path / "moved"
    shutil.copytree(corpus["root"], moved)
    name = f"cinematic{extension}"
    original = FixedPromptMixtureDataset(str(sets / name))
    copy = FixedPromptMixtureDataset(str(moved / sets.name / name))
    assert all(p.startswith(str(moved)) for r in copy.recipes for p in r["paths"])
    torch.testing.assert_close(copy[1]["targets"], original[1]["targets"], atol=0, rtol=0)


def test_fixed_set_targets_are_the_listed_clips(corpus):
    path = write_prompt_test_set(
        str(corpus["root"] / "sets" / "enh.csv"),
        corpus["test"],
        "enhancement",
        3,
        seed=5,
        sample_rate=SR,
        segment_seconds=1.0,
        gain_ranges=GAINS,
        peak_limit=None,
    )
    table = pd.read_csv(path)
    dataset = FixedPromptMixtureDataset(path)
    for k, (mixture_id, rows) in enumerate(table.groupby("mixture_id")):
        item = dataset[k]
        for row in rows.itertuples():
            clip = os.path.normpath(os.path.join(os.path.dirname(path), row.path))
            gain_db, residual = _measured_gain_db(
                item["targets"][row.source, 0].numpy(), clip, row.offset, SR
            )
            assert abs(gain_db - row.gain_db) < 0.01 and residual < 1e-4
            assert item["conditions"][row.source] == row.prompt


def test_unified_manifest_from_a_musdb_folder(tmp_path):
    music = write_fake_musdb(tmp_path / "musdb", n_songs=2, seconds=1.0, stereo=False)
    os.remove(os.path.join(music, "train", "Artist 1 - Song", "vocals.wav"))
    csv_path = make_unified_manifest(str(tmp_path / "m" / "music.csv"), music_dir=music)
    table = pd.read_csv(csv_path)
    assert len(table) == 2 * 5 - 1
    assert Counter(table.category) == {
        "drums": 2,
        "bass": 2,
        "other": 2,
        "vocals": 1,
        "musicbg": 2,
    }
    assert set(table.song) == {"train/Artist 0 - Song", "train/Artist 1 - Song"}
    backgrounds = table[table.category == "musicbg"]
    assert all(p.endswith("/mixture.wav") and p.startswith("../musdb/") for p in backgrounds.path)
    for row in table.itertuples():
        assert row.path.split("/")[-2] == row.song.split("/")[1]
    os.makedirs(tmp_path / "empty" / "train")
    with pytest.raises(ValueError, match="holds no"):
        make_unified_manifest(str(tmp_path / "e.csv"), music_dir=str(tmp_path / "empty"))


def test_unified_corpus_categories_and_disjoint_talkers(corpus):
    train, test = pd.read_csv(corpus["train"]), pd.read_csv(corpus["test"])
    for table in (train, test):
        assert set(table.category) == {
            "speech",
            "sfx",
            "sfxbg",
            "drums",
            "bass",
            "vocals",
            "other",
            "musicbg",
        }
        events = table[table.category.isin(["sfx", "sfxbg"])]
        assert set(events[events.category == "sfxbg"].labels) == {"Rain", "Wind"}
    assert not set(train.speaker.dropna()) & set(test.speaker.dropna())
    assert set(train.song.dropna()).isdisjoint(test.song.dropna())


# ----------------------------------------------------------------------------- speech synth
def _envelope_spectrum(wav: np.ndarray, sample_rate: int) -> tuple:
    hop = sample_rate // 100
    frames = wav[: wav.size // hop * hop].reshape(-1, hop)
    envelope = np.sqrt(np.mean(frames**2, axis=1))
    envelope = (envelope - envelope.mean()) * np.hanning(envelope.size)
    return np.fft.rfftfreq(4096, 0.01), np.abs(np.fft.rfft(envelope, 4096)) ** 2


def _autocorrelation_pitch(wav: np.ndarray, sample_rate: int) -> np.ndarray:
    """Per-frame f0 (Hz) of clearly periodic, loud 40 ms frames; NaN elsewhere."""
    wav = sosfiltfilt(butter(4, 900, fs=sample_rate, output="sos"), wav)
    size, hop = int(0.04 * sample_rate), int(0.01 * sample_rate)
    starts = range(0, wav.size - size, hop)
    energy = np.array([np.sum(wav[s : s + size] ** 2) for s in starts])
    low_lag, high_lag = int(sample_rate / 400), int(sample_rate / 60)
    pitches = np.full(len(energy), np.nan)
    for i, s in enumerate(starts):
        if energy[i] < 0.2 * np.percentile(energy, 90):
            continue
        x = wav[s : s + size] - wav[s : s + size].mean()
        ac = np.correlate(x, x, "full")[size - 1 :]
        ac = ac / ac[0]
        lag = low_lag + int(np.argmax(ac[low_lag:high_lag]))
        if ac[lag] > 0.5:
            pitches[i] = sample_rate / lag
    return pitches


def test_speech_has_syllabic_modulation_near_4_to_5_hz():
    total, freqs = 0.0, None
    for s in range(6):
        speaker = make_speaker(np.random.default_rng([11, s]), f"s{s}")
        wav = synth_utterance(speaker, np.random.default_rng([12, s]), 16000, 8.0)
        freqs, spectrum = _envelope_spectrum(wav, 16000)
        total = total + spectrum
    band = (freqs > 1.5) & (freqs < 15)
    peak = freqs[band][np.argmax(total[band])]
    assert 3.5 <= peak <= 5.5, peak
    syllabic = total[(freqs >= 3) & (freqs <= 6)].mean()
    assert syllabic > 3 * total[(freqs >= 9) & (freqs <= 15)].mean()


@pytest.mark.parametrize("sex", ["male", "female"])
def test_speaker_pitch_is_in_range_and_tracks_the_contour(sex):
    low, high = F0_RANGES[sex]
    for s in range(3):
        speaker = make_speaker(np.random.default_rng([21, s]), "x", sex)
        assert low <= speaker.f0 <= high
        wav, f0, voiced = synth_utterance(
            speaker, np.random.default_rng([22, s]), 16000, 4.0, return_f0=True
        )
        measured = _autocorrelation_pitch(wav, 16000)
        found = ~np.isnan(measured)
        assert found.sum() > 80  # > 0.8 s of clearly voiced frames
        assert 0.9 * low <= np.median(measured[found]) <= 1.1 * high
        assert abs(np.median(measured[found]) / speaker.f0 - 1) < 0.12
        centres = np.arange(measured.size) * 160 + 320
        relative_error = np.abs(measured[found] / f0[centres[found]] - 1)
        assert np.median(relative_error) < 0.05


@pytest.mark.parametrize("rate", [SR, 2 * SR])
def test_long_files_are_read_piecewise_and_not_cached(corpus, rate):
    song = os.path.join(corpus["music"], "train", "Artist 0 - Song", "mixture.wav")
    whole = MultiChannelClipStore(rate, channels=2)
    piecewise = MultiChannelClipStore(rate, channels=2, max_cached_seconds=1.0)
    for offset in (0, 3 * rate - 7, 4 * rate - 100):
        expected, piece = whole.crop(song, offset, rate), piecewise.crop(song, offset, rate)
        assert piece.shape == expected.shape == (2, rate)
        if rate == SR:
            np.testing.assert_array_equal(piece, expected)
        else:  # resampled alone: equal away from the piece's edges
            np.testing.assert_allclose(piece[:, 64:-64], expected[:, 64:-64], atol=2e-3)
    assert song in whole._clips and not piecewise._clips
    assert piecewise.gain(song) == pytest.approx(whole.gain(song), rel=1e-6)
    assert not piecewise._clips
