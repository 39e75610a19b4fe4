"""A practice cluster in network namespaces: ``netdoctor lab``.

The lab builds real node networks (flannel VXLAN, direct routing, Calico with
BIRD, FRR, Open vSwitch GRE/VXLAN meshes) out of network namespaces, veths and
bridges, and runs the daemons each backend needs. It can break and heal them one
fault at a time. Nothing here is imported by ``netdoctor check`` unless it is
asked to collect from a lab.
"""

from netdoctor.lab.plan import BACKENDS, LabPlan, NodePlan, PodPlan, make_plan
from netdoctor.lab.state import LabState, default_state_dir, load_state

__all__ = [
    "BACKENDS",
    "LabPlan",
    "LabState",
    "NodePlan",
    "PodPlan",
    "default_state_dir",
    "load_state",
    "make_plan",
]
