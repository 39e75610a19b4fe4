#!/bin/sh
# netdoctor fix plan: 3 step(s) on 1 node(s), built from bundle:mtu-mismatch-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Lower the MTU of docker0 from 1500 to 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1450 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1450
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1450

# Step 2 [display-only] Start Docker with --mtu=1450 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1450, or start dockerd with --mtu=1450
# with flannel: . /run/flannel/subnet.env && dockerd --bip=${FLANNEL_SUBNET} --mtu=${FLANNEL_MTU}
# then restart Docker (this restarts the node's containers): systemctl restart docker

# Step 3 [display-only] Recreate the pods behind veth3f1a9c2 with MTU 1450
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Both ends of a pod's veth need MTU 1450. Lowering only the host end would make the kernel drop the pod's larger packets without the ICMP error that lets TCP lower its segment size.
# after Docker or the CNI config carries the new MTU, restart the affected containers or pods,
# for example: docker restart CONTAINER, or kubectl delete pod POD (its controller recreates it)

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
