"""Collection of one large node: netdoctor's netlink collector against ``ip -j`` plus ``json.loads``.

The node is a network namespace ``nd-bench-collect-<pid>`` with real kernel
state. It has veth pairs (this kernel has no dummy devices) with one IPv4 /24
and one IPv6 /64 each. Its routes are of the kinds a BGP-routed Kubernetes
node carries: via a gateway with ``proto bird``, blackhole, device-only
``scope link``, multipath, IPv6, and a second routing table. It is built with
``ip -n NS -batch`` and deleted in a ``finally`` block, on Ctrl-C and SIGTERM too.

``netdoctor collect --netns NS`` reads a node through
:func:`netdoctor.collectors.netlink.collect`, which this module calls directly.
Two figures, each the median of runs that take turns with their floors:

* routes: ``netlink.collect(target, ("routes",))``, which runs ``ip -4 -j
  route show table all`` and ``ip -6 -j route show table all`` and builds the
  route table, over ``ip -n NS -j -d route show table all`` plus ``json.loads``
  (the dump of both families with details, as the requirement defines the floor);
* node: ``netlink.collect(target)`` (interfaces, routes, neighbours and FDB
  entries as model objects) over the four dumps it reads (``ip -j -d addr``,
  the route dump above, ``ip -j neigh show nud all`` and ``bridge -j fdb
  show``) plus ``json.loads`` of each.

The notes of each figure also give the floor with Python's cyclic garbage
collector paused, as netdoctor's route parser pauses it. Without the pause, the
collections that ``json.loads`` triggers are a large part of the floor.

Peak RSS is the ``ru_maxrss`` of a fresh interpreter that runs the same step
once (see :func:`_child_peak_rss_mib`), because this process also holds the
other benchmarks' state.
"""

from __future__ import annotations

import gc
import json
import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from common import Figure, Timing, child_python, time_call

from netdoctor.collectors import netlink
from netdoctor.target import Target

#: Sizes of the full and the ``--quick`` run: routes and interfaces.
FULL = (100_000, 2_000)
QUICK = (2_000, 50)

#: Runs per timing: the median is reported.
REPEAT = 5
QUICK_REPEAT = 3

#: The largest route ratio that meets the target.
ROUTES_TARGET = 1.5


def _ipv4(value: int) -> str:
    return ".".join(str(value >> shift & 0xFF) for shift in (24, 16, 8, 0))


def _batch(routes: int, interfaces: int) -> str:
    """Return the ``ip -batch`` commands that build the node.

    Pair ``i`` is ``vaI``, with ``10.(128+i/256).(i%256).1/24`` and
    ``fd00:0:0:I::1/64``, and its peer ``vbI``. The gateway of a routed prefix
    is the ``.2`` or ``::2`` address of a pair. Routes are spread over the kinds
    in fixed shares: 70 % IPv4 /28 via a gateway (one in fourteen of them in
    table 100), 10 % blackhole, 10 % IPv6 /64 via a gateway, 5 % multipath and
    5 % device-only.
    """
    pairs = max(1, interfaces // 2)
    lines: list[str] = []
    for i in range(pairs):
        lines.append(f"link add va{i} type veth peer name vb{i}")
    for i in range(pairs):
        lines.append(f"link set va{i} up")
        lines.append(f"link set vb{i} up")
        lines.append(f"addr add 10.{128 + i // 256}.{i % 256}.1/24 dev va{i}")
        lines.append(f"addr add fd00:0:0:{i:x}::1/64 dev va{i} nodad")

    def gateway(k: int) -> tuple[str, str]:
        i = k % pairs
        return f"10.{128 + i // 256}.{i % 256}.2", f"va{i}"

    base = 10 << 24
    for k in range(routes):
        share = k % 20
        prefix = f"{_ipv4(base + k * 16)}/28"
        if share < 14:
            via, dev = gateway(k)
            table = " table 100" if share == 0 else ""
            lines.append(f"route add {prefix} via {via} dev {dev} proto bird metric 32{table}")
        elif share < 16:
            lines.append(f"route add blackhole {prefix} proto bird metric 32")
        elif share < 18:
            i = k % pairs
            lines.append(f"route add fd10:{k >> 16:x}:{k & 0xFFFF:x}::/64 via fd00:0:0:{i:x}::2 dev va{i} proto bird metric 32")
        elif share < 19:
            (via1, dev1), (via2, dev2) = gateway(k), gateway(k + 1)
            lines.append(f"route add {prefix} proto bird metric 32 nexthop via {via1} dev {dev1} nexthop via {via2} dev {dev2}")
        else:
            lines.append(f"route add {prefix} dev va{k % pairs} scope link")
    return "\n".join(lines) + "\n"


def _ip(namespace: str, *arguments: str, stdin: str | None = None) -> str:
    completed = subprocess.run(
        ["ip", "-n", namespace, *arguments], input=stdin, capture_output=True, text=True, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"ip -n {namespace} {' '.join(arguments)} failed: {completed.stderr.strip()[:500]}")
    return completed.stdout


@contextmanager
def large_node(routes: int, interfaces: int) -> Iterator[str]:
    """Create the benchmark namespace with ``routes`` routes and ``interfaces`` interfaces, and delete it on exit.

    SIGINT and SIGTERM are turned into ``KeyboardInterrupt`` while the
    namespace exists, so the ``finally`` block deletes it on Ctrl-C and on kill.
    """
    namespace = f"nd-bench-collect-{os.getpid()}"
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if in_main_thread else None
    try:
        subprocess.run(["ip", "netns", "add", namespace], check=True, capture_output=True)
        try:
            _ip(namespace, "link", "set", "lo", "up")
            _ip(namespace, "-batch", "-", stdin=_batch(routes, interfaces))
            yield namespace
        finally:
            subprocess.run(["ip", "netns", "delete", namespace], check=False, capture_output=True)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _alternate(steps: list[tuple[str, Callable[[], Any]]], repeat: int) -> list[Timing]:
    """Time each step ``repeat`` times, taking turns, so that load from other processes hits all steps alike."""
    runs: dict[str, list[float]] = {label: [] for label, _ in steps}
    for _ in range(repeat):
        for label, step in steps:
            runs[label] += time_call(label, step, repeat=1).runs
    return [Timing(label, statistics.median(runs[label]), runs[label]) for label, _ in steps]


def _floor(namespace: str, dumps: tuple[tuple[str, ...], ...], pause_gc: bool = False) -> None:
    """Run each ``ip``/``bridge`` dump in the namespace and decode its JSON, as the cheapest reader would.

    ``pause_gc`` disables Python's cyclic garbage collector meanwhile.
    """
    enabled = gc.isenabled()
    if pause_gc:
        gc.disable()
    try:
        for argv in dumps:
            output = subprocess.run([argv[0], "-n", namespace, *argv[1:]], capture_output=True, check=True).stdout
            json.loads(output)
    finally:
        if enabled:
            gc.enable()


def _collect(namespace: str, parts: tuple[str, ...]) -> Any:
    part = netlink.collect(Target("bench", netns=namespace), parts)
    if part.gaps:
        raise RuntimeError(f"netdoctor collect of {namespace} left gaps: {part.gaps}")
    return part


#: The floors. For routes it is the dump of both families with details, as the
#: requirement defines it. For the node it is the four dumps the collector
#: reads, with that route dump.
ROUTE_DUMPS = (("ip", "-j", "-d", "route", "show", "table", "all"),)
NODE_DUMPS = (
    ("ip", "-j", "-d", "addr", "show"),
    *ROUTE_DUMPS,
    ("ip", "-j", "neigh", "show", "nud", "all"),
    ("bridge", "-j", "fdb", "show"),
)


def _own_dumps(parts: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Return the JSON commands the collector itself runs for ``parts``, for the strictest floor."""
    return tuple(command.json_argv for part in parts for command in netlink._COMMANDS[part])


_FLOOR_CHILD = """
import json, subprocess, sys
namespace = sys.argv[1]
for argv in json.loads(sys.argv[2]):
    json.loads(subprocess.run([argv[0], "-n", namespace, *argv[1:]], capture_output=True, check=True).stdout)
"""

_NETDOCTOR_CHILD = """
import sys
from netdoctor.collectors import netlink
from netdoctor.target import Target
part = netlink.collect(Target("bench", netns=sys.argv[1]), sys.argv[2].split(","))
if part.gaps:
    raise SystemExit(f"netdoctor collect left gaps: {part.gaps}")
"""

_PRINT_PEAK_RSS = """
import resource
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _child_peak_rss_mib(code: str, *arguments: str) -> float:
    """Run ``code`` once in a fresh interpreter and return that interpreter's own peak RSS in MiB.

    A shell forks the interpreter. Linux adds the peak RSS of the memory a
    process had before ``exec`` to its ``ru_maxrss``, so an interpreter forked
    straight from this process would report at least this process's own peak RSS.
    """
    argv = ["sh", "-c", '"$0" "$@"; exit $?', *child_python(code + _PRINT_PEAK_RSS, *arguments)]
    completed = subprocess.run(argv, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"peak RSS child exited with {completed.returncode}: {completed.stderr.strip()[-2000:]}")
    return int(completed.stdout.split()[-1]) / 1024


def _figure(
    name: str, namespace: str, parts: tuple[str, ...], dumps: tuple[tuple[str, ...], ...],
    repeat: int, target: float | None, notes: dict[str, Any],
) -> Figure:
    """Time netdoctor's read of ``parts`` against the floor ``dumps``, and against two stricter floors for the notes."""
    own = _own_dumps(parts)
    steps: list[tuple[str, Callable[[], Any]]] = [
        (f"netlink.collect({', '.join(parts)})", lambda: _collect(namespace, parts)),
        ("ip -j + json.loads", lambda: _floor(namespace, dumps)),
        ("ip -j + json.loads, GC paused", lambda: _floor(namespace, dumps, pause_gc=True)),
        ("collector's own ip -j commands + json.loads, GC paused", lambda: _floor(namespace, own, pause_gc=True)),
    ]
    # One untimed run of each warms the page cache and the imports.
    for _, step in steps:
        step()
    netdoctor_timing, floor_timing, *stricter = _alternate(steps, repeat)
    netdoctor_timing.peak_rss_mib = _child_peak_rss_mib(_NETDOCTOR_CHILD, namespace, ",".join(parts))
    floor_timing.peak_rss_mib = _child_peak_rss_mib(_FLOOR_CHILD, namespace, json.dumps(dumps))

    def commands(argvs: tuple[tuple[str, ...], ...]) -> list[str]:
        return [" ".join((argv[0], "-n", "NS", *argv[1:])) for argv in argvs]

    return Figure(
        name, netdoctor_timing, floor_timing, target,
        notes={
            **notes,
            "floor_commands": commands(dumps),
            "netdoctor_commands": [f"ip netns exec NS {' '.join(argv)}" for argv in own],
            "floor_peak_rss_mib": round(floor_timing.peak_rss_mib, 1),
            "stricter_floors": [
                {"label": timing.label, "commands": commands(argvs), "median_s": round(timing.median, 4),
                 "ratio": round(netdoctor_timing.median / timing.median, 3)}
                for timing, argvs in zip(stricter, (dumps, own), strict=True)
            ],
            "peak_rss": "ru_maxrss of one run in a fresh interpreter forked by sh; timings are in this process",
        },
    )


def figures(quick: bool) -> list[Figure]:
    """Build the node, time the route read and the whole-node read against their floors, and delete the node."""
    routes, interfaces = QUICK if quick else FULL
    repeat = QUICK_REPEAT if quick else REPEAT
    # At the quick size, starting two ip processes instead of one outweighs
    # the parsing, so the target applies to the full size only.
    target = None if quick else ROUTES_TARGET
    started = time.perf_counter()
    with large_node(routes, interfaces) as namespace:
        built = time.perf_counter() - started
        table = _collect(namespace, ("routes",)).values["routes"]
        notes = {
            "routes_added": routes, "interfaces": interfaces, "kernel_routes_read": len(table),
            "build_seconds": round(built, 2),
        }
        return [
            _figure(f"collect: {routes:,} routes", namespace, ("routes",), ROUTE_DUMPS, repeat, target, notes),
            _figure(
                f"collect: node with {routes:,} routes, {interfaces:,} interfaces", namespace, netlink.PARTS,
                NODE_DUMPS, repeat, None, notes,
            ),
        ]
