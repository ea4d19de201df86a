//! Text that came from outside (file names, scenario values, command-line arguments) made safe
//! to show: on a terminal, in an error message, or after `#` in a shell script.
//!
//! A control character in such text can do harm wherever it lands: ESC sequences rewrite or
//! hide what a terminal shows, a newline ends a shell comment so that the rest runs as a
//! command, a carriage return overwrites a line, and bidirectional overrides make text read
//! differently from what it is. So each is written as a visible escape instead.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` with every control character and bidirectional control escaped (`\u{1b}`); text
/// without any comes back unchanged and uncopied.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if needs_escape(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A whole message that quotes untrusted text (a command-line error), escaped as [`escape`]
/// does but for its own line breaks, which stay.
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

/// `text` (a file quoted in a message) with each control character shown as one visible
/// character, its Unicode control picture (`␛` for ESC), so that a quoted line keeps its columns
/// under the marker that points into it. Line breaks and tabs stay, with the carriage return of
/// a CRLF line break, which moves no text.
pub fn pictures(text: &str) -> Cow<'_, str> {
    let shown = |c: char| matches!(c, '\n' | '\t') || !needs_escape(c);
    let crlf_only = || text.match_indices('\r').all(|(i, _)| text[i + 1..].starts_with('\n'));
    if text.chars().all(|c| shown(c) || c == '\r') && crlf_only() {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' if chars.peek() == Some(&'\n') => out.push(c),
            c if shown(c) => out.push(c),
            '\u{0}'..='\u{1f}' => out.push(char::from_u32(0x2400 + c as u32).unwrap_or('\u{fffd}')),
            '\u{7f}' => out.push('\u{2421}'),
            _ => out.push('\u{fffd}'),
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_become_visible_escapes() {
        assert_eq!(escape("node-1"), "node-1");
        assert!(matches!(escape("node-1"), Cow::Borrowed(_)));
        assert_eq!(escape("x\nreboot\n.yaml"), "x\\u{a}reboot\\u{a}.yaml");
        assert_eq!(escape("\u{1b}[2Jgone"), "\\u{1b}[2Jgone");
        assert_eq!(escape("a\rb\u{7f}\u{9b}"), "a\\u{d}b\\u{7f}\\u{9b}");
        assert_eq!(escape("admin\u{202e}gpj.yaml"), "admin\\u{202e}gpj.yaml");
        assert_eq!(escape("C:\\k8s\\a.yaml"), "C:\\k8s\\a.yaml");
        for hostile in ["a\nb", "\u{1b}]0;title\u{7}", "\r", "\u{2028}"] {
            assert!(!escape(hostile).chars().any(|c| c.is_control() || c == '\u{2028}'));
        }
    }

    #[test]
    fn a_message_keeps_its_lines() {
        assert_eq!(
            escape_lines("error: invalid value 'x\u{1b}[2J'\n  [possible values: tcp]\n"),
            "error: invalid value 'x\\u{1b}[2J'\n  [possible values: tcp]\n"
        );
    }

    #[test]
    fn pictures_keep_one_character_per_character() {
        assert_eq!(pictures("name: a\u{1b}[31m"), "name: a\u{241b}[31m");
        assert_eq!(pictures("a\tb\\c"), "a\tb\\c");
        let line = "x: \u{1b}\u{7}\u{202e}y";
        assert_eq!(pictures(line).chars().count(), line.chars().count());
        assert!(!pictures(line).chars().any(|c| c.is_control()));
        assert!(matches!(pictures("a: 1\r\nb: 2\r\n"), Cow::Borrowed(_)));
        assert_eq!(pictures("a\u{1b}\r\n"), "a\u{241b}\r\n");
        assert_eq!(pictures("a\rb"), "a\u{240d}b");
    }
}
