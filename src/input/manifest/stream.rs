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
use crate::input::tree::{Node, Pos, Value};

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
pub struct Decoded {
    root: Node,
    collected: Collected,
    diagnostics: Vec<Diagnostic>,
    skipped: BTreeMap<String, usize>,
}

impl Default for Decoded {
    fn default() -> Self {
        Decoded {
            root: Node {
                pos: Pos::default(),
                value: Value::Null,
            },
            collected: Collected::default(),
            diagnostics: Vec::new(),
            skipped: BTreeMap::new(),
        }
    }
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

/// Reads a kubectl JSON text that stands `before` lines into the joined input.
pub fn read(text: &str, before: u64) -> Result<Document, Diagnostic> {
    let mut dec = Decoder::default();
    let mut collected = Collected::default();
    let mut report = Report::default();
    let mut items = 0usize;
    let mut decode_item = |mut item: Node| {
        shift(&mut item, before);
        objects::object(&mut dec, &item, &mut collected, &mut report);
        items += 1;
    };
    let read = json::read_items(text, keep::kubernetes, &mut decode_item);
    let mut root = read.map_err(|d| shift_diagnostic(d, before))?;
    shift(&mut root, before);
    if items == 0 {
        // Nothing was taken out: the tree is the whole document.
        return Ok(Document::Tree(root));
    }
    let kind = text_at(&root, &["kind"]).unwrap_or_default();
    let list = is_object(&root)
        && (kind == "List" || kind.ends_with("List"))
        && matches!(get(&root, "items").map(|i| &i.value), Some(Value::Seq(_)));
    if !list {
        let mut whole = json::read_filtered(text, keep::kubernetes).map_err(|d| shift_diagnostic(d, before))?;
        shift(&mut whole, before);
        return Ok(Document::Tree(whole));
    }
    Ok(Document::Decoded(Box::new(Decoded {
        root,
        collected,
        diagnostics: dec.diagnostics,
        skipped: report.skipped,
    })))
}
