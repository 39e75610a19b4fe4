"""The iptables evaluator behind the filtering checks."""

from __future__ import annotations

import pytest
from test_checks_support import iptables

from netdoctor.firewall import CompiledRuleset, Packet, evaluate
from netdoctor.model.record import replace

RULES = """
*filter
:INPUT ACCEPT [0:0]
:FORWARD DROP [0:0]
:OUTPUT ACCEPT [0:0]
:CHECKS - [0:0]
:SKIP - [0:0]
-A INPUT -m state --state RELATED,ESTABLISHED -j ACCEPT
-A INPUT -p icmp -m icmp --icmp-type 8 -j DROP
-A INPUT -i lo -j ACCEPT
-A INPUT -p tcp -m multiport --dports 22,6443,10250:10255 -j ACCEPT
-A INPUT -s 192.0.2.0/24 -p udp -m udp --dport 8472 -j ACCEPT
-A INPUT -p udp -m comment --comment "drop other udp" -j DROP
-A INPUT -j CHECKS
-A INPUT -j REJECT --reject-with icmp-host-prohibited
-A CHECKS ! -s 203.0.113.0/24 -j RETURN
-A CHECKS -p tcp -j ACCEPT
-A FORWARD -i br+ ! -o br+ -j SKIP
-A FORWARD -d 198.51.100.0/24 -j ACCEPT
-A FORWARD -m set --match-set ALLOWED src -j ACCEPT
-A SKIP -j LOG
COMMIT
"""


@pytest.fixture(scope="module")
def ruleset():  # type: ignore[no-untyped-def]
    return iptables(RULES)


@pytest.mark.parametrize(
    ("packet", "verdict", "rule_line"),
    [
        (Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=8, icmp_code=0), "DROP", 8),
        (Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=0, icmp_code=0), "REJECT", 14),
        (Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=3, icmp_code=4, ctstate="RELATED"), "ACCEPT", 7),
        (Packet("tcp", "192.0.2.12", "192.0.2.11", "eth0", dport=10252), "ACCEPT", 10),
        (Packet("tcp", "192.0.2.12", "192.0.2.11", "eth0", dport=80), "REJECT", 14),
        (Packet("tcp", "203.0.113.9", "192.0.2.11", "eth0", dport=80), "ACCEPT", 16),
        (Packet("udp", "192.0.2.12", "192.0.2.11", "eth0", dport=8472), "ACCEPT", 11),
        (Packet("udp", "203.0.113.9", "192.0.2.11", "eth0", dport=8472), "DROP", 12),
        (Packet("tcp", "127.0.0.1", "127.0.0.1", "lo", dport=80), "ACCEPT", 9),
    ],
)
def test_input_verdicts(ruleset, packet: Packet, verdict: str, rule_line: int) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(ruleset, "INPUT", packet)

    assert result.verdict == verdict
    assert result.rule is not None
    assert result.rule.line == rule_line


def test_forward_policy_after_user_chain(ruleset) -> None:  # type: ignore[no-untyped-def]
    packet = Packet("tcp", "198.51.100.2", "203.0.113.2", "br0", "eth0", dport=80)

    result = evaluate(ruleset, "FORWARD", packet)

    assert result.verdict == "UNKNOWN"
    assert result.rule is not None
    assert "-m set" in result.reason


def test_forward_accept_before_unknown_match(ruleset) -> None:  # type: ignore[no-untyped-def]
    result = evaluate(ruleset, "FORWARD", Packet("tcp", "203.0.113.2", "198.51.100.2", "eth0", "br0", dport=80))

    assert result.verdict == "ACCEPT"


@pytest.mark.parametrize(("negated", "verdicts"), [(False, ["DROP", "ACCEPT"]), (True, ["ACCEPT", "DROP"])])
def test_dotted_mask_matches_masked_bits(negated: bool, verdicts: list[str]) -> None:
    # iptables-save writes a mask that is no prefix length as an address: the third octet is not tested here.
    ruleset = iptables(f"*filter\n:INPUT ACCEPT [0:0]\n-A INPUT {'! ' if negated else ''}-s 10.0.1.0/255.0.255.0 "
                       "-j DROP\nCOMMIT\n")
    packets = [Packet("udp", source, "10.0.0.1", sport=1, dport=8472) for source in ("10.7.1.9", "10.7.2.9")]

    assert [evaluate(ruleset, "INPUT", packet).verdict for packet in packets] == verdicts


def test_policy_decides_when_no_rule_matches() -> None:
    ruleset = iptables("*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n")

    result = evaluate(ruleset, "FORWARD", Packet("tcp", "198.51.100.2", "198.51.100.70", "docker0", "flannel.1", dport=80))

    assert (result.verdict, result.rule, result.reason) == ("DROP", None, "policy DROP")


@pytest.mark.parametrize(("target", "verdict"), [
    ("LOG --log-prefix \"in: \"", "REJECT"),
    ("NFLOG --nflog-group 5", "REJECT"),
    ("", "REJECT"),
    # CONNMARK can restore a mark that later rules test, so its undecidable match still decides the walk.
    ("CONNMARK --restore-mark", "UNKNOWN"),
])
def test_logging_rule_with_unknown_match(target: str, verdict: str) -> None:
    jump = f" -j {target}" if target else ""
    ruleset = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        f"-A INPUT -m limit --limit 5/min{jump}\n-A INPUT -j REJECT\nCOMMIT\n"
    )
    compiled = CompiledRuleset(ruleset)

    assert evaluate(ruleset, "INPUT", Packet("udp", "192.0.2.1", "192.0.2.2", "eth0", dport=8472)).verdict == verdict
    # Neither rule reads a packet field, so the chain gives every packet one verdict.
    fixed = compiled.fixed_verdict("INPUT")
    assert fixed is not None
    assert fixed.verdict == verdict


def test_goto_does_not_return_to_caller() -> None:
    ruleset = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:NEXT - [0:0]\n"
        "-A INPUT -p tcp -g NEXT\n-A INPUT -j DROP\n-A NEXT -p udp -j DROP\nCOMMIT\n"
    )

    assert evaluate(ruleset, "INPUT", Packet("tcp", "192.0.2.1", "192.0.2.2", "eth0", dport=1)).verdict == "ACCEPT"
    assert evaluate(ruleset, "INPUT", Packet("udp", "192.0.2.1", "192.0.2.2", "eth0", dport=1)).verdict == "DROP"


def test_goto_loop_gives_unknown() -> None:
    ruleset = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:A - [0:0]\n:B - [0:0]\n"
        "-A INPUT -g A\n-A A -g B\n-A B -g A\nCOMMIT\n"
    )

    result = evaluate(ruleset, "INPUT", Packet("tcp", "192.0.2.1", "192.0.2.2", "eth0", dport=1))

    assert result.verdict == "UNKNOWN"
    assert "the chains loop" in result.reason


def test_addrtype_local() -> None:
    ruleset = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -m addrtype --dst-type LOCAL -p icmp -j REJECT\nCOMMIT\n"
    )
    local = frozenset({"192.0.2.2"})

    to_node = Packet("icmp", "192.0.2.1", "192.0.2.2", "eth0", icmp_type=8, icmp_code=0, local_addresses=local)
    elsewhere = Packet("icmp", "192.0.2.1", "192.0.2.3", "eth0", icmp_type=8, icmp_code=0, local_addresses=local)

    assert evaluate(ruleset, "INPUT", to_node).verdict == "REJECT"
    assert evaluate(ruleset, "INPUT", elsewhere).verdict == "ACCEPT"


def test_missing_table_accepts() -> None:
    ruleset = iptables("*nat\n:PREROUTING ACCEPT [0:0]\nCOMMIT\n")

    result = evaluate(ruleset, "INPUT", Packet("tcp", "192.0.2.1", "192.0.2.2"))

    assert (result.verdict, result.reason) == ("ACCEPT", "no filter table")


def test_compiled_ruleset_walks_keep_no_mark() -> None:
    ruleset = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -p udp -j MARK --set-xmark 0x1/0x1\n-A INPUT -m mark --mark 0x1/0x1 -j DROP\nCOMMIT\n"
    )
    compiled = CompiledRuleset(ruleset)
    tcp = Packet("tcp", "192.0.2.1", "192.0.2.2", "eth0", dport=80)
    udp = Packet("udp", "192.0.2.1", "192.0.2.2", "eth0", dport=80)

    first = compiled.evaluate("INPUT", tcp)
    marked = compiled.evaluate("INPUT", udp)
    after = compiled.evaluate("INPUT", tcp)

    assert first.verdict == "ACCEPT"
    assert marked.verdict == "DROP"
    assert marked.rule is not None
    assert marked.rule.line == 6
    assert after == first
    assert udp.mark == 0


def test_compiled_ruleset_matches_evaluate(ruleset) -> None:  # type: ignore[no-untyped-def]
    compiled = CompiledRuleset(ruleset)
    packets = [
        Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=8, icmp_code=0),
        Packet("tcp", "203.0.113.9", "192.0.2.11", "eth0", dport=80),
        Packet("udp", "192.0.2.12", "192.0.2.11", "eth0", dport=8472),
        Packet("tcp", "198.51.100.2", "203.0.113.2", "br0", "eth0", dport=80),
    ]

    for packet in packets * 2:
        for chain in ("INPUT", "FORWARD", "OUTPUT"):
            assert compiled.evaluate(chain, packet) == evaluate(ruleset, chain, packet), (chain, packet.describe())
    assert compiled.has_table("filter")
    assert not compiled.has_table("nat")


def test_reads_any_follows_jumps(ruleset) -> None:  # type: ignore[no-untyped-def]
    compiled = CompiledRuleset(ruleset)

    # INPUT tests -s only in the CHECKS chain it jumps to.
    assert compiled.reads_any("INPUT", frozenset({"src"}))
    assert not compiled.reads_any("INPUT", frozenset({"out_interface", "mark"}))
    assert compiled.reads_any("FORWARD", frozenset({"dst"}))
    # The -m set rule is undecidable for every packet, so it reads no field.
    assert not compiled.reads_any("FORWARD", frozenset({"src", "protocol", "ctstate"}))
    assert not compiled.reads_any("SKIP", frozenset({"src", "dst", "in_interface"}))
    assert not compiled.reads_any("INPUT", frozenset({"src"}), table="nat")


def test_unread_fields_keep_the_verdict(ruleset) -> None:  # type: ignore[no-untyped-def]
    compiled = CompiledRuleset(ruleset)
    packets = [
        Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=8, icmp_code=0),
        Packet("tcp", "203.0.113.9", "192.0.2.11", "eth0", "br1", dport=80),
        Packet("udp", "192.0.2.12", "198.51.100.7", "br0", "eth0", sport=53, dport=8472),
        Packet("tcp", "198.51.100.2", "203.0.113.2", "br0", "eth0", dport=80, ctstate="ESTABLISHED"),
    ]
    changes = {
        "protocol": "gre", "src": "203.0.113.77", "dst": "198.51.100.200", "in_interface": "lo",
        "out_interface": "br7", "sport": 1, "dport": 22, "icmp_type": 3, "icmp_code": 4, "ctstate": "RELATED",
        "mark": 0x4000,
    }

    for chain in ("INPUT", "FORWARD", "OUTPUT"):
        for name, value in changes.items():
            if compiled.reads_any(chain, frozenset({name})):
                continue
            for packet in packets:
                changed = replace(packet, **{name: value})
                assert compiled.evaluate(chain, changed) == compiled.evaluate(chain, packet), (chain, name)


def test_fixed_verdict_without_packet_tests() -> None:
    ruleset = iptables(
        "*filter\n:INPUT DROP [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:AUDIT - [0:0]\n"
        "-A INPUT -m comment --comment \"count it\" -j AUDIT\n-A AUDIT -j LOG\n"
        "-A FORWARD -m conntrack --ctstate INVALID -j DROP\nCOMMIT\n"
    )
    compiled = CompiledRuleset(ruleset)

    verdict = compiled.fixed_verdict("INPUT")

    assert verdict is not None
    assert (verdict.verdict, verdict.rule, verdict.reason) == ("DROP", None, "policy DROP")
    assert compiled.fixed_verdict("FORWARD") is None
    fixed_output = compiled.fixed_verdict("OUTPUT")
    assert fixed_output is not None
    assert fixed_output.verdict == "ACCEPT"


def test_tested_prefixes_per_field(ruleset) -> None:  # type: ignore[no-untyped-def]
    compiled = CompiledRuleset(ruleset)
    local = iptables(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n"
        "-A INPUT -d 192.0.2.0/24 -j ACCEPT\n-A INPUT -m addrtype --dst-type LOCAL -j DROP\nCOMMIT\n"
    )

    assert compiled.tested_prefixes("INPUT", "src") == {"192.0.2.0/24", "203.0.113.0/24"}
    assert compiled.tested_prefixes("INPUT", "dst") == set()
    assert compiled.tested_prefixes("FORWARD", "dst") == {"198.51.100.0/24"}
    # -m addrtype compares the destination with the node's addresses, which no prefix describes.
    assert CompiledRuleset(local).tested_prefixes("INPUT", "dst") is None


def test_superscript_icmp_type_is_unknown_name() -> None:
    # str.isdigit accepts '²', which int() rejects: it is an ICMP type name that the walk does not know.
    ruleset = iptables("*filter\n:INPUT DROP [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n"
                       "-A INPUT -p icmp -m icmp --icmp-type ² -j ACCEPT\nCOMMIT\n")

    result = evaluate(ruleset, "INPUT", Packet("icmp", "192.0.2.12", "192.0.2.11", "eth0", icmp_type=8, icmp_code=0))

    assert result.verdict == "UNKNOWN"
    assert result.rule is not None
    assert result.rule.line == 5


MARKS = """
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:OUTPUT ACCEPT [0:0]
:MARKING - [0:0]
-A FORWARD -p tcp -m tcp --dport 22 -j DROP
-A FORWARD -j MARKING
-A FORWARD -m mark --mark 0x4000/0x4000 -j REJECT
-A MARKING -s 192.0.2.0/24 -j MARK --set-xmark 0x4000/0x4000
COMMIT
"""


def test_verdicts_kept_by_fields_read() -> None:
    compiled = CompiledRuleset(iptables(MARKS))
    ssh = compiled.evaluate("FORWARD", Packet("tcp", "203.0.113.9", "198.51.100.7", "eth0", dport=22))
    # The rules read no local addresses and no output interface, so this packet takes the kept verdict.
    other = compiled.evaluate("FORWARD", Packet("tcp", "203.0.113.9", "198.51.100.7", "eth0", "eth1", dport=22,
                                                local_addresses=frozenset({"198.51.100.7"})))

    assert ssh.verdict == "DROP"
    assert other is ssh
    # One walk: the second packet's verdict was looked up by the fields the rules read.
    table = compiled._table("filter")
    assert table is not None
    assert len(table._verdicts) == 1


def test_kept_verdicts_follow_read_fields() -> None:
    compiled = CompiledRuleset(iptables(MARKS))
    cases = [
        ("192.0.2.5", 0, "REJECT"),  # marked by MARKING, so the mark rule rejects it
        ("203.0.113.9", 0, "ACCEPT"),
        ("203.0.113.9", 0x4000, "REJECT"),  # marked before the walk
        ("192.0.2.5", 0, "REJECT"),  # the kept verdict of the first packet
    ]

    for source, mark, verdict in cases:
        packet = Packet("tcp", source, "198.51.100.7", "eth0", dport=80, mark=mark)
        assert compiled.evaluate("FORWARD", packet).verdict == verdict, (source, mark)
        assert evaluate(iptables(MARKS), "FORWARD", packet).verdict == verdict, (source, mark)


def test_chain_named_like_log_target() -> None:
    # With a declared chain LOG, '-j LOG' jumps there, so its rule's source test decides the walk.
    compiled = CompiledRuleset(iptables("""
*filter
:INPUT ACCEPT [0:0]
:LOG - [0:0]
-A INPUT -s 10.0.0.0/8 -j LOG
-A LOG -j DROP
COMMIT
"""))

    inside = compiled.evaluate("INPUT", Packet("tcp", "10.1.1.1", "192.0.2.9"))
    outside = compiled.evaluate("INPUT", Packet("tcp", "192.0.2.1", "192.0.2.9"))

    assert inside.verdict == "DROP"
    assert outside.verdict == "ACCEPT"
    assert compiled.fixed_verdict("INPUT") is None
    assert compiled.tested_prefixes("INPUT", "src") == {"10.0.0.0/8"}


def test_empty_target_unknown_in_any_order() -> None:
    rules = iptables("""
*filter
:INPUT DROP [0:0]
-A INPUT -p icmp -j ""
-A INPUT -p udp -j ACCEPT
COMMIT
""")
    tcp = Packet("tcp", "192.0.2.1", "192.0.2.9", dport=80)
    icmp = Packet("icmp", "192.0.2.1", "192.0.2.9", icmp_type=8, icmp_code=0)
    compiled = CompiledRuleset(rules)

    # The empty target reads the protocol, so the two packets do not share a kept verdict.
    assert compiled.evaluate("INPUT", tcp).verdict == "DROP"
    unknown = compiled.evaluate("INPUT", icmp)
    assert unknown.verdict == "UNKNOWN"
    assert unknown.reason == "unknown target ''"
    assert evaluate(rules, "INPUT", icmp).verdict == "UNKNOWN"
    assert compiled.fixed_verdict("INPUT") is None
