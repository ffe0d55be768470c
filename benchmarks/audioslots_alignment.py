"""Does windowed inference keep each source on one output of a blind model over long audio?

AudioSlots separates at most one chunk (1 s by default) at a time; longer audio goes through
the package's windowed inference, which puts each window's outputs in the order of the tracks
so far (:mod:`asteroid_lass.alignment`) before cross-fading them.
This measures it on 60 s two-talker mixtures built from longer sources: each talker is a
built-in formant-synthesised speaker (:mod:`asteroid_lass.data.speech_synth`) whose
utterances are concatenated, with pauses, to the mixture's length; the two are mixed at a
random level difference (+-5 dB).

The file is cut into frames of one window hop (``max_input_seconds * (1 - overlap)``,
``--frame`` to change). In every frame where a source is active (frame energy within 30 dB of
its mean frame energy), the output with the highest SI-SDR against that source is the output
it is on. A source *stays on one output* when all its active frames choose the same output.
Printed, for inference with the alignment (the package's) and, as the reference in the same
run, without it (the same windows and cross-fades, outputs left in each window's order):

- ``stays``: fraction of (file, source) pairs that stay on one output;
- ``majority``: fraction of active frames on their source's most frequent output;
- ``SI-SDRi``: over the whole file, outputs matched to the sources once (Hungarian on SI-SDR).

Any blind model of the package can be measured (``--window 1`` gives another model AudioSlots'
1 s windows, e.g. the recipe's ConvTasNet baseline: ``--model
egs/librimix/audioslots/exp/builtin_audioslots/convtasnet/best_model.pth --window 1``).
An untrained model's figures mean nothing (its outputs are not sources); use a trained one.

    python benchmarks/audioslots_alignment.py [--model PATH] [--n_files 10] [--seconds 60]
"""

import argparse
import os
import sys
from typing import List, Tuple

import numpy as np
import torch

from asteroid_lass.data.speech_synth import make_speaker, synth_utterance
from asteroid_lass.errors import ModelFileError
from asteroid_lass.inference import ChunkedSeparator, WindowPlan, separate_waveform
from asteroid_lass.losses import hungarian_assignment, neg_sisdr, pairwise
from asteroid_lass.metrics import match_to_references, si_sdr_improvement
from asteroid_lass.models import Separator

DEFAULT_MODEL = os.path.normpath(
    os.path.join(
        os.path.dirname(os.path.abspath(__file__)),
        "..",
        "egs",
        "librimix",
        "audioslots",
        "exp",
        "builtin_audioslots",
        "publish_dir",
        "model.pth",
    )
)
#: A frame where a source is this far below its mean frame energy (dB) is a pause.
ACTIVE_DB = -30.0


def talker_track(rng: np.random.Generator, sample_rate: int, seconds: float) -> np.ndarray:
    """One speaker's utterances (3 to 6 s) separated by pauses (0.2 to 1 s), to ``seconds``."""
    speaker = make_speaker(rng, "talker")
    pieces, total, length = [], 0, int(seconds * sample_rate)
    while total < length:
        utterance = synth_utterance(speaker, rng, sample_rate, float(rng.uniform(3.0, 6.0)))
        pause = np.zeros(int(rng.uniform(0.2, 1.0) * sample_rate), dtype=np.float32)
        pieces += [utterance * rng.uniform(0.5, 1.0), pause]
        total += len(utterance) + len(pause)
    return np.concatenate(pieces)[:length].astype(np.float32)


def two_talker_mixture(
    seed: int, sample_rate: int, seconds: float
) -> Tuple[np.ndarray, np.ndarray]:
    """(mixture (time,), sources (2, time)), the two talkers at a +-5 dB level difference."""
    rng = np.random.default_rng(seed)
    sources = np.stack([talker_track(rng, sample_rate, seconds) for _ in range(2)])
    rms = np.sqrt(np.mean(sources**2, axis=-1, keepdims=True)) + 1e-9
    gains = 10 ** (np.array([[0.0], [rng.uniform(-5, 5)]]) / 20)
    sources = sources / rms * gains
    peak = np.max(np.abs(sources.sum(0))) + 1e-9
    sources = (0.9 * sources / peak).astype(np.float32)
    return sources.sum(0), sources


def unaligned(
    model, mixture: np.ndarray, sample_rate: int, window: float, overlap: float
) -> np.ndarray:
    """The package's windowed inference with the alignment switched off: (n_outputs, time)."""
    separator = ChunkedSeparator(model, window=window, overlap=overlap, align=False)
    blocks: List[np.ndarray] = []
    separator.run(lambda a, b: mixture[None, a:b], len(mixture), sample_rate, blocks.append)
    return np.concatenate(blocks, axis=-1)[:, 0]


def best_window_order(
    model, mixture: np.ndarray, sources: np.ndarray, sample_rate: int, window: float, overlap: float
) -> np.ndarray:
    """Every window's outputs in the order that best matches the true sources over that window
    (Hungarian on SI-SDR), stitched without alignment: the ceiling of any alignment with this
    separator's windows, (n_outputs, time)."""
    plan = WindowPlan.from_seconds(
        len(mixture), sample_rate, window, overlap, model.max_input_samples
    )
    windows = iter(range(plan.n_windows))  # one window per call: batch_size 1
    forward = model.forward

    def ordered(chunk, conditions=None):
        outputs = forward(chunk, conditions)
        start, stop = plan.bounds(next(windows))
        length = min(stop - start, outputs.shape[-1])
        reference = torch.from_numpy(sources[:, start : start + length])[None, :, None]
        matched = hungarian_assignment(
            pairwise(neg_sisdr, outputs[..., :length].double(), reference.double())
        )[0]
        rest = [i for i in range(outputs.shape[1]) if i not in set(matched.tolist())]
        return outputs[:, torch.cat([matched, torch.tensor(rest, dtype=torch.long)])]

    model.forward = ordered
    try:
        return unaligned(model, mixture, sample_rate, window, overlap)
    finally:
        model.forward = forward


def frame_choices(estimates: np.ndarray, sources: np.ndarray, frame: int) -> List[np.ndarray]:
    """Per source, the output with the highest SI-SDR in each of its active frames."""
    n_frames = sources.shape[-1] // frame
    cut = n_frames * frame
    est = torch.from_numpy(estimates[:, :cut].reshape(len(estimates), n_frames, frame))
    ref = torch.from_numpy(sources[:, :cut].reshape(len(sources), n_frames, frame))
    # Frames as the batch: (frames, outputs, 1, frame) against (frames, sources, 1, frame).
    costs = pairwise(neg_sisdr, est.transpose(0, 1)[:, :, None], ref.transpose(0, 1)[:, :, None])
    best = costs.argmin(dim=1).numpy()  # (frames, sources)
    energy = ref.square().mean(-1).numpy()  # (sources, frames)
    active = 10 * np.log10(energy / energy.mean(-1, keepdims=True) + 1e-20) > ACTIVE_DB
    return [best[active[s], s] for s in range(len(sources))]


def file_si_sdri(estimates: np.ndarray, mixture: np.ndarray, sources: np.ndarray) -> float:
    """Mean SI-SDRi over the sources, the outputs matched to them once for the whole file."""
    est = torch.from_numpy(estimates)[None, :, None].double()
    ref = torch.from_numpy(sources)[None, :, None].double()
    matched = match_to_references(est, ref)
    mix = torch.from_numpy(mixture)[None, None].double()
    return float(si_sdr_improvement(mix, matched, ref).mean())


def shuffle_outputs(model: Separator, seed: int) -> None:
    """Make ``model`` return its outputs in a random order at every call (in place).

    A trained blind model's own order often carries information (AudioSlots' learned slot
    queries, a PIT model's habit of putting one kind of source first), so leaving each window
    in its own order is a strong reference. Shuffled, the order carries none, and the figures
    measure what the alignment alone does.
    """
    generator = torch.Generator().manual_seed(seed)
    forward = model.forward

    def shuffled(mixture, conditions=None):
        outputs = forward(mixture, conditions)
        orders = [torch.randperm(outputs.shape[1], generator=generator) for _ in outputs]
        return torch.stack([item[order] for item, order in zip(outputs, orders)])

    model.forward = shuffled


def load(path: str) -> Separator:
    """A blind model of the package (AudioSlots, or the recipe's ConvTasNet baseline)."""
    if not os.path.isfile(path):
        sys.exit(
            f"error: no AudioSlots model at {path}: run the librimix AudioSlots recipe "
            "(egs/librimix/audioslots/run.sh) to publish one, or pass --model PATH."
        )
    try:
        model = Separator.from_pretrained(path)
    except (ModelFileError, TypeError, KeyError) as err:
        sys.exit(f"error: {path} is not a model file of the package ({err}).")
    if model.condition_kind != "none":
        sys.exit(f"error: {path} is a {model.condition_kind} model; this measures blind ones.")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help="A blind model file.")
    parser.add_argument(
        "--window", type=float, help="Window (s); default: the model's longest input, else 10."
    )
    parser.add_argument("--n_files", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--overlap", type=float, default=0.25)
    parser.add_argument("--frame", type=float, help="Frame length (s); default: one hop.")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--shuffle",
        action="store_true",
        help="Shuffle the model's outputs at every window (see shuffle_outputs).",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load(args.model)
    if args.shuffle:
        shuffle_outputs(model, args.seed)
    rate = int(model.sample_rate)
    window = args.window or model.max_input_seconds or 10.0
    frame = int(round((args.frame or window * (1 - args.overlap)) * rate))

    # Per method: (stays on one output, active frames, frames on the majority output) per
    # (file, source) pair, and the SI-SDRi per file.
    methods = {
        "aligned": "aligned (package)",
        "unaligned": "no alignment (reference)",
        "ceiling": "best order per window, from the true sources (ceiling)",
    }
    pairs = {method: [] for method in methods}
    sdri = {method: [] for method in methods}
    for index in range(args.n_files):
        mixture, sources = two_talker_mixture(args.seed + index, rate, args.seconds)
        outputs = {
            "aligned": separate_waveform(model, mixture, rate, window=window, overlap=args.overlap)[
                :, 0
            ],
            "unaligned": unaligned(model, mixture, rate, window, args.overlap),
            "ceiling": best_window_order(model, mixture, sources, rate, window, args.overlap),
        }
        for method, estimates in outputs.items():
            for choices in frame_choices(estimates, sources, frame):
                majority = np.bincount(choices).max() if len(choices) else 0
                pairs[method].append((len(set(choices)) <= 1, len(choices), majority))
            sdri[method].append(file_si_sdri(estimates, mixture, sources))
        print(f"file {index + 1}/{args.n_files} done", file=sys.stderr, flush=True)

    print(
        f"\n{args.n_files} mixtures of {args.seconds:.0f} s, 2 talkers; model {args.model}; "
        f"windows of {window:g} s, overlap {args.overlap:g}, frames of {frame / rate:g} s"
        f"{'; outputs shuffled at every window' if args.shuffle else ''}\n"
    )
    print("| inference | stays on one output | frames on majority output | SI-SDRi (dB) |")
    print("|---|---|---|---|")
    for method, rows in pairs.items():
        stays = np.mean([row[0] for row in rows])
        majority = sum(row[2] for row in rows) / max(sum(row[1] for row in rows), 1)
        print(
            f"| {methods[method]} | {stays:.0%} of {len(rows)} pairs | {majority:.1%} | "
            f"{np.mean(sdri[method]):.2f} |"
        )


if __name__ == "__main__":
    main()
