//! flannel (flannel-io/flannel v0.26), its two common backends. Both give each node a `cni0`
//! bridge through the CNI bridge plugin, to which flannel's CNI plugin delegates, and no cloud
//! route: flanneld on every node installs what reaches the other nodes' podCIDRs.
//!
//! - host-gw (`pkg/backend/hostgw`): one route per other node's podCIDR via that node's
//!   address on `eth0`, so every node must be a direct layer-2 neighbour of every other.
//! - VXLAN (`pkg/backend/vxlan`): the `flannel.1` device (VNI 1, UDP 8472, MTU 1450 on a 1500
//!   underlay) holding the podCIDR's network address as a `/32`; per other node a route
//!   `podCIDR via <its .0> dev flannel.1 onlink`, a permanent neighbour entry for that `.0`
//!   with the other VTEP's MAC, and a permanent FDB entry sending that MAC to the node's address.
//!
//! The per-node routes and tunnel entries are the same on every node but for the node's own, so
//! they are made once and shared.

use std::sync::Arc;

use super::{NodeWiring, bridge, net};
use crate::model::{Cluster, Cni};
use crate::net::route::{Route, RouteProto, RouteTable};
use crate::net::vxlan::{Mac, VtepPeer, Vxlan};
use crate::net::{Interface, Link};

pub const BRIDGE: &str = "cni0";
pub const VXLAN_DEVICE: &str = "flannel.1";
const VNI: u32 = 1;
/// The Linux kernel's VXLAN port, flannel's default (not IANA's 4789).
const PORT: u16 = 8472;
const MTU: u32 = 1500 - Vxlan::OVERHEAD;

pub(super) struct Flannel {
    vxlan: bool,
    peers: Arc<RouteTable>,
    vteps: Arc<Vec<VtepPeer>>,
}

impl Flannel {
    pub fn new(cluster: &Cluster) -> Flannel {
        let vxlan = cluster.cni == Cni::FlannelVxlan;
        let routes = cluster
            .nodes
            .iter()
            .map(|n| {
                let r = if vxlan {
                    Route::unicast(n.pod_cidr, Some(n.pod_cidr.addr()), VXLAN_DEVICE)
                        .onlink()
                        .with_origin(format!(
                            "flanneld (vxlan): {}'s podCIDR, through the tunnel to its VTEP",
                            n.name
                        ))
                } else {
                    Route::unicast(n.pod_cidr, Some(n.ip), "eth0")
                        .with_origin(format!("flanneld (host-gw): {}'s podCIDR via {}", n.name, n.name))
                };
                Route {
                    proto: RouteProto::Boot,
                    ..r
                }
            })
            .collect();
        let vteps = if vxlan {
            cluster
                .nodes
                .iter()
                .map(|n| VtepPeer {
                    addr: n.pod_cidr.addr(),
                    mac: vtep_mac(n.ip),
                    remote: n.ip,
                    owner: format!("node {}", n.name),
                })
                .collect()
        } else {
            Vec::new()
        };
        Flannel {
            vxlan,
            peers: Arc::new(RouteTable::new("flannel", routes)),
            vteps: Arc::new(vteps),
        }
    }

    pub fn node(&self, cluster: &Cluster, i: usize) -> NodeWiring {
        let node = &cluster.nodes[i];
        let mut wiring = bridge::node(node, BRIDGE);
        if self.vxlan {
            let addr = net(node.pod_cidr.addr(), 32);
            let (_, local) = Route::connected(addr, VXLAN_DEVICE);
            wiring.local.extend(local);
            wiring.interfaces.push(Interface::new(
                VXLAN_DEVICE,
                Link::Vxlan(Vxlan {
                    vni: VNI,
                    port: PORT,
                    local: node.ip,
                    underlay: "eth0".into(),
                    mac: vtep_mac(node.ip),
                    mtu: MTU,
                    peers: Arc::clone(&self.vteps),
                    own: Some(i),
                }),
                vec![addr],
            ));
        }
        wiring.shared = Some((Arc::clone(&self.peers), i..i + 1));
        wiring
    }
}

/// flannel.1's MAC (the kernel's random one, published in the node's
/// `flannel.alpha.coreos.com/backend-data` annotation), here made from the node's address.
fn vtep_mac(ip: std::net::Ipv4Addr) -> Mac {
    Mac::local_from(0x0e, ip)
}
