#!/bin/sh
# netdoctor fix plan: 2 step(s) on 1 node(s), built from bundle:calico-stale-blackhole-for-moved-block.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Remove the stale blackhole route 10.233.70.192/26
#   check: blackhole-route; fixer: remove-shadowing-blackhole
#   why: 'blackhole 10.233.70.192/26 proto bird' is the most specific route for another node's pods and discards their traffic; removing a route takes effect at once, so it is applied only after confirmation.
#   already done when: route blackhole 10.233.70.192/26 proto bird is absent
#   requires: route blackhole 10.233.70.192/26 proto bird is present
# ip route del blackhole 10.233.70.192/26 proto bird

# Step 2 [display-only] Restore the BGP route to node3's pod block 10.233.70.192/26
#   check: route-missing; fixer: add-peer-route
#   why: BGP (BIRD or FRR) programs the routes to peers' blocks on this node: once the session to the peer is Established and no local route shadows the block, the daemon installs the route again ('birdc show route for ADDRESS all' or 'vtysh -c "show ip bgp ADDRESS"' shows why it does not). A static route added by hand would take precedence over BGP and stay behind when the block moves.
# Only as a stop-gap while BGP is being repaired, and remove it afterwards: ip route add 10.233.70.192/26 via 10.0.0.53 dev tunl0 onlink

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
