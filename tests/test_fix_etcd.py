"""Etcd steps against a real etcd on 127.0.0.1: write the flannel config through v2 and v3, then undo."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from netdoctor.fix import Condition, FixPlan, Operation, Safety, Step
from netdoctor.fixapply import NodeExecutor, apply_plans, undo_journal

pytestmark = pytest.mark.skipif(shutil.which("etcd") is None, reason="needs etcd-server")

KEY = "/coreos.com/network/config"
VALUE = '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'


@pytest.fixture
def endpoint(tmp_path: Path):  # type: ignore[no-untyped-def]
    from netdoctor.lab.etcd import start_etcd

    pid, url = start_etcd(tmp_path / "etcd" / "data", "fixtest")
    try:
        yield url
    finally:
        os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("api", ["v2", "v3"])
def test_etcd_put_and_undo(endpoint: str, api: str, tmp_path: Path) -> None:
    params = {"key": KEY, "value": VALUE, "api": api}
    step = Step("etcd-flannel-config", "Write the config", Safety.SAFE, "test", "write-flannel-network-config",
                "etcd-network-config-missing", action=Operation("etcd-put", params),
                preconditions=(Condition("etcd-key-absent", {"key": KEY, "api": api}),),
                done=Condition("etcd-key-is", params))
    plan = FixPlan("node1", (step,), etcd_endpoint=endpoint, source="lab")
    executor = NodeExecutor(plan)

    first = apply_plans([plan], tmp_path / "one.json")
    assert first.counts == {"applied": 1}
    assert executor.etcd_get(params) == VALUE

    second = apply_plans([plan], tmp_path / "two.json")
    assert second.counts == {"already-done": 1}

    assert undo_journal(tmp_path / "one.json") == 1
    assert executor.etcd_get(params) is None
