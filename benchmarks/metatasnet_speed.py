"""Real-time factor and peak memory of Meta-TasNet inference on the CPU.

Separates all four stems of a 60 s and a 600 s file with ``asteroid_lass.inference.
separate_file`` (10 s windows, 25 % overlap, file read and written in blocks), for:

- ``mtn-paper``: the paper preset (45.5 M parameters, 8/16/32 kHz stages, 44.1 kHz in/out);
- ``mtn-cpu``: the model of ``egs/musdb18/metatasnet/local/conf.yml`` (16 kHz);
- reference, in the same run: ``lassresunet-base`` (the package's LASSResUNet ``base``,
  one text-queried output) and ``convtasnet`` (the recipe's four-output ConvTasNet baseline).

Random weights (speed does not depend on them). Every measurement runs in its own process so
that its peak memory is its own.

    python benchmarks/metatasnet_speed.py [--seconds 60 600] [--models mtn-paper mtn-cpu ...]
"""

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, run_isolated  # noqa: E402
from inference_speed import _input_file  # noqa: E402

RECIPE_CONF = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "egs", "musdb18", "metatasnet", "local"
)
MODELS = ("mtn-paper", "mtn-cpu", "lassresunet-base", "convtasnet")
STEMS = ["drums", "bass", "other", "vocals"]


def _model(name: str):
    """(model, query) for a benchmark model name, random weights, eval mode."""
    import torch

    from asteroid_lass.models import LASSResUNet, MetaTasNet
    from asteroid_lass.recipes.config import build_baseline, build_model, read_conf

    torch.manual_seed(0)
    conf = read_conf(os.path.join(RECIPE_CONF, "conf.yml"))
    if name == "mtn-paper":
        return MetaTasNet(preset="paper", sample_rate=44100).eval(), STEMS
    if name == "mtn-cpu":
        return build_model(conf).eval(), STEMS
    if name == "lassresunet-base":
        model = LASSResUNet(channels="base", condition_dim=512).eval()
        return model, torch.nn.functional.normalize(torch.randn(512), dim=0)
    if name == "convtasnet":
        return build_baseline(conf, n_src=len(STEMS)).eval(), None
    raise ValueError(f"unknown model {name!r}; choose from {MODELS}.")


def worker(args) -> None:
    import torch

    from asteroid_lass.inference import separate_file

    torch.set_num_threads(args.threads)
    model, query = _model(args.model)
    path = _input_file(args.workdir, args.worker_seconds)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    separate_file(
        model,
        path,
        query=query,
        output_dir=tempfile.mkdtemp(dir=args.workdir),
        window=args.window,
        overlap=args.overlap,
        batch_size=1,
    )
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                model=args.model,
                parameters=sum(p.numel() for p in model.parameters()),
                seconds=args.worker_seconds,
                elapsed=elapsed,
                rtf=elapsed / args.worker_seconds,
                peak_mb=peak_rss_mb(),
                peak_over_model_mb=peak_rss_mb() - baseline,
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--worker", dest="model", choices=MODELS)
    parser.add_argument("--worker-seconds", type=float)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.model:
        return worker(args)

    workdir = tempfile.mkdtemp(prefix="mtn-bench-")
    common = ["--workdir", workdir, "--threads", str(args.threads)]
    common += ["--window", str(args.window), "--overlap", str(args.overlap)]
    print(
        f"{'model':<18}{'params':>12}{'audio s':>9}{'time s':>9}{'RTF':>8}{'peak MB':>10}"
        f"{'peak-model MB':>15}"
    )
    for name in args.models:
        for seconds in args.seconds:
            row = run_isolated(
                __file__, ["--worker", name, "--worker-seconds", str(seconds)] + common
            )
            print(
                f"{row['model']:<18}{row['parameters']:>12,}{row['seconds']:>9.0f}"
                f"{row['elapsed']:>9.1f}{row['rtf']:>8.3f}{row['peak_mb']:>10.0f}"
                f"{row['peak_over_model_mb']:>15.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
