//! Reading YAML into the spanned [`Node`] tree.
//!
//! serde's derived deserializers stop at the first problem; a scenario author wants every problem
//! in one run. So the text is first read into this tree (serde-saphyr supplies the parsing and the
//! line/column of each node), and the scenario decoder then walks the tree, collecting problems.
//!
//! The parser works within a budget so that a hostile file is refused quickly: limits on nesting,
//! anchors, aliases and what aliases expand to. Each limit, when hit, is explained in plain words.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use serde_saphyr::budget::BudgetBreach;

use crate::diagnostic::{Diagnostic, Span, thousands};

pub use super::tree::{MAX_DEPTH, Node, Pos, Value};

/// How many aliases (`*name`) a file may use, and how many anchors (`&name`) it may define.
pub const MAX_ALIASES: usize = 10_000;
pub const MAX_ANCHORS: usize = 10_000;
/// How many parse events all aliases together may expand to: what stops an "alias bomb", a
/// few lines whose aliases of aliases expand to billions of nodes.
pub const MAX_ALIAS_EXPANSION: usize = 1_000_000;

fn options(text_len: usize) -> serde_saphyr::Options {
    // Nodes, events and scalar bytes are bounded by the file's size, which the input limit
    // already bounds; only aliases can make more of them, and their own limits hold those.
    let scaled = text_len.saturating_mul(2).saturating_add(1024);
    let mut options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: scaled,
            max_nodes: scaled,
            max_total_scalar_bytes: scaled,
            max_aliases: MAX_ALIASES,
            max_anchors: MAX_ANCHORS,
            max_depth: MAX_DEPTH,
            max_documents: 1,
            max_recorded_anchor_events: MAX_ALIAS_EXPANSION,
            // The ratio of aliases to anchors says nothing about harm (10,000 aliases of one
            // anchor are fine); the absolute limits above are what the docs promise.
            enforce_alias_anchor_ratio: false,
        },
        strict_booleans: true,
    };
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_EXPANSION;
    options
}

/// Parses YAML text into the tree, or says where and why it cannot.
pub fn read(text: &str) -> Result<Node, Diagnostic> {
    match super::yaml_plain::read(text) {
        Some(tree) => Ok(tree),
        None => read_full(text),
    }
}

/// Parses YAML text into the tree through serde-saphyr, with its limits and its messages.
pub(super) fn read_full(text: &str) -> Result<Node, Diagnostic> {
    serde_saphyr::from_str_with_options(text, options(text.len())).map_err(|e| error(&e, text))
}

fn error(e: &serde_saphyr::Error, text: &str) -> Diagnostic {
    let plain = e.without_snippet();
    let d = match original(plain) {
        serde_saphyr::Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        } => documents_error(text),
        serde_saphyr::Error::Budget { breach, .. } => budget_error(breach),
        serde_saphyr::Error::DuplicateMappingKey { key, .. } => Diagnostic::error(match key {
            Some(k) => format!("duplicate key `{}`", crate::diagnostic::shorten(k)),
            None => "duplicate key".to_owned(),
        })
        .label("written twice in one mapping")
        .help("a key appears once in a mapping; remove one of the two, or rename it"),
        serde_saphyr::Error::AliasReplayLimitExceeded { .. }
        | serde_saphyr::Error::AliasExpansionLimitExceeded { .. } => Diagnostic::error(format!(
            "the aliases expand to more than {} YAML events",
            thousands(MAX_ALIAS_EXPANSION)
        ))
        .help(ALIAS_HELP),
        serde_saphyr::Error::AliasReplayStackDepthExceeded { .. } => {
            Diagnostic::error("aliases refer to aliases too deeply").help(ALIAS_HELP)
        }
        _ => Diagnostic::error(format!("invalid YAML: {}", syntax_message(plain)))
            .help("fix the YAML syntax; every other check runs once the file parses"),
    };
    match plain.location() {
        Some(loc) => d.at(Span {
            pos: Pos {
                line: loc.line(),
                column: loc.column(),
            },
            len: 1,
        }),
        None => d,
    }
}

/// The error under the wrappers that only add a snippet or the alias it came through.
fn original(mut e: &serde_saphyr::Error) -> &serde_saphyr::Error {
    loop {
        match e {
            serde_saphyr::Error::AliasError { error, .. } | serde_saphyr::Error::WithSnippet { error, .. } => e = error,
            _ => return e,
        }
    }
}

const ALIAS_HELP: &str = "write the values out instead of referring to them with `*name`; k8snet limits what aliases may expand to, so that a short file cannot make it build billions of nodes, and the limit cannot be raised";

/// The parser stops at the second document; reading on (skipping every value, under the same
/// alias limits) tells the author how many the file holds, so that one `---` too many is told
/// apart from several scenarios pasted together.
fn documents_error(text: &str) -> Diagnostic {
    let mut counting = options(text.len());
    counting.budget = counting.budget.map(|mut b| {
        b.max_documents = usize::MAX;
        b
    });
    let found = serde_saphyr::from_multiple_with_options::<de::IgnoredAny>(text, counting).map_or(0, |docs| docs.len());
    let message = if found > 1 {
        format!("a scenario is one YAML document, and this file has {found}")
    } else {
        "a scenario is one YAML document, and this file has more than one".to_owned()
    };
    Diagnostic::error(message)
        .label("a second document starts here")
        .help("remove the `---` line, or split the file into one file per scenario")
}

fn budget_error(breach: &BudgetBreach) -> Diagnostic {
    match breach {
        BudgetBreach::Depth { .. } => super::tree::too_deep(),
        BudgetBreach::Aliases { .. } => Diagnostic::error(format!(
            "the file uses more than {} aliases (`*name`)",
            thousands(MAX_ALIASES)
        ))
        .label("one alias too many")
        .help(ALIAS_HELP),
        BudgetBreach::Anchors { .. } => Diagnostic::error(format!(
            "the file defines more than {} anchors (`&name`)",
            thousands(MAX_ANCHORS)
        ))
        .label("one anchor too many")
        .help("write the values out instead of anchoring them; the limit cannot be raised"),
        BudgetBreach::Documents { .. } => documents_error(""),
        BudgetBreach::RecordedAnchorEvents { .. } | BudgetBreach::RecordedAnchorBytes { .. } => {
            Diagnostic::error(format!(
                "the anchors hold more than {} YAML events",
                thousands(MAX_ALIAS_EXPANSION)
            ))
            .help(ALIAS_HELP)
        }
        // These grow with the file's size, and are sized so that only aliases reach them.
        BudgetBreach::Events { .. } | BudgetBreach::Nodes { .. } | BudgetBreach::ScalarBytes { .. } => {
            Diagnostic::error("the aliases expand to far more than the file itself holds")
                .label("expanding here")
                .help(ALIAS_HELP)
        }
        other => Diagnostic::error(format!("the YAML is beyond what k8snet reads ({other:?})"))
            .help("this limit scales with the input size limit; see Limits in docs/scenario.md"),
    }
}

/// serde-saphyr's message without its "error: line L column C:" prefix and trailing place:
/// the renderer shows the place.
fn syntax_message(e: &serde_saphyr::Error) -> String {
    let message = e.to_string();
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
    crate::diagnostic::shorten(message.split(" at line ").next().unwrap_or(message))
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<Value>::deserialize(deserializer)?;
        Ok(Node {
            pos: Pos {
                line: spanned.referenced.line(),
                column: spanned.referenced.column(),
            },
            value: spanned.value,
        })
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        i64::try_from(v)
            .map(Value::Int)
            .map_err(|_| E::custom(format!("the number {v} is too large")))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Node>()? {
            items.push(item);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Node>()? {
            let value = map.next_value::<Node>()?;
            entries.push((key, value));
        }
        Ok(Value::Map(entries))
    }
}
