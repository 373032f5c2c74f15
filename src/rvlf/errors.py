"""User-facing errors.

Anything a user can cause (a bad file, a bad flag, a bad config) raises `RvlfError` (or a
subclass) with one line naming the file and the problem. The CLI prints that line and exits
non-zero; a Python traceback is shown only with `--debug`.
"""

from __future__ import annotations

from pathlib import Path


class RvlfError(Exception):
    """An error caused by input or usage, reported as one line."""

    exit_code = 2


class InputFileError(RvlfError):
    """A file is missing, unreadable or malformed."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None, column: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f":{line}"
        if column is not None:
            where += f" (column {column!r})"
        super().__init__(f"{where}: {problem}")


class ConfigError(RvlfError):
    """A configuration file or override is invalid."""


class TrainingError(RvlfError):
    """Training cannot go on (e.g. a NaN loss); the last good checkpoint is kept."""

    exit_code = 1


class WriteError(RvlfError):
    """Writing an output failed (disk full, read-only file system, permission denied, ...).

    The message names the path and the OS error; what was there before (the last good
    checkpoint, an earlier export or feature file) is left as it was, and no partial file is left
    under the final name (`rvlf.atomic`)."""

    exit_code = 1
