//! Diagnostics as compiler-style snippets: the message, the file and place, the line itself
//! with the mistake underlined, and what to do about it.
//!
//! Rendering costs the same for every diagnostic however long the file is: lines are found
//! through an index built once, and each snippet is given only its own line. A file with
//! thousands of mistakes shows the first [`SHOWN_ERRORS`] and says how many more there are.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Severity};
use crate::input::Source;
use crate::input::sources::{Inputs, Part};
use crate::render::untrusted;

/// How many errors are printed before the rest are only counted. Fixing the first ones usually
/// fixes many of the others, and a screenful is what a reader takes in.
pub const SHOWN_ERRORS: usize = 50;

/// Renders `diagnostics` against `source`. The file's text, its name and every message (which
/// may quote the file) are untrusted: control characters in them are shown, never sent.
pub fn render(source: &Source, diagnostics: &[Diagnostic], color: bool) -> String {
    render_parts(source, &[], diagnostics, color)
}

/// Renders `diagnostics` against an input of several files: each snippet names the file its
/// line is in, and the line's number in that file.
pub fn render_inputs(inputs: &Inputs, diagnostics: &[Diagnostic], color: bool) -> String {
    let parts = if inputs.parts.len() > 1 { &inputs.parts[..] } else { &[] };
    render_parts(&inputs.source, parts, diagnostics, color)
}

/// [`render_inputs`] for an input already split into its text and its files.
pub fn render_with_parts(source: &Source, parts: &[Part], diagnostics: &[Diagnostic], color: bool) -> String {
    render_parts(source, parts, diagnostics, color)
}

fn render_parts(source: &Source, parts: &[Part], diagnostics: &[Diagnostic], color: bool) -> String {
    let renderer = if color { Renderer::styled() } else { Renderer::plain() };
    let text = untrusted::pictures(&source.text);
    let path = untrusted::escape(&source.name);
    let lines = LineIndex::new(&text);
    let part_of = |line: u64| -> Option<(std::borrow::Cow<'_, str>, u64)> {
        let i = parts.partition_point(|p| p.first_line <= line).checked_sub(1)?;
        Some((untrusted::escape(&parts[i].name), parts[i].first_line - 1))
    };
    let mut out = String::new();
    let mut shown_errors = 0;
    let mut hidden_errors = 0;
    let mut hidden_warnings = 0;
    for d in diagnostics {
        if shown_errors >= SHOWN_ERRORS {
            match d.severity {
                Severity::Error => hidden_errors += 1,
                Severity::Warning => hidden_warnings += 1,
            }
            continue;
        }
        shown_errors += usize::from(d.is_error());
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let message = untrusted::escape(&d.message);
        let title = level.primary_title(message.as_ref());
        let mut report: Vec<Group> = Vec::new();
        let group = match d
            .at
            .and_then(|at| lines.locate(&text, at.pos.line, at.pos.column, at.len))
        {
            Some(found) => {
                let mut annotation = AnnotationKind::Primary.span(found.range);
                if let Some(label) = &d.label {
                    annotation = annotation.label(untrusted::escape(label));
                }
                let (file, before) = part_of(found.line as u64).unwrap_or((path.clone(), 0));
                title.element(
                    Snippet::source(found.line_text)
                        .line_start(found.line - before as usize)
                        .path(file)
                        .fold(true)
                        .annotation(annotation),
                )
            }
            None => Group::with_title(title),
        };
        report.push(group);
        if let Some(help) = &d.help {
            report.push(Group::with_title(Level::HELP.secondary_title(untrusted::escape(help))));
        }
        out.push_str(&renderer.render(&report));
        out.push_str("\n\n");
    }
    if hidden_errors + hidden_warnings > 0 {
        out.push_str(&format!(
            "... and {}{} not shown: fix these first, then run again\n\n",
            count(hidden_errors, "more error"),
            if hidden_warnings > 0 {
                format!(
                    "{}{}",
                    if hidden_errors > 0 { " and " } else { "" },
                    count(hidden_warnings, "more warning")
                )
            } else {
                String::new()
            },
        ));
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 {
        out.push_str(&format!(
            "{}: {} has {}{}\n",
            if color { "\x1b[1;31merror\x1b[0m" } else { "error" },
            path,
            count(errors, "error"),
            if warnings > 0 {
                format!(" and {}", count(warnings, "warning"))
            } else {
                String::new()
            },
        ));
    }
    out
}

/// "1 error", "31,950 errors".
fn count(n: usize, noun: &str) -> String {
    format!(
        "{} {noun}{}",
        crate::diagnostic::thousands(n),
        if n == 1 { "" } else { "s" }
    )
}

/// Where each line of a text starts, so a line is found by its number without rescanning.
struct LineIndex {
    starts: Vec<usize>,
}

/// One line of the text and the byte range, within that line, of the stretch to underline.
struct Located<'a> {
    line: usize,
    line_text: &'a str,
    range: std::ops::Range<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    /// The line holding `len` characters from a 1-based line and column.
    fn locate<'a>(&self, text: &'a str, line: u64, column: u64, len: usize) -> Option<Located<'a>> {
        let index = usize::try_from(line.checked_sub(1)?).ok()?;
        let start = *self.starts.get(index)?;
        let end = self.starts.get(index + 1).map_or(text.len(), |next| next - 1);
        let line_text = &text[start..end];
        let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
        let skip = usize::try_from(column.checked_sub(1)?).ok()?;
        let mut chars = line_text.char_indices().skip(skip);
        let (from, _) = chars.next().unwrap_or((line_text.len(), ' '));
        let to = line_text[from..]
            .char_indices()
            .nth(len)
            .map(|(i, _)| from + i)
            .unwrap_or(line_text.len());
        Some(Located {
            line: index + 1,
            line_text,
            range: from..to.max(from),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(text: &str, line: u64, column: u64, len: usize) -> Option<(usize, &str)> {
        let found = LineIndex::new(text).locate(text, line, column, len)?;
        Some((found.line, &found.line_text[found.range]))
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let text = "a: 1\nname: é-x\n";
        assert_eq!(range(text, 2, 7, 1), Some((2, "é")));
        assert_eq!(range(text, 2, 1, 4), Some((2, "name")));
    }

    #[test]
    fn a_line_past_the_end_is_not_found() {
        assert_eq!(range("a: 1\n", 3, 1, 1), None);
        assert_eq!(range("a: 1", 1, 4, 1), Some((1, "1")));
    }

    #[test]
    fn counts_are_grouped_in_thousands() {
        assert_eq!(count(31_950, "more error"), "31,950 more errors");
        assert_eq!(count(1, "error"), "1 error");
        assert_eq!(count(999, "error"), "999 errors");
    }

    #[test]
    fn only_the_first_errors_are_shown() {
        let source = Source {
            name: "f.yaml".into(),
            text: "a: 1\n".into(),
        };
        let many: Vec<Diagnostic> = (0..SHOWN_ERRORS + 7)
            .map(|i| Diagnostic::error(format!("e{i}")))
            .collect();
        let out = render(&source, &many, false);
        assert!(out.contains(&format!("e{}", SHOWN_ERRORS - 1)));
        assert!(!out.contains(&format!("e{SHOWN_ERRORS}")));
        assert!(out.contains("and 7 more errors not shown"), "{out}");
        assert!(
            out.ends_with(&format!("f.yaml has {} errors\n", SHOWN_ERRORS + 7)),
            "{out}"
        );
    }
}
