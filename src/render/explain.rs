//! `k8snet explain`: the cluster's address plan, each node as Linux holds it, each Service with
//! the kube-proxy rules it implies, the ingress rules, and any warnings.

use std::fmt::Write;

use ipnet::Ipv4Net;

use super::style::{Style, indent};
use crate::compile::cloud::lb_backends;
use crate::compile::kube_proxy::port_chains;
use crate::compile::{ROUTER, kubenet};
use crate::model::{Cluster, Service, ServiceType, TargetPort, TrafficPolicy};
use crate::net::iptables::Table;
use crate::net::{Host, Link, NetState, Role};

/// What to show; empty filters show everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub node: Option<String>,
    pub service: Option<String>,
}

fn size(net: &Ipv4Net) -> String {
    let n = 1u64 << (32 - net.prefix_len());
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

pub fn render(cluster: &Cluster, state: &NetState, filter: &Filter, style: Style) -> String {
    let mut out = String::new();
    let whole = filter.node.is_none() && filter.service.is_none();
    let _ = writeln!(
        out,
        "{} {}: CNI kubenet, kube-proxy iptables mode, cluster domain {}\n",
        style.heading("Cluster"),
        style.strong(&cluster.name),
        cluster.cluster_domain
    );
    if whole {
        address_plan(&mut out, cluster, style);
    }
    for host in &state.hosts {
        if let Role::Node { name } = &host.role
            && filter.service.is_none()
            && filter.node.as_ref().is_none_or(|n| n == name)
        {
            node(&mut out, cluster, host, style);
        }
    }
    if whole && let Some(router) = state.hosts.iter().find(|h| h.name == ROUTER) {
        cloud_router(&mut out, router, style);
    }
    if whole && let Some(lb) = state.hosts.iter().find(|h| h.role == Role::LoadBalancer) {
        load_balancer(&mut out, cluster, lb, style);
    }
    if whole {
        shared_rules(&mut out, cluster, state, style);
    }
    for service in &cluster.services {
        if filter.node.is_none()
            && filter
                .service
                .as_ref()
                .is_none_or(|s| s == &service.name || *s == service.qualified_name())
        {
            self::service(&mut out, cluster, state, service, style);
        }
    }
    if whole && !cluster.ingresses.is_empty() {
        ingresses(&mut out, cluster, style);
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn address_plan(out: &mut String, c: &Cluster, style: Style) {
    let _ = writeln!(out, "{}", style.heading("Address plan"));
    let mut t = style.table(&["network", "CIDR", "addresses", "what lives there"]);
    t.add_row(vec![
        "node network".to_owned(),
        c.node_network.to_string(),
        size(&c.node_network),
        format!(
            "{}; gateway {} (the cloud router)",
            plural(c.nodes.len(), "node"),
            c.gateway
        ),
    ]);
    let pods = c.pods.iter().filter(|p| !p.host_network).count();
    t.add_row(vec![
        "pod network".to_owned(),
        c.pod_network.to_string(),
        size(&c.pod_network),
        format!(
            "{}, one per node; {}",
            plural(c.nodes.len(), "podCIDR"),
            plural(pods, "pod")
        ),
    ]);
    let cluster_ips = c.services.iter().filter(|s| s.cluster_ip.is_some()).count();
    t.add_row(vec![
        "service network".to_owned(),
        c.service_network.to_string(),
        size(&c.service_network),
        format!(
            "{}; virtual: no route points here, kube-proxy translates them on every node",
            plural(cluster_ips, "ClusterIP")
        ),
    ]);
    let _ = writeln!(out, "{t}");
    let mut t = style.table(&[
        "node",
        "node IP",
        "podCIDR",
        "pod addresses",
        "cbr0 (pods' gateway)",
        "pods",
    ]);
    for (i, n) in c.nodes.iter().enumerate() {
        let usable = (1u64 << (32 - n.pod_cidr.prefix_len())).saturating_sub(3);
        t.add_row(vec![
            n.name.clone(),
            n.ip.to_string(),
            n.pod_cidr.to_string(),
            usable.to_string(),
            kubenet::bridge_ip(n.pod_cidr).to_string(),
            c.pods_on(i).filter(|(_, p)| !p.host_network).count().to_string(),
        ]);
    }
    let _ = writeln!(out, "{t}");
    if c.pod_network.contains(&c.service_network) {
        let _ = writeln!(
            out,
            "The service network is carved out of the pod network (GKE's classic layout); no node's podCIDR reaches into it."
        );
    }
    let _ = writeln!(
        out,
        "Checked: the node, pod and service networks do not overlap; each podCIDR lies in the pod network and no two overlap; every pod IP lies in its node's podCIDR; every ClusterIP lies in the service network.\n"
    );
}

fn link_kind(link: &Link) -> &'static str {
    match link {
        Link::Loopback => "loopback",
        Link::Veth { .. } => "veth",
        Link::Bridge => "bridge",
        Link::Segment { .. } => "ethernet",
        Link::Uplink => "uplink",
    }
}

fn interfaces(out: &mut String, host: &Host, style: Style) {
    let mut t = style.table(&["interface", "kind", "addresses", "attached to"]);
    for i in &host.interfaces {
        let addrs: Vec<String> = i.addrs.iter().map(|a| a.to_string()).collect();
        let mut attached = match &i.link {
            Link::Segment { segment } => format!("the {}", segment.replace('-', " ")),
            Link::Veth { peer_if, .. } => format!("peer {peer_if}"),
            Link::Bridge => "the node's pods, through their veths".to_owned(),
            Link::Uplink => "the internet".to_owned(),
            Link::Loopback => String::new(),
        };
        if let Some(master) = &i.master {
            attached = format!("port of {master}{}", if i.hairpin { ", hairpin on" } else { "" });
        }
        if i.promiscuous {
            attached.push_str("; promiscuous");
        }
        t.add_row(vec![
            i.name.clone(),
            link_kind(&i.link).to_owned(),
            addrs.join(", "),
            attached,
        ]);
    }
    let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
}

fn routes(out: &mut String, host: &Host, style: Style) {
    for table in host.tables.iter().filter(|t| t.name == "main") {
        let _ = writeln!(
            out,
            "  Routing table {} {}",
            style.strong(&table.name),
            style.dim("(ip route)")
        );
        let mut t = style.table(&["route", "why it is there"]);
        for r in &table.routes {
            t.add_row(vec![style.code(&r.to_string()), r.origin.clone()]);
        }
        let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
    }
}

fn node(out: &mut String, c: &Cluster, host: &Host, style: Style) {
    let Some(ni) = c.node_named(&host.name) else { return };
    let n = &c.nodes[ni];
    let _ = writeln!(
        out,
        "{} {} {}",
        style.heading("Node"),
        style.strong(&n.name),
        style.dim(&format!("({}, podCIDR {})", n.ip, n.pod_cidr))
    );
    let _ = writeln!(
        out,
        "  ip_forward on; bridge-nf-call-iptables {}; hairpin mode {}",
        if host.bridge_nf_call_iptables { "on" } else { "off" },
        match n.hairpin {
            crate::model::HairpinMode::HairpinVeth => "hairpin-veth",
            crate::model::HairpinMode::PromiscuousBridge => "promiscuous-bridge",
            crate::model::HairpinMode::None => "none",
        }
    );
    interfaces(out, host, style);
    routes(out, host, style);
    let pods: Vec<_> = c.pods_on(ni).collect();
    if !pods.is_empty() {
        let _ = writeln!(out, "  Pods");
        let mut t = style.table(&["pod", "IP", "network", "listens on"]);
        for (_, p) in pods {
            let listens: Vec<String> = p
                .listeners()
                .map(|(ct, port)| format!("{}/{} ({})", port.port, port.protocol, ct.name))
                .collect();
            let network = if p.host_network {
                "host network (the node's own)".to_owned()
            } else {
                format!("eth0 <-> {}", crate::compile::names::host_veth(&p.namespace, &p.name))
            };
            t.add_row(vec![
                p.qualified_name(),
                p.ip.to_string(),
                network,
                if listens.is_empty() {
                    "-".to_owned()
                } else {
                    listens.join(", ")
                },
            ]);
        }
        let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
    }
    out.push('\n');
}

fn cloud_router(out: &mut String, router: &Host, style: Style) {
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("Cloud router"),
        style.dim("(the nodes' gateway; one route per node podCIDR)")
    );
    routes(out, router, style);
    out.push('\n');
}

fn load_balancer(out: &mut String, c: &Cluster, lb: &Host, style: Style) {
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("Cloud load balancer"),
        style.dim(
            "(between the cloud router and the internet; sends each load-balancer address on to a node's NodePort)"
        )
    );
    let mut t = style.table(&["address", "service", "policy", "node", "health check"]);
    for s in c.services.iter().filter(|s| s.load_balancer_ip.is_some()) {
        let ip = s.load_balancer_ip.map(|ip| ip.to_string()).unwrap_or_default();
        for (i, b) in lb_backends(c, s).iter().enumerate() {
            let first = i == 0;
            t.add_row(vec![
                if first { ip.clone() } else { String::new() },
                if first { s.qualified_name() } else { String::new() },
                if first {
                    s.external_traffic_policy.to_string()
                } else {
                    String::new()
                },
                c.nodes[b.node].name.clone(),
                if b.healthy { b.why.clone() } else { style.bad(&b.why) },
            ]);
        }
    }
    let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
    routes(out, lb, style);
    let _ = writeln!(out, "  Rules {}", style.dim("(iptables-save)"));
    for table in [&lb.nat, &lb.filter] {
        for line in table.save().lines() {
            let _ = writeln!(out, "    {}", style.code(line));
        }
    }
    out.push('\n');
}

/// The rules no single Service owns: the hooks into kube-proxy's chains, the masquerade mark and
/// its use, and the egress masquerade for traffic leaving the pod network.
fn shared_rules(out: &mut String, c: &Cluster, state: &NetState, style: Style) {
    let Some(node) = state.hosts.iter().find(|h| matches!(h.role, Role::Node { .. })) else {
        return;
    };
    let mut service_chains: Vec<String> = Vec::new();
    for s in &c.services {
        for p in &s.ports {
            let chains = port_chains(s, p);
            service_chains.extend([chains.svc, chains.svl, chains.ext, chains.fw]);
            service_chains.extend(chains.endpoints);
        }
    }
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("Netfilter rules shared by every Service"),
        style.dim("(the same on every node; iptables-save)")
    );
    for table in [&node.nat, &node.filter] {
        for chain in table.saved_order() {
            if service_chains.contains(&chain.name) {
                continue;
            }
            for rule in &chain.rules {
                // Per-Service dispatch rules are listed with their Service.
                let per_service = rule.comment().is_some_and(|comment| {
                    c.services
                        .iter()
                        .flat_map(|s| s.ports.iter().map(move |p| (s, p)))
                        .any(|(s, p)| {
                            let name = crate::compile::names::service_port_name(s, p);
                            comment == name || comment.starts_with(&format!("{name} "))
                        })
                });
                if !per_service {
                    let _ = writeln!(
                        out,
                        "  {}",
                        style.code(&format!("-t {} {}", table.name, rule.save_line(&chain.name)))
                    );
                }
            }
        }
    }
    out.push('\n');
}

/// The lines of `table` that belong to one Service port: rules in its own chains, and rules in
/// shared chains whose comment names it.
/// They come in the order a packet meets them (dispatch, entry chains, endpoint choice, DNAT),
/// which reads better than iptables-save's alphabetical order.
fn rules_for(table: &Table, port_name: &str, own_chains: &[String]) -> Vec<String> {
    let rank = |name: &str| {
        let shared = ["KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-EXTERNAL-SERVICES"];
        match shared.iter().position(|s| *s == name) {
            Some(i) => i,
            None => shared.len() + own_chains.iter().position(|c| c == name).unwrap_or(own_chains.len()),
        }
    };
    let mut chains = table.saved_order();
    chains.sort_by_key(|c| rank(&c.name));
    let mut lines = Vec::new();
    for chain in chains {
        let own = own_chains.contains(&chain.name);
        for rule in &chain.rules {
            let named = rule
                .comment()
                .is_some_and(|c| c == port_name || c.starts_with(&format!("{port_name} ")));
            if own || named {
                lines.push(rule.save_line(&chain.name));
            }
        }
    }
    lines
}

fn service(out: &mut String, c: &Cluster, state: &NetState, s: &Service, style: Style) {
    let address = match s.cluster_ip {
        Some(ip) => format!("ClusterIP {ip}"),
        None => "headless: no ClusterIP, DNS returns the pod IPs".to_owned(),
    };
    let mut extra = String::new();
    if s.kind != ServiceType::ClusterIP {
        extra = format!(", externalTrafficPolicy {}", s.external_traffic_policy);
    }
    if let Some(lb) = s.load_balancer_ip {
        extra.push_str(&format!(", load balancer {lb}"));
    }
    if let Some(t) = s.session_affinity_timeout {
        extra.push_str(&format!(", sessionAffinity ClientIP ({t}s)"));
    }
    let _ = writeln!(
        out,
        "{} {} {}",
        style.heading("Service"),
        style.strong(&s.qualified_name()),
        style.dim(&format!("(type {}, {address}{extra})", s.kind))
    );
    let mut t = style.table(&["port", "protocol", "targetPort", "nodePort", "endpoints"]);
    for p in &s.ports {
        t.add_row(vec![
            match &p.name {
                Some(n) => format!("{} ({n})", p.port),
                None => p.port.to_string(),
            },
            p.protocol.to_string(),
            match &p.target_port {
                TargetPort::Number(n) => n.to_string(),
                TargetPort::Name(n) => format!("{n} (named)"),
            },
            p.node_port.map(|n| n.to_string()).unwrap_or_else(|| "-".into()),
            p.endpoints.len().to_string(),
        ]);
    }
    let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
    if s.cluster_ip.is_none() {
        out.push('\n');
        return;
    }
    let node_hosts: Vec<&Host> = state
        .hosts
        .iter()
        .filter(|h| matches!(h.role, Role::Node { .. }))
        .collect();
    for p in &s.ports {
        let chains = port_chains(s, p);
        let label = p.name.clone().unwrap_or_else(|| p.port.to_string());
        if p.endpoints.is_empty() {
            let _ = writeln!(
                out,
                "  Port {label}: {}",
                style.warn("no endpoints: kube-proxy writes a REJECT rule instead of a DNAT")
            );
        } else {
            let _ = writeln!(out, "  Endpoints of port {label}, in kube-proxy's order");
            let mut t = style.table(&["chain", "pod", "endpoint", "node", "share of new connections"]);
            let n = p.endpoints.len();
            for (i, e) in p.endpoints.iter().enumerate() {
                let pod = &c.pods[e.pod];
                t.add_row(vec![
                    chains.endpoints[i].clone(),
                    pod.qualified_name(),
                    format!("{}:{}", e.ip, e.port),
                    c.nodes[pod.node].name.clone(),
                    format!("{:.3}", 1.0 / n as f64),
                ]);
            }
            let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
        }
        let mut own = vec![
            chains.fw.clone(),
            chains.ext.clone(),
            chains.svc.clone(),
            chains.svl.clone(),
        ];
        own.extend(chains.endpoints.iter().cloned());
        // Rules differ between nodes only under a Local traffic policy; group nodes that agree.
        let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
        for h in &node_hosts {
            let mut lines: Vec<String> = rules_for(&h.nat, &chains.port_name, &own)
                .into_iter()
                .map(|l| format!("-t nat {l}"))
                .collect();
            lines.extend(
                rules_for(&h.filter, &chains.port_name, &own)
                    .into_iter()
                    .map(|l| format!("-t filter {l}")),
            );
            match groups.iter_mut().find(|(l, _)| *l == lines) {
                Some((_, names)) => names.push(h.name.clone()),
                None => groups.push((lines, vec![h.name.clone()])),
            }
        }
        for (lines, names) in groups {
            let on = if names.len() == node_hosts.len() {
                "every node".to_owned()
            } else {
                names.join(", ")
            };
            let _ = writeln!(
                out,
                "  kube-proxy rules for {} on {on} {}",
                chains.port_name,
                style.dim("(iptables-save)")
            );
            for l in lines {
                let _ = writeln!(out, "    {}", style.code(&l));
            }
        }
        if s.external_traffic_policy == TrafficPolicy::Local && s.kind != ServiceType::ClusterIP {
            let _ = writeln!(
                out,
                "  externalTrafficPolicy Local: nodes without a local endpoint drop external traffic; the client's address is kept."
            );
        }
    }
    out.push('\n');
}

fn ingresses(out: &mut String, c: &Cluster, style: Style) {
    for ing in &c.ingresses {
        let controller = &c.services[ing.controller];
        let _ = writeln!(
            out,
            "{} {} {}",
            style.heading("Ingress"),
            style.strong(&format!("{}/{}", ing.namespace, ing.name)),
            style.dim(&format!("(controller behind service {})", controller.qualified_name()))
        );
        let mut t = style.table(&["host", "path", "pathType", "backend"]);
        let backend = |b: &crate::model::Backend| {
            let s = &c.services[b.service];
            format!("{}:{}", s.name, s.ports[b.port].port)
        };
        for r in &ing.rules {
            for p in &r.paths {
                t.add_row(vec![
                    r.host.clone().unwrap_or_else(|| "*".into()),
                    p.path.clone(),
                    format!("{:?}", p.path_type),
                    backend(&p.backend),
                ]);
            }
        }
        if let Some(b) = &ing.default_backend {
            t.add_row(vec![
                "(no rule matched)".to_owned(),
                "-".into(),
                "default".into(),
                backend(b),
            ]);
        }
        let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));
    }
}
