#!/bin/sh
# netdoctor fix plan: 8 step(s) on 3 node(s), built from bundle:duplicate-mac-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (its short name counts too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Point the neighbour entry for node2's VTEP 10.244.2.0 at 8e:2c:51:7d:01:b3
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: The entry resolves node2's VTEP address to 8e:2c:51:7d:02:b3, a MAC no VTEP has.
#   already done when: neighbour 10.244.2.0 dev flannel.1 present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.2.0 lladdr 8e:2c:51:7d:01:b3 dev flannel.1 nud permanent

# Step 2 [safe] Add the FDB entry that sends node2's VTEP MAC 8e:2c:51:7d:01:b3 to 192.168.100.12
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: Without it flannel.1 does not know which underlay address to encapsulate to.
#   already done when: FDB entry 8e:2c:51:7d:01:b3 dev flannel.1 present
#   requires: interface flannel.1 exists
bridge fdb append 8e:2c:51:7d:01:b3 dev flannel.1 dst 192.168.100.12 self permanent

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Set the VtepMAC of lease 10.244.2.0/24 to 8e:2c:51:7d:01:b3
#   check: etcd-lease-mismatch; fixer: repair-flannel-lease
#   why: Peers send this node's overlay traffic to the lease's VtepMAC, which no VTEP has.
#   already done when: etcd key /coreos.com/network/subnets/10.244.2.0-24 holds the expected value
#   requires: etcd key /coreos.com/network/subnets/10.244.2.0-24 holds the expected value
ETCDCTL_API=3 etcdctl --endpoints=http://127.0.0.1:2379 put /coreos.com/network/subnets/10.244.2.0-24 '{"PublicIP":"192.168.100.12","BackendType":"vxlan","BackendData":{"VtepMAC":"8e:2c:51:7d:01:b3"}}'

# Step 2 [disruptive] Give flannel.1 the MAC 8e:2c:51:7d:02:b3 instead of the shared 8e:2c:51:7d:01:b3
#   check: duplicate-mac; fixer: set-unique-mac
#   why: flannel.1 shares MAC 8e:2c:51:7d:01:b3 with another node on VXLAN VNI 1 port 8472, so frames flap between them; 8e:2c:51:7d:02:b3 is the MAC its peers' neighbour entries name for this node. A MAC change interrupts the interface briefly, so it is applied only after confirmation.
#   already done when: flannel.1 has MAC 8e:2c:51:7d:02:b3
#   requires: flannel.1 has MAC 8e:2c:51:7d:01:b3
# ip link set dev flannel.1 address 8e:2c:51:7d:02:b3

# Step 3 [safe] Add the neighbour entry for node1's VTEP 10.244.1.0 (8e:2c:51:7d:01:b3)
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: node2's flannel.1 changed its MAC, which removed its neighbour entries. Without the entry for 10.244.1.0, replies to node1's pods are not sent.
#   already done when: neighbour 10.244.1.0 dev flannel.1 present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.1.0 lladdr 8e:2c:51:7d:01:b3 dev flannel.1 nud permanent

# Step 4 [safe] Add the neighbour entry for node3's VTEP 10.244.3.0 (8e:2c:51:7d:03:b3)
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: node2's flannel.1 changed its MAC, which removed its neighbour entries. Without the entry for 10.244.3.0, replies to node3's pods are not sent.
#   already done when: neighbour 10.244.3.0 dev flannel.1 present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.3.0 lladdr 8e:2c:51:7d:03:b3 dev flannel.1 nud permanent

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Point the neighbour entry for node2's VTEP 10.244.2.0 at 8e:2c:51:7d:01:b3
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: The entry resolves node2's VTEP address to 8e:2c:51:7d:02:b3, a MAC no VTEP has.
#   already done when: neighbour 10.244.2.0 dev flannel.1 present
#   requires: interface flannel.1 exists
ip neigh replace 10.244.2.0 lladdr 8e:2c:51:7d:01:b3 dev flannel.1 nud permanent

# Step 2 [safe] Send node2's VTEP MAC 8e:2c:51:7d:01:b3 to 192.168.100.12 instead of 192.168.100.11
#   check: vtep-mismatch; fixer: replace-vtep-entry
#   why: flannel.1 encapsulates node2's traffic to 192.168.100.11, which is not node2.
#   already done when: FDB entry 8e:2c:51:7d:01:b3 dev flannel.1 present
#   requires: interface flannel.1 exists
bridge fdb replace 8e:2c:51:7d:01:b3 dev flannel.1 dst 192.168.100.12 self permanent

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
