//! Colour, decided once per run, and tables that look the same on every machine.

use comfy_table::{ContentArrangement, Table, presets};
use owo_colors::OwoColorize;

/// Whether to colour output. Decided by the binary from `--color`, `NO_COLOR` and whether
/// stdout is a terminal; renderers only follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Style {
    pub color: bool,
}

impl Style {
    pub const PLAIN: Style = Style { color: false };

    fn paint(&self, text: &str, f: impl Fn(&str) -> String) -> String {
        if self.color { f(text) } else { text.to_owned() }
    }
    pub fn heading(&self, text: &str) -> String {
        self.paint(text, |t| t.bold().underline().to_string())
    }
    pub fn strong(&self, text: &str) -> String {
        self.paint(text, |t| t.bold().to_string())
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint(text, |t| t.dimmed().to_string())
    }
    pub fn good(&self, text: &str) -> String {
        self.paint(text, |t| t.green().bold().to_string())
    }
    pub fn bad(&self, text: &str) -> String {
        self.paint(text, |t| t.red().bold().to_string())
    }
    pub fn warn(&self, text: &str) -> String {
        self.paint(text, |t| t.yellow().bold().to_string())
    }
    /// Something that changed, such as an address rewritten by NAT.
    pub fn changed(&self, text: &str) -> String {
        self.paint(text, |t| t.magenta().bold().to_string())
    }
    pub fn code(&self, text: &str) -> String {
        self.paint(text, |t| t.cyan().to_string())
    }

    /// A table with fixed layout: no wrapping to the terminal's width, so output is the same
    /// everywhere (golden files depend on it).
    pub fn table(&self, headers: &[&str]) -> Table {
        let mut t = Table::new();
        t.load_style(presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(ContentArrangement::Disabled);
        if self.color {
            t.enforce_styling();
        } else {
            t.force_no_tty();
        }
        t.set_header(headers.iter().map(|h| self.strong(h)));
        t
    }
}

/// Indents every line of `text` by `n` spaces.
pub fn indent(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    text.lines()
        .map(|l| {
            if l.is_empty() {
                String::new()
            } else {
                format!("{pad}{l}")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
