//! `explain` of one Service: its addresses and ports, its endpoints, and the rules or maps that
//! carry each port, per kube-proxy mode.

use std::fmt::Write;

use crate::compile::facts::Facts;
use crate::model::{Cluster, Service, ServiceType, TargetPort, TrafficPolicy};
use crate::net::NetState;
use crate::render::explain_cni::service_maps;
use crate::render::style::{Style, indent};

pub(super) fn service(out: &mut String, c: &Cluster, state: &NetState, facts: &Facts, si: usize, style: Style) {
    let nftables = c.kube_proxy == crate::model::KubeProxyMode::Nftables;
    let ipvs = c.kube_proxy == crate::model::KubeProxyMode::Ipvs;
    let s: &Service = &c.services[si];
    let address = match s.cluster_ip {
        Some(ip) => format!("ClusterIP {ip}"),
        None => "headless: no ClusterIP, DNS returns the pod IPs".to_owned(),
    };
    let mut extra = String::new();
    if !s.external_ips.is_empty() {
        let ips: Vec<String> = s.external_ips.iter().map(ToString::to_string).collect();
        extra = format!(", externalIPs {}", ips.join(", "));
    }
    if s.externally_accessible() {
        extra.push_str(&format!(", externalTrafficPolicy {}", s.external_traffic_policy));
    }
    if s.internal_traffic_policy == TrafficPolicy::Local {
        extra.push_str(", internalTrafficPolicy Local");
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
    if c.kube_proxy == crate::model::KubeProxyMode::None {
        service_maps(out, c, s, style);
        return;
    }
    let ports = facts.services.get(&si).map(Vec::as_slice).unwrap_or_default();
    for (p, facts) in s.ports.iter().zip(ports) {
        let chains = &facts.chains;
        let label = p.name.clone().unwrap_or_else(|| p.port.to_string());
        if p.endpoints.is_empty() && nftables {
            let _ = writeln!(
                out,
                "  Port {label}: {}",
                style.warn("no endpoints: kube-proxy puts it in no-endpoint-services (goto reject-chain) instead of service-ips")
            );
        } else if p.endpoints.is_empty() && ipvs {
            let _ = writeln!(
                out,
                "  Port {label}: {}",
                style.warn(
                    "no endpoints: its virtual servers have no real server, so IPVS answers ICMP port unreachable"
                )
            );
        } else if p.endpoints.is_empty() {
            let _ = writeln!(
                out,
                "  Port {label}: {}",
                style.warn("no endpoints: kube-proxy writes a REJECT rule instead of a DNAT")
            );
        } else {
            let _ = writeln!(out, "  Endpoints of port {label}, in kube-proxy's order");
            let first = if ipvs { "real server" } else { "chain" };
            let mut t = style.table(&[first, "pod", "endpoint", "node", "share of new connections"]);
            let n = p.endpoints.len();
            let internal_local = s.internal_traffic_policy == TrafficPolicy::Local;
            for (i, e) in p.endpoints.iter().enumerate() {
                let pod = &c.pods[e.pod];
                // Under internalTrafficPolicy Local a node spreads ClusterIP traffic over its own
                // endpoints only; NodePort and load-balancer traffic still follows the external policy.
                let share = if internal_local {
                    let on_node = p.endpoints.iter().filter(|o| c.pods[o.pod].node == pod.node).count();
                    let local = format!("{:.3} of its node's ClusterIP traffic", 1.0 / on_node as f64);
                    if s.kind == ServiceType::ClusterIP {
                        local
                    } else {
                        format!("{:.3}; {local}", 1.0 / n as f64)
                    }
                } else {
                    format!("{:.3}", 1.0 / n as f64)
                };
                t.add_row(vec![
                    if ipvs {
                        format!("-> {}:{} Masq", e.ip, e.port)
                    } else {
                        chains.endpoints[i].clone()
                    },
                    pod.qualified_name(),
                    format!("{}:{}", e.ip, e.port),
                    c.nodes[pod.node].name.clone(),
                    share,
                ]);
            }
            let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
        }

        if nftables {
            super::explain_nft::service_port(out, c, state, s, p, style);
        }
        if ipvs {
            super::explain_ipvs::service_port(out, c, state, s, p, style);
        }
        for skipped in &p.skipped {
            let _ = writeln!(
                out,
                "  skipped endpoint {} {}:{}: {}",
                c.pods[skipped.pod].qualified_name(),
                skipped.ip,
                skipped.port,
                style.warn(&skipped.reason.to_string())
            );
        }
        for group in facts.groups.iter().filter(|_| !nftables && !ipvs) {
            let on = if group.every_node {
                "every node".to_owned()
            } else {
                group.nodes.join(", ")
            };
            let _ = writeln!(
                out,
                "  kube-proxy rules for {} on {on} {}",
                chains.port_name,
                style.dim("(as iptables -t TABLE -A CHAIN … takes them)")
            );
            for l in &group.lines {
                let _ = writeln!(out, "    {}", style.code(l));
            }
        }
        if s.external_traffic_policy == TrafficPolicy::Local && s.externally_accessible() {
            let _ = writeln!(
                out,
                "  externalTrafficPolicy Local: nodes without a local endpoint drop external traffic; the client's address is kept."
            );
        }
        if s.internal_traffic_policy == TrafficPolicy::Local && s.cluster_ip.is_some() {
            let _ = writeln!(
                out,
                "  internalTrafficPolicy Local: ClusterIP traffic goes only to an endpoint on the sender's node; nodes without one drop it."
            );
        }
    }
    out.push('\n');
}
