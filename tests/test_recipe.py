"""The egs/audioset/lass recipe end to end, tiny: every stage's files, resume, metrics, publish."""

import json
import os
import shutil
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import small_corpus
from recipe_tools import run_checked, user_error_line

RECIPE = os.path.join(os.path.dirname(__file__), "..", "egs", "audioset", "lass")

TINY_CONF = {
    "data": dict(
        sample_rate=8000,
        segment_seconds="auto",  # 1.27 s on the built-in corpus
        test_segment_seconds="auto",  # 2.0 s
        max_interferers=1,
        snr_low=-5.0,
        snr_high=5.0,
        query_source="label",
        template_probability=0.0,
        items_per_epoch=16,
        num_workers=0,
        clips_per_class=4,
        n_valid=4,
        n_test=6,
    ),
    "model": dict(
        name="LASSResUNet",
        channels="tiny",
        n_fft=256,
        hop_length=80,
        bn_momentum=0.1,
        query_encoder="sentence",
        clap_checkpoint=None,
    ),
    "objective": dict(objective="waveform", loss="neg_snr", assignment="fixed"),
    "training": dict(
        epochs=2,
        batch_size=4,
        precision="auto",
        early_stop=True,  # patience 3: never stops a 2-epoch run
        early_stop_patience=3,
        monitor="val_si_sdri",
        bn_recompute_batches=0,
        seed=0,
        devices=1,
        num_nodes=1,
        gradient_clip=5.0,
    ),
    "optim": dict(lr=0.001, weight_decay=0.0, warmup_steps=0, half_lr_patience=3),
    "baseline": dict(
        baseline_n_filters=32,
        baseline_kernel_size=16,
        baseline_stride=8,
        baseline_bn_chan=16,
        baseline_hid_chan=32,
        baseline_skip_chan=16,
        baseline_n_blocks=2,
        baseline_n_repeats=1,
    ),
    "publish": dict(
        license="MIT",
        data_license="MIT",
        dataset_title="built-in corpus",
        recipe="egs/audioset/lass",
    ),
}


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    conf = root / "tiny.yml"
    conf.write_text(yaml.safe_dump(TINY_CONF))
    data_dir, exp_dir = root / "data", str(root / "exp")
    result = run_checked(
        [
            "bash",
            "run.sh",
            "--conf",
            str(conf),
            "--data_dir",
            str(data_dir),
            "--exp_dir",
            exp_dir,
            "--python_path",
            sys.executable,
            "--baseline",
            "convtasnet",
        ],
        cwd=RECIPE,
    )
    yield dict(root=root, conf=conf, data_dir=data_dir, exp_dir=exp_dir, log=result.stdout)


def test_training_prints_one_plain_line_per_epoch(recipe_run):
    lines = [l for l in recipe_run["log"].splitlines() if l.startswith("epoch ")]
    # two epochs of the model, two of the baseline, each with both losses and the time left
    assert len(lines) == 4, recipe_run["log"]
    assert all("train_loss" in l and "val_loss" in l and "left ~" in l for l in lines)
    assert "\r" not in recipe_run["log"]  # no progress bar when output is not a terminal
    # Stages 1 and 2 state the same data plan: the segment follows the clips (3 to 6 s).
    plans = [l for l in recipe_run["log"].splitlines() if l.startswith("data plan (48 clips, 12 ")]
    assert len(plans) == 2 and plans[0] == plans[1], recipe_run["log"]
    assert plans[0].endswith(
        "segment_seconds 1.27 (auto), test_segment_seconds 2.0 (auto), items_per_epoch 16 (conf), "
        "epochs 2 (conf), n_valid 4 (conf)"
    )


def test_auto_segment_and_best_checkpoint_reach_every_stage(recipe_run):
    from asteroid_lass.data import FixedMixtureDataset

    exp_dir, data_dir = recipe_run["exp_dir"], recipe_run["data_dir"]
    for csv in ("valid.csv", "test.csv"):
        item = FixedMixtureDataset(str(data_dir / "mixtures" / csv))[0]
        assert item["mixture"].shape[-1] == 2 * 8000, csv
    saved = yaml.safe_load(open(os.path.join(exp_dir, "conf.yml")))
    # The numbers, for the model card.
    assert saved["data"]["segment_seconds"] == 1.27
    assert saved["data"]["test_segment_seconds"] == 2.0
    # best_model.pth holds the weights of the epoch with the highest validation SI-SDRi.
    logs = pd.read_csv(os.path.join(exp_dir, "logs", "version_0", "metrics.csv"))
    scores = logs.dropna(subset=["val_si_sdri"]).set_index("epoch")["val_si_sdri"]
    best_k = json.load(open(os.path.join(exp_dir, "best_k_models.json")))
    best_path = max(best_k, key=best_k.get)
    assert best_k[best_path] == pytest.approx(scores.max(), abs=1e-5)
    assert f"epoch={int(scores.idxmax())}-" in os.path.basename(best_path)
    checkpoint = torch.load(best_path, weights_only=False)["state_dict"]
    saved_model = torch.load(os.path.join(exp_dir, "best_model.pth"), weights_only=True)
    for name, tensor in saved_model["state_dict"].items():
        assert torch.equal(tensor, checkpoint[f"model.{name}"]), name


def test_recipe_writes_every_file_with_sane_values(recipe_run):
    exp_dir, data_dir = recipe_run["exp_dir"], recipe_run["data_dir"]
    for path in ["train.csv", "test.csv", "mixtures/valid.csv", "mixtures/test.csv"]:
        assert os.path.isfile(data_dir / path), path
    for path in [
        "conf.yml",
        "checkpoints/last.ckpt",
        "best_k_models.json",
        "best_model.pth",
        "eval/all_metrics.csv",
        "eval/final_metrics.json",
        "eval/per_condition.csv",
        "eval/references.json",
        "publish_dir/model.pth",
        "publish_dir/README.md",
        "convtasnet/best_model.pth",
        "compare.md",
    ]:
        assert os.path.isfile(os.path.join(exp_dir, path)), path
    example = os.listdir(os.path.join(exp_dir, "eval", "examples", "ex_0"))
    for prefix in ["mixture", "target_0_", "model_0_", "convtasnet_0_", "oracle_irm_0_"]:
        assert any(name.startswith(prefix) for name in example), (prefix, example)
    final = json.load(open(os.path.join(exp_dir, "eval", "final_metrics.json")))
    for key in ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr", "energy_sdr_imp"]:
        assert np.isfinite(final[key]), key
    assert final["n_outputs_scored"] == 6
    references = json.load(open(os.path.join(exp_dir, "eval", "references.json")))
    assert abs(references["mixture"]["si_sdr_imp"]) < 1e-6  # 0 dB by definition
    assert references["oracle_irm"]["si_sdr_imp"] > 3.0  # the mask ceiling is well above it
    assert "Test metrics" in open(os.path.join(exp_dir, "publish_dir", "README.md")).read()
    compare = open(os.path.join(exp_dir, "compare.md")).read()
    for row in ["| model |", "| convtasnet |", "| oracle_irm |", "| mixture |"]:
        assert row in compare, row
    assert (
        "License\nModel weights: MIT"
        in open(os.path.join(exp_dir, "publish_dir", "README.md")).read()
    )
    best_k = json.load(open(os.path.join(exp_dir, "best_k_models.json")))
    assert best_k and all(np.isfinite(v) for v in best_k.values())


def test_final_metrics_equal_a_direct_recomputation(recipe_run):
    from asteroid.metrics import get_metrics

    from asteroid_lass import LASSResUNet
    from asteroid_lass.data import FixedMixtureDataset

    exp_dir = recipe_run["exp_dir"]
    table = pd.read_csv(os.path.join(exp_dir, "eval", "all_metrics.csv"))
    model_rows = table[table.system == "model"].reset_index(drop=True)
    final = json.load(open(os.path.join(exp_dir, "eval", "final_metrics.json")))
    assert final["si_sdr_imp"] == pytest.approx(model_rows["si_sdr_imp"].mean(), abs=1e-9)
    model = LASSResUNet.from_pretrained(os.path.join(exp_dir, "best_model.pth"))
    test_set = FixedMixtureDataset(str(recipe_run["data_dir"] / "mixtures" / "test.csv"))
    for index in range(2):
        item = test_set[index]
        mixture, target = item["mixture"][0], item["targets"][0, 0]
        estimate = model.separate(mixture[None], query=item["conditions"][0])[0, 0]
        direct = get_metrics(
            mixture[None].numpy(),
            target[None].numpy(),
            estimate[None].numpy(),
            sample_rate=8000,
            metrics_list=["si_sdr", "sdr"],
        )
        row = model_rows.iloc[index]
        assert row["si_sdr"] == pytest.approx(direct["si_sdr"], abs=1e-3)
        assert row["si_sdr_imp"] == pytest.approx(
            direct["si_sdr"] - direct["input_si_sdr"], abs=1e-3
        )
        assert row["sdr_imp"] == pytest.approx(direct["sdr"] - direct["input_sdr"], abs=1e-3)


def test_published_model_loads_and_separates(recipe_run):
    import asteroid_lass  # noqa: F401
    from asteroid.models import BaseModel

    path = os.path.join(recipe_run["exp_dir"], "publish_dir", "model.pth")
    conf = torch.load(path, weights_only=True)
    assert conf["infos"]["final_metrics"]["si_sdr_imp"] == pytest.approx(
        json.load(open(os.path.join(recipe_run["exp_dir"], "eval", "final_metrics.json")))[
            "si_sdr_imp"
        ]
    )
    model = BaseModel.from_pretrained(path)
    estimate = model.separate(torch.randn(1, 8000) * 0.1, query="Siren")
    assert estimate.shape == (1, 1, 8000) and torch.isfinite(estimate).all()
    # A model file holds no path of the machine that made it.
    assert str(recipe_run["root"]) not in repr(conf["model_args"])


def _train_stage(recipe_run, exp_dir: str, *options: str) -> None:
    """Stage 2 alone, with the fixture's conf and data (``options``: conf keys to change)."""
    data_dir = recipe_run["data_dir"]
    run_checked(
        [sys.executable, "train.py", "--conf", str(recipe_run["conf"]), *options]
        + ["--train_manifest", str(data_dir / "train.csv")]
        + ["--valid_csv", str(data_dir / "mixtures" / "valid.csv"), "--exp_dir", exp_dir],
        cwd=RECIPE,
    )


@pytest.fixture(scope="module")
def second_run(recipe_run):
    """Stage 2 again with the same conf, except that best_model.pth's BatchNorm statistics are
    recomputed over two training batches."""
    again = str(recipe_run["root"] / "exp_again")
    _train_stage(recipe_run, again, "--bn_recompute_batches", "2")
    return again


def _checkpoint(exp_dir: str, name: str) -> dict:
    path = os.path.join(exp_dir, "checkpoints", name)
    return torch.load(path, weights_only=False)["state_dict"]


def test_training_again_with_the_same_seed_gives_the_same_weights(recipe_run, second_run):
    """The conf's seed fixes the whole run: initial weights, mixtures and batches."""
    first = _checkpoint(recipe_run["exp_dir"], "epoch=1-step=8.ckpt")
    second = _checkpoint(second_run, "epoch=1-step=8.ckpt")
    assert first.keys() == second.keys()
    for name, tensor in first.items():
        assert torch.equal(tensor, second[name]), name


def test_recomputed_batchnorm_changes_only_the_statistics_of_the_best_checkpoint(second_run):
    best_k = json.load(open(os.path.join(second_run, "best_k_models.json")))
    best = torch.load(max(best_k, key=best_k.get), weights_only=False)["state_dict"]
    saved = torch.load(os.path.join(second_run, "best_model.pth"), weights_only=True)
    recomputed = 0
    for name, tensor in saved["state_dict"].items():
        if "running_" in name:
            assert torch.isfinite(tensor).all(), name
            recomputed += not torch.allclose(tensor, best[f"model.{name}"])
        elif "num_batches_tracked" not in name:
            assert torch.equal(tensor, best[f"model.{name}"]), name
    assert recomputed > 10


def test_interrupted_training_resumes_from_its_checkpoint(recipe_run):
    exp_dir = recipe_run["exp_dir"]
    before = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    assert before["epoch"] == 1  # the run stopped after epoch index 1 (2 epochs)
    _train_stage(recipe_run, exp_dir, "--epochs", "3")
    after = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    steps_per_epoch = 16 // 4
    assert after["epoch"] == 2 and after["global_step"] == before["global_step"] + steps_per_epoch
    logs = sorted(os.listdir(os.path.join(exp_dir, "logs")))
    resumed = pd.read_csv(os.path.join(exp_dir, "logs", logs[-1], "metrics.csv"))
    assert resumed["epoch"].dropna().min() == 2  # epochs 0 and 1 were not trained again


def test_stage0_takes_a_users_manifests_from_another_folder(tmp_path):
    from asteroid_lass.data import load_manifest

    own = tmp_path / "my_sounds"
    train = small_corpus(own, ["Siren", "Drum"], 2, split="train")
    test = small_corpus(own, ["Siren", "Drum"], 1, split="test")
    data_dir = tmp_path / "recipe_data"
    (tmp_path / "tiny.yml").write_text(yaml.safe_dump(TINY_CONF))
    run_checked(
        [
            sys.executable,
            "local/prepare_data.py",
            "manifests",
            "--conf",
            str(tmp_path / "tiny.yml"),
            "--dataset",
            "manifest",
            "--data_dir",
            str(data_dir),
            "--train_manifest",
            train,
            "--test_manifest",
            test,
        ],
        cwd=RECIPE,
    )
    copied = load_manifest(str(data_dir / "train.csv"))  # every path still resolves
    assert sorted(copied["path"]) == sorted(load_manifest(train)["path"])
    assert len(load_manifest(str(data_dir / "test.csv"))) == 2


def test_run_sh_gives_your_own_data_twice_the_built_in_corpus_training(tmp_path):
    """With ``epochs: auto``, stage 1's data plan states the budget of the data source run.sh
    was given: a user's manifest gets 13,762,560 STFT frames of training, the built-in corpus
    6,881,280."""
    own = tmp_path / "my_sounds"
    train = small_corpus(own, ["Siren", "Drum"], 2, split="train")
    test = small_corpus(own, ["Siren", "Drum"], 1, split="test")
    conf = dict(TINY_CONF, training=dict(TINY_CONF["training"], epochs="auto"))
    (tmp_path / "auto.yml").write_text(yaml.safe_dump(conf))
    common = ["bash", "run.sh", "--conf", str(tmp_path / "auto.yml")]
    common += ["--data_dir", str(tmp_path / "data"), "--python_path", sys.executable]
    sources = ["--train_manifest", train, "--test_manifest", test]
    own_data = run_checked(
        common + ["--stop_stage", "1", "--dataset", "manifest"] + sources, cwd=RECIPE
    ).stdout
    # Clips of about 1.1 s: 0.63 s segments, 16 mixtures an epoch (conf); the 128-epoch cap.
    assert "epochs 128 (auto, own data: 13,762,560 STFT frames)" in own_data, own_data
    built_in = run_checked(common + ["--stage", "1", "--stop_stage", "1"], cwd=RECIPE).stdout
    assert "epochs 128 (auto, built-in corpus: 6,881,280 STFT frames)" in built_in, built_in


def _interferer_counts(csv_path) -> pd.Series:
    from asteroid_lass.data.manifest import LABEL_SEPARATOR  # joins a fixed mixture's paths

    return pd.read_csv(csv_path)["interferer_paths"].str.split(LABEL_SEPARATOR).str.len()


def test_training_may_mix_more_interferers_than_the_fixed_mixtures(tmp_path):
    """``max_interferers`` counts the training mixtures' interferers, ``test_max_interferers``
    the fixed validation and test mixtures': training on up to three keeps a one-interferer
    test set. A conf without the second key gives both the first, as before it existed. The
    training augmentation leaves the fixed mixtures as they are."""
    own = tmp_path / "my_sounds"
    classes = ["Siren", "Drum", "Wind", "Bell"]
    sources = ["--train_manifest", small_corpus(own, classes, 2, split="train")]
    sources += ["--test_manifest", small_corpus(own, classes, 2, split="test")]
    data = dict(TINY_CONF["data"], max_interferers=3, n_valid=12, n_test=12)
    pitched = dict(test_max_interferers=1, augment_pitch_semitones=2.0, augment_eq_db=3.0)
    for name, extra in (
        ("split", dict(test_max_interferers=1)),
        ("old", {}),
        ("pitched", pitched),
    ):
        (tmp_path / f"{name}.yml").write_text(
            yaml.safe_dump(dict(TINY_CONF, data={**data, **extra}))
        )
        run_checked(
            ["bash", "run.sh", "--conf", str(tmp_path / f"{name}.yml"), "--stop_stage", "1"]
            + ["--data_dir", str(tmp_path / name), "--python_path", sys.executable]
            + ["--dataset", "manifest"]
            + sources,
            cwd=RECIPE,
        )
    for csv in ("valid.csv", "test.csv"):
        assert (_interferer_counts(tmp_path / "split" / "mixtures" / csv) == 1).all(), csv
        assert _interferer_counts(tmp_path / "old" / "mixtures" / csv).max() > 1, csv
        pitched_csv = tmp_path / "pitched" / "mixtures" / csv
        assert pitched_csv.read_bytes() == (tmp_path / "split" / "mixtures" / csv).read_bytes()
    valid = tmp_path / "split" / "mixtures" / "valid.csv"
    before = valid.read_bytes()
    (tmp_path / "bad.yml").write_text(
        yaml.safe_dump(dict(TINY_CONF, data=dict(data, test_max_interferers=0)))
    )
    line = user_error_line(
        [sys.executable, "local/prepare_data.py", "mixtures", "--conf", str(tmp_path / "bad.yml")]
        + ["--data_dir", str(tmp_path / "split"), "--dataset", "manifest"],
        cwd=RECIPE,
    )
    assert line == "error: data.test_max_interferers must be a whole number >= 1, got 0."
    assert valid.read_bytes() == before
    # A refused data key leaves no mixtures folder behind on a data dir that had none.
    shutil.rmtree(tmp_path / "pitched" / "mixtures")
    (tmp_path / "word.yml").write_text(
        yaml.safe_dump(dict(TINY_CONF, data=dict(data, augment_eq_db="high")))
    )
    line = user_error_line(
        [sys.executable, "local/prepare_data.py", "mixtures", "--conf", str(tmp_path / "word.yml")]
        + ["--data_dir", str(tmp_path / "pitched"), "--dataset", "manifest"],
        cwd=RECIPE,
    )
    assert line == "error: augment_eq_db must be a number, got 'high'."
    assert not (tmp_path / "pitched" / "mixtures").exists()


def test_stage_1_refuses_an_unknown_data_source_by_name(tmp_path):
    """Stage 1 sizes the training budget by the data source: a misspelt one is one line."""
    line = user_error_line(
        [sys.executable, "local/prepare_data.py", "mixtures", "--data_dir", str(tmp_path)]
        + ["--dataset", "manifests"],
        cwd=RECIPE,
    )
    assert line == "error: unknown --dataset 'manifests' (synth, manifest or audioset)."
    assert not list(tmp_path.iterdir())


def test_a_conf_without_the_mixture_length_is_refused_before_stage_1_writes(recipe_run, tmp_path):
    """A conf of the release before test_segment_seconds existed: one line naming the key."""
    old = {group: dict(values) for group, values in TINY_CONF.items()}
    del old["data"]["test_segment_seconds"]
    (tmp_path / "old.yml").write_text(yaml.safe_dump(old))
    valid = recipe_run["data_dir"] / "mixtures" / "valid.csv"
    before = valid.read_bytes()
    line = user_error_line(
        [
            sys.executable,
            "local/prepare_data.py",
            "mixtures",
            "--conf",
            str(tmp_path / "old.yml"),
            "--data_dir",
            str(recipe_run["data_dir"]),
        ],
        cwd=RECIPE,
    )
    assert "data.test_segment_seconds is missing" in line
    assert valid.read_bytes() == before
