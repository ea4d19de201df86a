//! The full walk (`trace -v`): every hop with every step taken there, every route lookup with the
//! routes it beat, every rule met, conntrack's entries, and the reply.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{branch_label, endpoint_at, tuple};
use crate::render::style::Style;
use crate::render::untrusted;
use crate::trace::{Hop, Step, Trace, Tuple};

/// The hooks and tables already explained in this walk.
type Seen = BTreeSet<(String, String)>;

pub fn text(t: &Trace, style: Style) -> String {
    let mut out = String::new();
    let mut seen = Seen::new();
    let _ = writeln!(
        out,
        "{} {} -> {}",
        style.heading("Trace"),
        style.strong(&untrusted::escape(&t.from)),
        style.strong(&untrusted::escape(&t.to))
    );
    for n in &t.notes {
        let _ = writeln!(out, "  {}", style.dim(n));
    }
    out.push('\n');
    if !t.resolution.is_empty() {
        let _ = writeln!(out, "{}", style.heading("Name resolution"));
        for s in &t.resolution {
            step(&mut out, s, style, &mut seen);
        }
        out.push('\n');
    }
    let mut previous = None;
    let mut number = 0;
    hops(&mut out, &t.hops, &mut number, &mut previous, style, &mut seen);
    if let Some(reply) = &t.reply {
        let _ = writeln!(out, "{}", style.heading("Reply"));
        let mut previous = None;
        hops(&mut out, &reply.hops, &mut number, &mut previous, style, &mut seen);
        if let Some(seen) = reply.seen_by_client {
            let _ = writeln!(out, "  the client sees the reply as {seen}\n");
        }
    }
    let verdict = if t.verdict.is_success() {
        style.good(t.verdict.name())
    } else {
        style.bad(t.verdict.name())
    };
    let _ = writeln!(out, "{} {verdict}: {}", style.heading("Verdict"), t.verdict.meaning());
    let _ = writeln!(out, "  {}", t.reason);
    if let Some(d) = &t.delivered_to {
        let _ = writeln!(out, "  delivered to {} ({})", d.address(), d.listener);
    }
    if !t.verdict.is_success() {
        let _ = writeln!(out, "  hint: {}", t.hint());
    }
    out
}

fn hops(
    out: &mut String,
    hops: &[Hop],
    number: &mut usize,
    previous: &mut Option<Tuple>,
    style: Style,
    seen: &mut Seen,
) {
    for hop in hops {
        *number += 1;
        // Named as the brief form names places, with the name itself in bold.
        let name = style.strong(&hop.place.name);
        let place = match (&hop.place.node, hop.place.kind.as_str()) {
            (Some(n), "pod") => format!("pod {name} on {n}"),
            (_, "pod" | "node") => format!("{} {name}", hop.place.kind),
            _ => name,
        };
        let arrived = match &hop.iif {
            Some(iif) => format!("in on {iif}"),
            None => "sent".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:>2}. {place}  {}  [{}]",
            number,
            style.dim(&arrived),
            tuple(hop.packet, *previous, style)
        );
        let mut steps = hop.steps.iter().peekable();
        while let Some(s) = steps.next() {
            // A jump into a chain where no rule matched reads as one step: fold the two.
            if let Step::Netfilter {
                hook,
                table,
                rule: Some(rule),
                action,
                ..
            } = s
                && let Some(Step::Netfilter { rule: None, chain, .. }) = steps.peek()
                && action.strip_prefix("jump to ") == Some(chain.as_str())
            {
                introduce(out, hook, table, style, seen);
                let _ = writeln!(out, "    {hook}/{table}: {}", style.code(rule));
                let _ = writeln!(out, "      -> {action}, where no rule matched: back here");
                steps.next();
                continue;
            }
            step(out, s, style, seen);
        }
        *previous = Some(hop.leaving());
        out.push('\n');
    }
}

fn step(out: &mut String, s: &Step, style: Style, seen: &mut Seen) {
    match s {
        Step::Route {
            table,
            destination,
            matched,
            rejected,
            origin,
            ..
        } => {
            match matched {
                Some(m) => {
                    let _ = write!(out, "    route {destination}: table {table} -> {}", style.code(m));
                    if let Some(o) = origin {
                        let _ = write!(out, "  {}", style.dim(&format!("({o})")));
                    }
                    out.push('\n');
                }
                None => {
                    let _ = writeln!(out, "    route {destination}: {}", style.bad("no route matches"));
                }
            }
            for r in rejected {
                let _ = writeln!(out, "      beat {}: {}", style.code(&r.route), r.reason);
            }
        }
        Step::Netfilter {
            hook,
            table,
            rule,
            action,
            ..
        } => {
            introduce(out, hook, table, style, seen);
            match rule {
                Some(rule) => {
                    let _ = writeln!(out, "    {hook}/{table}: {}", style.code(rule));
                    let _ = writeln!(out, "      -> {action}");
                }
                None => {
                    let _ = writeln!(out, "    {hook}/{table}: {}", style.dim(action));
                }
            }
        }
        Step::LoadBalance { chain, branches, how } => {
            // IPVS's rr scheduler takes its real servers in turn rather than at random; over
            // many connections each gets the same share.
            if chain.starts_with("IPVS lookup") {
                let _ = writeln!(
                    out,
                    "    {chain}, each real server in turn (at INPUT, after routing to kube-ipvs0):"
                );
            } else {
                let _ = writeln!(out, "    {chain} picks a branch at random:");
            }
            for b in branches {
                let chosen = if b.chosen {
                    style.strong("  <- this trace")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "      {}{chosen}", branch_label(b));
            }
            let _ = writeln!(out, "      followed: {how}");
        }
        Step::Nat {
            nat,
            before,
            after,
            conntrack,
            endpoint,
            node,
        } => {
            let behind = match endpoint {
                Some(_) => format!("  ({})", endpoint_at(endpoint.as_deref(), after.dst, node.as_deref())),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "    {} {} => {}{}",
                style.changed(nat),
                before,
                tuple(*after, Some(*before), style),
                style.dim(&behind)
            );
            if let Some(ct) = conntrack {
                let _ = writeln!(out, "      {}", style.dim(&format!("conntrack entry: {ct}")));
            }
        }
        Step::Forward { detail, .. } => {
            let _ = writeln!(out, "    {detail}");
        }
        Step::Deliver { listener } => {
            let _ = writeln!(out, "    {} {listener}", style.good("delivered to"));
        }
        Step::Drop { reason } => {
            let _ = writeln!(out, "    {} {reason}", style.bad("dropped:"));
        }
        Step::Note { text } => {
            let _ = writeln!(out, "    {}", style.dim(text));
        }
        Step::Tunnel {
            action, inner, detail, ..
        } => {
            let _ = writeln!(
                out,
                "    {}: {}",
                style.changed(action),
                super::brief::tunnel_summary(s)
            );
            let _ = writeln!(out, "      {}", style.dim(&format!("inner {inner}")));
            let _ = writeln!(out, "      {}", style.dim(detail));
        }
        Step::Policy {
            verdict,
            summary,
            policies,
            ..
        } => {
            let line = if verdict == "denied" {
                style.bad(summary).to_string()
            } else {
                style.strong(summary).to_string()
            };
            let _ = writeln!(out, "    {line}");
            if !policies.is_empty() {
                let _ = writeln!(
                    out,
                    "      {}",
                    style.dim(&format!("selected by: {}", policies.join(", ")))
                );
            }
        }
        Step::Dns {
            name,
            search,
            ndots,
            queries,
            answer,
            record,
        } => {
            let _ = writeln!(
                out,
                "    resolve {}  {}",
                style.strong(name),
                style.dim(&format!("(search {}; ndots:{ndots})", search.join(" ")))
            );
            for q in queries {
                let answer = match &q.answer {
                    None => style.dim("NXDOMAIN"),
                    Some(a) if a.is_empty() => style.dim("no addresses"),
                    Some(a) => style.good(&a.iter().map(|ip| ip.to_string()).collect::<Vec<_>>().join(", ")),
                };
                let _ = writeln!(out, "      {} -> {answer}", q.name);
            }
            match (answer.first(), record) {
                (Some(first), Some(what)) => {
                    let _ = writeln!(out, "      answer: {first} ({what})");
                }
                _ => {
                    let _ = writeln!(out, "      {}", style.bad("no name exists: NXDOMAIN"));
                }
            }
        }
        Step::Http {
            host,
            path,
            candidates,
            backend,
            how,
        } => {
            let _ = writeln!(
                out,
                "    HTTP request for host {} path {}",
                style.strong(host),
                style.strong(path)
            );
            for c in candidates {
                let rule = match (&c.path, &c.path_type) {
                    (Some(p), Some(t)) => format!("{} {p} ({t}) -> {}", c.host, c.backend),
                    _ => format!("{} -> {}", c.host, c.backend),
                };
                let mark = if c.chosen {
                    style.strong("  <- chosen")
                } else {
                    String::new()
                };
                let _ = writeln!(out, "      {} {}: {}{mark}", c.ingress, style.code(&rule), c.why);
            }
            match backend {
                Some(b) => {
                    let _ = writeln!(out, "      backend {}: {how}", style.strong(b));
                }
                None => {
                    let _ = writeln!(out, "      {}", style.bad(how));
                }
            }
        }
    }
}

/// Says once per walk what a hook and table are for, the first time a rule there is met.
fn introduce(out: &mut String, hook: &str, table: &str, style: Style, seen: &mut Seen) {
    if !seen.insert((hook.to_owned(), table.to_owned())) {
        return;
    }
    let what = match (hook, table) {
        ("PREROUTING", "nat") => {
            "packets as they arrive, before routing: where kube-proxy translates Service addresses (DNAT)"
        }
        ("INPUT", "filter") => "packets for this host itself, after routing",
        ("INPUT", "nat") => "packets for this host itself, after routing: source translation of new connections",
        ("FORWARD", "filter") => {
            "packets this host routes or bridges on: where kube-proxy accepts, rejects or drops Service traffic"
        }
        ("OUTPUT", "nat") => {
            "packets this host's own sockets send, before routing: kube-proxy translates Service addresses here too"
        }
        ("OUTPUT", "filter") => "packets this host's own sockets send, after routing",
        ("POSTROUTING", "nat") => "packets about to leave, after routing: where sources are rewritten (masquerade)",
        _ => return,
    };
    let _ = writeln!(out, "    {}", style.dim(&format!("[{hook}/{table}: {what}]")));
}
