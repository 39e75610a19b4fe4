#!/bin/sh
# netdoctor fix plan: 7 step(s) on 1 node(s), built from bundle:overlay-interface-missing-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Set flannel.1 up
#   check: overlay-interface-missing; fixer: restore-overlay-interface
#   why: flannel.1 carries the overlay and is administratively down.
#   already done when: flannel.1 is up
#   requires: interface flannel.1 exists
ip link set dev flannel.1 up

# Step 2 [safe] Add the neighbour entry for node1's VTEP 10.244.1.0
#   check: route-missing; fixer: add-peer-route
#   why: flannel.1 runs without learning, so the VTEP address must resolve through a permanent entry.
#   already done when: neighbour 10.244.1.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.1.0 lladdr 8e:2c:51:7d:01:b3 dev flannel.1 nud permanent

# Step 3 [safe] Add the neighbour entry for node3's VTEP 10.244.3.0
#   check: route-missing; fixer: add-peer-route
#   why: flannel.1 runs without learning, so the VTEP address must resolve through a permanent entry.
#   already done when: neighbour 10.244.3.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.3.0 lladdr 8e:2c:51:7d:03:b3 dev flannel.1 nud permanent

# Step 4 [safe] Add the FDB entry that sends node1's VTEP MAC to 192.168.100.11
#   check: route-missing; fixer: add-peer-route
#   why: Without the FDB entry flannel.1 does not know which underlay address to encapsulate to.
#   already done when: FDB entry 8e:2c:51:7d:01:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb append 8e:2c:51:7d:01:b3 dev flannel.1 dst 192.168.100.11 self permanent

# Step 5 [safe] Add the FDB entry that sends node3's VTEP MAC to 192.168.100.13
#   check: route-missing; fixer: add-peer-route
#   why: Without the FDB entry flannel.1 does not know which underlay address to encapsulate to.
#   already done when: FDB entry 8e:2c:51:7d:03:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb append 8e:2c:51:7d:03:b3 dev flannel.1 dst 192.168.100.13 self permanent

# Step 6 [safe] Add the route to node1's pod subnet 10.244.1.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.1.0/24, traffic to node1's pods follows the default route and is lost.
#   already done when: route 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink is present
#   requires: the main table has no route to exactly 10.244.1.0/24
#   requires: interface flannel.1 exists
ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink

# Step 7 [safe] Add the route to node3's pod subnet 10.244.3.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.3.0/24, traffic to node3's pods follows the default route and is lost.
#   already done when: route 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink is present
#   requires: the main table has no route to exactly 10.244.3.0/24
#   requires: interface flannel.1 exists
ip route add 10.244.3.0/24 via 10.244.3.0 dev flannel.1 onlink

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
