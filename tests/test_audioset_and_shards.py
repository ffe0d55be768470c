import os

import numpy as np
import soundfile as sf
import torch

from asteroid_lass.data import load_manifest
from asteroid_lass.data.batch import collate_separation
from asteroid_lass.data.audioset import prepare_audioset, ytid_from_filename
from asteroid_lass.data.augment import Augmentation
from asteroid_lass.data.shards import ShardedQueryMixtureDataset, iterate_shard_clips, write_shards
from conftest import small_corpus

CLASS_LABELS = """index,mid,display_name
0,/m/09x0r,"Speech"
1,/m/0bt9lr,"Dog"
2,/m/05tny_,"Bark"
3,/m/04rlf,"Music"
"""
HEADER = "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=4, num_segs=4, num_unique_labels=4, num_positive_labels=5\n# YTID, start_seconds, end_seconds, positive_labels\n"


def test_ytid_from_the_usual_file_names():
    assert ytid_from_filename("Y--PJHxphWEs.wav") == "--PJHxphWEs"
    assert ytid_from_filename("--PJHxphWEs_30.000.flac") == "--PJHxphWEs"
    assert ytid_from_filename("Y_a_b-c_d_ef_30000_40000.wav") == "_a_b-c_d_ef"
    assert ytid_from_filename("abcdefghijk.ogg") == "abcdefghijk"
    assert ytid_from_filename("short.wav") is None


def test_prepare_audioset_on_a_fake_layout(tmp_path):
    audio = tmp_path / "audioset"
    (audio / "sub").mkdir(parents=True)
    (tmp_path / "class_labels_indices.csv").write_text(CLASS_LABELS)
    train_ids = ["--PJHxphWEs", "-0RWZT-miFs", "_a_b-c_d_ef", "zzzzzzzzzzz"]
    (tmp_path / "balanced_train_segments.csv").write_text(
        HEADER
        + "".join(
            (
                f'{y}, 30.000, 40.000, "/m/0bt9lr,/m/05tny_"\n'
                if i % 2 == 0
                else f'{y}, 0.000, 10.000, "/m/04rlf"\n'
            )
            for i, y in enumerate(train_ids)
        )
    )
    (tmp_path / "eval_segments.csv").write_text(
        HEADER + '-0RWZT-miFs, 0.000, 10.000, "/m/09x0r"\nmissingidxx, 0.000, 10.000, "/m/09x0r"\n'
    )
    rng = np.random.default_rng(0)
    sf.write(audio / "Y--PJHxphWEs.wav", rng.standard_normal((44100, 2)) * 0.1, 44100)
    sf.write(audio / "sub" / "-0RWZT-miFs_0.000.flac", rng.standard_normal(8000) * 0.1, 16000)
    sf.write(audio / "Y_a_b-c_d_ef_30000_40000.wav", rng.standard_normal(48000 * 2) * 0.1, 48000)

    report = prepare_audioset(
        str(audio),
        str(tmp_path),
        str(tmp_path / "out"),
        sample_rate=32000,
        splits=("balanced_train", "eval", "unbalanced_train"),
        workers=2,
        progress=False,
    )
    assert report == {
        "balanced_train": dict(listed=4, found=3, missing=1, failed=0),
        "eval": dict(listed=2, found=1, missing=1, failed=0),
    }
    train = load_manifest(str(tmp_path / "out" / "balanced_train.csv"))
    assert sorted(train["labels"]) == ["Dog;Bark", "Dog;Bark", "Music"]
    assert set(train["sample_rate"]) == {32000}
    durations = dict(zip([os.path.basename(p) for p in train["path"]], train["duration"]))
    assert durations == {"--PJHxphWEs.wav": 1.0, "-0RWZT-miFs.wav": 0.5, "_a_b-c_d_ef.wav": 2.0}
    assert sf.info(str(tmp_path / "out" / "balanced_train" / "--PJHxphWEs.wav")).channels == 1
    assert (tmp_path / "out" / "balanced_train_missing.txt").read_text() == "zzzzzzzzzzz\n"
    assert load_manifest(str(tmp_path / "out" / "eval.csv"))["labels"].tolist() == ["Speech"]


def test_shards_round_trip_and_stream_label_disjoint_mixtures(tmp_path):
    manifest = small_corpus(tmp_path, ["Siren", "Drum", "Wind", "Bell"], 3, seconds_range=(1, 1.5))
    table = load_manifest(manifest)
    shards = write_shards(table, str(tmp_path / "shards"), sample_rate=8000, clips_per_shard=5)
    assert [os.path.basename(s) for s in shards] == [
        "shard-000000.tar",
        "shard-000001.tar",
        "shard-000002.tar",
    ]
    clips = list(iterate_shard_clips(shards))
    assert len(clips) == len(table)
    for (wav, rate, meta), row in zip(clips, table.itertuples()):
        original = sf.read(row.path, dtype="float32")[0]
        assert rate == 8000 and meta["labels"] == row.label_list and meta["caption"] == row.caption
        np.testing.assert_allclose(wav, original, atol=2e-7)  # 24-bit FLAC

    dataset = ShardedQueryMixtureDataset(
        shards,
        8000,
        segment_seconds=0.5,
        max_interferers=2,
        pool_size=8,
        items_per_epoch=30,
        seed=0,
    )
    items = list(dataset)
    assert len(items) == 30
    for item in items:
        assert item["mixture"].shape == (1, 4000) and item["targets"].shape == (1, 1, 4000)
        assert len(item["conditions"]) == 1
        assert item["conditions"][0] in {"Siren", "Drum", "Wind", "Bell"}
        assert item["mixture"].abs().max() <= 0.9 + 1e-6
        # The target is in the mixture: what is left (the interferers) is not the target.
        assert (item["mixture"] - item["targets"][0]).abs().max() > 1e-3
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=5, num_workers=2, collate_fn=collate_separation
    )
    batches = list(loader)
    assert sum(batch["mixture"].shape[0] for batch in batches) == 30
    assert all(batch["targets"].shape == (5, 1, 1, 4000) for batch in batches)
    assert all(len(batch["conditions"]) == 5 for batch in batches)
    again = list(dataset)
    assert len(again) == 30 and torch.equal(again[0]["mixture"], items[0]["mixture"])
    # Transposed sources are cropped longer and come back a segment long.
    pitched = ShardedQueryMixtureDataset(
        shards,
        8000,
        segment_seconds=0.5,
        pool_size=8,
        items_per_epoch=6,
        seed=0,
        augmentation=Augmentation(pitch_semitones=2.0),
    )
    for item in pitched:
        assert item["mixture"].shape == (1, 4000) and item["targets"].shape == (1, 1, 4000)
        assert (item["mixture"] - item["targets"][0]).abs().max() > 1e-3


def test_sharded_stream_names_its_configuration_errors(tmp_path):
    import pytest

    manifest = small_corpus(tmp_path, ["Siren", "Drum"])
    shards = write_shards(manifest, str(tmp_path / "shards"), sample_rate=8000)
    assert len(shards) == 1
    dataset = ShardedQueryMixtureDataset(shards, 8000, segment_seconds=0.5, items_per_epoch=4)
    loader = torch.utils.data.DataLoader(dataset, batch_size=2, num_workers=2)
    with pytest.raises(ValueError, match="fewer shards than workers"):  # webdataset's check
        list(loader)
    only_sirens = small_corpus(tmp_path / "one", ["Siren"], 3)
    one_class = write_shards(only_sirens, str(tmp_path / "one_shards"), sample_rate=8000)
    with pytest.raises(ValueError, match="disjoint labels"):
        list(ShardedQueryMixtureDataset(one_class, 8000, segment_seconds=0.5, items_per_epoch=2))
