"""ICMP echo probes, run inside a lab namespace: ``python -m netdoctor.lab.probe DEST...``.

The lab does not depend on an installed ``ping``: this module sends one echo
request per destination from a raw ICMP socket, waits for all replies at once,
and prints one JSON object mapping each destination to its round-trip time in
milliseconds, or to the reason it failed. ``--size`` sets the ICMP payload in
bytes and sets the don't-fragment bit, so the total IP length is size + 28.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import socket
import struct
import sys
import time

#: ``IP_MTU_DISCOVER`` socket option and its value that sets DF on every packet
#: (linux/in.h); Python's socket module does not export them.
IP_MTU_DISCOVER = 10
IP_PMTUDISC_DO = 2


def checksum(data: bytes) -> int:
    """Return the Internet checksum (RFC 1071) of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def echo_request(identifier: int, sequence: int, size: int) -> bytes:
    """Build an ICMP echo request with a ``size``-byte payload."""
    payload = bytes(range(256)) * (size // 256 + 1)
    header = struct.pack("!BBHHH", 8, 0, 0, identifier, sequence)
    body = payload[:size]
    return struct.pack("!BBHHH", 8, 0, checksum(header + body), identifier, sequence) + body


def ping_all(destinations: list[str], timeout: float = 1.0, size: int = 56) -> dict[str, float | str]:
    """Send one echo request to each destination and return the RTT in ms or the failure."""
    results: dict[str, float | str] = {}
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    sock.setsockopt(socket.IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_DO)
    identifier = os.getpid() & 0xFFFF
    sent: dict[int, tuple[str, float]] = {}
    for sequence, destination in enumerate(destinations, start=1):
        try:
            sock.sendto(echo_request(identifier, sequence, size), (destination, 0))
        except OSError as error:
            results[destination] = f"send failed: {error.strerror}"
            continue
        sent[sequence] = (destination, time.monotonic())

    deadline = time.monotonic() + timeout
    while sent and (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            break
        packet, (source, _) = sock.recvfrom(65535)
        header_length = (packet[0] & 0x0F) * 4
        kind, code, _, reply_id, sequence = struct.unpack("!BBHHH", packet[header_length : header_length + 8])
        if kind == 0 and reply_id == identifier and sequence in sent:
            destination, started = sent.pop(sequence)
            if source == destination:
                results[destination] = round((time.monotonic() - started) * 1000, 3)
        elif kind == 3:
            # An error quotes the original IP header and the first 8 bytes of the echo request.
            inner = packet[header_length + 8 :]
            inner_length = (inner[0] & 0x0F) * 4 if inner else 0
            quoted = inner[inner_length : inner_length + 8]
            if len(quoted) == 8:
                _, _, _, quoted_id, quoted_sequence = struct.unpack("!BBHHH", quoted)
                if quoted_id == identifier and quoted_sequence in sent:
                    destination, _ = sent.pop(quoted_sequence)
                    results[destination] = f"destination unreachable (code {code}) from {source}"
    for destination, _ in sent.values():
        results[destination] = "timed out"
    sock.close()
    return results


def main(argv: list[str] | None = None) -> int:
    """Probe the destinations given on the command line and print the results as JSON."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("destinations", nargs="+", help="IPv4 addresses to probe")
    parser.add_argument("--timeout", type=float, default=1.0, help="seconds to wait for all replies")
    parser.add_argument("--size", type=int, default=56, help="ICMP payload in bytes; DF is always set")
    arguments = parser.parse_args(argv)
    json.dump(ping_all(arguments.destinations, arguments.timeout, arguments.size), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
