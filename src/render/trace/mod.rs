//! A trace as text for people and as JSON for machines. The text comes in two lengths: the
//! brief form (the default: the verdict, then one line per hop) and the full walk (`-v`).

mod brief;
mod diagram;
mod walk;

pub use diagram::{dot, mermaid};

use std::fmt::Write;

use crate::render::style::Style;
use crate::render::untrusted;
use crate::trace::{Branch, Place, Step, Trace, Tuple};

/// How much of a trace the text shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Detail {
    /// The verdict first, then one line per hop with the decision that mattered there.
    #[default]
    Brief,
    /// Every step of every hop.
    Full,
}

/// The version of the JSON output's shape; it changes only when a field changes meaning or goes.
pub const SCHEMA_VERSION: u32 = 1;

/// A trace as JSON: its own fields, with the verdict's meaning and hint after the verdict and
/// where it stopped after the reason.
fn trace_value(t: &Trace) -> serde_json::Value {
    let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(t) else {
        return serde_json::Value::Null;
    };
    let mut out = serde_json::Map::with_capacity(fields.len() + 3);
    for (k, v) in fields {
        let after = k.clone();
        out.insert(k, v);
        match after.as_str() {
            "verdict" => {
                out.insert("meaning".into(), t.verdict.meaning().into());
                out.insert("hint".into(), t.hint().into());
            }
            "reason" => {
                out.insert(
                    "stopped".into(),
                    serde_json::to_value(stopped(t)).unwrap_or(serde_json::Value::Null),
                );
            }
            _ => {}
        }
    }
    serde_json::Value::Object(out)
}

/// The one shape of `-o json`: `{"schema_version", "scenario", "traces": [...]}`, whether one
/// trace was asked for or several (`--all-endpoints`, several `--to`).
fn document(scenario: &crate::render::ScenarioRef, line: Option<usize>, traces: &[&Trace]) -> serde_json::Value {
    let mut doc = serde_json::Map::new();
    doc.insert("schema_version".into(), SCHEMA_VERSION.into());
    doc.insert(
        "scenario".into(),
        serde_json::to_value(scenario).unwrap_or(serde_json::Value::Null),
    );
    if let Some(line) = line {
        doc.insert("line".into(), line.into());
    }
    doc.insert(
        "traces".into(),
        serde_json::Value::Array(traces.iter().map(|t| trace_value(t)).collect()),
    );
    serde_json::Value::Object(doc)
}

pub fn json(scenario: &crate::render::ScenarioRef, traces: &[&Trace]) -> String {
    serde_json::to_string_pretty(&document(scenario, None, traces))
        .map(|s| s + "\n")
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}\n"))
}

/// The document of [`json`], as YAML.
pub fn yaml(scenario: &crate::render::ScenarioRef, traces: &[&Trace]) -> String {
    crate::render::yaml(&document(scenario, None, traces))
}

/// One batch query's document as one document of a YAML stream, started by `---`.
pub fn yaml_document(scenario: &crate::render::ScenarioRef, line: usize, traces: &[&Trace]) -> String {
    format!("---\n{}", crate::render::yaml(&document(scenario, Some(line), traces)))
}

fn text(t: &Trace, style: Style, detail: Detail) -> String {
    match detail {
        Detail::Brief => brief::text(t, style),
        Detail::Full => walk::text(t, style),
    }
}

/// One trace, or several of one question (`--all-endpoints`), each labelled, with a summary
/// line.
pub fn texts(traces: &[Trace], style: Style, detail: Detail) -> String {
    if let [one] = traces {
        return text(one, style, detail);
    }
    let mut out = String::new();
    for (i, t) in traces.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let chosen = chosen_branch(t);
        let label = match chosen {
            Some(b) => format!("Branch {} of {}: {}", i + 1, traces.len(), branch_target(b)),
            None => format!("Branch {} of {}", i + 1, traces.len()),
        };
        out.push_str(&style.heading(&label));
        out.push('\n');
        out.push_str(&text(t, style, detail));
    }
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for t in traces {
        match counts.iter_mut().find(|(v, _)| *v == t.verdict.name()) {
            Some((_, n)) => *n += 1,
            None => counts.push((t.verdict.name(), 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(v, n)| format!("{n} {v}")).collect();
    out.push_str(&format!("\n{} branches: {}\n", traces.len(), summary.join(", ")));
    out
}

/// The line under brief traces that says where the rest is; nothing under the full walk.
pub fn footer(style: Style, detail: Detail) -> String {
    match detail {
        Detail::Brief => brief::footer(style),
        Detail::Full => String::new(),
    }
}

/// A tuple, with the parts that differ from `before` highlighted.
fn tuple(t: Tuple, before: Option<Tuple>, style: Style) -> String {
    let mark = |now: String, changed: bool| if changed { style.changed(&now) } else { now };
    if !t.protocol.has_ports() {
        let src = mark(t.src.ip().to_string(), before.is_some_and(|b| b.src.ip() != t.src.ip()));
        let dst = mark(t.dst.ip().to_string(), before.is_some_and(|b| b.dst.ip() != t.dst.ip()));
        if t.protocol == crate::net::Protocol::Ipip {
            return format!("ipip {src} -> {dst}");
        }
        return format!("{} {src} -> {dst} id={}", t.protocol.lower(), t.src.port());
    }
    let src = mark(t.src.to_string(), before.is_some_and(|b| b.src != t.src));
    let dst = mark(t.dst.to_string(), before.is_some_and(|b| b.dst != t.dst));
    format!("{} {src} -> {dst}", t.protocol.lower())
}

/// Where a branch leads: the pod or node and address, or the chain when it names neither.
/// The branch a trace took at its last decision, the one that picks the endpoint (after any
/// load balancer's).
pub fn chosen_branch(t: &Trace) -> Option<&Branch> {
    t.hops.iter().flat_map(|h| &h.steps).rev().find_map(|s| match s {
        crate::trace::Step::LoadBalance { branches, .. } => branches.iter().find(|b| b.chosen),
        _ => None,
    })
}

/// The endpoint a branch leads to: `default/web-2 10.0.1.3:8080 on node-1`.
pub fn branch_target(b: &Branch) -> String {
    match b.to {
        Some(to) => endpoint_at(b.endpoint.as_deref(), to, b.node.as_deref()),
        None => b.target.clone(),
    }
}

/// `default/web-2 10.0.1.3:8080 on node-1`, with what is known of it.
fn endpoint_at(endpoint: Option<&str>, to: std::net::SocketAddrV4, node: Option<&str>) -> String {
    let mut s = match endpoint {
        Some(e) => format!("{e} {to}"),
        None => to.to_string(),
    };
    if let Some(n) = node {
        s.push_str(" on ");
        s.push_str(n);
    }
    s
}

/// A branch as the walk lists it: `KUBE-SEP-… → default/web-2 10.0.1.3:8080 on node-1, p=0.5, share 50 %`.
fn branch_label(b: &Branch) -> String {
    let target = branch_target(b);
    // A chain's name says nothing of where it leads, a DNAT rule's text says it twice.
    let lead = if target == b.target || b.target.starts_with("-j DNAT") {
        target
    } else {
        format!("{} → {target}", b.target)
    };
    format!("{lead}, p={:.5}, share {:.1} %", b.probability, b.share * 100.0)
}

/// One JSON Lines record of a batch: the document `-o json` writes for one query, on one line,
/// with the query's line number.
pub fn json_line(scenario: &crate::render::ScenarioRef, line: usize, traces: &[&Trace]) -> String {
    document(scenario, Some(line), traces).to_string() + "\n"
}

/// A batch in text: one line per trace (where it was delivered, or why not), then a count.
pub fn summary(traces: &[(Option<usize>, &Trace)], style: Style) -> String {
    let mut out = String::new();
    let mut failed = 0;
    for (line, t) in traces {
        let verdict = if t.verdict.is_success() {
            style.good(t.verdict.name())
        } else {
            failed += 1;
            style.bad(t.verdict.name())
        };
        let _ = write!(
            out,
            "{}: {} -> {}: {verdict}",
            line.unwrap_or_default(),
            untrusted::escape(&t.from),
            untrusted::escape(&t.to)
        );
        match &t.delivered_to {
            Some(d) => {
                let who = match (&d.namespace, &d.pod) {
                    (Some(ns), Some(pod)) => format!("{ns}/{pod} "),
                    _ => String::new(),
                };
                let _ = writeln!(out, " to {who}at {}", d.address());
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

/// A place as one line names it. Pods and nodes are named with their kind, as kubectl names
/// them; the other places' names already say what they are ("cloud router").
pub(crate) fn place_label(p: &Place) -> String {
    match (&p.node, p.kind.as_str()) {
        (Some(n), "pod") => format!("pod {} on {n}", p.name),
        (_, "pod" | "node") => format!("{} {}", p.kind, p.name),
        _ => p.name.clone(),
    }
}

/// Where a trace that failed stopped: the hop (numbered as the brief form numbers them, the
/// reply's after the request's), its place, and the netfilter rule that decided, if one did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Stop {
    /// `request` or `reply`.
    pub direction: &'static str,
    pub hop: usize,
    pub host: String,
    pub rule: Option<String>,
}

pub fn stopped(t: &Trace) -> Option<Stop> {
    if t.verdict.is_success() {
        return None;
    }
    let request = t.hops.len();
    let (direction, hop, last) = match t.reply.as_ref().and_then(|r| r.hops.last().map(|h| (r.hops.len(), h))) {
        Some((n, h)) => ("reply", request + n, h),
        None => ("request", request, t.hops.last()?),
    };
    use crate::trace::Verdict as V;
    let by_rule = matches!(
        t.verdict,
        V::Filtered | V::Rejected | V::NoEndpoints | V::NoLocalEndpoints
    );
    let rule = last.steps.iter().rev().find_map(|s| match s {
        Step::Netfilter {
            rule, action, chain, ..
        } if by_rule => Some(rule.clone().unwrap_or_else(|| format!("{chain}: {action}"))),
        _ => None,
    });
    Some(Stop {
        direction,
        hop,
        host: place_label(&last.place),
        rule,
    })
}
