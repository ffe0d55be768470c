"""The egs/audioset/lass recipe end to end, tiny: every stage's files, resume, metrics, publish."""

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from conftest import small_corpus

RECIPE = os.path.join(os.path.dirname(__file__), "..", "egs", "audioset", "lass")

TINY_CONF = {
    "data": dict(
        sample_rate=8000,
        segment_seconds=1.0,
        max_interferers=1,
        snr_low=-5.0,
        snr_high=5.0,
        query_source="label",
        template_probability=0.0,
        items_per_epoch=16,
        num_workers=0,
    ),
    "model": dict(
        size="tiny",
        n_fft=256,
        hop_length=80,
        query_encoder="sentence",
        clap_checkpoint=None,
        bn_momentum=0.1,
    ),
    "training": dict(
        epochs=2,
        batch_size=4,
        loss="neg_snr",
        precision="auto",
        early_stop=False,
        seed=0,
        devices=1,
        num_nodes=1,
    ),
    "optim": dict(lr=0.001, weight_decay=0.0, warmup_steps=0, half_lr_patience=3),
}


def _run(args, cwd):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def recipe_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("recipe")
    conf = root / "tiny.yml"
    conf.write_text(yaml.safe_dump(TINY_CONF))
    data_dir, exp_dir = root / "data", os.path.join(RECIPE, "exp", "pytest_tiny")
    if os.path.isdir(exp_dir):
        import shutil

        shutil.rmtree(exp_dir)
    _run(
        [
            "bash",
            "run.sh",
            "--conf",
            str(conf),
            "--data_dir",
            str(data_dir),
            "--tag",
            "pytest_tiny",
            "--clips_per_class",
            "4",
            "--n_valid",
            "4",
            "--n_test",
            "6",
            "--python_path",
            sys.executable,
            "--baseline",
            "convtasnet",
        ],
        cwd=RECIPE,
    )
    yield dict(root=root, conf=conf, data_dir=data_dir, exp_dir=exp_dir)
    import shutil

    shutil.rmtree(exp_dir, ignore_errors=True)


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
        "eval/per_class.csv",
        "eval/references.json",
        "publish_dir/model.pth",
        "publish_dir/README.md",
        "convtasnet/best_model.pth",
        "compare.md",
    ]:
        assert os.path.isfile(os.path.join(exp_dir, path)), path
    for name in ["mixture.wav", "target.wav", "estimate.wav", "spectrograms.png"]:
        assert os.path.isfile(os.path.join(exp_dir, "eval", "examples", "ex_0", name)), name
    final = json.load(open(os.path.join(exp_dir, "eval", "final_metrics.json")))
    for key in ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp", "energy_sdr", "energy_sdr_imp"]:
        assert np.isfinite(final[key]), key
    assert final["n_mixtures"] == 6
    references = json.load(open(os.path.join(exp_dir, "eval", "references.json")))
    assert abs(references["mixture"]["si_sdr_imp"]) < 1e-6  # 0 dB by definition
    assert references["oracle_irm"]["si_sdr_imp"] > 3.0  # the mask ceiling is well above it
    assert "Test metrics" in open(os.path.join(exp_dir, "publish_dir", "README.md")).read()
    compare = open(os.path.join(exp_dir, "compare.md")).read()
    for row in ["LASSResUNet (text query)", "ConvTasNet, 2 outputs, oracle pick", "oracle IRM"]:
        assert row in compare, row
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
    model = LASSResUNet.from_pretrained(os.path.join(exp_dir, "best_model.pth")).eval()
    test_set = FixedMixtureDataset(str(recipe_run["data_dir"] / "mixtures" / "test.csv"))
    for index in range(2):
        mixture, target, query = test_set[index]
        estimate = model.separate(mixture[None], query=query)[0]
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
    model = BaseModel.from_pretrained(path).eval()
    estimate = model.separate(torch.randn(1, 8000) * 0.1, query="Siren")
    assert estimate.shape == (1, 8000) and torch.isfinite(estimate).all()


def test_interrupted_training_resumes_from_its_checkpoint(recipe_run):
    exp_dir = recipe_run["exp_dir"]
    before = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    assert before["epoch"] == 1  # the run stopped after epoch index 1 (2 epochs)
    data_dir = recipe_run["data_dir"]
    _run(
        [
            sys.executable,
            "train.py",
            "--conf",
            str(recipe_run["conf"]),
            "--epochs",
            "3",
            "--train_manifest",
            str(data_dir / "train.csv"),
            "--valid_csv",
            str(data_dir / "mixtures" / "valid.csv"),
            "--exp_dir",
            exp_dir,
        ],
        cwd=RECIPE,
    )
    after = torch.load(os.path.join(exp_dir, "checkpoints", "last.ckpt"), weights_only=False)
    steps_per_epoch = 16 // 4
    assert after["epoch"] == 2 and after["global_step"] == before["global_step"] + steps_per_epoch
    logs = sorted(os.listdir(os.path.join(exp_dir, "lightning_logs")))
    resumed = pd.read_csv(os.path.join(exp_dir, "lightning_logs", logs[-1], "metrics.csv"))
    assert resumed["epoch"].dropna().min() == 2  # epochs 0 and 1 were not trained again


def test_stage0_takes_a_users_manifests_from_another_folder(tmp_path):
    from asteroid_lass.data import load_manifest

    own = tmp_path / "my_sounds"
    train = small_corpus(own, ["Siren", "Drum"], 2, split="train")
    test = small_corpus(own, ["Siren", "Drum"], 1, split="test")
    data_dir = tmp_path / "recipe_data"
    _run(
        [
            sys.executable,
            "local/prepare_data.py",
            "manifests",
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
