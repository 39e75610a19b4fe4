#!/bin/sh
# netdoctor fix plan: 3 step(s) on 2 node(s), built from bundle:flannel-etcd-network-config-missing.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [display-only] Write /coreos.com/network/config with the cluster's pod network
#   check: etcd-network-config-missing; fixer: write-flannel-network-config
#   why: flanneld exits at start with 'Key not found' while the network config is absent. No captured source shows the pod network, so fill it in by hand.
# ETCDCTL_API=3 etcdctl put /coreos.com/network/config '{"Network": "<POD NETWORK>", "Backend": {"Type": "vxlan"}}'

# Step 2 [display-only] Restart flanneld, then Docker, so that they read the new etcd data
#   check: etcd-network-config-missing; fixer: write-flannel-network-config
#   why: flanneld reads its config and lease at start; Docker must start after it to pick up subnet.env.
# systemctl restart flanneld
# systemctl restart docker   # restarts this node's containers

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [display-only] Restart flanneld, then Docker, so that they read the new etcd data
#   check: etcd-network-config-missing; fixer: write-flannel-network-config
#   why: flanneld reads its config and lease at start; Docker must start after it to pick up subnet.env.
# systemctl restart flanneld
# systemctl restart docker   # restarts this node's containers

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
