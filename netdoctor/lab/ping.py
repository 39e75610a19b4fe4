"""The pod-to-pod ping matrix: every pod sends one echo request to every other pod."""

from __future__ import annotations

import json
import logging
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from netdoctor.lab.plan import LabPlan
from netdoctor.lab.run import in_netns
from netdoctor.lab.state import LabError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PingResult:
    """One echo request: from which namespace to which address, and the RTT in ms or the failure."""

    source: str
    destination: str
    rtt_ms: float | None
    error: str | None

    @property
    def ok(self) -> bool:
        """Whether the echo reply came back."""
        return self.rtt_ms is not None


def ping(netns: str, destinations: list[str], timeout: float = 1.0, size: int = 56) -> dict[str, PingResult]:
    """Send one echo request from ``netns`` to each destination, in parallel; return the results by address."""
    argv = [sys.executable, "-m", "netdoctor.lab.probe", "--timeout", str(timeout), "--size", str(size), *destinations]
    output = in_netns(netns, argv, timeout=timeout + 30)
    try:
        raw = json.loads(output)
    except json.JSONDecodeError:
        raise LabError(f"the ping probe in {netns} printed no JSON: {output[:200]!r}") from None
    results = {}
    for destination in destinations:
        value = raw.get(destination, "no result")
        if isinstance(value, (int, float)):
            results[destination] = PingResult(netns, destination, float(value), None)
        else:
            results[destination] = PingResult(netns, destination, None, str(value))
    return results


def ping_matrix(plan: LabPlan, timeout: float = 1.0) -> dict[tuple[str, str], PingResult]:
    """Ping every pod from every other pod; return the results keyed by (source pod, destination pod)."""
    pods = plan.pods
    by_address = {pod.address: pod.name for pod in pods}

    def from_pod(index: int) -> dict[tuple[str, str], PingResult]:
        source = pods[index]
        targets = [pod.address for pod in pods if pod.name != source.name]
        found = ping(source.netns, targets, timeout)
        return {(source.name, by_address[address]): result for address, result in found.items()}

    matrix: dict[tuple[str, str], PingResult] = {}
    with ThreadPoolExecutor(max_workers=min(16, len(pods))) as pool:
        for part in pool.map(from_pod, range(len(pods))):
            matrix.update(part)
    return matrix
