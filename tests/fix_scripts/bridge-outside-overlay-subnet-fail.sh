#!/bin/sh
# netdoctor fix plan: 7 step(s) on 3 node(s), built from bundle:bridge-outside-overlay-subnet-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Add the neighbour entry for node2's VTEP 10.244.99.0
#   check: route-missing; fixer: add-peer-route
#   why: flannel.1 runs without learning, so the VTEP address must resolve through a permanent entry.
#   already done when: neighbour 10.244.99.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.99.0 lladdr 8e:2c:51:7d:02:b3 dev flannel.1 nud permanent

# Step 2 [safe] Add the FDB entry that sends node2's VTEP MAC to 192.168.100.12
#   check: route-missing; fixer: add-peer-route
#   why: Without the FDB entry flannel.1 does not know which underlay address to encapsulate to.
#   already done when: FDB entry 8e:2c:51:7d:02:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb append 8e:2c:51:7d:02:b3 dev flannel.1 dst 192.168.100.12 self permanent

# Step 3 [safe] Add the route to node2's pod subnet 10.244.99.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.99.0/24, traffic to node2's pods follows the default route and is lost.
#   already done when: route 10.244.99.0/24 via 10.244.99.0 dev flannel.1 onlink is present
#   requires: the main table has no route to exactly 10.244.99.0/24
#   requires: interface flannel.1 exists
ip route add 10.244.99.0/24 via 10.244.99.0 dev flannel.1 onlink

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [display-only] Restart Docker with the bridge subnet flannel leased to this node
#   check: bridge-outside-overlay-subnet; fixer: docker-bip-from-subnet-env
#   why: docker0 must carry the node's own pod subnet; otherwise pod addresses collide across nodes or fall outside what the overlay routes.
# subnet.env on node2: FLANNEL_SUBNET=10.244.2.1/24 FLANNEL_MTU=1450
# /etc/docker/daemon.json: "bip": "10.244.2.1/24", "mtu": 1450
# or: dockerd --bip=10.244.2.1/24 --mtu=1450
# start flanneld before Docker, then: systemctl restart docker

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Add the neighbour entry for node2's VTEP 10.244.99.0
#   check: route-missing; fixer: add-peer-route
#   why: flannel.1 runs without learning, so the VTEP address must resolve through a permanent entry.
#   already done when: neighbour 10.244.99.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.99.0 lladdr 8e:2c:51:7d:02:b3 dev flannel.1 nud permanent

# Step 2 [safe] Add the FDB entry that sends node2's VTEP MAC to 192.168.100.12
#   check: route-missing; fixer: add-peer-route
#   why: Without the FDB entry flannel.1 does not know which underlay address to encapsulate to.
#   already done when: FDB entry 8e:2c:51:7d:02:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb append 8e:2c:51:7d:02:b3 dev flannel.1 dst 192.168.100.12 self permanent

# Step 3 [safe] Add the route to node2's pod subnet 10.244.99.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.99.0/24, traffic to node2's pods follows the default route and is lost.
#   already done when: route 10.244.99.0/24 via 10.244.99.0 dev flannel.1 onlink is present
#   requires: the main table has no route to exactly 10.244.99.0/24
#   requires: interface flannel.1 exists
ip route add 10.244.99.0/24 via 10.244.99.0 dev flannel.1 onlink

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
