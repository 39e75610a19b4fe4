#!/bin/sh
# netdoctor fix plan: 2 step(s) on 2 node(s), built from bundle:bridge-subnet-overlap-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [display-only] Restart Docker with the bridge subnet flannel leased to this node
#   check: bridge-subnet-overlap; fixer: docker-bip-from-subnet-env
#   why: docker0 must carry the node's own pod subnet; otherwise pod addresses collide across nodes or fall outside what the overlay routes.
# subnet.env on node1: FLANNEL_SUBNET=10.244.1.1/24 FLANNEL_MTU=1450
# /etc/docker/daemon.json: "bip": "10.244.1.1/24", "mtu": 1450
# or: dockerd --bip=10.244.1.1/24 --mtu=1450
# start flanneld before Docker, then: systemctl restart docker

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
