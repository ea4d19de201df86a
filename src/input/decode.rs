//! Reading typed values out of a spanned YAML tree while collecting every problem.
//!
//! Each reader returns `None` after recording a diagnostic, so a caller keeps going and the user
//! sees all mistakes of a file at once. Values keep their span, so checks made later (overlapping
//! CIDRs, a pod on a missing node) can still point at the line that caused them.

use std::net::Ipv4Addr;
use std::str::FromStr;

use ipnet::Ipv4Net;

use super::yaml::{Node, Pos, Value};
use crate::diagnostic::{Diagnostic, Span, shorten};

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sp<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Sp<T> {
    pub fn new(value: T, span: Span) -> Self {
        Sp { value, span }
    }
}

impl<T> std::ops::Deref for Sp<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

pub fn span_of(node: &Node) -> Span {
    Span {
        pos: node.pos,
        len: match &node.value {
            Value::Str(s) => s.chars().count().max(1),
            Value::Int(i) => i.to_string().len(),
            Value::Bool(b) => b.to_string().len(),
            Value::Float(f) => f.to_string().len(),
            _ => 1,
        },
    }
}

#[derive(Default)]
pub struct Decoder {
    pub diagnostics: Vec<Diagnostic>,
}

/// The entries of one YAML mapping, already checked against the keys its type knows.
pub struct Fields<'a> {
    entries: &'a [(Node, Node)],
    pub span: Span,
    /// Known keys that an unknown key was probably meant to be; not reported again as missing.
    misspelled: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(&k.value, Value::Str(s) if s == key))
            .map(|(_, v)| v)
    }
}

impl Decoder {
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    fn wrong_kind(&mut self, node: &Node, expected: &str, what: &str) {
        self.push(
            Diagnostic::error(format!("{what} must be {expected}, not {}", node.value.kind()))
                .at(span_of(node))
                .label(format!("expected {expected}")),
        );
    }

    /// Opens a mapping of type `what`, reporting every key that is not in `known`.
    pub fn fields<'a>(&mut self, node: &'a Node, what: &str, known: &[&'static str]) -> Option<Fields<'a>> {
        let Value::Map(entries) = &node.value else {
            self.wrong_kind(node, "a mapping", what);
            return None;
        };
        let mut misspelled = Vec::new();
        for (key, _) in entries {
            match &key.value {
                Value::Str(k) if known.contains(&k.as_str()) => {}
                Value::Str(k) => {
                    let mut d = Diagnostic::error(format!("unknown field `{}` in {what}", shorten(k)))
                        .at(span_of(key))
                        .label("unknown field");
                    d = match closest(k, known) {
                        Some(best) => {
                            misspelled.push(best);
                            d.help(format!("did you mean `{best}`?"))
                        }
                        None => d.help(format!("{what} takes: {}", known.join(", "))),
                    };
                    self.push(d);
                }
                _ => self.wrong_kind(key, "a string", "a field name"),
            }
        }
        Some(Fields {
            entries,
            span: span_of(node),
            misspelled,
        })
    }

    /// Reports a missing required field at the mapping that lacks it.
    pub fn require<'a>(&mut self, fields: &Fields<'a>, key: &str, what: &str) -> Option<&'a Node> {
        let found = fields.get(key);
        if found.is_none() && !fields.misspelled.contains(&key) {
            self.push(
                Diagnostic::error(format!("{what} has no `{key}`"))
                    .at(fields.span)
                    .label(format!("`{key}` is required here")),
            );
        }
        found
    }

    pub fn list<'a>(&mut self, node: &'a Node, what: &str) -> &'a [Node] {
        match &node.value {
            Value::Seq(items) => items,
            Value::Null => &[],
            _ => {
                self.wrong_kind(node, "a list", what);
                &[]
            }
        }
    }

    pub fn string(&mut self, node: &Node, what: &str) -> Option<Sp<String>> {
        let text = match &node.value {
            Value::Str(s) => s.clone(),
            Value::Int(i) => i.to_string(),
            _ => {
                self.wrong_kind(node, "a string", what);
                return None;
            }
        };
        Some(Sp::new(text, span_of(node)))
    }

    pub fn bool(&mut self, node: &Node, what: &str) -> Option<bool> {
        match &node.value {
            Value::Bool(b) => Some(*b),
            _ => {
                self.wrong_kind(node, "true or false", what);
                None
            }
        }
    }

    pub fn integer(&mut self, node: &Node, what: &str, min: i64, max: i64) -> Option<Sp<i64>> {
        // A whole number beyond 64 bits reaches the tree as a float; it is still a whole number.
        if let Value::Float(f) = node.value
            && f.fract() == 0.0
            && f.abs() >= 9.2e18
        {
            self.push(
                Diagnostic::error(format!("{what} is out of range"))
                    .at(span_of(node))
                    .label(format!("must be {min} to {max}")),
            );
            return None;
        }
        let Value::Int(i) = node.value else {
            self.wrong_kind(node, "a whole number", what);
            return None;
        };
        if i < min || i > max {
            self.push(
                Diagnostic::error(format!("{what} {i} is out of range"))
                    .at(span_of(node))
                    .label(format!("must be {min} to {max}")),
            );
            return None;
        }
        Some(Sp::new(i, span_of(node)))
    }

    pub fn port(&mut self, node: &Node, what: &str) -> Option<Sp<u16>> {
        let n = self.integer(node, what, 1, 65535)?;
        Some(Sp::new(n.value as u16, n.span))
    }

    /// One of a closed set of words, as Kubernetes spells them.
    pub fn word(&mut self, node: &Node, what: &str, choices: &[&str]) -> Option<Sp<String>> {
        let s = self.string(node, what)?;
        if choices.contains(&s.as_str()) {
            return Some(s);
        }
        let mut d = Diagnostic::error(format!("`{}` is not a valid {what}", shorten(&s.value)))
            .at(s.span)
            .label(format!("expected one of: {}", choices.join(", ")));
        if let Some(best) = closest(&s, choices) {
            d = d.help(format!("did you mean `{best}`?"));
        }
        self.push(d);
        None
    }

    pub fn ipv4(&mut self, node: &Node, what: &str) -> Option<Sp<Ipv4Addr>> {
        let s = self.string(node, what)?;
        match parse_ipv4(&s) {
            Ok(ip) => Some(Sp::new(ip, s.span)),
            Err(why) => {
                self.push(
                    Diagnostic::error(format!("`{}` is not a valid {what}: {why}", shorten(&s.value)))
                        .at(s.span)
                        .label("not an IPv4 address")
                        .help("write four numbers from 0 to 255, for example 10.0.1.2"),
                );
                None
            }
        }
    }

    pub fn cidr(&mut self, node: &Node, what: &str) -> Option<Sp<Ipv4Net>> {
        let s = self.string(node, what)?;
        match parse_cidr(&s) {
            Ok(net) => Some(Sp::new(net, s.span)),
            Err(CidrError { why, help }) => {
                self.push(
                    Diagnostic::error(format!("`{}` is not a valid {what}: {why}", shorten(&s.value)))
                        .at(s.span)
                        .label("not a CIDR block")
                        .help(help),
                );
                None
            }
        }
    }

    /// A mapping of string keys to string values, such as labels or a selector, each with its
    /// place so that validation can point at a key or value the API would refuse.
    pub fn string_map(&mut self, node: &Node, what: &str) -> Vec<(Sp<String>, Sp<String>)> {
        let entries = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => return Vec::new(),
            _ => {
                self.wrong_kind(node, "a mapping", what);
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (k, v) in entries {
            if let (Some(k), Some(v)) = (self.string(k, "a label key"), self.string(v, "a label value")) {
                out.push((k, v));
            }
        }
        out.sort_by(|(a, x), (b, y)| (&a.value, &x.value).cmp(&(&b.value, &y.value)));
        out.shrink_to_fit();
        out
    }
}

/// Collects into a list that holds only its entries. A list collected from a filter does not
/// know its length beforehand and grows by doubling: a one-container pod would hold room for
/// four, and 150,000 pods room for 262,144.
pub trait CollectFitted<T>: Iterator<Item = T> + Sized {
    fn collect_fitted(self) -> Vec<T> {
        let mut list: Vec<T> = self.collect();
        list.shrink_to_fit();
        list
    }
}

impl<T, I: Iterator<Item = T>> CollectFitted<T> for I {}

/// Reads a dotted quad strictly: no leading zeros, which some parsers take as octal.
pub fn parse_ipv4(text: &str) -> Result<Ipv4Addr, String> {
    if text.contains(':') && text.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(
            "it is an IPv6 address, and IPv6 is not supported yet (k8snet models IPv4 clusters only)".to_owned(),
        );
    }
    let parts: Vec<&str> = text.split('.').collect();
    if parts.len() != 4 {
        return Err(format!("it has {} parts, an address has 4", parts.len()));
    }
    for part in &parts {
        if part.len() > 1 && part.starts_with('0') {
            return Err(format!("`{}` has a leading zero", shorten(part)));
        }
    }
    Ipv4Addr::from_str(text).map_err(|_| "each part must be a number from 0 to 255".to_owned())
}

pub struct CidrError {
    pub why: String,
    pub help: String,
}

pub fn parse_cidr(text: &str) -> Result<Ipv4Net, CidrError> {
    let example = "write an address, a slash and a prefix length, for example 10.0.1.0/24";
    let Some((addr, len)) = text.split_once('/') else {
        return Err(CidrError {
            why: "it has no prefix length".into(),
            help: example.into(),
        });
    };
    let addr = parse_ipv4(addr).map_err(|why| CidrError {
        why,
        help: example.into(),
    })?;
    let len: u8 = match len.parse() {
        Ok(n) if n <= 32 && (len == "0" || !len.starts_with('0')) => n,
        _ => {
            return Err(CidrError {
                why: format!("the prefix length `{}` must be a number from 0 to 32", shorten(len)),
                help: example.into(),
            });
        }
    };
    let net = Ipv4Net::new(addr, len).map_err(|_| CidrError {
        why: "the prefix length is out of range".into(),
        help: example.into(),
    })?;
    if net.trunc() != net {
        return Err(CidrError {
            why: "it has host bits set".into(),
            help: format!("did you mean {}?", net.trunc()),
        });
    }
    Ok(net)
}

/// The known word nearest to a typo, if it is near enough to be a likely meaning.
pub fn closest<'a>(typed: &str, known: &[&'a str]) -> Option<&'a str> {
    let near_enough = |k: &str| 2.max(k.len() / 4);
    let typed_len = typed.chars().count();
    let typed = typed.to_lowercase();
    known
        .iter()
        // The edit distance is at least the difference in length; skipping words that differ
        // more keeps a megabyte-long typo from costing seconds.
        .filter(|k| typed_len.abs_diff(k.chars().count()) <= near_enough(k))
        .map(|k| (strsim::damerau_levenshtein(&typed, &k.to_lowercase()), *k))
        .filter(|(d, k)| *d <= near_enough(k))
        .min()
        .map(|(_, k)| k)
}

/// How many known names a hint lists before it only counts the rest.
const LISTED_NAMES: usize = 10;

/// A hint for a name that is not one of `known`: the likely meaning, or else the list (its
/// first names, then how many more).
pub fn did_you_mean(typed: &str, known: &[&str], list_label: &str) -> String {
    match closest(typed, known) {
        Some(best) => format!("did you mean `{best}`?"),
        None if known.is_empty() => format!("{list_label}: none"),
        None if known.len() > LISTED_NAMES => format!(
            "{list_label}: {} and {} more",
            known[..LISTED_NAMES].join(", "),
            known.len() - LISTED_NAMES
        ),
        None => format!("{list_label}: {}", known.join(", ")),
    }
}

/// The position of a whole-file problem (for example an empty file).
pub fn file_start() -> Span {
    Span {
        pos: Pos { line: 1, column: 1 },
        len: 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_with_host_bits_suggests_the_network() {
        let err = parse_cidr("10.0.1.5/24").err().unwrap();
        assert_eq!(err.help, "did you mean 10.0.1.0/24?");
    }

    #[test]
    fn cidr_prefix_too_long_names_the_prefix() {
        let err = parse_cidr("10.244.1.0/33").err().unwrap();
        assert!(err.why.contains("prefix length `33`"), "{}", err.why);
    }

    #[test]
    fn leading_zero_is_refused_rather_than_read_as_decimal() {
        assert!(parse_ipv4("010.1.0.0").is_err());
        assert!(parse_cidr("010.1.0.0/16").is_err());
        assert_eq!(parse_ipv4("10.0.0.0").unwrap(), Ipv4Addr::new(10, 0, 0, 0));
    }

    #[test]
    fn typo_finds_the_field_it_meant() {
        assert_eq!(closest("podCIRD", &["name", "ip", "podCIDR"]), Some("podCIDR"));
        assert_eq!(closest("colour", &["name", "ip", "podCIDR"]), None);
    }
}
