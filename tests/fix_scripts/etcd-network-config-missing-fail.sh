#!/bin/sh
# netdoctor fix plan: 4 step(s) on 3 node(s), built from bundle:etcd-network-config-missing-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Write /coreos.com/network/config with Network 10.244.0.0/16
#   check: etcd-network-config-missing; fixer: write-flannel-network-config
#   why: flanneld exits at start with 'Key not found' while the network config is absent.
#   already done when: etcd key /coreos.com/network/config has the expected value
#   requires: etcd key /coreos.com/network/config is absent
ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 put /coreos.com/network/config '{"Network": "10.244.0.0/16", "Backend": {"Type": "vxlan"}}'

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

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [display-only] Restart flanneld, then Docker, so that they read the new etcd data
#   check: etcd-network-config-missing; fixer: write-flannel-network-config
#   why: flanneld reads its config and lease at start; Docker must start after it to pick up subnet.env.
# systemctl restart flanneld
# systemctl restart docker   # restarts this node's containers

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
