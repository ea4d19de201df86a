//! Problems found in a user's input, each tied to the place in the file that caused it.
//!
//! Diagnostics are plain data: the input and model stages collect them, a renderer prints them.

use crate::input::yaml::Pos;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    /// Where the problem is; `None` for problems with the file as a whole.
    pub at: Option<Span>,
    /// A short label printed under the underlined text.
    pub label: Option<String>,
    /// What to change to fix it.
    pub help: Option<String>,
}

/// A stretch of one line of the input: where it starts and how many characters it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Span {
    pub pos: Pos,
    pub len: usize,
}

impl Diagnostic {
    pub fn error(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            at: None,
            label: None,
            help: None,
        }
    }

    pub fn warning(message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(message)
        }
    }

    pub fn at(mut self, span: Span) -> Self {
        if span.pos.line > 0 {
            self.at = Some(span);
        }
        self
    }

    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// Sorts diagnostics into file order, errors and warnings interleaved, so output is stable and
/// reads top to bottom like the file.
pub fn sort(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        (a.at.map(|s| s.pos), a.severity, &a.message).cmp(&(b.at.map(|s| s.pos), b.severity, &b.message))
    });
}
