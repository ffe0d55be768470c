"""Items/s of QueryMixtureDataset with DataLoader workers, against the training step it feeds.

Both are measured in this run: the loader's throughput with 2 workers, and the time of one
training step of the LASS recipe's model (``egs/audioset/lass/local/conf.yml``: its channels,
STFT and batch size, on segments of 128 STFT frames) on a batch of the same size. The ratio
says whether data loading can keep up with training on this machine.

    python benchmarks/data_speed.py [--workers 2] [--batch N] [--segment SECONDS]
"""

import argparse
import os
import tempfile
import time

import torch
import yaml
from torch.utils.data import DataLoader

from asteroid_lass import LASSResUNet
from asteroid_lass.data import QueryMixtureDataset
from asteroid_lass.data.batch import collate_separation
from asteroid_lass.data.synth import make_corpus
from asteroid_lass.recipes.adapt import MAX_SEGMENT_BLOCKS, blocks_to_seconds

RECIPE_CONF = os.path.join(
    os.path.dirname(__file__), "..", "egs", "audioset", "lass", "local", "conf.yml"
)


def main() -> None:
    with open(RECIPE_CONF) as conf_file:
        conf = yaml.safe_load(conf_file)
    model_conf, sample_rate = conf["model"], conf["data"]["sample_rate"]
    # The recipe's training segment: 128 frames of its STFT.
    recipe_segment = blocks_to_seconds(MAX_SEGMENT_BLOCKS, model_conf["hop_length"] / sample_rate)
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=conf["training"]["batch_size"])
    parser.add_argument("--segment", type=float, default=recipe_segment)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--sample-rate", type=int, default=sample_rate)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="lass-data-bench-")
    manifest = make_corpus(root, clips_per_class=10, sample_rate=args.sample_rate, split="train")
    dataset = QueryMixtureDataset(
        manifest,
        args.sample_rate,
        segment_seconds=args.segment,
        items_per_epoch=args.batch * args.batches,
        seed=0,
    )
    loader = DataLoader(
        dataset,
        batch_size=args.batch,
        num_workers=args.workers,
        persistent_workers=args.workers > 0,
        collate_fn=collate_separation,
    )
    iterator = iter(loader)
    next(iterator)  # start-up (workers, first decodes) is not throughput
    start = time.perf_counter()
    n_items = 0
    for batch in iterator:
        n_items += batch["mixture"].shape[0]
    items_per_second = n_items / (time.perf_counter() - start)

    torch.set_num_threads(2)
    model = LASSResUNet(
        sample_rate=args.sample_rate,
        n_fft=model_conf["n_fft"],
        hop_length=model_conf["hop_length"],
        channels=model_conf["channels"],
        condition_dim=384,
    )
    optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
    mixture = torch.randn(args.batch, int(args.segment * args.sample_rate))
    embedding = torch.randn(args.batch, 384)
    timings = []
    for _ in range(4):
        start = time.perf_counter()
        loss = (model(mixture[:, None], embedding[:, None])[:, 0, 0] - mixture).abs().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - start)
    step = min(timings[1:])
    consumed = args.batch / step
    print(
        f"QueryMixtureDataset, {args.workers} workers, {args.segment} s items: "
        f"{items_per_second:.1f} items/s"
    )
    print(
        f"{model_conf['channels']} model training step (batch {args.batch}, hop "
        f"{model_conf['hop_length']}): {step:.2f} s -> consumes {consumed:.1f} items/s"
    )
    print(
        f"loader / model ratio: {items_per_second / consumed:.1f}x "
        f"({'data keeps up' if items_per_second > consumed else 'data is the bottleneck'})"
    )


if __name__ == "__main__":
    main()
