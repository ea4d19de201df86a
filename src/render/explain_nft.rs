//! `explain` of a cluster whose kube-proxy runs in nftables mode: the `ip kube-proxy` table as
//! `nft list table ip kube-proxy` lists it on a node, what other nodes hold differently, and
//! the part of it one Service port owns.

use std::fmt::Write;

use super::style::Style;
use crate::compile::kube_proxy::nftables::port_chains;
use crate::model::{Cluster, Service, ServicePort};
use crate::net::nftables::Table;
use crate::net::{NetState, Role};

fn node_tables<'a>(c: &Cluster, state: &'a NetState) -> Vec<(String, &'a Table)> {
    (0..state.hosts.len())
        .filter(|&i| matches!(state.hosts.role(i), Role::Node { .. }))
        .filter_map(|i| {
            let h = &state.hosts[i];
            let t = h.nftables.as_ref()?;
            c.node_named(&h.name).map(|_| (h.name.clone(), t))
        })
        .collect()
}

fn indented(out: &mut String, text: &str, by: usize, style: Style) {
    for line in text.lines() {
        let _ = writeln!(out, "{:by$}{}", "", style.code(&line.replace('\t', "    ")));
    }
}

/// The first node's table in full, then for each other node the lines its listing has that the
/// first node's has not, and the other way round.
pub fn tables(out: &mut String, c: &Cluster, state: &NetState, style: Style) {
    let tables = node_tables(c, state);
    let Some((first, table)) = tables.first() else {
        return;
    };
    let listing = table.list();
    let _ = writeln!(
        out,
        "{} {}",
        style.heading(&format!("kube-proxy's nftables table on {first}")),
        style.dim("(as `nft list table ip kube-proxy` lists it)")
    );
    indented(out, &listing, 2, style);
    out.push('\n');
    let mine = placed_lines(&listing);
    let mine_set: std::collections::HashSet<&(String, String)> = mine.iter().collect();
    for (name, t) in &tables[1..] {
        let other = t.list();
        let theirs = placed_lines(&other);
        let theirs_set: std::collections::HashSet<&(String, String)> = theirs.iter().collect();
        let added: Vec<&(String, String)> = theirs.iter().filter(|l| !mine_set.contains(l)).collect();
        let removed: Vec<&(String, String)> = mine.iter().filter(|l| !theirs_set.contains(l)).collect();
        if added.is_empty() && removed.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{} {}",
            style.heading(&format!("On {name}")),
            style.dim(&format!(
                "(the same table, but for these lines: + only on {name}, - only on {first})"
            ))
        );
        for (sign, lines) in [("-", removed), ("+", added)] {
            for (within, line) in lines {
                let _ = writeln!(out, "  {sign} {within}: {}", style.code(line));
            }
        }
        out.push('\n');
    }
}

/// Each line of a listing inside a set, map or chain, with the `set NAME`, `map NAME` or
/// `chain NAME` it stands in, so that a line that differs says where it is.
fn placed_lines(listing: &str) -> Vec<(String, String)> {
    let mut within = String::new();
    let mut out = Vec::new();
    for line in listing.lines() {
        if let Some(head) = line.strip_prefix('\t').filter(|l| !l.starts_with('\t')) {
            if let Some(name) = head.strip_suffix(" {") {
                within = name.to_owned();
            }
            continue;
        }
        if !line.starts_with("\t\t") {
            continue;
        }
        // A set's elements, one entry each, whichever line nft put them on.
        let text = line.trim();
        let body = text.strip_prefix("elements = { ");
        if body.is_some() || line.starts_with("\t\t\t") {
            let body = body.unwrap_or(text);
            let body = body.strip_suffix(" }").unwrap_or(body);
            for e in body.split(", ").map(|e| e.trim_end_matches(',')) {
                out.push((within.clone(), format!("element {e}")));
            }
            continue;
        }
        out.push((within.clone(), text.to_owned()));
    }
    out
}

/// How many elements of a set a large cluster's node view shows.
const ELEMENTS_SHOWN: usize = 20;

/// One node's table: in full, or for a large cluster abridged (the chains of single Services
/// left out, and the maps cut short), with where to find the rest.
pub fn node_table(out: &mut String, table: &Table, large: bool, style: Style) {
    let _ = writeln!(
        out,
        "  kube-proxy's table {}",
        style.dim("(as `nft list table ip kube-proxy` lists it)")
    );
    if !large {
        indented(out, &table.list(), 4, style);
        return;
    }
    let (text, left_out) = table.list_abridged(ELEMENTS_SHOWN);
    indented(out, &text, 4, style);
    let _ = writeln!(
        out,
        "  {}",
        style.dim(&format!(
            "{left_out} chains of single Services and endpoints left out, and maps cut at {ELEMENTS_SHOWN} elements: `k8snet explain --service NAME` shows one Service's"
        ))
    );
}

/// What of `table` belongs to one Service port: its elements in the maps and sets, and its
/// chains.
fn port_entries(table: &Table, s: &Service, port: &ServicePort) -> Vec<String> {
    let chains = port_chains(s, port);
    let mut lines = Vec::new();
    for set in table.sets() {
        for e in set.elements() {
            let by_key = e.key.addr.is_some_and(|a| {
                Some(a) == s.cluster_ip || Some(a) == s.load_balancer_ip || s.external_ips.contains(&a)
            }) && e.key.protocol.is_none_or(|p| p == port.protocol)
                && e.key.port.is_none_or(|p| p == port.port);
            let by_node_port = e.key.addr.is_none()
                && e.key.protocol == Some(port.protocol)
                && e.key.port.is_some()
                && e.key.port == port.node_port;
            if by_key || by_node_port {
                lines.push(format!(
                    "{} {}: {}",
                    if set.map { "map" } else { "set" },
                    set.name,
                    e.text()
                ));
            }
        }
        if chains.affinity.contains(&set.name) {
            lines.push(format!("set {} (timed, filled by the endpoint chain)", set.name));
        }
    }
    for chain in table.chains() {
        if chain.name == chains.service
            || chain.name == chains.local
            || chain.name == chains.external
            || chain.name == chains.firewall
            || chains.endpoints.contains(&chain.name)
        {
            lines.push(format!("chain {} {{", chain.name));
            lines.extend(chain.rules.iter().map(|r| format!("    {}", r.text())));
            lines.push("}".into());
        }
    }
    lines
}

/// The entries of one Service port, each distinct list with the nodes that hold it, in node
/// order.
pub fn port_groups(c: &Cluster, state: &NetState, s: &Service, port: &ServicePort) -> Vec<(Vec<String>, Vec<String>)> {
    let tables = node_tables(c, state);
    // Nodes hold different entries only when a policy is Local or a source range holds a
    // node's address; otherwise one node says it for all.
    let differs = s.internal_traffic_policy == crate::model::TrafficPolicy::Local
        || s.external_traffic_policy == crate::model::TrafficPolicy::Local
        || !s.load_balancer_source_ranges.is_empty();
    // Nodes with the same local endpoints (and the same standing in the source ranges) hold
    // the same entries: one of each kind is read, as the iptables view does.
    let kind = |node: &str| {
        let n = c.node_named(node);
        let local: Vec<usize> = (0..port.endpoints.len())
            .filter(|&i| Some(c.pods[port.endpoints[i].pod].node) == n)
            .collect();
        let in_range = n.is_some_and(|n| s.load_balancer_source_ranges.iter().any(|r| r.contains(&c.nodes[n].ip)));
        (local, in_range)
    };
    let mut groups: Vec<(Vec<String>, Vec<String>)> = Vec::new();
    let mut kinds: Vec<((Vec<usize>, bool), usize)> = Vec::new();
    for (name, t) in &tables {
        if !differs && !groups.is_empty() {
            groups[0].1.push(name.clone());
            continue;
        }
        let k = kind(name);
        if let Some((_, g)) = kinds.iter().find(|(seen, _)| *seen == k) {
            groups[*g].1.push(name.clone());
            continue;
        }
        let lines = port_entries(t, s, port);
        match groups.iter().position(|(l, _)| *l == lines) {
            Some(g) => {
                groups[g].1.push(name.clone());
                kinds.push((k, g));
            }
            None => {
                kinds.push((k, groups.len()));
                groups.push((lines, vec![name.clone()]));
            }
        }
    }
    groups
}

/// The entries of one Service port, on every node or per group of nodes that hold the same.
pub fn service_port(out: &mut String, c: &Cluster, state: &NetState, s: &Service, port: &ServicePort, style: Style) {
    let groups = port_groups(c, state, s, port);
    let name = crate::compile::names::service_port_name(s, port);
    for (lines, nodes) in &groups {
        let on = if groups.len() == 1 {
            "every node".to_owned()
        } else {
            nodes.join(", ")
        };
        let _ = writeln!(
            out,
            "  kube-proxy's nftables entries for {name} on {on} {}",
            style.dim("(as `nft list table ip kube-proxy` lists them)")
        );
        for l in lines {
            let _ = writeln!(out, "    {}", style.code(l));
        }
    }
}
