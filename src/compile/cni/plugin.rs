//! What differs between the CNI models, put behind one face: each model's decisions for a pod
//! and a node, and the few facts about them the renderers ask for.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::{NODE_NETWORK, bridge, bridge_ip, calico, cilium, flannel};
use crate::model::{Cluster, Cni, Node, Pod, RouteKind};
use crate::net::Interface;
use crate::net::route::{Route, RouteProto, RouteTable, RouteType};

/// The default gateway of `node`'s pods: its bridge's (or `cilium_host`'s) address, or the
/// link-local address Calico answers by proxy ARP.
pub fn pod_gateway(cluster: &Cluster, node: &Node) -> Ipv4Addr {
    match cluster.cni {
        Cni::Calico => calico::GATEWAY,
        _ => bridge_ip(node.pod_cidr),
    }
}

/// The host side of a pod's veth pair, as the cluster's CNI names it.
pub fn pod_veth(cluster: &Cluster, pod: &Pod) -> String {
    match cluster.cni {
        Cni::Calico => crate::compile::names::prefixed_veth("cali", &pod.namespace, &pod.name),
        Cni::Cilium => crate::compile::names::prefixed_veth("lxc", &pod.namespace, &pod.name),
        _ => crate::compile::names::host_veth(&pod.namespace, &pod.name),
    }
}

/// How one plugin wires a pod to its node.
pub(super) struct PodWiring {
    pub addr: Ipv4Net,
    /// The host side of the veth pair.
    pub host_if: Interface,
    /// Routes the node holds for this pod (Calico's and Cilium's `/32` to the pod's veth).
    pub node_routes: Vec<Route>,
}

/// What one plugin adds to a node after `lo` and `eth0`.
#[derive(Default)]
pub(super) struct NodeWiring {
    pub interfaces: Vec<Interface>,
    pub main: Vec<Route>,
    pub local: Vec<Route>,
    /// The routes to other nodes' pods, shared by all nodes, and the part that is this node's.
    pub shared: Option<(Arc<RouteTable>, std::ops::Range<usize>)>,
}

/// The segment name of the subnet a node is on: the one node network, or one per listed subnet.
pub fn segment_of(cluster: &Cluster, subnet: Ipv4Net) -> String {
    match cluster.node_subnets.iter().position(|s| *s == subnet) {
        Some(i) => format!("node-subnet-{}", i + 1),
        None => NODE_NETWORK.to_owned(),
    }
}

/// One plugin's decisions, made once per cluster.
pub(super) enum Plugin {
    Bridge,
    Flannel(flannel::Flannel),
    Calico(calico::Calico),
    Cilium(cilium::Cilium),
}

impl Plugin {
    pub(super) fn of(cluster: &Cluster) -> Plugin {
        match cluster.cni {
            Cni::Bridge => Plugin::Bridge,
            Cni::FlannelHostGw | Cni::FlannelVxlan => Plugin::Flannel(flannel::Flannel::new(cluster)),
            Cni::Calico => Plugin::Calico(calico::Calico::new(cluster)),
            Cni::Cilium => Plugin::Cilium(cilium::Cilium::new(cluster)),
        }
    }

    pub(super) fn pod(&self, node: &Node, pod: &Pod, pod_host: usize) -> PodWiring {
        match self {
            Plugin::Bridge => bridge::pod(node, pod, pod_host, bridge::BRIDGE),
            Plugin::Flannel(_) => bridge::pod(node, pod, pod_host, flannel::BRIDGE),
            Plugin::Calico(c) => c.pod(pod, pod_host),
            Plugin::Cilium(c) => c.pod(pod, pod_host),
        }
    }

    /// The routes every pod of `node` holds besides the one of its address.
    pub(super) fn pod_routes(&self, node: &Node) -> Vec<Route> {
        match self {
            Plugin::Bridge => bridge::pod_routes(node, bridge::BRIDGE),
            Plugin::Flannel(_) => bridge::pod_routes(node, flannel::BRIDGE),
            Plugin::Calico(_) => calico::pod_routes(),
            Plugin::Cilium(_) => cilium::pod_routes(node),
        }
    }

    pub(super) fn node(&self, cluster: &Cluster, i: usize) -> NodeWiring {
        let node = &cluster.nodes[i];
        match self {
            Plugin::Bridge => bridge::node(node, bridge::BRIDGE),
            Plugin::Flannel(f) => f.node(cluster, i),
            Plugin::Calico(c) => c.node(cluster, i),
            Plugin::Cilium(c) => c.node(cluster, i),
        }
    }

    /// The device an extra route's gateway inside the node's pod range is reached through.
    pub(super) fn pod_device(&self) -> &'static str {
        match self {
            Plugin::Bridge => bridge::BRIDGE,
            Plugin::Flannel(_) => flannel::BRIDGE,
            Plugin::Calico(_) => "eth0",
            Plugin::Cilium(_) => cilium::HOST_DEVICE,
        }
    }
}

pub(super) fn extra_route(node: &Node, r: &crate::model::ExtraRoute, pod_device: &str) -> Route {
    let kind = match r.kind {
        RouteKind::Unicast => RouteType::Unicast,
        RouteKind::Blackhole => RouteType::Blackhole,
        RouteKind::Unreachable => RouteType::Unreachable,
        RouteKind::Prohibit => RouteType::Prohibit,
    };
    let dev = match (&r.dev, r.via, kind) {
        (Some(d), _, _) => Some(d.clone()),
        (None, Some(via), RouteType::Unicast) => {
            if node.pod_cidr.contains(&via) {
                Some(pod_device.to_owned())
            } else {
                Some("eth0".to_owned())
            }
        }
        _ => None,
    };
    Route {
        onlink: r.onlink,
        kind,
        dst: r.destination,
        via: r.via,
        dev,
        proto: RouteProto::Boot,
        scope: if r.via.is_some() || kind != RouteType::Unicast {
            crate::net::route::Scope::Global
        } else {
            crate::net::route::Scope::Link
        },
        src: None,
        metric: r.metric,
        origin: format!("extra route from the scenario, line {}", r.line),
    }
}
