#!/bin/sh
# netdoctor fix plan: 3 step(s) on 1 node(s), built from bundle:mtu-mismatch-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# === node1 ===

# Step 1 [disruptive] Lower the MTU of veth3f1a9c2 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth3f1a9c2 MTU is 1450
#   requires: veth3f1a9c2 MTU is 1500
# ip link set dev veth3f1a9c2 mtu 1450

# Step 2 [disruptive] Lower the MTU of docker0 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1450
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1450

# Step 3 [display-only] Start Docker with --mtu=1450 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1450, or start dockerd with --mtu=1450
# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}
# then restart Docker (this restarts the node's containers): systemctl restart docker
