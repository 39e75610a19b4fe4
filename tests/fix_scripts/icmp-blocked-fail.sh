#!/bin/sh
# netdoctor fix plan: 3 step(s) on 1 node(s), built from bundle:icmp-blocked-fail.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.

# Each node's steps run only on the host of that name (short names count too). To run a
# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.
netdoctor_host="${NETDOCTOR_NODE:-$(uname -n)}"

# === node2 ===
if [ "$netdoctor_host" = node2 ] || [ "${netdoctor_host%%.*}" = node2 ]; then
echo 'netdoctor: running the steps for node2'

# Step 1 [safe] Accept ICMP echo-reply arriving on eth0
#   check: icmp-blocked; fixer: accept-icmp
#   why: ICMP echo-reply arriving on eth0 is dropped, which breaks ping-based health checks and diagnosis; only this ICMP type is opened.
#   already done when: filter rule '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 0 -m comment --comment netdoctor-accept-icmp -j ACCEPT' is present before '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 0 -m comment --comment netdoctor-accept-icmp -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -i eth0 -p icmp -m icmp --icmp-type 0 -m comment --comment netdoctor-accept-icmp -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -i eth0 -p icmp -m icmp --icmp-type 0 -m comment --comment netdoctor-accept-icmp -j ACCEPT
fi

# Step 2 [safe] Accept ICMP echo-request arriving on eth0
#   check: icmp-blocked; fixer: accept-icmp
#   why: ICMP echo-request arriving on eth0 is dropped, which breaks ping-based health checks and diagnosis; only this ICMP type is opened.
#   already done when: filter rule '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment netdoctor-accept-icmp -j ACCEPT' is present before '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment netdoctor-accept-icmp -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment netdoctor-accept-icmp -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -i eth0 -p icmp -m icmp --icmp-type 8 -m comment --comment netdoctor-accept-icmp -j ACCEPT
fi

# Step 3 [safe] Accept ICMP fragmentation-needed arriving on eth0
#   check: icmp-blocked; fixer: accept-icmp
#   why: ICMP fragmentation-needed arriving on eth0 is dropped, which breaks path MTU discovery; only this ICMP type is opened.
#   already done when: filter rule '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 3/4 -m comment --comment netdoctor-accept-icmp -j ACCEPT' is present before '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited'
#   requires: filter rule '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' is present
netdoctor_line=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited' | head -n 1 | cut -d: -f1)
netdoctor_done=$(iptables -t filter -S INPUT | grep -nxF -e '-A INPUT -i eth0 -p icmp -m icmp --icmp-type 3/4 -m comment --comment netdoctor-accept-icmp -j ACCEPT' | head -n 1 | cut -d: -f1)
if [ -z "$netdoctor_line" ]; then
  echo 'netdoctor: skipped: the rule -A INPUT -p icmp -j REJECT --reject-with icmp-host-prohibited is gone, so there is no place to insert before it; run netdoctor fix again' >&2
elif [ -n "$netdoctor_done" ] && [ "$netdoctor_done" -lt "$netdoctor_line" ]; then
  echo 'netdoctor: already done: -A INPUT -i eth0 -p icmp -m icmp --icmp-type 3/4 -m comment --comment netdoctor-accept-icmp -j ACCEPT'
else
  iptables -t filter -I INPUT "$((netdoctor_line - 1))" -i eth0 -p icmp -m icmp --icmp-type 3/4 -m comment --comment netdoctor-accept-icmp -j ACCEPT
fi

else
echo 'netdoctor: skipped the steps for node2: this host is '"$netdoctor_host" >&2
fi
