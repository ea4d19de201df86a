//! A trace as text for people (hop by hop, numbered) and as JSON for machines.

use std::fmt::Write;

use super::style::Style;
use crate::trace::{Hop, Step, Trace, Tuple};

pub fn json(traces: &[Trace]) -> String {
    let value = match traces {
        [one] => serde_json::to_value(one),
        many => serde_json::to_value(many),
    };
    value
        .and_then(|v| serde_json::to_string_pretty(&v))
        .map(|s| s + "\n")
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"))
}

pub fn text(t: &Trace, style: Style) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {} -> {}",
        style.heading("Trace"),
        style.strong(&t.from),
        style.strong(&t.to)
    );
    for n in &t.notes {
        let _ = writeln!(out, "  {}", style.dim(n));
    }
    out.push('\n');
    if !t.resolution.is_empty() {
        let _ = writeln!(out, "{}", style.heading("Name resolution"));
        for s in &t.resolution {
            step(&mut out, s, style);
        }
        out.push('\n');
    }
    let mut previous = None;
    let mut number = 0;
    hops(&mut out, &t.hops, &mut number, &mut previous, style);
    if let Some(reply) = &t.reply {
        let _ = writeln!(out, "{}", style.heading("Reply"));
        let mut previous = None;
        hops(&mut out, &reply.hops, &mut number, &mut previous, style);
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
        let _ = writeln!(out, "  delivered to {}:{} ({})", d.ip, d.port, d.listener);
    }
    if !t.verdict.is_success() {
        let _ = writeln!(out, "  hint: {}", t.verdict.hint());
    }
    out
}

/// A tuple, with the parts that differ from `before` highlighted.
fn tuple(t: Tuple, before: Option<Tuple>, style: Style) -> String {
    let mark = |now: String, changed: bool| if changed { style.changed(&now) } else { now };
    let src = mark(t.src.to_string(), before.is_some_and(|b| b.src != t.src));
    let dst = mark(t.dst.to_string(), before.is_some_and(|b| b.dst != t.dst));
    format!("{} {src} -> {dst}", t.protocol.lower())
}

fn hops(out: &mut String, hops: &[Hop], number: &mut usize, previous: &mut Option<Tuple>, style: Style) {
    for hop in hops {
        *number += 1;
        let node = match (&hop.place.node, hop.place.kind.as_str()) {
            (Some(n), "pod") => format!(" on {n}"),
            _ => String::new(),
        };
        let arrived = match &hop.iif {
            Some(iif) => format!("in on {iif}"),
            None => "sent".to_owned(),
        };
        let _ = writeln!(
            out,
            "{:>2}. {} {}{node}  {}  [{}]",
            number,
            hop.place.kind,
            style.strong(&hop.place.name),
            style.dim(&arrived),
            tuple(hop.packet, *previous, style)
        );
        for s in &hop.steps {
            step(out, s, style);
        }
        *previous = Some(
            hop.steps
                .iter()
                .rev()
                .find_map(|s| match s {
                    Step::Nat { after, .. } => Some(*after),
                    _ => None,
                })
                .unwrap_or(hop.packet),
        );
        out.push('\n');
    }
}

fn step(out: &mut String, s: &Step, style: Style) {
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
            if let Some(rule) = rule {
                let _ = writeln!(out, "    {hook}/{table}: {}", style.code(rule));
                let _ = writeln!(out, "      -> {action}");
            }
        }
        Step::LoadBalance { chain, branches, how } => {
            let _ = writeln!(out, "    {chain} picks a branch at random:");
            for b in branches {
                let chosen = if b.chosen {
                    style.strong("  <- this trace")
                } else {
                    String::new()
                };
                let _ = writeln!(
                    out,
                    "      {} rule probability {:.5}, share {:.1}%{chosen}",
                    b.target,
                    b.probability,
                    b.share * 100.0
                );
            }
            let _ = writeln!(out, "      followed: {how}");
        }
        Step::Nat {
            nat,
            before,
            after,
            conntrack,
        } => {
            let _ = writeln!(
                out,
                "    {} {} => {}",
                style.changed(nat),
                before,
                tuple(*after, Some(*before), style)
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

/// One JSON Lines record of a batch: the query's line and its trace, as `-o json` writes it.
pub fn json_line(line: usize, t: &Trace) -> String {
    let record = serde_json::json!({ "line": line, "trace": t });
    record.to_string() + "\n"
}

/// A batch in text: one line per trace (where it was delivered, or why not), then a count.
pub fn summary(traces: &[(Option<usize>, Trace)], style: Style) -> String {
    let mut out = String::new();
    let mut failed = 0;
    for (line, t) in traces {
        let verdict = if t.verdict.is_success() {
            style.good(t.verdict.name())
        } else {
            failed += 1;
            style.bad(t.verdict.name())
        };
        let _ = write!(out, "{}: {} -> {}: {verdict}", line.unwrap_or_default(), t.from, t.to);
        match &t.delivered_to {
            Some(d) => {
                let who = match (&d.namespace, &d.pod) {
                    (Some(ns), Some(pod)) => format!("{ns}/{pod} "),
                    _ => String::new(),
                };
                let _ = writeln!(out, " to {who}at {}:{}", d.ip, d.port);
            }
            None if t.verdict.is_success() => out.push('\n'),
            None => {
                let _ = writeln!(out, ": {}", t.reason);
            }
        }
    }
    let _ = writeln!(
        out,
        "{} traces: {} delivered or left the cluster, {failed} did not",
        traces.len(),
        traces.len() - failed
    );
    out
}
