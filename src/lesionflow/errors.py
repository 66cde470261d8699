"""Errors that a user can act on: one line naming the file or key and the problem."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Bad input data or configuration; the message is shown to the user as one line."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)
