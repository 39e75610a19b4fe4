#!/bin/sh
# netdoctor fix plan: 2 step(s) on 1 node(s), built from bundle:rp-filter-strict-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node1 ===
if [ "$netdoctor_host" = node1 ] || [ "${netdoctor_host%%.*}" = node1 ]; then
echo 'netdoctor: running the steps for node1'

# Step 1 [safe] Set loose reverse-path filtering on eth1
#   check: rp-filter-strict; fixer: loosen-rp-filter
#   why: Strict rp_filter on eth1 drops packets whose route back leaves by eth0.
#   already done when: net.ipv4.conf.eth1.rp_filter = 2
sysctl -w net.ipv4.conf.eth1.rp_filter=2

# Step 2 [safe] Keep net.ipv4.conf.eth1.rp_filter = 2 after a reboot (/etc/sysctl.d/90-netdoctor-rp-filter-eth1.conf)
#   check: rp-filter-strict; fixer: loosen-rp-filter
#   why: The value resets at boot unless a file under /etc/sysctl.d sets it.
#   already done when: /etc/sysctl.d/90-netdoctor-rp-filter-eth1.conf contains the expected text
mkdir -p /etc/sysctl.d
cat > /etc/sysctl.d/90-netdoctor-rp-filter-eth1.conf <<'EOF'
# Written by netdoctor: traffic arriving on eth1 is routed back by another interface.
net.ipv4.conf.eth1.rp_filter = 2
EOF

else
echo 'netdoctor: skipped the steps for node1: this host is '"$netdoctor_host" >&2
fi
