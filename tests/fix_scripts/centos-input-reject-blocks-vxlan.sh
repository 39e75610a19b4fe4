#!/bin/sh
# netdoctor fix plan: 3 step(s) on 3 node(s), built from bundle:centos-input-reject-blocks-vxlan.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Accept udp/8472 from 10.0.1.0/24 before the rule that blocks it
#   check: overlay-port-blocked; fixer: accept-overlay-port
#   why: Peers send udp/8472 to this node for the overlay (flannel.1 (flannel VXLAN)); the filter rejects it, so every pod path between nodes breaks.
#   already done when: filter rule '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' is present before '-A INPUT -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT
fi

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Accept udp/8472 from 10.0.1.0/24 before the rule that blocks it
#   check: overlay-port-blocked; fixer: accept-overlay-port
#   why: Peers send udp/8472 to this node for the overlay (flannel.1 (flannel VXLAN)); the filter rejects it, so every pod path between nodes breaks.
#   already done when: filter rule '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' is present before '-A INPUT -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT
fi

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Accept udp/8472 from 10.0.1.0/24 before the rule that blocks it
#   check: overlay-port-blocked; fixer: accept-overlay-port
#   why: Peers send udp/8472 to this node for the overlay (flannel.1 (flannel VXLAN)); the filter rejects it, so every pod path between nodes breaks.
#   already done when: filter rule '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' is present before '-A INPUT -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -s 10.0.1.0/24 -p udp -m udp --dport 8472 -m comment --comment netdoctor-overlay -j ACCEPT
fi

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
