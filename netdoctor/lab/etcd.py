"""The lab's etcd: one server on 127.0.0.1 holding flannel's config and leases.

flanneld of the v0.7 era reads etcd's v2 keyspace and newer flanneld reads v3;
the two keyspaces are separate, so the lab writes every key to both. The v3 keys
go through etcd's JSON gateway (``/v3/kv/put``), so writing needs no gRPC client.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from netdoctor.lab.plan import FLANNEL_PORT, FLANNEL_VNI, LabPlan, NodePlan
from netdoctor.lab.state import LabError

logger = logging.getLogger(__name__)

FLANNEL_PREFIX = "/coreos.com/network"
#: flanneld renews its lease every hour and lets it expire after 24 hours.
LEASE_TTL = 86400

#: The flannel backend type that each lab backend stands for in etcd.
FLANNEL_TYPES = {"flannel-vxlan": "vxlan", "direct-routing": "host-gw"}


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on at the moment."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_etcd(data_dir: Path, name: str) -> tuple[int, str]:
    """Start etcd on free 127.0.0.1 ports with the v2 API on; return its PID and client URL."""
    client = f"http://127.0.0.1:{free_port()}"
    peer = f"http://127.0.0.1:{free_port()}"
    data_dir.mkdir(parents=True, exist_ok=True)
    log = (data_dir.parent / "etcd.log").open("ab")
    argv = [
        "etcd",
        "--name", name,
        "--data-dir", str(data_dir),
        "--listen-client-urls", client,
        "--advertise-client-urls", client,
        "--listen-peer-urls", peer,
        "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"{name}={peer}",
        "--enable-v2",
    ]  # fmt: skip
    try:
        process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
    except FileNotFoundError:
        raise LabError("etcd is not installed: install etcd-server (Debian) to run this backend") from None
    finally:
        log.close()
    # The PID file lets 'lab down' find etcd even if the lab crashed before saving its state.
    (data_dir.parent / "etcd.pid").write_text(f"{process.pid}\n")
    wait_healthy(client, process)
    return process.pid, client


def wait_healthy(client: str, process: subprocess.Popen[bytes], timeout: float = 15.0) -> None:
    """Wait until etcd answers ``/health``; raise :class:`LabError` if it exits or times out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LabError(f"etcd exited with status {process.returncode} at start; see etcd.log in the state directory")
        try:
            with urllib.request.urlopen(f"{client}/health", timeout=1) as response:
                if json.loads(response.read()).get("health") == "true":
                    return
        except (urllib.error.URLError, OSError, ValueError):
            pass
        time.sleep(0.05)
    raise LabError(f"etcd at {client} was not healthy after {timeout:g} s; see etcd.log in the state directory")


def _request(url: str, method: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> Any:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise LabError(f"etcd request {method} {url} failed: HTTP {error.code} {error.read()[:200]!r}") from None
    except (urllib.error.URLError, OSError) as error:
        raise LabError(f"etcd request {method} {url} failed: {error}; is the lab's etcd running?") from None


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def put_v2(client: str, key: str, value: str, ttl: int | None = None) -> None:
    """Write one key to the v2 keyspace."""
    fields = {"value": value}
    if ttl is not None:
        fields["ttl"] = str(ttl)
    body = urllib.parse.urlencode(fields).encode()
    _request(f"{client}/v2/keys{key}", "PUT", body, {"Content-Type": "application/x-www-form-urlencoded"})


def delete_v2(client: str, key: str) -> None:
    """Delete one key from the v2 keyspace; a missing key is not an error."""
    _request(f"{client}/v2/keys{key}", "DELETE")


def put_v3(client: str, key: str, value: str, ttl: int | None = None) -> None:
    """Write one key to the v3 keyspace, attached to a new lease when ``ttl`` is given."""
    payload: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if ttl is not None:
        grant = _request(f"{client}/v3/lease/grant", "POST", json.dumps({"TTL": ttl}).encode())
        payload["lease"] = grant["ID"]
    _request(f"{client}/v3/kv/put", "POST", json.dumps(payload).encode())


def delete_v3(client: str, key: str) -> None:
    """Delete one key from the v3 keyspace."""
    _request(f"{client}/v3/kv/deleterange", "POST", json.dumps({"key": _b64(key)}).encode())


def network_config(plan: LabPlan) -> str:
    """Return the ``/coreos.com/network/config`` value for the lab's backend."""
    backend: dict[str, Any] = {"Type": FLANNEL_TYPES[plan.backend]}
    if backend["Type"] == "vxlan":
        backend.update({"VNI": FLANNEL_VNI, "Port": FLANNEL_PORT})
    return json.dumps({"Network": plan.pod_network, "SubnetLen": 24, "Backend": backend})


def lease_value(plan: LabPlan, node: NodePlan) -> str:
    """Return a node's lease value as flanneld writes it."""
    backend_type = FLANNEL_TYPES[plan.backend]
    data: dict[str, Any] = {"PublicIP": node.lan_ip, "BackendType": backend_type}
    if backend_type == "vxlan":
        data["BackendData"] = {"VtepMAC": node.vtep_mac}
    return json.dumps(data)


def put_both(client: str, key: str, value: str, ttl: int | None = None) -> None:
    """Write one key to both the v2 and the v3 keyspace."""
    put_v2(client, key, value, ttl)
    put_v3(client, key, value, ttl)


def delete_both(client: str, key: str) -> None:
    """Delete one key from both keyspaces."""
    delete_v2(client, key)
    delete_v3(client, key)


def seed_flannel(client: str, plan: LabPlan) -> None:
    """Write the network config and one lease per node to both keyspaces, replacing what is there."""
    put_both(client, f"{FLANNEL_PREFIX}/config", network_config(plan))
    for node in plan.nodes:
        put_both(client, f"{FLANNEL_PREFIX}/subnets/{node.subnet_key}", lease_value(plan, node), LEASE_TTL)
