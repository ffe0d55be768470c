"""Real-time factor and peak memory of TUSS ``medium`` (48 kHz) on long files, on the CPU.

Compares, on the same weights (random, seeded: speed and memory do not depend on them), the
same input and the same prompts (``speech``, ``sfxbg``):

- ours: ``asteroid_lass.inference.separate_file`` (windows of ``--window`` seconds, 25 %
  overlap with complementary fades, the file read and written in blocks, inference mode);
- reference: the released recipe's procedure, re-implemented here: the whole file in memory,
  cut into hard 6 s segments (no overlap, the last one shorter), each separated under
  ``torch.no_grad`` and the results concatenated, then written.

Every measurement runs in its own process so that its peak memory is its own. The two outputs
are compared (SNR of ours against the reference's, in dB). TUSS attends over the whole window,
so with random weights the two windowings give clearly different outputs: the figure says how
much the segmentation matters to the network, not which output is better.

    python benchmarks/tuss_speed.py [--seconds 60 600] [--threads 1] [--window 6]
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import peak_rss_mb, run_isolated  # noqa: E402

SAMPLE_RATE = 48000
PROMPTS = ["speech", "sfxbg"]
SEGMENT_SECONDS = 6.0


def _model():
    import torch

    from asteroid_lass.models import TUSS

    torch.manual_seed(0)
    return TUSS(preset="medium").eval()


def _input_file(directory: str, seconds: float) -> str:
    """A mono float wav of tones and noise, written in blocks (600 s is 115 MB)."""
    import soundfile as sf

    path = os.path.join(directory, f"input_{int(seconds)}s.wav")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
    n, block = int(seconds * SAMPLE_RATE), 10 * SAMPLE_RATE
    with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="FLOAT") as out:
        for start in range(0, n, block):
            t = np.arange(start, min(start + block, n)) / SAMPLE_RATE
            wav = 0.05 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 220 * t) * (
                np.sin(0.7 * t) > 0
            )
            out.write(wav.astype(np.float32))
    return path


def reference_segmented(model, mixture: np.ndarray) -> np.ndarray:
    """Hard 6 s segments through the model: (time,) -> (n_prompts, time)."""
    import torch

    segment = int(SEGMENT_SECONDS * SAMPLE_RATE)
    conditions = model.conditions_for(PROMPTS, batch_size=1)
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
    model = _model()
    start, cpu_start = time.perf_counter(), time.process_time()
    if args.method == "ours":
        written = separate_file(
            model,
            args.input,
            query=PROMPTS,
            output_dir=args.out_dir,
            force=True,
            window=args.window,
            overlap=0.25,
        )
    else:
        mixture, _ = sf.read(args.input, dtype="float32")
        estimates = reference_segmented(model, mixture)
        written = []
        for name, estimate in zip(PROMPTS, estimates):
            path = os.path.join(args.out_dir, f"reference_{name}.wav")
            sf.write(path, estimate, SAMPLE_RATE, subtype="FLOAT")
            written.append(path)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(
        json.dumps(
            dict(
                method=args.method,
                seconds=args.seconds,
                wall_s=round(elapsed, 2),
                rtf=round(elapsed / args.seconds, 3),
                cpu_s=round(cpu, 2),  # all threads; less sensitive to other load than wall
                peak_rss_mb=round(peak_rss_mb(), 1),
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
            a, b = ref.read(SAMPLE_RATE * 10, dtype="float64"), est.read(SAMPLE_RATE * 10)
            if len(a) == 0:
                break
            signal += float(np.sum(a**2))
            error += float(np.sum((a - b) ** 2))
    return 10 * np.log10(signal / max(error, 1e-20))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[60.0, 600.0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--window", type=float, default=SEGMENT_SECONDS)
    parser.add_argument("--method", choices=["ours", "reference"], help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", dest="out_dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.method:
        args.seconds = args.seconds[0]
        worker(args)
        return
    results = []
    with tempfile.TemporaryDirectory() as directory:
        for seconds in args.seconds:
            path = _input_file(directory, seconds)
            runs = {}
            for method in ("ours", "reference"):
                out_dir = os.path.join(directory, f"{method}_{int(seconds)}")
                os.makedirs(out_dir, exist_ok=True)
                runs[method] = run_isolated(
                    __file__,
                    [
                        "--method", method, "--input", path, "--out-dir", out_dir,
                        "--seconds", str(seconds), "--threads", str(args.threads),
                        "--window", str(args.window),
                    ],
                )  # fmt: skip
            agreement = [
                round(snr_db(r, o), 1)
                for r, o in zip(runs["reference"]["outputs"], runs["ours"]["outputs"])
            ]
            for method, run in runs.items():
                run.pop("outputs")
                run.update(threads=args.threads, window_s=args.window if method == "ours" else 6.0)
                results.append(run)
                print(json.dumps(run), flush=True)
            print(json.dumps(dict(seconds=seconds, snr_ours_vs_reference_db=agreement)), flush=True)
            os.remove(path)
    print("\n| method | audio (s) | window (s) | wall (s) | RTF | CPU (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for run in results:
        print(
            f"| {run['method']} | {run['seconds']:.0f} | {run['window_s']:.0f} | {run['wall_s']:.1f} "
            f"| {run['rtf']:.2f} | {run['cpu_s']:.0f} | {run['peak_rss_mb']:.0f} |"
        )


if __name__ == "__main__":
    main()
