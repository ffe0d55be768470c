"""Peak resident memory (and time) of ``asteroid-lass separate`` with a ``base`` LASSResUNet.

The model is AudioSep's size (``channels="base"``) with the offline sentence encoder for its
text query (a CLAP-queried model adds CLAP's text encoder instead). Each measurement is one run
of the real command line in its own process, on a file of the given length (16-bit PCM at
32 kHz, written once into a temporary folder); the figure is that process's peak RSS.
References in the same run: the same command with ``--window 10`` (the previous default
window) on the shortest file, and a process that only imports the command line's modules.

    python benchmarks/cli_memory.py [--seconds 60 600 3600] [--threads 2]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import input_file  # noqa: E402

SAMPLE_RATE = 32000


def _model_file(directory: str) -> str:
    import torch

    from asteroid_lass import LASSResUNet
    from asteroid_lass.models.base import save_model_file

    path = os.path.join(directory, "base_sentence.pth")
    torch.manual_seed(0)
    model = LASSResUNet(channels="base", condition_dim=384, query_encoder={"name": "sentence"})
    save_model_file(model, path)
    return path


def _measured(command: List[str], threads: int) -> dict:
    """Run ``command`` in a child process: its wall time, CPU time (all threads; unlike wall
    time, not inflated by other load on the machine) and peak RSS (MB)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{child.stderr.read().decode()[-2000:]}")
    return dict(
        elapsed=elapsed, cpu=usage.ru_utime + usage.ru_stime, peak_mb=usage.ru_maxrss / 1024
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, nargs="+", default=[60, 600, 3600])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="lass-cli-memory-")
    model = _model_file(workdir)
    cli = [sys.executable, "-m", "asteroid_lass.cli", "separate", "--model", model]
    cli += ["--query", "a dog barking", "--no-progress", "--force"]
    print(f"asteroid-lass separate, base LASSResUNet, {args.threads} threads")
    print(f"{'run':<26}{'audio s':>9}{'wall s':>9}{'RTF':>8}{'CPU s':>9}{'peak RSS MB':>13}")

    def show(name: str, seconds: Optional[float], row: dict) -> None:
        audio, rtf = (
            ("-", "-") if seconds is None else (f"{seconds:.0f}", f"{row['elapsed'] / seconds:.3f}")
        )
        print(
            f"{name:<26}{audio:>9}{row['elapsed']:>9.1f}{rtf:>8}{row['cpu']:>9.1f}"
            f"{row['peak_mb']:>13.0f}",
            flush=True,
        )

    show(
        "reference: imports only",
        None,
        _measured([sys.executable, "-c", "import asteroid_lass.cli"], args.threads),
    )
    peaks = []
    for seconds in args.seconds:
        path = input_file(workdir, seconds, SAMPLE_RATE, subtype="PCM_16")
        out = os.path.join(workdir, f"out_{seconds:g}")
        row = _measured(cli + [path, "--out", out], args.threads)
        show("default window", seconds, row)
        peaks.append(row["peak_mb"])
        if seconds == min(args.seconds):
            old = _measured(cli + [path, "--out", out, "--window", "10"], args.threads)
            show("reference: --window 10", seconds, old)
        os.remove(path)
    print(f"largest peak with the default window: {max(peaks):.0f} MB")


if __name__ == "__main__":
    main()
