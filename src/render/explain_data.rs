//! `explain -o json|yaml`: what the text of `explain` shows, as one document for machines
//! (schema: docs/explain.schema.json). It follows `--node` and `--service` as the text does, but
//! never summarises: a script that asks for the whole cluster gets all of it.

use serde_json::{Value, json};

use super::explain::{Filter, link_kind, shown};
use crate::compile::facts::Facts;
use crate::compile::{ROUTER, kubenet};
use crate::model::{Cluster, HairpinMode, TargetPort};
use crate::net::{Host, Link, NetState, Role};

/// The version of this document's shape; it changes only when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// The services whose facts the document needs: those [`shown`] would show, or, where the text
/// would summarise, every one (the summary is for people).
pub fn services(cluster: &Cluster, filter: &Filter) -> (Vec<usize>, bool) {
    let s = shown(cluster, filter);
    if s.summary {
        ((0..cluster.services.len()).collect(), s.whole)
    } else {
        (s.services, s.whole)
    }
}

pub fn document(scenario: &super::ScenarioRef, c: &Cluster, state: &NetState, facts: &Facts, filter: &Filter) -> Value {
    let (service_list, whole) = services(c, filter);
    let nodes: Vec<Value> = state
        .hosts
        .iter()
        .filter(|h| matches!(h.role, Role::Node { .. }))
        .filter(|h| match (&filter.node, &filter.service) {
            (_, Some(_)) => false,
            (Some(n), None) => &h.name == n,
            (None, None) => true,
        })
        .filter_map(|h| node(c, h))
        .collect();
    let router = state
        .host_named(ROUTER)
        .filter(|_| whole)
        .map(|r| json!({ "routes": routes(&state.hosts[r]) }));
    let load_balancer = state
        .hosts
        .iter()
        .find(|h| h.role == Role::LoadBalancer)
        .filter(|_| whole)
        .map(|lb| load_balancer(c, facts, lb));
    json!({
        "schema_version": SCHEMA_VERSION,
        "scenario": scenario,
        "cluster": {
            "name": c.name,
            "cni": c.cni.word(),
            "kube_proxy": super::explain::kube_proxy_word(c),
            "cluster_domain": c.cluster_domain,
            "node_network": c.node_network.to_string(),
            "pod_network": c.pod_network.to_string(),
            "service_network": c.service_network.to_string(),
        },
        "nodes": nodes,
        "cloud_router": router,
        "load_balancer": load_balancer,
        "shared_rules": if whole { facts.shared_rules.clone() } else { Vec::new() },
        "services": service_list.iter().map(|&si| service(c, state, facts, si)).collect::<Vec<_>>(),
        "ingresses": if whole { ingresses(c) } else { Vec::new() },
        "network_policies": super::explain_data_policy::network_policies(c, whole),
    })
}

fn routes(host: &Host) -> Vec<Value> {
    host.tables
        .iter()
        .filter(|t| t.name == "main")
        .flat_map(|t| {
            t.all()
                .map(|r| json!({ "table": t.name, "route": r.to_string(), "why": r.origin }))
        })
        .collect()
}

fn node(c: &Cluster, host: &Host) -> Option<Value> {
    let ni = c.node_named(&host.name)?;
    let n = &c.nodes[ni];
    let interfaces: Vec<Value> = host
        .interfaces
        .iter()
        .map(|i| {
            json!({
                "name": i.name,
                "kind": link_kind(&i.link),
                "addresses": i.addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "peer": match &i.link {
                    Link::Veth { peer_if, .. } => Some(peer_if.clone()),
                    _ => None,
                },
                "master": i.master,
                "hairpin": i.hairpin,
                "promiscuous": i.promiscuous,
            })
        })
        .collect();
    let pods: Vec<Value> = c
        .pods_on(ni)
        .map(|(pi, p)| {
            json!({
                "name": p.qualified_name(),
                "ip": p.ip.to_string(),
                "host_network": p.host_network,
                "host_veth": if p.host_network {
                    None
                } else {
                    Some(crate::compile::cni::pod_veth(c, p))
                },
                "listens": p.listeners().map(|(ct, port)| json!({
                    "container": ct.name,
                    "port": port.port,
                    "protocol": port.protocol.to_string(),
                })).collect::<Vec<_>>(),
                "network_policies": super::explain_data_policy::pod_policies(c, pi),
            })
        })
        .collect();
    Some(json!({
        "name": n.name,
        "ip": n.ip.to_string(),
        "pod_cidr": n.pod_cidr.to_string(),
        "gateway": kubenet::pod_gateway(c, n).to_string(),
        "ip_forward": true,
        "bridge_nf_call_iptables": host.bridge_nf_call_iptables,
        "hairpin_mode": match n.hairpin {
            HairpinMode::HairpinVeth => "hairpin-veth",
            HairpinMode::PromiscuousBridge => "promiscuous-bridge",
            HairpinMode::None => "none",
        },
        "interfaces": interfaces,
        "routes": routes(host),
        "pods": pods,
        "nftables": host.nftables.as_ref().map(nftables_table),
    }))
}

/// An nftables table as its types hold it (src/net/nftables.rs), each rule and element with
/// the line `nft list` prints for it, so a script can read either.
fn nftables_table(table: &crate::net::nftables::Table) -> Value {
    let mut value = serde_json::to_value(table).unwrap_or(Value::Null);
    let sets = table.sets();
    if let Some(list) = value["sets"].as_array_mut() {
        for (v, set) in list.iter_mut().zip(&sets) {
            if let Some(elements) = v["elements"].as_array_mut() {
                for (e, element) in elements.iter_mut().zip(set.elements()) {
                    e["text"] = json!(element.text());
                }
            }
        }
    }
    let chains = table.chains();
    if let Some(list) = value["chains"].as_array_mut() {
        for (v, chain) in list.iter_mut().zip(&chains) {
            if let Some(rules) = v["rules"].as_array_mut() {
                for (r, rule) in rules.iter_mut().zip(&chain.rules) {
                    r["text"] = json!(rule.text());
                }
            }
        }
    }
    value
}

fn load_balancer(c: &Cluster, facts: &Facts, lb: &Host) -> Value {
    let services: Vec<Value> = facts
        .load_balancer
        .iter()
        .map(|(si, backends)| {
            let s = &c.services[*si];
            json!({
                "service": s.qualified_name(),
                "address": s.load_balancer_ip.map(|ip| ip.to_string()),
                "external_traffic_policy": s.external_traffic_policy.to_string(),
                "backends": backends.iter().map(|b| json!({
                    "node": c.nodes[b.node].name,
                    "healthy": b.healthy,
                    "why": b.why,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    // As iptables-save prints the two tables, one line an item.
    let rules: Vec<String> = [&lb.nat, &lb.filter]
        .iter()
        .flat_map(|t| t.save().lines().map(str::to_owned).collect::<Vec<_>>())
        .collect();
    json!({
        "services": services,
        "routes": routes(lb),
        "rules": rules,
    })
}

fn service(c: &Cluster, state: &NetState, facts: &Facts, si: usize) -> Value {
    let nftables = c.kube_proxy == crate::model::KubeProxyMode::Nftables;
    let s = &c.services[si];
    let port_facts = facts.services.get(&si).map(Vec::as_slice).unwrap_or_default();
    let ports: Vec<Value> = s
        .ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let f = port_facts.get(i);
            let n = p.endpoints.len();
            json!({
                "name": p.name,
                "port": p.port,
                "protocol": p.protocol.to_string(),
                "target_port": match &p.target_port {
                    TargetPort::Number(n) => json!(n),
                    TargetPort::Name(n) => json!(n),
                },
                "node_port": p.node_port,
                "chains": f.map(|f| json!({
                    "svc": f.chains.svc,
                    "svl": f.chains.svl,
                    "ext": f.chains.ext,
                    "fw": f.chains.fw,
                })),
                "endpoints": p.endpoints.iter().enumerate().map(|(e, ep)| {
                    let pod = &c.pods[ep.pod];
                    json!({
                        "chain": f.and_then(|f| f.chains.endpoints.get(e).cloned()),
                        "pod": pod.qualified_name(),
                        "ip": ep.ip.to_string(),
                        "port": ep.port,
                        "node": c.nodes[pod.node].name,
                        "share": 1.0 / n as f64,
                    })
                }).collect::<Vec<_>>(),
                "skipped_endpoints": p.skipped.iter().map(|sk| json!({
                    "pod": c.pods[sk.pod].qualified_name(),
                    "ip": sk.ip.to_string(),
                    "port": sk.port,
                    "node": c.nodes[c.pods[sk.pod].node].name,
                    "reason": skip_reason(sk.reason),
                    "why": sk.reason.to_string(),
                })).collect::<Vec<_>>(),
                "rules": f.map_or_else(Vec::new, |f| f.groups.iter().map(|g| json!({
                    "nodes": g.nodes,
                    "every_node": g.every_node,
                    "lines": g.lines,
                })).collect::<Vec<_>>()),
                "nftables": if nftables && s.cluster_ip.is_some() {
                    let groups = super::explain_nft::port_groups(c, state, s, p);
                    let every = groups.len() == 1;
                    groups.into_iter().map(|(lines, nodes)| json!({
                        "nodes": nodes,
                        "every_node": every,
                        "lines": lines,
                    })).collect::<Vec<_>>()
                } else {
                    Vec::new()
                },
            })
        })
        .collect();
    json!({
        "name": s.qualified_name(),
        "type": s.kind.to_string(),
        "cluster_ip": s.cluster_ip.map(|ip| ip.to_string()),
        "external_traffic_policy": s.external_traffic_policy.to_string(),
        "internal_traffic_policy": s.internal_traffic_policy.to_string(),
        "load_balancer_ip": s.load_balancer_ip.map(|ip| ip.to_string()),
        "external_ips": s.external_ips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "session_affinity_timeout": s.session_affinity_timeout,
        "ports": ports,
    })
}

fn skip_reason(reason: crate::model::endpoints::SkipReason) -> &'static str {
    use crate::model::endpoints::SkipReason;
    match reason {
        SkipReason::NotReady => "not_ready",
        SkipReason::TerminatingWhileOthersReady => "terminating_while_others_ready",
        SkipReason::TerminatingNotServing => "terminating_not_serving",
    }
}

fn ingresses(c: &Cluster) -> Vec<Value> {
    let backend = |b: &crate::model::Backend| match b {
        crate::model::Backend::Service { service, port } => {
            let s = &c.services[*service];
            json!({ "service": s.qualified_name(), "port": s.ports[*port].port })
        }
        crate::model::Backend::Missing { service, port, .. } => {
            let port = port.parse::<u16>().map_or_else(|_| json!(port), |n| json!(n));
            json!({ "service": service, "port": port, "missing": true })
        }
    };
    c.ingresses
        .iter()
        .map(|ing| {
            let paths: Vec<Value> = ing
                .rules
                .iter()
                .flat_map(|r| {
                    r.paths.iter().map(|p| {
                        json!({
                            "host": r.host,
                            "path": p.path,
                            "path_type": p.path_type,
                            "backend": backend(&p.backend),
                        })
                    })
                })
                .collect();
            json!({
                "name": format!("{}/{}", ing.namespace, ing.name),
                "controller": c.services[ing.controller].qualified_name(),
                "rules": paths,
                "default_backend": ing.default_backend.as_ref().map(backend),
            })
        })
        .collect()
}
