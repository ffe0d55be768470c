"""What bf16 inference costs and gains: SI-SDRi on the default test set, and speed.

Separates every fixed test mixture of the LASS recipe with its trained model twice, through
``asteroid_lass.inference.separate_waveform`` in ``precision="fp32"`` (the reference, in the
same run) and ``precision="bf16"`` (autocast), alternating the two per mixture so that both see
the same machine load. Prints the mean SI-SDRi of each, their difference (mean and the largest
per mixture), and the time ratio. The package keeps fp32 as the default unless bf16 costs less
than 0.1 dB.

    cd egs/audioset/lass && ./run.sh      # the trained model and the test set
    python benchmarks/precision.py [--model PATH] [--test_csv PATH] [--threads 2]
"""

import argparse
import os
import sys
import time

import numpy as np

RECIPE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "egs", "audioset", "lass")
DEFAULT_MODEL = os.path.join(RECIPE, "exp", "synth_lassresunet", "publish_dir", "model.pth")
DEFAULT_TEST = os.path.join(RECIPE, "data", "mixtures", "test.csv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="A trained LASS model file.")
    parser.add_argument("--test_csv", default=DEFAULT_TEST, help="The recipe's fixed test list.")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    for path, what in ((args.model, "--model"), (args.test_csv, "--test_csv")):
        if not os.path.isfile(path):
            sys.exit(f"error: {what} {path} not found (run egs/audioset/lass/run.sh first).")

    import torch

    from asteroid_lass.data import FixedMixtureDataset
    from asteroid_lass.inference import separate_waveform
    from asteroid_lass.metrics import si_sdr_improvement
    from asteroid_lass.models import Separator

    torch.set_num_threads(args.threads)
    model = Separator.from_pretrained(args.model)
    rate = int(model.sample_rate)
    test_set = FixedMixtureDataset(args.test_csv, sample_rate=rate)
    improvement = {"fp32": [], "bf16": []}
    seconds = {"fp32": 0.0, "bf16": 0.0}
    for index in range(len(test_set)):
        item = test_set[index]
        for precision in ("fp32", "bf16"):
            start = time.perf_counter()
            estimate = separate_waveform(
                model, item["mixture"], rate, query=item["conditions"], precision=precision
            )
            seconds[precision] += time.perf_counter() - start
            gain = si_sdr_improvement(
                item["mixture"][None], torch.from_numpy(estimate)[None], item["targets"][None]
            )
            improvement[precision].append(float(gain.mean()))
    fp32, bf16 = np.array(improvement["fp32"]), np.array(improvement["bf16"])
    audio = sum(test_set[i]["mixture"].shape[-1] for i in range(len(test_set))) / rate
    print(f"{len(test_set)} test mixtures, {audio:.0f} s of audio, {args.threads} threads")
    print(f"{'precision':<10}{'SI-SDRi dB':>12}{'time s':>9}{'RTF':>8}")
    for name, values in (("fp32", fp32), ("bf16", bf16)):
        print(
            f"{name:<10}{values.mean():>12.3f}{seconds[name]:>9.1f}"
            f"{seconds[name] / audio:>8.3f}"
        )
    print(
        f"bf16 - fp32: {np.mean(bf16 - fp32):+.3f} dB mean, "
        f"{np.max(np.abs(bf16 - fp32)):.3f} dB largest per mixture; "
        f"speed x{seconds['fp32'] / seconds['bf16']:.2f}"
    )


if __name__ == "__main__":
    main()
