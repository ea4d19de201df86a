//! Several files read as one input: manifests come as a directory, as several `-f` arguments,
//! or as several YAML documents in one file.
//!
//! The files are joined into one text, one after the other, and every position in the trees
//! read from them is a line of that joined text. A diagnostic therefore stays a plain line and
//! column; only the renderer, asking [`Inputs::locate`], turns the line back into the file it
//! came from and the line within it. Sorting diagnostics by line keeps them in file order.

use std::path::{Path, PathBuf};

use super::Source;
use super::read::{self, ReadError};
use super::tree::{Node, Pos, Value};
use crate::diagnostic::Diagnostic;

/// One file of the input: its name and the stretch of the joined text it fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    /// The joined text's line on which this file's first line is, 1-based.
    pub first_line: u64,
    /// Where the file's text starts and ends in the joined text, in bytes.
    pub start: usize,
    pub end: usize,
}

/// The input of one command: the joined text under one name, and the files it is made of.
#[derive(Debug, Clone)]
pub struct Inputs {
    pub source: Source,
    pub parts: Vec<Part>,
}

impl Inputs {
    /// A single file: one part, its lines its own.
    pub fn single(source: Source) -> Inputs {
        let part = Part {
            name: source.name.clone(),
            first_line: 1,
            start: 0,
            end: source.text.len(),
        };
        Inputs {
            source,
            parts: vec![part],
        }
    }

    /// Joins `sources` in order; each starts on a line of its own.
    pub fn join(sources: Vec<Source>) -> Inputs {
        if sources.len() == 1 {
            return Inputs::single(sources.into_iter().next().unwrap_or_else(|| Source {
                name: String::new(),
                text: String::new(),
            }));
        }
        let names: Vec<&str> = sources.iter().map(|s| s.name.as_str()).collect();
        let name = match names.as_slice() {
            [] => String::new(),
            [one] => (*one).to_owned(),
            [a, b] => format!("{a} and {b}"),
            [first, .., last] => format!("{first} … {last} ({} files)", names.len()),
        };
        let mut text = String::with_capacity(sources.iter().map(|s| s.text.len() + 1).sum());
        let mut parts = Vec::with_capacity(sources.len());
        let mut line = 1u64;
        for s in &sources {
            let start = text.len();
            text.push_str(&s.text);
            let end = text.len();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            parts.push(Part {
                name: s.name.clone(),
                first_line: line,
                start,
                end,
            });
            line += s.text.matches('\n').count() as u64 + u64::from(!s.text.ends_with('\n'));
        }
        Inputs {
            source: Source { name, text },
            parts,
        }
    }

    /// The file holding a line of the joined text, and the line's number in that file.
    pub fn locate(&self, line: u64) -> Option<(&Part, u64)> {
        let i = self.parts.partition_point(|p| p.first_line <= line).checked_sub(1)?;
        let part = &self.parts[i];
        Some((part, line - part.first_line + 1))
    }

    /// `file:line` of a position, as comments and notes name a place.
    pub fn place(&self, pos: Pos) -> String {
        match self.locate(pos.line) {
            Some((part, line)) => format!("{}:{line}", part.name),
            None => self.source.name.clone(),
        }
    }

    /// A part's own text.
    pub fn text_of(&self, part: &Part) -> &str {
        &self.source.text[part.start..part.end]
    }
}

/// The files a path names: the file itself, or every `.yaml`, `.yml` and `.json` file under a
/// directory, recursively, in the byte order of their paths so every run reads them alike.
pub fn expand(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let p = entry?.path();
            if p.is_dir() {
                pending.push(p);
            } else if p
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
            {
                found.push(p);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// Reads every file, refusing them once together they pass `max` bytes.
pub fn read_files(paths: &[PathBuf], max: u64) -> Result<Vec<Source>, (PathBuf, ReadError)> {
    let mut left = max;
    let mut sources = Vec::with_capacity(paths.len());
    for p in paths {
        let source = read::file(p, left).map_err(|e| (p.clone(), e))?;
        left = left.saturating_sub(source.text.len() as u64);
        sources.push(source);
    }
    Ok(sources)
}

/// Moves every position of a tree `lines` lines down: a document read on its own is placed
/// where it stands in the joined text.
pub fn shift(node: &mut Node, lines: u64) {
    if lines == 0 {
        return;
    }
    let mut pending = vec![node];
    while let Some(n) = pending.pop() {
        if n.pos.line > 0 {
            n.pos.line += lines;
        }
        match &mut n.value {
            Value::Seq(items) => pending.extend(items.iter_mut()),
            Value::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    pending.push(k);
                    pending.push(v);
                }
            }
            _ => {}
        }
    }
}

/// A diagnostic about a document read on its own, placed where the document stands.
pub fn shift_diagnostic(mut d: Diagnostic, lines: u64) -> Diagnostic {
    if let Some(at) = &mut d.at {
        at.pos.line += lines;
    }
    d
}

/// The YAML documents of a text, split at the lines that start one (`---`) or end one (`...`),
/// each with the number of lines before it. Such a line always stands at column 1; a line
/// inside a multi-line quoted scalar is not one (YAML refuses it there, and the reader of the
/// whole document says so), nor is one inside a block scalar.
pub fn yaml_documents(text: &str) -> Vec<(u64, &str)> {
    let mut documents = Vec::new();
    let mut start = 0usize;
    let mut start_line = 0u64;
    let mut at = 0usize;
    let mut line = 0u64;
    let mut scalars = Scalars::default();
    for raw in text.split_inclusive('\n') {
        let content = raw.trim_end_matches(['\n', '\r']);
        let marker = scalars.quote.is_none()
            && ["---", "..."].iter().any(|m| {
                content
                    .strip_prefix(m)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([' ', '\t']))
            });
        at += raw.len();
        line += 1;
        if marker {
            documents.push((start_line, &text[start..at - raw.len()]));
            start = at;
            start_line = line;
            scalars = Scalars::default();
        } else {
            scalars.line(content);
        }
    }
    documents.push((start_line, &text[start..]));
    documents.retain(|(_, d)| !is_blank_yaml(d));
    documents
}

/// Which scalar a line of YAML ends inside, as far as splitting documents needs to know.
#[derive(Default)]
struct Scalars {
    /// The quote (`"` or `'`) of a quoted scalar still open at the end of the line.
    quote: Option<u8>,
    /// The indentation of the line that began a block scalar (`|` or `>`) whose lines follow.
    block: Option<usize>,
}

impl Scalars {
    fn line(&mut self, line: &str) {
        let bytes = line.as_bytes();
        let indent = bytes.iter().take_while(|&&b| b == b' ').count();
        if let Some(parent) = self.block {
            if indent >= bytes.len() || indent > parent {
                return;
            }
            self.block = None;
        }
        let mut i = 0;
        // The last byte that was not white space outside a scalar, if any: a quote starts a
        // scalar only where a value may start.
        let mut before: Option<u8> = None;
        let mut spaced = true;
        while i < bytes.len() {
            let b = bytes[i];
            if let Some(quote) = self.quote {
                match b {
                    b'\\' if quote == b'"' => i += 1,
                    b'\'' if quote == b'\'' && bytes.get(i + 1) == Some(&b'\'') => i += 1,
                    _ if b == quote => {
                        self.quote = None;
                        before = Some(b);
                        spaced = false;
                    }
                    _ => {}
                }
                i += 1;
                continue;
            }
            let value_may_start = match before {
                None => true,
                Some(b'[' | b'{' | b',') => true,
                Some(b':' | b'-' | b'?') => spaced,
                _ => false,
            };
            match b {
                b' ' | b'\t' => spaced = true,
                b'#' if spaced => return,
                b'"' | b'\'' if value_may_start => self.quote = Some(b),
                b'|' | b'>' if value_may_start => {
                    let rest = line[i + 1..].trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
                    let rest = rest.trim_start();
                    if rest.is_empty() || rest.starts_with('#') {
                        self.block = Some(indent);
                        return;
                    }
                    before = Some(b);
                    spaced = false;
                }
                _ => {
                    before = Some(b);
                    spaced = false;
                }
            }
            i += 1;
        }
    }
}

/// Nothing but white space and comments.
fn is_blank_yaml(text: &str) -> bool {
    text.lines().all(|l| {
        let l = l.trim_start();
        l.is_empty() || l.starts_with('#')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(name: &str, text: &str) -> Source {
        Source {
            name: name.into(),
            text: text.into(),
        }
    }

    #[test]
    fn joined_lines_lead_back_to_their_file() {
        let inputs = Inputs::join(vec![source("a", "1\n2\n"), source("b", "x"), source("c", "p\nq\n")]);
        assert_eq!(inputs.source.text, "1\n2\nx\np\nq\n");
        let at = |line| inputs.locate(line).map(|(p, l)| (p.name.as_str(), l));
        assert_eq!(at(2), Some(("a", 2)));
        assert_eq!(at(3), Some(("b", 1)));
        assert_eq!(at(5), Some(("c", 2)));
        assert_eq!(inputs.text_of(&inputs.parts[1]), "x");
    }

    #[test]
    fn documents_split_at_their_markers() {
        let docs = yaml_documents("---\na: 1\n---\n# only a comment\n---\nb: 2\n...\n");
        assert_eq!(docs, vec![(1, "a: 1\n"), (5, "b: 2\n")]);
        assert_eq!(yaml_documents("a: 1\n"), vec![(0, "a: 1\n")]);
        assert_eq!(yaml_documents("a: |\n  ---x\n"), vec![(0, "a: |\n  ---x\n")]);
    }

    #[test]
    fn a_marker_inside_a_quoted_scalar_is_not_a_split() {
        for quoted in ["\"x\n---\n y\"", "'it''s\n---\n y'", "\"a \\\" b\n---\n\""] {
            let first = format!("a: {quoted}\n");
            let text = format!("{first}---\nb: 1\n");
            assert_eq!(
                yaml_documents(&text),
                vec![(0, first.as_str()), (4, "b: 1\n")],
                "{quoted}"
            );
        }
        // Quotes that start no scalar: in a plain scalar, a comment, a block scalar.
        for line in [
            "a: it's",
            "a: b # it's",
            "a: x\"y",
            "a: |\n  \"open\n  it's",
            "- >-\n  'open",
        ] {
            let text = format!("{line}\n---\nb: 1\n");
            assert_eq!(yaml_documents(&text).len(), 2, "{line}");
        }
        // A flow mapping's values, closed on their line.
        assert_eq!(yaml_documents("a: {b: \"x\", c: 'y'}\n---\nb: 1\n").len(), 2);
    }

    #[test]
    fn a_directory_is_read_in_path_order() {
        let dir = std::env::temp_dir().join(format!("k8snet-expand-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        for f in ["b.yaml", "a.json", "sub/c.yml", "notes.txt"] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        let names: Vec<String> = expand(&dir)
            .unwrap()
            .iter()
            .map(|p| p.strip_prefix(&dir).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.json", "b.yaml", "sub/c.yml"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
