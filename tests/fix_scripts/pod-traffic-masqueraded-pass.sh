#!/bin/sh
# netdoctor fix plan: 0 step(s) on 0 node(s), built from bundle:pod-traffic-masqueraded-pass.
# Safe steps run as written. Disruptive steps are commented out: review each one and remove
# its leading '# ' to run it. Display-only steps are notes and never run.
# Nothing to fix: no finding has a fixer.
