#!/bin/sh
# netdoctor fix plan: 4 step(s) on 2 node(s), built from bundle:bgp-peer-down-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# === node1 ===

# Step 1 [safe] Add the route to node3's pod subnet 10.244.3.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.3.0/24, traffic to node3's pods follows the default route and is lost.
#   already done when: route 10.244.3.0/24 via 192.168.100.13 dev eth0 present
#   requires: no route to exactly 10.244.3.0/24 in the main table
#   requires: interface eth0 exists
ip route add 10.244.3.0/24 via 192.168.100.13 dev eth0

# Step 2 [disruptive] Restart the bird BGP session n3
#   check: bgp-peer-down; fixer: restart-bgp-session
#   why: The session is Active, so the peer's pod routes are missing; a restart withdraws the routes it learned until it is Established again, so it is applied only after confirmation.
#   already done when: BGP session n3 is Established
# birdc -s /run/bird/bird.ctl restart n3

# === node3 ===

# Step 1 [safe] Add the route to node1's pod subnet 10.244.1.0/24
#   check: route-missing; fixer: add-peer-route
#   why: Without a route to 10.244.1.0/24, traffic to node1's pods follows the default route and is lost.
#   already done when: route 10.244.1.0/24 via 192.168.100.11 dev eth0 present
#   requires: no route to exactly 10.244.1.0/24 in the main table
#   requires: interface eth0 exists
ip route add 10.244.1.0/24 via 192.168.100.11 dev eth0

# Step 2 [disruptive] Restart the bird BGP session n1
#   check: bgp-peer-down; fixer: restart-bgp-session
#   why: The session is Active, so the peer's pod routes are missing; a restart withdraws the routes it learned until it is Established again, so it is applied only after confirmation.
#   already done when: BGP session n1 is Established
# birdc -s /run/bird/bird.ctl restart n1
