#!/bin/sh
# netdoctor fix plan: 12 step(s) on 3 node(s), built from bundle:flannel-docker0-mtu-mismatch.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# === node1 ===

# Step 1 [disruptive] Lower the MTU of veth62fa8c8 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth62fa8c8 MTU is 1450
#   requires: veth62fa8c8 MTU is 1500
# ip link set dev veth62fa8c8 mtu 1450

# Step 2 [disruptive] Lower the MTU of veth86d9d38 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth86d9d38 MTU is 1450
#   requires: veth86d9d38 MTU is 1500
# ip link set dev veth86d9d38 mtu 1450

# Step 3 [disruptive] Lower the MTU of docker0 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1450
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1450

# Step 4 [display-only] Start Docker with --mtu=1450 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1450, or start dockerd with --mtu=1450
# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}
# then restart Docker (this restarts the node's containers): systemctl restart docker

# === node2 ===

# Step 1 [disruptive] Lower the MTU of veth1778595 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth1778595 MTU is 1450
#   requires: veth1778595 MTU is 1500
# ip link set dev veth1778595 mtu 1450

# Step 2 [disruptive] Lower the MTU of veth8701c0b from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth8701c0b MTU is 1450
#   requires: veth8701c0b MTU is 1500
# ip link set dev veth8701c0b mtu 1450

# Step 3 [disruptive] Lower the MTU of docker0 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1450
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1450

# Step 4 [display-only] Start Docker with --mtu=1450 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1450, or start dockerd with --mtu=1450
# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}
# then restart Docker (this restarts the node's containers): systemctl restart docker

# === node3 ===

# Step 1 [disruptive] Lower the MTU of veth8cd561e from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth8cd561e MTU is 1450
#   requires: veth8cd561e MTU is 1500
# ip link set dev veth8cd561e mtu 1450

# Step 2 [disruptive] Lower the MTU of veth9c1eabb from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: veth9c1eabb MTU is 1450
#   requires: veth9c1eabb MTU is 1500
# ip link set dev veth9c1eabb mtu 1450

# Step 3 [disruptive] Lower the MTU of docker0 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1450
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1450

# Step 4 [display-only] Start Docker with --mtu=1450 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1450, or start dockerd with --mtu=1450
# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}
# then restart Docker (this restarts the node's containers): systemctl restart docker
