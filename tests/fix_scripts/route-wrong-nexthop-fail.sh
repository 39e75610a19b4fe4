#!/bin/sh
# netdoctor fix plan: 1 step(s) on 1 node(s), built from bundle:route-wrong-nexthop-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Route 10.244.2.0/24 to node2
#   check: route-wrong-nexthop; fixer: replace-wrong-route
#   why: '10.244.2.0/24 via 192.168.100.13 dev eth0' sends the traffic for 10.244.2.0/24 to the wrong place; replacing a route moves traffic at once, so it is applied only after confirmation.
#   already done when: route 10.244.2.0/24 via 192.168.100.12 dev eth0 is present
#   requires: route 10.244.2.0/24 via 192.168.100.13 dev eth0 is present
# ip route replace 10.244.2.0/24 via 192.168.100.12 dev eth0

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
