"""The BIRD control socket that BGP fixers address, per node."""

from __future__ import annotations

from netdoctor.fixers.bgp import BIRD_SOCKET, CALICO_BIRD_SOCKET, bird_socket
from netdoctor.model import Interface, NodeSnapshot


def _interface(name: str) -> Interface:
    return Interface(name, 5, "veth", "UP", 1480, ("UP",))


def test_collected_socket_comes_first() -> None:
    node = NodeSnapshot("n1", interfaces=(_interface("cali12345"),), meta=(("bird socket", "/var/run/bird.ctl"),))

    assert bird_socket(node) == "/var/run/bird.ctl"


def test_calico_node_gets_calico_socket() -> None:
    assert bird_socket(NodeSnapshot("n1", interfaces=(_interface("cali12345"),))) == CALICO_BIRD_SOCKET


def test_other_node_gets_usual_socket() -> None:
    assert bird_socket(NodeSnapshot("n1", interfaces=(_interface("eth0"),))) == BIRD_SOCKET
    assert bird_socket(None) == BIRD_SOCKET
