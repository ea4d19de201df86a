//! One `KUBE-NWPLCY-` chain per NetworkPolicy and the IP sets its rules match, as kube-router's
//! `syncNetworkPolicyChains` writes them (`pkg/controllers/netpol/policy.go`): the same on every
//! node, so they are made once for the cluster.
//!
//! Each allowing rule is a pair: a rule that sets mark 0x10000, and the same matches with the
//! mark that RETURNs to the pod's firewall chain. Peers become sets: the policy's target pods
//! (`KUBE-DST-`/`KUBE-SRC-`), each rule's peer pods, its ipBlocks (`hash:net`, `except` as
//! `nomatch` entries) and each named port resolved to the pods that have it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::{comment, hash16, mark_rule_pair};
use crate::model::policy::{Direction, NetworkPolicy, Peer, PolicyRule};
use crate::model::{Cluster, Protocol, TargetPort};
use crate::net::ipset::{Entry, IpSet, IpSets, SetType};
use crate::net::iptables::{Chain, Match};

/// kube-router hashes the start time of its sync into chain names; a fixed version keeps the
/// names the same from run to run.
pub const SYNC_VERSION: &str = "0";
const FAMILY: &str = "IPv4";

pub fn policy_chain(np: &NetworkPolicy) -> String {
    format!(
        "KUBE-NWPLCY-{}",
        hash16(&format!("{}{}{SYNC_VERSION}{FAMILY}", np.namespace, np.name))
    )
}

fn target_set(np: &NetworkPolicy, prefix: &str) -> String {
    format!("{prefix}{}", hash16(&format!("{}{}{FAMILY}", np.namespace, np.name)))
}

fn indexed_set(np: &NetworkPolicy, prefix: &str, direction: Direction, rule: usize, what: &str) -> String {
    format!(
        "{prefix}{}",
        hash16(&format!(
            "{}{}{}rule{rule}{FAMILY}{what}",
            np.namespace,
            np.name,
            direction.name()
        ))
    )
}

fn named_port_set(np: &NetworkPolicy, direction: Direction, rule: usize, index: usize) -> String {
    format!(
        "KUBE-DST-{}",
        hash16(&format!(
            "{}{}{}rule{rule}{index}{FAMILY}namedport",
            np.namespace,
            np.name,
            direction.name()
        ))
    )
}

fn hash_ip(name: String, ips: impl IntoIterator<Item = Ipv4Addr>) -> IpSet {
    IpSet {
        name,
        kind: SetType::HashIp,
        entries: ips
            .into_iter()
            .map(|ip| Entry {
                net: Ipv4Net::new(ip, 32).expect("/32"),
                nomatch: false,
            })
            .collect(),
    }
}

/// A port a rule's mark pair matches: protocol and an optional port or range.
#[derive(Debug, Clone, Copy)]
struct PortMatch {
    protocol: Protocol,
    port: Option<(u16, Option<u16>)>,
}

impl PortMatch {
    fn matches(self) -> Vec<Match> {
        let mut m = vec![Match::Protocol(self.protocol)];
        match self.port {
            None => {}
            Some((p, Some(end))) if end > p => m.push(Match::DestinationPortRange {
                protocol: self.protocol,
                first: p,
                last: end,
            }),
            Some((p, _)) => m.push(Match::DestinationPort {
                protocol: self.protocol,
                port: Some(p),
            }),
        }
        m
    }
}

/// Pods kube-router acts for: with an address of their own (never hostNetwork).
fn actionable(c: &Cluster) -> impl Iterator<Item = (usize, &crate::model::Pod)> {
    c.pods.iter().enumerate().filter(|(_, p)| !p.host_network)
}

/// The pods a peer's selectors pick, as kube-router's `evalPodPeer` finds them.
fn peer_pods(c: &Cluster, np: &NetworkPolicy, peer: &Peer) -> Vec<usize> {
    if peer.ip_block.is_some() {
        return Vec::new();
    }
    actionable(c)
        .filter(|(_, p)| match &peer.namespaces {
            Some(ns) => ns.matches(c.namespace_labels(&p.namespace)),
            None => p.namespace == np.namespace,
        })
        .filter(|(_, p)| peer.pods.as_ref().is_none_or(|s| s.matches(&p.labels)))
        .map(|(i, _)| i)
        .collect()
}

/// Named ports of `pods`, by name and protocol, each number with the pods that have it, in
/// port order (kube-router walks a map; its order does not change what the rules allow).
type NamedPorts = BTreeMap<(String, Protocol), BTreeMap<u16, Vec<Ipv4Addr>>>;

fn named_ports(c: &Cluster, pods: &[usize]) -> NamedPorts {
    let mut out = NamedPorts::new();
    for &i in pods {
        let pod = &c.pods[i];
        for (_, cp) in pod.listeners() {
            if let Some(name) = &cp.name {
                out.entry((name.clone(), cp.protocol))
                    .or_default()
                    .entry(cp.port)
                    .or_default()
                    .push(pod.ip);
            }
        }
    }
    out
}

/// A rule's ports split as kube-router's `processNetworkPolicyPorts` splits them: numeric
/// ports (or none), and named ports resolved to (number, pods). A name no pod has resolves to
/// nothing.
fn split_ports(rule: &PolicyRule, named: &NamedPorts) -> (Vec<PortMatch>, Vec<(PortMatch, Vec<Ipv4Addr>)>) {
    let mut numeric = Vec::new();
    let mut resolved = Vec::new();
    for p in &rule.ports {
        match &p.port {
            None => numeric.push(PortMatch {
                protocol: p.protocol,
                port: None,
            }),
            Some(TargetPort::Number(n)) => numeric.push(PortMatch {
                protocol: p.protocol,
                port: Some((*n, p.end_port)),
            }),
            Some(TargetPort::Name(name)) => {
                for (number, ips) in named.get(&(name.clone(), p.protocol)).into_iter().flatten() {
                    resolved.push((
                        PortMatch {
                            protocol: p.protocol,
                            port: Some((*number, None)),
                        },
                        ips.clone(),
                    ));
                }
            }
        }
    }
    (numeric, resolved)
}

/// The ipBlock peers of a rule as one `hash:net` set's entries: kube-router merges them.
fn ip_block_entries(peers: &[Peer]) -> Vec<Entry> {
    let mut entries = Vec::new();
    for b in peers.iter().filter_map(|p| p.ip_block.as_ref()) {
        let halves = |net: Ipv4Net| -> Vec<Ipv4Net> {
            // ipset cannot hold a /0: kube-router writes the two halves of the space instead.
            if net.prefix_len() == 0 {
                vec!["0.0.0.0/1".parse().expect("net"), "128.0.0.0/1".parse().expect("net")]
            } else {
                vec![net]
            }
        };
        for net in halves(b.cidr) {
            entries.push(Entry { net, nomatch: false });
        }
        for e in &b.except {
            for net in halves(*e) {
                entries.push(Entry { net, nomatch: true });
            }
        }
    }
    entries
}

/// The chain of one policy, and the sets it needs added to `sets`.
pub fn policy_chain_and_sets(c: &Cluster, np: &NetworkPolicy, sets: &mut IpSets) -> Chain {
    let name = policy_chain(np);
    let targets: Vec<usize> = actionable(c)
        .filter(|(_, p)| p.namespace == np.namespace && np.pod_selector.matches(&p.labels))
        .map(|(i, _)| i)
        .collect();
    let target_ips = || targets.iter().map(|&i| c.pods[i].ip).collect::<Vec<_>>();
    let mut chain = Chain {
        name: name.clone(),
        policy: None,
        rules: Vec::new(),
    };
    let pair =
        |chain: &mut Chain, kind: &str, rule: usize, src: Option<&str>, dst: Option<&str>, port: Option<PortMatch>| {
            let mut m = vec![comment(format!("{}/{} {kind} (rule {rule})", np.namespace, np.name))];
            for (set, source) in [(src, true), (dst, false)] {
                if let Some(set) = set {
                    m.push(Match::Set {
                        name: set.to_owned(),
                        source,
                        negated: false,
                    });
                }
            }
            // iptables-save puts -p first, the modules after it in the order given.
            if let Some(port) = port {
                let mut pm = port.matches();
                let protocol = pm.remove(0);
                m.insert(0, protocol);
                m.extend(pm);
            }
            chain.rules.extend(mark_rule_pair(m));
        };

    if let Some(rules) = &np.ingress {
        let dst_set = target_set(np, "KUBE-DST-");
        sets.insert(hash_ip(dst_set.clone(), target_ips()));
        let named = named_ports(c, &targets);
        for (ri, rule) in rules.iter().enumerate() {
            let (numeric, resolved) = split_ports(rule, &named);
            let all_ports = rule.ports.is_empty();
            let peers = rule.peers.as_deref();
            let src_pods: Vec<usize> = peers.into_iter().flatten().flat_map(|p| peer_pods(c, np, p)).collect();
            let named_set = |sets: &mut IpSets, index: usize, ips: &[Ipv4Addr]| {
                let set = named_port_set(np, Direction::Ingress, ri, index);
                sets.insert(hash_ip(set.clone(), ips.iter().copied()));
                set
            };
            if !src_pods.is_empty() {
                let src_set = indexed_set(np, "KUBE-SRC-", Direction::Ingress, ri, "pod");
                sets.insert(hash_ip(src_set.clone(), src_pods.iter().map(|&i| c.pods[i].ip)));
                for p in &numeric {
                    pair(&mut chain, "ingress pods", ri, Some(&src_set), Some(&dst_set), Some(*p));
                }
                for (index, (p, ips)) in resolved.iter().enumerate() {
                    let set = named_set(sets, index, ips);
                    pair(&mut chain, "ingress pods np", ri, Some(&src_set), Some(&set), Some(*p));
                }
                if numeric.is_empty() && resolved.is_empty() {
                    pair(&mut chain, "ingress pods", ri, Some(&src_set), Some(&dst_set), None);
                }
            }
            if peers.is_none() && !all_ports {
                for p in &numeric {
                    pair(&mut chain, "ingress any", ri, None, Some(&dst_set), Some(*p));
                }
                for (index, (p, ips)) in resolved.iter().enumerate() {
                    let set = named_set(sets, index, ips);
                    pair(&mut chain, "ingress any np", ri, None, Some(&set), Some(*p));
                }
            }
            if peers.is_none() && all_ports {
                pair(&mut chain, "ingress any", ri, None, Some(&dst_set), None);
            }
            let blocks = ip_block_entries(peers.unwrap_or_default());
            if !blocks.is_empty() {
                let src_set = indexed_set(np, "KUBE-SRC-", Direction::Ingress, ri, "ipblock");
                sets.insert(IpSet {
                    name: src_set.clone(),
                    kind: SetType::HashNet,
                    entries: blocks,
                });
                if all_ports {
                    pair(&mut chain, "ingress cidr", ri, Some(&src_set), Some(&dst_set), None);
                } else {
                    for p in &numeric {
                        pair(&mut chain, "ingress cidr", ri, Some(&src_set), Some(&dst_set), Some(*p));
                    }
                    for (index, (p, ips)) in resolved.iter().enumerate() {
                        let set = named_set(sets, index, ips);
                        pair(&mut chain, "ingress cidr np", ri, Some(&src_set), Some(&set), Some(*p));
                    }
                }
            }
        }
    }

    if let Some(rules) = &np.egress {
        let src_set = target_set(np, "KUBE-SRC-");
        sets.insert(hash_ip(src_set.clone(), target_ips()));
        for (ri, rule) in rules.iter().enumerate() {
            let peers = rule.peers.as_deref();
            let all_ports = rule.ports.is_empty();
            let dst_pods: Vec<usize> = peers.into_iter().flatten().flat_map(|p| peer_pods(c, np, p)).collect();
            // With no `to`, kube-router resolves a named port over the policy's own namespace.
            let named = if peers.is_none() {
                let own: Vec<usize> = actionable(c)
                    .filter(|(_, p)| p.namespace == np.namespace)
                    .map(|(i, _)| i)
                    .collect();
                named_ports(c, &own)
            } else {
                named_ports(c, &dst_pods)
            };
            let (numeric, resolved) = split_ports(rule, &named);
            if !dst_pods.is_empty() {
                let dst_set = indexed_set(np, "KUBE-DST-", Direction::Egress, ri, "pod");
                sets.insert(hash_ip(dst_set.clone(), dst_pods.iter().map(|&i| c.pods[i].ip)));
                for p in &numeric {
                    pair(&mut chain, "egress pods", ri, Some(&src_set), Some(&dst_set), Some(*p));
                }
                for (index, (p, ips)) in resolved.iter().enumerate() {
                    let set = named_port_set(np, Direction::Egress, ri, index);
                    sets.insert(hash_ip(set.clone(), ips.iter().copied()));
                    pair(&mut chain, "egress pods np", ri, Some(&src_set), Some(&set), Some(*p));
                }
                if numeric.is_empty() && resolved.is_empty() {
                    pair(&mut chain, "egress pods", ri, Some(&src_set), Some(&dst_set), None);
                }
            }
            if peers.is_none() && !all_ports {
                for p in &numeric {
                    pair(&mut chain, "egress any", ri, Some(&src_set), None, Some(*p));
                }
                for (p, _) in &resolved {
                    pair(&mut chain, "egress any np", ri, Some(&src_set), None, Some(*p));
                }
            }
            if peers.is_none() && all_ports {
                pair(&mut chain, "egress any", ri, Some(&src_set), None, None);
            }
            let blocks = ip_block_entries(peers.unwrap_or_default());
            if !blocks.is_empty() {
                let dst_set = indexed_set(np, "KUBE-DST-", Direction::Egress, ri, "ipblock");
                sets.insert(IpSet {
                    name: dst_set.clone(),
                    kind: SetType::HashNet,
                    entries: blocks,
                });
                if all_ports {
                    pair(&mut chain, "egress cidr", ri, Some(&src_set), Some(&dst_set), None);
                } else {
                    for p in &numeric {
                        pair(&mut chain, "egress cidr", ri, Some(&src_set), Some(&dst_set), Some(*p));
                    }
                }
            }
        }
    }
    chain
}
