"""The command-line layer shared by netdoctor's commands, on the standard library's argparse.

Every command reports a usage error or unreadable input as one ``Error:`` line
on stderr and exits with status 2, never with a traceback. The module imports
only argparse, so that a command starts fast.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from pathlib import Path

#: The function a command runs with its parsed arguments; it returns the exit status (None for 0).
Handler = Callable[[argparse.Namespace], "int | None"]


class CommandError(Exception):
    """An error the user can correct: printed as one ``Error:`` line on stderr; the command exits with ``status``."""

    def __init__(self, message: str, status: int = 2) -> None:
        super().__init__(message)
        self.status = status


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout with a wider option column.

    Descriptions and epilogs are wrapped paragraph by paragraph, and a paragraph
    whose lines are indented (a list of commands) is kept as written.
    """

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=_terminal_columns() - 2)

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = []
        for paragraph in text.split("\n\n"):
            if any(line.startswith(" ") for line in paragraph.splitlines()):
                paragraphs.append(paragraph)
            else:
                paragraphs.append(super()._fill_text(paragraph, width, indent))
        return "\n\n".join(paragraphs)


def _terminal_columns() -> int:
    """Return the terminal's width as ``shutil.get_terminal_size`` does, without importing shutil.

    argparse builds a formatter for every option it adds, and its own width
    lookup imports shutil, which takes longer than the rest of the parsing.
    """
    try:
        columns = int(os.environ.get("COLUMNS", "0"))
    except ValueError:
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class ArgumentParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors raise :class:`CommandError` instead of printing the usage.

    Long options must be spelled out: argparse's prefix matching is off, so that
    adding an option never changes what an existing abbreviation means.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs["add_help"] = False
        super().__init__(*args, **kwargs)
        self.add_argument("-h", "--help", action="help", help="Show this message and exit.")

    def error(self, message: str) -> NoReturn:
        raise CommandError(f"{message} (see '{self.prog} --help')")


class VersionAction(argparse.Action):
    """``--version``: print ``PROG, version X`` from the installed package's metadata and exit 0.

    The version is read only when the option is given, because importing
    ``importlib.metadata`` would slow down every other run.
    """

    def __init__(self, option_strings: Sequence[str], dest: str, package: str = "netdoctor", **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="Show the version and exit.")
        self.package = package

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from importlib.metadata import version

        echo(f"{parser.prog}, version {version(self.package)}")
        parser.exit()


def with_default(help_text: str, default: object, limits: str = "") -> str:
    """Append ``[default: X]`` (and a range such as ``x>=1``) to an option's help text."""
    note = f"default: {default}" + (f"; {limits}" if limits else "")
    return f"{help_text}  [{note}]" if help_text else f"[{note}]"


def choice(*values: str) -> Callable[[str], str]:
    """Return an argparse type that accepts one of ``values``."""

    def parse(text: str) -> str:
        if text not in values:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(map(repr, values))}")
        return text

    return parse


def choice_metavar(*values: str) -> str:
    """Return the metavar that lists a choice's values, such as ``{v2,v3,auto}``."""
    return "{" + ",".join(values) + "}"


def number_in_range(kind: type[int | float], minimum: float | None = None,
                    maximum: float | None = None) -> Callable[[str], Any]:
    """Return an argparse type that reads an int or a float within ``minimum`` and ``maximum``, both inclusive."""
    noun = "integer" if kind is int else "number"

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a valid {noun}") from None
        if not math.isfinite(value):
            # float() accepts nan and inf, and nan fails every comparison below.
            raise argparse.ArgumentTypeError(f"{text!r} is not a finite {noun}")
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"{text} is not in the range {range_text(minimum, maximum)}")
        return value

    return parse


def range_text(minimum: float | None, maximum: float | None) -> str:
    """Return a range as ``1<=x<=8``, ``x>=1`` or ``x<=8``."""
    if minimum is not None and maximum is not None:
        return f"{minimum}<=x<={maximum}"
    if minimum is not None:
        return f"x>={minimum}"
    return f"x<={maximum}"


def path_type(*, file_okay: bool = True, dir_okay: bool = True, output: bool = False) -> Callable[[str], Path]:
    """Return an argparse type for a path that, when it exists, must be a file or a directory as allowed.

    With ``output`` the path is a file to write (``-`` passes), and its
    directory must exist, so that a command fails before it collects anything.
    """

    def parse(text: str) -> Path:
        from pathlib import Path  # imported only for the commands that take such a path

        path = Path(text)
        try:
            if not dir_okay and path.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file")
            if not file_okay and path.exists() and not path.is_dir():
                raise argparse.ArgumentTypeError(f"{text!r} is not a directory")
            if output and text != "-":
                _check_output(text, path)
        except OSError as error:  # a directory above it that this user may not search, for one
            raise argparse.ArgumentTypeError(f"cannot look up {text!r}: {error.strerror or error}") from None
        return path

    return parse


def _check_output(text: str, path: Path) -> None:
    """Raise ``ArgumentTypeError`` unless ``path`` names a file that can be created or replaced."""
    parent = path.parent
    if text.endswith("/"):
        raise argparse.ArgumentTypeError(f"{text!r} ends with '/', so it names a directory; expected a file")
    if not parent.exists():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: directory {str(parent)!r} does not exist; "
                                         "create it first")
    if not parent.is_dir():
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: {str(parent)!r} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: this user may not create files in {str(parent)!r}")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text!r}: the file exists and this user may not replace it")


def echo(message: object = "", *, err: bool = False, nl: bool = True) -> None:
    """Write a message and a newline to stdout (stderr with ``err``), and flush it.

    Flushing at once keeps the order of stdout and stderr lines when both go to
    one file or terminal.
    """
    stream = sys.stderr if err else sys.stdout
    stream.write(f"{message}\n" if nl else str(message))
    stream.flush()


def bold(text: str) -> str:
    """Return text in bold when stdout is a terminal, unchanged otherwise."""
    return f"\x1b[1m{text}\x1b[0m" if sys.stdout.isatty() else text


def confirm(question: str, default: bool = False) -> bool:
    """Ask a yes/no question on the terminal and return the answer; an empty answer gives ``default``.

    End of input or Ctrl-C raises, and :func:`run` turns that into ``Aborted!``
    with exit status 1.
    """
    prompt = f"{question} [{'Y/n' if default else 'y/N'}]: "
    while True:
        answer = input(prompt).strip().lower()
        if not answer:
            return default
        if answer in ("y", "yes"):
            return True
        if answer in ("n", "no"):
            return False
        echo(f"Error: invalid response {answer!r}; type y or n", err=True)


def run(command: Callable[[], int | None]) -> int:
    """Run a command and return its exit status.

    A :class:`CommandError` prints one ``Error:`` line and returns its status.
    ``sys.exit(N)`` inside the command returns N. Ctrl-C, or the end of input at
    a prompt, prints ``Aborted!`` and returns 1. A closed stdout pipe returns 1
    without a message.
    """
    try:
        return command() or 0
    except CommandError as error:
        echo(f"Error: {error}", err=True)
        return error.status
    except SystemExit as error:
        return _exit_status(error.code)
    except (KeyboardInterrupt, EOFError):
        echo("\nAborted!", err=True)
        return 1
    except BrokenPipeError:
        _silence_stdout()
        return 1


def _exit_status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    echo(code, err=True)
    return 1


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that the interpreter's final flush does not fail on the closed pipe again."""
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a file descriptor, as in tests
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)
