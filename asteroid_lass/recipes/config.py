"""Recipe configuration: ``local/conf.yml`` is the single source of every setting.

The YAML has two levels (groups, then unique leaf keys). Every leaf is also a command-line
option (``--key value``), as in Asteroid's recipes. The ``model`` group names the model by its
registry name (``name: LASSResUNet``) next to its arguments.
"""

import argparse
import contextlib
import os
import sys
from typing import Callable, Iterator, List, Optional, Sequence, Tuple

import torch
import yaml
from asteroid.models import get as get_registered_model
from asteroid.utils import parse_args_as_dict, prepare_parser_from_dict

from ..errors import LASSError, LASSInputError
from ..models.base import EmbeddingSeparator, Separator
from ..queries import build_query_encoder

#: Model-group keys that describe the query encoder rather than the network.
ENCODER_KEYS = ("query_encoder", "clap_checkpoint")


def read_conf(path: str) -> dict:
    """Read a recipe's YAML configuration, with a clear error for a missing or bad file."""
    if not os.path.isfile(path):
        raise LASSInputError(f"--conf: configuration file not found: {path}")
    with open(path) as conf_file:
        try:
            conf = yaml.safe_load(conf_file)
        except yaml.YAMLError as err:
            raise LASSInputError(f"--conf {path} is not valid YAML: {err}") from err
    if not isinstance(conf, dict) or not all(isinstance(v, dict) for v in conf.values()):
        raise LASSInputError(f"--conf {path}: expected groups of settings (two levels).")
    return conf


def parse_recipe_args(
    description: str,
    default_conf: str,
    extra: Sequence[Tuple[str, dict]] = (),
    argv: Optional[List[str]] = None,
) -> Tuple[dict, argparse.Namespace]:
    """``--conf FILE`` plus every leaf of that file as ``--key value``, plus ``extra`` options.

    Args:
        description: The script's help text.
        default_conf: The recipe's ``local/conf.yml``.
        extra: ``(flag, argparse kwargs)`` pairs for the script's own options.
        argv: Arguments (default: ``sys.argv[1:]``).

    Returns:
        (conf, args): the configuration with overrides applied (without ``main_args``), and
        the parsed namespace.
    """
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--conf", default=default_conf)
    known, _ = pre.parse_known_args(argv)
    defaults = read_conf(known.conf)
    parser = prepare_parser_from_dict(defaults, argparse.ArgumentParser(description=description))
    parser.add_argument("--conf", default=known.conf, help="The recipe's YAML configuration.")
    for flag, kwargs in extra:
        parser.add_argument(flag, **kwargs)
    conf, args = parse_args_as_dict(parser, return_plain_args=True, args=argv)
    # Only the file's groups: argparse's own ("main_args", "positional arguments") are not
    # settings.
    conf = {group: values for group, values in conf.items() if group in defaults}
    return conf, args


def name_list(value) -> List[str]:
    """A list-of-names setting, written ``a,b,c`` (one leaf that ``--key a,b`` can override,
    and that Asteroid's hparams logging accepts) or as a YAML list."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return [str(item).strip() for item in items if str(item).strip()]


def query_encoder_spec(model_conf: dict) -> dict:
    """The query encoder spec that the ``model`` group describes."""
    name = model_conf.get("query_encoder") or "sentence"
    if name == "clap":
        if not model_conf.get("clap_checkpoint"):
            raise LASSInputError("query_encoder: clap needs --clap_checkpoint PATH.")
        return {"name": "clap", "checkpoint": os.path.abspath(model_conf["clap_checkpoint"])}
    return {"name": name}


def build_model(conf: dict) -> Separator:
    """The model the conf's ``model`` group names, at the ``data`` group's sample rate.

    For an embedding model, the query encoder is built too, and attached. The initial weights
    follow ``training.seed`` (see :func:`seeded_init`).
    """
    model_conf = dict(conf["model"])
    name = model_conf.pop("name")
    try:
        model_class = get_registered_model(name)
    except ValueError as err:
        raise LASSInputError(f"model name {name!r} is not a registered model ({err}).") from err
    args = {k: v for k, v in model_conf.items() if k not in ENCODER_KEYS}
    if "sample_rate" in conf.get("data", {}):
        args.setdefault("sample_rate", conf["data"]["sample_rate"])
    with seeded_init(conf):
        if issubclass(model_class, EmbeddingSeparator):
            encoder = build_query_encoder(query_encoder_spec(model_conf))
            model = model_class(condition_dim=encoder.dim, query_encoder=encoder.spec(), **args)
            model.set_query_encoder(encoder)
            return model
        return model_class(**args)


def build_baseline(conf: dict, n_src: int) -> Separator:
    """Asteroid's ConvTasNet as a blind separator, sized by the conf's ``baseline`` group
    (its keys are ConvTasNet's arguments prefixed with ``baseline_``); initial weights as in
    :func:`build_model`."""
    from ..models import AsteroidSeparator

    args = {
        key[len("baseline_") :]: value
        for key, value in conf.get("baseline", {}).items()
        if key.startswith("baseline_")
    }
    args.update(n_src=n_src, sample_rate=conf["data"]["sample_rate"])
    with seeded_init(conf):
        return AsteroidSeparator("ConvTasNet", args)


#: What a recipe script shows as one ``error:`` line: problems of the user's input (files,
#: conf values, manifests), which the package raises as these types.
USER_ERRORS = (LASSError, FileNotFoundError, ValueError)


def run_script(main: Callable[[], None]) -> None:
    """Run a recipe script's ``main``; an error of the user's input (:data:`USER_ERRORS`)
    ends it with one line ``error: ...`` on stderr and exit status 2, without a traceback."""
    try:
        main()
    except USER_ERRORS as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        sys.exit(2)


@contextlib.contextmanager
def seeded_init(conf: dict) -> Iterator[None]:
    """Draw random numbers from torch's generator seeded by the conf's ``training.seed``, and
    leave the global generator as it was: a conf builds the same initial weights whatever ran
    before (training seeds itself later, after the model exists). Without a seed, unseeded."""
    seed = conf.get("training", {}).get("seed")
    if seed is None:
        yield
        return
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def save_conf(conf: dict, path: str) -> None:
    """Write the configuration actually used next to the experiment's results."""
    from ..utils import atomic_write

    with atomic_write(path) as tmp_path:
        with open(tmp_path, "w") as out:
            yaml.safe_dump(conf, out, sort_keys=False)
