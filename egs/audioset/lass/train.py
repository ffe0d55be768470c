"""Train LASSResUNet on query-conditioned mixtures (stage 2 of run.sh).

Writes ``exp_dir/conf.yml``, checkpoints (``checkpoints/last.ckpt`` is resumed when present),
``best_k_models.json`` and ``best_model.pth``.
"""

import argparse
import json
import os

import pytorch_lightning as pl
import torch
import yaml
from asteroid.utils import parse_args_as_dict, prepare_parser_from_dict
from pytorch_lightning.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader

from asteroid_lass import LASSResUNet
from asteroid_lass.models.base import save_model_file
from asteroid_lass.data import FixedMixtureDataset, QueryMixtureDataset
from asteroid_lass.queries import build_query_encoder
from asteroid_lass.system import (
    TextConditionedSystem,
    get_loss,
    make_optimizer_and_scheduler,
    training_precision,
)


def query_encoder_spec(model_conf: dict) -> dict:
    if model_conf["query_encoder"] == "clap":
        if not model_conf.get("clap_checkpoint"):
            raise ValueError("query_encoder: clap needs --clap_checkpoint PATH.")
        return {"name": "clap", "checkpoint": os.path.abspath(model_conf["clap_checkpoint"])}
    return {"name": model_conf["query_encoder"]}


def build_model(conf: dict, encoder) -> LASSResUNet:
    return LASSResUNet(
        sample_rate=conf["data"]["sample_rate"],
        n_fft=conf["model"]["n_fft"],
        hop_length=conf["model"]["hop_length"],
        channels=conf["model"]["size"],
        condition_dim=encoder.dim,
        query_encoder=encoder.spec(),
        bn_momentum=conf["model"]["bn_momentum"],
    )


def make_train_set(conf: dict, train_manifest: str) -> QueryMixtureDataset:
    """The dynamic training mixtures that conf.yml's ``data`` group describes."""
    data = conf["data"]
    return QueryMixtureDataset(
        train_manifest,
        sample_rate=data["sample_rate"],
        segment_seconds=data["segment_seconds"],
        max_interferers=data["max_interferers"],
        snr_range=(data["snr_low"], data["snr_high"]),
        query_source=data["query_source"],
        template_probability=data["template_probability"],
        items_per_epoch=data["items_per_epoch"],
        seed=conf["training"]["seed"],
    )


def main(conf: dict, train_manifest: str, valid_csv: str, exp_dir: str) -> str:
    """Train, returning the path of ``best_model.pth``."""
    pl.seed_everything(conf["training"]["seed"], workers=True)
    os.makedirs(exp_dir, exist_ok=True)
    with open(os.path.join(exp_dir, "conf.yml"), "w") as out:
        yaml.safe_dump(conf, out)

    data = conf["data"]
    train_set = make_train_set(conf, train_manifest)
    valid_set = FixedMixtureDataset(valid_csv, sample_rate=data["sample_rate"])
    loader_args = dict(
        batch_size=conf["training"]["batch_size"],
        num_workers=data["num_workers"],
        persistent_workers=data["num_workers"] > 0,
    )
    train_loader = DataLoader(train_set, shuffle=True, drop_last=True, **loader_args)
    valid_loader = DataLoader(valid_set, shuffle=False, **loader_args)

    encoder = build_query_encoder(query_encoder_spec(conf["model"]))
    model = build_model(conf, encoder)
    optimizer, scheduler = make_optimizer_and_scheduler(
        model.parameters(),
        lr=conf["optim"]["lr"],
        weight_decay=conf["optim"]["weight_decay"],
        warmup_steps=conf["optim"]["warmup_steps"],
        half_lr_patience=conf["optim"]["half_lr_patience"],
    )
    system = TextConditionedSystem(
        model=model,
        optimizer=optimizer,
        loss_func=get_loss(conf["training"]["loss"]),
        train_loader=train_loader,
        val_loader=valid_loader,
        scheduler=scheduler,
        config=conf,
        query_encoder=encoder,
    )
    checkpoint_dir = os.path.join(exp_dir, "checkpoints")
    checkpoint = ModelCheckpoint(
        checkpoint_dir, monitor="val_loss", mode="min", save_top_k=3, save_last=True
    )
    callbacks = [checkpoint]
    if conf["training"]["early_stop"]:
        callbacks.append(EarlyStopping(monitor="val_loss", mode="min", patience=10))
    devices, num_nodes = conf["training"]["devices"], conf["training"]["num_nodes"]
    distributed = devices > 1 or num_nodes > 1
    trainer = pl.Trainer(
        max_epochs=conf["training"]["epochs"],
        callbacks=callbacks,
        default_root_dir=exp_dir,
        accelerator="auto",
        devices=devices,
        num_nodes=num_nodes,
        strategy="ddp" if distributed else "auto",
        sync_batchnorm=distributed,
        precision=training_precision(conf["training"]["precision"]),
        gradient_clip_val=5.0,
        log_every_n_steps=10,
        enable_model_summary=False,
    )
    last = os.path.join(checkpoint_dir, "last.ckpt")
    # Resume an interrupted run; Lightning restores model, optimizer, scheduler and epoch.
    trainer.fit(system, ckpt_path=last if os.path.isfile(last) else None)

    best_k = {k: float(v) for k, v in checkpoint.best_k_models.items()}
    with open(os.path.join(exp_dir, "best_k_models.json"), "w") as out:
        json.dump(best_k, out, indent=0)
    best_path = checkpoint.best_model_path or last
    state = torch.load(best_path, map_location="cpu", weights_only=False)  # our own checkpoint
    system.load_state_dict(state["state_dict"])
    model_path = os.path.join(exp_dir, "best_model.pth")
    save_model_file(system.model.cpu(), model_path)
    return model_path


def parse_conf(argv=None):
    """Options of conf.yml (``--conf``, default ``local/conf.yml``) as ``--key value``."""
    here = os.path.dirname(os.path.abspath(__file__))
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--conf", default=os.path.join(here, "local", "conf.yml"))
    known, _ = pre.parse_known_args(argv)
    with open(known.conf) as conf_file:
        defaults = yaml.safe_load(conf_file)
    parser = prepare_parser_from_dict(defaults, parser=argparse.ArgumentParser(description=__doc__))
    parser.add_argument("--conf", default=known.conf)
    parser.add_argument("--train_manifest", required=True)
    parser.add_argument("--valid_csv", required=True)
    parser.add_argument("--exp_dir", required=True)
    return parse_args_as_dict(parser, return_plain_args=True, args=argv)


if __name__ == "__main__":
    conf, plain = parse_conf()
    print(main(conf, plain.train_manifest, plain.valid_csv, plain.exp_dir))
