"""The snapshot and finding types: immutable, with a versioned JSON form."""

from netdoctor.model.cluster import ClusterSnapshot, EtcdData, Gap, KubeNode
from netdoctor.model.finding import Evidence, Finding, Severity, make_details
from netdoctor.model.node import (
    Address,
    BgpSession,
    DockerDaemon,
    FirewalldPolicy,
    FirewalldState,
    FirewalldZone,
    FlannelSubnetEnv,
    Interface,
    IptablesChain,
    IptablesMatch,
    IptablesOption,
    IptablesRule,
    IptablesRuleset,
    IptablesTable,
    NodeSnapshot,
    OvsBridge,
    OvsInterface,
    OvsPort,
    Provenance,
    Sysctls,
    TunnelInfo,
    VxlanInfo,
)
from netdoctor.model.routes import (
    FdbEntry,
    FdbTable,
    Neighbour,
    NeighbourTable,
    NextHop,
    Route,
    RouteTable,
)
from netdoctor.model.table import SchemaError

__all__ = [
    "Address", "BgpSession", "ClusterSnapshot", "DockerDaemon", "EtcdData", "Evidence", "FdbEntry",
    "FdbTable", "Finding", "FirewalldPolicy", "FirewalldState", "FirewalldZone", "FlannelSubnetEnv", "Gap", "Interface", "IptablesChain", "IptablesMatch",
    "IptablesOption", "IptablesRule", "IptablesRuleset", "IptablesTable", "KubeNode", "Neighbour",
    "NeighbourTable", "NextHop", "NodeSnapshot", "OvsBridge", "OvsInterface", "OvsPort", "Provenance",
    "Route", "RouteTable", "SchemaError", "Severity", "Sysctls", "TunnelInfo", "VxlanInfo", "make_details",
]
