"""Training-step time of LASSResUNet channel presets and STFT hops, measured in one run.

One step is what the LASS recipe's trainer does per batch: forward, waveform loss, backward
and an Adam update, on 14 segments of 128 STFT frames at 16 kHz (the recipe's batch: 2.032 s
at its 256-sample hop, 1.27 s at 160), with the recipe's precision (``training.precision:
auto``: bf16 autocast where the CPU has native bf16, else fp32). Every preset at every hop
takes its steps in turn, round after round, so that a machine whose speed drifts (a shared
host) slows them alike; the figure is each one's median step, and its ratio to the first
(the reference, by default ``compact`` at the first hop named).

    python benchmarks/training_step.py [--presets compact lean small] [--hops 256 160]
"""

import argparse
import statistics
import time

import torch

from asteroid_lass import LASSResUNet
from asteroid_lass.system import training_precision


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--presets", nargs="+", default=["compact", "lean", "small"])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--batch", type=int, default=14)
    parser.add_argument("--hops", nargs="+", type=int, default=[256], help="STFT hops, samples")
    parser.add_argument("--frames", type=int, default=128, help="STFT frames per segment")
    parser.add_argument("--threads", type=int, default=0, help="0: torch's default")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    sample_rate = 16000
    bf16 = training_precision("auto") == "bf16-mixed"
    torch.manual_seed(0)
    query = torch.randn(args.batch, 1, 384)

    runs = []
    for hop in args.hops:
        # A centred STFT has one frame more than hops.
        mixture = torch.randn(args.batch, 1, (args.frames - 1) * hop)
        target = torch.randn(args.batch, 1, 1, mixture.shape[-1])
        for preset in args.presets:
            model = LASSResUNet(
                sample_rate=sample_rate,
                n_fft=512,
                hop_length=hop,
                channels=preset,
                condition_dim=384,
            ).train()
            optimizer = torch.optim.Adam(model.parameters(), 1e-3)
            runs.append((f"{preset} hop {hop}", model, optimizer, mixture, target, []))

    def step(model, optimizer, mixture, target) -> float:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            estimate = model(mixture, query)
        loss = (estimate.float() - target).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return time.perf_counter() - start

    for _, model, optimizer, mixture, target, _ in runs:  # warm-up: oneDNN picks its kernels
        for _ in range(2):
            step(model, optimizer, mixture, target)
    for _ in range(args.rounds):
        for _, model, optimizer, mixture, target, times in runs:
            times.append(step(model, optimizer, mixture, target))

    print(
        f"training step, batch {args.batch} x {args.frames} STFT frames at {sample_rate} Hz, "
        f"{'bf16 autocast' if bf16 else 'fp32'}, {torch.get_num_threads()} threads, "
        f"median of {args.rounds} interleaved rounds"
    )
    reference = statistics.median(runs[0][-1])
    for name, model, _, mixture, _, times in runs:
        median = statistics.median(times)
        n_params = sum(p.numel() for p in model.parameters())
        print(
            f"  {name:>16} ({mixture.shape[-1] / sample_rate:.3f} s) {str(model.channels):>28} "
            f"{n_params / 1e6:5.2f} M  {median:.3f} s  x{median / reference:.2f} of {runs[0][0]}"
        )


if __name__ == "__main__":
    main()
