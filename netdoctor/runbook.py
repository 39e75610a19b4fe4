"""Render fix plans as a pasteable shell script or a Markdown runbook.

The script runs only safe steps when pasted: disruptive steps are commented
out with the reason, and display-only steps are notes. The runbook gives, per
node and in dependency order, why each step is needed, its commands, how to
verify it and how to roll it back.
"""

from __future__ import annotations

import logging
import shlex

from netdoctor.fix import (
    FixPlan,
    Safety,
    Step,
    ovs_appctl,
    ovs_vsctl,
    render_operation,
    render_step,
)

logger = logging.getLogger(__name__)


def _where(plan: FixPlan) -> str:
    parts = []
    if plan.netns:
        parts.append(f"netns {plan.netns}")
    if plan.root != "/":
        parts.append(f"root {plan.root}")
    return f" ({', '.join(parts)})" if parts else ""


def _step_header(number: int, step: Step) -> list[str]:
    lines = [f"# Step {number} [{step.safety.label}] {step.title}", f"#   check: {step.check}; fixer: {step.fixer}"]
    lines.append(f"#   why: {step.why}")
    if step.done is not None:
        lines.append(f"#   already done when: {step.done.describe()}")
    for condition in step.preconditions:
        lines.append(f"#   requires: {condition.describe()}")
    return lines


#: The shell variable that contains the host name that each node section of a script compares.
HOST_VARIABLE = "netdoctor_host"

#: The lines that set :data:`HOST_VARIABLE`, from ``NETDOCTOR_NODE`` or else the host's name.
HOST_LINES = (
    "# Each node's steps run only on the host of that name (short names count too). To run a",
    "# node's steps on a host with another name, set NETDOCTOR_NODE=NODE for the run.",
    f'{HOST_VARIABLE}="${{NETDOCTOR_NODE:-$(uname -n)}}"',
)


def host_guard(node: str) -> tuple[list[str], list[str]]:
    """Return the lines that open and close the part of a script that runs only on the host named ``node``.

    The part runs when ``NETDOCTOR_NODE``, else ``uname -n``, is ``node``, has
    ``node`` as its first label, or is the first label of a ``node`` that has a
    domain, and prints a line to stderr when it skips. The
    opening lines include a command, so a part whose steps are all comments is
    still valid shell.
    """
    quoted = shlex.quote(node)
    message = shlex.quote(f"netdoctor: skipped the steps for {node}: this host is ")
    tests = [f'[ "${HOST_VARIABLE}" = {quoted} ]', f'[ "${{{HOST_VARIABLE}%%.*}}" = {quoted} ]']
    short = node.partition(".")[0]
    if short != node and short:
        tests.append(f'[ "${HOST_VARIABLE}" = {shlex.quote(short)} ]')
    opening = [
        f"if {' || '.join(tests)}; then",
        f"echo {shlex.quote(f'netdoctor: running the steps for {node}')}",
    ]
    closing = ["else", f'echo {message}"${HOST_VARIABLE}" >&2', "fi"]
    return opening, closing


def render_script(plans: list[FixPlan], source: str) -> str:
    """Render plans as a commented shell script that is safe to paste.

    Plans built from a bundle or a snapshot file describe other machines, so
    each node's steps are wrapped in :func:`host_guard` and run only on that host.
    """
    steps = sum(len(plan.steps) for plan in plans)
    lines = [
        "#!/bin/sh",
        f"# netdoctor fix plan: {steps} step(s) on {len(plans)} node(s), built from {source}.",
        "# Safe steps run as written. Disruptive steps are commented out: review each one and remove",
        "# its leading '# ' to run it. Display-only steps are notes and never run.",
    ]
    if not plans:
        lines.append("# Nothing to fix: no finding has a fixer.")
    if any(not plan.applicable for plan in plans):
        lines += ["", *HOST_LINES]
    for plan in plans:
        lines += ["", f"# === {plan.node}{_where(plan)} ==="]
        opening, closing = host_guard(plan.node) if not plan.applicable else ([], [])
        lines += opening
        for number, step in enumerate(plan.steps, start=1):
            lines.append("")
            lines += _step_header(number, step)
            commands = render_step(plan, step)
            if step.safety == Safety.SAFE:
                lines += commands
            else:
                lines += [line if line.startswith("#") else f"# {line}" for line in commands]
        if closing:
            lines += ["", *closing]
    return "\n".join(lines) + "\n"


def render_runbook(plans: list[FixPlan], source: str, findings: list[str] | None = None,
                   gaps: list[str] | None = None) -> str:
    """Render plans as a Markdown runbook: per node, each step's why, commands, verification and roll back.

    ``gaps`` lists what netdoctor could not collect or check, which no step covers.
    """
    order = (f"Built from {source}. Steps are in dependency order: etcd data, then sysctls and files, links, "
             "neighbours and FDB, routes, filter rules, daemons, and last the display-only steps that restart services.")
    levels = ("Safety levels: **safe** adds or corrects state without cutting traffic; **disruptive** interrupts "
              "traffic and needs confirmation; **display-only** is done by hand and never applied by netdoctor.")
    lines = ["# netdoctor runbook", "", order, "", levels, ""]
    if findings:
        lines += ["## Findings", ""] + [f"- {summary}" for summary in findings] + [""]
    if gaps:
        lines += ["## Not collected or not checked", "",
                  "netdoctor could not look at these parts, so no step below covers them.", ""]
        lines += [f"- {gap}" for gap in gaps] + [""]
    if not plans:
        lines += ["Nothing to fix: no finding has a fixer.", ""]
    for plan in plans:
        lines += [f"## {plan.node}{_where(plan)}", ""]
        for number, step in enumerate(plan.steps, start=1):
            lines += [f"### {number}. {step.title} ({step.safety.label})", ""]
            lines += [f"**Why:** {step.why}", "", f"Finding: `{step.check}`; fixer: `{step.fixer}`.", ""]
            if step.preconditions:
                lines += ["**Before you start**, check that:", ""]
                lines += [f"- {condition.describe()}" for condition in step.preconditions] + [""]
            lines += ["**Commands:**", "", "```sh", *render_step(plan, step), "```", ""]
            lines += ["**Verify:** " + _verify(plan, step), ""]
            lines += ["**Roll back:**", ""] + _rollback(plan, step) + [""]
    return "\n".join(lines).rstrip("\n") + "\n"


#: The Open vSwitch clients in verify commands, with the function that points each at a node's sockets.
_OVS_CLIENTS = {"ovs-appctl": ovs_appctl, "ovs-vsctl": ovs_vsctl}

#: The roll-back note for a step that has no inverse, by the kind of its action.
_NO_INVERSE = {
    "bird-restart": "No inverse: the step restarts a BGP session, which returns to its configured state by itself.",
    "frr-clear": "No inverse: the step restarts a BGP session, which returns to its configured state by itself.",
    "bird-reload-out": "No inverse: BIRD sends the routes it already holds again and keeps its sessions up.",
    "ovs-fdb-flush": "No inverse: the bridge learns the flushed MACs again from the frames it forwards.",
}


def _on_node(plan: FixPlan, command: str) -> str:
    """Return ``command`` as it runs on the plan's node: inside its namespace, with node paths under its root."""
    if plan.root not in ("", "/"):
        root = plan.root.rstrip("/")
        command = " ".join(f"{root}{word}" if word.startswith(("/etc/", "/run/", "/var/")) else word
                           for word in command.split(" "))
        # Open vSwitch clients use the host's sockets under /run unless a node's socket is given.
        program, _, rest = command.partition(" ")
        client = _OVS_CLIENTS.get(program)
        if client is not None:
            command = f"{shlex.join(client(plan))} {rest}".rstrip()
    if plan.netns:
        command = f"ip netns exec {plan.netns} {command}"
    return command


def _verify(plan: FixPlan, step: Step) -> str:
    if step.verify and step.done is not None:
        return f"`{_on_node(plan, step.verify)}` shows that {step.done.describe()}."
    if step.verify:
        return f"`{_on_node(plan, step.verify)}`"
    if step.done is not None:
        return f"{step.done.describe()}."
    return "run `netdoctor check` again; the finding is gone."


def _rollback(plan: FixPlan, step: Step) -> list[str]:
    if step.safety == Safety.DISPLAY_ONLY:
        return ["Nothing to roll back: netdoctor does not run this step."]
    if step.inverse is None:
        kind = step.action.kind if step.action is not None else ""
        return [_NO_INVERSE.get(kind, "No inverse: netdoctor cannot revert this step; review it before you run it.")]
    lines = ["```sh", *render_operation(plan, step.inverse), "```"]
    if step.action is not None and step.action.kind in ("file", "sysctl", "link-mtu", "etcd-put"):
        lines.append("")
        lines.append("`netdoctor fix --undo JOURNAL` restores the exact previous value recorded when the step ran.")
    return lines
