//! Structure-aware mutation of scenario files: the YAML is read into a tree, a few nodes are
//! replaced, duplicated, deleted or swapped for hostile values, and the tree is written back as
//! block YAML. Random bytes rarely get past the YAML parser; these mutants reach validation, the
//! compiler, the tracer and the script writer with names and numbers nobody should trust.
//!
//! Every decision is drawn from a [`Choices`], so the same code serves the libFuzzer targets
//! (decisions read from the fuzzer's bytes) and the stable time-bounded test (a seeded PRNG).

#![allow(dead_code)]

/// The source of every decision the mutator makes.
pub trait Choices {
    /// A number in `0..n`; `n` is at least 1.
    fn below(&mut self, n: usize) -> usize;

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// A small, fast, seedable generator (SplitMix64): good enough to pick mutations, and the
/// same seed gives the same run on every machine.
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl Choices for Rng {
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// A YAML document reduced to what a scenario uses. Scalars keep their written form, so a
/// mutant can hold text the YAML parser reads in surprising ways (`0x10`, `~`, `1e400`).
#[derive(Debug, Clone, PartialEq)]
pub enum Tree {
    Map(Vec<(String, Tree)>),
    Seq(Vec<Tree>),
    /// A string, written double-quoted with every control character escaped.
    Str(String),
    /// A scalar written exactly as it is: numbers, booleans, null, or deliberately raw text.
    Raw(String),
}

/// Reads YAML text into a tree; `None` when it is not YAML (the mutator then leaves it alone).
pub fn parse(text: &str) -> Option<Tree> {
    let value: serde_json::Value = serde_saphyr::from_str(text).ok()?;
    Some(from_value(value))
}

fn from_value(v: serde_json::Value) -> Tree {
    use serde_json::Value;
    match v {
        Value::Null => Tree::Raw("null".into()),
        Value::Bool(b) => Tree::Raw(b.to_string()),
        Value::Number(n) => Tree::Raw(n.to_string()),
        Value::String(s) => Tree::Str(s),
        Value::Array(a) => Tree::Seq(a.into_iter().map(from_value).collect()),
        Value::Object(o) => Tree::Map(o.into_iter().map(|(k, v)| (k, from_value(v))).collect()),
    }
}

/// Writes the tree as block YAML.
pub fn emit(tree: &Tree) -> String {
    let mut out = String::new();
    emit_node(&mut out, tree, 0);
    out
}

fn quoted(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar, control characters escaped.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn key_text(k: &str) -> String {
    let plain = !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain { k.to_owned() } else { quoted(k) }
}

fn inline(tree: &Tree) -> Option<String> {
    match tree {
        Tree::Str(s) => Some(quoted(s)),
        Tree::Raw(r) => Some(r.clone()),
        Tree::Map(m) if m.is_empty() => Some("{}".into()),
        Tree::Seq(s) if s.is_empty() => Some("[]".into()),
        _ => None,
    }
}

fn emit_node(out: &mut String, tree: &Tree, indent: usize) {
    let pad = " ".repeat(indent);
    match tree {
        Tree::Map(entries) if !entries.is_empty() => {
            for (k, v) in entries {
                match inline(v) {
                    Some(text) => out.push_str(&format!("{pad}{}: {text}\n", key_text(k))),
                    None => {
                        out.push_str(&format!("{pad}{}:\n", key_text(k)));
                        emit_node(out, v, indent + 2);
                    }
                }
            }
        }
        Tree::Seq(items) if !items.is_empty() => {
            for item in items {
                match inline(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        // The item's first line goes after the dash; the rest keep its indent.
                        let mut inner = String::new();
                        emit_node(&mut inner, item, indent + 2);
                        let inner = inner.strip_prefix(&" ".repeat(indent + 2)).unwrap_or(&inner);
                        out.push_str(&format!("{pad}- {inner}"));
                    }
                }
            }
        }
        other => {
            let text = inline(other).unwrap_or_default();
            out.push_str(&format!("{pad}{text}\n"));
        }
    }
}

/// Values an attacker or a careless generator would write: shell and iptables-restore
/// metacharacters, control characters, lengths at and beyond Kubernetes' limits, numbers at
/// and beyond every integer width, and text YAML reads as something else.
pub fn hostile_value(ch: &mut dyn Choices) -> Tree {
    const STRINGS: &[&str] = &[
        "$(reboot)",
        "`reboot`",
        "x\nreboot\n",
        "x\rreboot",
        "a;reboot",
        "a && reboot",
        "a|reboot",
        "'",
        "\"",
        "x\" -j ACCEPT -m comment --comment \"y",
        "--help",
        "-n",
        "\u{1b}[31mred\u{1b}[0m",
        "\u{1b}]0;title\u{7}",
        "\0",
        "\t",
        "",
        " ",
        "*",
        "*.example.com",
        "a.*.example.com",
        "/",
        "//",
        "/a/../..",
        "/\u{1b}",
        "ümlaut",
        "\u{202e}evil",
        "\u{feff}",
        "A",
        "-a-",
        "a..b",
        "kube-system",
        "default",
        "svc/x",
        "ns/svc/x",
        "http://a/b",
        "internet",
        "external:203.0.113.7",
        "0.0.0.0",
        "255.255.255.255",
        "127.0.0.1",
        "10.0.0.1/33",
        "10.0.0.1/8",
        "0.0.0.0/0",
        "::1",
        "010.001.0.0/16",
        "1.2.3.4:08080",
        "%s%s%n",
        "${HOME}",
        "~",
        "cluster.local.",
    ];
    const RAW: &[&str] = &[
        "0",
        "-1",
        "1",
        "65535",
        "65536",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "99999999999999999999",
        "-99999999999999999999",
        "1e400",
        "1.5",
        ".nan",
        ".inf",
        "0x1F",
        "0o17",
        "08080",
        "~",
        "null",
        "true",
        "yes",
        "[]",
        "{}",
        "[[[[[]]]]]",
        "'unterminated",
        "&a x",
        "*a",
        "!!binary aGk=",
        "!custom x",
        "$(reboot)",
    ];
    match ch.below(8) {
        0..=3 => Tree::Str(STRINGS[ch.below(STRINGS.len())].to_owned()),
        4 | 5 => Tree::Raw(RAW[ch.below(RAW.len())].to_owned()),
        _ => {
            // Lengths on both sides of the API's limits: 15 (port names), 63 (labels, DNS
            // labels), 253 (DNS subdomains), and far beyond.
            const LENGTHS: &[usize] = &[15, 16, 63, 64, 253, 254, 4096, 70_000];
            let n = LENGTHS[ch.below(LENGTHS.len())];
            let unit = ["a", "a.", "-", "é", "\u{1b}"][ch.below(5)];
            let mut s = unit.repeat(n.div_ceil(unit.len()));
            s.truncate(s.char_indices().nth(n).map_or(s.len(), |(i, _)| i));
            Tree::Str(s)
        }
    }
}

/// How many nodes the tree holds, itself included.
fn count(tree: &Tree) -> usize {
    1 + match tree {
        Tree::Map(m) => m.iter().map(|(_, v)| count(v)).sum(),
        Tree::Seq(s) => s.iter().map(count).sum(),
        _ => 0,
    }
}

/// The `k`th node in pre-order; `k` must be below `count(tree)`.
fn nth_mut(tree: &mut Tree, k: usize) -> &mut Tree {
    fn walk<'t>(tree: &'t mut Tree, k: &mut usize) -> Option<&'t mut Tree> {
        if *k == 0 {
            return Some(tree);
        }
        *k -= 1;
        match tree {
            Tree::Map(m) => m.iter_mut().find_map(|(_, v)| walk(v, k)),
            Tree::Seq(s) => s.iter_mut().find_map(|v| walk(v, k)),
            _ => None,
        }
    }
    let mut k = k;
    walk(tree, &mut k).expect("k is below the node count")
}

fn random_node<'t>(tree: &'t mut Tree, ch: &mut dyn Choices) -> &'t mut Tree {
    let n = count(tree);
    nth_mut(tree, ch.below(n))
}

fn random_subtree(tree: &Tree, ch: &mut dyn Choices) -> Tree {
    let mut copy = tree.clone();
    random_node(&mut copy, ch).clone()
}

/// Keys a scenario uses, to rename a key to another real one (a valid field in the wrong place).
const KEYS: &[&str] = &[
    "cluster",
    "nodes",
    "pods",
    "services",
    "ingresses",
    "traces",
    "name",
    "namespace",
    "ip",
    "podCIDR",
    "node",
    "labels",
    "containers",
    "ports",
    "port",
    "containerPort",
    "targetPort",
    "nodePort",
    "protocol",
    "selector",
    "type",
    "clusterIP",
    "clusterDomain",
    "routes",
    "hostNetwork",
    "host",
    "path",
    "pathType",
    "rules",
    "backend",
    "http",
    "paths",
    "from",
    "to",
    "expect",
    "podNetwork",
    "serviceNetwork",
    "nodeNetwork",
    "gateway",
    "loadBalancerIP",
    "externalTrafficPolicy",
];

/// Applies one mutation somewhere in `tree`; `donor` is another scenario to take nodes from.
pub fn mutate_once(tree: &mut Tree, donor: &Tree, ch: &mut dyn Choices) {
    let graft = |ch: &mut dyn Choices| random_subtree(donor, ch);
    match ch.below(10) {
        // Swap a value for a hostile one.
        0..=2 => *random_node(tree, ch) = hostile_value(ch),
        // Move a value to another place (an IP into a name, a name into a port).
        3 => {
            let value = random_subtree(tree, ch);
            *random_node(tree, ch) = value;
        }
        // Graft a node of another scenario.
        4 => *random_node(tree, ch) = graft(ch),
        // Duplicate an element or an entry: duplicate names, addresses, ports.
        5 => match random_node(tree, ch) {
            Tree::Seq(items) if !items.is_empty() => {
                let i = ch.below(items.len());
                let copies = if ch.chance(8) { 1 + ch.below(64) } else { 1 };
                for _ in 0..copies {
                    items.insert(i, items[i].clone());
                }
            }
            Tree::Map(entries) if !entries.is_empty() => {
                let i = ch.below(entries.len());
                entries.insert(i, entries[i].clone());
            }
            _ => {}
        },
        // Delete an element or an entry.
        6 => match random_node(tree, ch) {
            Tree::Seq(items) if !items.is_empty() => {
                items.remove(ch.below(items.len()));
            }
            Tree::Map(entries) if !entries.is_empty() => {
                entries.remove(ch.below(entries.len()));
            }
            _ => {}
        },
        // Rename a key: a typo, a real key in the wrong place, or hostile text.
        7 => {
            if let Tree::Map(entries) = random_node(tree, ch)
                && !entries.is_empty()
            {
                let i = ch.below(entries.len());
                entries[i].0 = match ch.below(3) {
                    0 => KEYS[ch.below(KEYS.len())].to_owned(),
                    1 => match hostile_value(ch) {
                        Tree::Str(s) | Tree::Raw(s) => s,
                        _ => String::new(),
                    },
                    _ => {
                        // A typo: one character dropped.
                        let mut k: Vec<char> = entries[i].0.chars().collect();
                        if !k.is_empty() {
                            k.remove(ch.below(k.len()));
                        }
                        k.into_iter().collect()
                    }
                };
            }
        }
        // Add an entry or element: a new field, or one more item.
        8 => {
            let value = if ch.chance(2) { hostile_value(ch) } else { graft(ch) };
            match random_node(tree, ch) {
                Tree::Map(entries) => {
                    let key = KEYS[ch.below(KEYS.len())].to_owned();
                    let at = ch.below(entries.len() + 1);
                    entries.insert(at, (key, value));
                }
                Tree::Seq(items) => {
                    let at = ch.below(items.len() + 1);
                    items.insert(at, value);
                }
                _ => {}
            }
        }
        // Change a node's kind: a scalar where a list is expected, a list where a map is.
        _ => {
            let node = random_node(tree, ch);
            *node = match ch.below(4) {
                0 => Tree::Seq(vec![node.clone()]),
                1 => Tree::Map(vec![("name".into(), node.clone())]),
                2 => Tree::Map(vec![]),
                _ => Tree::Raw("null".into()),
            };
        }
    }
}

/// Parses `text`, applies one to four mutations and writes it back; `None` when `text` is not
/// YAML this mutator can read.
pub fn mutate_text(text: &str, donor: &str, ch: &mut dyn Choices) -> Option<String> {
    let mut tree = parse(text)?;
    let donor = parse(donor).unwrap_or_else(|| tree.clone());
    // Mostly one change, so most mutants still get past validation to the compiler.
    let rounds = if ch.chance(2) { 1 } else { 1 + ch.below(4) };
    for _ in 0..rounds {
        mutate_once(&mut tree, &donor, ch);
    }
    Some(emit(&tree))
}

/// Byte-level damage for the stable run's unstructured half: flip, insert, delete, or splice
/// a line, so the YAML parser and its error paths get hostile text too.
pub fn mutate_bytes(bytes: &mut Vec<u8>, ch: &mut dyn Choices) {
    const INSERTS: &[&[u8]] = &[
        b"\n",
        b"\t",
        b":",
        b"- ",
        b"{",
        b"[",
        b"&a ",
        b"*a",
        b"'",
        b"\"",
        b"#",
        b"\x1b",
        b"\xff",
        b"\xc3",
        b"\r\n",
        b"  ",
        b"? ",
        b"!!str ",
        b"---\n",
        b"...\n",
        b"%YAML 1.2\n",
    ];
    for _ in 0..1 + ch.below(4) {
        let at = ch.below(bytes.len() + 1);
        match ch.below(5) {
            0 if !bytes.is_empty() => {
                let i = at.min(bytes.len() - 1);
                bytes[i] ^= 1 << ch.below(8);
            }
            1 if !bytes.is_empty() => {
                let end = (at + 1 + ch.below(16)).min(bytes.len());
                bytes.drain(at.min(end)..end);
            }
            2 => {
                let piece = INSERTS[ch.below(INSERTS.len())];
                bytes.splice(at..at, piece.iter().copied());
            }
            3 if !bytes.is_empty() => {
                // Duplicate a line elsewhere: repeated keys and items.
                let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
                let line = lines[ch.below(lines.len())].to_vec();
                let mut line = line;
                line.push(b'\n');
                let at = bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'\n')
                    .map(|(i, _)| i + 1)
                    .nth(ch.below(lines.len()))
                    .unwrap_or(0);
                bytes.splice(at..at, line);
            }
            _ => {
                let b = ch.below(256) as u8;
                bytes.insert(at, b);
            }
        }
    }
}
