"""Parse ``iptables-save`` and ``ip6tables-save`` output, with or without ``-c`` counters.

The format is the one ``iptables-restore`` reads: ``*table`` opens a table,
``:CHAIN POLICY [packets:bytes]`` declares a chain, ``[packets:bytes] -A CHAIN ...``
appends a rule and ``COMMIT`` closes the table. Lines starting with ``#`` are
comments, including the nft variant's ``# Warning: iptables-legacy tables present``.
"""

from __future__ import annotations

import logging
import re
import shlex
from typing import Any

from netdoctor.capture import ParseError
from netdoctor.model.addr import AddressError, check_rule_address, quoted_text
from netdoctor.model.node import (
    IptablesChain,
    IptablesMatch,
    IptablesOption,
    IptablesRule,
    IptablesRuleset,
    IptablesTable,
)
from netdoctor.model.rule_pool import MAX_COUNTER
from netdoctor.model.table import decimal_value, number_text

logger = logging.getLogger(__name__)

_COUNTERS = re.compile(r"^\[([0-9]+):([0-9]+)\]$")
_CHAIN_LINE = re.compile(r"^:(\S+)\s+(\S+)(?:\s+(\[\S*\]))?\s*$")
_NEGATIVE_NUMBER = re.compile(r"^-\d")

#: Long and short spellings of the options that test packet header fields.
_FIELD_OPTIONS = {
    "-p": "protocol",
    "--protocol": "protocol",
    "-s": "source",
    "--source": "source",
    "--src": "source",
    "-d": "destination",
    "--destination": "destination",
    "--dst": "destination",
    "-i": "in_interface",
    "--in-interface": "in_interface",
    "-o": "out_interface",
    "--out-interface": "out_interface",
}


def parse_iptables_save(text: str, source: str, family: int = 4) -> IptablesRuleset:
    """Parse the whole output of ``iptables-save`` (family 4) or ``ip6tables-save`` (family 6).

    Raise :class:`ParseError` naming the line for anything ``iptables-restore``
    would reject: a rule outside a table, a rule for an undeclared chain, an
    unknown line, unbalanced quotes or a table that is not closed by ``COMMIT``.
    """
    if family not in (4, 6):
        raise ParseError(source, None, f"invalid address family {family}: expected 4 or 6")

    tables: list[IptablesTable] = []
    table_name: str | None = None
    table_line = 0
    chains: list[IptablesChain] = []
    declared: set[str] = set()
    rules: list[IptablesRule] = []
    packets: list[int | None] = []
    byte_counts: list[int | None] = []

    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue

        if line.startswith("*"):
            if table_name is not None:
                raise ParseError(
                    source,
                    number,
                    f"table {line[1:]!r} starts before table {table_name!r} is committed",
                )
            table_name = line[1:].strip()
            if not table_name or " " in table_name:
                raise ParseError(
                    source, number, f"invalid table header {line!r}: expected '*TABLE'"
                )
            table_line = number
            chains, declared, rules, packets, byte_counts = [], set(), [], [], []
            continue

        if line == "COMMIT":
            if table_name is None:
                raise ParseError(source, number, "COMMIT without a '*TABLE' line before it")
            counted = any(value is not None for value in packets)
            tables.append(IptablesTable(table_name, tuple(chains), tuple(rules),
                                        tuple(packets) if counted else (), tuple(byte_counts) if counted else ()))
            table_name = None
            continue

        if table_name is None:
            raise ParseError(
                source, number, f"{line[:40]!r} appears outside a table: expected '*TABLE' first"
            )

        if line.startswith(":"):
            chains.append(_parse_chain(line, source, number))
            declared.add(chains[-1].name)
            continue

        rule, rule_packets, rule_bytes = _parse_rule_line(line, source, number, declared)
        rules.append(rule)
        packets.append(rule_packets)
        byte_counts.append(rule_bytes)

    if table_name is not None:
        raise ParseError(
            source,
            table_line,
            f"table {table_name!r} is not closed by COMMIT: the output looks truncated",
        )
    return IptablesRuleset(family=family, tables=tuple(tables))


def _parse_chain(line: str, source: str, number: int) -> IptablesChain:
    match = _CHAIN_LINE.match(line)
    if match is None:
        raise ParseError(
            source, number, f"invalid chain line {line!r}: expected ':CHAIN POLICY [packets:bytes]'"
        )
    name, policy, counters = match.groups()
    packets, byte_count = _parse_counters(counters, source, number) if counters else (None, None)
    return IptablesChain(
        name=name, policy=None if policy == "-" else policy, packets=packets, bytes=byte_count
    )


#: A counters option inside a rule: ``-c PACKETS BYTES`` or ``--set-counters PACKETS BYTES``.
_INNER_COUNTERS = re.compile(r" (?:-c|--set-counters) +([0-9]+) +([0-9]+)(?= |$)")


def _parse_counters(text: str, source: str, number: int) -> tuple[int, int]:
    match = _COUNTERS.match(text)
    if match is None:
        raise ParseError(source, number, f"invalid counters {text!r}: expected '[packets:bytes]'")
    return _counter_values(match.groups(), source, number)


def _counter_values(groups: tuple[str | Any, ...], source: str, number: int) -> tuple[int, int]:
    """Return the packets and bytes of two strings of ASCII digits, raising for values out of range."""
    for digits in groups:
        # 2**64 has 20 digits, and int() rejects texts of over 4,300 digits with its own message.
        if len(digits) > 20:
            raise ParseError(source, number, f"counter of {len(digits):,} digits is out of range (0 to "
                                             f"{MAX_COUNTER}); iptables counters are 64-bit, so the capture is damaged")
    packets, byte_count = int(groups[0]), int(groups[1])
    _check_counter(packets, source, number)
    _check_counter(byte_count, source, number)
    return packets, byte_count


def _check_counter(value: int, source: str, number: int) -> None:
    """Raise for a counter that no kernel writes: iptables keeps counters as 64-bit unsigned integers."""
    if value > MAX_COUNTER:
        raise ParseError(source, number, f"counter {number_text(value)} is out of range (0 to {MAX_COUNTER}); "
                                         "iptables counters are 64-bit, so the capture is damaged")


#: Characters that rule out splitting a rule with ``str.split``: a single quote, a backslash, and the ASCII
#: characters that ``str.split`` takes for whitespace but a shell does not.
_NOT_PLAIN = re.compile(r"['\\\x0b\x0c\x1c-\x1f]")
_SHELL_WHITESPACE = " \t\r\n"


def _tokenize(text: str, source: str, number: int) -> list[str]:
    """Split a rule into words as a POSIX shell would, without expanding anything.

    A rule of ASCII text with double quotes only, as iptables-save writes
    comments, is split with ``str.split``: 2.4 µs against 45 µs with ``shlex``
    for a kube-proxy rule with a comment. ``shlex`` splits the others.
    """
    if text.isascii() and _NOT_PLAIN.search(text) is None:
        parts = text.split('"')
        if len(parts) % 2:
            return _plain_words(parts)
    lexer = shlex.shlex(text, posix=True)
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return list(lexer)
    except ValueError as error:
        raise ParseError(source, number, f"cannot split the rule into words: {error}") from None


def _plain_words(parts: list[str]) -> list[str]:
    """Return the words of a rule split at its double quotes: the odd parts are quoted, the even parts not."""
    words: list[str] = []
    # Whether the last word goes on: no whitespace outside quotes followed it yet.
    open_word = False
    for position, part in enumerate(parts):
        if position % 2:
            if open_word:
                words[-1] += part
            else:
                words.append(part)
            open_word = True
            continue
        if not part:
            continue
        pieces = part.split()
        if open_word and part[0] not in _SHELL_WHITESPACE:
            words[-1] += pieces.pop(0)
        words += pieces
        open_word = part[-1] not in _SHELL_WHITESPACE
    return words


#: Rules parsed before, by the text after the counters and the line number, so that nodes with the same rules
#: share them. Each comes with the counters of a ``-c`` option inside its text, if any.
_PARSED: dict[tuple[str, int], tuple[IptablesRule, tuple[int, int] | None]] = {}
#: Entries of ``_PARSED`` before it is emptied: seven times the 18,413 rules kube-proxy writes for 4,000 services.
_PARSED_LIMIT = 131_072


def forget_parsed_rules() -> None:
    """Empty the cache of parsed rules, so that the next parse of a line parses it again (for benchmarks)."""
    _PARSED.clear()


def _parse_rule_line(line: str, source: str, number: int,
                     declared: set[str]) -> tuple[IptablesRule, int | None, int | None]:
    """Return the rule of one line and its packet and byte counters, if the line has them.

    The counters (``[packets:bytes]`` before ``-A``, or ``-c`` inside the
    rule) are not part of the rule, so rules equal on many nodes are one
    object. A rule depends only on the rest of its line and the line number
    once its chain is declared, so a cached rule is returned only then. Any
    other line, valid or not, is parsed, and raises the error it would raise
    the first time.
    """
    packets: int | None = None
    byte_count: int | None = None
    body = line
    if body.startswith("["):
        counters, _, body = body.partition(" ")
        packets, byte_count = _parse_counters(counters, source, number)
        body = body.lstrip()
    if " -c " in body or " --set-counters " in body:
        # iptables-restore also takes counters as an option of the rule. They are no part of the rule's text, which
        # evidence quotes and the fixers look for in 'iptables -S'. An option inside a quoted comment stays.
        found = _INNER_COUNTERS.search(body)
        if found is not None and body.count('"', 0, found.start()) % 2 == 0:
            packets, byte_count = _counter_values(found.groups(), source, number)
            body = body[:found.start()] + body[found.end():]
    cached = _PARSED.get((body, number))
    if cached is None or cached[0].chain not in declared:
        cached = _parse_new_rule_line(line, body, source, number, declared)
        if len(_PARSED) >= _PARSED_LIMIT:
            _PARSED.clear()
        _PARSED[body, number] = cached
    rule, inner = cached
    if inner is not None:
        packets, byte_count = inner
    return rule, packets, byte_count


def _parse_new_rule_line(line: str, body: str, source: str, number: int,
                         declared: set[str]) -> tuple[IptablesRule, tuple[int, int] | None]:
    """Parse ``body``, the line without its leading counters, and return the rule and the counters of its ``-c``."""
    if not body.startswith("-A ") and not body.startswith("--append "):
        raise ParseError(
            source,
            number,
            f"unknown line {line[:60]!r}: expected '-A CHAIN ...', ':CHAIN', '*TABLE' or COMMIT",
        )
    rule_text = body.split(" ", 1)[1].strip()

    tokens = _tokenize(rule_text, source, number)
    if not tokens:
        raise ParseError(source, number, "'-A' without a chain name")
    chain = tokens[0]
    if chain not in declared:
        raise ParseError(
            source,
            number,
            f"rule for chain {chain!r}, which the table does not declare with ':{chain}'",
        )

    builder = _RuleBuilder(source, number)
    builder.read(tokens[1:])
    inner = None if builder.packets is None or builder.bytes is None else (builder.packets, builder.bytes)
    return IptablesRule(chain=chain, line=number, text=rule_text, **builder.fields()), inner


class _RuleBuilder:
    """Collects the conditions, matches and target of one rule from its words."""

    def __init__(self, source: str, number: int) -> None:
        self.source = source
        self.number = number
        self.header: dict[str, Any] = {}
        self.matches: list[tuple[str, list[IptablesOption]]] = []
        self.target: str | None = None
        self.goto = False
        self.target_options: list[IptablesOption] = []
        self.in_target = False
        self.packets: int | None = None
        self.bytes: int | None = None

    def fail(self, message: str) -> ParseError:
        return ParseError(self.source, self.number, message)

    def read(self, tokens: list[str]) -> None:
        index = 0
        negated = False
        while index < len(tokens):
            token = tokens[index]
            index += 1

            if token == "!":
                if negated:
                    raise self.fail("two '!' in a row")
                negated = True
                continue

            if token in _FIELD_OPTIONS:
                value, index = self._value(tokens, index, token)
                name = _FIELD_OPTIONS[token]
                if name in ("source", "destination"):
                    self._check_addresses(token, value)
                self.header[name] = value
                self.header[f"{name}_negated"] = negated
                self.in_target = False
            elif token in ("-f", "--fragment"):
                self.header["fragment"] = not negated
            elif token in ("-m", "--match"):
                module, index = self._value(tokens, index, token)
                if negated:
                    raise self.fail(f"'!' cannot negate '-m {module}'")
                self.matches.append((module, []))
                self.in_target = False
            elif token in ("-j", "--jump", "-g", "--goto"):
                target, index = self._value(tokens, index, token)
                if negated:
                    raise self.fail(f"'!' cannot negate '{token} {target}'")
                if self.target is not None:
                    raise self.fail(f"second target {target!r} after {self.target!r}")
                self.target = target
                self.goto = token in ("-g", "--goto")
                self.in_target = True
            elif token in ("-c", "--set-counters"):
                index = self._counters(tokens, index)
            elif token.startswith("-") and not _NEGATIVE_NUMBER.match(token):
                index = self._option(tokens, index, token, negated)
            else:
                raise self.fail(
                    f"unexpected word {token!r}: expected an option such as '-p', '-m' or '-j'"
                )
            negated = False

        if negated:
            raise self.fail("'!' at the end of the rule negates nothing")

    def _check_addresses(self, option: str, value: str) -> None:
        """Raise for an address of ``-s`` or ``-d`` that is neither a prefix nor an address with a mask."""
        try:
            check_rule_address(value)
        except AddressError as error:
            raise self.fail(f"invalid address {quoted_text(value)} of {option}: {error}") from None

    def _value(self, tokens: list[str], index: int, option: str) -> tuple[str, int]:
        if index >= len(tokens):
            raise self.fail(f"option {option} has no value")
        return tokens[index], index + 1

    def _counters(self, tokens: list[str], index: int) -> int:
        packets = decimal_value(tokens[index]) if index < len(tokens) else None
        byte_count = decimal_value(tokens[index + 1]) if index + 1 < len(tokens) else None
        if packets is None or byte_count is None:
            raise self.fail("'-c' must be followed by two counters: packets and bytes")
        _check_counter(packets, self.source, self.number)
        _check_counter(byte_count, self.source, self.number)
        self.packets, self.bytes = packets, byte_count
        return index + 2

    def _option(self, tokens: list[str], index: int, name: str, negated: bool) -> int:
        values: list[str] = []
        # Old iptables wrote the negation after the option name: '--dport ! 22'.
        if (
            index < len(tokens)
            and tokens[index] == "!"
            and index + 1 < len(tokens)
            and not tokens[index + 1].startswith("-")
        ):
            negated = True
            index += 1
        while index < len(tokens):
            word = tokens[index]
            if word == "!" or (
                word.startswith("-") and not _NEGATIVE_NUMBER.match(word) and word != "-"
            ):
                break
            values.append(word)
            index += 1
        option = IptablesOption(name=name, values=tuple(values), negated=negated)

        if self.in_target:
            self.target_options.append(option)
        elif self.matches:
            self.matches[-1][1].append(option)
        elif "protocol" in self.header:
            # '-p tcp --dport 22' without '-m tcp': the protocol match is implicit.
            self.matches.append((str(self.header["protocol"]), [option]))
        else:
            raise self.fail(
                f"option {name} comes before any '-m' match, '-p' protocol or '-j' target"
            )
        return index

    def fields(self) -> dict[str, Any]:
        values = dict(self.header)
        values["matches"] = tuple(
            IptablesMatch(module, tuple(options)) for module, options in self.matches
        )
        values["target"] = self.target
        values["goto"] = self.goto
        values["target_options"] = tuple(self.target_options)
        return values
