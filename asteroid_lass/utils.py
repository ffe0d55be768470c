"""Small helpers used across the package."""

import contextlib
import os
from typing import Iterator


@contextlib.contextmanager
def atomic_write(path: str) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds.

    An interrupted or failed write never leaves a truncated file under the final name, and
    never replaces what was there.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    base, extension = os.path.splitext(os.path.basename(path))
    tmp_path = os.path.join(directory, f".{base}.{os.getpid()}.tmp{extension}")
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)
