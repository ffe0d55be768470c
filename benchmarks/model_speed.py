"""Parameters, forward time and peak memory of LASSResUNet ``base`` on 10 s of audio (CPU).

The reference in the same run is the same network's STFT round trip alone (the part AudioSep
implements as frozen convolutions), to show where the time goes. With ``--audiosep-dir`` pointing
at a local checkout of Audio-AGI/AudioSep (not part of this package), AudioSep's own ResUNet30 is
also timed on the same weights, and the output difference is printed.

    python benchmarks/model_speed.py [--seconds 10] [--audiosep-dir PATH]
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import audiosep_network, peak_rss_mb, run_isolated  # noqa: E402


def worker(args) -> None:
    import torch

    from asteroid_lass import LASSResUNet

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LASSResUNet(channels="base", condition_dim=512).eval()
    mixture = 0.1 * torch.randn(1, 1, int(32000 * args.seconds))
    embedding = torch.nn.functional.normalize(torch.randn(1, 512), dim=-1)
    if args.method == "audiosep":
        reference = audiosep_network(args.audiosep_dir, model)

        def run():
            return reference({"mixture": mixture, "condition": embedding})["waveform"]

    elif args.method == "stft":

        def run():
            return model.istft(model.stft(mixture[:, 0:1]), mixture.shape[-1])

    else:

        def run():
            return model(mixture, embedding[:, None])[:, 0]

    baseline = peak_rss_mb()
    timings = []
    with torch.inference_mode():
        for _ in range(args.repeats):
            start = time.perf_counter()
            output = run()
            timings.append(time.perf_counter() - start)
        extra = {}
        if args.method == "audiosep":
            ours = model.eval()(mixture, embedding[:, None])[:, 0]
            extra["relative_error"] = float((ours - output).norm() / output.norm())
    n_params = sum(p.numel() for p in model.parameters())
    print(
        json.dumps(
            dict(
                method=args.method,
                params=n_params,
                seconds=min(timings),
                peak_mb=peak_rss_mb(),
                peak_over_model_mb=peak_rss_mb() - baseline,
                **extra,
            )
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--audiosep-dir")
    parser.add_argument("--worker", dest="method", choices=["ours", "stft", "audiosep"])
    args = parser.parse_args()
    if args.method:
        return worker(args)
    common = [
        "--seconds",
        str(args.seconds),
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats),
    ]
    methods = ["ours", "stft"] + (["audiosep"] if args.audiosep_dir else [])
    if args.audiosep_dir:
        common += ["--audiosep-dir", args.audiosep_dir]
    rows = [run_isolated(__file__, ["--worker", m] + common) for m in methods]
    ours = rows[0]
    print(
        f"LASSResUNet base: {ours['params']:,} parameters; forward on {args.seconds:.0f} s at 32 kHz "
        f"on {args.threads} CPU threads"
    )
    for row in rows:
        line = (
            f"  {row['method']:<9} {row['seconds']:7.2f} s  (x{row['seconds'] / ours['seconds']:.2f} of ours)"
            f"  peak {row['peak_mb']:.0f} MB, {row['peak_over_model_mb']:.0f} MB above the loaded model"
        )
        if "relative_error" in row:
            line += f"  output relative error vs ours {row['relative_error']:.2e}"
        print(line)
    print(f"  real-time factor (ours): {ours['seconds'] / args.seconds:.3f}")


if __name__ == "__main__":
    main()
