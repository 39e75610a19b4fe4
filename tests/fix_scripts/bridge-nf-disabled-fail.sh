#!/bin/sh
# netdoctor fix plan: 3 step(s) on 1 node(s), built from bundle:bridge-nf-disabled-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node3 ===
if [ "$netdoctor_host" = node3 ] || [ "${netdoctor_host%%.*}" = node3 ]; then
echo 'netdoctor: running the steps for node3'

# Step 1 [safe] Send bridged traffic through iptables
#   check: bridge-nf-disabled; fixer: enable-bridge-nf
#   why: Pods on docker0 depend on iptables chain KUBE-SERVICES, which bridged traffic skips while the key is 0.
#   already done when: net.bridge.bridge-nf-call-iptables = 1
sysctl -w net.bridge.bridge-nf-call-iptables=1

# Step 2 [safe] Keep net.bridge.bridge-nf-call-iptables = 1 after a reboot (/etc/sysctl.d/90-netdoctor-bridge-nf.conf)
#   check: bridge-nf-disabled; fixer: enable-bridge-nf
#   why: The value resets at boot unless a file under /etc/sysctl.d sets it.
#   already done when: /etc/sysctl.d/90-netdoctor-bridge-nf.conf contains the expected text
mkdir -p /etc/sysctl.d
cat > /etc/sysctl.d/90-netdoctor-bridge-nf.conf <<'EOF'
# Written by netdoctor: pods on a bridge depend on iptables.
net.bridge.bridge-nf-call-iptables = 1
EOF

# Step 3 [display-only] Load br_netfilter now and at boot
#   check: bridge-nf-disabled; fixer: enable-bridge-nf
#   why: The net.bridge sysctls exist only while br_netfilter is loaded.
# modprobe br_netfilter
# echo br_netfilter > /etc/modules-load.d/br_netfilter.conf

else
echo 'netdoctor: skipped the steps for node3: this host is '"$netdoctor_host" >&2
fi
