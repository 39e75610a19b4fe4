"""Tests of the iptables-save parser on real and hand-written captures."""

from __future__ import annotations

import re
import shlex

import pytest
from fuzzing import mutations, parse_or_reject
from hypothesis import given, settings
from hypothesis import strategies as st
from samples import sample

from netdoctor.capture import ParseError, iptables
from netdoctor.capture.iptables import parse_iptables_save


def test_counters_and_chains():
    ruleset = parse_iptables_save(sample("iptables-save-counters-nft.txt"), "iptables-save -c")
    table = ruleset.table("filter")
    assert ruleset.family == 4
    assert table is not None
    assert table.chain("FORWARD").policy == "DROP"
    assert table.chain("FORWARD").packets == 17
    assert table.chain("FORWARD").bytes == 1428
    assert table.chain("FLANNEL-FWD").policy is None
    assert len(table.rules_of("INPUT")) == 7


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[18446744073709551616:5] -A INPUT -j ACCEPT", (r"counter 18446744073709551616 is out of range \(0 to "
                                                         r"18446744073709551615\); iptables counters are 64-bit")),
        ("[1:" + "9" * 5000 + "] -A INPUT -j ACCEPT", r"counter of 5,000 digits is out of range"),
        ("-A INPUT -c 1 18446744073709551616 -j ACCEPT", r"counter 18446744073709551616 is out of range"),
        ("-A INPUT -c 5 " + "9" * 5000 + " -j ACCEPT", r"counter of 5,000 digits is out of range"),
        ("[\u0661:0] -A INPUT -j ACCEPT", r"invalid counters"),
    ],
)
def test_counter_out_of_range(line: str, message: str) -> None:
    text = f"*filter\n:INPUT ACCEPT [0:0]\n{line}\nCOMMIT\n"

    with pytest.raises(ParseError, match=message) as raised:
        parse_iptables_save(text, "iptables-save.txt")

    assert raised.value.line == 3


def test_rule_line_and_text():
    table = parse_iptables_save(sample("iptables-save-counters-nft.txt"), "x").table("filter")
    first = table.rules[0]
    assert first.line == 8
    assert first.text == "INPUT -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT"
    assert table.counters(0) == (0, 0)
    assert table.rules[1].text.startswith("INPUT -p icmp")
    assert table.counters(1) == (12, 1008)


def test_negated_wildcard_interface_and_quoted_comment():
    rule = (
        parse_iptables_save(sample("iptables-save-counters-nft.txt"), "x").table("filter").rules[3]
    )
    assert rule.in_interface == "cali+"
    assert rule.in_interface_negated is True
    assert rule.protocol == "udp"
    modules = {match.module: match for match in rule.matches}
    assert modules["udp"].options[0].values == ("8472",)
    assert modules["comment"].options[0].values == ('flannel "vxlan" overlay',)
    assert rule.target == "ACCEPT"


def test_multiport_state_fragment_reject():
    rules = (
        parse_iptables_save(sample("iptables-save-counters-nft.txt"), "x")
        .table("filter")
        .rules_of("INPUT")
    )
    multiport = rules[4]
    assert multiport.matches[0].module == "multiport"
    assert multiport.matches[0].options[0].name == "--dports"
    assert multiport.matches[0].options[0].values == ("179,6443,10250",)
    assert multiport.matches[1].options[0].values == ("NEW",)
    assert rules[5].fragment is True
    reject = rules[6]
    assert reject.target == "REJECT"
    assert reject.target_options[0].name == "--reject-with"
    assert reject.target_options[0].values == ("icmp-host-prohibited",)


def test_goto_negated_destination_and_negated_option():
    table = parse_iptables_save(sample("iptables-save-counters-nft.txt"), "x").table("filter")
    goto = table.rules_of("FLANNEL-FWD")[1]
    assert goto.goto is True
    assert goto.target == "KUBE-FIREWALL"
    assert goto.destination == "10.244.0.0/16"
    assert goto.destination_negated is True
    assert goto.out_interface == "eth+"
    conntrack = table.rules_of("KUBE-FIREWALL")[1]
    assert conntrack.source_negated is True
    assert conntrack.matches[0].options[0].negated is True
    assert conntrack.matches[0].options[0].values == ("RELATED,ESTABLISHED,DNAT",)


def test_physdev_set_mark_matches():
    table = parse_iptables_save(sample("iptables-save-counters-nft.txt"), "x").table("filter")
    forward = table.rules_of("FORWARD")
    assert forward[0].matches[0].module == "physdev"
    assert forward[0].matches[0].options[0].name == "--physdev-is-bridged"
    assert forward[0].matches[0].options[0].values == ()
    assert forward[2].matches[0].options[0].values == ("cali40all-ipam-pools", "src")
    mark = table.rules_of("KUBE-FIREWALL")[0]
    assert mark.matches[0].options[0].values == ("0x8000/0x8000",)


def test_real_kube_capture():
    ruleset = parse_iptables_save(sample("iptables-save-kube-centos.txt"), "iptables-save.txt")
    assert [table.name for table in ruleset.tables] == ["nat", "filter"]
    rejects = [rule for rule in ruleset.table("filter").rules if rule.target == "REJECT"]
    assert rejects
    assert all(rule.target_options for rule in rejects)


def test_ip6tables_family():
    ruleset = parse_iptables_save(sample("ip6tables-save.txt"), "ip6tables-save", family=6)
    assert ruleset.family == 6
    rule = ruleset.table("filter").rules[0]
    assert rule.source == "2001:db8::/32"
    assert rule.matches[0].module == "icmp6"


def test_implicit_protocol_match():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp --dport 22 -j ACCEPT\nCOMMIT\n"
    rule = parse_iptables_save(text, "x").table("filter").rules[0]
    assert rule.matches[0].module == "tcp"
    assert rule.matches[0].options[0].values == ("22",)


def test_old_style_negation_after_option():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p tcp -m tcp --dport ! 22 -j DROP\nCOMMIT\n"
    option = parse_iptables_save(text, "x").table("filter").rules[0].matches[0].options[0]
    assert option.negated is True
    assert option.values == ("22",)


def test_empty_output_is_empty_ruleset():
    assert parse_iptables_save("", "x").tables == ()


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j ACCEPT\n", 1, "not closed by COMMIT"),
        ("-A INPUT -j ACCEPT\n", 1, "outside a table"),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A FORWARD -j ACCEPT\nCOMMIT\n", 3, "does not declare"),
        (
            '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment "open -j ACCEPT\nCOMMIT\n',
            3,
            "quotation",
        ),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j\nCOMMIT\n", 3, "has no value"),
        ("*filter\n:INPUT\nCOMMIT\n", 2, "invalid chain line"),
        ("*filter\n:INPUT ACCEPT [x:0]\nCOMMIT\n", 2, "invalid counters"),
        ("*filter\n:INPUT ACCEPT [0:0]\n[1:a] -A INPUT -j ACCEPT\nCOMMIT\n", 3, "invalid counters"),
        ("*filter\n:INPUT ACCEPT [0:0]\n-I INPUT -j ACCEPT\nCOMMIT\n", 3, "unknown line"),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT --dport 22 -j ACCEPT\nCOMMIT\n", 3, "before any"),
        ("*filter\n:INPUT ACCEPT [0:0]\n-A INPUT ACCEPT\nCOMMIT\n", 3, "unexpected word"),
        ("*filter\n*nat\n", 2, "before table"),
        ("COMMIT\n", 1, "without"),
    ],
)
def test_malformed_input_names_line(text, line, words):
    with pytest.raises(ParseError) as raised:
        parse_iptables_save(text, "capture.txt")
    assert raised.value.line == line
    assert words in raised.value.message
    assert raised.value.source == "capture.txt"


def test_truncated_real_capture():
    text = sample("iptables-save-kube-centos.txt")
    cut = text[: len(text) // 2]
    with pytest.raises(ParseError) as raised:
        parse_iptables_save(cut, "cut.txt")
    assert raised.value.line is not None


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_fuzz_random_text(text):
    parse_or_reject(parse_iptables_save, text)


@settings(max_examples=300, deadline=None)
@given(mutations(sample("iptables-save-counters-nft.txt")))
def test_fuzz_mutated_sample(text):
    parse_or_reject(parse_iptables_save, text)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=" \t\r\n\x0b\x1c\"'\\-!abé", max_size=24))
def test_rule_words_split_as_shlex_splits(text):
    # ASCII rules without single quotes or backslashes are split without shlex, into the same words.
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        expected: object = list(lexer)
    except ValueError as error:
        expected = f"cannot split the rule into words: {error}"
    try:
        words: object = iptables._tokenize(text, "rules.txt", 1)
    except ParseError as error:
        words = error.message
    assert words == expected


def test_many_chains_parse_by_name():
    chains = [f"KUBE-SVC-{number:04d}" for number in range(300)]
    text = "\n".join(
        ["*nat"] + [f":{chain} - [0:0]" for chain in chains]
        + [f'-A {chain} -m comment --comment "svc {chain}" -j KUBE-MARK-MASQ' for chain in reversed(chains)]
        + ["COMMIT"]
    )
    table = parse_iptables_save(text, "iptables-save").table("nat")
    assert table is not None
    assert [rule.chain for rule in table.rules] == list(reversed(chains))
    assert table.rules[0].matches[0].options[0].values == (f"svc {chains[-1]}",)


@pytest.mark.parametrize(("rule", "message"), [
    ("-A INPUT -s 10.244/16 -j DROP", "invalid address '10.244/16' of -s: invalid IP address '10.244'"),
    ("-A INPUT ! -d 010.96.0.1/32 -j DROP", "invalid address '010.96.0.1/32' of -d"),
    ("-A INPUT -s 10.0.0.0/255.0.255.300 -j DROP", "invalid address '10.0.0.0/255.0.255.300' of -s"),
])
def test_invalid_rule_address_rejected(rule: str, message: str) -> None:
    with pytest.raises(ParseError, match=re.escape(message)) as raised:
        parse_iptables_save(f"*filter\n:INPUT ACCEPT [0:0]\n{rule}\nCOMMIT\n", "iptables-save.txt")

    assert raised.value.line == 3


def test_superscript_counter_rejected():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -c ² 5 -j ACCEPT\nCOMMIT\n"
    with pytest.raises(ParseError, match="'-c' must be followed by two counters") as raised:
        parse_iptables_save(text, "iptables-save")
    assert raised.value.line == 3


SHARED_RULES = "*nat\n:PREROUTING ACCEPT [0:0]\n:KUBE-SERVICES - [0:0]\n-A PREROUTING -j KUBE-SERVICES\n" \
    "-A KUBE-SERVICES -d 10.96.0.1/32 -p tcp -m tcp --dport 443 -j RETURN\nCOMMIT\n"


def test_equal_lines_share_rule_objects():
    iptables.forget_parsed_rules()
    first = parse_iptables_save(SHARED_RULES, "node-a").table("nat").rules
    second = parse_iptables_save(SHARED_RULES, "node-b").table("nat").rules

    assert first == second
    assert all(one is other for one, other in zip(first, second, strict=True))


def test_counted_rules_share_objects():
    iptables.forget_parsed_rules()
    counted = SHARED_RULES.replace("-A PREROUTING", "[5:300] -A PREROUTING").replace("-A KUBE", "[0:0] -A KUBE")
    first = parse_iptables_save(counted, "node-a").table("nat")
    second = parse_iptables_save(counted.replace("[5:300]", "[7:420]"), "node-b").table("nat")

    assert all(one is other for one, other in zip(first.rules, second.rules, strict=True))
    assert (first.rule_packets, first.rule_bytes) == ((5, 0), (300, 0))
    assert (second.counters(0), second.counters(1)) == ((7, 420), (0, 0))


def test_counters_option_inside_rule():
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -p icmp -c 4 336 -j ACCEPT\n-A INPUT -j DROP\nCOMMIT\n"

    table = parse_iptables_save(text, "iptables-save").table("filter")

    assert table.counters(0) == (4, 336)
    assert table.counters(1) is None
    assert table.rule_packets == (4, None)
    # Evidence quotes the text, and the fixers look for it in 'iptables -S', which prints no counters.
    assert table.rules[0].text == "INPUT -p icmp -j ACCEPT"


def test_counters_option_shares_rules():
    iptables.forget_parsed_rules()
    text = "*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -j REJECT --reject-with icmp-host-prohibited -c 5 300\nCOMMIT\n"
    first = parse_iptables_save(text, "node-a").table("filter")
    second = parse_iptables_save(text.replace("-c 5 300", "--set-counters 9 540"), "node-b").table("filter")

    assert first.rules[0] is second.rules[0]
    assert first.rules[0].text == "INPUT -j REJECT --reject-with icmp-host-prohibited"
    assert (first.counters(0), second.counters(0)) == ((5, 300), (9, 540))


def test_counters_option_in_comment_kept():
    text = '*filter\n:INPUT ACCEPT [0:0]\n-A INPUT -m comment --comment "a -c 1 2 b" -j ACCEPT\nCOMMIT\n'

    table = parse_iptables_save(text, "iptables-save").table("filter")

    assert table.rules[0].matches[0].options[0].values == ("a -c 1 2 b",)
    assert table.counters(0) is None


def test_capture_without_counters_has_none():
    table = parse_iptables_save(SHARED_RULES, "node-a").table("nat")

    assert (table.rule_packets, table.rule_bytes) == ((), ())
    assert table.counters(0) is None


def test_shifted_line_parses_anew():
    iptables.forget_parsed_rules()
    first = parse_iptables_save(SHARED_RULES, "node-a").table("nat").rules
    shifted = parse_iptables_save("# Generated by iptables-save\n" + SHARED_RULES, "node-b").table("nat").rules

    assert [rule.line for rule in shifted] == [rule.line + 1 for rule in first]


def test_cached_rule_needs_its_chain_declared():
    parse_iptables_save(SHARED_RULES, "node-a")
    undeclared = SHARED_RULES.replace(":KUBE-SERVICES - [0:0]\n", "# no chain\n")

    with pytest.raises(ParseError, match=r"node-b.*line 5.*'KUBE-SERVICES', which the table does not declare"):
        parse_iptables_save(undeclared, "node-b")


def test_invalid_line_fails_on_each_parse():
    broken = SHARED_RULES.replace("--dport 443", '--dport 443 -m comment --comment "open')
    for source in ("node-a", "node-b"):
        with pytest.raises(ParseError, match=source):
            parse_iptables_save(broken, source)
