"""Hypothesis helpers shared by the parser fuzz tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st

from netdoctor.capture import ParseError


def mutations(text: str) -> st.SearchStrategy[str]:
    """Return a strategy that replaces a random slice of ``text`` with random characters."""
    return st.tuples(st.integers(0, len(text)), st.integers(0, 40), st.text(max_size=20)).map(
        lambda cut: text[: cut[0]] + cut[2] + text[cut[0] + cut[1] :]
    )


def parse_or_reject(parser: Callable[[str, str], Any], text: str) -> None:
    """Run a parser and let only ParseError through as a rejection; anything else fails the test."""
    try:
        parser(text, "fuzz")
    except ParseError as error:
        assert error.source == "fuzz"
