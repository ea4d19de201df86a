//! kube-proxy in nftables mode: the `ip kube-proxy` table it writes on a node, following
//! `pkg/proxy/nftables/proxier.go` (Kubernetes v1.31): base chains at `dstnat - 10`, `dstnat`,
//! `dstnat + 10` and `srcnat`, dispatch through the `service-ips` and `service-nodeports`
//! verdict maps, one `numgen random mod N vmap` rule per Service chain, and the
//! `no-endpoint-*`, `firewall-ips` and `cluster-ips` checks in the filter chains.
//!
//! As in iptables mode, what is the same on every node is built once and shared; a node's own
//! part holds only what its local endpoints or its address change (`NodePart`).

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use data_encoding::BASE32;
use ipnet::Ipv4Net;
use sha2::{Digest, Sha256};

mod setup;

use super::uses_cluster_chain;
use crate::model::{Cluster, Service, ServicePort, TrafficPolicy};
use crate::net::nftables::{Addrs, Element, Field, Key, Match, Part, Rule, Set, Statement, Table, Verdict};

pub const TABLE: &str = "kube-proxy";
pub const SERVICES: &str = "services";
pub const SERVICE_IPS: &str = "service-ips";
pub const SERVICE_NODEPORTS: &str = "service-nodeports";
pub const NODEPORT_IPS: &str = "nodeport-ips";
pub const CLUSTER_IPS: &str = "cluster-ips";
pub const SERVICE_ENDPOINTS_CHECK: &str = "service-endpoints-check";
pub const NODEPORT_ENDPOINTS_CHECK: &str = "nodeport-endpoints-check";
pub const NO_ENDPOINT_SERVICES: &str = "no-endpoint-services";
pub const NO_ENDPOINT_NODEPORTS: &str = "no-endpoint-nodeports";
pub const REJECT_CHAIN: &str = "reject-chain";
pub const CLUSTER_IPS_CHECK: &str = "cluster-ips-check";
pub const FIREWALL_IPS: &str = "firewall-ips";
pub const FIREWALL_CHECK: &str = "firewall-check";
pub const MARK_MASQ: &str = "mark-for-masquerade";
pub const MASQUERADING: &str = "masquerading";

/// `hashAndTruncate`: the first 8 characters of the name's base32 SHA-256, a dash, the name.
fn hashed(name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    format!("{}-{name}", &BASE32.encode(&digest)[..8])
}

/// The chain names of one Service port.
pub struct PortChains {
    /// `namespace/name:port` as in comments (`svcPortName.String()`).
    pub port_name: String,
    pub service: String,
    pub local: String,
    pub external: String,
    pub firewall: String,
    /// One per endpoint, in the order of `ServicePort::endpoints`.
    pub endpoints: Vec<String>,
    pub affinity: Vec<String>,
}

pub fn port_chains(service: &Service, port: &ServicePort) -> PortChains {
    let base = format!(
        "{}/{}/{}/{}",
        service.namespace,
        service.name,
        port.protocol.lower(),
        port.name.as_deref().unwrap_or("")
    );
    let suffix = hashed(&base);
    let per_endpoint: Vec<String> = port
        .endpoints
        .iter()
        .map(|e| hashed(&format!("{base}__{}/{}", e.ip, e.port)))
        .collect();
    PortChains {
        port_name: super::super::names::service_port_name(service, port),
        service: format!("service-{suffix}"),
        local: format!("local-{suffix}"),
        external: format!("external-{suffix}"),
        firewall: format!("firewall-{suffix}"),
        endpoints: per_endpoint.iter().map(|s| format!("endpoint-{s}")).collect(),
        affinity: per_endpoint.iter().map(|s| format!("affinity-{s}")).collect(),
    }
}

/// The port's chain names in the shape iptables mode's facts carry them: `svc` is the
/// `service-` chain, `svl` the `local-`, `ext` the `external-` and `fw` the `firewall-` chain.
pub fn as_iptables_shape(service: &Service, port: &ServicePort) -> super::PortChains {
    let c = port_chains(service, port);
    super::PortChains {
        port_name: c.port_name,
        svc: c.service,
        svl: c.local,
        ext: c.external,
        fw: c.firewall,
        endpoints: c.endpoints,
    }
}

fn jump(chain: &str) -> Statement {
    Statement::Verdict(Verdict::Jump(chain.to_owned()))
}

fn goto(chain: &str) -> Verdict {
    Verdict::Goto(chain.to_owned())
}

fn from_net(net: Ipv4Net, negated: bool) -> Match {
    Match::Addr {
        field: Field::Saddr,
        negated,
        addrs: Addrs::Net(net),
    }
}

/// kube-proxy's `ip kube-proxy` table for a whole cluster: the part every node shares, held
/// once, and each node's own part, made the first time the node's table is read.
pub struct KubeProxy {
    shared: Arc<Part>,
    nodes: Arc<NodeParts>,
}

impl KubeProxy {
    pub fn new(cluster: &Cluster) -> KubeProxy {
        let mut shared = Part::default();
        setup::setup(&mut shared);
        let mut own = Vec::new();
        for s in cluster.services.iter().filter(|s| s.cluster_ip.is_some()) {
            let cx = Cx {
                pod_network: cluster.pod_network,
                node: None,
                node_ip: None,
                firewall_per_node: super::external::ranges_hold_a_node(cluster, s),
            };
            let chains: Vec<PortChains> = s.ports.iter().map(|p| port_chains(s, p)).collect();
            for (port, names) in s.ports.iter().zip(&chains) {
                service_port(&cx, s, port, names, &[], &mut shared);
            }
            if depends_on_node(s, cx.firewall_per_node) {
                let endpoint_nodes = s
                    .ports
                    .iter()
                    .map(|p| p.endpoints.iter().map(|e| cluster.pods[e.pod].node).collect())
                    .collect();
                own.push(NodeService {
                    service: s.clone(),
                    endpoint_nodes,
                    firewall_per_node: cx.firewall_per_node,
                    chains,
                });
            }
        }
        KubeProxy {
            shared: Arc::new(shared),
            nodes: Arc::new(NodeParts {
                pod_network: cluster.pod_network,
                node_ips: cluster.nodes.iter().map(|n| n.ip).collect(),
                services: own,
            }),
        }
    }

    /// `node`'s table: the shared part with the node's own on top.
    pub fn table(&self, node: usize) -> Table {
        let nodes = Arc::clone(&self.nodes);
        Table::layered(
            TABLE,
            Some("rules for kube-proxy"),
            Arc::clone(&self.shared),
            Arc::new(move || nodes.part(node)),
        )
    }
}

/// What the nodes' own parts are made from: the Services whose rules differ from node to node.
struct NodeParts {
    pod_network: Ipv4Net,
    node_ips: Vec<Ipv4Addr>,
    services: Vec<NodeService>,
}

/// A Service whose rules differ from node to node, with what every node's part needs of it
/// worked out once: the node of each endpoint (per port) and the chain names.
struct NodeService {
    service: Service,
    endpoint_nodes: Vec<Vec<usize>>,
    firewall_per_node: bool,
    chains: Vec<PortChains>,
}

impl NodeParts {
    fn part(&self, node: usize) -> Part {
        let mut part = Part::default();
        // kube-proxy in nftables mode takes NodePorts on the node's primary address only
        // (`--nodeport-addresses primary`, its default in this mode).
        if let Some(ip) = self.node_ips.get(node) {
            part.add_element(
                NODEPORT_IPS,
                Element {
                    key: Key::addr(*ip),
                    comment: None,
                    verdict: None,
                },
            );
        }
        for ns in &self.services {
            let cx = Cx {
                pod_network: self.pod_network,
                node: Some(node),
                node_ip: self.node_ips.get(node).copied(),
                firewall_per_node: ns.firewall_per_node,
            };
            for ((port, nodes), names) in ns.service.ports.iter().zip(&ns.endpoint_nodes).zip(&ns.chains) {
                service_port(&cx, &ns.service, port, names, nodes, &mut part);
            }
        }
        part
    }
}

/// Whether some of a Service's rules differ from node to node.
fn depends_on_node(s: &Service, firewall_per_node: bool) -> bool {
    s.internal_traffic_policy == TrafficPolicy::Local || external_local(s) || firewall_per_node
}

fn externally_accessible(s: &Service) -> bool {
    s.externally_accessible()
}

fn external_local(s: &Service) -> bool {
    externally_accessible(s) && s.external_traffic_policy == TrafficPolicy::Local
}

/// `UsesLocalEndpoints`: a policy that applies to some of the port's traffic is `Local`.
fn uses_local_endpoints(s: &Service) -> bool {
    s.internal_traffic_policy == TrafficPolicy::Local || external_local(s)
}

/// A node's iptables `nat` table in nftables mode: kube-proxy writes none of it, only the
/// masquerade agent's rules remain. Held once for every node.
pub fn nat(cluster: &Cluster) -> Arc<crate::net::iptables::Table> {
    let mut nat = crate::net::iptables::Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    super::super::kubenet::masquerade_rules(cluster, &mut nat);
    Arc::new(nat)
}

/// The pass a Service port is written in: the shared one (`node` is `None`) writes what is the
/// same everywhere, a node's writes only what differs on that node.
struct Cx {
    pod_network: Ipv4Net,
    node: Option<usize>,
    node_ip: Option<Ipv4Addr>,
    firewall_per_node: bool,
}

impl Cx {
    /// Whether this pass writes something that depends on the node (or not).
    fn writes(&self, per_node: bool) -> bool {
        per_node == self.node.is_some()
    }
}

fn element(key: Key, comment: Option<&str>, verdict: Verdict) -> Element {
    Element {
        key,
        comment: comment.map(str::to_owned),
        verdict: Some(verdict),
    }
}

/// One Service port, in `syncProxyRules`' order; `endpoint_nodes` holds each endpoint's node
/// in a node's pass (and is empty in the shared one, which needs none).
fn service_port(cx: &Cx, s: &Service, port: &ServicePort, chains: &PortChains, endpoint_nodes: &[usize], p: &mut Part) {
    let Some(cluster_ip) = s.cluster_ip else {
        return;
    };
    let name = chains.port_name.as_str();
    let proto = port.protocol;
    let all: Vec<usize> = (0..port.endpoints.len()).collect();
    let local: Vec<usize> = match cx.node {
        Some(n) => all
            .iter()
            .copied()
            .filter(|&i| endpoint_nodes.get(i) == Some(&n))
            .collect(),
        None => Vec::new(),
    };
    let has_endpoints = !all.is_empty();
    let internal_local = s.internal_traffic_policy == TrafficPolicy::Local;
    let ext_local = external_local(s);
    let uses_cluster = has_endpoints && uses_cluster_chain(s);
    let uses_local = !local.is_empty() && uses_local_endpoints(s);
    let has_internal = has_endpoints && !(internal_local && local.is_empty());
    let has_external = has_endpoints && !(ext_local && local.is_empty());
    let uses_external = has_endpoints && externally_accessible(s);
    let uses_firewall = s.load_balancer_ip.is_some() && !s.load_balancer_source_ranges.is_empty();
    let internal_chain = if internal_local { &chains.local } else { &chains.service };
    let (internal_verdict, external_verdict) = if has_endpoints {
        (Verdict::Drop, Verdict::Drop)
    } else {
        (goto(REJECT_CHAIN), goto(REJECT_CHAIN))
    };

    // Chains first, in the order kube-proxy makes them: endpoints, policies, external,
    // firewall.
    let reachable: Vec<usize> = if uses_cluster { all.clone() } else { local.clone() };
    if cx.writes(!uses_cluster) {
        for &i in &reachable {
            p.chain(&chains.endpoints[i]);
        }
    }
    if uses_cluster && cx.writes(false) {
        p.chain(&chains.service);
    }
    if uses_local && cx.writes(true) {
        p.chain(&chains.local);
    }
    if uses_external && cx.writes(ext_local) {
        p.chain(&chains.external);
    }
    if uses_firewall && cx.writes(cx.firewall_per_node) {
        p.chain(&chains.firewall);
    }

    if cx.writes(false) {
        p.add_element(
            CLUSTER_IPS,
            Element {
                key: Key::addr(cluster_ip),
                comment: None,
                verdict: None,
            },
        );
    }
    let cluster_ip_key = Key::service(cluster_ip, proto, port.port);
    if cx.writes(internal_local) {
        if has_internal {
            p.add_element(SERVICE_IPS, element(cluster_ip_key, None, goto(internal_chain)));
        } else {
            p.add_element(
                NO_ENDPOINT_SERVICES,
                element(cluster_ip_key, Some(name), internal_verdict),
            );
        }
    }
    // kube-proxy captures externalIPs after the ClusterIP and before the load-balancer address.
    for &ip in &s.external_ips {
        let key = Key::service(ip, proto, port.port);
        if has_endpoints && cx.writes(false) {
            p.add_element(SERVICE_IPS, element(key, None, goto(&chains.external)));
        }
        if !has_external && cx.writes(ext_local && has_endpoints) {
            p.add_element(NO_ENDPOINT_SERVICES, element(key, Some(name), external_verdict.clone()));
        }
    }
    if let Some(lb) = s.load_balancer_ip {
        let key = Key::service(lb, proto, port.port);
        if cx.writes(false) {
            if has_endpoints {
                p.add_element(SERVICE_IPS, element(key, None, goto(&chains.external)));
            }
            if uses_firewall {
                p.add_element(FIREWALL_IPS, element(key, None, goto(&chains.firewall)));
            }
        }
        if !has_external && cx.writes(ext_local && has_endpoints) {
            p.add_element(NO_ENDPOINT_SERVICES, element(key, Some(name), external_verdict.clone()));
        }
    }
    if let Some(np) = port.node_port {
        let key = Key::node_port(proto, np);
        if has_endpoints && cx.writes(false) {
            p.add_element(SERVICE_NODEPORTS, element(key, None, goto(&chains.external)));
        }
        if !has_external && cx.writes(ext_local && has_endpoints) {
            p.add_element(NO_ENDPOINT_NODEPORTS, element(key, Some(name), external_verdict));
        }
    }

    if has_internal && cx.writes(internal_local) {
        p.append(
            internal_chain,
            Rule::new(
                vec![
                    Match::Addr {
                        field: Field::Daddr,
                        negated: false,
                        addrs: Addrs::Net(crate::net::iptables::host(cluster_ip)),
                    },
                    Match::Dport {
                        protocol: proto,
                        port: port.port,
                    },
                    from_net(cx.pod_network, true),
                ],
                jump(MARK_MASQ),
            ),
        );
    }
    if uses_external && cx.writes(ext_local) {
        external_chain(cx, s, chains, has_external, p);
    }
    if uses_firewall && cx.writes(cx.firewall_per_node) {
        let mut sources: Vec<Ipv4Net> = s.load_balancer_source_ranges.clone();
        let from_node = cx
            .node_ip
            .is_some_and(|ip| s.load_balancer_source_ranges.iter().any(|r| r.contains(&ip)));
        if let (true, Some(lb)) = (from_node, s.load_balancer_ip) {
            sources.push(crate::net::iptables::host(lb));
        }
        p.append(
            &chains.firewall,
            Rule::new(
                vec![Match::Addr {
                    field: Field::Saddr,
                    negated: true,
                    addrs: Addrs::List(sources),
                }],
                Statement::Verdict(Verdict::Drop),
            ),
        );
    }
    if let Some(seconds) = s.session_affinity_timeout
        && cx.writes(!uses_cluster)
    {
        for &i in &reachable {
            p.add_set(Set::timed(&chains.affinity[i], seconds));
        }
    }
    if uses_cluster && cx.writes(false) {
        spread(s, chains, &chains.service, &all, p);
    }
    if uses_local && cx.writes(true) {
        spread(s, chains, &chains.local, &local, p);
    }
    if cx.writes(!uses_cluster) {
        for &i in &reachable {
            endpoint_chain(s, port, chains, i, p);
        }
    }
}

/// The external chain: masquerade under `Cluster`; under `Local` the short cuts for pods and
/// the node itself, then the node's own endpoints where it has some.
fn external_chain(cx: &Cx, s: &Service, chains: &PortChains, has_external: bool, p: &mut Part) {
    let ext = &chains.external;
    if !external_local(s) {
        p.append(ext, Rule::new(Vec::new(), jump(MARK_MASQ)));
    } else {
        p.append(
            ext,
            Rule::new(
                vec![from_net(cx.pod_network, false)],
                Statement::Verdict(goto(&chains.service)),
            )
            .commented("short-circuit pod traffic"),
        );
        p.append(
            ext,
            Rule::new(vec![Match::FibLocal(Field::Saddr)], jump(MARK_MASQ)).commented("masquerade local traffic"),
        );
        p.append(
            ext,
            Rule::new(
                vec![Match::FibLocal(Field::Saddr)],
                Statement::Verdict(goto(&chains.service)),
            )
            .commented("short-circuit local traffic"),
        );
    }
    if has_external {
        let policy = if external_local(s) {
            &chains.local
        } else {
            &chains.service
        };
        p.append(ext, Rule::new(Vec::new(), Statement::Verdict(goto(policy))));
    }
}

/// `writeServiceToEndpointRules`: affinity first, then one `numgen` rule over `endpoints`.
fn spread(s: &Service, chains: &PortChains, chain: &str, endpoints: &[usize], p: &mut Part) {
    if s.session_affinity_timeout.is_some() {
        for &i in endpoints {
            p.append(
                chain,
                Rule::new(
                    vec![Match::Addr {
                        field: Field::Saddr,
                        negated: false,
                        addrs: Addrs::Set(chains.affinity[i].clone()),
                    }],
                    Statement::Verdict(goto(&chains.endpoints[i])),
                ),
            );
        }
    }
    let branches = endpoints.iter().map(|&i| goto(&chains.endpoints[i])).collect();
    p.append(chain, Rule::new(Vec::new(), Statement::Numgen(branches)));
}

fn endpoint_chain(s: &Service, port: &ServicePort, chains: &PortChains, i: usize, p: &mut Part) {
    let e = &port.endpoints[i];
    let chain = &chains.endpoints[i];
    p.append(
        chain,
        Rule::new(vec![from_net(crate::net::iptables::host(e.ip), false)], jump(MARK_MASQ)),
    );
    if s.session_affinity_timeout.is_some() {
        p.append(
            chain,
            Rule::new(Vec::new(), Statement::UpdateSource(chains.affinity[i].clone())),
        );
    }
    p.append(
        chain,
        Rule::new(
            vec![Match::L4proto(port.protocol)],
            Statement::Dnat(SocketAddrV4::new(e.ip, e.port)),
        ),
    );
}

/// What a drop or reject by the table means, read from the element that decided it: a
/// `no-endpoint-*` element rejects for a port with no endpoints at all, and drops for one whose
/// policy is `Local` on a node without a local endpoint (for ClusterIP traffic when the
/// address is in `@cluster-ips`).
pub fn verdict_for(table: &Table, rule: &str) -> Option<crate::trace::Verdict> {
    use crate::trace::Verdict as V;
    let (map, rest) = if let Some(r) = rule.split_once(&format!("@{NO_ENDPOINT_SERVICES}: ")) {
        (NO_ENDPOINT_SERVICES, r.1)
    } else {
        (
            NO_ENDPOINT_NODEPORTS,
            rule.split_once(&format!("@{NO_ENDPOINT_NODEPORTS}: "))?.1,
        )
    };
    if rest.ends_with(&format!(": goto {REJECT_CHAIN}")) {
        return Some(V::NoEndpoints);
    }
    let addr: Option<Ipv4Addr> = rest.split(' ').next().and_then(|a| a.parse().ok());
    let internal =
        map == NO_ENDPOINT_SERVICES && addr.is_some_and(|a| table.element(CLUSTER_IPS, &Key::addr(a)).is_some());
    Some(if internal {
        V::NoLocalEndpointsInternal
    } else {
        V::NoLocalEndpoints
    })
}

#[cfg(test)]
#[path = "nftables_tests.rs"]
mod tests;
