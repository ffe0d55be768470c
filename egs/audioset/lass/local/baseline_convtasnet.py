"""The query-free baseline: Asteroid's ConvTasNet (2 outputs, PIT) on the same mixtures.

Trained on the same dynamic mixtures (sources: the target and the rest) for the same number of
steps and batch size as the LASS model, evaluated on the same test set. ConvTasNet has no
query, so the output closest to the target is picked with the reference in hand: an *oracle*
choice that favours the baseline. ``compare`` writes both, with the references, to
``exp/<tag>/compare.md``.

    python local/baseline_convtasnet.py train --conf local/conf.yml --train_manifest ... \
        --valid_csv ... --exp_dir exp/<tag>/convtasnet
    python local/baseline_convtasnet.py compare --exp_dir exp/<tag> --test_csv ...
"""

import argparse
import json
import os
import sys

import pandas as pd
import pytorch_lightning as pl
import torch
import yaml
from asteroid.engine.system import System
from asteroid.losses import PITLossWrapper, pairwise_neg_sisdr
from asteroid.models import ConvTasNet
from pytorch_lightning.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from eval import score  # noqa: E402  (the recipe's own metric code)
from train import make_train_set  # noqa: E402  (the same training mixtures)

from asteroid_lass.data import FixedMixtureDataset  # noqa: E402

# Sized for the CPU budget of the default recipe (about the LASS `small` model's step time).
CONVTASNET_ARGS = dict(
    n_filters=128,
    kernel_size=32,
    stride=16,
    bn_chan=64,
    hid_chan=128,
    skip_chan=64,
    n_blocks=6,
    n_repeats=2,
)


class TwoSources(Dataset):
    """(mixture, target, query) items as (mixture, [target, rest]) for PIT training."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, index):
        mixture, target, _ = self.dataset[index]
        return mixture, torch.stack([target, mixture - target])


class EpochSystem(System):
    def on_train_epoch_start(self):
        self.train_loader.dataset.dataset.set_epoch(self.current_epoch)


def train(conf: dict, train_manifest: str, valid_csv: str, exp_dir: str) -> str:
    pl.seed_everything(conf["training"]["seed"], workers=True)
    data = conf["data"]
    train_set = make_train_set(conf, train_manifest)
    valid_set = FixedMixtureDataset(valid_csv, sample_rate=data["sample_rate"])
    args = dict(batch_size=conf["training"]["batch_size"], num_workers=data["num_workers"])
    train_loader = DataLoader(TwoSources(train_set), shuffle=True, drop_last=True, **args)
    valid_loader = DataLoader(TwoSources(valid_set), **args)
    model = ConvTasNet(n_src=2, sample_rate=data["sample_rate"], **CONVTASNET_ARGS)
    optimizer = torch.optim.Adam(model.parameters(), lr=conf["optim"]["lr"])
    system = EpochSystem(
        model,
        optimizer,
        PITLossWrapper(pairwise_neg_sisdr, pit_from="pw_mtx"),
        train_loader,
        valid_loader,
    )
    checkpoint = ModelCheckpoint(
        os.path.join(exp_dir, "checkpoints"), monitor="val_loss", save_last=True
    )
    trainer = pl.Trainer(
        max_epochs=conf["training"]["epochs"],
        callbacks=[checkpoint],
        default_root_dir=exp_dir,
        accelerator="auto",
        devices=1,
        gradient_clip_val=5.0,
        enable_model_summary=False,
    )
    last = os.path.join(exp_dir, "checkpoints", "last.ckpt")
    trainer.fit(system, ckpt_path=last if os.path.isfile(last) else None)
    state = torch.load(checkpoint.best_model_path or last, map_location="cpu", weights_only=False)
    system.load_state_dict(state["state_dict"])
    path = os.path.join(exp_dir, "best_model.pth")
    conf_dict = model.serialize()
    conf_dict["infos"] = {}  # Asteroid's infos hold a TorchVersion: not weights_only-safe
    torch.save(conf_dict, path)
    return path


def evaluate(model_path: str, test_csv: str) -> pd.DataFrame:
    model = ConvTasNet.from_pretrained(model_path).eval()
    test_set = FixedMixtureDataset(test_csv, sample_rate=int(model.sample_rate))
    rows = []
    with torch.inference_mode():
        for index in range(len(test_set)):
            mixture, target, _ = test_set[index]
            estimates = model(mixture[None])[0]
            scores = [
                score(mixture.numpy(), target.numpy(), e.numpy(), test_set.sample_rate)
                for e in estimates
            ]
            rows.append(max(scores, key=lambda row: row["si_sdr"]))  # oracle output choice
    return pd.DataFrame(rows)


def compare(exp_dir: str, test_csv: str) -> str:
    """Write ``exp_dir/compare.md``: LASS model, ConvTasNet (oracle pick), IRM, mixture."""
    table = pd.read_csv(os.path.join(exp_dir, "eval", "all_metrics.csv"))
    baseline = evaluate(os.path.join(exp_dir, "convtasnet", "best_model.pth"), test_csv)
    columns = ["si_sdr", "si_sdr_imp", "sdr", "sdr_imp"]
    means = table.groupby("system")[columns].mean()
    means.loc["convtasnet_oracle_pick"] = baseline[columns].mean()
    names = {
        "model": "LASSResUNet (text query)",
        "convtasnet_oracle_pick": "ConvTasNet, 2 outputs, oracle pick",
        "oracle_irm": "oracle IRM",
        "mixture": "mixture",
    }
    lines = ["| system | SI-SDR | SI-SDRi | SDR | SDRi |", "|---|---|---|---|---|"]
    for system in ["model", "convtasnet_oracle_pick", "oracle_irm", "mixture"]:
        values = means.loc[system]
        lines.append(
            f"| {names[system]} | " + " | ".join(f"{values[c]:.2f}" for c in columns) + " |"
        )
    text = (
        "# Same test mixtures, same training budget (dB, mean)\n\n"
        + "\n".join(lines)
        + "\n\nConvTasNet gets no query: its output closest to the target is chosen with the "
        "reference (an oracle choice that favours it).\n"
    )
    path = os.path.join(exp_dir, "compare.md")
    with open(path, "w") as out:
        out.write(text)
    with open(os.path.join(exp_dir, "convtasnet", "final_metrics.json"), "w") as out:
        json.dump({c: float(baseline[c].mean()) for c in columns}, out, indent=2)
    print(text)
    return path


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("action", choices=["train", "compare"])
    parser.add_argument("--conf", default=os.path.join("local", "conf.yml"))
    parser.add_argument("--train_manifest")
    parser.add_argument("--valid_csv")
    parser.add_argument("--test_csv")
    parser.add_argument("--exp_dir", required=True)
    parser.add_argument("--epochs", type=int)
    args = parser.parse_args(argv)
    if args.action == "train":
        with open(args.conf) as conf_file:
            conf = yaml.safe_load(conf_file)
        if args.epochs:
            conf["training"]["epochs"] = args.epochs
        print(train(conf, args.train_manifest, args.valid_csv, args.exp_dir))
    else:
        compare(args.exp_dir, args.test_csv)


if __name__ == "__main__":
    main()
