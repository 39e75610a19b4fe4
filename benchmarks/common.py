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


def time_command(label: str, argv: list[str], repeat: int = 5, env: dict[str, str] | None = None) -> Timing:
    """Run ``argv`` ``repeat`` times and return the median wall time and the largest peak RSS.

    The peak RSS is read from ``wait4`` for each child alone, so it does not
    include this process or earlier children.
    """
    runs = []
    peak = 0
    for _ in range(repeat):
        started = time.perf_counter()
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        runs.append(time.perf_counter() - started)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode not in (0, 1):
            error = process.stderr.read().decode(errors="replace") if process.stderr else ""
            raise RuntimeError(f"{' '.join(argv)} exited with {process.returncode}: {error.strip()[-2000:]}")
        if process.stderr:
            process.stderr.close()
        peak = max(peak, usage.ru_maxrss)
    return Timing(label, statistics.median(runs), runs, peak_rss_mib=peak / 1024)


def child_python(code: str, *args: str) -> list[str]:
    """Return the argv that runs ``code`` in a fresh interpreter of this venv with ``args``."""
    return [sys.executable, "-c", code, *args]


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
        verdict = "" if figure.met is None else (" ✓" if figure.met else " ✗")
        rss = figure.measured.peak_rss_mib
        lines.append(
            f"| {figure.name} | {figure.ratio:.2f}×{verdict} | {target} "
            f"| {figure.measured.text()} "
            f"| {figure.floor.text()} "
            f"| {'-' if rss is None else f'{rss:,.0f} MiB'} |"
        )
    return "\n".join(lines)
