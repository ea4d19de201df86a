//! An nftables table in words: as `nft list table` prints it (nftables 1.0.6, the version the
//! kernel suite runs), and as the `nft -f` input that builds it.

use std::fmt::Write;

use super::{Addrs, ChainType, Element, Field, Hook, Key, KeyType, Match, Rule, Set, Statement, Table, Verdict};

/// nftables keeps at most this many characters of a comment and refuses longer ones.
pub const MAX_COMMENT: usize = 128;

/// A comment as one nftables string: in double quotes, which the language has no escape for, so
/// a `"`, a `\` or a control character (which validation has refused in every name) becomes a
/// space; cut to what nftables keeps, at a character boundary.
pub fn quoted_string(text: &str) -> String {
    let mut end = text.len().min(MAX_COMMENT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let clean: String = text[..end]
        .chars()
        .map(|c| {
            if c == '"' || c == '\\' || c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    format!("\"{clean}\"")
}

/// Whether nftables reads `name` as one identifier: a letter or `_` first, then letters,
/// digits and `_./-` only. nftables 1.0.6 cannot quote a chain or set name, so a name that is
/// not one is refused rather than written.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || "_./-".contains(c))
        && name.len() <= 256
}

fn field(f: Field) -> &'static str {
    match f {
        Field::Saddr => "saddr",
        Field::Daddr => "daddr",
    }
}

fn net_text(net: &ipnet::Ipv4Net) -> String {
    if net.prefix_len() == 32 {
        net.addr().to_string()
    } else {
        net.to_string()
    }
}

fn match_text(m: &Match) -> String {
    match m {
        Match::Addr {
            field: f,
            negated,
            addrs,
        } => {
            let op = if *negated { "!= " } else { "" };
            let value = match addrs {
                Addrs::Net(n) => net_text(n),
                // nft keeps an anonymous set of ranges sorted, and prints a set of one as its
                // element.
                Addrs::List(list) if list.len() == 1 => net_text(&list[0]),
                Addrs::List(list) => {
                    let mut sorted = list.clone();
                    sorted.sort_by_key(|n| (u32::from(n.network()), n.prefix_len()));
                    let parts: Vec<String> = sorted.iter().map(net_text).collect();
                    format!("{{ {} }}", parts.join(", "))
                }
                Addrs::Set(name) => format!("@{name}"),
            };
            format!("ip {} {op}{value}", field(*f))
        }
        Match::Dport { protocol, port } => format!("{} dport {port}", protocol.lower()),
        Match::L4proto(p) => format!("meta l4proto {}", p.lower()),
        Match::FibLocal(f) => format!("fib {} type local", field(*f)),
        Match::CtNew => "ct state new".into(),
        Match::MarkUnset(mask) => format!("meta mark & {mask:#010x} == 0x00000000"),
    }
}

pub(super) fn verdict_text(v: &Verdict) -> String {
    match v {
        Verdict::Jump(c) => format!("jump {c}"),
        Verdict::Goto(c) => format!("goto {c}"),
        Verdict::Return => "return".into(),
        Verdict::Accept => "accept".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Reject => "reject".into(),
    }
}

fn key_expr(k: KeyType) -> &'static str {
    match k {
        KeyType::Addr => "ip daddr",
        KeyType::AddrProtoPort => "ip daddr . meta l4proto . th dport",
        KeyType::ProtoPort => "meta l4proto . th dport",
    }
}

fn key_type(k: KeyType) -> &'static str {
    match k {
        KeyType::Addr => "ipv4_addr",
        KeyType::AddrProtoPort => "ipv4_addr . inet_proto . inet_service",
        KeyType::ProtoPort => "inet_proto . inet_service",
    }
}

fn statement_text(s: &Statement) -> String {
    match s {
        Statement::Verdict(v) => verdict_text(v),
        Statement::MarkOr(bits) => format!("meta mark set meta mark | {bits:#010x}"),
        Statement::MarkXor(bits) => format!("meta mark set meta mark ^ {bits:#010x}"),
        Statement::Masquerade => "masquerade fully-random".into(),
        Statement::Dnat(to) => format!("dnat to {to}"),
        Statement::UpdateSource(set) => format!("update @{set} {{ ip saddr }}"),
        Statement::Vmap { key, map } => format!("{} vmap @{map}", key_expr(*key)),
        Statement::Numgen(branches) => {
            let parts: Vec<String> = branches
                .iter()
                .enumerate()
                .map(|(i, v)| format!("{i} : {}", verdict_text(v)))
                .collect();
            format!("numgen random mod {} vmap {{ {} }}", branches.len(), parts.join(", "))
        }
    }
}

impl Rule {
    /// The rule as `nft list` prints it.
    pub fn text(&self) -> String {
        let mut words: Vec<String> = self.matches.iter().map(match_text).collect();
        words.push(statement_text(&self.statement));
        if let Some(c) = &self.comment {
            words.push(format!("comment {}", quoted_string(c)));
        }
        words.join(" ")
    }
}

pub(super) fn key_text(k: &Key) -> String {
    let mut parts = Vec::new();
    if let Some(a) = k.addr {
        parts.push(a.to_string());
    }
    if let Some(p) = k.protocol {
        parts.push(p.lower().to_owned());
    }
    if let Some(p) = k.port {
        parts.push(p.to_string());
    }
    parts.join(" . ")
}

impl Element {
    /// The element as `nft list` prints it: `KEY [comment "…"] [: VERDICT]`.
    pub fn text(&self) -> String {
        let mut out = key_text(&self.key);
        if let Some(c) = &self.comment {
            let _ = write!(out, " comment {}", quoted_string(c));
        }
        if let Some(v) = &self.verdict {
            let _ = write!(out, " : {}", verdict_text(v));
        }
        out
    }
}

/// A timeout as nft prints one: `3h`, `23h59m59s`, `1d`.
fn duration(seconds: u32) -> String {
    let mut out = String::new();
    let mut left = seconds;
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if left >= size {
            let _ = write!(out, "{}{unit}", left / size);
            left %= size;
        }
    }
    if out.is_empty() { "0s".into() } else { out }
}

/// The priority as nft 1.0.6 prints it: by the name of a standard priority within 10 of it
/// that the family and hook allow (`dstnat` only on prerouting, `srcnat` only on postrouting),
/// else as a number.
fn priority_text(hook: Hook, priority: i32) -> String {
    let names: &[(&str, i32)] = match hook {
        Hook::Prerouting => &[
            ("raw", -300),
            ("mangle", -150),
            ("dstnat", -100),
            ("filter", 0),
            ("security", 50),
        ],
        Hook::Postrouting => &[
            ("raw", -300),
            ("mangle", -150),
            ("filter", 0),
            ("security", 50),
            ("srcnat", 100),
        ],
        _ => &[("raw", -300), ("mangle", -150), ("filter", 0), ("security", 50)],
    };
    for (name, base) in names {
        let offset = priority - base;
        if offset == 0 {
            return (*name).to_owned();
        }
        if (-10..=10).contains(&offset) {
            let sign = if offset < 0 { '-' } else { '+' };
            return format!("{name} {sign} {}", offset.abs());
        }
    }
    priority.to_string()
}

fn kind_text(k: ChainType) -> &'static str {
    match k {
        ChainType::Filter => "filter",
        ChainType::Nat => "nat",
    }
}

/// nft puts two addresses on a line, and one element of any other key. `max` elements at most.
fn elements_text(set: &Set, max: usize) -> String {
    let per_line = if set.key == KeyType::Addr && !set.map { 2 } else { 1 };
    let mut out = String::from("{ ");
    for (i, e) in set.elements().iter().take(max).enumerate() {
        if i > 0 {
            out.push_str(if i % per_line == 0 { ",\n\t\t\t     " } else { ", " });
        }
        out.push_str(&e.text());
    }
    out.push_str(" }");
    out
}

fn set_text(out: &mut String, set: &Set, max: usize) {
    let _ = writeln!(out, "\t{} {} {{", if set.map { "map" } else { "set" }, set.name);
    let value = if set.map { " : verdict" } else { "" };
    let _ = writeln!(out, "\t\ttype {}{value}", key_type(set.key));
    if let Some(t) = set.timeout {
        // A set a rule updates gets the kernel's default size.
        out.push_str("\t\tsize 65535\n\t\tflags dynamic,timeout\n");
        let _ = writeln!(out, "\t\ttimeout {}", duration(t));
    }
    if let Some(c) = &set.comment {
        let _ = writeln!(out, "\t\tcomment {}", quoted_string(c));
    }
    if !set.elements().is_empty() {
        let _ = writeln!(out, "\t\telements = {}", elements_text(set, max));
    }
    let left = set.elements().len().saturating_sub(max);
    if left > 0 {
        let _ = writeln!(out, "\t\t# … and {left} more elements");
    }
    out.push_str("\t}\n");
}

/// kube-proxy's own test for a chain of one Service port or endpoint (`isServiceChainName`):
/// only those names hold a `/`.
fn is_service_part(name: &str) -> bool {
    name.contains('/')
}

pub(super) fn list(table: &Table) -> String {
    listing(table, usize::MAX, true)
}

/// The table with at most `max` elements of each set and without the chains and sets of single
/// Service ports, and how many chains were left out: what a large cluster's node holds, in a
/// size one can read.
pub(super) fn list_abridged(table: &Table, max: usize) -> (String, usize) {
    let left_out = table.chains().iter().filter(|c| is_service_part(&c.name)).count();
    (listing(table, max, false), left_out)
}

fn listing(table: &Table, max: usize, services: bool) -> String {
    let mut out = format!("table ip {} {{\n", table.name);
    if let Some(c) = &table.comment {
        let _ = writeln!(out, "\tcomment {}", quoted_string(c));
    }
    let mut blocks = Vec::new();
    for set in table.sets().iter().filter(|s| services || !is_service_part(&s.name)) {
        let mut b = String::new();
        set_text(&mut b, set, max);
        blocks.push(b);
    }
    for chain in table
        .chains()
        .into_iter()
        .filter(|c| services || !is_service_part(&c.name))
    {
        let mut b = format!("\tchain {} {{\n", chain.name);
        if let Some(base) = chain.base {
            let _ = writeln!(
                b,
                "\t\ttype {} hook {} priority {}; policy accept;",
                kind_text(base.kind),
                base.hook.word(),
                priority_text(base.hook, base.priority)
            );
        }
        if let Some(c) = &chain.comment {
            let _ = writeln!(b, "\t\tcomment {}", quoted_string(c));
        }
        for r in &chain.rules {
            let _ = writeln!(b, "\t\t{}", r.text());
        }
        b.push_str("\t}\n");
        blocks.push(b);
    }
    out.push_str(&blocks.join("\n"));
    out.push_str("}\n");
    out
}

/// The most elements one `add element` command carries, so no input line grows with the
/// cluster.
const ELEMENTS_PER_COMMAND: usize = 256;

/// The `nft -f` input that makes `table` from nothing: the table, every chain, every set and
/// map, then the rules and the elements (which may name any chain). Priorities are written as
/// numbers, as nft 1.0.6 takes no `dstnat` on the output hook. A name nft could not read as
/// one identifier is refused.
pub fn script_of(table: &Table) -> Result<String, String> {
    let t = format!("ip {}", table.name);
    let mut names = vec![table.name.clone()];
    let chains = table.chains();
    let sets = table.sets();
    names.extend(chains.iter().map(|c| c.name.clone()));
    names.extend(sets.iter().map(|s| s.name.clone()));
    if let Some(bad) = names.iter().find(|n| !is_identifier(n)) {
        return Err(format!("`{bad}` is not a name nftables accepts"));
    }
    let mut out = String::new();
    match &table.comment {
        Some(c) => {
            let _ = writeln!(out, "add table {t} {{ comment {} ; }}", quoted_string(c));
        }
        None => {
            let _ = writeln!(out, "add table {t}");
        }
    }
    for c in &chains {
        let mut spec = Vec::new();
        if let Some(b) = c.base {
            spec.push(format!(
                "type {} hook {} priority {} ;",
                kind_text(b.kind),
                b.hook.word(),
                b.priority
            ));
        }
        if let Some(comment) = &c.comment {
            spec.push(format!("comment {} ;", quoted_string(comment)));
        }
        if spec.is_empty() {
            let _ = writeln!(out, "add chain {t} {}", c.name);
        } else {
            let _ = writeln!(out, "add chain {t} {} {{ {} }}", c.name, spec.join(" "));
        }
    }
    for s in &sets {
        let value = if s.map { " : verdict" } else { "" };
        let mut spec = vec![format!("type {}{value} ;", key_type(s.key))];
        if let Some(timeout) = s.timeout {
            spec.push(format!("flags dynamic,timeout ; timeout {timeout}s ;"));
        }
        if let Some(c) = &s.comment {
            spec.push(format!("comment {} ;", quoted_string(c)));
        }
        let kind = if s.map { "map" } else { "set" };
        let _ = writeln!(out, "add {kind} {t} {} {{ {} }}", s.name, spec.join(" "));
    }
    for c in &chains {
        for r in &c.rules {
            let _ = writeln!(out, "add rule {t} {} {}", c.name, r.text());
        }
    }
    for s in &sets {
        for chunk in s.elements().chunks(ELEMENTS_PER_COMMAND) {
            let parts: Vec<String> = chunk.iter().map(Element::text).collect();
            let _ = writeln!(out, "add element {t} {} {{ {} }}", s.name, parts.join(", "));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn priorities_print_as_nft_prints_them() {
        assert_eq!(priority_text(Hook::Prerouting, -110), "dstnat - 10");
        assert_eq!(priority_text(Hook::Prerouting, -100), "dstnat");
        assert_eq!(priority_text(Hook::Output, -110), "-110");
        assert_eq!(priority_text(Hook::Output, -90), "-90");
        assert_eq!(priority_text(Hook::Postrouting, 100), "srcnat");
        assert_eq!(priority_text(Hook::Input, 5), "filter + 5");
    }

    #[test]
    fn timeouts_print_in_days_hours_minutes_and_seconds() {
        assert_eq!(duration(10_800), "3h");
        assert_eq!(duration(86_399), "23h59m59s");
        assert_eq!(duration(86_400), "1d");
        assert_eq!(duration(60), "1m");
    }

    #[test]
    fn a_name_nft_cannot_read_as_one_identifier_gets_no_script() {
        let mut part = super::super::Part::default();
        part.append(
            "ok-chain",
            Rule::new(
                Vec::new(),
                Statement::Verdict(Verdict::Jump("bad; flush ruleset".into())),
            ),
        );
        part.chain("bad; flush ruleset");
        let table = Table::new("kube-proxy", None, std::sync::Arc::new(part));
        assert!(script_of(&table).unwrap_err().contains("bad; flush ruleset"));
        let mut fine = super::super::Part::default();
        fine.chain("ok-chain").comment = Some("a \"quoted\"\nline".into());
        let script = script_of(&Table::new("kube-proxy", None, std::sync::Arc::new(fine))).unwrap();
        assert_eq!(
            script,
            "add table ip kube-proxy\nadd chain ip kube-proxy ok-chain { comment \"a  quoted  line\" ; }\n"
        );
    }

    #[test]
    fn comments_cannot_leave_their_quotes() {
        assert_eq!(quoted_string("a\"b\\c\nd"), "\"a b c d\"");
        assert_eq!(quoted_string(&"é".repeat(100)).len(), 2 + 128);
        assert!(is_identifier("service-ULMVA6XW-ns1/svc1/tcp/p80"));
        assert!(!is_identifier("a;b") && !is_identifier("1a") && !is_identifier("a b") && !is_identifier(""));
    }
}
