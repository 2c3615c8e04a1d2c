"""The project's own errors, under one root. At the bottom of the import graph, so every layer
can raise them.

A `HappysadError` is something a user can act on, said in one line: the CLI prints it as
`error: ...` and exits 1. Any other exception is a bug and keeps its traceback.
"""


def one_line(error: BaseException) -> str:
    """What a user is shown of an error: its first line, or its type's name if it says nothing."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class HappysadError(Exception):
    """The root: a problem with what was asked or with the deployment, not with the code."""


class NotFound(HappysadError, LookupError):
    """A job, model version or run that does not exist."""


class Unavailable(HappysadError):
    """A service the command needs (database, broker, bucket) cannot be reached."""


class InvalidInput(HappysadError, ValueError):
    """A request, a file or a setting that cannot be used as given; the message says why."""


class SettingsError(InvalidInput):
    """A HAPPYSAD_* setting that does not validate."""


class WaitTimeout(HappysadError, TimeoutError):
    """A command waited for something (a retrain, a job) longer than it was allowed to."""


class DiskFull(Unavailable):
    """No space left where a job's messages or rows go; the message names the job and what to
    run once space is back."""


def is_disk_full(error: BaseException) -> bool:
    """A full disk, wherever it struck: a file, SQLite, the embedded queue's folder."""
    import errno

    text = str(error)
    return ((isinstance(error, OSError) and error.errno == errno.ENOSPC)
            or "database or disk is full" in text or "No space left on device" in text)
