//! The brief trace, the default: the verdict and why first, then one line per hop with where
//! the packet is, the interface it came in on, the packet, and the one decision that mattered
//! there (a translation with the endpoint it chose, the ingress controller's backend, the
//! delivery or the drop, otherwise the route taken). `-v` gives the full walk.

use std::fmt::Write;

use super::{branch_target, endpoint_at, tuple};
use crate::render::style::Style;
use crate::render::untrusted;
use crate::trace::{Hop, Step, Trace, Tuple};

pub fn text(t: &Trace, style: Style) -> String {
    let mut out = String::new();
    let verdict = if t.verdict.is_success() {
        style.good(t.verdict.name())
    } else {
        style.bad(t.verdict.name())
    };
    let _ = writeln!(
        out,
        "{verdict}  {} -> {}",
        style.strong(&untrusted::escape(&t.from)),
        style.strong(&untrusted::escape(&t.to))
    );
    let _ = writeln!(out, "  {}", t.reason);
    for n in &t.notes {
        let _ = writeln!(out, "  {}", style.dim(n));
    }
    for s in &t.resolution {
        if let Step::Dns {
            name, answer, record, ..
        } = s
        {
            let line = match (answer.is_empty(), record) {
                (false, Some(what)) => {
                    let all: Vec<String> = answer.iter().map(|a| a.to_string()).collect();
                    format!("{name} resolves to {} ({what})", all.join(", "))
                }
                _ => format!("{name} does not resolve: NXDOMAIN"),
            };
            let _ = writeln!(out, "  {}", style.dim(&line));
        }
    }

    let request: Vec<Row> = rows(&t.hops, style);
    let reply: Vec<Row> = t.reply.as_ref().map(|r| rows(&r.hops, style)).unwrap_or_default();
    let all = || request.iter().chain(&reply);
    let place_w = all().map(|r| r.place.len()).max().unwrap_or(0);
    let arrived_w = all().map(|r| r.arrived.len()).max().unwrap_or(0);
    let packet_w = all().map(|r| r.packet_plain.len()).max().unwrap_or(0);
    let mut number = 0;
    for (title, rows) in [("", &request), ("reply", &reply)] {
        if rows.is_empty() {
            continue;
        }
        if title.is_empty() {
            out.push('\n');
        } else {
            let _ = writeln!(out, "{}", style.heading(title));
        }
        for r in rows.iter() {
            number += 1;
            let pad = |plain_len: usize, width: usize| " ".repeat(width - plain_len);
            let _ = writeln!(
                out,
                "{number:>2}. {}{}  {}{}  {}{}  {}",
                style.strong(&r.place),
                pad(r.place.len(), place_w),
                style.dim(&r.arrived),
                pad(r.arrived.len(), arrived_w),
                r.packet,
                pad(r.packet_plain.len(), packet_w),
                r.decision
            );
        }
    }
    if let Some(seen) = t.reply.as_ref().and_then(|r| r.seen_by_client) {
        let _ = writeln!(out, "  the client sees the reply as {seen}");
    }
    if !t.verdict.is_success() {
        let _ = writeln!(out, "\n{}: {}", t.verdict.name(), t.verdict.meaning());
        let _ = writeln!(out, "hint: {}", t.hint());
    }
    out
}

/// The line under a brief trace that says where the rest is.
pub fn footer(style: Style) -> String {
    format!("{}\n", style.dim("(-v shows every route, rule and conntrack entry)"))
}

struct Row {
    place: String,
    arrived: String,
    packet: String,
    packet_plain: String,
    decision: String,
}

fn rows(hops: &[Hop], style: Style) -> Vec<Row> {
    let mut previous: Option<Tuple> = None;
    hops.iter()
        .map(|hop| {
            let place = super::place_label(&hop.place);
            let arrived = match &hop.iif {
                Some(iif) => format!("in {iif}"),
                None => "sent".to_owned(),
            };
            let row = Row {
                place,
                arrived,
                packet: tuple(hop.packet, previous, style),
                packet_plain: hop.packet.to_string(),
                decision: decision(hop, style),
            };
            previous = Some(hop.leaving());
            row
        })
        .collect()
}

/// The decisions at `hop` that changed the packet's fate, in order; the route taken when none
/// did.
pub(super) fn decision(hop: &Hop, style: Style) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut chosen = None;
    for s in &hop.steps {
        match s {
            Step::LoadBalance { branches, .. } => chosen = branches.iter().find(|b| b.chosen),
            Step::Nat {
                nat,
                after,
                endpoint,
                node,
                ..
            } => parts.push(match nat.as_str() {
                "DNAT" => match chosen.filter(|b| b.to == Some(after.dst)) {
                    Some(b) => format!(
                        "{} to {} (share {:.0} %)",
                        style.changed("DNAT"),
                        branch_target(b),
                        b.share * 100.0
                    ),
                    None => format!(
                        "{} to {}",
                        style.changed("DNAT"),
                        endpoint_at(endpoint.as_deref(), after.dst, node.as_deref())
                    ),
                },
                "un-DNAT" => format!("{} from {}", style.changed("un-DNAT"), after.src),
                "un-SNAT" => format!("{} to {}", style.changed("un-SNAT"), after.dst),
                other => format!("{} from {}", style.changed(other), after.src.ip()),
            }),
            Step::Http {
                backend, host, path, ..
            } => parts.push(match backend {
                Some(b) => format!("ingress {host}{path} -> {}", style.strong(b)),
                None => format!("ingress {host}{path}: {}", style.bad("no rule, no default backend")),
            }),
            Step::Netfilter {
                chain,
                rule: Some(rule),
                action,
                ..
            } if action == "drop" || action.starts_with("reject") => {
                let what = if action == "drop" { "dropped" } else { "rejected" };
                let by = match comment_of(rule) {
                    Some(c) => format!("in {chain}: \"{c}\""),
                    None => format!("in {chain}"),
                };
                parts.push(format!("{} {by}", style.bad(what)));
            }
            Step::Deliver { listener } => parts.push(format!("{} {listener}", style.good("delivered to"))),
            Step::Drop { reason } => parts.push(format!("{} {reason}", style.bad("dropped:"))),
            Step::Policy { verdict, summary, .. } if verdict != "established" && verdict != "not_isolated" => parts
                .push(if verdict == "denied" {
                    style.bad(summary).to_string()
                } else {
                    summary.clone()
                }),
            _ => {}
        }
    }
    // A tunnel hop's decision is the route and the wrapping together: the route into the
    // tunnel, then the encapsulation; or the decapsulation, then the route out.
    let tunnel = hop.steps.iter().find_map(|s| match s {
        Step::Tunnel { action, .. } => Some((action == "encapsulate", style.changed(&tunnel_summary(s)).to_string())),
        _ => None,
    });
    if parts.is_empty() {
        let mut routes = hop.steps.iter().filter(|s| matches!(s, Step::Route { .. }));
        let wanted = match tunnel {
            Some((true, _)) => routes.next(),
            _ => routes.next_back(),
        };
        let route = wanted.and_then(|s| match s {
            Step::Route {
                matched, destination, ..
            } => Some(match matched {
                Some(m) => format!("route {}", style.code(&essentials(m))),
                None => format!("{} {destination}", style.bad("no route to")),
            }),
            _ => None,
        });
        // A bridged frame meets no route: what the bridge did is the decision.
        let bridged = || {
            hop.steps.iter().find_map(|s| match s {
                Step::Forward { detail, .. } => Some(detail.clone()),
                _ => None,
            })
        };
        parts.extend(route.or_else(bridged));
        match tunnel {
            Some((true, text)) => parts.push(text),
            Some((false, text)) => parts.insert(0, text),
            None => {}
        }
    }
    parts.join("; ")
}

/// What a tunnel step did, in a few words: `VXLAN to 10.100.0.3:8472, VNI 1`.
pub(super) fn tunnel_summary(step: &Step) -> String {
    let Step::Tunnel {
        action,
        encapsulation,
        vni,
        outer_src,
        outer_dst,
        outer_port,
        ..
    } = step
    else {
        return String::new();
    };
    let kind = match encapsulation.as_str() {
        "vxlan" => "VXLAN",
        "ipip" => "IP-in-IP",
        other => other,
    };
    let port = outer_port.map(|p| format!(":{p}")).unwrap_or_default();
    let vni = vni.map(|v| format!(", VNI {v}")).unwrap_or_default();
    if action == "encapsulate" {
        format!("{kind} {outer_src} -> {outer_dst}{port}{vni}")
    } else {
        format!("{kind} from {outer_src}{vni} unwrapped")
    }
}

/// A route in `ip route` form without what does not decide where the packet goes (its proto,
/// scope and preferred source): `10.0.1.0/24 dev cbr0`.
fn essentials(route: &str) -> String {
    let mut words = route.split(' ');
    let mut kept: Vec<&str> = Vec::new();
    while let Some(w) = words.next() {
        if matches!(w, "proto" | "scope" | "src") {
            words.next();
        } else {
            kept.push(w);
        }
    }
    kept.join(" ")
}

/// The text of a rule's `-m comment --comment "…"`, as iptables-save quotes it.
fn comment_of(rule: &str) -> Option<String> {
    let start = rule.find("--comment \"")? + "--comment \"".len();
    let mut text = String::new();
    let mut chars = rule[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => text.extend(chars.next()),
            '"' => return Some(text),
            c => text.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::{comment_of, essentials};

    #[test]
    fn a_rule_comment_is_read_as_iptables_save_quotes_it() {
        assert_eq!(
            comment_of(
                r#"-A KUBE-SERVICES -d 10.96.0.9/32 -m comment --comment "default/empty has no endpoints" -j REJECT"#
            ),
            Some("default/empty has no endpoints".into())
        );
        assert_eq!(
            comment_of(r#"-A X -m comment --comment "a \"b\" c" -j DROP"#),
            Some(r#"a "b" c"#.into())
        );
        assert_eq!(comment_of("-A X -j DROP"), None);
    }

    #[test]
    fn a_route_keeps_what_decides_where_the_packet_goes() {
        assert_eq!(
            essentials("10.0.1.0/24 dev cbr0 proto kernel scope link src 10.0.1.1"),
            "10.0.1.0/24 dev cbr0"
        );
        assert_eq!(
            essentials("default via 10.0.1.1 dev eth0"),
            "default via 10.0.1.1 dev eth0"
        );
        assert_eq!(
            essentials("blackhole 10.0.2.0/24 proto static metric 10"),
            "blackhole 10.0.2.0/24 metric 10"
        );
    }
}
