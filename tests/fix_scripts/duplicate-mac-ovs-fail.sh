#!/bin/sh
# netdoctor fix plan: 1 step(s) on 1 node(s), built from bundle:duplicate-mac-ovs-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [disruptive] Give docker0 the MAC 02:61:b2:aa:85:c9 instead of the shared 02:42:c9:52:3d:11
#   check: duplicate-mac; fixer: set-unique-mac
#   why: docker0 shares MAC 02:42:c9:52:3d:11 with another node on the OVS tunnel mesh, so frames flap between them; 02:61:b2:aa:85:c9 is a locally administered MAC derived from the node and interface names. A MAC change interrupts the interface briefly, so it is applied only after confirmation.
#   already done when: docker0 has MAC 02:61:b2:aa:85:c9
#   requires: docker0 has MAC 02:42:c9:52:3d:11
# ip link set dev docker0 address 02:61:b2:aa:85:c9

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
