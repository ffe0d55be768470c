"""Real-time factor and peak memory of file inference with the ``base`` model on the CPU.

Compares, on the same model weights and input, each run in its own process (so that peak
memory is its own):
- ours: ``asteroid_lass.inference.separate_file`` with its defaults (windows with raised-cosine
  crossfades, the model's lean evaluation pass, file read and written in blocks);
- reference: AudioSep's chunked procedure (5 s windows with 1 s of context each side and 3 s
  kept, hop 3 s, hard cuts, every window computed twice, batch size 1, ``torch.no_grad``,
  whole file in memory). With ``--audiosep-dir`` pointing at a local checkout of
  Audio-AGI/AudioSep (not part of this package), AudioSep's own ``ResUNet30.chunk_inference``
  runs; without it, the procedure re-implemented here on the same network's layer-by-layer
  pass (torch's BatchNorm layers one by one, as AudioSep's code; ``torch.stft`` instead of
  AudioSep's convolutional STFT, which only makes the reference faster).

Also printed: the relative error between our file inference and one plain full pass of the
network (AudioSep's own ResUNet30 with ``--audiosep-dir``, else the layer-by-layer pass) on
audio short enough for one window (4 s); ``--profile`` shows where the time of one window goes, per
operator, in both passes.

    python benchmarks/inference_speed.py [--seconds 60 600] [--reference-seconds 60]
        [--audiosep-dir PATH] [--profile]
"""

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import audiosep_network, input_file, peak_rss_mb, run_isolated  # noqa: E402

SAMPLE_RATE = 32000


def _model(seed: int = 0):
    import torch

    from asteroid_lass import LASSResUNet

    torch.manual_seed(seed)
    return LASSResUNet(channels="base", condition_dim=512).eval()


def audiosep_chunked(forward, mixture, query_embedding):
    """AudioSep's ``chunk_inference``, re-implemented: (1, time) -> (1, time) numpy, with
    ``forward(chunk, query_embedding)`` the network on one (1, time) chunk."""
    import torch

    left, core, right = SAMPLE_RATE, 3 * SAMPLE_RATE, SAMPLE_RATE
    window = left + core + right
    length = mixture.shape[-1]
    out = np.zeros((1, length))
    position = 0
    with torch.no_grad():
        while position + window < length:
            chunk = forward(mixture[:, position : position + window], query_embedding)
            if position == 0:
                out[:, : window - right] = chunk[:, :-right]
            else:
                out[:, position + left : position + window - right] = chunk[:, left:-right]
            position += core
            if position < length:  # the next window, computed here and again next iteration
                chunk = forward(mixture[:, position : position + window], query_embedding)
                out[:, position + left : position + chunk.shape[-1]] = chunk[:, left:]
    return out


def profile(args) -> None:
    """Per-operator CPU time of one window, layer-by-layer pass against ours."""
    import torch

    torch.set_num_threads(args.threads)
    model = _model().requires_grad_(False)  # enable_grad below: no autograd graph either
    window = 0.1 * torch.randn(1, 1, int(args.window * SAMPLE_RATE))
    embedding = torch.randn(1, 1, 512)
    for name, context in (("layer by layer", torch.enable_grad), ("ours", torch.inference_mode)):
        with context():
            model(window, embedding)  # warm-up
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                model(window, embedding)
        events = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)
        total = sum(e.self_cpu_time_total for e in events) / 1e6
        print(f"{name}: {total:.2f} s of CPU time for one {args.window:g} s window")
        for event in events[:8]:
            share = event.self_cpu_time_total / 1e6
            print(f"  {event.key:<28} {share:6.2f} s  {100 * share / total:5.1f} %")


def _layer_by_layer(model):
    """The network's layer-by-layer pass (AudioSep's structure) as AudioSep calls it: (1,
    time) mixture and (1, 512) embedding to (1, time) numpy."""
    import torch

    model.requires_grad_(False)  # gradients enabled only to select the layer-by-layer path

    def forward(chunk, embedding):
        with torch.enable_grad():
            return model(chunk[None], embedding[:, None])[0, 0].numpy()

    return forward


def worker(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    model = _model()
    embedding = torch.nn.functional.normalize(
        torch.randn(1, 512, generator=torch.Generator().manual_seed(1)), dim=-1
    )
    path = input_file(args.workdir, args.worker_seconds, SAMPLE_RATE)
    options = {"window": args.window, "overlap": args.overlap, "batch_size": args.batch}
    baseline = peak_rss_mb()
    start = time.perf_counter()
    if args.method == "ours":
        from asteroid_lass.inference import separate_file

        out_dir = tempfile.mkdtemp(dir=args.workdir)
        kwargs = {key: value for key, value in options.items() if value is not None}
        separate_file(model, path, query=embedding[0], output_dir=out_dir, **kwargs)
    else:
        import soundfile as sf

        mixture = torch.from_numpy(sf.read(path, dtype="float32")[0])[None]
        if args.audiosep_dir:
            reference = audiosep_network(args.audiosep_dir, model)
            with torch.no_grad():
                reference.chunk_inference({"mixture": mixture[None], "condition": embedding})
        else:
            audiosep_chunked(_layer_by_layer(model), mixture, embedding)
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


def equivalence(args) -> float:
    """Relative error between our file inference (defaults) and one plain full pass of the
    network on 4 s of audio, which fits one default window."""
    import torch

    from asteroid_lass.inference import separate_waveform

    torch.set_num_threads(args.threads)
    model = _model()
    generator = torch.Generator().manual_seed(2)
    mixture = 0.1 * torch.randn(1, 4 * SAMPLE_RATE, generator=generator)
    embedding = torch.nn.functional.normalize(torch.randn(1, 512, generator=generator), dim=-1)
    if args.audiosep_dir:
        reference = audiosep_network(args.audiosep_dir, model)
        with torch.no_grad():
            plain = reference({"mixture": mixture[None], "condition": embedding})["waveform"]
        plain = plain[0, 0].numpy()
    else:
        plain = _layer_by_layer(model)(mixture, embedding)[0]
    ours = separate_waveform(model, mixture.numpy(), SAMPLE_RATE, embedding[0])[0, 0]
    return float(np.linalg.norm(ours - plain) / np.linalg.norm(plain))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600])
    parser.add_argument("--reference-seconds", type=float, nargs="+", default=[60])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--window", type=float, help="Ours: window seconds (default: ours).")
    parser.add_argument("--overlap", type=float, help="Ours: overlap fraction (default: ours).")
    parser.add_argument("--batch", type=int, help="Ours: windows per pass (default: ours).")
    parser.add_argument("--audiosep-dir", help="A local checkout of Audio-AGI/AudioSep.")
    parser.add_argument("--profile", action="store_true", help="Only the per-operator profile.")
    parser.add_argument("--worker", choices=["ours", "reference"], dest="method")
    parser.add_argument("--worker-seconds", type=float)
    parser.add_argument("--workdir")
    args = parser.parse_args()
    if args.method:
        return worker(args)
    if args.profile:
        args.window = args.window or 10.0
        return profile(args)

    workdir = tempfile.mkdtemp(prefix="lass-bench-")
    common = ["--workdir", workdir, "--threads", str(args.threads)]
    for flag in ("window", "overlap", "batch", "audiosep_dir"):
        if getattr(args, flag) is not None:
            common += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
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
    reference = "AudioSep's own code" if args.audiosep_dir else "re-implemented, layer by layer"
    print(f"reference: AudioSep's chunked procedure ({reference}); {args.threads} threads")
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
                f"speed-up over AudioSep's chunked procedure at {row['seconds']:.0f} s: "
                f"{row['rtf'] / ours[row['seconds']]['rtf']:.2f}x"
            )
    if len(ours) > 1:
        shortest, longest = ours[min(ours)], ours[max(ours)]
        print(
            f"peak memory {longest['seconds']:.0f} s / {shortest['seconds']:.0f} s: "
            f"{longest['peak_mb'] / shortest['peak_mb']:.3f}"
        )
    print(f"ours vs one plain full pass on 4 s: relative error {equivalence(args):.1e}")


if __name__ == "__main__":
    main()
