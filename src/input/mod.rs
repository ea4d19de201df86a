//! Reading a scenario file: YAML text to a decoded, not yet cross-checked, [`spec::Scenario`].

pub mod decode;
pub mod spec;
pub mod yaml;

use crate::diagnostic::{Diagnostic, Span};
use decode::Decoder;
use yaml::{Node, Pos};

/// A scenario's text and the name to show for it in messages.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Sized for Kubernetes' own limits (5,000 nodes, 150,000 pods) with room to spare, while a
/// file that expands aliases without end is still refused quickly.
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 20_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 1,
        },
        strict_booleans: true,
    }
}

/// Decodes as much of the scenario as can be read. Problems found while decoding come back
/// with the (partial) scenario, so validation can still look at the rest and report everything
/// in one run; only a YAML syntax error stops early.
pub fn parse(source: &Source) -> Result<(spec::Scenario, Vec<Diagnostic>), Vec<Diagnostic>> {
    if source.text.trim().is_empty() {
        return Err(vec![
            Diagnostic::error("the scenario is empty")
                .help("a scenario needs at least a `cluster:` block; see docs/scenario.md"),
        ]);
    }
    let root: Node = serde_saphyr::from_str_with_options(&source.text, options()).map_err(|e| vec![yaml_error(&e)])?;
    let mut dec = Decoder::default();
    let scenario = spec::decode(&mut dec, &root);
    Ok((scenario, dec.diagnostics))
}

fn yaml_error(e: &serde_saphyr::Error) -> Diagnostic {
    let plain = e.without_snippet();
    let message = plain.to_string();
    // serde-saphyr prefixes its message with "error: line L column C: "; the location is shown
    // by the renderer, so keep only the message.
    let message = message
        .split_once(": ")
        .filter(|(head, _)| head.starts_with("error"))
        .map(|(_, rest)| rest)
        .unwrap_or(&message);
    let message = match message.split_once(": ") {
        Some((head, rest)) if head.starts_with("line ") => rest.to_owned(),
        _ => message.to_owned(),
    };
    let message = message.lines().next().unwrap_or_default();
    // The place is shown with the snippet; do not repeat it in the message.
    let message = message.split(" at line ").next().unwrap_or(message).to_owned();
    let mut d = Diagnostic::error(format!("invalid YAML: {message}"))
        .help("fix the YAML syntax; every other check runs once the file parses");
    if let Some(loc) = plain.location() {
        d = d.at(Span {
            pos: Pos {
                line: loc.line(),
                column: loc.column(),
            },
            len: 1,
        });
    }
    d
}
