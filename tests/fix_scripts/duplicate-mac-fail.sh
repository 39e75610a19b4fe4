#!/bin/sh
# netdoctor fix plan: 3 step(s) on 1 node(s), built from bundle:duplicate-mac-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [disruptive] Give flannel.1 the MAC 8e:2c:51:7d:02:b3 instead of the shared 8e:2c:51:7d:01:b3
#   check: duplicate-mac; fixer: set-unique-mac
#   why: flannel.1 shares MAC 8e:2c:51:7d:01:b3 with another node on VXLAN VNI 1 port 8472, so frames flap between them; 8e:2c:51:7d:02:b3 is the MAC its peers' neighbour entries name for this node. A MAC change interrupts the interface briefly, so it is applied only after confirmation.
#   already done when: flannel.1 has MAC 8e:2c:51:7d:02:b3
#   requires: flannel.1 has MAC 8e:2c:51:7d:01:b3
# ip link set dev flannel.1 address 8e:2c:51:7d:02:b3

# Step 2 [safe] Add the neighbour entry that resolves node1's VTEP 10.244.1.0 to 8e:2c:51:7d:01:b3
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: Without it flannel.1 cannot resolve the next hop of node1's pod subnet.
#   already done when: neighbour 10.244.1.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.1.0 lladdr 8e:2c:51:7d:01:b3 dev flannel.1 nud permanent

# Step 3 [safe] Add the neighbour entry that resolves node3's VTEP 10.244.3.0 to 8e:2c:51:7d:03:b3
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: Without it flannel.1 cannot resolve the next hop of node3's pod subnet.
#   already done when: neighbour 10.244.3.0 dev flannel.1 is present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.3.0 lladdr 8e:2c:51:7d:03:b3 dev flannel.1 nud permanent

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
