//! Cilium (cilium/cilium v1.16) in native-routing mode (`routing-mode: native`,
//! `auto-direct-node-routes: true`): each node's podCIDR is routed natively, with one route per
//! other node's podCIDR via that node's address, and no tunnel. The node holds `cilium_host`
//! (one end of the `cilium_host`/`cilium_net` veth pair) with the router address, the first of
//! its podCIDR here, which every pod uses as its gateway; each pod's host-side veth is `lxc…`.
//!
//! Cilium forwards with eBPF programs on those devices. k8snet models them by their observable
//! effect, not instruction by instruction: the program on `lxc…` answering the pod's ARP for
//! its gateway appears as proxy ARP, and the delivery to a local pod as a `/32` route to its
//! `lxc…` device — the routes that Cilium's own legacy host routing installs, and that the
//! kernel suite builds. With `kubeProxy: none` its kube-proxy replacement translates Services
//! at the socket (see `compile::socket_lb`).

use std::sync::Arc;

use ipnet::Ipv4Net;

use super::{NodeWiring, PodWiring, bridge_ip, net};
use crate::compile::names::prefixed_veth;
use crate::model::{Cluster, Node, Pod};
use crate::net::route::{Route, RouteTable, Scope};
use crate::net::{Interface, Link};

pub const HOST_DEVICE: &str = "cilium_host";
const NET_DEVICE: &str = "cilium_net";

pub(super) struct Cilium {
    peers: Arc<RouteTable>,
}

/// The router address: what `cilium_host` holds and every pod's gateway.
fn router_ip(node: &Node) -> std::net::Ipv4Addr {
    bridge_ip(node.pod_cidr)
}

/// A Cilium pod's routes: to the router address, and through it everywhere.
pub(super) fn pod_routes(node: &Node) -> Vec<Route> {
    let router = router_ip(node);
    vec![
        Route::unicast(Ipv4Net::default(), Some(router), "eth0").with_origin(format!(
            "Cilium's default route: via the router address {router} on cilium_host"
        )),
        Route::unicast(net(router, 32), None, "eth0")
            .with_origin("Cilium's route to the router address, which lies outside the pod's /32"),
    ]
}

impl Cilium {
    pub fn new(cluster: &Cluster) -> Cilium {
        let routes = cluster
            .nodes
            .iter()
            .map(|n| {
                Route::unicast(n.pod_cidr, Some(n.ip), "eth0").with_origin(format!(
                    "cilium-agent (auto-direct-node-routes): {}'s podCIDR via {}",
                    n.name, n.name
                ))
            })
            .collect();
        Cilium {
            peers: Arc::new(RouteTable::new("cilium", routes)),
        }
    }

    pub fn pod(&self, pod: &Pod, pod_host: usize) -> PodWiring {
        let name = prefixed_veth("lxc", &pod.namespace, &pod.name);
        let mut lxc = Interface::new(
            &name,
            Link::Veth {
                peer_host: pod_host,
                peer_if: "eth0".into(),
            },
            Vec::new(),
        );
        lxc.proxy_arp = true;
        let mut to_pod = Route::unicast(net(pod.ip, 32), None, &name).with_origin(format!(
            "bpf_lxc's delivery to pod {}, modelled as a route",
            pod.qualified_name()
        ));
        to_pod.scope = Scope::Link;
        PodWiring {
            addr: net(pod.ip, 32),
            host_if: lxc,
            node_routes: vec![to_pod],
        }
    }

    pub fn node(&self, cluster: &Cluster, i: usize) -> NodeWiring {
        let node = &cluster.nodes[i];
        let router = net(router_ip(node), 32);
        let (_, local) = Route::connected(router, HOST_DEVICE);
        let mut host_end = Interface::new(
            HOST_DEVICE,
            Link::Veth {
                peer_host: i,
                peer_if: NET_DEVICE.into(),
            },
            vec![router],
        );
        host_end.proxy_arp = false;
        let net_end = Interface::new(
            NET_DEVICE,
            Link::Veth {
                peer_host: i,
                peer_if: HOST_DEVICE.into(),
            },
            Vec::new(),
        );
        let mut own = Route::unicast(node.pod_cidr, Some(router.addr()), HOST_DEVICE)
            .with_origin("cilium-agent: the node's own podCIDR, through cilium_host");
        own.src = Some(router.addr());
        NodeWiring {
            interfaces: vec![host_end, net_end],
            main: vec![own],
            local,
            shared: Some((Arc::clone(&self.peers), i..i + 1)),
        }
    }
}
