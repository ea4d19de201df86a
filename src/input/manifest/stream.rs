//! A kubectl JSON dump read and decoded item by item: the items of its `List` are turned into
//! specs as the reader passes them, so the tree of the whole dump (the larger part of loading a
//! big cluster, in time and in memory) is never built.
//!
//! kubectl writes `items` before `kind`, so whether the document is a `List` is known only once
//! its items are read. The items are decoded aside meanwhile, and taken in only if it is one; a
//! document that turns out to be something else (an object of some kind with a field named
//! `items`) is read again whole, as any other document is.

use std::collections::BTreeMap;

use super::objects::{self, Collected};
use super::{Report, get, is_object, keep, text_at};
use crate::diagnostic::Diagnostic;
use crate::input::decode::Decoder;
use crate::input::json;
use crate::input::sources::{shift, shift_diagnostic};
use crate::input::tree::{Node, Value};

/// One document of the input, as the decoder takes it.
pub enum Document {
    Tree(Node),
    /// A `List` whose items are already decoded.
    Decoded(Box<Decoded>),
}

impl Document {
    /// The document's top level (for a decoded `List`, without its items).
    pub fn root(&self) -> &Node {
        match self {
            Document::Tree(node) => node,
            Document::Decoded(decoded) => &decoded.root,
        }
    }
}

/// What a `List`'s items gave, held until the documents before it are decoded.
#[derive(Default)]
pub struct Decoded {
    root: Node,
    collected: Collected,
    diagnostics: Vec<Diagnostic>,
    skipped: BTreeMap<String, usize>,
}

impl Decoded {
    /// Adds the items' specs, problems and skipped counts, as decoding them in their turn
    /// would have.
    pub(super) fn merge_into(&mut self, dec: &mut Decoder, out: &mut Collected, report: &mut Report) {
        let Decoded {
            collected,
            diagnostics,
            skipped,
            ..
        } = std::mem::take(self);
        dec.diagnostics.extend(diagnostics);
        for (what, n) in skipped {
            *report.skipped.entry(what).or_default() += n;
        }
        let Collected {
            nodes,
            pods,
            services,
            slices,
            ingresses,
            classes,
            namespaces,
            network_policies,
            header,
        } = collected;
        out.nodes.extend(nodes);
        out.pods.extend(pods);
        out.services.extend(services);
        for (service, (endpoints, span)) in slices {
            out.slices
                .entry(service)
                .or_insert_with(|| (Vec::new(), span))
                .0
                .extend(endpoints);
        }
        out.ingresses.extend(ingresses);
        out.classes.extend(classes);
        out.namespaces.extend(namespaces);
        out.network_policies.extend(network_policies);
        match (&out.header, header) {
            (None, header) => out.header = header,
            (Some(_), Some(second)) => objects::second_header(dec, &second),
            (Some(_), None) => {}
        }
    }
}

/// The items of the document being read, decoded aside until it is known to be a `List`.
#[derive(Default)]
struct Pending {
    dec: Decoder,
    collected: Collected,
    report: Report,
    items: usize,
}

/// Reads a kubectl JSON text (one or several documents) that stands `before` lines into the
/// joined input.
pub fn read(text: &str, before: u64) -> Result<Vec<Document>, Diagnostic> {
    let mut documents = Vec::new();
    // Documents that were not `List`s after all, to be read again whole.
    let mut again = Vec::new();
    let mut pending = Pending::default();
    let mut take = |read: json::Read| match read {
        json::Read::Item(mut item) => {
            shift(&mut item, before);
            objects::object(&mut pending.dec, &item, &mut pending.collected, &mut pending.report);
            pending.items += 1;
        }
        json::Read::Document(mut root) => {
            shift(&mut root, before);
            let items = std::mem::take(&mut pending);
            if items.items == 0 {
                // Nothing was taken out: the tree is the whole document.
                documents.push(Document::Tree(root));
            } else if is_list(&root) {
                documents.push(Document::Decoded(Box::new(Decoded {
                    root,
                    collected: items.collected,
                    diagnostics: items.dec.diagnostics,
                    skipped: items.report.skipped,
                })));
            } else {
                again.push(documents.len());
                documents.push(Document::Tree(root));
            }
        }
    };
    json::read_each(text, keep::kubernetes, true, &mut take).map_err(|d| shift_diagnostic(d, before))?;
    if !again.is_empty() {
        let mut whole = Vec::new();
        json::read_each(text, keep::kubernetes, false, &mut |read| {
            if let json::Read::Document(root) = read {
                whole.push(root);
            }
        })
        .map_err(|d| shift_diagnostic(d, before))?;
        for index in again {
            let mut root = std::mem::take(&mut whole[index]);
            shift(&mut root, before);
            documents[index] = Document::Tree(root);
        }
    }
    Ok(documents)
}

/// Whether a document is a `List` (or `PodList` and the like), whose items are its objects.
fn is_list(root: &Node) -> bool {
    let kind = text_at(root, &["kind"]).unwrap_or_default();
    is_object(root)
        && (kind == "List" || kind.ends_with("List"))
        && matches!(get(root, "items").map(|i| &i.value), Some(Value::Seq(_)))
}

#[cfg(test)]
mod tests {
    use crate::input::Source;
    use crate::input::manifest::parse;
    use crate::input::sources::Inputs;

    fn skipped(text: &str) -> Vec<(String, usize)> {
        let inputs = Inputs::single(Source {
            name: "dump.json".into(),
            text: text.into(),
        });
        let Ok(parsed) = parse(&inputs) else { panic!("parses") };
        parsed.manifest.unwrap().skipped.into_iter().collect()
    }

    #[test]
    fn items_count_only_when_the_document_is_a_list() {
        let item = r#"{"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}}"#;
        let list = format!(r#"{{"apiVersion": "v1", "items": [{item}, {item}], "kind": "List"}}"#);
        assert_eq!(skipped(&list), [("Deployment".to_owned(), 2)]);
        // The same items under an object that is not a List are that object's data.
        let thing = format!(r#"{{"apiVersion": "v1", "items": [{item}, {item}], "kind": "Thing"}}"#);
        assert_eq!(skipped(&thing), [("Thing".to_owned(), 1)]);
        // One document after another, each in its own way.
        let both = format!("{thing}\n{list}\n{item}");
        assert_eq!(skipped(&both), [("Deployment".to_owned(), 3), ("Thing".to_owned(), 1)]);
    }
}
