//! Reading a scenario: bytes to text ([`read`]), text to a spanned document tree ([`yaml`] or
//! [`json`], both giving a [`tree::Node`]), and the tree to a decoded, not yet cross-checked,
//! [`spec::Scenario`]. The tree is the seam: a decoder for other documents (Kubernetes
//! manifests) reads the same tree, with the same positions and the same limits.

pub mod decode;
pub mod endpoints;
pub mod json;
pub mod manifest;
pub mod policy;
pub mod read;
pub mod sources;
pub mod spec;
pub mod tree;
pub mod yaml;
mod yaml_plain;

use crate::diagnostic::Diagnostic;
use decode::Decoder;
use tree::Node;

/// A scenario's text and the name to show for it in messages.
#[derive(Debug, Clone)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// The syntax a source is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

impl Format {
    /// `.json` is JSON and `.yaml`/`.yml` YAML; any other name (a pipe, `/dev/stdin`) is JSON
    /// when its first character other than white space is `{`, YAML otherwise.
    pub fn of(source: &Source) -> Format {
        Format::of_text(&source.name, &source.text)
    }

    /// [`Format::of`] for a text and the name it is shown by (one file of several).
    pub fn of_text(name: &str, text: &str) -> Format {
        let name = name.to_ascii_lowercase();
        if name.ends_with(".json") {
            Format::Json
        } else if name.ends_with(".yaml") || name.ends_with(".yml") {
            Format::Yaml
        } else if text.trim_start_matches('\u{feff}').trim_start().starts_with('{') {
            Format::Json
        } else {
            Format::Yaml
        }
    }
}

/// Reads the source's text into the document tree, in whichever format it is written.
/// A document with nothing in it (no text, or only blank lines and comments) is refused here,
/// where it can be said plainly, rather than as a null where a mapping belongs.
pub fn read_tree(source: &Source) -> Result<Node, Diagnostic> {
    let empty = || {
        Diagnostic::error("the scenario is empty")
            .at(decode::file_start())
            .label("nothing here")
            .help("a scenario needs at least a `cluster:` block; see docs/scenario.md")
    };
    if source.text.trim().is_empty() {
        return Err(empty());
    }
    let root = match Format::of(source) {
        Format::Yaml => yaml::read(&source.text)?,
        Format::Json => json::read(&source.text)?,
    };
    match root.value {
        tree::Value::Null => Err(empty()),
        _ => Ok(root),
    }
}

/// Decodes as much of the scenario as can be read. Problems found while decoding come back
/// with the (partial) scenario, so validation can still look at the rest and report everything
/// in one run; only a syntax error stops early.
pub fn parse(source: &Source) -> Result<(spec::Scenario, Vec<Diagnostic>), Vec<Diagnostic>> {
    let root = read_tree(source).map_err(|d| vec![d])?;
    let mut dec = Decoder::default();
    let scenario = spec::decode(&mut dec, &root);
    Ok((scenario, dec.diagnostics))
}
