"""Stage 4: a publishable model (Asteroid's ``save_publishable`` format) and its model card."""

import argparse
import json
import os

import torch
import yaml
from asteroid.models.publisher import save_publishable

from asteroid_lass.data import QueryMixtureDataset
from asteroid_lass.data.datasets import BUILTIN_CORPUS_LICENSE

RECIPE = "asteroid-lass/egs/audioset/lass"


def publish(exp_dir: str) -> str:
    """Write ``exp_dir/publish_dir/{model.pth,README.md}``; returns the model path."""
    model_dict = torch.load(os.path.join(exp_dir, "best_model.pth"), weights_only=True)
    with open(os.path.join(exp_dir, "eval", "final_metrics.json")) as metrics_file:
        metrics = {k: float(v) for k, v in json.load(metrics_file).items()}
    with open(os.path.join(exp_dir, "eval", "references.json")) as references_file:
        references = json.load(references_file)
    with open(os.path.join(exp_dir, "conf.yml")) as conf_file:
        train_conf = yaml.safe_load(conf_file)
    model_dict["dataset"] = QueryMixtureDataset.dataset_name
    # The built-in corpus's license; a user's own manifest brings its own terms (see the card).
    model_dict["licenses"] = [BUILTIN_CORPUS_LICENSE]
    publish_dir = os.path.join(exp_dir, "publish_dir")
    save_publishable(publish_dir, model_dict, metrics=metrics, train_conf=train_conf, recipe=RECIPE)
    model_path = os.path.join(publish_dir, "model.pth")
    torch.load(model_path, weights_only=True)  # fail here, not at the user's, if not plain
    write_model_card(publish_dir, model_dict, metrics, references, train_conf)
    return model_path


def write_model_card(publish_dir, model_dict, metrics, references, train_conf) -> None:
    args = model_dict["model_args"]
    lines = [
        f"# LASSResUNet ({train_conf['model']['size']}) trained with {RECIPE}",
        "",
        "Language-queried source separation: give a mixture and a text query, get the described "
        "sound. Load with `asteroid.models.BaseModel.from_pretrained('model.pth')` after "
        "`import asteroid_lass`.",
        "",
        "## Data",
        f"- Training manifest: {train_conf.get('data', {})}",
        f"- Sample rate {args['sample_rate']:.0f} Hz, query encoder {args['query_encoder']}",
        "",
        "## Test metrics (dB, mean over the fixed test mixtures)",
        "| system | SI-SDR | SI-SDRi | SDR | SDRi | energy SDR | energy SDRi |",
        "|---|---|---|---|---|---|---|",
    ]
    for system, values in references.items():
        lines.append(
            f"| {system} | {values['si_sdr']:.2f} | {values['si_sdr_imp']:.2f} | "
            f"{values['sdr']:.2f} | {values['sdr_imp']:.2f} | {values['energy_sdr']:.2f} | "
            f"{values['energy_sdr_imp']:.2f} |"
        )
    lines += [
        "",
        "`oracle_irm` is the ideal ratio mask at the model's STFT (the ceiling of mask-based "
        "separation); `mixture` is the unprocessed input.",
        "",
        "## Configuration",
        "```yaml",
        yaml.safe_dump(train_conf).strip(),
        "```",
        "",
        "## License",
        "Model weights: MIT (as the training data of the default recipe). If you trained on your "
        "own manifest, the data's licenses apply.",
    ]
    with open(os.path.join(publish_dir, "README.md"), "w") as card:
        card.write("\n".join(lines) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exp_dir", required=True)
    exp_dir = parser.parse_args(argv).exp_dir
    model_path = publish(exp_dir)
    card = open(os.path.join(os.path.dirname(model_path), "README.md")).read()
    table = card.split("## Test metrics")[1].split("## Configuration")[0]
    print("\n== Summary ==\nTest metrics" + table.rstrip())
    print(
        f"\nModel:        {model_path}\nModel card:   {os.path.join(exp_dir, 'publish_dir', 'README.md')}"
    )
    print(
        f"Metrics:      {os.path.join(exp_dir, 'eval', 'final_metrics.json')}, all_metrics.csv, per_class.csv"
    )
    print(f"Examples:     {os.path.join(exp_dir, 'eval', 'examples')}")
    print(f"Checkpoints:  {os.path.join(exp_dir, 'checkpoints')}")


if __name__ == "__main__":
    main()
