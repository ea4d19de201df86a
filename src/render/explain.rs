//! `k8snet explain`: the cluster's address plan, each node as Linux holds it, each Service with
//! the kube-proxy rules it implies, the ingress rules, and any warnings.

use std::fmt::Write;

use ipnet::Ipv4Net;

use super::explain_cni::{cni_words, tunnel_entries};
use super::explain_service::service;
use super::style::{Style, indent};
use crate::compile::facts::Facts;
use crate::compile::{ROUTER, kubenet};
use crate::model::Cluster;
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

/// A cluster with more nodes or Services than this is shown as a summary unless one node or
/// Service is asked for: in full it would run to thousands of pages.
pub const SUMMARY_ABOVE_NODES: usize = 20;
pub const SUMMARY_ABOVE_SERVICES: usize = 50;

/// What `explain` will show of a cluster: which Services (indices into `Cluster::services`),
/// whether the cluster-wide parts, and whether as a summary.
#[derive(Debug, Clone)]
pub struct Shown {
    pub services: Vec<usize>,
    pub whole: bool,
    pub summary: bool,
}

pub fn shown(cluster: &Cluster, filter: &Filter) -> Shown {
    let whole = filter.node.is_none() && filter.service.is_none();
    let summary =
        whole && (cluster.nodes.len() > SUMMARY_ABOVE_NODES || cluster.services.len() > SUMMARY_ABOVE_SERVICES);
    let services = if summary || filter.node.is_some() {
        Vec::new()
    } else {
        (0..cluster.services.len())
            .filter(|&i| {
                let service = &cluster.services[i];
                filter
                    .service
                    .as_ref()
                    .is_none_or(|s| s == &service.name || *s == service.qualified_name())
            })
            .collect()
    };
    Shown {
        services,
        whole,
        summary,
    }
}

/// Renders what [`shown`] chose, from the compiled state and the facts the compiler gathered
/// for it.
pub fn render(cluster: &Cluster, state: &NetState, facts: &Facts, filter: &Filter, style: Style) -> String {
    let mut out = String::new();
    let shown = shown(cluster, filter);
    let whole = shown.whole;
    let _ = writeln!(
        out,
        "{} {}: CNI {}, {}, cluster domain {}\n",
        style.heading("Cluster"),
        style.strong(&cluster.name),
        cni_words(cluster),
        match cluster.kube_proxy {
            crate::model::KubeProxyMode::Iptables => "kube-proxy iptables mode",
            crate::model::KubeProxyMode::Nftables => "kube-proxy nftables mode",
            crate::model::KubeProxyMode::Ipvs => "kube-proxy IPVS mode",
            crate::model::KubeProxyMode::None => "no kube-proxy (Cilium's replacement translates Services)",
        },
        cluster.cluster_domain
    );
    if whole {
        address_plan(&mut out, cluster, style);
    }
    if shown.summary {
        super::overview::render(&mut out, cluster, state, facts, style);
        return finish(out);
    }
    if let Some(name) = &filter.node {
        if let Some(h) = state.host_named(name).filter(|_| filter.service.is_none()) {
            node(&mut out, cluster, &state.hosts[h], style);
            if let Some(t) = &state.hosts[h].nftables {
                let large =
                    cluster.nodes.len() > SUMMARY_ABOVE_NODES || cluster.services.len() > SUMMARY_ABOVE_SERVICES;
                super::explain_nft::node_table(&mut out, t, large, style);
                out.push('\n');
            }
            if state.hosts[h].ipvs.is_some() {
                super::explain_ipvs::node_table(&mut out, &state.hosts[h], style);
                out.push('\n');
            }
        }
    } else if filter.service.is_none() {
        for i in 0..state.hosts.len() {
            if let Role::Node { .. } = state.hosts.role(i) {
                node(&mut out, cluster, &state.hosts[i], style);
            }
        }
    }
    if whole && let Some(router) = state.host_named(ROUTER) {
        cloud_router(&mut out, &state.hosts[router], style);
    }
    if whole
        && let Some(lb) = (0..state.hosts.len())
            .find(|&i| *state.hosts.role(i) == Role::LoadBalancer)
            .map(|i| &state.hosts[i])
    {
        load_balancer(&mut out, cluster, facts, lb, style);
    }
    if whole && cluster.kube_proxy == crate::model::KubeProxyMode::Ipvs {
        // The nat rules differ from node to node (KUBE-LOOP-BACK's local endpoints): they are
        // shown per node with the IPVS table, not as shared ones.
        super::explain_ipvs::tables(&mut out, cluster, state, style);
    } else if whole {
        shared_rules(&mut out, facts, style);
        super::explain_nft::tables(&mut out, cluster, state, style);
    }
    for &si in &shown.services {
        self::service(&mut out, cluster, state, facts, si, style);
    }
    if whole && !cluster.ingresses.is_empty() {
        ingresses(&mut out, cluster, style);
    }
    if whole && !cluster.policies.is_empty() {
        super::explain_policy::policies(&mut out, cluster, style);
    }
    finish(out)
}

/// The kube-proxy mode as the scenario names it.
pub(super) fn kube_proxy_word(c: &Cluster) -> &'static str {
    match c.kube_proxy {
        crate::model::KubeProxyMode::Iptables => "iptables",
        crate::model::KubeProxyMode::Nftables => "nftables",
        crate::model::KubeProxyMode::Ipvs => "ipvs",
        crate::model::KubeProxyMode::None => "none",
    }
}

fn finish(mut out: String) -> String {
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

pub(super) fn address_plan(out: &mut String, c: &Cluster, style: Style) {
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
        match c.cni {
            crate::model::Cni::Bridge => "cbr0 (pods' gateway)",
            crate::model::Cni::FlannelHostGw | crate::model::Cni::FlannelVxlan => "cni0 (pods' gateway)",
            crate::model::Cni::Calico => "pods' gateway (proxy ARP)",
            crate::model::Cni::Cilium => "cilium_host (pods' gateway)",
        },
        "pods",
    ]);
    let mut pods_on = vec![0usize; c.nodes.len()];
    for p in c.pods.iter().filter(|p| !p.host_network) {
        pods_on[p.node] += 1;
    }
    for (i, n) in c.nodes.iter().enumerate() {
        let usable = (1u64 << (32 - n.pod_cidr.prefix_len())).saturating_sub(3);
        t.add_row(vec![
            n.name.clone(),
            n.ip.to_string(),
            n.pod_cidr.to_string(),
            usable.to_string(),
            kubenet::pod_gateway(c, n).to_string(),
            pods_on[i].to_string(),
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

pub(super) fn link_kind(link: &Link) -> &'static str {
    match link {
        Link::Loopback => "loopback",
        Link::Dummy => "dummy",
        Link::Veth { .. } => "veth",
        Link::Bridge => "bridge",
        Link::Segment { .. } => "ethernet",
        Link::Uplink => "uplink",
        Link::Vxlan(_) => "vxlan",
        Link::Ipip { .. } => "ipip",
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
            Link::Dummy => "nothing: it holds the Service addresses as local ones".to_owned(),
            Link::Vxlan(v) => format!(
                "VNI {}, UDP {} from {} on {}, MTU {}, MAC {}",
                v.vni, v.port, v.local, v.underlay, v.mtu, v.mac
            ),
            Link::Ipip { local, underlay } => format!("IP-in-IP from {local} on {underlay}, MTU 1480"),
        };
        if i.proxy_arp {
            attached.push_str("; proxy_arp on");
        }
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
        for r in table.all() {
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
    tunnel_entries(out, host, style);
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
                format!("eth0 <-> {}", crate::compile::cni::pod_veth(c, p))
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
        style.dim(
            if router
                .tables
                .iter()
                .any(|t| t.all().any(|r| r.proto == crate::net::route::RouteProto::Static))
            {
                "(the nodes' gateway; one route per node podCIDR)"
            } else {
                "(the nodes' gateway; the CNI routes pods between the nodes itself)"
            }
        )
    );
    routes(out, router, style);
    out.push('\n');
}

fn load_balancer(out: &mut String, c: &Cluster, facts: &Facts, lb: &Host, style: Style) {
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("Cloud load balancer"),
        style.dim(
            "(between the cloud router and the internet; sends each load-balancer address on to a node's NodePort)"
        )
    );
    let mut t = style.table(&["address", "service", "policy", "node", "health check"]);
    for (si, backends) in &facts.load_balancer {
        let s = &c.services[*si];
        let ip = s.load_balancer_ip.map(|ip| ip.to_string()).unwrap_or_default();
        for (i, b) in backends.iter().enumerate() {
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
pub(super) fn shared_rules(out: &mut String, facts: &Facts, style: Style) {
    if facts.shared_rules.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{} {}",
        style.heading("Netfilter rules shared by every Service"),
        style.dim("(the same on every node; as iptables -t TABLE -A CHAIN … takes them)")
    );
    for line in &facts.shared_rules {
        let _ = writeln!(out, "  {}", style.code(line));
    }
    out.push('\n');
}

pub(super) fn ingresses(out: &mut String, c: &Cluster, style: Style) {
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
        let backend = |b: &crate::model::Backend| match b {
            crate::model::Backend::Service { service, port } => {
                let s = &c.services[*service];
                format!("{}:{}", s.name, s.ports[*port].port)
            }
            crate::model::Backend::Missing { service, port, exists } => format!(
                "{}:{port} (no such {}: 503)",
                service.split('/').nth(1).unwrap_or(service),
                if *exists { "port" } else { "Service" }
            ),
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
