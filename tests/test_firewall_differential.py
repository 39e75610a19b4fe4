"""Differential test of the iptables evaluator against the kernel.

Each rule set is loaded with ``iptables-restore`` into the INPUT chain of a
receiving namespace. A sending namespace, joined to it by a veth pair, sends
each described packet for real, one at a time, with the counters zeroed before
each. The rule whose packet counter rose and whose target ends the walk (or
the chain policy, when no such rule counted it) is the kernel's verdict; it
must be the verdict and rule :func:`netdoctor.firewall.evaluate` returns.

Rule sets come from the capture cases (their filter tables) and from a seeded
random generator. All traffic stays on the veth pair between the two
namespaces the test creates.
"""

from __future__ import annotations

import random
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nslib
import pytest
from test_checks_support import iptables

from netdoctor.firewall import Packet, evaluate
from netdoctor.model import IptablesRule, IptablesRuleset

pytestmark = [nslib.needs_root, pytest.mark.netns]

REPOSITORY = Path(__file__).resolve().parent.parent
CASE_ROOTS = [REPOSITORY / "fixtures" / "cases", REPOSITORY.parent / "shared" / "cases"]

#: Addresses inside the test namespaces; the receiver's interface is named eth0 like a node's underlay.
SENDER = "10.99.0.1"
RECEIVER = "10.99.0.2"

SEND_SCRIPT = r"""
import socket, struct, sys
protocol, destination, sport, dport, icmp_type = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if protocol == "udp":
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("", sport))
    sock.sendto(b"netdoctor", (destination, dport))
elif protocol == "tcp":
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    sock.bind(("", sport))
    try:
        sock.connect((destination, dport))
    except BlockingIOError:
        pass
elif protocol == "icmp":
    header = struct.pack("!BBHHH", icmp_type, 0, 0, sport, 1)
    total = sum(struct.unpack("!4H", header))
    total = (total >> 16) + (total & 0xFFFF)
    checksum = ~(total + (total >> 16)) & 0xFFFF
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.sendto(struct.pack("!BBHHH", icmp_type, 0, checksum, sport, 1), (destination, 0))
else:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, int(protocol))
    sock.sendto(b"\0" * 8, (destination, 0))
"""

PROTOCOL_NUMBERS = {"gre": 47, "ipencap": 4}


@dataclass
class Pair:
    """A sender and a receiver namespace on one veth pair."""

    sender: nslib.Namespace
    receiver: nslib.Namespace
    script: Path
    next_port: int = 20000

    def load(self, filter_table: str) -> None:
        self.receiver.run("iptables -F; iptables -X")
        result = self.receiver.run(f"iptables-restore <<'EOF'\n{filter_table}\nEOF", check=False)
        if result.returncode != 0:
            raise RuntimeError(f"iptables-restore failed: {result.stderr.strip()}\n{filter_table}")

    def send(self, packet: Packet) -> IptablesRuleset:
        """Send one packet and return the receiver's rule set with the counters it produced."""
        self.receiver.run("iptables -Z")
        self.next_port += 1
        protocol = str(PROTOCOL_NUMBERS.get(packet.protocol, packet.protocol))
        arguments = [protocol, RECEIVER, str(self.next_port), str(packet.dport or 0), str(packet.icmp_type or 0)]
        self.sender.run(f"{shlex.quote(sys.executable)} {self.script} {' '.join(arguments)}")
        time.sleep(0.02)
        return iptables(self.receiver.run("iptables-save -c -t filter").stdout)


def _position(ruleset: IptablesRuleset, rule: IptablesRule) -> tuple[str, int]:
    table = ruleset.table("filter")
    assert table is not None
    chain_rules = [item for item in table.rules if item.chain == rule.chain]
    return rule.chain, chain_rules.index(rule)


def kernel_verdict(counted: IptablesRuleset) -> tuple[str, tuple[str, int] | None]:
    """Return the verdict and ``(chain, index)`` of the deciding rule from the counters."""
    table = counted.table("filter")
    assert table is not None
    deciding = [rule for position, rule in enumerate(table.rules)
                if (table.counters(position) or (0, 0))[0] > 0 and rule.target in ("ACCEPT", "DROP", "REJECT")]
    if len(deciding) > 1:
        raise AssertionError(f"more than one terminal rule counted the packet: {[rule.text for rule in deciding]}")
    if deciding:
        return str(deciding[0].target), _position(counted, deciding[0])
    chain = table.chain("INPUT")
    assert chain is not None and chain.packets, "neither a rule nor the INPUT policy counted the packet"
    return str(chain.policy), None


def evaluator_verdict(ruleset: IptablesRuleset, packet: Packet) -> tuple[str, tuple[str, int] | None]:
    verdict = evaluate(ruleset, "INPUT", packet)
    return verdict.verdict, _position(ruleset, verdict.rule) if verdict.rule is not None else None


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    script = tmp_path_factory.mktemp("differential") / "send.py"
    script.write_text(SEND_SCRIPT)
    with nslib.namespaces("dsend", "drecv") as (sender, receiver):
        nslib.sh(f"ip -n {sender.name} link add eth0 type veth peer name eth0 netns {receiver.name}")
        for namespace, address in ((sender, SENDER), (receiver, RECEIVER)):
            namespace.run("sysctl -qw net.ipv6.conf.all.disable_ipv6=1")
            namespace.ip(f"addr add {address}/24 dev eth0")
            namespace.ip("link set eth0 up")
        receiver.ip(f"neigh replace {SENDER} lladdr {_mac(sender)} dev eth0 nud permanent")
        sender.ip(f"neigh replace {RECEIVER} lladdr {_mac(receiver)} dev eth0 nud permanent")
        yield Pair(sender, receiver, script)


def _mac(namespace: nslib.Namespace) -> str:
    return namespace.ip("-br link show eth0").split()[2]


def _packets() -> list[Packet]:
    local = frozenset({RECEIVER})
    common = {"in_interface": "eth0", "local_addresses": local}
    return [
        Packet("udp", SENDER, RECEIVER, sport=0, dport=8472, **common),  # type: ignore[arg-type]
        Packet("udp", SENDER, RECEIVER, sport=0, dport=8285, **common),  # type: ignore[arg-type]
        Packet("udp", SENDER, RECEIVER, sport=0, dport=4789, **common),  # type: ignore[arg-type]
        Packet("tcp", SENDER, RECEIVER, sport=0, dport=22, **common),  # type: ignore[arg-type]
        Packet("tcp", SENDER, RECEIVER, sport=0, dport=179, **common),  # type: ignore[arg-type]
        Packet("tcp", SENDER, RECEIVER, sport=0, dport=10250, **common),  # type: ignore[arg-type]
        Packet("icmp", SENDER, RECEIVER, icmp_type=8, icmp_code=0, **common),  # type: ignore[arg-type]
        Packet("gre", SENDER, RECEIVER, **common),  # type: ignore[arg-type]
        Packet("ipencap", SENDER, RECEIVER, **common),  # type: ignore[arg-type]
    ]


def _filter_table(text: str) -> str | None:
    """Cut the ``*filter`` section out of an iptables-save capture, or None when it has none."""
    lines = text.splitlines()
    if "*filter" not in lines:
        return None
    start = lines.index("*filter")
    end = lines.index("COMMIT", start)
    return "\n".join(lines[start : end + 1]) + "\n"


def _case_rule_sets() -> list[object]:
    found = []
    for root in CASE_ROOTS:
        for path in sorted(root.glob("*/nodes/*/iptables-save.txt")) if root.is_dir() else []:
            table = _filter_table(path.read_text())
            if table is not None:
                found.append(pytest.param(table, id=f"{path.parts[-4]}/{path.parts[-2]}"))
    return found


def _compare(pair: Pair, table: str) -> None:
    ruleset = iptables(table)
    pair.load(table)
    mismatches = []
    compared = 0
    for packet in _packets():
        expected = evaluator_verdict(ruleset, packet)
        if expected[0] == "UNKNOWN":
            continue
        compared += 1
        actual = kernel_verdict(pair.send(packet))
        if actual != expected:
            mismatches.append(f"{packet.describe()}: kernel {actual}, evaluator {expected}")
    assert compared > 0, f"the evaluator decided none of the packets:\n{table}"
    assert not mismatches, "\n".join(mismatches) + "\n" + table


@pytest.mark.parametrize("table", _case_rule_sets())
def test_case_rule_set_matches_kernel(pair: Pair, table: str) -> None:
    _compare(pair, table)


def _random_rule(rng: random.Random, chains: list[str]) -> str:
    parts = []
    protocol = rng.choice([None, None, "tcp", "udp", "icmp", "gre"])
    if protocol is not None and rng.random() < 0.15:
        # A negated protocol allows no protocol-specific match after it.
        parts.append(f"! -p {protocol}")
        protocol = None
    elif protocol is not None:
        parts.append(f"-p {protocol}")
    if rng.random() < 0.3:
        parts.append(("! " if rng.random() < 0.3 else "") + f"-s {rng.choice(['10.99.0.0/24', '10.99.0.1/32', '10.98.0.0/16'])}")
    if rng.random() < 0.2:
        parts.append(("! " if rng.random() < 0.3 else "") + f"-i {rng.choice(['eth0', 'eth+', 'docker0'])}")
    if protocol in ("tcp", "udp") and rng.random() < 0.6:
        if rng.random() < 0.5:
            parts.append(f"-m {protocol} --dport {rng.choice(['8472', '22', '179', '8000:9000', '4789'])}")
        else:
            parts.append(f"-m multiport --dports {rng.choice(['22,179', '8285,8472', '10250:10255,4789'])}")
    if protocol == "icmp" and rng.random() < 0.5:
        parts.append(f"-m icmp --icmp-type {rng.choice(['echo-request', 'echo-reply', '8', 'any'])}")
    if rng.random() < 0.15:
        parts.append(f"-m state --state {rng.choice(['NEW', 'RELATED,ESTABLISHED'])}")
    if rng.random() < 0.1:
        parts.append(f"-m mark --mark {rng.choice(['0x1/0x1', '0x0/0x1'])}")
    if rng.random() < 0.1:
        parts.append('-m comment --comment "random rule"')
    targets = ["ACCEPT", "DROP", "REJECT", "RETURN", "MARK --set-xmark 0x1/0x1", *chains]
    parts.append(f"-j {rng.choice(targets)}")
    return " ".join(parts)


def _random_table(seed: int) -> str:
    rng = random.Random(seed)
    lines = ["*filter", f":INPUT {rng.choice(['ACCEPT', 'DROP'])} [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]",
             ":USER1 - [0:0]", ":USER2 - [0:0]"]
    for _ in range(rng.randint(3, 9)):
        lines.append(f"-A INPUT {_random_rule(rng, ['USER1', 'USER2'])}")
    for _ in range(rng.randint(1, 4)):
        lines.append(f"-A USER1 {_random_rule(rng, ['USER2'])}")
    for _ in range(rng.randint(1, 4)):
        lines.append(f"-A USER2 {_random_rule(rng, [])}")
    return "\n".join(lines) + "\nCOMMIT\n"


@pytest.mark.parametrize("seed", range(12))
def test_random_rule_set_matches_kernel(pair: Pair, seed: int) -> None:
    _compare(pair, _random_table(seed))
