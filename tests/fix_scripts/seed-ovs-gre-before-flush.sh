#!/bin/sh
# netdoctor fix plan: 8 step(s) on 2 node(s), built from bundle:seed-ovs-gre-before-flush.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [disruptive] Lower the MTU of docker0 from 1500 to 1462
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1462 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1462
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1462

# Step 2 [safe] Accept IP protocol gre from 10.0.2.0/24 before the rule that blocks it
#   check: overlay-port-blocked; fixer: accept-overlay-port
#   why: Peers send IP protocol gre to this node for the overlay (OVS port gre1); the filter rejects it, so every pod path between nodes breaks.
#   already done when: filter rule '-A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT' is present before '-A INPUT -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT
fi

# Step 3 [display-only] Start Docker with --mtu=1462 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1462, or start dockerd with --mtu=1462
# then restart Docker (this restarts the node's containers): systemctl restart docker

# Step 4 [display-only] Recreate the pods behind br0 with MTU 1462
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Both ends of a pod's veth need MTU 1462. Lowering only the host end would make the kernel drop the pod's larger packets without the ICMP error that lets TCP lower its segment size.
# after Docker or the CNI config carries the new MTU, restart the affected containers or pods,
# for example: docker restart CONTAINER, or kubectl delete pod POD (its controller recreates it)

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [disruptive] Lower the MTU of docker0 from 1500 to 1462
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Packets larger than 1462 bytes do not fit the overlay and are dropped; changing an MTU drops packets in flight on that interface, so it is applied only after confirmation.
#   already done when: docker0 MTU is 1462
#   requires: docker0 MTU is 1500
# ip link set dev docker0 mtu 1462

# Step 2 [safe] Accept IP protocol gre from 10.0.2.0/24 before the rule that blocks it
#   check: overlay-port-blocked; fixer: accept-overlay-port
#   why: Peers send IP protocol gre to this node for the overlay (OVS port gre1); the filter rejects it, so every pod path between nodes breaks.
#   already done when: filter rule '-A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT' is present before '-A INPUT -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -s 10.0.2.0/24 -p gre -m comment --comment netdoctor-overlay -j ACCEPT
fi

# Step 3 [display-only] Start Docker with --mtu=1462 so new containers get it
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Docker creates veths with its own MTU; without --mtu new containers come back at 1500.
# /etc/docker/daemon.json: set "mtu": 1462, or start dockerd with --mtu=1462
# then restart Docker (this restarts the node's containers): systemctl restart docker

# Step 4 [display-only] Recreate the pods behind br0 with MTU 1462
#   check: mtu-mismatch; fixer: lower-pod-mtu
#   why: Both ends of a pod's veth need MTU 1462. Lowering only the host end would make the kernel drop the pod's larger packets without the ICMP error that lets TCP lower its segment size.
# after Docker or the CNI config carries the new MTU, restart the affected containers or pods,
# for example: docker restart CONTAINER, or kubectl delete pod POD (its controller recreates it)

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
