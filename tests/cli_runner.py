"""Run the netdoctor command line inside the test process and capture what it prints.

:func:`invoke` calls :func:`netdoctor.cli.main` with an argument list, the
same function the ``netdoctor`` console script calls, so tests run the real
parsing, error handling and exit statuses without starting a process.
"""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

from netdoctor.cli import main


@dataclass(frozen=True)
class Result:
    """What one run printed, and its exit status."""

    exit_code: int
    stdout: str
    stderr: str
    #: stdout and stderr interleaved in the order they were written, as a terminal shows them.
    output: str


class _Tee(io.TextIOBase):
    """A text stream that keeps what is written to it and also copies it to a shared stream."""

    def __init__(self, shared: io.StringIO) -> None:
        self.own = io.StringIO()
        self.shared = shared

    def write(self, text: str) -> int:
        self.own.write(text)
        self.shared.write(text)
        return len(text)

    def isatty(self) -> bool:
        return False


def invoke(*arguments: str, input: str = "") -> Result:
    """Run ``netdoctor ARGUMENTS`` in this process with ``input`` as stdin; return its output and exit status."""
    shared = io.StringIO()
    stdout, stderr = _Tee(shared), _Tee(shared)
    saved_stdin = sys.stdin
    sys.stdin = io.StringIO(input)
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            exit_code = main(list(arguments), prog_name="netdoctor")
    finally:
        sys.stdin = saved_stdin
    return Result(exit_code, stdout.own.getvalue(), stderr.own.getvalue(), shared.getvalue())
