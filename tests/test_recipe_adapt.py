"""Recipe settings derived from the training manifest (``auto``), and the monitored metric that
chooses the best checkpoint and stops training early."""

import functools
import json
import os

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from asteroid_lass.errors import LASSInputError
from asteroid_lass.recipes.adapt import adapted_settings, resolve_auto, summarize_manifest

# The built-in default run (measured in the recipe's README): 14 segments of 128 frames of 16 ms
# (2.032 s) per step.
BUILT_IN_RUN = dict(
    segment_seconds=2.032, test_segment_seconds=2.0, items_per_epoch=896, epochs=60, n_valid=48
)
KEYS = ("segment_seconds", "test_segment_seconds", "items_per_epoch", "epochs", "n_valid")
RECIPE_CONF = os.path.join(os.path.dirname(__file__), "..", "egs", "audioset", "lass", "local")


def test_built_in_corpus_gives_the_default_runs_values():
    with open(os.path.join(RECIPE_CONF, "conf.yml")) as conf_file:
        conf = yaml.safe_load(conf_file)
    hop = conf["model"]["hop_length"] / conf["data"]["sample_rate"]
    batch_size = conf["training"]["batch_size"]
    # 12 classes x 40 clips of 3 to 6 s (synth.make_corpus's range).
    durations = np.random.default_rng(0).uniform(3.0, 6.0, 480)
    settings = adapted_settings(480, 12, durations, batch_size, hop, built_in_corpus=True)
    assert settings == BUILT_IN_RUN
    # The rendered instrument manifest (12 classes x 40 clips of 5 s), the user's own data:
    # the same plan with twice the training.
    own_data = adapted_settings(480, 12, [5.0] * 480, batch_size, hop)
    assert own_data == dict(BUILT_IN_RUN, epochs=120)


@pytest.mark.parametrize(
    "clip_seconds, sample_rate, hop, expected_frames",
    [
        (5.0, 16000, 160, 128),  # the recipe's STFT: 1.27 s
        (1.0, 16000, 160, 96),
        (0.9, 16000, 160, 64),
        (0.2, 16000, 160, 64),  # never fewer than 64 frames
        (5.0, 32000, 320, 128),
        (1.0, 32000, 320, 96),
        (5.0, 16000, 256, 128),  # 16 ms hops: 2.032 s
        (1.5, 16000, 256, 64),  # 94 frames of the clip hold two blocks
        (5.0, 22050, 256, 128),  # a hop that is no whole number of milliseconds
        (1.0, 22050, 256, 64),
        (3.0, 48000, 512, 128),
    ],
)
def test_training_segments_are_not_padded_by_the_unet(
    clip_seconds, sample_rate, hop, expected_frames
):
    """Training segments are whole multiples of the U-Net's time poolings in frames of the
    model's centred STFT, whatever its hop and sample rate, so no step computes on padding;
    short clips get the longest such segment that fits them, at least 64 frames."""
    from asteroid_lass.models.resunet import TIME_MULTIPLE

    settings = adapted_settings(
        480, 12, [clip_seconds] * 480, batch_size=14, frame_seconds=hop / sample_rate
    )
    samples = torch.zeros(int(round(settings["segment_seconds"] * sample_rate)))
    window = torch.hann_window(2 * hop)
    frames = torch.stft(samples, 2 * hop, hop, window=window, return_complex=True).shape[-1]
    assert frames == expected_frames and frames % TIME_MULTIPLE == 0
    fits = len(samples) <= clip_seconds * sample_rate
    assert fits or (expected_frames == 64 and clip_seconds * sample_rate < 63 * hop)


@pytest.mark.parametrize(
    "n_clips, n_classes, durations, batch_size, built_in, expected",
    [
        # Budget of the built-in corpus: 60 x 64 steps x 14 x 128 = 6,881,280 STFT frames of
        # training mixtures; of the user's own data, twice that (the last rows). A 10 ms hop.
        # Few clips of 1 s (101 frames): training segments of 96 frames (0.95 s), 1 s mixtures,
        # one block of 64 steps of 8 = 512 items, 6881280 / (512 * 96) = 140: at most 128.
        (100, 3, [1.0] * 100, 8, True, (0.95, 1.0, 512, 128, 48)),
        # The same budget at batch 8 on the built-in corpus: 6881280 / (512 * 128) = 105 exactly.
        (480, 12, [5.0] * 480, 8, True, (1.27, 2.0, 512, 105, 48)),
        # AudioSet-like: 10 s clips, 20,000 of them, 527 classes: 2.6 -> at least 4 passes.
        (20000, 527, [10.0] * 20000, 14, True, (1.27, 2.0, 20608, 4, 512)),
        # 2,000 clips of 4 s: 3 blocks of 896, 6881280 / (2688 * 128) = 20 exactly; 30 classes.
        (2000, 30, [4.0] * 2000, 14, True, (1.27, 2.0, 2688, 20, 120)),
        # Batch 48 makes blocks of 3072 mixtures: 6881280 / (3072 * 128) = 17.5 -> 18 epochs.
        (1500, 12, [4.0] * 1500, 48, True, (1.27, 2.0, 3072, 18, 48)),
        # An eighth of the clips of 0.9 s (91 frames): 64-frame segments (0.63 s), 0.75 s
        # mixtures, 6881280 / (896 * 64) = 120 epochs: half the frames a step, twice the epochs.
        (480, 12, [0.9] * 60 + [3.0] * 420, 14, True, (0.63, 0.75, 896, 120, 48)),
        # Clips of 0.95 s are exactly 96 frames: segments of 0.95 s, 6881280 / (896 * 96) = 80.
        (480, 12, [0.95] * 480, 14, True, (0.95, 0.75, 896, 80, 48)),
        # Clips of 1.6 s: training segments stay 1.27 s, mixtures 1.5 s.
        (480, 12, [1.6] * 480, 14, True, (1.27, 1.5, 896, 60, 48)),
        # Very short clips: segments never below 64 frames (0.63 s), mixtures never below 0.5 s;
        # at most 128 epochs (6881280 / (256 * 64) = 420).
        (64, 2, [0.2] * 64, 14, True, (0.63, 0.5, 896, 120, 48)),
        (64, 2, [0.2] * 64, 4, True, (0.63, 0.5, 256, 128, 48)),
        # The user's own data: 13,762,560 frames. The instruments: 13762560 / (896 * 128) = 120.
        (480, 12, [5.0] * 480, 14, False, (1.27, 2.0, 896, 120, 48)),
        # 2,000 clips of 4 s: 13762560 / (2688 * 128) = 40 exactly.
        (2000, 30, [4.0] * 2000, 14, False, (1.27, 2.0, 2688, 40, 120)),
        # AudioSet-like: 13762560 / (20608 * 128) = 5.2 -> 6.
        (20000, 527, [10.0] * 20000, 14, False, (1.27, 2.0, 20608, 6, 512)),
        # Clips of 0.95 s: 13762560 / (896 * 96) = 160 -> at most 128.
        (480, 12, [0.95] * 480, 14, False, (0.95, 0.75, 896, 128, 48)),
    ],
)
def test_rule_on_other_collections(n_clips, n_classes, durations, batch_size, built_in, expected):
    settings = adapted_settings(n_clips, n_classes, durations, batch_size, built_in_corpus=built_in)
    assert tuple(settings[k] for k in KEYS) == expected
    assert settings["items_per_epoch"] % (64 * batch_size) == 0  # whole blocks of 64 steps


def test_rule_rejects_an_empty_collection():
    with pytest.raises(ValueError, match="clips"):
        adapted_settings(0, 0, [], 8)
    with pytest.raises(ValueError, match="batch_size"):
        adapted_settings(10, 2, [1.0] * 10, 0)


def _manifest(folder, rows):
    """rows: (name, labels, seconds, duration column or None); 1 kHz files."""
    records = []
    for name, labels, seconds, column in rows:
        sf.write(str(folder / name), np.zeros(int(seconds * 1000), dtype="float32"), 1000)
        records.append(dict(path=name, labels=labels, duration=column))
    path = folder / "train.csv"
    pd.DataFrame(records).to_csv(path, index=False)
    return str(path)


def test_summary_counts_labels_and_measures_clips_without_a_duration(tmp_path):
    path = _manifest(
        tmp_path,
        [
            ("a.wav", "Dog;Bark", 1.0, 1.0),
            ("b.wav", "dog", 2.5, None),  # same class as "Dog"; length from the header
            ("c.wav", "Cello", 0.5, 4.0),  # the column wins over the file (not re-read)
        ],
    )
    summary = summarize_manifest(path)
    assert summary.n_clips == 3 and summary.n_classes == 3  # dog, bark, cello
    assert summary.durations.tolist() == [1.0, 2.5, 4.0]
    assert summary.describe() == "3 clips, 3 classes, 0 min, clips 1.0-4.0 s"


def test_resolve_auto_replaces_only_auto_values_and_states_all(tmp_path):
    path = _manifest(tmp_path, [(f"{k}.wav", f"class {k % 3}", 1.0, 1.0) for k in range(70)])
    conf = dict(
        data=dict(
            segment_seconds="auto",
            test_segment_seconds="Auto",
            items_per_epoch="AUTO",
            n_valid=10,
            sample_rate=1000,
        ),
        training=dict(epochs="30", batch_size=8),  # a number given on the command line
    )
    resolved, line = resolve_auto(conf, path)
    assert resolved["data"] == dict(
        segment_seconds=0.95,
        test_segment_seconds=1.0,
        items_per_epoch=512,
        n_valid=10,
        sample_rate=1000,
    )
    assert resolved["training"] == dict(epochs=30, batch_size=8)
    assert conf["data"]["segment_seconds"] == "auto"  # the caller's conf is left alone
    assert line == (
        "data plan (70 clips, 3 classes, 1 min, clips 1.0-1.0 s): segment_seconds 0.95 (auto), "
        "test_segment_seconds 1.0 (auto), items_per_epoch 512 (auto), epochs 30 (conf), "
        "n_valid 10 (conf)"
    )
    with pytest.raises(LASSInputError, match="training.epochs must be a positive number or 'auto'"):
        resolve_auto(dict(conf, training=dict(epochs="many", batch_size=8)), path)


def test_resolve_auto_sizes_training_segments_for_the_confs_stft(tmp_path):
    """A conf with 16 ms hops (256 at 16 kHz) gets 128 of its frames (2.032 s), not 1.27 s
    (80 frames, which the U-Net would pad to 96); a hop that is not a number is refused."""
    path = _manifest(tmp_path, [(f"{k}.wav", f"class {k % 3}", 1.0, 5.0) for k in range(70)])
    conf = dict(
        data=dict(segment_seconds="auto", sample_rate=16000),
        model=dict(hop_length=256),
        training=dict(epochs=3, batch_size=14),
    )
    resolved, line = resolve_auto(conf, path)
    assert resolved["data"]["segment_seconds"] == 2.032
    assert "segment_seconds 2.032 (auto)" in line
    # The epochs follow the training budget in STFT frames, stated in the plan: the built-in
    # corpus's, or twice it for the user's own data; 128 frames a segment, 896 mixtures an
    # epoch, as at a 10 ms hop, so the same epochs although each segment is 1.6 times longer.
    conf["training"]["epochs"] = "auto"
    for built_in, epochs, budget in (
        (True, 60, "built-in corpus: 6,881,280"),  # 6881280 / (896 * 128) = 60
        (False, 120, "own data: 13,762,560"),
    ):
        resolved, line = resolve_auto(conf, path, built_in_corpus=built_in)
        assert resolved["training"]["epochs"] == epochs
        assert f"epochs {epochs} (auto, {budget} STFT frames)" in line
    conf["model"]["hop_length"] = "half"
    with pytest.raises(LASSInputError, match="model.hop_length and data.sample_rate must be"):
        resolve_auto(conf, path)


@pytest.mark.parametrize(
    "segment_seconds, items_per_epoch, epochs",
    [
        ("auto", "auto", 60),  # 128 frames, 896 mixtures: 6881280 / (896 * 128)
        ("auto", 1792, 30),  # twice the mixtures an epoch: half the epochs
        (0.63, "auto", 120),  # 64 frames: twice the epochs
        (1.0, "auto", 60),  # 101 frames, padded by the U-Net to 128: they cost as much
        (2.55, 448, 60),  # 256 frames, half the mixtures
    ],
)
def test_auto_epochs_spend_the_budget_on_the_segments_and_epochs_given(
    tmp_path, segment_seconds, items_per_epoch, epochs
):
    """``epochs: auto`` beside a stated segment length or epoch size spends the same STFT frames
    of training as the default plan does, not the plan's own segments' or epoch's count."""
    path = _manifest(tmp_path, [(f"{k}.wav", f"class {k % 12}", 1.0, 5.0) for k in range(480)])
    conf = dict(
        data=dict(
            segment_seconds=segment_seconds, items_per_epoch=items_per_epoch, sample_rate=16000
        ),
        model=dict(hop_length=160),
        training=dict(epochs="auto", batch_size=14),
    )
    resolved, line = resolve_auto(conf, path, built_in_corpus=True)
    assert resolved["training"]["epochs"] == epochs, line


@pytest.mark.parametrize("value", [0, "-1", "nan", "inf"])
def test_a_non_positive_mixture_length_is_refused_by_its_own_name(tmp_path, value):
    """The datasets would call it ``segment_seconds``; the user wrote test_segment_seconds."""
    conf = dict(
        data=dict(segment_seconds=1.0, test_segment_seconds=value),
        training=dict(epochs=2, batch_size=8),
    )
    with pytest.raises(
        LASSInputError, match=r"^data\.test_segment_seconds must be a positive number or 'auto'"
    ):
        resolve_auto(conf, str(tmp_path / "absent.csv"))


def test_resolve_without_auto_does_not_read_the_manifest(tmp_path):
    conf = dict(
        data=dict(segment_seconds=1.5, test_segment_seconds="3", items_per_epoch=64, n_valid=4),
        training=dict(epochs=2, batch_size=8),
    )
    resolved, line = resolve_auto(conf, str(tmp_path / "absent.csv"))
    assert resolved == dict(conf, data=dict(conf["data"], test_segment_seconds=3.0))
    assert line == (
        "data plan: segment_seconds 1.5 (conf), test_segment_seconds 3.0 (conf), "
        "items_per_epoch 64 (conf), epochs 2 (conf), n_valid 4 (conf)"
    )


def _frozen_training(tmp_path, epochs: int, early_stop: bool) -> str:
    """Train a tiny LASSResUNet with lr 0 and frozen BatchNorm statistics, so nothing changes
    and val_si_sdri is the same every epoch; 2 steps per epoch. Returns the exp_dir."""
    from asteroid_lass import LASSResUNet
    from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset, write_fixed_mixtures
    from asteroid_lass.data.synth import make_corpus
    from asteroid_lass.recipes.training import train

    manifest = make_corpus(str(tmp_path / "data"), 2, 8000, (1.0, 1.0), classes=["Siren", "Bell"])
    data = dict(
        sample_rate=8000,
        segment_seconds=0.5,
        max_interferers=1,
        snr_low=0.0,
        snr_high=0.0,
        items_per_epoch=4,
        num_workers=0,
    )
    sampler = QueryMixtureDataset.from_conf(manifest, data)
    valid_csv = str(tmp_path / "valid.csv")
    write_fixed_mixtures(sampler, valid_csv, 4, seed=1)
    conf = dict(
        data=data,
        objective=dict(objective="waveform", loss="neg_snr", assignment="fixed"),
        training=dict(
            epochs=epochs,
            batch_size=2,
            precision="32",
            early_stop=early_stop,
            early_stop_patience=1,
            monitor="val_si_sdri",
            seed=0,
            devices=1,
            num_nodes=1,
        ),
        optim=dict(lr=0.0, weight_decay=0.0, warmup_steps=0, half_lr_patience=None),
    )
    torch.manual_seed(0)
    model = LASSResUNet(
        sample_rate=8000,
        n_fft=256,
        hop_length=80,
        channels="tiny",
        bn_momentum=0.0,
        condition_dim=384,
        query_encoder={"name": "sentence"},
    )
    exp_dir = str(tmp_path / "exp")
    train(conf, model, sampler, FixedMixtureDataset(valid_csv), exp_dir)
    return exp_dir


def test_early_stopping_on_a_maximised_metric_keeps_the_best_checkpoint(tmp_path):
    """val_si_sdri never improves after the first epoch: patience 1 stops after epoch 2 of 5."""
    exp_dir = _frozen_training(tmp_path, epochs=5, early_stop=True)
    last = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    assert last["epoch"] == 1  # stopped after the second epoch
    best_k = json.load(open(os.path.join(exp_dir, "best_k_models.json")))
    # Two equal scores, both kept: the first one reached stays the best.
    assert len(best_k) == 2 and len(set(best_k.values())) == 1
    assert np.isfinite(list(best_k.values())[0])


def test_last_checkpoint_is_the_end_of_training_when_late_epochs_do_not_improve(tmp_path):
    """Epochs 4 and 5 only tie the three best, so no top-k checkpoint is written for them; the
    last checkpoint (resuming, a baseline's step budget) must still be the end of training."""
    from asteroid_lass.recipes.training import trained_steps

    exp_dir = _frozen_training(tmp_path, epochs=5, early_stop=False)
    assert len(json.load(open(os.path.join(exp_dir, "best_k_models.json")))) == 3
    last = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    assert last["epoch"] == 4 and trained_steps(exp_dir) == 5 * 2


def test_early_stopping_is_refused_with_a_cosine_schedule(tmp_path):
    from asteroid_lass.recipes.training import train

    conf = dict(
        training=dict(early_stop=True, devices=1, num_nodes=1),
        optim=dict(lr=1e-3, weight_decay=0.0, warmup_steps=0, lr_decay="cosine"),
    )
    with pytest.raises(LASSInputError, match=r"training.early_stop.*optim.lr_decay: cosine"):
        train(conf, None, [], None, str(tmp_path / "exp"))
    assert not os.path.exists(tmp_path / "exp")  # refused before anything is written


@pytest.mark.parametrize("value", [-1, "lots", 2.5])
def test_a_bad_batchnorm_batch_count_is_refused_by_name(tmp_path, value):
    from asteroid_lass.recipes.training import train

    conf = dict(
        training=dict(bn_recompute_batches=value, devices=1, num_nodes=1),
        optim=dict(lr=1e-3, weight_decay=0.0, warmup_steps=0),
    )
    with pytest.raises(LASSInputError, match=r"training.bn_recompute_batches: expected a whole"):
        train(conf, None, [], None, str(tmp_path / "exp"))
    assert not os.path.exists(tmp_path / "exp")


def test_a_conf_builds_the_same_initial_weights_whatever_ran_before():
    from asteroid_lass.recipes.config import build_baseline, build_model

    conf = dict(
        data=dict(sample_rate=8000),
        model=dict(name="LASSResUNet", channels="tiny", n_fft=256, hop_length=80),
        training=dict(seed=0),
        baseline=dict(baseline_n_filters=16, baseline_n_blocks=2, baseline_n_repeats=1),
    )
    for build in (build_model, functools.partial(build_baseline, n_src=2)):
        torch.manual_seed(1)
        first = build(conf).state_dict()
        torch.rand(100)  # the global generator somewhere else
        second = build(conf).state_dict()
        other_seed = build(dict(conf, training=dict(seed=1))).state_dict()
        weights = [k for k, v in first.items() if v.is_floating_point() and v.numel() > 1]
        assert all(torch.equal(first[k], second[k]) for k in weights)
        assert not all(torch.equal(first[k], other_seed[k]) for k in weights)
    # Building leaves torch's global generator where it was.
    torch.manual_seed(1)
    expected = torch.rand(3)
    torch.manual_seed(1)
    build_model(conf)
    assert torch.equal(torch.rand(3), expected)
