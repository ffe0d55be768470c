"""The errors a user of asteroid_lass can be shown, as a small hierarchy.

The CLI prints any :class:`LASSError` as one ``error: ...`` line (exit status 2) and
anything else as one ``unexpected ...`` line (exit status 1); ``--debug`` adds the traceback.
"""


class LASSError(Exception):
    """Base class of every user-facing error of the package."""


class LASSInputError(LASSError, ValueError):
    """An argument, a query or an audio input that cannot be used as given."""


class ModelFileError(LASSError, ValueError):
    """A model file (or hub id) that is missing, unreadable or not a serialized model."""


class AudioFileError(LASSError, ValueError):
    """An audio file that is missing, unreadable, empty or holds non-finite samples."""


class OutputExistsError(LASSError, FileExistsError):
    """An output that would replace an existing file (without ``force``) or one of the inputs."""


class ManifestError(LASSError, ValueError):
    """A manifest with problems; the message names the file and the bad rows (the first ten)."""


class SeparationError(LASSError, RuntimeError):
    """A separation that cannot give a usable result, e.g. a model producing NaN."""


def one_line(err: BaseException) -> str:
    """``Type: first line of the message``: library errors can span pages."""
    lines = str(err).strip().splitlines()
    return f"{type(err).__name__}: {lines[0] if lines else ''}"
