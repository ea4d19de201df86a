//! The document every input format is read into: a tree whose every node remembers where it
//! was written. YAML and JSON readers build it; the scenario decoder (and any later decoder of
//! other document kinds) walks it, so each format gets the same checks and the same positions.

use crate::diagnostic::Diagnostic;

/// How deep mappings and lists may nest, in every format. A scenario needs about 8 levels, a
/// Kubernetes object about 20; deeper nesting only serves to exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// The problem of a file nested deeper than [`MAX_DEPTH`].
pub fn too_deep() -> Diagnostic {
    Diagnostic::error(format!("mappings and lists nest deeper than {MAX_DEPTH} levels"))
        .label("too deep")
        .help(format!(
            "a scenario nests about 8 levels deep; k8snet refuses more than {MAX_DEPTH} levels, which only a generated or hostile file reaches, and the limit cannot be raised"
        ))
}

/// Where a node starts in its file, 1-based. Line 0 means "not known".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A null with no place: what is left where a node was taken out.
impl Default for Node {
    fn default() -> Self {
        Node {
            pos: Pos::default(),
            value: Value::Null,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Node, Node)>),
}

impl Value {
    /// The kind of value, as a scenario author would name it in an error message.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "nothing (null)",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "a number",
            Value::Float(_) => "a decimal number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
        }
    }
}
