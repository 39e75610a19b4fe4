#!/bin/sh
# netdoctor fix plan: 1 step(s) on 1 node(s), built from bundle:pod-traffic-masqueraded-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Keep pod source addresses for traffic within 10.244.0.0/16
#   check: pod-traffic-masqueraded; fixer: return-before-masquerade
#   why: The masquerading rule rewrites the source of pod-to-pod traffic, so peers see the node's address instead of the pod's; a RETURN for the pod network ends the walk before it.
#   already done when: nat rule '-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment netdoctor-pod-return -j RETURN' is present before '-A POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE'
#   requires: nat rule '-A POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE' is present
netdoctor_line=$(iptables -t nat -S POSTROUTING | grep -nxF -e '-A POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t nat -S POSTROUTING | grep -nxF -e '-A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment netdoctor-pod-return -j RETURN' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A POSTROUTING -s 10.244.1.0/24 ! -o docker0 -j MASQUERADE is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A POSTROUTING -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment netdoctor-pod-return -j RETURN'
else
  iptables -t nat -I POSTROUTING "$((netdoctor_line - 1))" -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment netdoctor-pod-return -j RETURN
fi

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
