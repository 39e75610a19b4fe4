#!/bin/sh
# netdoctor fix plan: 3 step(s) on 3 node(s), built from bundle:calico-pool-overlaps-host-lan.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# === node1 ===

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

# === node2 ===

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node

# === node3 ===

# Step 1 [display-only] Move the pod network to a range no host uses
#   check: pod-network-overlaps-host; fixer: renumber-pod-network
#   why: Calico pool inferred from the nodes' blocks 192.168.0.0/16 overlaps host subnet 192.168.10.0/24 on node1, node2, node3
# Calico: create an IP pool outside the host subnets, disable the old pool, then recreate the pods
# flannel: write a new Network to <prefix>/config in etcd, then restart flanneld and Docker on each node
