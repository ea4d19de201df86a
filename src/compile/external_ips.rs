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

#[cfg(test)]
mod tests {
    use crate::compile::kube_proxy::{self, EXTERNAL_SERVICES, SERVICES, nftables};
    use crate::input::{Source, parse};
    use crate::model::{Cluster, KubeProxyMode};
    use crate::net::iptables::Target;

    fn cluster(mode: KubeProxyMode) -> Cluster {
        let source = Source {
            name: "external-ips".into(),
            text: include_str!("../../scenarios/external-ips.yaml").into(),
        };
        let (spec, _) = parse(&source).unwrap();
        let mut c = crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster;
        c.kube_proxy = mode;
        c
    }

    fn service<'a>(c: &'a Cluster, name: &str) -> &'a crate::model::Service {
        &c.services[c.service_named("default", name).unwrap()]
    }

    /// In KUBE-SERVICES the externalIP rule follows the port's ClusterIP rule and jumps to the
    /// port's KUBE-EXT chain, on every node.
    #[test]
    fn kube_services_sends_an_external_ip_to_the_external_chain_after_the_cluster_ip() {
        let c = cluster(KubeProxyMode::Iptables);
        let s = service(&c, "web");
        let chains = kube_proxy::port_chains(s, &s.ports[0]);
        let proxy = kube_proxy::KubeProxy::new(&c);
        for node in 0..c.nodes.len() {
            let (nat, _) = proxy.tables(node);
            let rules = &nat.chain(SERVICES).unwrap().rules;
            let lines: Vec<String> = rules.iter().map(|r| r.save_line(SERVICES)).collect();
            let at = |text: &str| {
                lines
                    .iter()
                    .position(|l| l.contains(text))
                    .unwrap_or_else(|| panic!("{text}: {lines:#?}"))
            };
            let external = at("-d 203.0.113.50/32");
            assert!(at("-d 10.96.0.10/32") < external);
            assert_eq!(rules[external].target, Target::Jump(chains.ext.clone()));
            assert!(
                nat.chain(&chains.ext).is_some(),
                "a ClusterIP Service with externalIPs has a KUBE-EXT chain"
            );
        }
    }

    /// Under externalTrafficPolicy Local only a node without a local endpoint drops external
    /// traffic to the externalIP; a port without endpoints is rejected everywhere.
    #[test]
    fn kube_external_services_drops_where_no_local_endpoint_and_rejects_without_endpoints() {
        let c = cluster(KubeProxyMode::Iptables);
        let proxy = kube_proxy::KubeProxy::new(&c);
        for (node, drops) in [(0, true), (1, false)] {
            let (_, filter) = proxy.tables(node);
            let rules = &filter.chain(EXTERNAL_SERVICES).unwrap().rules;
            let target_for = |ip: &str| {
                rules
                    .iter()
                    .find(|r| r.save_line(EXTERNAL_SERVICES).contains(&format!("-d {ip}/32")))
                    .map(|r| r.target.clone())
            };
            assert_eq!(target_for("203.0.113.60"), drops.then_some(Target::Drop), "node {node}");
            assert!(
                matches!(target_for("203.0.113.70"), Some(Target::Reject)),
                "node {node}"
            );
        }
    }

    #[test]
    fn service_ips_holds_each_external_ip_and_no_endpoint_services_the_rest() {
        let c = cluster(KubeProxyMode::Nftables);
        let s = service(&c, "web");
        let chains = nftables::port_chains(s, &s.ports[0]);
        let proxy = nftables::KubeProxy::new(&c);
        let key = |ip: [u8; 4], port| crate::net::nftables::Key::service(ip.into(), crate::net::Protocol::Tcp, port);
        for node in 0..c.nodes.len() {
            let table = proxy.table(node);
            let verdict = |set: &str, k| table.element(set, &k).and_then(|e| e.verdict.clone());
            assert_eq!(
                verdict(nftables::SERVICE_IPS, key([203, 0, 113, 50], 80)),
                Some(crate::net::nftables::Verdict::Goto(chains.external.clone()))
            );
            let local_drop = verdict(nftables::NO_ENDPOINT_SERVICES, key([203, 0, 113, 60], 80));
            assert_eq!(local_drop.is_some(), node == 0, "node {node}: {local_drop:?}");
            assert!(verdict(nftables::NO_ENDPOINT_SERVICES, key([203, 0, 113, 70], 80)).is_some());
        }
    }

    #[test]
    fn the_cloud_router_sends_external_ips_to_the_first_node_but_not_a_nodes_own_address() {
        let c = cluster(KubeProxyMode::Iptables);
        let routes = super::router_routes(&c, &c.subnets(), |_| "eth0".to_owned());
        let to: Vec<String> = routes.iter().map(|r| r.to_string()).collect();
        assert_eq!(
            to,
            [
                "203.0.113.50 via 10.100.0.2 dev eth0 proto static",
                "203.0.113.60 via 10.100.0.2 dev eth0 proto static",
                "203.0.113.70 via 10.100.0.2 dev eth0 proto static",
            ]
        );
        assert!(super::router_routes(&cluster(KubeProxyMode::Ipvs), &c.subnets(), |_| "eth0".to_owned()).is_empty());
    }
}
