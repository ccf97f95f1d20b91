"""The one exception type for user mistakes: the CLI prints it as a single line."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

# an error line stays readable whatever a hostile input holds: each part is cut in its middle
FILE_CHARS, FIELD_CHARS, MESSAGE_CHARS = 150, 40, 200


def shorten(text: object, limit: int = 60) -> str:
    """``text`` (str() of it) cut to ``limit`` characters in the middle, '...' marking the cut."""
    text = str(text)
    if len(text) <= limit:
        return text
    keep = limit - 3
    return f"{text[:keep - keep // 2]}...{text[len(text) - keep // 2:]}"


class ErbenchError(Exception):
    """A user-facing error naming the file and the field at fault."""

    def __init__(self, message: str, *, file: str | Path | None = None, field: str | None = None):
        self.file = str(file) if file is not None else None
        self.field = field
        self.message = message
        super().__init__(self.line())

    def line(self) -> str:
        """'file: field: message' on one line of at most ~400 characters."""
        parts = [shorten(p, n).replace("\r", " ").replace("\n", " ") for p, n in
                 ((self.file, FILE_CHARS), (self.field, FIELD_CHARS), (self.message, MESSAGE_CHARS)) if p]
        return ": ".join(parts)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for the closest choice, or '' when nothing is close."""
    close = difflib.get_close_matches(shorten(name, 100), list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""
