"""The egs/musdb18/metatasnet recipe end to end, tiny: every stage's files, the per-stem
table, equal training budgets, and the published model through the ``asteroid-lass`` CLI."""

import json
import os
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from recipe_tools import run_checked

from asteroid_lass.recipes.evaluation import museval_metrics

RECIPE = os.path.join(os.path.dirname(__file__), "..", "egs", "musdb18", "metatasnet")
STEMS = ["drums", "bass", "other", "vocals"]
SYSTEMS = ["metatasnet", "convtasnet", "mixture", "oracle_irm"]

TINY_CONF = {
    "data": dict(
        sample_rate=8000,
        mono=True,
        segment=1.0,
        shuffle_p=0.5,
        samples_per_track=4,
        num_workers=0,
        valid_segment=2.0,
        valid_excerpts_per_track=1,
        n_train_songs=2,
        n_valid_songs=1,
        n_test_songs=1,
        song_seconds=8.0,  # the test song's intro (other only) ends after ~5.4 s
        corpus_seed=0,
    ),
    "eval": dict(
        test_segment=None,
        test_excerpts_per_track=None,
        eval_window=30.0,
        oracle_n_fft=256,
        oracle_hop_length=64,
        n_examples=1,
    ),
    "model": dict(
        name="MetaTasNet",
        preset="tiny",
        stage_rates=[4000, 8000],
        generated_weights=True,
        normalize_input=True,
    ),
    "objective": dict(
        objective="metatasnet",
        reconstruction_weight=0.05,
        similarity_weight=2.0,
        dissimilarity_weight=3.0,
        silence_threshold=0.0,
    ),
    "training": dict(
        epochs=1,
        batch_size=2,
        precision="32",
        early_stop=False,
        seed=0,
        devices=1,
        num_nodes=1,
        gradient_clip=5.0,
        spectrogram_stats_items=2,
    ),
    "optim": dict(lr=0.001, weight_decay=0.0005, warmup_steps=0, half_lr_patience=None),
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
        dataset_title="built-in music corpus",
        recipe="egs/musdb18/metatasnet",
    ),
}


@pytest.mark.recipe
def test_musdb18_metatasnet_recipe_end_to_end(tmp_path):
    conf = tmp_path / "tiny.yml"
    conf.write_text(yaml.safe_dump(TINY_CONF))
    data_dir, exp_dir = tmp_path / "data", tmp_path / "exp"
    run = [
        "bash",
        "run.sh",
        "--conf",
        str(conf),
        "--data_dir",
        str(data_dir),
        "--exp_dir",
        str(exp_dir),
        "--python_path",
        sys.executable,
    ]
    log = run_checked(run, cwd=RECIPE).stdout
    for stage in ["Stage 0", "Stage 1", "Stage 2", "Stage 3"]:
        assert stage in log, log

    # Stage 0: the corpus in MUSDB18-HQ's layout, one of the two training songs held out.
    songs = sorted(os.listdir(data_dir / "music" / "train"))
    assert len(songs) == 2 and len(os.listdir(data_dir / "music" / "test")) == 1
    assert (data_dir / "valid_tracks.txt").read_text().splitlines() == songs[-1:]
    for path in [
        "conf.yml",
        "best_model.pth",
        "checkpoints/last.ckpt",
        "convtasnet/best_model.pth",
        "convtasnet/checkpoints/last.ckpt",
        "eval/all_metrics.csv",
        "eval/final_metrics.json",
        "eval/references.json",
        "compare.md",
        "publish_dir/model.pth",
        "publish_dir/README.md",
    ]:
        assert os.path.isfile(exp_dir / path), path

    # Stage 1: the baseline is a ConvTasNet with one output per stem, trained for exactly as
    # many steps: (1 song x 4 crops) / batch 2 = 2 steps each.
    steps = [
        torch.load(exp_dir / d / "checkpoints" / "last.ckpt", weights_only=False)["global_step"]
        for d in ["", "convtasnet"]
    ]
    assert steps == [2, 2]
    baseline = torch.load(exp_dir / "convtasnet" / "best_model.pth", weights_only=True)
    assert baseline["model_args"]["model_name"] == "ConvTasNet"
    assert baseline["model_args"]["model_args"]["n_src"] == 4
    model_file = torch.load(exp_dir / "best_model.pth", weights_only=True)
    assert model_file["model_name"] == "MetaTasNet"
    spectrogram_std = model_file["state_dict"]["stages.0.encoder.spectrogram.std"]
    assert not torch.allclose(spectrogram_std, torch.ones_like(spectrogram_std))  # set from data

    # Stage 2: finite metrics for every stem, the per-stem table, references.
    final = json.loads((exp_dir / "eval" / "final_metrics.json").read_text())
    for key in ["si_sdr", "si_sdr_imp", "sisec_sdr", "sisec_sdr_imp", "sisec_sdr_stem_mean"]:
        assert np.isfinite(final[key]), key
    for stem in STEMS:
        assert np.isfinite(final[f"sisec_sdr_{stem}"]), stem
    references = json.loads((exp_dir / "eval" / "references.json").read_text())
    assert set(references) == set(SYSTEMS)
    assert all(np.isfinite(v) for s in SYSTEMS for v in references[s].values())
    assert references["mixture"]["si_sdr_imp"] == 0.0
    compare = (exp_dir / "compare.md").read_text()
    for stem in STEMS:
        for system in SYSTEMS:
            assert f"| {stem} / {system} |" in compare, (stem, system)

    # The mixture's SiSEC SDR of the vocals, straight from museval on the song's files.
    song = data_dir / "music" / "test" / os.listdir(data_dir / "music" / "test")[0]
    vocals, _ = sf.read(song / "vocals.wav", dtype="float64")
    mixture, rate = sf.read(song / "mixture.wav", dtype="float64")
    # museval's BSS-eval with its own defaults (v4), 1 s frames.
    bss_eval = museval_metrics().bss_eval
    frames = bss_eval(vocals[None, :, None], mixture[None, :, None], window=rate, hop=rate)[0]
    expected = np.median(frames[np.isfinite(frames)])
    row = compare.split("| vocals / mixture |")[1].split("|")[0]
    assert float(row) == pytest.approx(expected, abs=0.01)

    # Stage 3 and the CLI: the published model separates a wav file by stem names.
    card = (exp_dir / "publish_dir" / "README.md").read_text()
    assert "sisec_sdr" in card and "Model weights: MIT" in card
    out_dir = tmp_path / "separated"
    result = run_checked(
        [
            os.path.join(os.path.dirname(sys.executable), "asteroid-lass"),
            "separate",
            str(song / "mixture.wav"),
            "--model",
            str(exp_dir / "publish_dir" / "model.pth"),
            "--query",
            "vocals",
            "--query",
            "drums",
            "--out",
            str(out_dir),
        ],
        cwd=tmp_path,
    )
    written = result.stdout.split()
    assert [os.path.basename(p) for p in written] == ["mixture_vocals.wav", "mixture_drums.wav"]
    for path in written:
        estimate, estimate_rate = sf.read(path)
        assert estimate_rate == rate and estimate.shape == mixture.shape
        assert np.isfinite(estimate).all() and np.abs(estimate).max() > 0
