"""Loggers that import the ``logging`` module only when a message is logged.

Importing ``logging`` takes about half as long as starting the interpreter,
because it imports ``traceback``, ``threading`` and ``string``, and a
``netdoctor check`` of a snapshot file usually logs nothing. The modules that
such a run imports therefore create their logger with :func:`get_logger`, and
the command line sets up logging with :func:`configure`, which waits for the
first message unless the ``logging`` module is loaded already.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

#: The ``logging.basicConfig`` arguments that :func:`configure` deferred, or None.
_pending: dict[str, Any] | None = None


def configure(level: int, format: str) -> None:
    """Log to stderr at ``level`` with ``format``, as ``logging.basicConfig`` does.

    The setup is applied at once when ``logging`` is already imported, and
    otherwise when a logger from :func:`get_logger` is first used or
    :func:`apply_configuration` is called.
    """
    global _pending
    _pending = {"level": level, "format": format, "stream": sys.stderr}
    if "logging" in sys.modules:
        apply_configuration()


def apply_configuration() -> None:
    """Apply the setup that :func:`configure` deferred, if any; code that logs through ``logging`` directly needs it."""
    global _pending
    if _pending is None:
        return
    import logging

    settings, _pending = _pending, None
    logging.basicConfig(**settings)


class _LazyLogger:
    """A stand-in for ``logging.getLogger(name)`` that creates the logger on first use."""

    __slots__ = ("_logger", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger: logging.Logger | None = None

    def __getattr__(self, attribute: str) -> Any:
        if self._logger is None:
            import logging

            apply_configuration()
            self._logger = logging.getLogger(self.name)
        return getattr(self._logger, attribute)


def get_logger(name: str) -> logging.Logger:
    """Return the logger ``name``; the ``logging`` module is imported when it first logs."""
    logger: Any = _LazyLogger(name)
    return logger
