#!/bin/sh
# netdoctor fix plan: 3 step(s) on 3 node(s), built from bundle:calico-pool-overlaps-host-lan.
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
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
