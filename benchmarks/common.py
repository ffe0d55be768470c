"""Helpers for the benchmark scripts: isolated runs with their own peak-memory reading."""

import json
import subprocess
import sys
from typing import List


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
