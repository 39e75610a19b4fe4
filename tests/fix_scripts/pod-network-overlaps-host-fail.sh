#!/bin/sh
# netdoctor fix plan: 1 step(s) on 1 node(s), built from bundle:pod-network-overlaps-host-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: etcd /coreos.com/network/config 10.244.0.0/16 overlaps route 10.244.200.0/24 dev tun0 proto kernel scope link src 10.244.200.1 linkdown on node1
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
