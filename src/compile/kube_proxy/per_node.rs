//! The few kube-proxy chains that differ from node to node. Under `externalTrafficPolicy:
//! Local` a node sends external traffic only to its own endpoints: its KUBE-EXT chain ends in a
//! KUBE-SVL chain where it has some, and its KUBE-EXTERNAL-SERVICES chain drops the traffic
//! where it has none. Under `internalTrafficPolicy: Local` the same holds for ClusterIP
//! traffic: the node's KUBE-SERVICES sends it to its KUBE-SVL chain, or (in `filter`) drops it
//! where the node has no endpoint; a Service reachable only inside the cluster then has no
//! KUBE-SVC chain, and KUBE-SEP chains only for the node's own endpoints. Everything else
//! kube-proxy writes is the same on every node.
//!
//! They are made for one node at a time, from what this module keeps of the cluster: only the
//! Services that write such chains, with the node of each endpoint, and (when some Service has
//! `internalTrafficPolicy: Local`) the shared KUBE-SERVICES chains the node's own copies extend.

use std::sync::Arc;

use super::external::{ext_chain, filter_external, filter_rules, fw_chain, ranges_hold_a_node};
use super::{
    EXTERNAL_SERVICES, PortChains, SERVICES, cluster_ip_masquerade, comment, endpoint_rules, jump, port_chains, spread,
    uses_cluster_chain,
};
use crate::model::{Cluster, Service, ServicePort, TrafficPolicy};
use crate::net::iptables::{Chain, Match, Rule, Table, Target, host};

pub(super) struct PerNode {
    pod_network: ipnet::Ipv4Net,
    /// Each node's address, for `loadBalancerSourceRanges` that hold it.
    node_ips: Vec<std::net::Ipv4Addr>,
    /// In the cluster's order, which is the order kube-proxy writes their rules in.
    services: Vec<External>,
    /// The shared `nat` and `filter` tables, read for KUBE-SERVICES when a Service has
    /// `internalTrafficPolicy: Local` (the node's own KUBE-SERVICES is the shared one with that
    /// Service's rules added).
    shared: Option<(Arc<Table>, Arc<Table>)>,
}

struct External {
    service: Service,
    /// Whether a source range holds some node's address, which makes the KUBE-FW chains the
    /// nodes' own.
    own_firewall: bool,
    ports: Vec<Port>,
}

struct Port {
    chains: PortChains,
    /// The node (index into `Cluster::nodes`) of each endpoint, in endpoint order.
    endpoint_nodes: Vec<usize>,
}

impl External {
    fn ports(&self) -> impl Iterator<Item = (&ServicePort, &Port)> {
        self.service.ports.iter().zip(&self.ports)
    }
}

impl Port {
    fn local_endpoints(&self, node: usize) -> Vec<usize> {
        (0..self.endpoint_nodes.len())
            .filter(|&i| self.endpoint_nodes[i] == node)
            .collect()
    }
}

/// A Service that can write rules of a node's own: one reachable from outside the cluster, or
/// one with `internalTrafficPolicy: Local`.
fn writes_own_rules(s: &Service) -> bool {
    s.cluster_ip.is_some()
        && (s.externally_accessible()
            || s.load_balancer_ip.is_some()
            || s.ports.iter().any(|p| p.node_port.is_some())
            || internal_local(s))
}

fn internal_local(s: &Service) -> bool {
    s.internal_traffic_policy == TrafficPolicy::Local
}

/// Whether a port's KUBE-SVL chain (its node's own endpoints) is in use: under either traffic
/// policy Local, for the traffic the policy applies to.
fn uses_local_chain(s: &Service) -> bool {
    internal_local(s) || (s.externally_accessible() && s.external_traffic_policy == TrafficPolicy::Local)
}

impl PerNode {
    pub(super) fn new(cluster: &Cluster, shared_nat: &Arc<Table>, shared_filter: &Arc<Table>) -> PerNode {
        let any_internal_local = cluster
            .services
            .iter()
            .any(|s| s.cluster_ip.is_some() && internal_local(s) && s.ports.iter().any(|p| !p.endpoints.is_empty()));
        let services = cluster
            .services
            .iter()
            .filter(|s| writes_own_rules(s))
            .map(|s| External {
                own_firewall: s.load_balancer_ip.is_some()
                    && !s.load_balancer_source_ranges.is_empty()
                    && ranges_hold_a_node(cluster, s),
                service: s.clone(),
                ports: s
                    .ports
                    .iter()
                    .map(|p| Port {
                        chains: port_chains(s, p),
                        endpoint_nodes: p.endpoints.iter().map(|e| cluster.pods[e.pod].node).collect(),
                    })
                    .collect(),
            })
            .collect();
        PerNode {
            pod_network: cluster.pod_network,
            node_ips: cluster.nodes.iter().map(|n| n.ip).collect(),
            services,
            shared: any_internal_local.then(|| (Arc::clone(shared_nat), Arc::clone(shared_filter))),
        }
    }

    /// The KUBE-EXT and KUBE-SVL chains of `Local` Services on `node`, and under
    /// `internalTrafficPolicy: Local` its KUBE-SERVICES and the KUBE-SEP chains of its own
    /// endpoints.
    pub(super) fn nat_chains(&self, node: usize) -> Vec<Chain> {
        let mut nat = Table::new("nat", &[]);
        let mut dispatch = Vec::new();
        for ext in &self.services {
            let s = &ext.service;
            for (port, p) in ext.ports() {
                if ext.own_firewall && !port.endpoints.is_empty() {
                    let ip = self.node_ips[node];
                    let holds_node = s.load_balancer_source_ranges.iter().any(|r| r.contains(&ip));
                    fw_chain(s, &p.chains, holds_node, &mut nat);
                }
                if port.endpoints.is_empty() || !uses_local_chain(s) {
                    continue;
                }
                let local = p.local_endpoints(node);
                if internal_local(s) && !local.is_empty() {
                    dispatch.push(cluster_ip_dispatch(s, port, &p.chains));
                    nat.append(
                        &p.chains.svl,
                        cluster_ip_masquerade(self.pod_network, s, port, &p.chains),
                    );
                }
                if s.externally_accessible() && s.external_traffic_policy == TrafficPolicy::Local {
                    ext_chain(self.pod_network, s, &p.chains, &local, &mut nat);
                }
                if !local.is_empty() {
                    spread(s, port, &p.chains, &p.chains.svl, &local, &mut nat);
                }
                if !uses_cluster_chain(s) {
                    for &i in &local {
                        endpoint_rules(s, port, &p.chains, i, &mut nat);
                    }
                }
            }
        }
        let mut own = nat.into_own_chains();
        if let Some((shared_nat, _)) = &self.shared
            && let Some(services) = shared_nat.chain(SERVICES)
        {
            // kube-proxy writes Services in no particular order, but the NodePort jump must stay
            // last: the node's Services go just before it.
            let mut rules = services.rules.clone();
            let last = rules.pop();
            rules.extend(dispatch);
            rules.extend(last);
            own.push(Chain {
                name: SERVICES.to_owned(),
                policy: None,
                rules,
            });
        }
        own
    }

    /// KUBE-EXTERNAL-SERVICES on `node`, in kube-proxy's order of Services.
    pub(super) fn filter_chains(&self, node: usize) -> Vec<Chain> {
        let mut filter = Table::new("filter", &[]);
        filter.ensure(EXTERNAL_SERVICES);
        for ext in &self.services {
            let s = &ext.service;
            for (port, p) in ext.ports() {
                if port.endpoints.is_empty() {
                    let name = &p.chains.port_name;
                    filter_external(s, port, name, "has no endpoints", Target::Reject, &mut filter);
                } else if s.externally_accessible() {
                    filter_rules(s, port, &p.chains, &p.local_endpoints(node), &mut filter);
                }
            }
        }
        if let Some((_, shared_filter)) = &self.shared {
            let services = filter.ensure(SERVICES);
            if let Some(shared) = shared_filter.chain(SERVICES) {
                services.rules = shared.rules.clone();
            }
            for ext in &self.services {
                let s = &ext.service;
                if !internal_local(s) {
                    continue;
                }
                for (port, p) in ext.ports() {
                    if !port.endpoints.is_empty() && p.local_endpoints(node).is_empty() {
                        filter.append(SERVICES, no_local_cluster_ip_drop(s, port, &p.chains));
                    }
                }
            }
        }
        filter.into_own_chains()
    }
}

/// KUBE-SERVICES' rule sending a port's ClusterIP traffic to the node's KUBE-SVL chain.
fn cluster_ip_dispatch(s: &Service, port: &ServicePort, chains: &PortChains) -> Rule {
    Rule::new(
        cluster_ip_matches(s, port, format!("{} cluster IP", chains.port_name)),
        jump(&chains.svl),
    )
}

/// The filter rule that drops ClusterIP traffic on a node with no endpoint of a port under
/// `internalTrafficPolicy: Local`.
fn no_local_cluster_ip_drop(s: &Service, port: &ServicePort, chains: &PortChains) -> Rule {
    Rule::new(
        cluster_ip_matches(s, port, format!("{} has no local endpoints", chains.port_name)),
        Target::Drop,
    )
}

fn cluster_ip_matches(s: &Service, port: &ServicePort, text: String) -> Vec<Match> {
    let cluster_ip = s.cluster_ip.expect("headless Services write no rules");
    vec![
        Match::Destination {
            net: host(cluster_ip),
            negated: false,
        },
        Match::Protocol(port.protocol),
        comment(text),
        Match::DestinationPort {
            protocol: port.protocol,
            port: Some(port.port),
        },
    ]
}
