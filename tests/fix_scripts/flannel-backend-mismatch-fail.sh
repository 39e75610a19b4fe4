#!/bin/sh
# netdoctor fix plan: 5 step(s) on 1 node(s), built from bundle:flannel-backend-mismatch-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Re-create flannel.1 from the node's lease
#   check: overlay-interface-missing; fixer: restore-overlay-interface
#   why: Every route to peers' pods goes through flannel.1; flanneld builds it with the lease's VtepMAC.
#   already done when: flannel.1 is up
#   requires: interface flannel.1 does not exist
#   requires: interface eth0 exists
ip link add flannel.1 type vxlan id 1 local 192.168.100.12 dev eth0 dstport 8472 nolearning
ip link set dev flannel.1 address 8e:2c:51:7d:02:b3
ip addr add 10.244.2.0/32 dev flannel.1
ip link set dev flannel.1 up

# Step 2 [safe] Add the route to node1's pod subnet 10.244.1.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.1.0/24, traffic to node1's pods follows the default route and is lost.
#   already done when: route 10.244.1.0/24 via 192.168.100.11 dev eth0 is present
#   requires: the main table has no route to exactly 10.244.1.0/24
#   requires: interface eth0 exists
ip route add 10.244.1.0/24 via 192.168.100.11 dev eth0

# Step 3 [safe] Add the route to node3's pod subnet 10.244.3.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.3.0/24, traffic to node3's pods follows the default route and is lost.
#   already done when: route 10.244.3.0/24 via 192.168.100.13 dev eth0 is present
#   requires: the main table has no route to exactly 10.244.3.0/24
#   requires: interface eth0 exists
ip route add 10.244.3.0/24 via 192.168.100.13 dev eth0

# Step 4 [display-only] Restore flannel's VNI
#   check: flannel-backend-mismatch; fixer: restore-flannel-backend
#   why: VXLAN packets with another VNI or port are dropped by the receiver, and a UDP-backend node cannot talk to a VXLAN node; the restart rebuilds the overlay device.
# /coreos.com/network/config says VNI 1; this node runs 2
# ETCDCTL_API=3 etcdctl get /coreos.com/network/config    # check the config flanneld reads
# remove the old device so flanneld re-creates it: ip link delete flannel.1 (or flannel0)
# systemctl restart flanneld, then systemctl restart docker

# Step 5 [display-only] Restart flanneld so that it re-creates flannel.1
#   check: overlay-interface-missing; fixer: restore-overlay-interface
#   why: flanneld owns flannel.1 and its routes; restarting it also re-reads its config.
# systemctl restart flanneld
# then check: ip -d link show dev flannel.1

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
