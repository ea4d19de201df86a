//! How traffic from outside reaches a Service's `externalIPs`. Kubernetes does not route these
//! addresses: whoever runs the network does, to some node, and kube-proxy on that node (on
//! every node) answers for them. k8snet's cloud network routes each one to the first node, as a
//! static route on the cloud router would; an externalIP that is a node's own address needs no
//! route. The internet and the load balancer send them towards the cloud router. In the modes
//! that do not model externalIPs (IPVS, Cilium's replacement) they are not routed at all.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use crate::model::{Cluster, KubeProxyMode};
use crate::net::iptables::host;
use crate::net::route::{Route, RouteProto};

/// Each externalIP that needs a route from outside (not a node's own address), once, with the
/// first Service that names it.
fn routed(cluster: &Cluster) -> Vec<(Ipv4Addr, String)> {
    // Where nothing answers for them (modes that do not model externalIPs), routing them to
    // a node would only show a loop back to the router.
    if !matches!(cluster.kube_proxy, KubeProxyMode::Iptables | KubeProxyMode::Nftables) {
        return Vec::new();
    }
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for s in &cluster.services {
        for &ip in &s.external_ips {
            if cluster.nodes.iter().any(|n| n.ip == ip) || !seen.insert(ip) {
                continue;
            }
            out.push((ip, s.qualified_name()));
        }
    }
    out
}

/// The node the cloud network sends externalIPs to.
pub fn gateway_node(cluster: &Cluster) -> Option<usize> {
    (!cluster.nodes.is_empty()).then_some(0)
}

/// The cloud router's static routes: each externalIP via the first node, out of the interface
/// on that node's subnet (`device` names the interface of the k-th subnet).
pub fn router_routes(cluster: &Cluster, subnets: &[Ipv4Net], device: impl Fn(usize) -> String) -> Vec<Route> {
    let Some(node) = gateway_node(cluster).map(|n| &cluster.nodes[n]) else {
        return Vec::new();
    };
    let subnet = cluster.node_subnet(node);
    let k = subnets.iter().position(|s| *s == subnet).unwrap_or(0);
    routed(cluster)
        .into_iter()
        .map(|(ip, service)| {
            let mut r = Route::unicast(host(ip), Some(node.ip), &device(k)).with_origin(format!(
                "externalIP of {service}: the network sends it to {}, where kube-proxy answers for it",
                node.name
            ));
            r.proto = RouteProto::Static;
            r
        })
        .collect()
}

/// Routes towards the cluster for the externalIPs outside the node network, out of `dev`.
pub fn inbound_routes(cluster: &Cluster, dev: &str) -> Vec<Route> {
    routed(cluster)
        .into_iter()
        .filter(|(ip, _)| !cluster.node_network.contains(ip))
        .map(|(ip, service)| Route::unicast(host(ip), None, dev).with_origin(format!("externalIP of {service}")))
        .collect()
}
