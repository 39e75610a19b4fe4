"""Run netdoctor's benchmarks and print each figure as a ratio over its floor.

Usage: ``scripts/bench [--quick] [--only engine,collect,...] [--json FILE]``.
Each ``bench_NAME.py`` module here provides ``figures(quick) -> list[Figure]``;
``--quick`` uses the smallest sizes, which the test suite runs as a smoke test.
"""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys
import traceback
from pathlib import Path

from common import Figure, markdown_table, write_results

#: Benchmark modules in the order they run and print.
MODULES = ("engine", "bundle", "collect", "tui", "startup")


def main(argv: list[str] | None = None) -> int:
    """Run the selected benchmark modules, print a Markdown table and write the JSON results."""
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="run the smallest sizes only (a smoke test)")
    parser.add_argument("--only", default=",".join(MODULES), help=f"comma-separated modules (default: {','.join(MODULES)})")
    parser.add_argument("--json", type=Path, default=None, help="write the results to this JSON file")
    options = parser.parse_args(argv)

    names = list(dict.fromkeys(name.strip() for name in options.only.split(",") if name.strip()))
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        parser.error(f"unknown module {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    if not names:
        parser.error(f"--only names no module; choose from {', '.join(MODULES)}")
    if options.json and not options.json.parent.is_dir():
        parser.error(f"--json {options.json}: directory {options.json.parent} not found")

    figures: list[Figure] = []
    failed: list[str] = []
    for name in names:
        print(f"bench: running {name}", file=sys.stderr, flush=True)
        try:
            module = importlib.import_module(f"bench_{name}")
            figures.extend(module.figures(options.quick))
        except Exception:  # noqa: BLE001 - one broken benchmark must not lose the others' figures
            traceback.print_exc()
            print(f"bench: {name} failed; its figures are missing", file=sys.stderr)
            failed.append(name)

    print(markdown_table(figures))
    if options.json:
        command = "scripts/bench " + shlex.join(sys.argv[1:] if argv is None else argv)
        write_results(options.json, figures, command.strip())
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
    return 0 if not failed and all(figure.met is not False for figure in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
