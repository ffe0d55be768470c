"""Helpers for the benchmark scripts: isolated runs with their own peak-memory reading."""

import json
import os
import subprocess
import sys
from typing import List

import numpy as np


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_isolated(script: str, args: List[str]) -> dict:
    """Run ``script`` in a fresh interpreter (so its peak memory is its own) and parse the
    JSON object it prints on its last line."""
    result = subprocess.run(
        [sys.executable, script, *args], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{script} {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def input_file(directory: str, seconds: float, sample_rate: int, subtype: str = "FLOAT") -> str:
    """A mono wav of a gated tone and noise, written in blocks (no whole-file array), once."""
    import soundfile as sf

    path = os.path.join(directory, f"input_{seconds:g}s_{sample_rate}_{subtype}.wav")
    if os.path.exists(path):
        return path
    rng = np.random.default_rng(0)
    n, block = int(seconds * sample_rate), 10 * sample_rate
    with sf.SoundFile(path, "w", sample_rate, 1, subtype=subtype) as out:
        for start in range(0, n, block):
            t = np.arange(start, min(start + block, n)) / sample_rate
            wav = 0.05 * rng.standard_normal(len(t)) + 0.3 * np.sin(2 * np.pi * 220 * t) * (
                np.sin(0.7 * t) > 0
            )
            out.write(wav.astype(np.float32))
    return path


def audiosep_network(audiosep_dir: str, model):
    """AudioSep's own ResUNet30 from a local checkout of Audio-AGI/AudioSep (not part of this
    package), its weights also loaded into ``model`` (a ``base`` LASSResUNet), so that both
    hold the same weights."""
    sys.path.insert(0, audiosep_dir)
    from models.resunet import ResUNet30  # the user's AudioSep checkout

    from asteroid_lass.converters.audiosep import map_audiosep_state_dict

    reference = ResUNet30(input_channels=1, output_channels=1, condition_size=512).eval()
    model.load_state_dict(map_audiosep_state_dict(reference.state_dict(), model))
    return reference
