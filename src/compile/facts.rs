//! What `explain` shows that is not a field of a host: which load-balancer backends pass their
//! health check, the chains kube-proxy names after each Service port, the rules of each port
//! on each node (grouped where nodes agree), and the rules no Service owns. The compiler
//! gathers them so the renderer only lays them out.

use std::collections::{HashMap, HashSet};

use super::cloud::{Backend, lb_backends};
use super::kube_proxy::{EXTERNAL_SERVICES, NODEPORTS, PROXY_FIREWALL, PortChains, SERVICES, port_chains};
use super::names::service_port_name;
use crate::model::{Cluster, TrafficPolicy};
use crate::net::iptables::Table;
use crate::net::{NetState, Role};

pub struct Facts {
    /// For each Service with a load-balancer address, in the cluster's order: the nodes its
    /// load balancer considers.
    pub load_balancer: Vec<(usize, Vec<Backend>)>,
    /// `-t TABLE` lines of the rules no single Service owns, as the first node holds them.
    pub shared_rules: Vec<String>,
    /// For each Service asked about, its ports' chains and rules.
    pub services: HashMap<usize, Vec<PortFacts>>,
}

pub struct PortFacts {
    pub chains: PortChains,
    /// The port's rules, one group per set of nodes that hold the same ones, in node order.
    pub groups: Vec<RuleGroup>,
}

pub struct RuleGroup {
    /// Names of the nodes holding these rules.
    pub nodes: Vec<String>,
    pub every_node: bool,
    /// `-t TABLE -A CHAIN ...` lines in the order a packet meets them.
    pub lines: Vec<String>,
}

/// Gathers what `explain` shows about `services` (indices into `Cluster::services`), and with
/// `whole`, about the cluster as a whole.
pub fn gather(c: &Cluster, state: &NetState, services: &[usize], whole: bool) -> Facts {
    let nodes: Vec<usize> = (0..state.hosts.len())
        .filter(|&h| matches!(state.hosts.role(h), Role::Node { .. }))
        .collect();
    Facts {
        load_balancer: if whole {
            c.services
                .iter()
                .enumerate()
                .filter(|(_, s)| s.load_balancer_ip.is_some())
                .map(|(i, s)| (i, lb_backends(c, s)))
                .collect()
        } else {
            Vec::new()
        },
        shared_rules: if whole {
            shared_rules(c, state, &nodes)
        } else {
            Vec::new()
        },
        services: services
            .iter()
            .filter(|&&si| c.services[si].cluster_ip.is_some())
            .map(|&si| (si, ports(c, state, &nodes, si)))
            .collect(),
    }
}

/// Whether `comment` names the port `port_name`: it is the name, or starts with it and a space.
fn names_port(comment: &str, port_name: &str) -> bool {
    comment
        .strip_prefix(port_name)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))
}

/// The rules no single Service owns: the hooks into kube-proxy's chains, the masquerade mark and
/// its use, and the egress masquerade for traffic leaving the pod network.
fn shared_rules(c: &Cluster, state: &NetState, nodes: &[usize]) -> Vec<String> {
    let Some(&node) = nodes.first() else {
        return Vec::new();
    };
    let node = &state.hosts[node];
    let mut service_chains: HashSet<String> = HashSet::new();
    let mut port_names: HashSet<String> = HashSet::new();
    for s in &c.services {
        for p in &s.ports {
            let chains = port_chains(s, p);
            service_chains.extend([chains.svc, chains.svl, chains.ext, chains.fw]);
            service_chains.extend(chains.endpoints);
            port_names.insert(service_port_name(s, p));
        }
    }
    // A comment names a port when it is the port's name, or the name and then a space.
    let per_service = |comment: &str| {
        port_names.contains(comment)
            || comment
                .match_indices(' ')
                .any(|(i, _)| port_names.contains(&comment[..i]))
    };
    let mut lines = Vec::new();
    for table in [&node.nat, &node.filter] {
        for chain in table.saved_order() {
            if service_chains.contains(&chain.name) {
                continue;
            }
            for rule in &chain.rules {
                // Per-Service dispatch rules are listed with their Service.
                if !rule.comment().is_some_and(per_service) {
                    lines.push(format!("-t {} {}", table.name, rule.save_line(&chain.name)));
                }
            }
        }
    }
    lines
}

/// The lines of `table` that belong to one Service port, in the order a packet meets them
/// (dispatch, entry chains, endpoint choice, DNAT), which reads better than iptables-save's
/// alphabetical order: rules in the shared dispatch chains whose comment names the port, then
/// every rule of the port's own chains. No other chain holds a rule whose comment names it.
fn port_rules(table: &Table, port_name: &str, own_chains: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    for name in [SERVICES, NODEPORTS, EXTERNAL_SERVICES, PROXY_FIREWALL] {
        let Some(chain) = table.chain(name) else { continue };
        for rule in &chain.rules {
            if rule.comment().is_some_and(|c| names_port(c, port_name)) {
                lines.push(format!("-t {} {}", table.name, rule.save_line(name)));
            }
        }
    }
    let mut seen: HashSet<&str> = HashSet::new();
    for name in own_chains {
        if !seen.insert(name) {
            continue;
        }
        let Some(chain) = table.chain(name) else { continue };
        for rule in &chain.rules {
            lines.push(format!("-t {} {}", table.name, rule.save_line(name)));
        }
    }
    lines
}

fn ports(c: &Cluster, state: &NetState, nodes: &[usize], si: usize) -> Vec<PortFacts> {
    let s = &c.services[si];
    s.ports
        .iter()
        .map(|p| {
            let chains = if c.kube_proxy == crate::model::KubeProxyMode::Nftables {
                super::kube_proxy::nftables::as_iptables_shape(s, p)
            } else {
                port_chains(s, p)
            };
            let mut own = vec![
                chains.fw.clone(),
                chains.ext.clone(),
                chains.svc.clone(),
                chains.svl.clone(),
            ];
            own.extend(chains.endpoints.iter().cloned());
            // Nodes hold different rules for a port only under a Local traffic policy, and then
            // only as their local endpoints differ: nodes with the same local endpoints hold the
            // same rules, so one of each kind is read.
            let local_policy = (s.externally_accessible() && s.external_traffic_policy == TrafficPolicy::Local)
                || s.internal_traffic_policy == TrafficPolicy::Local;
            let mut local: HashMap<&str, Vec<usize>> = HashMap::new();
            if local_policy {
                for (i, e) in p.endpoints.iter().enumerate() {
                    local
                        .entry(c.nodes[c.pods[e.pod].node].name.as_str())
                        .or_default()
                        .push(i);
                }
            }
            // A node whose address is in a loadBalancerSourceRanges range also has a KUBE-FW
            // rule of its own.
            let in_ranges = |h: usize| {
                s.load_balancer_ip.is_some()
                    && !s.load_balancer_source_ranges.is_empty()
                    && c.node_named(&state.hosts[h].name).is_some_and(|n| {
                        let ip = c.nodes[n].ip;
                        s.load_balancer_source_ranges.iter().any(|r| r.contains(&ip))
                    })
            };
            let mut kinds: Vec<(usize, Vec<usize>)> = Vec::new();
            let mut kind_of: HashMap<(&[usize], bool), usize> = HashMap::new();
            for (order, &h) in nodes.iter().enumerate() {
                let endpoints: &[usize] = local.get(state.hosts[h].name.as_str()).map_or(&[], Vec::as_slice);
                let key = (endpoints, in_ranges(h));
                match kind_of.get(&key) {
                    Some(&k) => kinds[k].1.push(order),
                    None => {
                        kind_of.insert(key, kinds.len());
                        kinds.push((h, vec![order]));
                    }
                }
            }
            let mut groups: Vec<(Vec<String>, Vec<usize>)> = Vec::new();
            for (h, members) in kinds {
                let host = &state.hosts[h];
                let mut lines = port_rules(&host.nat, &chains.port_name, &own);
                lines.extend(port_rules(&host.filter, &chains.port_name, &own));
                match groups.iter_mut().find(|(l, _)| *l == lines) {
                    Some((_, m)) => m.extend(members),
                    None => groups.push((lines, members)),
                }
            }
            for (_, members) in &mut groups {
                members.sort_unstable();
            }
            groups.sort_by_key(|(_, members)| members.first().copied());
            PortFacts {
                groups: groups
                    .into_iter()
                    .map(|(lines, members)| RuleGroup {
                        every_node: members.len() == nodes.len(),
                        nodes: members.iter().map(|&o| state.hosts[nodes[o]].name.clone()).collect(),
                        lines,
                    })
                    .collect(),
                chains,
            }
        })
        .collect()
}
