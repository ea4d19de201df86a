//! The common case of a YAML scenario, read straight from the parser's events into the tree.
//!
//! Going through serde (what [`super::yaml`] does, to get serde-saphyr's limits and messages)
//! costs more than parsing itself on a large file. Most files use only block and flow
//! collections and scalars whose type is plain to see, so this reader builds the tree from the
//! events directly and gives up at the first thing it does not handle: an anchor, an alias, a
//! tag, a merge key, a directive, a second document, a duplicate key, a scalar whose type
//! would take YAML's resolution rules to decide, or any error. [`super::yaml::read`] then reads
//! the file the full way, so every rule, limit and message stays the full reader's; a file read
//! here gives exactly the tree the full reader gives (the tests compare them).

use std::borrow::Cow;
use std::collections::HashSet;

use granit_parser::{Event, Parser, ScalarStyle, Span, StrInput};

use super::tree::{MAX_DEPTH, Node, Pos, Value};

/// The tree of `text`, or `None` when it needs the full reader.
pub fn read(text: &str) -> Option<Node> {
    let mut options = granit_parser::Options::default();
    options.emit_comments = false;
    let mut reader = Reader {
        events: Parser::with_options(StrInput::new(text), options),
    };
    let (Event::StreamStart, _) = reader.next()? else {
        return None;
    };
    let (Event::DocumentStart(_, None), _) = reader.next()? else {
        return None;
    };
    let (event, span) = reader.next()?;
    let root = reader.node(event, span, 1)?;
    let (Event::DocumentEnd, _) = reader.next()? else {
        return None;
    };
    let (Event::StreamEnd, _) = reader.next()? else {
        return None;
    };
    Some(root)
}

struct Reader<'a> {
    events: Parser<'a, StrInput<'a>>,
}

/// Above this many keys a mapping's duplicates are found by hashing instead of comparing.
const HASH_KEYS_FROM: usize = 16;

impl<'a> Reader<'a> {
    fn next(&mut self) -> Option<(Event<'a>, Span)> {
        loop {
            match self.events.next_event()?.ok()? {
                (Event::Comment(..), _) => continue,
                other => return Some(other),
            }
        }
    }

    fn node(&mut self, event: Event<'a>, span: Span, depth: usize) -> Option<Node> {
        let pos = Pos {
            line: span.start.line() as u64,
            column: span.start.col() as u64 + 1,
        };
        let value = match event {
            Event::Scalar(text, style, 0, None) => scalar(text, style)?,
            // The full reader says how deep is too deep.
            Event::SequenceStart(_, 0, None) | Event::MappingStart(_, 0, None) if depth >= MAX_DEPTH - 1 => {
                return None;
            }
            Event::SequenceStart(_, 0, None) => {
                let mut items = Vec::new();
                loop {
                    match self.next()? {
                        (Event::SequenceEnd, _) => break,
                        (event, span) => items.push(self.node(event, span, depth + 1)?),
                    }
                }
                items.shrink_to_fit();
                Value::Seq(items)
            }
            Event::MappingStart(_, 0, None) => {
                let mut entries: Vec<(Node, Node)> = Vec::new();
                let mut seen: HashSet<String> = HashSet::new();
                loop {
                    let key = match self.next()? {
                        (Event::MappingEnd, _) => break,
                        (event, span) => self.node(event, span, depth + 1)?,
                    };
                    let Value::Str(name) = &key.value else { return None };
                    if name == "<<" {
                        return None;
                    }
                    let duplicate = if entries.len() < HASH_KEYS_FROM {
                        entries.iter().any(|(k, _)| k.value == key.value)
                    } else {
                        if seen.is_empty() {
                            seen.extend(entries.iter().filter_map(|(k, _)| match &k.value {
                                Value::Str(s) => Some(s.clone()),
                                _ => None,
                            }));
                        }
                        !seen.insert(name.clone())
                    };
                    if duplicate {
                        return None;
                    }
                    let (event, span) = self.next()?;
                    let value = self.node(event, span, depth + 1)?;
                    entries.push((key, value));
                }
                entries.shrink_to_fit();
                Value::Map(entries)
            }
            _ => return None,
        };
        Some(Node { pos, value })
    }
}

/// A scalar's value when its type is plain to see: a quoted or block scalar is a string; a
/// plain one is a string when it starts with a letter and is no word YAML gives a meaning
/// (`true` and `false` are booleans), a number when it is decimal digits, and a string when it
/// is digits with two or more dots (an address or a network). Anything else (null, signs,
/// floats, other radixes, other words) is left to the full reader.
fn scalar(text: Cow<'_, str>, style: ScalarStyle) -> Option<Value> {
    if style != ScalarStyle::Plain {
        return (!text.is_empty()).then(|| Value::Str(text.into_owned()));
    }
    let t = text.as_ref();
    let first = *t.as_bytes().first()?;
    if first.is_ascii_alphabetic() {
        return match t {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ if is_word_with_meaning(t) => None,
            _ => Some(Value::Str(text.into_owned())),
        };
    }
    if !first.is_ascii_digit() {
        return None;
    }
    if t.bytes().all(|b| b.is_ascii_digit()) {
        if t.len() > 1 && first == b'0' || t.len() > 18 {
            return None;
        }
        return t.parse().ok().map(Value::Int);
    }
    let dots = t.bytes().filter(|&b| b == b'.').count();
    (dots >= 2 && t.bytes().all(|b| b.is_ascii_digit() || b == b'.' || b == b'/'))
        .then(|| Value::Str(text.into_owned()))
}

/// Words some YAML schema reads as a boolean, null or special number, in any case.
fn is_word_with_meaning(t: &str) -> bool {
    const WORDS: [&str; 12] = [
        "true", "false", "null", "y", "yes", "n", "no", "on", "off", "nan", "inf", "infinity",
    ];
    t.len() <= 8 && WORDS.iter().any(|w| w.eq_ignore_ascii_case(t))
}

#[cfg(test)]
mod tests {
    use super::read;

    /// Every YAML file the project ships, good and bad, and a generated cluster: where this
    /// reader reads a file, it reads it exactly as the full reader does.
    #[test]
    fn reads_what_the_full_reader_reads() {
        let root = env!("CARGO_MANIFEST_DIR");
        let mut files: Vec<(String, String)> = Vec::new();
        for dir in ["scenarios", "tests/bad"] {
            for entry in std::fs::read_dir(format!("{root}/{dir}")).expect("a shipped folder") {
                let path = entry.expect("a listed file").path();
                if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                    // Some bad files are deliberately not UTF-8.
                    if let Ok(text) = std::fs::read_to_string(&path) {
                        files.push((path.display().to_string(), text));
                    }
                }
            }
        }
        let plan = crate::generate::Plan::new(crate::generate::Options {
            nodes: 3,
            traces: 5,
            ..crate::generate::Options::default()
        })
        .expect("a valid plan");
        files.push((
            "generated".into(),
            crate::generate::scenario(&plan, crate::generate::Format::Yaml),
        ));
        let mut read_here = Vec::new();
        for (name, text) in &files {
            if let Some(tree) = read(text) {
                let full = super::super::yaml::read_full(text)
                    .unwrap_or_else(|e| panic!("{name}: read here, refused by the full reader: {}", e.message));
                assert_eq!(tree, full, "{name}");
                read_here.push(name.as_str());
            }
        }
        for expected in ["demo.yaml", "generated"] {
            assert!(
                read_here.iter().any(|n| n.ends_with(expected)),
                "{expected} is read here; read: {read_here:?}"
            );
        }
    }

    #[test]
    fn leaves_what_takes_yaml_rules_to_the_full_reader() {
        for text in [
            "a: &x 1\nb: *x\n",
            "a: !!str 1\n",
            "a: 1\na: 2\n",
            "<<: {a: 1}\n",
            "a: yes\n",
            "a: ~\n",
            "a:\n",
            "a: 1.5\n",
            "a: -1\n",
            "a: 0x10\n",
            "a: 010\n",
            "%YAML 1.2\n---\na: 1\n",
            "a: 1\n---\nb: 2\n",
            "a: [1, 2\n",
        ] {
            assert_eq!(read(text), None, "{text:?}");
        }
    }
}
