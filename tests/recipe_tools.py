"""Running a recipe's scripts from the tests."""

import os
import subprocess
import sys

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def run_in_recipe(args, cwd) -> subprocess.CompletedProcess:
    """Run ``args`` in ``cwd`` with this checkout's package and this interpreter first on the
    path."""
    # One thread: tiny models gain nothing from two, and stay fast on a busy machine.
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)


def run_checked(args, cwd) -> subprocess.CompletedProcess:
    """:func:`run_in_recipe`, failing the test with the output's tail if the script fails."""
    result = run_in_recipe(args, cwd)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def user_error_line(args, cwd) -> str:
    """The one line a recipe script prints for a user's error (exit status 2, no traceback)."""
    result = run_in_recipe(args, cwd)
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-3000:]
    return lines[0]
