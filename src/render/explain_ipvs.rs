//! `explain` of a cluster whose kube-proxy runs in IPVS mode: each node's IPVS table as
//! `ipvsadm -Ln` lists it, the addresses on `kube-ipvs0`, the IP sets and the nat rules kube-proxy
//! still writes, and the virtual servers one Service port owns.

use std::fmt::Write;

use super::style::Style;
use crate::model::{Cluster, Service, ServicePort};
use crate::net::ipvs::{Address, DUMMY_DEVICE, Ipvs, Shared};
use crate::net::{Host, NetState, Role};

fn nodes<'a>(c: &Cluster, state: &'a NetState) -> Vec<&'a Host> {
    (0..state.hosts.len())
        .filter(|&i| matches!(state.hosts.role(i), Role::Node { .. }))
        .map(|i| &state.hosts[i])
        .filter(|h| h.ipvs.is_some() && c.node_named(&h.name).is_some())
        .collect()
}

fn indented(out: &mut String, text: &str, by: usize, style: Style) {
    for line in text.lines() {
        let _ = writeln!(out, "{:by$}{}", "", style.code(line));
    }
}

/// What a node holds for IPVS, as the commands that list it print it.
fn listing(h: &Host, ipvs: &Ipvs) -> String {
    let mut text = format!("# ip -brief address show dev {DUMMY_DEVICE}\n");
    if let Some(dev) = h.interface(DUMMY_DEVICE) {
        let addrs: Vec<String> = dev.addrs.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(text, "{DUMMY_DEVICE}        DOWN           {}", addrs.join(" "));
    }
    text.push_str("# ipvsadm -Ln\n");
    text.push_str(&ipvs.list());
    text.push_str("# ipset save\n");
    text.push_str(&h.ipsets.save());
    text.push_str("# iptables-save -t nat\n");
    text.push_str(&h.nat.save());
    text
}

/// The first node's IPVS state in full, then for each other node the lines that differ.
pub fn tables(out: &mut String, c: &Cluster, state: &NetState, style: Style) {
    let hosts = nodes(c, state);
    let Some(first) = hosts.first() else {
        return;
    };
    let Some(ipvs) = &first.ipvs else { return };
    let _ = writeln!(
        out,
        "{} {}",
        style.heading(&format!("kube-proxy's IPVS state on {}", first.name)),
        style.dim("(kube-ipvs0's addresses, `ipvsadm -Ln`, and the sets and nat rules it matches with)")
    );
    let mine = listing(first, ipvs);
    indented(out, &mine, 2, style);
    out.push('\n');
    for h in &hosts[1..] {
        let Some(theirs_ipvs) = &h.ipvs else { continue };
        let theirs = listing(h, theirs_ipvs);
        let mine_lines: Vec<&str> = mine.lines().collect();
        let their_lines: Vec<&str> = theirs.lines().collect();
        // A real server line says nothing without its virtual server: each is placed under it.
        let placed = |lines: &[&str]| -> Vec<String> {
            let mut head = "";
            let mut all = Vec::new();
            for l in lines {
                if l.starts_with("  -> ") {
                    all.push(format!("{head} {}", l.trim()));
                } else {
                    if !l.starts_with('#') {
                        head = l;
                    }
                    all.push((*l).to_owned());
                }
            }
            all
        };
        let (m, t) = (placed(&mine_lines), placed(&their_lines));
        let removed: Vec<&String> = m.iter().filter(|l| !t.contains(l) && !l.starts_with('#')).collect();
        let added: Vec<&String> = t.iter().filter(|l| !m.contains(l) && !l.starts_with('#')).collect();
        if removed.is_empty() && added.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "{} {}",
            style.heading(&format!("On {}", h.name)),
            style.dim(&format!(
                "(the same, but for these lines: + only on {}, - only on {})",
                h.name, first.name
            ))
        );
        for (sign, lines) in [("-", removed), ("+", added)] {
            for l in lines {
                let _ = writeln!(out, "  {sign} {}", style.code(l));
            }
        }
        out.push('\n');
    }
}

/// One node's IPVS state in full.
pub fn node_table(out: &mut String, h: &Host, style: Style) {
    let Some(ipvs) = &h.ipvs else { return };
    let _ = writeln!(
        out,
        "  kube-proxy's IPVS state {}",
        style.dim("(kube-ipvs0's addresses, `ipvsadm -Ln`, and the sets and nat rules it matches with)")
    );
    indented(out, &listing(h, ipvs), 4, style);
}

/// The virtual servers of one Service port on each node, nodes that hold the same ones named
/// together.
pub fn service_port(out: &mut String, c: &Cluster, state: &NetState, s: &Service, port: &ServicePort, style: Style) {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    // Every node holds the same list of virtual servers (`net::ipvs::Shared`): the port's
    // positions in it are found once, not once per node.
    let mut positions: Option<(*const Shared, Vec<usize>)> = None;
    for h in nodes(c, state) {
        let Some(ipvs) = &h.ipvs else { continue };
        let shared: *const Shared = ipvs.shared();
        if positions.as_ref().is_none_or(|(of, _)| *of != shared) {
            positions = Some((shared, port_positions(ipvs.shared(), s, port)));
        }
        let mut text = String::new();
        for &i in positions.iter().flat_map(|(_, at)| at) {
            ipvs.write_server(&mut text, i);
        }
        // A NodePort's virtual server is on each node's own address: nodes differ by it alone.
        if let Some(n) = c.node_named(&h.name) {
            text = text.replace(&format!(" {}:", c.nodes[n].ip), " <node address>:");
        }
        match groups.iter_mut().find(|(t, _)| *t == text) {
            Some((_, names)) => names.push(h.name.clone()),
            None => groups.push((text, vec![h.name.clone()])),
        }
    }
    let every = groups.len() == 1;
    for (text, names) in &groups {
        let on = if every {
            "every node".to_owned()
        } else {
            names.join(", ")
        };
        let _ = writeln!(
            out,
            "  IPVS virtual servers of {} on {on} {}",
            port_name(s, port),
            style.dim("(as `ipvsadm -Ln` lists them; the NodePort's on the node's own address)")
        );
        if text.is_empty() {
            let _ = writeln!(out, "    {}", style.dim("none"));
        }
        indented(out, text, 4, style);
    }
}

fn port_name(s: &Service, p: &ServicePort) -> String {
    match &p.name {
        Some(n) => format!("{}:{n}", s.qualified_name()),
        None => s.qualified_name(),
    }
}

/// The positions of the virtual servers of a Service port: on its ClusterIP and load-balancer
/// IP at its port, and its NodePort.
fn port_positions(shared: &Shared, s: &Service, port: &ServicePort) -> Vec<usize> {
    let bound = |ip: &std::net::Ipv4Addr| Some(*ip) == s.cluster_ip || Some(*ip) == s.load_balancer_ip;
    shared
        .templates()
        .iter()
        .enumerate()
        .filter(|(_, t)| {
            t.protocol == port.protocol
                && match t.addr {
                    Address::Service(a) => bound(a.ip()) && a.port() == port.port,
                    Address::NodePort(np) => Some(np) == port.node_port,
                }
        })
        .map(|(i, _)| i)
        .collect()
}
