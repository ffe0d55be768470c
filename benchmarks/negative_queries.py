"""Which negative-query method works: measured on a fixed test set with a trained model.

For every test mixture (target + interferers), the positive query is the target's and the
negative query names an interferer's class. Compared, by mean SI-SDRi of the target estimate:
- ``none``: the positive query alone (the reference);
- ``projection``: separate the negative too and subtract the positive estimate's projection
  onto it (gain clipped to [0, 1]);
- ``embedding``: condition on normalize(e_pos - alpha * e_neg), for a few alphas (what
  ``asteroid_lass.inference`` does, with alpha 0.25).

    python benchmarks/negative_queries.py --model exp/<tag>/best_model.pth \
        --test_csv data/mixtures/test.csv --manifest data/test.csv
"""

import argparse

import numpy as np
import torch

from asteroid_lass import LASSResUNet
from asteroid_lass.data import FixedMixtureDataset, load_manifest
from asteroid_lass.inference import combine_negative
from asteroid_lass.metrics import si_sdr_improvement


def remove_projection(positive: torch.Tensor, negative: torch.Tensor) -> torch.Tensor:
    """positive - clip(<p, n> / <n, n>, 0, 1) * n, along time."""
    gain = (positive * negative).sum(-1, keepdim=True) / negative.square().sum(-1, keepdim=True)
    return positive - gain.clamp(0.0, 1.0) * negative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", required=True)
    parser.add_argument("--test_csv", required=True)
    parser.add_argument("--manifest", required=True, help="Manifest of the test clips (labels).")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    args = parser.parse_args()

    model = LASSResUNet.from_pretrained(args.model).eval()
    test_set = FixedMixtureDataset(args.test_csv, sample_rate=int(model.sample_rate))
    labels_of = {
        row.path: row.label_list for row in load_manifest(args.manifest).itertuples(index=False)
    }
    scores = {"none": [], "projection": [], **{f"embedding a={a}": [] for a in args.alphas}}
    with torch.inference_mode():
        for index, recipe in enumerate(test_set.recipes):
            item = test_set[index]
            mixture, target, query = item["mixture"], item["targets"], item["conditions"][0]
            negative = labels_of[recipe["interferer_paths"][0]][0]
            positive_emb, negative_emb = model.embed_query([query, negative])
            both = model(mixture[None], torch.stack([positive_emb, negative_emb])[None])
            estimates = {
                "none": both[:, :1],
                "projection": remove_projection(both[:, :1], both[:, 1:]),
            }
            for alpha in args.alphas:
                combined = combine_negative(positive_emb[None], negative_emb[None], alpha)
                estimates[f"embedding a={alpha}"] = model(mixture[None], combined[None])
            for name, estimate in estimates.items():
                improvement = si_sdr_improvement(mixture[None], estimate, target[None])
                scores[name].append(float(improvement))
    print(f"{len(test_set)} mixtures, negative query = the interferer's class")
    for name, values in scores.items():
        print(
            f"  {name:<18} SI-SDRi mean {np.mean(values):6.2f} dB, median {np.median(values):6.2f} dB"
        )


if __name__ == "__main__":
    main()
