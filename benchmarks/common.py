"""Timing, peak-RSS and reporting helpers shared by the benchmark modules.

Every figure is a ratio of two timings taken in the same run on the same
machine: netdoctor's time over a floor (``json.loads``, the C tool, an empty
interpreter). Each timing is the median of several runs.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

#: The directory of this file; benchmark modules import each other from here.
HERE = Path(__file__).resolve().parent


@dataclass
class Timing:
    """The median wall time of a measured step, with every run and the peak RSS of its process."""

    label: str
    median: float
    runs: list[float]
    #: Peak resident set size in MiB of the process that ran the step, when measured in a child.
    peak_rss_mib: float | None = None
    #: The unit of ``median`` and ``runs``: seconds, or another unit for derived figures.
    unit: str = "s"

    def text(self) -> str:
        """Return the label and the median with its unit, as the table prints them."""
        value = f"{self.median:.3f}" if self.unit == "s" else f"{self.median:.3g}"
        return f"{self.label}: {value} {self.unit}"


@dataclass
class Figure:
    """One reported ratio: a measured step over its floor, and the target it must meet."""

    name: str
    measured: Timing
    floor: Timing
    #: The largest ratio that meets the target, or None for a figure reported without a target.
    target: float | None
    notes: dict[str, Any] = field(default_factory=dict)
    #: The largest peak RSS of the measured step, in MiB, that meets the target; None for no limit.
    rss_limit_mib: float | None = None

    @property
    def ratio(self) -> float:
        """The measured median over the floor median."""
        return self.measured.median / self.floor.median if self.floor.median else float("inf")

    @property
    def met(self) -> bool | None:
        """Whether the ratio and the peak RSS meet their targets; None when the figure has neither."""
        verdicts = []
        if self.target is not None:
            verdicts.append(self.ratio <= self.target)
        if self.rss_limit_mib is not None and self.measured.peak_rss_mib is not None:
            verdicts.append(self.measured.peak_rss_mib <= self.rss_limit_mib)
        return all(verdicts) if verdicts else None

    def to_json(self) -> dict[str, Any]:
        """Return the figure with its ratio, as the results file stores it."""
        data = asdict(self)
        data["ratio"] = self.ratio
        data["met"] = self.met
        return data


def time_call(label: str, function: Callable[[], Any], repeat: int = 5) -> Timing:
    """Call ``function`` ``repeat`` times in this process and return the median wall time."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        runs.append(time.perf_counter() - started)
    return Timing(label, statistics.median(runs), runs)


#: GNU time, which reports the peak RSS of the command it runs (the ``time`` package on Debian).
GNU_TIME = Path("/usr/bin/time")


def time_command(label: str, argv: list[str], repeat: int = 5, env: dict[str, str] | None = None) -> Timing:
    """Run ``argv`` ``repeat`` times and return the median wall time and the largest peak RSS.

    A child's ``ru_maxrss`` starts at the RSS its parent had when it forked, so
    the command runs under GNU time, a small process whose own child starts
    clean, and the peak RSS is what GNU time reports. Without GNU time the
    peak comes from ``wait4`` and includes this process's RSS at the fork.
    Exit statuses 0 and 1 (findings) count as success.
    """
    runs = []
    peak = 0.0
    with tempfile.TemporaryDirectory(prefix="nd-bench-") as scratch:
        report = Path(scratch) / "rss"
        errors = Path(scratch) / "stderr"
        command = [str(GNU_TIME), "-f", "%M", "-o", str(report), *argv] if GNU_TIME.exists() else argv
        for _ in range(repeat):
            with errors.open("wb") as stderr:
                started = time.perf_counter()
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
                _, status, usage = os.wait4(process.pid, 0)
                runs.append(time.perf_counter() - started)
            code = os.waitstatus_to_exitcode(status)
            if code not in (0, 1):
                error = errors.read_text(errors="replace").strip()[-2000:]
                raise RuntimeError(f"{' '.join(argv)} exited with {code}: {error}")
            if command is argv:
                peak = max(peak, usage.ru_maxrss / 1024)
            else:
                # GNU time appends a "Command exited with non-zero status" line before the figure.
                peak = max(peak, int(report.read_text().split()[-1]) / 1024)
    return Timing(label, statistics.median(runs), runs, peak_rss_mib=peak)


def interleaved(commands: dict[str, list[str]], repeat: int, env: dict[str, str] | None = None) -> list[Timing]:
    """Time each command ``repeat`` times, one run of each in turn, and return their timings in order.

    Taking turns exposes every command to the same changes in the machine's
    load, so a busy moment moves the ratio less than when one command's runs
    all come before the other's.
    """
    runs: dict[str, list[float]] = {label: [] for label in commands}
    peaks = dict.fromkeys(commands, 0.0)
    for _ in range(repeat):
        for label, argv in commands.items():
            timing = time_command(label, argv, repeat=1, env=env)
            runs[label].extend(timing.runs)
            peaks[label] = max(peaks[label], timing.peak_rss_mib or 0.0)
    return [Timing(label, statistics.median(runs[label]), runs[label], peak_rss_mib=peaks[label])
            for label in commands]


def child_python(code: str, *args: str) -> list[str]:
    """Return the argv that runs ``code`` in a fresh interpreter of this venv with ``args``.

    ``-P`` keeps the working directory off ``sys.path``: run from the repository
    root, ``import netdoctor`` would otherwise read the source tree, which lacks
    the catalogue packages, instead of the installed package.
    """
    return [sys.executable, "-P", "-c", code, *args]


def self_rss_mib() -> float:
    """Return the peak RSS of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> dict[str, Any]:
    """Describe the machine the figures were measured on."""
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gib": round(memory, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def write_results(path: Path, figures: list[Figure], command: str) -> None:
    """Write the figures, the machine and the command line to ``path`` as JSON."""
    data = {
        "command": command,
        "machine": machine(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "figures": [figure.to_json() for figure in figures],
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def markdown_table(figures: list[Figure]) -> str:
    """Render the figures as a Markdown table: ratio, target, both timings and peak RSS."""
    lines = [
        "| figure | ratio | target | netdoctor | floor | peak RSS |",
        "|---|---:|---:|---|---|---:|",
    ]
    for figure in figures:
        target = "-" if figure.target is None else f"≤ {figure.target:g}×"
        if figure.rss_limit_mib is not None:
            target += f", RSS ≤ {figure.rss_limit_mib:,.0f} MiB"
        verdict = ""
        if figure.met is not None:
            verdict = " ✓" if figure.met else " ✗"
        rss = figure.measured.peak_rss_mib
        lines.append(
            f"| {figure.name} | {figure.ratio:.2f}×{verdict} | {target} "
            f"| {figure.measured.text()} "
            f"| {figure.floor.text()} "
            f"| {'-' if rss is None else f'{rss:,.0f} MiB'} |"
        )
    return "\n".join(lines)
