"""Smoke test of the benchmark runner with the engine and bundle modules at their quick sizes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

RUNNER = Path(__file__).resolve().parent.parent / "benchmarks" / "run.py"


def _run(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = dict(os.environ, ND_BENCH_CACHE=str(tmp_path / "cache"))
    return subprocess.run([sys.executable, str(RUNNER), *arguments], check=False, capture_output=True, text=True,
                          env=environment, timeout=600)


def test_quick_engine_and_bundle_figures(tmp_path: Path) -> None:
    results = tmp_path / "results.json"

    completed = _run(tmp_path, "--quick", "--only", "engine,bundle", "--json", str(results))

    assert completed.returncode == 0, completed.stderr
    data = json.loads(results.read_text())
    names = [figure["name"] for figure in data["figures"]]
    assert names == [
        "check, Calico, N=20",
        "check, Calico, N=60",
        "check time per route, N=60 over N=20",
        "check, flannel-vxlan, N=20",
        "check, direct-routing, N=20",
        "check, ovs-vxlan, N=20",
        "check, Calico, N=20, 50 kube-proxy services",
        "check, Calico, N=20, 50 kube-proxy services, with counters",
        "bundle load, Calico text capture, N=20",
        "iptables-save of one node, 100 kube-proxy services",
    ]
    for figure in data["figures"]:
        assert figure["measured"]["median"] > 0
        assert figure["floor"]["median"] > 0
    assert data["figures"][0]["measured"]["peak_rss_mib"] > 0
    assert data["figures"][6]["notes"]["iptables_rules_per_node"] > 4 * 50
    assert data["figures"][7]["notes"]["iptables_rules_per_node"] == data["figures"][6]["notes"]["iptables_rules_per_node"]
    assert data["figures"][8]["notes"]["same_findings_as_snapshot"] is True
    assert data["figures"][9]["notes"]["rules"] > 4 * 100
    assert data["machine"]["cores"] >= 1
    assert "| check, Calico, N=20 |" in completed.stdout


def test_unknown_module_is_named(tmp_path: Path) -> None:
    completed = _run(tmp_path, "--only", "engine,gpu")

    assert completed.returncode == 2
    assert "unknown module gpu" in completed.stderr


def test_empty_selection_rejected(tmp_path: Path) -> None:
    completed = _run(tmp_path, "--only", ",")

    assert completed.returncode == 2
    assert "--only names no module" in completed.stderr


def test_results_directory_checked_first(tmp_path: Path) -> None:
    completed = _run(tmp_path, "--quick", "--only", "engine", "--json", str(tmp_path / "missing" / "x.json"))

    assert completed.returncode == 2
    assert "directory" in completed.stderr
    assert "not found" in completed.stderr
    assert not (tmp_path / "cache").exists()
