#!/bin/sh
# netdoctor fix plan: 6 step(s) on 2 node(s), built from bundle:bgp-peer-down-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Restart the bird BGP session n3
#   check: bgp-peer-down; fixer: restart-bgp-session
#   why: The session is Active, so the peer's pod routes are missing; a restart withdraws the routes it learned until it is Established again, so it is applied only after confirmation.
#   already done when: BGP session n3 is Established
# birdc -s /run/bird/bird.ctl restart n3

# Step 2 [safe] Make BIRD export its routes again, node3's block 10.244.3.0/24 among them
#   check: route-missing; fixer: add-peer-route
#   why: BIRD does not notice a route deleted from the kernel until its next scan; 'reload out' sends every route it holds to the kernel and its peers again without resetting a session.
#   already done when: route 10.244.3.0/24 is present
birdc -s /run/bird/bird.ctl reload out all

# Step 3 [display-only] Restore the BGP route to node3's pod block 10.244.3.0/24
#   check: route-missing; fixer: add-peer-route
#   why: BGP (BIRD or FRR) programs the routes to peers' blocks on this node: once the session to the peer is Established and no local route shadows the block, the daemon installs the route again ('birdc show route for ADDRESS all' or 'vtysh -c "show ip bgp ADDRESS"' shows why it does not). A static route added by hand would take precedence over BGP and stay behind when the block moves.
# Only as a stop-gap while BGP is being repaired, and remove it afterwards: ip route add 10.244.3.0/24 via 192.168.100.13 dev eth0

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [disruptive] Restart the bird BGP session n1
#   check: bgp-peer-down; fixer: restart-bgp-session
#   why: The session is Active, so the peer's pod routes are missing; a restart withdraws the routes it learned until it is Established again, so it is applied only after confirmation.
#   already done when: BGP session n1 is Established
# birdc -s /run/bird/bird.ctl restart n1

# Step 2 [safe] Make BIRD export its routes again, node1's block 10.244.1.0/24 among them
#   check: route-missing; fixer: add-peer-route
#   why: BIRD does not notice a route deleted from the kernel until its next scan; 'reload out' sends every route it holds to the kernel and its peers again without resetting a session.
#   already done when: route 10.244.1.0/24 is present
birdc -s /run/bird/bird.ctl reload out all

# Step 3 [display-only] Restore the BGP route to node1's pod block 10.244.1.0/24
#   check: route-missing; fixer: add-peer-route
#   why: BGP (BIRD or FRR) programs the routes to peers' blocks on this node: once the session to the peer is Established and no local route shadows the block, the daemon installs the route again ('birdc show route for ADDRESS all' or 'vtysh -c "show ip bgp ADDRESS"' shows why it does not). A static route added by hand would take precedence over BGP and stay behind when the block moves.
# Only as a stop-gap while BGP is being repaired, and remove it afterwards: ip route add 10.244.1.0/24 via 192.168.100.11 dev eth0

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
