"""LibriMix through Asteroid's class (on a fake metadata folder), and the built-in two- and
three-talker set (different talkers, mixture = sum of talkers, fixed lists reproducible)."""

import filecmp
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from asteroid_lass.data.librimix import (
    LibriMixDataset,
    copy_librimix_metadata,
    fixed_speech_mixtures,
    speech_mixtures,
    write_librimix_subset,
    write_speech_test_set,
)
from asteroid_lass.data.speech_synth import make_speech_corpus
from asteroid_lass.errors import LASSInputError

SR = 8000
LENGTHS = [12000, 9000, 5000, 3000]  # the last is shorter than a 0.5 s segment


def write_fake_librimix(root, n_src=2, rate=SR, subsets=("train-100",), kinds=("clean",)):
    """``root/wav/<id>_{mix,s1,..}.wav`` (noise; mixture = sum of sources) and
    ``root/metadata/mixture_<subset>_mix_<kind>.csv`` in LibriMix's columns."""
    rng = np.random.default_rng(n_src)
    os.makedirs(root / "wav", exist_ok=True)
    os.makedirs(root / "metadata", exist_ok=True)
    rows = []
    for index, length in enumerate(LENGTHS):
        mixture_id = f"{index}-100-000{index}_{index + 7}-200-000{index}"
        row = dict(mixture_ID=mixture_id)
        sources = rng.uniform(-0.3, 0.3, (n_src, length)).astype(np.float32)
        row["mixture_path"] = str(root / "wav" / f"{mixture_id}_mix.wav")
        sf.write(row["mixture_path"], sources.sum(axis=0), rate, subtype="FLOAT")
        for k in range(n_src):
            row[f"source_{k + 1}_path"] = str(root / "wav" / f"{mixture_id}_s{k + 1}.wav")
            sf.write(row[f"source_{k + 1}_path"], sources[k], rate, subtype="FLOAT")
        row["length"] = length
        rows.append(row)
    for subset in subsets:
        for kind in kinds:
            path = root / "metadata" / f"mixture_{subset}_mix_{kind}.csv"
            pd.DataFrame(rows).to_csv(path, index=False)
    return root / "metadata", rows


def read(path):
    return sf.read(path, dtype="float32")[0]


def test_whole_items_are_the_files_samples(tmp_path):
    csv_dir, rows = write_fake_librimix(tmp_path)
    dataset = LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=2, segment=None)
    assert len(dataset) == len(rows)
    for index, row in enumerate(rows):
        item = dataset[index]
        assert item["conditions"] is None and item["mixture_id"] == row["mixture_ID"]
        assert item["mixture"].shape == (1, row["length"])
        assert item["targets"].shape == (2, 1, row["length"])
        assert torch.equal(item["mixture"][0], torch.from_numpy(read(row["mixture_path"])))
        for k in range(2):
            expected = torch.from_numpy(read(row[f"source_{k + 1}_path"]))
            assert torch.equal(item["targets"][k, 0], expected)


def test_crops_are_aligned_and_reproducible(tmp_path):
    csv_dir, rows = write_fake_librimix(tmp_path)
    dataset = LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=2, segment=0.5, seed=3)
    assert len(dataset) == 3  # the 3000-sample row is shorter than 4000 and dropped (Asteroid)
    starts = {}
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        for index, row in enumerate(rows[:3]):
            item = dataset[index]
            assert item["mixture"].shape == (1, 4000) and item["targets"].shape == (2, 1, 4000)
            # Where the crop lies in the file, by brute force; sources cut at the same place.
            whole = read(row["mixture_path"])
            crop = item["mixture"][0].numpy()
            found = [
                s for s in range(len(whole) - 3999) if np.array_equal(whole[s : s + 4000], crop)
            ]
            assert len(found) == 1
            start = found[0]
            for k in range(2):
                source = read(row[f"source_{k + 1}_path"])[start : start + 4000]
                assert np.array_equal(item["targets"][k, 0].numpy(), source)
            starts[epoch, index] = start
            assert torch.equal(dataset[index]["mixture"], item["mixture"])  # same epoch: same
    # Another epoch draws other crops (12000- and 9000-sample rows have thousands of starts).
    assert starts[0, 0] != starts[1, 0] or starts[0, 1] != starts[1, 1]
    fixed = LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=2, segment=0.5, fixed=True)
    first = [fixed[i]["mixture"] for i in range(3)]
    fixed.set_epoch(5)
    assert all(torch.equal(fixed[i]["mixture"], first[i]) for i in range(3))
    again = LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=2, segment=0.5, fixed=True)
    assert all(torch.equal(again[i]["mixture"], first[i]) for i in range(3))


def test_three_talkers(tmp_path):
    csv_dir, rows = write_fake_librimix(tmp_path, n_src=3)
    dataset = LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=3, segment=None)
    item = dataset[1]
    assert item["targets"].shape == (3, 1, LENGTHS[1])
    assert torch.equal(item["targets"][2, 0], torch.from_numpy(read(rows[1]["source_3_path"])))
    # The fake mixture is the sum of its sources (float32 files).
    assert torch.allclose(item["targets"].sum(0), item["mixture"], atol=1e-6)


def _one_line_error(call, *fragments):
    with pytest.raises(LASSInputError) as info:
        call()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_clear_errors(tmp_path):
    csv_dir, _ = write_fake_librimix(tmp_path / "two")
    missing = str(tmp_path / "nowhere")
    _one_line_error(lambda: LibriMixDataset(missing), missing, "not found")
    empty = tmp_path / "empty"
    empty.mkdir()
    _one_line_error(lambda: LibriMixDataset(str(empty)), str(empty), "mix_clean.csv", "no")
    # A clean-only folder has no metadata for the noisy task.
    _one_line_error(lambda: LibriMixDataset(str(csv_dir), "sep_noisy"), "mix_both.csv", "sep_noisy")
    _one_line_error(
        lambda: LibriMixDataset(str(csv_dir), "sep_clean", SR, n_src=3),
        "mixture_train-100_mix_clean.csv",
        "source_3_path",
        "n_src=3",
    )
    _one_line_error(
        lambda: LibriMixDataset(str(csv_dir), "sep_clean", 16000, n_src=2),
        "8000 Hz",
        "sample_rate=16000",
        "_mix.wav",
    )
    # A whole metadata folder (several subsets) is ambiguous for Asteroid's class.
    raw, _ = write_fake_librimix(tmp_path / "raw", subsets=("train-100", "dev"))
    _one_line_error(lambda: LibriMixDataset(str(raw)), "2 (", "one subset's folder")
    _one_line_error(
        lambda: copy_librimix_metadata(str(raw), str(tmp_path / "out"), {"train": "train-360"}),
        "train-360",
        "['dev', 'train-100']",
    )
    _one_line_error(
        lambda: copy_librimix_metadata(str(raw), str(tmp_path / "out"), {"x": "dev"}, n_src=3),
        "source_3_path",
    )


def test_metadata_subsets(tmp_path):
    raw, rows = write_fake_librimix(tmp_path, subsets=("train-100", "dev"), kinds=("clean", "both"))
    folders = copy_librimix_metadata(
        str(raw), str(tmp_path / "local"), {"train": "train-100", "valid": "dev"}, n_src=2
    )
    assert sorted(os.listdir(folders["valid"])) == [
        "mixture_dev_mix_both.csv",
        "mixture_dev_mix_clean.csv",
    ]
    train = LibriMixDataset(folders["train"], "sep_noisy", SR, segment=None)
    assert len(train) == len(rows)
    subset = write_librimix_subset(folders["valid"], str(tmp_path / "lists" / "valid"), 2, seed=1)
    clean = pd.read_csv(os.path.join(subset, "mixture_dev_mix_clean.csv"))
    both = pd.read_csv(os.path.join(subset, "mixture_dev_mix_both.csv"))
    assert len(clean) == 2 and list(clean["mixture_ID"]) == list(both["mixture_ID"])
    again = write_librimix_subset(folders["valid"], str(tmp_path / "again"), 2, seed=1)
    assert filecmp.cmp(
        os.path.join(subset, "mixture_dev_mix_clean.csv"),
        os.path.join(again, "mixture_dev_mix_clean.csv"),
        shallow=False,
    )


# ----------------------------------------------------------------------------- built-in set
@pytest.fixture(scope="module")
def speech_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("speech")
    return {
        split: make_speech_corpus(
            str(root),
            n_speakers=4,
            utterances_per_speaker=2,
            sample_rate=SR,
            seconds_range=(1.5, 2.5),
            split=split,
        )
        for split in ("train", "test")
    }


def _speakers(manifest_path):
    table = pd.read_csv(manifest_path)
    root = os.path.dirname(os.path.abspath(manifest_path))
    return {os.path.normpath(os.path.join(root, p)): s for p, s in zip(table.path, table.speaker)}


def test_train_and_test_talkers_are_disjoint(speech_corpus):
    train, test = (set(_speakers(speech_corpus[s]).values()) for s in ("train", "test"))
    assert len(train) == 4 and len(test) == 4 and not train & test


@pytest.mark.parametrize("n_src", [2, 3])
def test_dynamic_mixtures_of_different_talkers(speech_corpus, n_src):
    speakers = _speakers(speech_corpus["train"])
    dataset = speech_mixtures(speech_corpus["train"], n_src, SR, 1.0, items_per_epoch=6, seed=0)
    simulator = dataset.dataset
    previous = None
    for epoch in (0, 1):
        dataset.set_epoch(epoch)
        items = [dataset[i] for i in range(len(dataset))]
        for index, item in enumerate(items):
            assert item["conditions"] is None
            assert item["mixture"].shape == (1, SR) and item["targets"].shape == (n_src, 1, SR)
            assert torch.allclose(item["targets"].sum(0), item["mixture"], atol=1e-6)
            assert (item["targets"].square().mean(-1) > 0).all()
            talkers = [speakers[p] for p in simulator.recipe(index)["paths"]]
            assert len(set(talkers)) == n_src, talkers
        assert torch.equal(dataset[0]["mixture"], items[0]["mixture"])  # reproducible
        if previous is not None:  # fresh mixtures every epoch
            assert not torch.equal(previous, items[0]["mixture"])
        previous = items[0]["mixture"]
    with pytest.raises(LASSInputError, match="4 talker"):
        speech_mixtures(speech_corpus["train"], 5, SR, 1.0, items_per_epoch=2)


def test_fixed_list_is_reproducible_from_its_csv(speech_corpus, tmp_path):
    speakers = _speakers(speech_corpus["test"])
    paths = [str(tmp_path / name) for name in ("a.csv", "b.csv")]
    for path in paths:
        write_speech_test_set(
            path, speech_corpus["test"], 3, n=4, seed=2, sample_rate=SR, segment_seconds=1.5
        )
    assert filecmp.cmp(paths[0], paths[1], shallow=False)
    table = pd.read_csv(paths[0])
    assert list(table.columns) == ["mixture_id", "source", "prompt", "path", "offset", "gain_db"]
    assert table.gain_db.between(-10.0, -2.0).all()  # LibriMix's -33..-25 LUFS after -23 LUFS
    for _, sources in table.groupby("mixture_id"):
        clips = [os.path.normpath(os.path.join(tmp_path, p)) for p in sources.path]
        assert len({speakers[c] for c in clips}) == 3
    first, second = fixed_speech_mixtures(paths[0]), fixed_speech_mixtures(paths[1])
    assert len(first) == 4
    for index in range(4):
        item = first[index]
        assert item["conditions"] is None and item["targets"].shape == (3, 1, int(1.5 * SR))
        assert torch.allclose(item["targets"].sum(0), item["mixture"], atol=1e-6)
        assert torch.equal(item["mixture"], second[index]["mixture"])
        assert torch.equal(item["targets"], second[index]["targets"])
    with pytest.raises(LASSInputError, match="has n_src 3, but 2 was asked"):
        fixed_speech_mixtures(paths[0], n_src=2)
    with pytest.raises(LASSInputError, match="has sample_rate 8000, but 16000"):
        fixed_speech_mixtures(paths[0], sample_rate=16000)


def test_fixed_librimix_folder(tmp_path):
    csv_dir, rows = write_fake_librimix(tmp_path)
    fixed = fixed_speech_mixtures(str(csv_dir), SR, 2, segment=0.5)
    assert len(fixed) == 3 and fixed[0]["mixture"].shape == (1, 4000)
    fixed.set_epoch(3)
    assert torch.equal(
        fixed[0]["mixture"], fixed_speech_mixtures(str(csv_dir), SR, 2, segment=0.5)[0]["mixture"]
    )
    whole = fixed_speech_mixtures(str(csv_dir), SR, 2)
    assert [whole[i]["mixture"].shape[-1] for i in range(len(whole))] == LENGTHS
