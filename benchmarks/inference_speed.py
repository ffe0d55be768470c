"""Real-time factor and peak memory of chunked inference with the ``base`` model on the CPU.

Compares, on the same model weights and input:
- ours: ``asteroid_lass.inference.separate_file`` (10 s windows, 25 % overlap, crossfade,
  batched windows, inference mode, file read and written in blocks);
- reference: AudioSep's chunked procedure, re-implemented here (5 s windows with 1 s of context
  each side and 3 s kept, hop 3 s, hard cuts, every window computed twice, batch size 1,
  ``torch.no_grad``, whole file in memory).

Every measurement runs in its own process so that peak memory is its own.

    python benchmarks/inference_speed.py [--seconds 10 60 600] [--reference-seconds 60]
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

SAMPLE_RATE = 32000


def _model(seed: int = 0):
    import torch

    from asteroid_lass import LASSResUNet

    torch.manual_seed(seed)
    return LASSResUNet(channels="base", condition_dim=512).eval()


def _input_file(directory: str, seconds: float) -> str:
    import soundfile as sf

    path = os.path.join(directory, f"input_{int(seconds)}s.wav")
    if not os.path.exists(path):
        rng = np.random.default_rng(0)
        n = int(seconds * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        wav = 0.1 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * 440 * t) * (np.sin(t) > 0)
        with sf.SoundFile(path, "w", SAMPLE_RATE, 1, subtype="FLOAT") as out:
            out.write(wav.astype(np.float32))
    return path


def audiosep_chunked(model, mixture, query_embedding):
    """AudioSep's ``chunk_inference``, re-implemented: (1, time) -> (1, time) numpy."""
    import torch

    left, core, right = SAMPLE_RATE, 3 * SAMPLE_RATE, SAMPLE_RATE
    window = left + core + right
    length = mixture.shape[-1]
    out = np.zeros((1, length))
    position = 0
    with torch.no_grad():
        while position + window < length:
            chunk = _forward(model, mixture[:, position : position + window], query_embedding)
            if position == 0:
                out[:, : window - right] = chunk[:, :-right]
            else:
                out[:, position + left : position + window - right] = chunk[:, left:-right]
            position += core
            if position < length:  # the next window, computed here and again next iteration
                chunk = _forward(model, mixture[:, position : position + window], query_embedding)
                out[:, position + left : position + chunk.shape[-1]] = chunk[:, left:]
    return out


def _forward(model, chunk, query_embedding):
    """One (1, time) chunk through the model: (1, time) numpy."""
    return model(chunk[None], query_embedding[:, None])[0, 0].numpy()


def per_window(args) -> None:
    """Seconds per 10 s window of the base model under each setting, one change at a time."""
    import torch

    model = _model()
    embedding = torch.randn(1, 512)
    windows = torch.randn(4, 1, int(args.window * SAMPLE_RATE)) * 0.1

    def timed(batch, grad_mode, channels_last=False, threads=2, bf16=False):
        torch.set_num_threads(threads)
        net = model.to(
            memory_format=torch.channels_last if channels_last else torch.contiguous_format
        )
        context = torch.inference_mode if grad_mode == "inference_mode" else torch.no_grad
        best = float("inf")
        for _ in range(2):
            start = time.perf_counter()
            with context(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
                net(windows[:batch], embedding.expand(batch, 1, -1))
            best = min(best, time.perf_counter() - start)
        return best / batch

    settings = [
        ("no_grad, batch 1, 2 threads", dict(batch=1, grad_mode="no_grad")),
        ("inference_mode, batch 1", dict(batch=1, grad_mode="inference_mode")),
        ("inference_mode, batch 2", dict(batch=2, grad_mode="inference_mode")),
        ("inference_mode, batch 4", dict(batch=4, grad_mode="inference_mode")),
        (
            "inference_mode, batch 2, channels_last",
            dict(batch=2, grad_mode="inference_mode", channels_last=True),
        ),
        ("inference_mode, batch 2, 1 thread", dict(batch=2, grad_mode="inference_mode", threads=1)),
        (
            "inference_mode, batch 2, bf16 autocast",
            dict(batch=2, grad_mode="inference_mode", bf16=True),
        ),
    ]
    reference = None
    for name, setting in settings:
        seconds = timed(**setting)
        reference = reference or seconds
        print(
            f"  {name:<42} {seconds:6.2f} s per {args.window:.0f} s window (x{reference / seconds:.2f})"
        )


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model = _model()
    embedding = torch.nn.functional.normalize(
        torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)
    path = _input_file(args.workdir, args.worker_seconds)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    if args.method == "ours":
        from asteroid_lass.inference import separate_file

        out_dir = tempfile.mkdtemp(dir=args.workdir)
        separate_file(
            model,
            path,
            query=embedding[0],
            output_dir=out_dir,
            window=args.window,
            overlap=args.overlap,
            batch_size=args.batch,
        )
    else:
        import soundfile as sf

        mixture = torch.from_numpy(sf.read(path, dtype="float32")[0])[None]
        audiosep_chunked(model, mixture, embedding)
    elapsed = time.perf_counter() - start
    print(
        json.dumps(
            dict(
                method=args.method,
                seconds=args.worker_seconds,
                elapsed=elapsed,
                rtf=elapsed / args.worker_seconds,
                peak_mb=peak_rss_mb(),
                peak_over_model_mb=peak_rss_mb() - baseline,
            )
        )
    )


def equivalence(workdir: str, model_path: str = None, audio_path: str = None) -> float:
    """SNR (dB) between chunked output (10 s windows, 25 % overlap) and one full pass over the
    same audio. Default: random ``base`` weights on a 25 s test signal; better: a trained
    model (``--model``) on a real recording (``--audio``) that fits one pass."""
    import soundfile as sf
    import torch

    from asteroid_lass import LASSResUNet
    from asteroid_lass.inference import separate_waveform

    model = LASSResUNet.from_pretrained(model_path).eval() if model_path else _model()
    query = "Siren" if model_path else torch.randn(512)
    if audio_path:
        wav, rate = sf.read(audio_path, dtype="float32", always_2d=True)
        wav = wav.T[:1]
    else:
        wav, rate = sf.read(_input_file(workdir, 25), dtype="float32")[0][None], SAMPLE_RATE
    chunked = separate_waveform(model, wav, rate, query)[0, 0]
    full = separate_waveform(model, wav, rate, query, window=wav.shape[-1] / rate + 1)[0, 0]
    return float(10 * np.log10(np.sum(full**2) / np.sum((full - chunked) ** 2)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 60, 600])
    parser.add_argument("--reference-seconds", type=float, nargs="+", default=[60])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, default=10.0)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--channels-last", action="store_true")
    parser.add_argument("--equivalence", action="store_true", help="Also chunked vs full pass.")
    parser.add_argument("--model", help="With --equivalence: a trained model file.")
    parser.add_argument("--audio", help="With --equivalence: a recording that fits one pass.")
    parser.add_argument("--only-equivalence", action="store_true")
    parser.add_argument("--per-window", action="store_true", help="Only the per-window study.")
    parser.add_argument("--worker", choices=["ours", "reference"], dest="method")
    parser.add_argument("--worker-seconds", type=float)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.method:
        return worker(args)

    workdir = tempfile.mkdtemp(prefix="lass-bench-")
    if args.per_window:
        return per_window(args)
    if args.only_equivalence:
        print(
            f"chunked vs single full pass: {equivalence(workdir, args.model, args.audio):.1f} dB SNR"
        )
        return
    common = [
        "--workdir",
        workdir,
        "--threads",
        str(args.threads),
        "--window",
        str(args.window),
        "--overlap",
        str(args.overlap),
        "--batch",
        str(args.batch),
    ]
    common += ["--channels-last"] if args.channels_last else []
    rows = []
    for seconds in args.seconds:
        rows.append(
            run_isolated(__file__, ["--worker", "ours", "--worker-seconds", str(seconds)] + common)
        )
    for seconds in args.reference_seconds:
        rows.append(
            run_isolated(
                __file__, ["--worker", "reference", "--worker-seconds", str(seconds)] + common
            )
        )
    print(
        f"{'method':<10}{'audio s':>9}{'time s':>9}{'RTF':>8}{'peak MB':>10}{'peak-model MB':>15}"
    )
    for row in rows:
        print(
            f"{row['method']:<10}{row['seconds']:>9.0f}{row['elapsed']:>9.1f}{row['rtf']:>8.3f}"
            f"{row['peak_mb']:>10.0f}{row['peak_over_model_mb']:>15.0f}"
        )
    ours = {r["seconds"]: r for r in rows if r["method"] == "ours"}
    for row in rows:
        if row["method"] == "reference" and row["seconds"] in ours:
            print(
                f"speed-up over AudioSep-style chunking at {row['seconds']:.0f} s: "
                f"{row['rtf'] / ours[row['seconds']]['rtf']:.2f}x"
            )
    if 60 in ours and 600 in ours:
        print(f"peak memory 600 s / 60 s: {ours[600]['peak_mb'] / ours[60]['peak_mb']:.3f}")
    if args.equivalence:
        print(
            f"chunked vs single full pass: {equivalence(workdir, args.model, args.audio):.1f} dB SNR"
        )


if __name__ == "__main__":
    main()
