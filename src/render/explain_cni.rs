//! The parts of `explain` that depend on the CNI model: how the header names it, a VXLAN
//! device's tunnel endpoints, and, without kube-proxy, Cilium's Service maps.

use std::fmt::Write;

use super::style::{Style, indent};
use crate::model::Cluster;
use crate::net::{Host, Link};

/// The CNI model as the header names it, with Calico's pool.
pub(super) fn cni_words(c: &Cluster) -> String {
    match (c.cni, c.calico) {
        (crate::model::Cni::Bridge, _) => "bridge (what kubenet set up)".to_owned(),
        (crate::model::Cni::Calico, Some(p)) => format!(
            "calico (ipPool {}, blockSize /{}, encapsulation {})",
            p.ip_pool,
            p.block_size,
            p.encapsulation.word()
        ),
        (other, _) => other.word().to_owned(),
    }
}

/// Without kube-proxy, what Cilium's Service maps hold for `s`: each frontend with its backends.
pub(super) fn service_maps(out: &mut String, c: &Cluster, s: &crate::model::Service, style: Style) {
    let _ = writeln!(
        out,
        "  Cilium's Service maps {}",
        style.dim("(read by its eBPF programs: at connect() for pods' and nodes' sockets, on each node's device for NodePorts; modelled by their effect)")
    );
    let mut t = style.table(&["frontend", "backend", "pod", "node"]);
    for p in &s.ports {
        let mut frontends: Vec<String> = s
            .cluster_ip
            .map(|ip| format!("{ip}:{}/{}", p.port, p.protocol))
            .into_iter()
            .collect();
        if let Some(np) = p.node_port {
            frontends.push(format!("NodePort {np}/{} on every node", p.protocol));
        }
        if p.endpoints.is_empty() {
            t.add_row(vec![
                frontends.join(", "),
                "none: connect() fails".into(),
                String::new(),
                String::new(),
            ]);
        }
        for e in &p.endpoints {
            let pod = &c.pods[e.pod];
            t.add_row(vec![
                frontends.join(", "),
                format!("{}:{}", e.ip, e.port),
                pod.qualified_name(),
                c.nodes[pod.node].name.clone(),
            ]);
        }
    }
    let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));
}

/// A VXLAN device's permanent neighbour and FDB entries, as `ip neigh` and `bridge fdb` show them.
pub(super) fn tunnel_entries(out: &mut String, host: &Host, style: Style) {
    for i in &host.interfaces {
        let Link::Vxlan(v) = &i.link else { continue };
        let _ = writeln!(
            out,
            "  Tunnel endpoints of {} {}",
            style.strong(&i.name),
            style.dim("(ip neigh, bridge fdb)")
        );
        let mut t = style.table(&["neighbour", "forwarding database", "endpoint of"]);
        for p in v.entries() {
            t.add_row(vec![
                style.code(&format!("{} dev {} lladdr {} PERMANENT", p.addr, i.name, p.mac)),
                style.code(&format!("{} dev {} dst {} self permanent", p.mac, i.name, p.remote)),
                p.owner.clone(),
            ]);
        }
        let _ = writeln!(out, "{}", indent(&t.to_string(), 2));
    }
}
