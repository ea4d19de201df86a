//! Problems found in a user's input, each tied to the place in the file that caused it.
//!
//! Diagnostics are plain data: the input and model stages collect them, a renderer prints them.

use crate::input::tree::Pos;

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

/// How many characters of a value a message repeats before cutting it.
pub const SHOWN_VALUE_CHARS: usize = 80;

/// A value from the input as a message repeats it: cut after [`SHOWN_VALUE_CHARS`] characters,
/// saying how long it was, so a ten-megabyte name does not become a ten-megabyte message.
pub fn shorten(value: &str) -> String {
    match value.char_indices().nth(SHOWN_VALUE_CHARS) {
        None => value.to_owned(),
        Some((cut, _)) => format!("{}… ({} bytes)", &value[..cut], thousands(value.len())),
    }
}

/// 31950 as "31,950".
pub fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(c);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_and_measured() {
        assert_eq!(shorten("web"), "web");
        let exactly = "x".repeat(SHOWN_VALUE_CHARS);
        assert_eq!(shorten(&exactly), exactly);
        let long = "é".repeat(SHOWN_VALUE_CHARS + 1);
        assert_eq!(
            shorten(&long),
            format!("{}… (162 bytes)", "é".repeat(SHOWN_VALUE_CHARS))
        );
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(2_147_483_648), "2,147,483,648");
    }
}
