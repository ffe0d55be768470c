"""A publishable model (Asteroid's ``save_publishable`` layout) and its model card."""

import argparse
import contextlib
import io
import json
import os
from typing import Optional, Sequence

import torch
import yaml
from asteroid.models.publisher import save_publishable

from ..errors import LASSInputError
from ..utils import atomic_write
from .config import read_conf
from .evaluation import markdown_table

#: The conf's ``publish`` group: ``license`` (SPDX id of the weights' licence), ``data_license``
#: (the training data's terms), ``dataset_title`` (its name), ``recipe`` (where it was trained).
REQUIRED_KEYS = ("license", "dataset_title", "recipe")


def publish(exp_dir: str, conf: dict, extra: str = "") -> str:
    """Write ``exp_dir/publish_dir/{model.pth,README.md}``; returns the model path.

    Reads ``exp_dir/best_model.pth`` and ``exp_dir/eval/{final_metrics,references}.json``.
    The model card states the licence set in the conf's ``publish`` group.

    Args:
        exp_dir: The experiment folder.
        conf: The configuration the model was trained with.
        extra: Markdown added to the model card after the test metrics (e.g. per-task tables).
    """
    settings = conf.get("publish", {})
    missing = [key for key in REQUIRED_KEYS if not settings.get(key)]
    if missing:
        raise ValueError(f"the conf's publish group lacks {missing} (e.g. license: MIT).")
    model_dict = torch.load(os.path.join(exp_dir, "best_model.pth"), weights_only=True)
    with open(os.path.join(exp_dir, "eval", "final_metrics.json")) as metrics_file:
        metrics = {k: float(v) for k, v in json.load(metrics_file).items()}
    with open(os.path.join(exp_dir, "eval", "references.json")) as references_file:
        references = json.load(references_file)
    model_dict["dataset"] = settings["dataset_title"]
    model_dict["licenses"] = [
        dict(
            title=settings["dataset_title"],
            license=settings.get("data_license", settings["license"]),
            non_commercial=bool(settings.get("non_commercial", False)),
        )
    ]
    publish_dir = os.path.join(exp_dir, "publish_dir")
    with contextlib.redirect_stdout(io.StringIO()):  # its upload advert is not for local runs
        save_publishable(
            publish_dir, model_dict, metrics=metrics, train_conf=conf, recipe=settings["recipe"]
        )
    model_path = os.path.join(publish_dir, "model.pth")
    torch.load(model_path, weights_only=True)  # fail here, not at the user's, if not plain
    card = model_card(model_dict, references, conf, extra)
    with atomic_write(os.path.join(publish_dir, "README.md")) as tmp_path:
        with open(tmp_path, "w") as out:
            out.write(card)
    return model_path


def model_card(model_dict: dict, references: dict, conf: dict, extra: str = "") -> str:
    """The model card: what it is, how to load it, its test metrics, settings and licence."""
    settings = conf["publish"]
    args = model_dict["model_args"]
    lines = [
        f"# {model_dict['model_name']} trained with {settings['recipe']}",
        "",
        "Load with `asteroid.models.BaseModel.from_pretrained('model.pth')` after "
        "`import asteroid_lass`, or run `asteroid-lass separate --model model.pth ...`.",
        "",
        "## Data",
        f"- {settings['dataset_title']}, sample rate {float(args['sample_rate']):.0f} Hz",
        "",
        "## Test metrics (dB, mean over the fixed test set's audible references)",
        markdown_table(references),
        "",
        "`oracle_irm` is the ideal ratio mask (the ceiling of mask-based separation); "
        "`mixture` is the unprocessed input.",
        "",
        *([extra.strip(), ""] if extra.strip() else []),
        "## Configuration",
        "```yaml",
        yaml.safe_dump(conf, sort_keys=False).strip(),
        "```",
        "",
        "## License",
        f"Model weights: {settings['license']}. Training data: "
        f"{settings.get('data_license', settings['license'])}.",
    ]
    return "\n".join(lines) + "\n"


def publish_stage(
    description: str,
    results: str = "eval",
    card_section: Optional[str] = None,
    section_heading: str = "",
    argv: Optional[Sequence[str]] = None,
) -> str:
    """A recipe's publishing stage: ``--exp_dir DIR``, the conf training wrote there, then
    :func:`publish`; prints where the model, its card and the results are.

    Args:
        description: The stage's help text (the recipe script's docstring).
        results: What to point the user to, relative to the experiment folder.
        card_section: A Markdown file of stage 3, relative to the experiment folder, added to
            the model card under ``section_heading``.
        section_heading: Heading line(s) put before ``card_section``'s text.
        argv: Command-line arguments (default: ``sys.argv``).

    Returns:
        str: The published model's path.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--exp_dir", required=True)
    exp_dir = parser.parse_args(argv).exp_dir
    extra = ""
    if card_section is not None:
        section_path = os.path.join(exp_dir, card_section)
        if not os.path.isfile(section_path):
            raise LASSInputError(f"{section_path} not found: run the evaluation stage first.")
        with open(section_path) as section:
            extra = section_heading + section.read()
    model_path = publish(exp_dir, read_conf(os.path.join(exp_dir, "conf.yml")), extra)
    print(f"Model:       {model_path}")
    print(f"Model card:  {os.path.join(os.path.dirname(model_path), 'README.md')}")
    print(f"Results:     {os.path.join(exp_dir, results)}")
    return model_path
