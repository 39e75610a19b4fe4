"""Start-up: wall time of ``netdoctor check --json`` on a 3-node snapshot over ``python -c pass``.

Both commands run with this venv's interpreter, in fresh processes, as a warm
start: the environment drops ``PYTHONDONTWRITEBYTECODE`` and points
``PYTHONPYCACHEPREFIX`` at a temporary directory that one unmeasured run of
each command fills, so every run loads compiled bytecode as an installed
package does, and nothing is written into the source tree. A second figure
reports the import of argparse, the command-line library, alone over the same
floor, because the command line cannot start faster than its CLI library
imports. The notes list the slowest imports of one ``python -X importtime``
run of the command.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from common import Figure, child_python, interleaved, time_command

from netdoctor import synthetic
from netdoctor.model.serialize import dumps_snapshot

#: The snapshot: a 3-node Calico cluster with a stale blackhole route, so the report has findings.
BACKEND = "calico"
NODES = 3
FAULTS = ("stale-blackhole",)

#: Imports listed in the notes, slowest (cumulative) first.
IMPORTS_LISTED = 12


def netdoctor_command() -> list[str]:
    """Return the argv prefix that runs this venv's ``netdoctor`` console script."""
    script = Path(sys.executable).parent / "netdoctor"
    if script.exists():
        return [str(script)]
    found = shutil.which("netdoctor")
    if found is None:
        raise RuntimeError(f"no netdoctor console script next to {sys.executable} or on PATH; install netdoctor")
    return [found]


def warm_environment(cache: Path) -> dict[str, str]:
    """Return this process's environment with bytecode caching on, writing caches under ``cache``."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(cache)
    return env


def slowest_imports(argv: list[str], env: dict[str, str]) -> list[dict[str, Any]]:
    """Run the Python script ``argv`` under ``-X importtime``; return its slowest top-level imports.

    Each line of ``-X importtime`` reads ``import time: SELF | CUMULATIVE | NAME``,
    in microseconds, with NAME indented two spaces per level of nesting.
    """
    result = subprocess.run([sys.executable, "-X", "importtime", *argv], capture_output=True, text=True, env=env,
                            check=False)
    rows: list[dict[str, Any]] = []
    for line in result.stderr.splitlines():
        fields = line.removeprefix("import time:").split("|")
        if len(fields) != 3 or not fields[1].strip().isdigit():
            continue
        name = fields[2].removeprefix(" ")
        if not name.startswith(" "):
            rows.append({"module": name, "cumulative_ms": int(fields[1]) / 1000})
    rows.sort(key=lambda row: row["cumulative_ms"], reverse=True)
    return rows[:IMPORTS_LISTED]


def figures(quick: bool) -> list[Figure]:
    """Time the check command, ``import argparse`` and the empty interpreter."""
    repeat = 3 if quick else 10
    with tempfile.TemporaryDirectory(prefix="nd-bench-startup-") as directory:
        snapshot = Path(directory) / "small.json"
        snapshot.write_text(dumps_snapshot(synthetic.generate(BACKEND, NODES, FAULTS)), encoding="utf-8")
        env = warm_environment(Path(directory) / "pycache")

        check = [*netdoctor_command(), "check", "--json", "--snapshot", str(snapshot)]
        empty = child_python("pass")
        argparse = child_python("import argparse")
        for argv in (check, empty, argparse):
            time_command("warm-up", argv, repeat=1, env=env)

        measured, floor, argparse_import = interleaved(
            {"netdoctor check --json": check, "python -c pass": empty, "python -c 'import argparse'": argparse},
            repeat, env)
        imports = slowest_imports(check, env)

    notes = {"snapshot": f"{BACKEND}, {NODES} nodes, faults {', '.join(FAULTS)}", "runs": repeat,
             "slowest_imports": imports}
    return [
        Figure("check --json startup, 3 nodes, over python -c pass", measured, floor, target=3.0, notes=notes),
        Figure("import argparse over python -c pass", argparse_import, floor, target=None),
    ]
