"""Parsers of raw command output and captured files, producing snapshot parts.

Every parser takes the text and the name of the file or command it came from,
and raises :class:`ParseError` (never another exception) for input it cannot
read, naming the source, the line and what was expected.
"""

from __future__ import annotations


class ParseError(ValueError):
    """Input that a parser cannot read: the source, the 1-based line (if known) and what was expected."""

    def __init__(self, source: str, line: int | None, message: str) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}, line {line}" if line is not None else source
        super().__init__(f"{where}: {message}")


#: The error for JSON with an integer literal that CPython does not convert: by default it converts at most
#: 4,300 decimal digits, and ``json.loads`` raises a plain ValueError for a longer one.
TOO_MANY_DIGITS = "invalid JSON: a number has more than 4,300 digits, longer than any value a command prints"
