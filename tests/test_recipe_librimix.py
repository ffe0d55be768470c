"""The egs/librimix/audioslots recipe end to end, tiny: every stage's files, a compare.md with
both systems and sane values, a budget-matched ConvTasNet, and the published AudioSlots
through ``asteroid-lass separate``."""

import json
import os
import sys

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml

from recipe_tools import REPO, run_checked

RECIPE = os.path.join(REPO, "egs", "librimix", "audioslots")
SR = 8000


def _tiny_conf() -> dict:
    with open(os.path.join(RECIPE, "local", "conf.yml")) as conf_file:
        conf = yaml.safe_load(conf_file)
    conf["data"].update(
        test_segment_seconds=1.5,
        n_speakers=3,
        n_test_speakers=2,
        utterances_per_speaker=2,
        clip_seconds=[1.5, 2.5],
        items_per_epoch=8,
        n_valid=2,
        n_test=3,
    )
    conf["model"].update(
        d_model=32, n_heads=2, encoder_layers=1, slot_layers=1, ff_dim=64, decoder_width=16
    )
    conf["model"].update(decoder_depth=1)
    conf["baseline"].update(
        baseline_n_filters=32,
        baseline_bn_chan=16,
        baseline_hid_chan=32,
        baseline_skip_chan=16,
        baseline_n_blocks=2,
        baseline_n_repeats=1,
    )
    conf["training"].update(epochs=2, batch_size=2)
    return conf


@pytest.mark.recipe
def test_librimix_recipe_end_to_end(tmp_path):
    conf = tmp_path / "tiny.yml"
    conf.write_text(yaml.safe_dump(_tiny_conf()))
    data_dir, exp_dir = tmp_path / "data", tmp_path / "exp"
    run_args = ["bash", "run.sh", "--conf", str(conf), "--data_dir", str(data_dir)]
    run_args += ["--exp_dir", str(exp_dir), "--python_path", sys.executable]
    log = run_checked(run_args, RECIPE).stdout

    # Stage 0: a manifest per split, disjoint talkers.
    talkers = {
        split: set(pd.read_csv(data_dir / "builtin" / f"{split}.csv")["speaker"])
        for split in ("train", "valid", "test")
    }
    assert [len(talkers[s]) for s in ("train", "valid", "test")] == [3, 2, 2]
    assert not (talkers["train"] & talkers["valid"] or talkers["train"] & talkers["test"])
    assert not talkers["valid"] & talkers["test"]
    # Stage 1: shareable two-talker lists with their settings.
    for split, n in (("valid", 2), ("test", 3)):
        table = pd.read_csv(data_dir / "lists" / f"{split}.csv")
        assert table.mixture_id.nunique() == n and (table.prompt == "speech").all()
        settings = json.loads((data_dir / "lists" / f"{split}.json").read_text())
        assert settings["sample_rate"] == SR and settings["prompts"] == ["speech", "speech"]
    # Stage 2: both models, the baseline for exactly AudioSlots' optimiser steps.
    steps = [
        torch.load(exp_dir / where / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        for where in (".", "convtasnet")
    ]
    assert steps[0] == 2 * 8 // 2 and steps[1] == steps[0], steps
    assert f"baseline: ConvTasNet with PIT, {steps[0]} steps" in log
    baseline_conf = yaml.safe_load((exp_dir / "convtasnet" / "conf.yml").read_text())
    assert baseline_conf["objective"] == dict(
        objective="waveform", loss="neg_sisdr", assignment="pit"
    )
    for path in [
        "conf.yml",
        "best_model.pth",
        "convtasnet/best_model.pth",
        "eval/all_metrics.csv",
        "eval/final_metrics.json",
        "eval/references.json",
        "eval/examples/ex_0/mixture.wav",
        "compare.md",
        "publish_dir/model.pth",
        "publish_dir/README.md",
    ]:
        assert (exp_dir / path).is_file(), path

    # Stage 3: every system scored on both talkers of every mixture, finite values.
    scores = pd.read_csv(exp_dir / "eval" / "all_metrics.csv")
    assert set(scores.system) == {"audioslots", "convtasnet", "oracle_irm", "mixture"}
    assert (scores.groupby("system").size() == 6).all()  # 3 mixtures x 2 talkers
    values = scores[["si_sdr", "si_sdr_imp", "sdr", "sdr_imp"]].to_numpy()
    assert np.isfinite(values).all()
    references = json.loads((exp_dir / "eval" / "references.json").read_text())
    assert references["mixture"]["si_sdr_imp"] == 0.0
    assert references["oracle_irm"]["si_sdr_imp"] > 5.0  # the mask ceiling is well above
    compare = (exp_dir / "compare.md").read_text()
    assert "| audioslots |" in compare and "| convtasnet |" in compare
    assert f"audioslots {steps[0]}, convtasnet {steps[0]}" in compare
    assert "SI-SDRi | SDRi |" in compare
    card = (exp_dir / "publish_dir" / "README.md").read_text()
    assert "| convtasnet |" in card and "License\nModel weights: MIT" in card

    # The published model through the command line: blind, one file per slot.
    mixture = exp_dir / "eval" / "examples" / "ex_0" / "mixture.wav"
    out_dir = tmp_path / "separated"
    model = str(exp_dir / "publish_dir" / "model.pth")
    command = [sys.executable, "-m", "asteroid_lass.cli", "separate", str(mixture)]
    command += ["--model", model, "--out", str(out_dir)]
    printed = run_checked(command, tmp_path).stdout.split()
    assert len(printed) == 2, printed
    source, _ = sf.read(str(mixture))
    for path in printed:
        estimate, rate = sf.read(path)
        assert rate == SR and estimate.shape == source.shape and np.isfinite(estimate).all()
