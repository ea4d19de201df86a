//! Kubernetes manifests as `kubectl get -o yaml|json` prints them, read into the same decoded
//! [`Scenario`] the scenario format gives, so the model validates both alike.
//!
//! An input is manifests when a document holds a top-level `apiVersion` and `kind`, whatever
//! its file is called. A `List` (or `PodList` and the like) is read item by item. Only the
//! fields k8snet models are read; every other field, and every other kind, is skipped without a
//! word, and the report counts the skipped objects by kind. What the API does not say (the
//! networks, the CNI) comes from an optional header document (`apiVersion: k8snet/v1`,
//! `kind: Cluster`) or is inferred, and each inference is reported as an assumption.

mod header;
mod infer;
mod keep;
mod objects;
mod stream;

use std::collections::BTreeMap;

use serde::Serialize;

use super::Format;
use super::decode::Decoder;
use super::sources::{self, Inputs};
use super::spec::Scenario;
use super::tree::{Node, Value};
use crate::diagnostic::Diagnostic;
use stream::Document;

/// What reading manifests assumed and left out, for the top and the end of the output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// One line per fact the API does not hold, as k8snet took it: `field: value (why)`.
    pub assumptions: Vec<String>,
    /// Objects not read, by kind (or by kind and why, for a pod without an address).
    pub skipped: BTreeMap<String, usize>,
}

impl Report {
    /// `skipped: 12 Deployment, 3 ConfigMap`, most first; `None` when nothing was skipped.
    pub fn skipped_line(&self) -> Option<String> {
        if self.skipped.is_empty() {
            return None;
        }
        let mut counts: Vec<(&String, &usize)> = self.skipped.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let listed: Vec<String> = counts
            .iter()
            .map(|(kind, n)| format!("{} {kind}", crate::diagnostic::thousands(**n)))
            .collect();
        Some(format!("skipped: {}", listed.join(", ")))
    }
}

/// A decoded input: the scenario, the problems found, and for manifests what was assumed.
pub struct Parsed {
    pub scenario: Scenario,
    pub diagnostics: Vec<Diagnostic>,
    pub manifest: Option<Report>,
}

/// Whether a document is a Kubernetes object (or a k8snet header): a mapping with a top-level
/// `apiVersion` and `kind`.
pub fn is_object(node: &Node) -> bool {
    get(node, "apiVersion").is_some() && get(node, "kind").is_some()
}

/// A mapping's value for `key`, if it is a mapping that has one.
pub(crate) fn get<'a>(node: &'a Node, key: &str) -> Option<&'a Node> {
    match &node.value {
        Value::Map(entries) => entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
            .filter(|v| v.value != Value::Null),
        _ => None,
    }
}

/// The value at a path of keys.
pub(crate) fn at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a Node> {
    path.iter().try_fold(node, |n, key| get(n, key))
}

/// A string value at a path, without a diagnostic when it is missing or not a string.
pub(crate) fn text_at<'a>(node: &'a Node, path: &[&str]) -> Option<&'a str> {
    match &at(node, path)?.value {
        Value::Str(s) => Some(s),
        _ => None,
    }
}

/// Reads the input, as a scenario or as manifests, whichever its content is.
pub fn parse(inputs: &Inputs) -> Result<Parsed, Vec<Diagnostic>> {
    let mut documents = documents(inputs)?;
    let objects = documents.iter().any(|d| is_object(d.root()));
    if let ([Document::Tree(root)], false, 1) = (documents.as_slice(), objects, inputs.parts.len()) {
        let mut dec = Decoder::default();
        let scenario = super::spec::decode(&mut dec, root);
        return Ok(Parsed {
            scenario,
            diagnostics: dec.diagnostics,
            manifest: None,
        });
    }
    if !objects {
        if inputs.parts.len() == 1 {
            // One file that is not manifests: a scenario, with the scenario's own messages
            // (including the one for a file of several documents).
            let (scenario, diagnostics) = super::parse(&inputs.source)?;
            return Ok(Parsed {
                scenario,
                diagnostics,
                manifest: None,
            });
        }
        return Err(vec![Diagnostic::error(
            "several files are read together only as Kubernetes manifests, and none of these has a top-level `apiVersion` and `kind`",
        )
        .help("give a scenario file on its own; a directory or several -f are for `kubectl get -o yaml|json` output")]);
    }
    let mut dec = Decoder::default();
    let mut report = Report::default();
    let scenario = objects::decode(&mut dec, &mut documents, &mut report);
    drop_aside(documents);
    Ok(Parsed {
        scenario,
        diagnostics: dec.diagnostics,
        manifest: Some(report),
    })
}

/// Frees a large tree on a thread of its own: taking apart millions of nodes costs as much as
/// reading them did, and validation need not wait for it.
/// (Should no thread start, the closure and the tree are dropped here, as they would have been.)
fn drop_aside(documents: Vec<Document>) {
    let _ = std::thread::Builder::new()
        .name("drop-tree".into())
        .spawn(move || drop(documents));
}

/// Every document of every file, each placed at its lines in the joined text. A file that is a
/// single document is read whole, as a scenario would be; one of several YAML documents is
/// split and each read on its own.
fn documents(inputs: &Inputs) -> Result<Vec<Document>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for part in &inputs.parts {
        let text = inputs.text_of(part);
        let before = part.first_line - 1;
        let format = Format::of_text(&part.name, text);
        let pieces = match format {
            Format::Yaml => sources::yaml_documents(text),
            Format::Json => vec![(0, text)],
        };
        if pieces.is_empty() {
            continue;
        }
        if format == Format::Json && keep::looks_like_kubectl_json(text) {
            match stream::read(text, before) {
                Ok(documents) => out.extend(documents),
                Err(d) => problems.push(d),
            }
            continue;
        }
        if pieces.len() == 1 && inputs.parts.len() == 1 {
            // The common case, a scenario or one List: the whole text, as the scenario reader
            // takes it, so its messages for an empty file stay the same.
            out.push(Document::Tree(super::read_tree(&inputs.source).map_err(|d| vec![d])?));
            continue;
        }
        for (lines, piece) in pieces {
            let read = match format {
                Format::Yaml => super::yaml::read(piece),
                Format::Json => super::json::read(piece),
            };
            match read {
                Ok(mut node) => {
                    sources::shift(&mut node, before + lines);
                    if node.value != Value::Null {
                        out.push(Document::Tree(node));
                    }
                }
                Err(d) => problems.push(sources::shift_diagnostic(d, before + lines)),
            }
        }
    }
    if problems.is_empty() { Ok(out) } else { Err(problems) }
}
