"""The egs/unified/tuss recipe end to end, tiny: every stage's files, per-task tables with sane
values, a budget-matched specialist, and the trained model through ``asteroid-lass separate``."""

import json
import os
import sys

import numpy as np
import pandas as pd
import soundfile as sf
import torch
import yaml

from recipe_tools import REPO, run_checked

RECIPE = os.path.join(REPO, "egs", "unified", "tuss")
TASKS = {
    "enhancement": ["speech", "sfxbg"],
    "speech_separation": ["speech"],
    "music": ["drums", "bass", "vocals", "other"],
    "cinematic": ["speech", "musicbg", "sfxbg"],
    "universal": ["sfx"],
}


def _tiny_conf() -> dict:
    with open(os.path.join(RECIPE, "local", "conf.yml")) as conf_file:
        conf = yaml.safe_load(conf_file)
    conf["data"].update(
        segment_seconds=1.0,
        test_segment_seconds=1.5,
        items_per_epoch=8,
        n_speakers=4,
        utterances_per_speaker=2,
        clips_per_class=2,
        clip_seconds=[1.5, 2.5],
        n_train_songs=2,
        n_test_songs=2,
        song_seconds=6.0,
        n_valid=1,
        n_test=2,
    )
    conf["training"].update(epochs=1, batch_size=2)
    return conf


def test_unified_recipe_end_to_end(tmp_path):
    conf = tmp_path / "tiny.yml"
    conf.write_text(yaml.safe_dump(_tiny_conf()))
    data_dir, exp_dir = tmp_path / "data", tmp_path / "exp"
    run_args = ["bash", "run.sh", "--conf", str(conf), "--data_dir", str(data_dir)]
    run_args += ["--exp_dir", str(exp_dir), "--python_path", sys.executable]
    log = run_checked(run_args, RECIPE).stdout

    # Stage 0: one manifest per split, every prompt category present.
    for split in ("train", "test"):
        categories = set(pd.read_csv(data_dir / f"{split}.csv")["category"])
        assert categories == {"speech", "sfx", "sfxbg", "drums", "bass", "vocals", "other"} | {
            "musicbg"
        }, (split, categories)
    # Stage 1: a shareable list (and its settings) per task and split.
    for task in TASKS:
        for split in ("valid", "test"):
            assert (data_dir / "lists" / f"{split}_{task}.csv").is_file()
            settings = json.loads((data_dir / "lists" / f"{split}_{task}.json").read_text())
            assert settings["task"] == task and settings["sample_rate"] == 16000
    # Stage 2: the specialist had exactly the unified model's number of optimiser steps.
    steps = [
        torch.load(exp_dir / where / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        for where in (".", "specialist")
    ]
    assert steps[0] > 0 and steps[0] == steps[1], steps
    assert "specialist for speech_separation" in log
    for path in [
        "conf.yml",
        "best_model.pth",
        "specialist/best_model.pth",
        "eval/final_metrics.json",
        "eval/references.json",
        "eval/per_task.csv",
        "eval/per_task.md",
        "eval/per_prompt.csv",
        "compare.md",
        "publish_dir/model.pth",
        "publish_dir/README.md",
    ]:
        assert (exp_dir / path).is_file(), path

    # Stage 3: every task scored, finite, with its references.
    per_task = pd.read_csv(exp_dir / "eval" / "per_task.csv")
    assert list(dict.fromkeys(per_task["task"])) == list(TASKS)
    scores = per_task[["SI-SDRi", "SNRi", "SI-SDR", "SNR"]].to_numpy()
    assert np.isfinite(scores).all()
    for task, rows in per_task.groupby("task"):
        systems = dict(zip(rows["system"], rows["SI-SDRi"]))
        expected = {"tuss", "oracle_irm", "mixture"} | (
            {"specialist"} if task == "speech_separation" else set()
        )
        assert set(systems) == expected, (task, systems)
        assert systems["mixture"] == 0.0  # the unprocessed input improves nothing
        assert systems["oracle_irm"] > 3.0, (task, systems)  # the mask ceiling is well above
    per_prompt = pd.read_csv(exp_dir / "eval" / "per_prompt.csv")
    for task, prompts in TASKS.items():
        # Every prompt of the task is scored (a silent reference may drop single outputs).
        assert set(per_prompt[per_prompt.task == task]["prompt"]) <= set(prompts)
        assert len(set(per_prompt[per_prompt.task == task]["prompt"])) >= 1
    compare = (exp_dir / "compare.md").read_text()
    assert "| specialist |" in compare and "| cinematic | tuss |" in compare
    card = (exp_dir / "publish_dir" / "README.md").read_text()
    assert "Test metrics per task" in card and "License\nModel weights: MIT" in card
    final = json.loads((exp_dir / "eval" / "final_metrics.json").read_text())
    assert np.isfinite(final["si_sdr_imp"]) and np.isfinite(final["energy_sdr_imp"])

    # The published model through the command line, with an enhancement prompt list.
    mixture = exp_dir / "eval" / "enhancement" / "examples" / "ex_0" / "mixture.wav"
    out_dir = tmp_path / "separated"
    model = str(exp_dir / "publish_dir" / "model.pth")
    command = [sys.executable, "-m", "asteroid_lass.cli", "separate", str(mixture)]
    command += ["--model", model, "--query", "speech", "--query", "sfxbg", "--out", str(out_dir)]
    printed = run_checked(command, tmp_path).stdout.split()
    assert [os.path.basename(p) for p in printed] == ["mixture_speech.wav", "mixture_sfxbg.wav"]
    source, _ = sf.read(str(mixture))
    for path in printed:
        estimate, rate = sf.read(path)
        assert rate == 16000 and estimate.shape == source.shape and np.isfinite(estimate).all()
