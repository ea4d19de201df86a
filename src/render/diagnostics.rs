//! Diagnostics as compiler-style snippets: the message, the file and place, the line itself
//! with the mistake underlined, and what to do about it.

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};

use crate::diagnostic::{Diagnostic, Severity};
use crate::input::Source;
use crate::render::untrusted;

/// Renders `diagnostics` against `source`. The file's text, its name and every message (which
/// may quote the file) are untrusted: control characters in them are shown, never sent.
pub fn render(source: &Source, diagnostics: &[Diagnostic], color: bool) -> String {
    let renderer = if color { Renderer::styled() } else { Renderer::plain() };
    let text = untrusted::pictures(&source.text);
    let path = untrusted::escape(&source.name);
    let mut out = String::new();
    for d in diagnostics {
        let level = match d.severity {
            Severity::Error => Level::ERROR,
            Severity::Warning => Level::WARNING,
        };
        let message = untrusted::escape(&d.message);
        let title = level.primary_title(message.as_ref());
        let mut report: Vec<Group> = Vec::new();
        let group = match d
            .at
            .and_then(|at| byte_range(&text, at.pos.line, at.pos.column, at.len))
        {
            Some(range) => {
                let mut annotation = AnnotationKind::Primary.span(range);
                if let Some(label) = &d.label {
                    annotation = annotation.label(untrusted::escape(label));
                }
                title.element(
                    Snippet::source(text.as_ref())
                        .path(path.as_ref())
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
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    if errors > 0 {
        out.push_str(&format!(
            "{}: {} has {errors} error{}{}\n",
            if color { "\x1b[1;31merror\x1b[0m" } else { "error" },
            path,
            if errors == 1 { "" } else { "s" },
            if warnings > 0 {
                format!(" and {warnings} warning{}", if warnings == 1 { "" } else { "s" })
            } else {
                String::new()
            },
        ));
    }
    out
}

/// The byte range of `len` characters starting at a 1-based line and column.
fn byte_range(text: &str, line: u64, column: u64, len: usize) -> Option<std::ops::Range<usize>> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.checked_sub(1)? as usize)
        .map(str::len)
        .sum();
    let line_text = text[line_start..].split('\n').next()?;
    let mut chars = line_text.char_indices().skip(column.checked_sub(1)? as usize);
    let (start, _) = chars.next().unwrap_or((line_text.len(), ' '));
    let end = line_text[start..]
        .char_indices()
        .nth(len)
        .map(|(i, _)| start + i)
        .unwrap_or(line_text.len());
    Some(line_start + start..line_start + end.max(start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_range_counts_characters_not_bytes() {
        let text = "a: 1\nname: é-x\n";
        assert_eq!(byte_range(text, 2, 7, 1), Some(11..13));
        assert_eq!(&text[byte_range(text, 2, 1, 4).unwrap()], "name");
    }
}
