#!/bin/sh
# netdoctor fix plan: 2 step(s) on 1 node(s), built from bundle:calico-stale-blackhole-for-moved-block.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# === node1 ===

# Step 1 [disruptive] Remove the stale blackhole route 10.233.70.192/26
#   check: blackhole-route; fixer: remove-shadowing-blackhole
#   why: 'blackhole 10.233.70.192/26 proto bird' is the most specific route for another node's pods and discards their traffic; removing a route takes effect at once, so it is applied only after confirmation.
#   already done when: route blackhole 10.233.70.192/26 proto bird absent
#   requires: route blackhole 10.233.70.192/26 proto bird present
# ip route del blackhole 10.233.70.192/26 proto bird

# Step 2 [safe] Add the route to node3's pod subnet 10.233.70.192/26
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.233.70.192/26, traffic to node3's pods follows the default route and is lost.
#   already done when: route 10.233.70.192/26 via 10.0.0.53 dev tunl0 onlink present
#   requires: no route to exactly 10.233.70.192/26 in the main table
#   requires: interface tunl0 exists
ip route add 10.233.70.192/26 via 10.0.0.53 dev tunl0 onlink
