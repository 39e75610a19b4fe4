"""Paths and readers for the sample captures under ``fixtures/samples``."""

from __future__ import annotations

from pathlib import Path

SAMPLES = Path(__file__).resolve().parent.parent / "fixtures" / "samples"


def sample(name: str) -> str:
    """Return the text of one sample capture."""
    return (SAMPLES / name).read_text()
