//! Calico (projectcalico/calico v3.29) with its own IPAM and BGP (BIRD), as `calico-node`
//! programs a node:
//!
//! - IPAM gives each node blocks of the IP pool (`blockSize`, /26 by default). k8snet takes a
//!   node's blocks from its podCIDR: those holding its pods (Calico claims a block when it first
//!   needs an address in it), or the first one for a node without pods.
//! - No bridge: each pod's host-side veth is `cali…`, with no address and `proxy_arp` on, and
//!   the node routes each local pod with a `/32` to it. The pod's default route points at
//!   169.254.1.1, which nobody holds: the `cali…` interface answers its ARP.
//! - A blackhole route for each of the node's own blocks, so an address of a block with no pod
//!   goes nowhere instead of out of the default route.
//! - Per other node's block a route learnt by BGP: via the node (`None`), through `tunl0`
//!   (IP-in-IP) or `vxlan.calico` (VNI 4096, UDP 4789, programmed by Felix). The CrossSubnet
//!   modes encapsulate only towards nodes on another subnet.
//!
//! Routes to other nodes' blocks are the same on every node of one subnet but for the node's
//! own, so one list is made per subnet and shared.

use std::net::Ipv4Addr;
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::{NodeWiring, PodWiring, net};
use crate::compile::names::prefixed_veth;
use crate::model::{CalicoPool, Cluster, Encapsulation, Pod};
use crate::net::route::{Route, RouteProto, RouteTable, RouteType, Scope};
use crate::net::vxlan::{Mac, VtepPeer, Vxlan};
use crate::net::{Interface, Link};

/// The pods' gateway: link-local, held by no interface.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(169, 254, 1, 1);
pub const VXLAN_DEVICE: &str = "vxlan.calico";
pub const IPIP_DEVICE: &str = "tunl0";
const VNI: u32 = 4096;
const VXLAN_PORT: u16 = 4789;

pub(super) struct Calico {
    pool: CalicoPool,
    /// Per node, its blocks.
    blocks: Vec<Vec<Ipv4Net>>,
    /// Per subnet (in `Cluster::subnets` order), the routes to every node's blocks as a node
    /// of that subnet holds them; node `j`'s are at `ranges[j]`.
    tables: Vec<Arc<RouteTable>>,
    ranges: Vec<std::ops::Range<usize>>,
    vteps: Arc<Vec<VtepPeer>>,
}

/// The blocks of `pod_cidr` that hold one of `ips`, in address order; the first block when
/// none does.
fn blocks_of(pod_cidr: Ipv4Net, size: u8, ips: impl Iterator<Item = Ipv4Addr>) -> Vec<Ipv4Net> {
    let mut blocks: Vec<Ipv4Net> = ips.map(|ip| net(ip, size).trunc()).collect();
    blocks.sort();
    blocks.dedup();
    if blocks.is_empty() {
        blocks.push(net(pod_cidr.addr(), size).trunc());
    }
    blocks
}

/// The tunnel address of a node: the first address of its first block, as Calico's IPAM hands
/// the tunnel device the first address it allocates.
fn tunnel_addr(blocks: &[Ipv4Net]) -> Ipv4Addr {
    blocks[0].addr()
}

impl Calico {
    pub fn new(cluster: &Cluster) -> Calico {
        let pool = cluster.calico.expect("a Calico cluster has its pool");
        let blocks: Vec<Vec<Ipv4Net>> = (0..cluster.nodes.len())
            .map(|i| {
                let ips = cluster.pods_on(i).filter(|(_, p)| !p.host_network).map(|(_, p)| p.ip);
                blocks_of(cluster.nodes[i].pod_cidr, pool.block_size, ips)
            })
            .collect();
        let mut ranges = Vec::with_capacity(blocks.len());
        let mut at = 0;
        for b in &blocks {
            ranges.push(at..at + b.len());
            at += b.len();
        }
        let subnets = cluster.subnets();
        let tables = subnets
            .iter()
            .map(|here| {
                let routes = cluster
                    .nodes
                    .iter()
                    .zip(&blocks)
                    .flat_map(|(n, bs)| {
                        let across = cluster.node_subnet(n) != *here;
                        bs.iter()
                            .map(move |b| peer_route(pool.encapsulation, across, *b, n.ip, tunnel_addr(bs), &n.name))
                    })
                    .collect();
                Arc::new(RouteTable::new("calico", routes))
            })
            .collect();
        let vteps = cluster
            .nodes
            .iter()
            .zip(&blocks)
            .map(|(n, bs)| VtepPeer {
                addr: tunnel_addr(bs),
                mac: Mac::local_from(0x66, n.ip),
                remote: n.ip,
                owner: format!("node {}", n.name),
            })
            .collect();
        Calico {
            pool,
            blocks,
            tables,
            ranges,
            vteps: Arc::new(vteps),
        }
    }

    pub fn pod(&self, pod: &Pod, pod_host: usize) -> PodWiring {
        let name = prefixed_veth("cali", &pod.namespace, &pod.name);
        let mut cali = Interface::new(
            &name,
            Link::Veth {
                peer_host: pod_host,
                peer_if: "eth0".into(),
            },
            Vec::new(),
        );
        cali.proxy_arp = true;
        let mut to_pod = Route::unicast(net(pod.ip, 32), None, &name)
            .with_origin(format!("Calico's route to its local pod {}", pod.qualified_name()));
        to_pod.scope = Scope::Link;
        PodWiring {
            addr: net(pod.ip, 32),
            host_if: cali,
            node_routes: vec![to_pod],
        }
    }

    pub fn node(&self, cluster: &Cluster, i: usize) -> NodeWiring {
        let node = &cluster.nodes[i];
        let blocks = &self.blocks[i];
        let mut wiring = NodeWiring::default();
        for b in blocks {
            wiring.main.push(Route {
                kind: RouteType::Blackhole,
                dev: None,
                proto: RouteProto::Bird,
                scope: Scope::Global,
                ..Route::unicast(*b, None, "eth0")
                    .with_origin("Calico: the node's own block, so its unallocated addresses go nowhere")
            });
        }
        let tunnel = net(tunnel_addr(blocks), 32);
        let enc = self.pool.encapsulation;
        if matches!(enc, Encapsulation::Vxlan | Encapsulation::VxlanCrossSubnet) {
            wiring.local.extend(Route::connected(tunnel, VXLAN_DEVICE).1);
            wiring.interfaces.push(Interface::new(
                VXLAN_DEVICE,
                Link::Vxlan(Vxlan {
                    vni: VNI,
                    port: VXLAN_PORT,
                    local: node.ip,
                    underlay: "eth0".into(),
                    mac: self.vteps[i].mac,
                    mtu: 1500 - Vxlan::OVERHEAD,
                    peers: Arc::clone(&self.vteps),
                    own: Some(i),
                }),
                vec![tunnel],
            ));
        }
        if matches!(enc, Encapsulation::Ipip | Encapsulation::IpipCrossSubnet) {
            wiring.local.extend(Route::connected(tunnel, IPIP_DEVICE).1);
            wiring.interfaces.push(Interface::new(
                IPIP_DEVICE,
                Link::Ipip {
                    local: node.ip,
                    underlay: "eth0".into(),
                },
                vec![tunnel],
            ));
        }
        let subnet = cluster.node_subnet(node);
        let table = cluster.subnets().iter().position(|s| *s == subnet).unwrap_or(0);
        wiring.shared = Some((Arc::clone(&self.tables[table]), self.ranges[i].clone()));
        wiring
    }
}

/// Every Calico pod's routes: to 169.254.1.1, and through it everywhere.
pub(super) fn pod_routes() -> Vec<Route> {
    vec![
        Route::unicast(Ipv4Net::default(), Some(GATEWAY), "eth0")
            .with_origin("Calico's default route: 169.254.1.1, answered by proxy ARP on the host side"),
        Route::unicast(net(GATEWAY, 32), None, "eth0")
            .with_origin("Calico's route to its gateway, which lies outside the pod's /32"),
    ]
}

/// The route to one block of another node, as a node sees it: direct, or through a tunnel.
fn peer_route(
    enc: Encapsulation,
    across: bool,
    block: Ipv4Net,
    node_ip: Ipv4Addr,
    vtep: Ipv4Addr,
    owner: &str,
) -> Route {
    let vxlan = enc == Encapsulation::Vxlan || (enc == Encapsulation::VxlanCrossSubnet && across);
    let ipip = enc == Encapsulation::Ipip || (enc == Encapsulation::IpipCrossSubnet && across);
    if vxlan {
        return Route::unicast(block, Some(vtep), VXLAN_DEVICE)
            .onlink()
            .with_origin(format!(
                "Felix (VXLAN): {owner}'s block, through the tunnel to its VTEP"
            ));
    }
    let r = if ipip {
        Route::unicast(block, Some(node_ip), IPIP_DEVICE)
            .onlink()
            .with_origin(format!("BGP (BIRD), IP-in-IP: {owner}'s block via {owner}"))
    } else {
        Route::unicast(block, Some(node_ip), "eth0").with_origin(format!("BGP (BIRD): {owner}'s block via {owner}"))
    };
    Route {
        proto: RouteProto::Bird,
        ..r
    }
}
