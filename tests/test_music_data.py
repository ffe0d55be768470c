"""MUSDB18 dataset on a fake MUSDB18-HQ folder, and the built-in synthetic music corpus."""

import importlib.util
import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch

from asteroid_lass.data.music_synth import STEMS, default_soundfont, make_music_corpus
from asteroid_lass.data.musdb import MUSDB_LICENSE, MUSDB18Dataset
from conftest import write_wav

SR = 8000
SECONDS = 2.0
SONGS = ("Alpha - One", "Beta - Two", "Gamma - Three")


def _code(song: int, stem: int) -> float:
    """The constant that channel 0 of ``stem`` of ``song`` holds."""
    return 0.1 * (song + 1) + 0.01 * (stem + 1)


def _write_fake_musdb(root, songs=SONGS, seconds=SECONDS, subsets=("train", "test")) -> str:
    """Channel 0 of every stem is a constant naming its song and stem; channel 1 is a ramp
    0..1 naming the position in the song, so crops and offsets can be read back."""
    n = int(SECONDS * SR) if seconds is None else int(seconds * SR)
    ramp = np.arange(n, dtype=np.float32) / n
    for subset in subsets:
        for s, song in enumerate(songs):
            folder = root / subset / song
            folder.mkdir(parents=True)
            stems = [np.stack([np.full(n, _code(s, j), np.float32), ramp]) for j in range(4)]
            for name, wav in zip(STEMS, stems):
                write_wav(folder / f"{name}.wav", wav, SR)
            write_wav(folder / "mixture.wav", sum(stems), SR)
    return str(root)


@pytest.fixture(scope="module")
def fake_musdb(tmp_path_factory):
    return _write_fake_musdb(tmp_path_factory.mktemp("musdb"))


def _song_of(stem_wav: torch.Tensor, stem: int) -> int:
    """Which song a stem crop came from (its channel-0 constant)."""
    value = float(stem_wav[0].mean())
    matches = [s for s in range(len(SONGS)) if abs(value - _code(s, stem)) < 1e-5]
    assert len(matches) == 1, f"constant {value} names no song for stem {STEMS[stem]}"
    assert torch.allclose(stem_wav[0], torch.full_like(stem_wav[0], value), atol=1e-6)
    return matches[0]


def test_items_sum_crop_and_come_from_one_song(fake_musdb):
    data = MUSDB18Dataset(fake_musdb, "train", segment=0.5, validation_tracks=[], seed=1)
    assert len(data) == 3 and data.sample_rate == SR
    for index in range(len(data)):
        item = data[index]
        assert item["mixture"].shape == (2, 4000) and item["mixture"].dtype == torch.float32
        assert item["targets"].shape == (4, 2, 4000)
        assert item["conditions"] == list(STEMS)
        torch.testing.assert_close(item["mixture"], item["targets"].sum(0), atol=1e-6, rtol=0)
        songs = {_song_of(item["targets"][j], j) for j in range(4)}
        assert songs == {index}  # item i of an epoch is song i (samples_per_track=1)
        ramp = item["targets"][:, 1]
        # one offset for all stems, and a contiguous crop of it
        torch.testing.assert_close(ramp, ramp[:1].expand(4, -1))
        torch.testing.assert_close(ramp[0, 1:] - ramp[0, :-1], torch.full((3999,), 1 / 16000))


def test_shuffled_items_mix_songs_and_still_sum(fake_musdb):
    data = MUSDB18Dataset(
        fake_musdb,
        "train",
        segment=0.5,
        shuffle_p=1.0,
        samples_per_track=8,
        validation_tracks=[],
    )
    mixed = 0
    for index in range(len(data)):
        item = data[index]
        torch.testing.assert_close(item["mixture"], item["targets"].sum(0), atol=1e-6, rtol=0)
        songs = [_song_of(item["targets"][j], j) for j in range(4)]  # drums from a drums stem
        mixed += len(set(songs)) > 1
    assert mixed >= len(data) // 2  # 1 - 3 * (1/3)^4 of items mix songs on average


def test_target_subset_order_and_mixture_of_all_stems(fake_musdb):
    data = MUSDB18Dataset(
        fake_musdb, "train", targets=["vocals", "drums"], segment=0.25, validation_tracks=[]
    )
    item = data[2]
    assert item["conditions"] == ["vocals", "drums"] and item["targets"].shape == (2, 2, 2000)
    assert _song_of(item["targets"][0], 3) == 2 and _song_of(item["targets"][1], 0) == 2
    expected = sum(_code(2, j) for j in range(4))  # the mixture keeps bass and other
    torch.testing.assert_close(item["mixture"][0], torch.full((2000,), expected), atol=1e-5, rtol=0)
    accompaniment = MUSDB18Dataset(
        fake_musdb, "train", targets=["accompaniment"], segment=0.25, validation_tracks=[]
    )[1]["targets"][0, 0]
    torch.testing.assert_close(
        accompaniment, torch.full((2000,), sum(_code(1, j) for j in range(3))), atol=1e-5, rtol=0
    )


def test_determinism_per_seed_epoch_index(fake_musdb):
    def offsets(data):
        return [float(data[i]["targets"][0, 1, 0]) for i in range(len(data))]

    kwargs = dict(segment=0.25, shuffle_p=0.5, gain_range=(0.5, 1.5), validation_tracks=[])
    a = MUSDB18Dataset(fake_musdb, "train", seed=3, **kwargs)
    b = MUSDB18Dataset(fake_musdb, "train", seed=3, **kwargs)
    for i in range(3):
        torch.testing.assert_close(a[i]["mixture"], b[i]["mixture"], atol=0, rtol=0)
    first = offsets(a)
    assert offsets(a) == first  # re-reading an epoch gives the same items
    a.set_epoch(1)
    assert offsets(a) != first
    a.set_epoch(0)
    assert offsets(a) == first
    assert offsets(MUSDB18Dataset(fake_musdb, "train", seed=4, **kwargs)) != first


def test_gain_mono_and_resampling(fake_musdb):
    gained = MUSDB18Dataset(
        fake_musdb, "train", segment=0.25, gain_range=(0.25, 0.5), validation_tracks=[]
    )[0]
    torch.testing.assert_close(gained["mixture"], gained["targets"].sum(0), atol=1e-6, rtol=0)
    ratios = gained["targets"][:, 0, 0] / torch.tensor([_code(0, j) for j in range(4)])
    assert torch.all((ratios >= 0.25) & (ratios <= 0.5)) and len(set(ratios.tolist())) == 4
    mono = MUSDB18Dataset(fake_musdb, "test", segment=0.25, mono=True)[0]
    assert mono["mixture"].shape == (1, 2000) and mono["targets"].shape == (4, 1, 2000)
    stereo = MUSDB18Dataset(fake_musdb, "test", segment=0.25)[0]
    torch.testing.assert_close(mono["targets"][:, 0], stereo["targets"].mean(1))
    up = MUSDB18Dataset(fake_musdb, "test", segment=0.25, sample_rate=16000)[0]
    assert up["mixture"].shape == (2, 4000)
    torch.testing.assert_close(
        up["targets"][2, 0, 100:-100], torch.full((3800,), _code(0, 2)), atol=1e-3, rtol=0
    )


def test_fixed_mode_whole_tracks_and_excerpts(fake_musdb):
    whole = MUSDB18Dataset(fake_musdb, "test", segment=None, fixed=True)
    assert len(whole) == 3
    assert [whole[i]["track"] for i in range(3)] == sorted(SONGS)
    assert whole[0]["mixture"].shape == (2, int(SECONDS * SR))
    excerpts = MUSDB18Dataset(fake_musdb, "test", segment=0.75, fixed=True, targets=["bass"])
    assert len(excerpts) == 3 * 3  # starts 0, 0.75, 1.5 s; the last one padded
    items = [excerpts[i] for i in range(3)]
    assert [it["offset"] for it in items] == [0.0, 0.75, 1.5]
    assert all(it["track"] == SONGS[0] for it in items)
    assert float(items[1]["targets"][0, 1, 0]) == pytest.approx(0.375, abs=1e-6)
    assert torch.all(items[2]["targets"][0, :, 4000:] == 0)  # past the end: zeros
    limited = MUSDB18Dataset(
        fake_musdb, "test", segment=0.5, fixed=True, excerpt_hop=1.0, excerpts_per_track=1
    )
    assert len(limited) == 3
    from_file = MUSDB18Dataset(fake_musdb, "test", segment=None, fixed=True, mixture_from="file")
    torch.testing.assert_close(from_file[1]["mixture"], whole[1]["mixture"], atol=1e-6, rtol=0)


def test_valid_split_and_infos(fake_musdb):
    train = MUSDB18Dataset(fake_musdb, "train", validation_tracks=[SONGS[1]], segment=0.25)
    valid = MUSDB18Dataset(fake_musdb, "valid", validation_tracks=[SONGS[1]], segment=0.25)
    assert [t.name for t in train.tracks] == [SONGS[0], SONGS[2]]
    assert [t.name for t in valid.tracks] == [SONGS[1]]
    with pytest.raises(ValueError, match="no songs for split 'valid'"):
        MUSDB18Dataset(fake_musdb, "valid", segment=0.25)  # musdb's names are not there
    assert train.get_infos()["licenses"] == [MUSDB_LICENSE]
    assert MUSDB_LICENSE["non_commercial"] is True


def test_clear_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        MUSDB18Dataset(str(tmp_path / "nowhere"))
    (tmp_path / "empty" / "train").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"empty.*train.*is empty"):
        MUSDB18Dataset(str(tmp_path / "empty"))
    root = _write_fake_musdb(tmp_path / "broken", songs=("Song",), subsets=("train",))
    os.remove(os.path.join(root, "train", "Song", "bass.wav"))
    with pytest.raises(ValueError, match=r"Song: missing stem files \['bass.wav'\]"):
        MUSDB18Dataset(root, validation_tracks=[])
    with pytest.raises(FileNotFoundError, match="no 'test' folder"):
        MUSDB18Dataset(root, "test")
    with pytest.raises(ValueError, match="targets"):
        MUSDB18Dataset(root, targets=["piano"], validation_tracks=[])
    with pytest.raises(ValueError, match="fixed=True"):
        MUSDB18Dataset(root, segment=None, validation_tracks=[])


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="the musdb package needs ffmpeg")
def test_musdb_package_backend_reads_the_same_audio(fake_musdb):
    direct = MUSDB18Dataset(fake_musdb, "test", segment=0.5, fixed=True, excerpt_hop=0.5)
    package = MUSDB18Dataset(
        fake_musdb, "test", segment=0.5, fixed=True, excerpt_hop=0.5, backend="musdb"
    )
    assert package.backend == "musdb" and len(package) == len(direct) == 12
    for index in (0, 5):  # 16-bit decoding through ffmpeg: within one quantisation step
        torch.testing.assert_close(
            package[index]["targets"], direct[index]["targets"], atol=1e-4, rtol=0
        )


# ---------------------------------------------------------------------------------------
# The synthetic corpus
# ---------------------------------------------------------------------------------------

CORPUS_SR = 16000
CORPUS_SECONDS = 12.0


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("music"))
    make_music_corpus(root, 3, 1, CORPUS_SECONDS, CORPUS_SR, seed=7, num_workers=2)
    with open(os.path.join(root, "corpus.json")) as handle:
        return root, json.load(handle)


def _read(root, split, song, stem):
    wav, rate = sf.read(os.path.join(root, split, song, f"{stem}.wav"), dtype="float32")
    assert rate == CORPUS_SR
    return wav.T


def _onset_acf(wav: np.ndarray, sr: int) -> np.ndarray:
    """Autocorrelation (1 at lag 0, unbiased) of the spectral-flux onset strength, 100 Hz."""
    x = wav.mean(axis=0)
    hop, n_fft = sr // 100, 1024
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]
    spec = np.log1p(100 * np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1)))
    flux = np.maximum(np.diff(spec, axis=0), 0).sum(axis=1)
    flux -= flux.mean()
    acf = np.correlate(flux, flux, mode="full")[flux.size - 1 :]
    acf /= np.arange(flux.size, 0, -1)  # long lags overlap less
    return acf / acf[0]


def _bar_contrast(acf: np.ndarray, beat: float) -> float:
    """How much the ACF peaks at a bar (4 beats) over half a 16th note either side: high when
    the stem's onsets repeat bar after bar at this tempo, about 0 otherwise."""
    bar, half_16th = 400 * beat, 100 * beat / 8  # in 10 ms frames

    def near(lag):
        return acf[int(round(lag)) - 2 : int(round(lag)) + 3].max()

    return near(bar) - max(near(bar - half_16th), near(bar + half_16th))


def test_corpus_layout_sum_and_levels(corpus):
    root, meta = corpus
    assert sorted(os.listdir(os.path.join(root, "train"))) == sorted(meta["songs"]["train"])
    assert len(meta["songs"]["train"]) == 3 and len(meta["songs"]["test"]) == 1
    for split in ("train", "test"):
        for song in meta["songs"][split]:
            stems = {s: _read(root, split, song, s) for s in STEMS}
            mixture = _read(root, split, song, "mixture")
            assert mixture.shape == (2, int(CORPUS_SECONDS * CORPUS_SR))
            total = np.zeros_like(mixture)
            for name in STEMS:  # the written order: bit-exact
                total += stems[name]
            assert np.array_equal(mixture, total)
            assert 0.3 < np.abs(mixture).max() < 1.0
            for name, wav in stems.items():
                rms_db = 10 * np.log10(np.mean(wav.astype(np.float64) ** 2))
                assert np.abs(wav).max() < 1.0 and -50 < rms_db < -6, (song, name, rms_db)
                assert not np.array_equal(wav[0], wav[1])  # stereo, not dual mono


def test_corpus_stems_share_the_song_tempo(corpus):
    root, meta = corpus
    songs = []
    for split in ("train", "test"):
        for song, info in meta["songs"][split].items():
            acfs = [_onset_acf(_read(root, split, song, s), CORPUS_SR) for s in ("drums", "bass")]
            songs.append((60.0 / info["bpm"], acfs))
    for beat, acfs in songs:  # drums and bass both repeat at the song's bar
        assert min(_bar_contrast(acf, beat) for acf in acfs) > 0.3
    # the check can fail: another song's tempo mostly does not fit both stems
    fits, pairs = 0, 0
    for beat, acfs in songs:
        for other_beat, _ in songs:
            if abs(other_beat / beat - 1) > 0.05:
                pairs += 1
                fits += min(_bar_contrast(acf, other_beat) for acf in acfs) > 0.3
    assert pairs >= 6 and fits <= pairs // 3


def test_corpus_is_deterministic_and_song_depends_on_its_index_only(corpus, tmp_path):
    root, meta = corpus
    make_music_corpus(str(tmp_path), 1, 0, CORPUS_SECONDS, CORPUS_SR, seed=7)
    (song,) = os.listdir(tmp_path / "train")
    assert song in meta["songs"]["train"]
    for stem in STEMS + ("mixture",):
        assert np.array_equal(
            _read(str(tmp_path), "train", song, stem), _read(root, "train", song, stem)
        )
    other = tmp_path / "other"
    make_music_corpus(str(other), 1, 0, 3.0, CORPUS_SR, seed=8, stereo=False)
    (other_song,) = os.listdir(other / "train")
    mono = sf.read(str(other / "train" / other_song / "vocals.wav"))[0]
    assert mono.ndim == 1  # stereo=False writes one channel


def test_corpus_reads_as_musdb(corpus):
    root, meta = corpus
    data = MUSDB18Dataset(root, "train", segment=2.0, validation_tracks=[], shuffle_p=0.5)
    item = data[0]
    assert item["mixture"].shape == (2, 2 * CORPUS_SR)
    torch.testing.assert_close(item["mixture"], item["targets"].sum(0), atol=1e-5, rtol=0)
    assert data.get_infos()["licenses"][0]["license"] == "MIT"


def _has_soundfont() -> bool:
    if importlib.util.find_spec("tinysoundfont") is None:
        return False
    try:
        return bool(default_soundfont())
    except ImportError:
        return False


def test_corpus_rejects_unknown_instruments(tmp_path):
    with pytest.raises(ValueError, match="instruments"):
        make_music_corpus(str(tmp_path), 1, 0, 1.0, CORPUS_SR, instruments="orchestra")


@pytest.mark.skipif(not _has_soundfont(), reason="needs tinysoundfont and pretty_midi's .sf2")
def test_soundfont_instruments_follow_the_same_score(tmp_path):
    make_music_corpus(str(tmp_path), 1, 0, 8.0, CORPUS_SR, seed=3, instruments="soundfont")
    with open(tmp_path / "corpus.json") as handle:
        meta = json.load(handle)
    assert meta["instruments"] == "soundfont" and meta["soundfont"] == "TimGM6mb.sf2"
    ((song, info),) = meta["songs"]["train"].items()
    stems = {s: _read(str(tmp_path), "train", song, s) for s in STEMS}
    mixture = _read(str(tmp_path), "train", song, "mixture")
    np.testing.assert_allclose(mixture, sum(stems.values()), atol=1e-6)
    assert 0.3 < np.abs(mixture).max() < 1.0
    beat = 60.0 / info["bpm"]
    for name in ("drums", "bass"):
        assert _bar_contrast(_onset_acf(stems[name], CORPUS_SR), beat) > 0.3
