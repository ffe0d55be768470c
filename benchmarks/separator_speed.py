"""Real-time factor and peak memory of a separator's inference on long files, on the CPU.

Separates a 60 s and a 600 s file (tones and noise; random seeded weights: speed and memory
do not depend on them) with ``asteroid_lass.inference.separate_file`` (windows of
``--window`` seconds capped at the model's longest input, the default overlap with complementary
fades, the file read and written in blocks, inference mode), and prints a reference measured
in the same run:

- ``metatasnet`` (presets ``paper``: 45.5 M parameters, 8/16/32 kHz stages, 44.1 kHz in/out;
  ``cpu``: the model of ``egs/musdb18/metatasnet/local/conf.yml``), all four stems of a 32 kHz
  file. Reference: other models through the same inference, the package's LASSResUNet
  ``base`` (one text-queried output) and the recipe's four-output ConvTasNet baseline.
- ``tuss`` (preset ``medium``, 48 kHz; prompts ``speech``, ``sfxbg``). Reference: the released
  recipe's procedure, re-implemented here: the whole file in memory, cut into hard 6 s
  segments (no overlap, the last one shorter), each separated under ``torch.no_grad``, the
  results concatenated and written. The outputs are compared (SNR of ours against the
  reference's, dB): TUSS attends over the whole window, so with random weights the two
  windowings differ clearly; the figure says how much the segmentation matters to the network,
  not which output is better.
- ``audioslots`` (preset ``default``: ``AudioSlots()``, 8 kHz, 1 s chunks, so 1 s windows).
  Reference: the same hard segments of one chunk (no overlap, no alignment of the outputs):
  what the overlap, the matching and the cross-fades cost.

- ``all``: one table of every model family of the package at its reference size, in one run,
  on one 44.1 kHz file (each model resamples it to its own rate), with each model's default
  window: LASSResUNet ``base`` (one text-queried output), Meta-TasNet ``paper`` (four stems),
  TUSS ``medium`` (two prompts), AudioSlots ``default`` (every slot) and the Meta-TasNet
  recipe's four-output ConvTasNet. The families are each other's reference.

Every measurement runs in its own process so that its peak memory is its own.

    python benchmarks/separator_speed.py --model all [--seconds 60 600]
    python benchmarks/separator_speed.py --model audioslots [--seconds 60 600] [--threads 2]
    python benchmarks/separator_speed.py --model tuss --threads 1 --window 6
    python benchmarks/separator_speed.py --model metatasnet --preset paper cpu
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import input_file, peak_rss_mb, run_isolated  # noqa: E402

MUSDB_CONF = os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "egs", "musdb18", "metatasnet", "local"
)
STEMS = ["drums", "bass", "other", "vocals"]
TUSS_PROMPTS = ["speech", "sfxbg"]
#: Per model: its presets (first = default), the rate of the input file, the reference (other
#: models through the same inference, or hard segments of that many seconds through the model,
#: None: the model's longest input) and the default window.
MODELS = {
    "metatasnet": dict(
        presets=("paper", "cpu"),
        input_rate=32000,
        reference_models=[("lassresunet", "base"), ("convtasnet", "musdb18")],
        window=10.0,
    ),
    "tuss": dict(presets=("medium",), input_rate=48000, segments=6.0, window=6.0),
    "audioslots": dict(presets=("default",), input_rate=8000, segments=None, window=10.0),
    "all": dict(
        presets=("reference sizes",),
        input_rate=44100,
        families=[
            ("lassresunet", "base"),
            ("metatasnet", "paper"),
            ("tuss", "medium"),
            ("audioslots", "default"),
            ("convtasnet", "musdb18"),
        ],
        window=None,
    ),
}
BUILDERS = ("metatasnet", "tuss", "audioslots", "lassresunet", "convtasnet")


def build(name: str, preset: str):
    """(model, query) with seeded random weights, in eval mode."""
    import torch

    from asteroid_lass.models import TUSS, AudioSlots, LASSResUNet, MetaTasNet
    from asteroid_lass.recipes.config import build_baseline, build_model, read_conf

    torch.manual_seed(0)
    if name == "metatasnet" and preset == "paper":
        return MetaTasNet(preset="paper", sample_rate=44100).eval(), STEMS
    if name == "metatasnet" and preset == "cpu":
        return build_model(read_conf(os.path.join(MUSDB_CONF, "conf.yml"))).eval(), STEMS
    if name == "convtasnet":
        conf = read_conf(os.path.join(MUSDB_CONF, "conf.yml"))
        return build_baseline(conf, n_src=len(STEMS)).eval(), None
    if name == "lassresunet":
        model = LASSResUNet(channels=preset, condition_dim=512).eval()
        return model, torch.nn.functional.normalize(torch.randn(512), dim=0)
    if name == "tuss":
        return TUSS(preset=preset).eval(), TUSS_PROMPTS
    if name == "audioslots" and preset == "default":
        return AudioSlots().eval(), None
    raise ValueError(f"unknown model/preset {name}/{preset}.")


def segmented(model, query, mixture: np.ndarray, seconds: float) -> np.ndarray:
    """Hard segments of ``seconds`` through the model: (time,) -> (n_outputs, time)."""
    import torch

    segment = int(seconds * float(model.sample_rate))
    conditions = model.conditions_for(query, batch_size=1)
    pieces = []
    with torch.no_grad():
        for start in range(0, len(mixture), segment):
            chunk = torch.from_numpy(mixture[start : start + segment])[None, None]
            pieces.append(model(chunk, conditions)[0, :, 0].numpy())
    return np.concatenate(pieces, axis=-1)


def worker(args) -> None:
    import soundfile as sf
    import torch

    from asteroid_lass.inference import separate_file

    torch.set_num_threads(args.threads)
    model, query = build(args.worker, args.preset)
    baseline = peak_rss_mb()
    start, cpu_start = time.perf_counter(), time.process_time()
    if args.method == "ours":
        from asteroid_lass.inference import DEFAULT_WINDOW_SECONDS

        window = args.window or DEFAULT_WINDOW_SECONDS
        written = separate_file(
            model,
            args.input,
            query=query,
            output_dir=args.out_dir,
            force=True,
            window=window,
            batch_size=1,
        )
        window = min(window, model.max_input_seconds or window)
    else:
        mixture, rate = sf.read(args.input, dtype="float32")
        if rate != int(model.sample_rate):
            raise ValueError(f"segments need input at the model's rate, got {rate} Hz.")
        window = args.segments or model.max_input_seconds
        estimates = segmented(model, query, mixture, window)
        written = []
        for index, estimate in enumerate(estimates):
            path = os.path.join(args.out_dir, f"segments_{index}.wav")
            sf.write(path, estimate, rate, subtype="FLOAT")
            written.append(path)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            dict(
                model=args.worker,
                preset=args.preset,
                method=args.method,
                parameters=sum(p.numel() for p in model.parameters()),
                seconds=args.seconds,
                window_s=window,
                wall_s=elapsed,
                rtf=elapsed / args.seconds,
                cpu_s=cpu,  # all threads; less sensitive to other load than wall
                peak_rss_mb=peak_rss_mb(),
                peak_over_model_mb=peak_rss_mb() - baseline,
                blind=model.condition_kind == "none",
                outputs=written,
            )
        )
    )


def snr_db(reference_path: str, estimate_path: str) -> float:
    """SNR of one file against another, read in blocks."""
    import soundfile as sf

    signal = error = 0.0
    with sf.SoundFile(reference_path) as ref, sf.SoundFile(estimate_path) as est:
        while True:
            a, b = ref.read(1 << 18, dtype="float64"), est.read(1 << 18, dtype="float64")
            if len(a) == 0:
                break
            signal += float(np.sum(a**2))
            error += float(np.sum((a - b) ** 2))
    return float(10 * np.log10(signal / max(error, 1e-20)))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", choices=list(MODELS), required=False)
    parser.add_argument("--preset", nargs="+", help="Presets to measure (default: all).")
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, help="Window (s); default: the model's.")
    parser.add_argument("--no-reference", action="store_true", help="Skip the reference.")
    parser.add_argument(
        "--families", nargs="+", choices=BUILDERS, help="With --model all: only these families."
    )
    # Worker mode (one measurement in a fresh process).
    parser.add_argument("--worker", choices=BUILDERS, help=argparse.SUPPRESS)
    parser.add_argument("--method", choices=["ours", "segments"], help=argparse.SUPPRESS)
    parser.add_argument("--segments", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", dest="out_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.preset, args.seconds = args.preset[0], args.seconds[0]
        return worker(args)
    if args.model is None:
        parser.error("--model is required")
    spec = MODELS[args.model]
    presets = args.preset or list(spec["presets"])
    unknown = sorted(set(presets) - set(spec["presets"]))
    if unknown:
        parser.error(f"--preset {unknown} unknown for {args.model}; choose from {spec['presets']}")
    window = args.window or spec["window"]

    runs = [(args.model, preset, "ours") for preset in presets]
    if "families" in spec:
        chosen = args.families or [name for name, _ in spec["families"]]
        runs = [(name, preset, "ours") for name, preset in spec["families"] if name in chosen]
    elif not args.no_reference:
        if "reference_models" in spec:
            runs += [(name, preset, "ours") for name, preset in spec["reference_models"]]
        else:
            runs += [(args.model, preset, "segments") for preset in presets]
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for seconds in args.seconds:
            path = input_file(directory, seconds, spec["input_rate"])
            by_run = {}
            for name, preset, method in runs:
                out_dir = tempfile.mkdtemp(dir=directory)
                command = ["--worker", name, "--preset", preset, "--method", method]
                command += ["--input", path, "--out-dir", out_dir, "--seconds", str(seconds)]
                command += ["--threads", str(args.threads)]
                command += ["--window", str(window)] if window else []
                if method == "segments" and spec.get("segments"):
                    command += ["--segments", str(spec["segments"])]
                row = run_isolated(__file__, command)
                by_run[name, preset, method] = row
                print(json.dumps({k: v for k, v in row.items() if k != "outputs"}), flush=True)
            for preset in presets:  # ours against the segmented reference, same outputs
                ours = by_run.get((args.model, preset, "ours"))
                reference = by_run.get((args.model, preset, "segments"))
                if reference and not ours["blind"]:  # a blind model's outputs are unordered
                    agreement = [
                        round(snr_db(r, o), 1)
                        for r, o in zip(reference["outputs"], ours["outputs"])
                    ]
                    print(json.dumps(dict(preset=preset, seconds=seconds, snr_db=agreement)))
            results += list(by_run.values())
            os.remove(path)

    print(
        "\n| model | preset | method | params | audio (s) | window (s) | wall (s) | RTF "
        "| CPU (s) | peak RSS (MB) | peak above model (MB) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for row in results:
        print(
            f"| {row['model']} | {row['preset']} | {row['method']} | {row['parameters']:,} "
            f"| {row['seconds']:.0f} | {row['window_s']:g} | {row['wall_s']:.1f} "
            f"| {row['rtf']:.3f} | {row['cpu_s']:.1f} | {row['peak_rss_mb']:.0f} "
            f"| {row['peak_over_model_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
