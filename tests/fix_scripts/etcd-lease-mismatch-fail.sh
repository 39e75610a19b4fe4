#!/bin/sh
# netdoctor fix plan: 2 step(s) on 2 node(s), built from bundle:etcd-lease-mismatch-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Delete the stale lease 10.244.3.0/24 (PublicIP 192.168.100.77)
#   check: etcd-lease-mismatch; fixer: repair-flannel-lease
#   why: Peers program a route, FDB and neighbour entry to a host that is not a node. Deleting a lease is disruptive, so it is applied only after confirmation: if the host is a node that was not captured, its pods lose their subnet's routes.
#   already done when: etcd key /coreos.com/network/subnets/10.244.3.0-24 is absent
#   requires: etcd key /coreos.com/network/subnets/10.244.3.0-24 has the expected value
# ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 del /coreos.com/network/subnets/10.244.3.0-24

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [display-only] Restart flanneld, then Docker, so that they read the new etcd data
#   check: etcd-lease-mismatch; fixer: repair-flannel-lease
#   why: flanneld reads its config and lease at start; Docker must start after it to pick up subnet.env.
# systemctl restart flanneld
# systemctl restart docker   # restarts this node's containers

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
