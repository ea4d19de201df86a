//! Reading JSON into the spanned [`Node`] tree, so a scenario written as JSON gets the same
//! checks, messages, lines and columns as one written as YAML.
//!
//! serde_json does not say where each value starts, and the decoder needs that for every node.
//! So a small reader walks the text once, keeping the line and column as it goes, and builds the
//! tree directly; serde_json decodes strings with escapes in them, and when the text is not JSON,
//! serde_json is asked to read it again and its message and place are the ones reported.

use std::collections::HashSet;

use super::tree::{MAX_DEPTH, Node, Pos, Value, too_deep};
use crate::diagnostic::{Diagnostic, Span, shorten};

/// Parses JSON text into the tree, or says where and why it cannot.
pub fn read(text: &str) -> Result<Node, Diagnostic> {
    read_keeping(text, None)
}

/// What to do with a mapping's entry, by its key: keep it, keep it and everything under it
/// (a filter of its own, or none), or check its syntax and leave it out of the tree.
#[derive(Debug, Clone, Copy)]
pub enum Keep {
    Field,
    Subtree(Option<KeyFilter>),
    Skip,
}

pub type KeyFilter = fn(&str) -> Keep;

/// [`read`], building only the entries `filter` keeps: a reader that knows which fields it
/// uses spares the memory of the rest. What is left out is still checked to be JSON.
pub fn read_filtered(text: &str, filter: KeyFilter) -> Result<Node, Diagnostic> {
    read_keeping(text, Some(filter))
}

/// What [`read_each`] hands on, in the order of the text.
pub enum Read {
    /// One item of a document's top-level `items` list, handed on before its document.
    Item(Node),
    Document(Node),
}

/// Every JSON value of a text written one after another (as `jq -c` writes them, or `kubectl`
/// run twice into one file), each read as [`read_filtered`] reads one and handed to `sink`.
///
/// With `stream`, the items of each document's top-level `items` list (a Kubernetes `List`)
/// are handed on one by one as soon as each is read, and the document holds an empty list in
/// their place: a kubectl dump of a large cluster is then never a tree all at once, and each
/// item is freed while its memory is still in the cache.
///
/// A key the filter leaves out at a document's top level, or a streamed item's, is kept with a
/// null value (its value is still only checked): a decoder that checks an object's keys then
/// sees a misspelt one, as it does in YAML.
pub fn read_each(text: &str, filter: KeyFilter, stream: bool, sink: &mut dyn FnMut(Read)) -> Result<(), Diagnostic> {
    let mut reader = Reader::new(text);
    reader.filter = Some(filter);
    reader.stream = stream;
    reader.sink = Some(sink);
    let result = loop {
        reader.at_root = true;
        match reader.value(0) {
            Ok(root) => {
                if let Some(sink) = reader.sink.as_mut() {
                    sink(Read::Document(root));
                }
            }
            Err(e) => break Err(e),
        }
        reader.skip_space();
        if reader.at >= reader.bytes.len() {
            break Ok(());
        }
    };
    result.map_err(|problem| match problem {
        Problem::Syntax(at) => syntax_error(text, reader.pos_at(at), true),
        Problem::Located(pos, d) => d.at(Span { pos, len: 1 }),
    })
}

fn read_keeping(text: &str, filter: Option<KeyFilter>) -> Result<Node, Diagnostic> {
    let mut reader = Reader::new(text);
    reader.filter = filter;
    let result = reader.value(0).and_then(|root| {
        reader.skip_space();
        if reader.at < reader.bytes.len() {
            Err(Problem::Syntax(reader.at))
        } else {
            Ok(root)
        }
    });
    result.map_err(|problem| match problem {
        Problem::Syntax(at) => syntax_error(text, reader.pos_at(at), false),
        Problem::Located(pos, d) => d.at(Span { pos, len: 1 }),
    })
}

enum Problem {
    /// Not JSON, first noticed at this byte offset.
    Syntax(usize),
    /// JSON, but beyond what k8snet reads (too deep, a key written twice).
    Located(Pos, Box<Diagnostic>),
}

struct Reader<'a> {
    text: &'a str,
    bytes: &'a [u8],
    at: usize,
    line: u64,
    line_start: usize,
    /// The last offset a column was computed for on the current line, and that column: columns
    /// count characters, and on a one-line file counting from the line's start each time would
    /// make reading quadratic.
    column_mark: (usize, u64),
    /// Whether the current line holds only ASCII up to the reader's place, so a column is
    /// the offset from the line's start.
    line_ascii: bool,
    /// Which entries of a mapping to build; `None` builds them all.
    filter: Option<KeyFilter>,
    /// Where [`read_each`] hands documents on, and with `stream` the items of their
    /// top-level `items` lists instead of building them into the tree.
    sink: Option<&'a mut dyn FnMut(Read)>,
    stream: bool,
    /// The next mapping read is a document's or a streamed item's top level.
    at_root: bool,
}

impl<'a> Reader<'a> {
    fn new(text: &'a str) -> Self {
        let skip_bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
        Reader {
            text,
            bytes: text.as_bytes(),
            at: skip_bom,
            line: 1,
            line_start: skip_bom,
            column_mark: (skip_bom, 1),
            line_ascii: true,
            filter: None,
            sink: None,
            stream: false,
            at_root: false,
        }
    }

    fn skip_space(&mut self) {
        let bytes = self.bytes;
        let mut i = self.at;
        loop {
            match bytes.get(i) {
                Some(b' ' | b'\t' | b'\r') => i += 1,
                Some(b'\n') => {
                    i += 1;
                    self.line += 1;
                    self.line_start = i;
                    self.column_mark = (i, 1);
                    self.line_ascii = true;
                    // Pretty-printed JSON indents every line: pass eight spaces at a time.
                    while let Some(chunk) = bytes.get(i..i + 8)
                        && chunk == b"        "
                    {
                        i += 8;
                    }
                }
                _ => break,
            }
        }
        self.at = i;
    }

    /// The line and column of an offset on the current line (or before the reader started it).
    fn pos_at(&mut self, at: usize) -> Pos {
        if at < self.line_start {
            return position_of(self.text, at);
        }
        if self.line_ascii {
            // Every byte so far on this line is a character of its own.
            return Pos {
                line: self.line,
                column: (at - self.line_start) as u64 + 1,
            };
        }
        let (from, column) = if self.column_mark.0 <= at {
            self.column_mark
        } else {
            (self.line_start, 1)
        };
        let column = column + chars_in(&self.bytes[from..at]);
        self.column_mark = (at, column);
        Pos {
            line: self.line,
            column,
        }
    }

    /// The first offset from `i` on that ends a plain run of a string's text: a quote, a
    /// backslash, a control character or a byte that is not ASCII (which the caller notes, for
    /// columns). Eight bytes are looked at a time, as most strings run on for a while.
    fn string_stop(&self, mut i: usize) -> usize {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.bytes.get(i..i + 8) {
            let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
            let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
            let quote = zero_in(x ^ (ONES * u64::from(b'"')));
            let backslash = zero_in(x ^ (ONES * u64::from(b'\\')));
            let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
            let stops = quote | backslash | control | (x & HIGH);
            if stops != 0 {
                // The lowest flagged byte is exact; only those after it can be false alarms.
                return i + (stops.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while let Some(&b) = self.bytes.get(i) {
            if b == b'"' || b == b'\\' || !(0x20..0x80).contains(&b) {
                break;
            }
            i += 1;
        }
        i
    }

    fn value(&mut self, depth: usize) -> Result<Node, Problem> {
        self.skip_space();
        let start = self.at;
        let pos = self.pos_at(start);
        let root = std::mem::take(&mut self.at_root);
        let value = match self.bytes.get(start) {
            Some(b'{') => {
                self.enter(depth, pos)?;
                self.object(depth, root)?
            }
            Some(b'[') => {
                self.enter(depth, pos)?;
                self.array(depth)?
            }
            Some(b'"') => Value::Str(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number()?,
            _ => return Err(Problem::Syntax(start)),
        };
        Ok(Node { pos, value })
    }

    fn enter(&self, depth: usize, pos: Pos) -> Result<(), Problem> {
        if depth >= MAX_DEPTH {
            return Err(Problem::Located(pos, Box::new(too_deep())));
        }
        Ok(())
    }

    /// A mapping; `root` when it is a document's or a streamed item's top level.
    fn object(&mut self, depth: usize, root: bool) -> Result<Value, Problem> {
        self.at += 1;
        let mut entries: Vec<(Node, Node)> = Vec::new();
        // Small mappings are checked for a repeated key by looking back; big ones by hashing.
        let mut seen: Option<HashSet<String>> = None;
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b'}') {
            self.at += 1;
            return Ok(Value::Map(fitted(entries)));
        }
        loop {
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b'"') {
                return Err(Problem::Syntax(self.at));
            }
            // A key the filter leaves out is passed over with its value, never built.
            if let Some(filter) = self.filter
                && !root
                && let Some(plain) = self.plain_key()
                && matches!(filter(plain), Keep::Skip)
            {
                self.skip_key()?;
                self.skip(depth + 1)?;
                self.skip_space();
                match self.bytes.get(self.at) {
                    Some(b',') => {
                        self.at += 1;
                        continue;
                    }
                    Some(b'}') => {
                        self.at += 1;
                        return Ok(Value::Map(fitted(entries)));
                    }
                    _ => return Err(Problem::Syntax(self.at)),
                }
            }
            let key = self.value(depth + 1)?;
            let Value::Str(name) = &key.value else {
                return Err(Problem::Syntax(self.at));
            };
            let repeated = match &mut seen {
                Some(set) => !set.insert(name.clone()),
                None => {
                    let repeated = entries.iter().any(|(k, _)| k.value == key.value);
                    if entries.len() >= 16 {
                        let mut set: HashSet<String> = HashSet::new();
                        for (k, _) in &entries {
                            if let Value::Str(k) = &k.value {
                                set.insert(k.clone());
                            }
                        }
                        set.insert(name.clone());
                        seen = Some(set);
                    }
                    repeated
                }
            };
            if repeated {
                let d = Diagnostic::error(format!("duplicate key `{}`", shorten(name)))
                    .label("written twice in one mapping")
                    .help("a key appears once in a mapping; remove one of the two, or rename it");
                return Err(Problem::Located(key.pos, Box::new(d)));
            }
            self.skip_space();
            if self.bytes.get(self.at) != Some(&b':') {
                return Err(Problem::Syntax(self.at));
            }
            self.at += 1;
            let keep = self.filter.map_or(Keep::Field, |f| f(name));
            let streamed = depth == 0 && name == "items" && self.stream && {
                self.skip_space();
                self.bytes.get(self.at) == Some(&b'[')
            };
            match keep {
                _ if streamed => {
                    let value = self.stream_items(depth + 1)?;
                    entries.push((key, value));
                }
                Keep::Field => {
                    let value = self.value(depth + 1)?;
                    entries.push((key, value));
                }
                Keep::Subtree(inner) => {
                    let outer = std::mem::replace(&mut self.filter, inner);
                    let value = self.value(depth + 1);
                    self.filter = outer;
                    entries.push((key, value?));
                }
                Keep::Skip => {
                    self.skip_space();
                    let pos = self.pos_at(self.at);
                    self.skip(depth + 1)?;
                    if root {
                        let value = Value::Null;
                        entries.push((key, Node { pos, value }));
                    }
                }
            }
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b'}') => {
                    self.at += 1;
                    return Ok(Value::Map(fitted(entries)));
                }
                _ => return Err(Problem::Syntax(self.at)),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, Problem> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
            return Ok(Value::Seq(fitted(items)));
        }
        loop {
            items.push(self.value(depth + 1)?);
            self.skip_space();
            match self.bytes.get(self.at) {
                Some(b',') => self.at += 1,
                Some(b']') => {
                    self.at += 1;
                    return Ok(Value::Seq(fitted(items)));
                }
                _ => return Err(Problem::Syntax(self.at)),
            }
        }
    }

    /// The top-level `items` list, each item handed on as soon as it is read: an empty list
    /// is left in the tree, at the list's place.
    fn stream_items(&mut self, depth: usize) -> Result<Node, Problem> {
        let pos = self.pos_at(self.at);
        self.enter(depth, pos)?;
        self.at += 1;
        self.skip_space();
        if self.bytes.get(self.at) == Some(&b']') {
            self.at += 1;
        } else {
            loop {
                self.at_root = true;
                let item = self.value(depth + 1)?;
                if let Some(sink) = self.sink.as_mut() {
                    sink(Read::Item(item));
                }
                self.skip_space();
                match self.bytes.get(self.at) {
                    Some(b',') => self.at += 1,
                    Some(b']') => {
                        self.at += 1;
                        break;
                    }
                    _ => return Err(Problem::Syntax(self.at)),
                }
            }
        }
        Ok(Node {
            pos,
            value: Value::Seq(Vec::new()),
        })
    }

    /// The text of the string key at the reader's place when it has no escapes, without reading
    /// past it.
    fn plain_key(&self) -> Option<&'a str> {
        let start = self.at + 1;
        let mut end = self.string_stop(start);
        while self.bytes.get(end).is_some_and(|&b| b >= 0x80) {
            end = self.string_stop(end + 1);
        }
        (*self.bytes.get(end)? == b'"').then(|| &self.text[start..end])
    }
}

/// Characters in UTF-8 bytes: every byte but continuation bytes starts one.
fn chars_in(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| (b as i8) >= -0x40).count() as u64
}

fn position_of(text: &str, at: usize) -> Pos {
    let before = &text.as_bytes()[..at.min(text.len())];
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    Pos {
        line: 1 + before.iter().filter(|&&b| b == b'\n').count() as u64,
        column: 1 + chars_in(&before[line_start..]),
    }
}

/// The text is not JSON: serde_json reads it again and says why, in its words and at its place;
/// should it disagree and accept the text, the place this reader stopped is reported.
/// With `each`, the text is several values one after another, read so by serde_json too.
fn syntax_error(text: &str, fallback: Pos, each: bool) -> Diagnostic {
    let help = "fix the JSON syntax; every other check runs once the file parses";
    let first_error = || {
        serde_json::Deserializer::from_str(text)
            .into_iter::<serde::de::IgnoredAny>()
            .find_map(Result::err)
    };
    let found = if each {
        first_error().map_or(Ok(()), Err)
    } else {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map(drop)
    };
    let Err(e) = found else {
        return Diagnostic::error("invalid JSON")
            .help(help)
            .at(Span { pos: fallback, len: 1 });
    };
    let message = e.to_string();
    let message = message.split(" at line ").next().unwrap_or(&message);
    let pos = if e.line() == 0 {
        fallback
    } else {
        // serde_json counts the column in bytes; the renderer counts characters.
        let line_text = text.split('\n').nth(e.line() - 1).unwrap_or_default();
        let upto = e.column().min(line_text.len());
        let upto = (0..=upto).rev().find(|&i| line_text.is_char_boundary(i)).unwrap_or(0);
        Pos {
            line: e.line() as u64,
            column: chars_in(&line_text.as_bytes()[..upto]).max(1),
        }
    };
    Diagnostic::error(format!("invalid JSON: {}", shorten(message)))
        .help(help)
        .at(Span { pos, len: 1 })
}

/// A list without the room it grew into: a one-entry mapping would otherwise hold four.
fn fitted<T>(mut list: Vec<T>) -> Vec<T> {
    list.shrink_to_fit();
    list
}

mod scalars;
#[cfg(test)]
mod tests;
