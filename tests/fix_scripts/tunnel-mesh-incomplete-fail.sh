#!/bin/sh
# netdoctor fix plan: 3 step(s) on 2 node(s), built from bundle:tunnel-mesh-incomplete-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [disruptive] Remove the OVS tunnel gre3 to 10.0.2.6
#   check: tunnel-mesh-incomplete; fixer: repair-ovs-tunnel-mesh
#   why: Another tunnel already goes to the same peer, so packets flood over both. Deleting a port stops whatever still uses it, so it is applied only after confirmation.
#   already done when: OVS port gre3 is absent
#   requires: OVS port gre3 on br0 is present
# ovs-vsctl del-port br0 gre3

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Add the OVS gre tunnel gre0 to node1 (10.0.2.4)
#   check: tunnel-mesh-incomplete; fixer: repair-ovs-tunnel-mesh
#   why: Without a tunnel to node1, pods on the two nodes cannot reach each other.
#   already done when: an OVS tunnel with remote_ip 10.0.2.4 is present
#   requires: OVS port gre0 is absent
ovs-vsctl add-port br0 gre0 -- set interface gre0 type=gre options:remote_ip=10.0.2.4

# Step 2 [disruptive] Remove the OVS tunnel gre2 to 10.0.2.9
#   check: tunnel-mesh-incomplete; fixer: repair-ovs-tunnel-mesh
#   why: 10.0.2.9 is no node of the mesh; the port floods traffic there. Deleting a port stops whatever still uses it, so it is applied only after confirmation.
#   already done when: OVS port gre2 is absent
#   requires: OVS port gre2 on br0 is present
# ovs-vsctl del-port br0 gre2

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
