#!/bin/sh
# netdoctor fix plan: 2 step(s) on 1 node(s), built from bundle:ip-forward-disabled-after-reboot.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Turn on IPv4 forwarding
#   check: ip-forward-disabled; fixer: enable-ip-forward
#   why: With net.ipv4.ip_forward = 0 the kernel drops pod traffic that must cross this node.
#   already done when: net.ipv4.ip_forward = 1
sysctl -w net.ipv4.ip_forward=1

# Step 2 [safe] Keep IPv4 forwarding on after a reboot (/etc/sysctl.d/90-netdoctor-ip-forward.conf)
#   check: ip-forward-disabled; fixer: enable-ip-forward
#   why: The sysctl resets to 0 at boot unless a file under /etc/sysctl.d sets it.
#   already done when: /etc/sysctl.d/90-netdoctor-ip-forward.conf contains the expected text
mkdir -p /etc/sysctl.d
cat > /etc/sysctl.d/90-netdoctor-ip-forward.conf <<'EOF'
# Written by netdoctor: pod traffic is routed through this node.
net.ipv4.ip_forward = 1
EOF

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
