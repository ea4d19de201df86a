//! The few kube-proxy chains that differ from node to node. Under `externalTrafficPolicy:
//! Local` a node sends external traffic only to its own endpoints: its KUBE-EXT chain ends in a
//! KUBE-SVL chain where it has some, and its KUBE-EXTERNAL-SERVICES chain drops the traffic
//! where it has none. Everything else kube-proxy writes is the same on every node.
//!
//! They are made for one node at a time, from what this module keeps of the cluster: only the
//! Services that write such chains, with the node of each endpoint.

use super::external::{ext_chain, filter_external, filter_rules};
use super::{EXTERNAL_SERVICES, PortChains, port_chains, spread};
use crate::model::{Cluster, Service, ServicePort, ServiceType, TrafficPolicy};
use crate::net::iptables::{Chain, Table, Target};

pub(super) struct PerNode {
    pod_network: ipnet::Ipv4Net,
    /// In the cluster's order, which is the order kube-proxy writes their rules in.
    services: Vec<External>,
}

struct External {
    service: Service,
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

/// A Service that can write rules of a node's own: one reachable from outside the cluster.
fn reachable_from_outside(s: &Service) -> bool {
    s.cluster_ip.is_some()
        && (s.kind != ServiceType::ClusterIP
            || s.load_balancer_ip.is_some()
            || s.ports.iter().any(|p| p.node_port.is_some()))
}

impl PerNode {
    pub(super) fn new(cluster: &Cluster) -> PerNode {
        let services = cluster
            .services
            .iter()
            .filter(|s| reachable_from_outside(s))
            .map(|s| External {
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
            services,
        }
    }

    /// The KUBE-EXT and KUBE-SVL chains of `Local` Services on `node`.
    pub(super) fn nat_chains(&self, node: usize) -> Vec<Chain> {
        let mut nat = Table::new("nat", &[]);
        for ext in &self.services {
            let s = &ext.service;
            if s.kind == ServiceType::ClusterIP || s.external_traffic_policy != TrafficPolicy::Local {
                continue;
            }
            for (port, p) in ext.ports() {
                if port.endpoints.is_empty() {
                    continue;
                }
                let local = p.local_endpoints(node);
                ext_chain(self.pod_network, s, &p.chains, &local, &mut nat);
                if !local.is_empty() {
                    spread(s, port, &p.chains, &p.chains.svl, &local, &mut nat);
                }
            }
        }
        nat.into_own_chains()
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
                } else if s.kind != ServiceType::ClusterIP {
                    filter_rules(s, port, &p.chains, &p.local_endpoints(node), &mut filter);
                }
            }
        }
        filter.into_own_chains()
    }
}
