"""Running a recipe's scripts from the tests."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_checked(args, cwd) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` with this checkout's package and this interpreter first on the
    path; fail the test with the output's tail if it fails."""
    # One thread: tiny models gain nothing from two, and stay fast on a busy machine.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result
