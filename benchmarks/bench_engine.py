"""Check engine at cluster scale: ``netdoctor check`` over synthetic Calico snapshots.

For each size N the snapshot file is generated once (``python -m
netdoctor.synthetic``, cached) and two commands run side by side in fresh
interpreters: ``netdoctor check --snapshot FILE --json`` and the floor, a
Python one-liner that reads the file and calls ``json.loads`` on it. Both
include interpreter start-up; the check also includes importing netdoctor.

A Calico cluster of N nodes has about N² routes (each node routes every
peer's block), so the time per route shows whether the engine stays linear.
The other backends are measured at 1,000 nodes, without a target: flannel
VXLAN adds N² neighbour and FDB entries, and an OVS mesh N² tunnel ports. The
last two figures give every node of a 1,000-node Calico cluster kube-proxy's
iptables rules for 1,000 services, about 4,600 rules a node, first without
counters and then with counters that differ on every node, as real captures
have them.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from common import Figure, Timing, child_python, interleaved

import netdoctor.synthetic
from netdoctor.model.serialize import SNAPSHOT_SCHEMA

#: Sizes of the full run and of the smoke test.
SIZES = (100, 500, 1000, 2000, 5000)
QUICK_SIZES = (20, 60)
#: Sizes where the ratio target applies.
TARGET_SIZES = (1000, 5000)
RATIO_TARGET = 2.0
RSS_LIMIT_MIB = 4096.0
#: Largest change of the time per route between the smallest and largest size.
PER_ROUTE_TARGET = 1.3
BACKEND = "calico"
FAULTS = ("route-missing", "stale-blackhole")
#: Other backends, measured at one size without a target: their checks have other per-pair work than Calico's.
OTHER_BACKENDS = {
    "flannel-vxlan": ("route-missing", "vtep-mismatch"),
    "direct-routing": ("route-missing",),
    "ovs-vxlan": ("tunnel-missing",),
}
OTHER_SIZE = 1000
QUICK_OTHER_SIZE = 20
#: The cluster with kube-proxy's iptables rules on every node: nodes and ClusterIP services, full and quick.
SERVICES_CLUSTER = (1000, 1000)
QUICK_SERVICES_CLUSTER = (20, 50)

FLOOR_CODE = "import json, sys\nwith open(sys.argv[1], 'rb') as stream:\n    json.loads(stream.read())"


def cache_dir() -> Path:
    """Return the directory that keeps generated snapshots between runs (``ND_BENCH_CACHE`` overrides it)."""
    path = Path(os.environ.get("ND_BENCH_CACHE", Path.home() / ".cache" / "netdoctor-bench"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def snapshot_file(nodes: int, backend: str = BACKEND, faults: tuple[str, ...] = FAULTS, services: int = 0,
                  counters: bool = False) -> Path:
    """Return the generated snapshot file of ``nodes`` nodes, writing it first if it is not cached.

    The file name carries a digest of the generator's source and of the
    snapshot schema tag, so a changed generator or file format never reuses an
    old file.
    """
    source = Path(netdoctor.synthetic.__file__).read_bytes()
    identity = repr((SNAPSHOT_SCHEMA, backend, nodes, faults, services, counters)).encode()
    digest = hashlib.sha256(source + identity).hexdigest()[:12]
    services_part = f"-{services}-services" if services else ""
    path = cache_dir() / f"{backend}-{nodes}{services_part}{'-counters' if counters else ''}-{digest}.json"
    if not path.exists():
        print(f"bench: generating {path.name}", file=sys.stderr, flush=True)
        partial = path.with_suffix(".partial")
        command = [sys.executable, "-P", "-m", "netdoctor.synthetic", "--backend", backend, "--nodes", str(nodes),
                   "--services", str(services), "-o", str(partial)]
        for fault in faults:
            command += ["--fault", fault]
        if counters:
            command.append("--counters")
        subprocess.run(command, check=True)
        partial.rename(path)
    return path


def netdoctor_command() -> str:
    """Return the ``netdoctor`` script installed next to this interpreter."""
    return str(Path(sys.executable).with_name("netdoctor"))


def side_by_side(path: Path, repeat: int) -> tuple[Timing, Timing]:
    """Time the floor and ``netdoctor check`` over one snapshot file, one run of each in turn.

    The file is read once first, untimed, so that neither command's first run
    reads it from disk. On the 2-vCPU VM, ``json.loads`` of the 5,000-node
    file took from 3.4 s to 6.0 s within a few minutes. Runs that take turns
    see the same state of the machine, and two blocks of runs may not.
    """
    with path.open("rb") as stream:
        while stream.read(1 << 24):
            pass
    floor, measured = interleaved({
        "json.loads": child_python(FLOOR_CODE, str(path)),
        "netdoctor check": [netdoctor_command(), "check", "--snapshot", str(path), "--json"],
    }, repeat)
    return floor, measured


def figures(quick: bool) -> list[Figure]:
    """Measure check time and peak RSS against json.loads at each size, and the time per route."""
    sizes = QUICK_SIZES if quick else SIZES
    result: list[Figure] = []
    per_route: dict[int, Timing] = {}
    for nodes in sizes:
        path = snapshot_file(nodes)
        floor, measured = side_by_side(path, repeat=3 if nodes >= 2000 else 5)
        routes = nodes * (nodes - 1 + 8)
        size_mib = path.stat().st_size / 2**20
        target = RATIO_TARGET if nodes in TARGET_SIZES else None
        limit = RSS_LIMIT_MIB if nodes == max(SIZES) else None
        result.append(Figure(
            f"check, Calico, N={nodes:,}", measured, floor, target,
            notes={"routes": routes, "file_mib": round(size_mib, 1)}, rss_limit_mib=limit,
        ))
        per_route[nodes] = Timing(f"N={nodes:,}", measured.median / routes * 1e6, [], unit="µs/route")
    # The per-route figure compares N=500 with N=5,000; the quick sizes compare their own ends.
    smallest = 500 if 500 in sizes else min(sizes)
    largest = max(sizes)
    result.append(Figure(
        f"check time per route, N={largest:,} over N={smallest:,}", per_route[largest], per_route[smallest],
        PER_ROUTE_TARGET,
    ))
    nodes = QUICK_OTHER_SIZE if quick else OTHER_SIZE
    for backend, faults in OTHER_BACKENDS.items():
        path = snapshot_file(nodes, backend, faults)
        floor, measured = side_by_side(path, repeat=3)
        result.append(Figure(f"check, {backend}, N={nodes:,}", measured, floor, None,
                             notes={"file_mib": round(path.stat().st_size / 2**20, 1)}))
    nodes, services = QUICK_SERVICES_CLUSTER if quick else SERVICES_CLUSTER
    text = netdoctor.synthetic.iptables_save(netdoctor.synthetic.plan(BACKEND, nodes, services=services))
    rules = text.count("\n-A ")
    # Captures by 'netdoctor collect' and 'netdoctor bundle' have counters, which differ on every node.
    for counters in (False, True):
        path = snapshot_file(nodes, services=services, counters=counters)
        floor, measured = side_by_side(path, repeat=3)
        name = f"check, Calico, N={nodes:,}, {services:,} kube-proxy services{', with counters' if counters else ''}"
        result.append(Figure(name, measured, floor, None, notes={
            "iptables_rules_per_node": rules, "file_mib": round(path.stat().st_size / 2**20, 1)}))
    return result
