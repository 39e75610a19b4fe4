#!/bin/sh
# netdoctor fix plan: 2 step(s) on 1 node(s), built from bundle:forward-policy-drop-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Accept forwarded traffic from the pod network 10.244.0.0/16
#   check: forward-policy-drop; fixer: accept-pod-forward
#   why: The FORWARD chain drops traffic between pods on different nodes; this accepts the pod network only.
#   already done when: filter rule '-A FORWARD -s 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT' is present
if iptables -t filter -S FORWARD | grep -qxF -e '-A FORWARD -s 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT'; then
  echo 'netdoctor: already done: -A FORWARD -s 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT'
else
  iptables -t filter -A FORWARD -s 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT
fi

# Step 2 [safe] Accept forwarded traffic to the pod network 10.244.0.0/16
#   check: forward-policy-drop; fixer: accept-pod-forward
#   why: The FORWARD chain drops traffic between pods on different nodes; this accepts the pod network only.
#   already done when: filter rule '-A FORWARD -d 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT' is present
if iptables -t filter -S FORWARD | grep -qxF -e '-A FORWARD -d 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT'; then
  echo 'netdoctor: already done: -A FORWARD -d 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT'
else
  iptables -t filter -A FORWARD -d 10.244.0.0/16 -m comment --comment netdoctor-pod-forward -j ACCEPT
fi

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
