//! The CNI bridge plugin (containernetworking/plugins `plugins/main/bridge`, v1.x) with
//! host-local IPAM, as kubenet configured it: a bridge per node holding the first address of
//! the node's podCIDR (`isGateway: true`), one veth pair per pod with its host side a port of the
//! bridge, and the pod's default route via the bridge. Other nodes' pods are reached through the
//! node's default route: the cloud router holds one route per podCIDR (see `compile::cloud`).
//! flannel delegates to the same plugin, with its own bridge name.

use ipnet::Ipv4Net;

use super::{NodeWiring, PodWiring, bridge_ip, net};
use crate::compile::names::host_veth;
use crate::model::{HairpinMode, Node, Pod};
use crate::net::route::Route;
use crate::net::{Interface, Link};

/// kubenet's bridge name.
pub const BRIDGE: &str = "cbr0";

pub(super) fn pod(node: &Node, pod: &Pod, pod_host: usize, bridge: &str) -> PodWiring {
    let mut port = Interface::new(
        &host_veth(&pod.namespace, &pod.name),
        Link::Veth {
            peer_host: pod_host,
            peer_if: "eth0".into(),
        },
        Vec::new(),
    );
    port.master = Some(bridge.into());
    port.hairpin = node.hairpin == HairpinMode::HairpinVeth;
    PodWiring {
        addr: net(pod.ip, node.pod_cidr.prefix_len()),
        host_if: port,
        node_routes: Vec::new(),
    }
}

/// The pods' default route, via the bridge.
pub(super) fn pod_routes(node: &Node, bridge: &str) -> Vec<Route> {
    vec![
        Route::unicast(Ipv4Net::default(), Some(bridge_ip(node.pod_cidr)), "eth0")
            .with_origin(format!("the CNI's default route: via the node's bridge {bridge}")),
    ]
}

/// The bridge with the pods' gateway address, and the connected route of the podCIDR it makes.
pub(super) fn node(node: &Node, bridge: &str) -> NodeWiring {
    let addr = net(bridge_ip(node.pod_cidr), node.pod_cidr.prefix_len());
    let (route, local) = Route::connected(addr, bridge);
    let mut dev = Interface::new(bridge, Link::Bridge, vec![addr]);
    dev.promiscuous = node.hairpin == HairpinMode::PromiscuousBridge;
    NodeWiring {
        interfaces: vec![dev],
        main: vec![route],
        local,
        shared: None,
    }
}
