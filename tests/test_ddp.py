"""DDP over 2 CPU processes (gloo) through the recipe's own entry point, ``train.py --devices 2``.

Lightning's subprocess launcher re-runs ``train.py`` for rank 1, as it does for a user. Each
process records the keys of the items it trained on (``training.item_log``); the ranks' sets must
be disjoint and together make the epoch, for map-style data (Lightning's DistributedSampler) and
for WebDataset shards (split by rank in the dataset).
"""

import copy
import json
import os
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from conftest import small_corpus
from test_recipe import TINY_CONF

from asteroid_lass.data import QueryMixtureDataset, load_manifest, write_fixed_mixtures
from asteroid_lass.data.shards import write_shards

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
RECIPE = os.path.join(ROOT, "egs", "audioset", "lass")
ITEMS_PER_EPOCH = 32  # 2 ranks x 4 steps x batch 4: no incomplete batch is dropped
EPOCHS = 5  # map-style run: enough steps (20) for the loss to fall
SHARD_EPOCHS = 3
CLIPS_PER_SHARD = 4


def _conf() -> dict:
    """The recipe test's tiny conf, on CPU processes with the item log on."""
    conf = copy.deepcopy(TINY_CONF)
    data = dict(
        segment_seconds=0.5,
        test_segment_seconds=0.5,
        snr_low=0.0,
        snr_high=0.0,
        items_per_epoch=ITEMS_PER_EPOCH,
    )
    conf["data"].update(data, num_workers=0)
    conf["model"].update(hop_length=64)
    conf["training"].update(epochs=EPOCHS, precision="32", accelerator="cpu", item_log=True)
    conf["optim"].update(lr=0.003, half_lr_patience=None)
    return conf


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    manifest = small_corpus(root, ["Siren", "Drum", "Wind", "Bell"], 4, seconds_range=(0.6, 0.8))
    sampler = QueryMixtureDataset(manifest, 8000, segment_seconds=0.5)
    valid = write_fixed_mixtures(sampler, str(root / "valid.csv"), 8, seed=1)
    conf = root / "conf.yml"
    conf.write_text(yaml.safe_dump(_conf()))
    return dict(root=root, manifest=manifest, valid=valid, conf=str(conf))


def _train_ddp(corpus, exp_dir, epochs, *data_args):
    """``train.py --devices 2`` on CPU, one thread per process; returns the item logs by rank."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    args = [sys.executable, "train.py", "--conf", corpus["conf"], "--devices", "2"]
    args += ["--epochs", str(epochs)]
    args += ["--valid_csv", corpus["valid"], "--exp_dir", str(exp_dir), *data_args]
    result = subprocess.run(args, cwd=RECIPE, env=env, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    logs = {}
    for rank in (0, 1):
        with open(os.path.join(exp_dir, "item_log", f"rank{rank}.jsonl")) as lines:
            logs[rank] = [json.loads(line) for line in lines]
    for rank, lines in logs.items():
        assert [line["epoch"] for line in lines] == list(range(epochs))
        assert {(line["rank"], line["world_size"], line["backend"]) for line in lines} == {
            (rank, 2, "gloo")
        }
        # Every rank takes as many steps: half the epoch each.
        assert all(len(line["keys"]) == ITEMS_PER_EPOCH // 2 for line in lines)
    assert os.path.isfile(os.path.join(exp_dir, "best_model.pth"))
    return logs


@pytest.mark.recipe
def test_ddp_on_two_cpu_processes_trains_on_disjoint_halves(corpus):
    exp_dir = corpus["root"] / "exp_map"
    logs = _train_ddp(corpus, exp_dir, EPOCHS, "--train_manifest", corpus["manifest"])
    for epoch in range(EPOCHS):
        keys = [logs[rank][epoch]["keys"] for rank in (0, 1)]
        assert all(len(set(k)) == len(k) for k in keys)  # no item twice on one rank
        assert not set(keys[0]) & set(keys[1])
        assert set(keys[0]) | set(keys[1]) == set(range(ITEMS_PER_EPOCH))
    # Each epoch deals the items out anew (Lightning's DistributedSampler.set_epoch).
    assert logs[0][0]["keys"] != logs[0][1]["keys"]

    # It trains: the training loss (the mean over both ranks) falls, epoch by epoch.
    metrics = pd.read_csv(os.path.join(exp_dir, "logs", "version_0", "metrics.csv"))
    train_loss = metrics.dropna(subset=["train_loss"]).sort_values("epoch")["train_loss"]
    assert len(train_loss) == EPOCHS
    first, last = float(train_loss.iloc[0]), float(train_loss.iloc[-1])
    assert last < first - 1.5, train_loss.tolist()  # at least 1.5 dB better SNR (2.7 measured)


@pytest.mark.recipe
def test_ddp_streams_webdataset_shards_split_by_rank(corpus):
    # Shuffled, as a collection should be before sharding: the manifest lists clips by class,
    # and a worker whose one shard held a single class would have nothing to mix.
    table = load_manifest(corpus["manifest"]).sample(frac=1.0, random_state=0)
    per_shard = [set(table["labels"][i : i + CLIPS_PER_SHARD]) for i in range(0, 16, 4)]
    assert all(len(labels) > 1 for labels in per_shard)
    shards = write_shards(
        table, str(corpus["root"] / "shards"), 8000, clips_per_shard=CLIPS_PER_SHARD
    )
    assert len(shards) == 4
    shard_dir = os.path.dirname(shards[0])
    logs = _train_ddp(
        corpus,
        corpus["root"] / "exp_shards",
        SHARD_EPOCHS,
        "--train_shards",
        shard_dir,
        "--num_workers",  # forked DataLoader workers: split by rank, then by worker
        "2",
    )

    def clips(rank, epoch=None):
        lines = logs[rank] if epoch is None else [logs[rank][epoch]]
        return {clip for line in lines for key in line["keys"] for clip in key.split("+")}

    def shards_of(clip_keys):
        return {int(key) // CLIPS_PER_SHARD for key in clip_keys}

    for epoch in range(SHARD_EPOCHS):
        # Rank r reads shards r, r + 2 (one per worker): no clip is shared, and together the
        # ranks read every shard.
        assert not clips(0, epoch) & clips(1, epoch)
        assert shards_of(clips(0, epoch)) == {0, 2} and shards_of(clips(1, epoch)) == {1, 3}
    assert clips(0) | clips(1) == {f"{i:09d}" for i in range(4 * CLIPS_PER_SHARD)}


def test_rank_batches_deal_a_custom_batch_sampler_out_evenly():
    from asteroid_lass.recipes.training import GroupBatchSampler, RankBatches

    # 7 batches: [0, 1], [2], [3, 4], [5, 6], [7], [8, 9], [10] (groups never mixed).
    sampler = GroupBatchSampler([0, 0, 1, 2, 2, 3, 3, 4, 5, 5, 6], batch_size=2)
    shares = [list(RankBatches(sampler, rank, 2)) for rank in (0, 1)]
    assert shares == [[[0, 1], [3, 4], [7]], [[2], [5, 6], [8, 9]]]  # the 7th batch is left out
    assert [len(RankBatches(sampler, rank, 2)) for rank in (0, 1)] == [3, 3]
    assert list(RankBatches(sampler)) == list(sampler)  # outside a distributed run: all of it
    with pytest.raises(ValueError, match="rank and world_size"):
        RankBatches(sampler, rank=0)
