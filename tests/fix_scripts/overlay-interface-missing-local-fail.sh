#!/bin/sh
# netdoctor fix plan: 2 step(s) on 2 node(s), built from bundle:overlay-interface-missing-local-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Send node3's VTEP MAC 8e:2c:51:7d:03:b3 to 192.168.100.99 instead of 192.168.100.13
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: flannel.1 encapsulates node3's traffic to 192.168.100.13, which is not node3.
#   already done when: FDB entry 8e:2c:51:7d:03:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb replace 8e:2c:51:7d:03:b3 dev flannel.1 dst 192.168.100.99 self permanent

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Send node3's VTEP MAC 8e:2c:51:7d:03:b3 to 192.168.100.99 instead of 192.168.100.13
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: flannel.1 encapsulates node3's traffic to 192.168.100.13, which is not node3.
#   already done when: FDB entry 8e:2c:51:7d:03:b3 dev flannel.1 is present
#   requires: interface flannel.1 exists
bridge fdb replace 8e:2c:51:7d:03:b3 dev flannel.1 dst 192.168.100.99 self permanent

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
