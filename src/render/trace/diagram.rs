//! A trace as a diagram: a Mermaid sequence diagram (`-o mermaid`), whose participants are the
//! places the packet passes, with each hop's decisive step as a note and the reply dashed; and
//! a Graphviz graph (`-o dot`) of the same hops.

use std::fmt::Write;

use super::brief::decision;
use crate::render::style::Style;
use crate::trace::{Hop, Place, Trace};

/// The places of a trace, request and reply, in order of first appearance, and for each hop
/// the index of its place.
struct Cast<'a> {
    places: Vec<&'a Place>,
    request: Vec<usize>,
    reply: Vec<usize>,
}

fn cast(t: &Trace) -> Cast<'_> {
    let mut places = Vec::new();
    let request = positions(&t.hops, &mut places);
    let reply = match &t.reply {
        Some(r) => positions(&r.hops, &mut places),
        None => Vec::new(),
    };
    Cast { places, request, reply }
}

fn positions<'a>(hops: &'a [Hop], places: &mut Vec<&'a Place>) -> Vec<usize> {
    hops.iter()
        .map(|h| match places.iter().position(|p| **p == h.place) {
            Some(i) => i,
            None => {
                places.push(&h.place);
                places.len() - 1
            }
        })
        .collect()
}

fn title(p: &Place) -> String {
    match (p.kind.as_str(), &p.node) {
        ("pod", Some(n)) => format!("pod {} on {n}", p.name),
        ("pod" | "node", _) => format!("{} {}", p.kind, p.name),
        _ => p.name.clone(),
    }
}

/// Text made safe for a Mermaid label: no line breaks, and none of the characters Mermaid
/// reads as syntax in a message (`;` ends a statement, `#` starts an entity); `->` is drawn
/// as an arrow.
fn mermaid_text(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            ';' => ',',
            '#' => ' ',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect::<String>()
        .replace("->", "→")
}

pub fn mermaid(t: &Trace) -> String {
    let c = cast(t);
    let mut out = String::from("sequenceDiagram\n");
    let _ = writeln!(
        out,
        "    %% {} → {}: {}",
        mermaid_text(&t.from),
        mermaid_text(&t.to),
        t.verdict.name()
    );
    for (i, p) in c.places.iter().enumerate() {
        let _ = writeln!(out, "    participant P{i} as {}", mermaid_text(&title(p)));
    }
    let mut number = 0;
    let mut from: Option<usize> = None;
    for (hops, places, arrow) in [(&t.hops[..], &c.request, "->>"), (reply_hops(t), &c.reply, "-->>")] {
        for (hop, &at) in hops.iter().zip(places.iter()) {
            number += 1;
            match from {
                Some(prev) if prev != at || hop.iif.is_some() => {
                    let _ = writeln!(
                        out,
                        "    P{prev}{arrow}P{at}: {number}. {}",
                        mermaid_text(&hop.packet.to_string())
                    );
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "    Note over P{at}: {number}. sends {}",
                        mermaid_text(&hop.packet.to_string())
                    );
                }
            }
            let d = decision(hop, Style::PLAIN);
            if !d.is_empty() {
                let _ = writeln!(out, "    Note over P{at}: {}", mermaid_text(&d));
            }
            from = Some(at);
        }
    }
    let end = from.unwrap_or(0);
    let _ = writeln!(
        out,
        "    Note over P{end}: {}: {}",
        t.verdict.name(),
        mermaid_text(&t.reason)
    );
    out
}

fn reply_hops(t: &Trace) -> &[Hop] {
    t.reply.as_ref().map_or(&[][..], |r| &r.hops)
}

/// Text inside a DOT double-quoted string.
fn dot_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

pub fn dot(t: &Trace) -> String {
    let c = cast(t);
    let mut out = String::from(
        "digraph trace {\n    rankdir=LR;\n    node [shape=box, fontname=\"monospace\"];\n    edge [fontname=\"monospace\", fontsize=10];\n",
    );
    let _ = writeln!(
        out,
        "    label=\"{} -> {}: {}\";\n    labelloc=t;",
        dot_text(&t.from),
        dot_text(&t.to),
        t.verdict.name()
    );
    let reply = reply_hops(t);
    let all: Vec<(&Hop, usize, bool)> = t
        .hops
        .iter()
        .zip(c.request.iter().copied())
        .map(|(h, at)| (h, at, false))
        .chain(reply.iter().zip(c.reply.iter().copied()).map(|(h, at)| (h, at, true)))
        .collect();
    for (i, p) in c.places.iter().enumerate() {
        let notes: Vec<String> = all
            .iter()
            .enumerate()
            .filter(|(_, (_, at, _))| *at == i)
            .map(|(n, (h, _, _))| (n + 1, decision(h, Style::PLAIN)))
            .filter(|(_, d)| !d.is_empty())
            .map(|(n, d)| format!("{n}. {d}"))
            .collect();
        let mut label = dot_text(&title(p));
        for n in notes {
            label.push_str("\\l");
            label.push_str(&dot_text(&n));
        }
        let _ = writeln!(out, "    p{i} [label=\"{label}\\l\"];");
    }
    for pair in all.windows(2) {
        let ((_, a, _), (hop, b, in_reply)) = (pair[0], pair[1]);
        if a == b && hop.iif.is_none() {
            continue;
        }
        let n = all.iter().position(|x| std::ptr::eq(x.0, hop)).unwrap_or(0) + 1;
        let style = if in_reply { ", style=dashed" } else { "" };
        let _ = writeln!(
            out,
            "    p{a} -> p{b} [label=\"{n}. {}\"{style}];",
            dot_text(&hop.packet.to_string())
        );
    }
    out.push_str("}\n");
    out
}
