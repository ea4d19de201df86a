//! Netfilter rules as iptables holds them, printed exactly as `iptables-save` prints them.

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};

use ipnet::Ipv4Net;
use serde::Serialize;

use super::Protocol;
use super::rule_index::{self, RulesByDestination};
use crate::key_index::KeyIndex;

/// One netfilter table of one host. What kube-proxy writes is nearly the same on every node, so a
/// node's table is usually layered: the chains every node shares (held once, behind an [`Arc`]),
/// and the few chains of its own that replace or add to them, made the first time anything
/// looks at the table. Either way it reads as one table: a chain of the host's own hides a
/// shared chain of the same name.
#[derive(Clone)]
pub struct Table {
    pub name: String,
    own: Chains,
    shared: Option<Arc<Table>>,
    deferred: Option<Deferred>,
}

/// Chains in the order they were created, with an index by name.
#[derive(Debug, Clone, Default)]
struct Chains {
    list: Vec<Chain>,
    index: KeyIndex,
    /// The long chains' rules by destination, by the chain's position: made when a packet first
    /// walks a chain of the table.
    by_destination: OnceLock<HashMap<usize, RulesByDestination>>,
}

impl Chains {
    fn get(&self, name: &str) -> Option<&Chain> {
        self.position(name).map(|i| &self.list[i])
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.index.get(&name, |i| self.list[i].name.as_str())
    }

    fn get_for_walk(&self, name: &str) -> Option<(&Chain, Option<&RulesByDestination>)> {
        let i = self.position(name)?;
        let indexes = self.by_destination.get_or_init(|| {
            let long = self
                .list
                .iter()
                .enumerate()
                .filter(|(_, c)| c.rules.len() >= rule_index::MIN_RULES);
            long.filter_map(|(i, c)| Some((i, RulesByDestination::of(c)?)))
                .collect()
        });
        Some((&self.list[i], indexes.get(&i)))
    }

    fn ensure(&mut self, name: &str) -> &mut Chain {
        let Chains {
            list,
            index,
            by_destination,
        } = self;
        let i = match index.get(&name, |i| list[i].name.as_str()) {
            Some(i) => i,
            None => {
                list.push(Chain {
                    name: name.to_owned(),
                    policy: None,
                    rules: Vec::new(),
                });
                index.insert_new(list.len() - 1, |i| list[i].name.as_str());
                list.len() - 1
            }
        };
        // The caller may change the chain: an index made from it before is forgotten.
        by_destination.take();
        &mut list[i]
    }

    fn from_list(list: Vec<Chain>) -> Chains {
        let index = KeyIndex::of(list.len(), |i| list[i].name.as_str());
        Chains {
            list,
            index,
            by_destination: OnceLock::new(),
        }
    }
}

/// A host's own chains, made on first use by whoever built the table and kept from then on.
pub type MakeChains = Arc<dyn Fn() -> Vec<Chain> + Send + Sync>;

#[derive(Clone)]
struct Deferred {
    made: OnceLock<Chains>,
    make: MakeChains,
}

impl Deferred {
    fn chains(&self) -> &Chains {
        self.made.get_or_init(|| Chains::from_list((self.make)()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub name: String,
    /// Built-in chains have a policy; user chains return to their caller when they run out.
    pub policy: Option<Policy>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Policy {
    #[serde(rename = "ACCEPT")]
    Accept,
    #[serde(rename = "DROP")]
    Drop,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
    /// Not a state but a status `--ctstate` also takes: the connection's destination was
    /// translated.
    Dnat,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum RecentCheck {
    /// `--rcheck --seconds N --reap`: has this source been seen in the last N seconds?
    Rcheck { seconds: u32 },
    /// `--set`: remember this source.
    Set,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Match {
    Source {
        net: Ipv4Net,
        negated: bool,
    },
    Destination {
        net: Ipv4Net,
        negated: bool,
    },
    InInterface {
        name: String,
        negated: bool,
    },
    OutInterface {
        name: String,
        negated: bool,
    },
    Protocol(Protocol),
    Comment(String),
    /// `-m tcp --dport N` (or udp, sctp); with no port, just loads the protocol module.
    DestinationPort {
        protocol: Protocol,
        port: Option<u16>,
    },
    /// `-m addrtype --dst-type LOCAL` / `--src-type LOCAL`.
    AddrTypeLocal {
        destination: bool,
        negated: bool,
    },
    Mark {
        value: u32,
        mask: u32,
        negated: bool,
    },
    /// `-m statistic --mode random --probability P`, with P as the kernel stores it.
    Statistic {
        stored: u32,
    },
    Recent {
        name: String,
        check: RecentCheck,
    },
    Conntrack {
        states: Vec<CtState>,
        negated: bool,
    },
    /// `-m set [!] --match-set NAME src|dst`.
    Set {
        name: String,
        source: bool,
        negated: bool,
    },
    /// `-m physdev --physdev-is-bridged`: the packet is crossing a bridge, port to port.
    PhysdevIsBridged,
    /// `-m tcp --dport FIRST:LAST` (or udp, sctp).
    DestinationPortRange {
        protocol: Protocol,
        first: u16,
        last: u16,
    },
    /// `-m multiport --dports FIRST:LAST`.
    Multiport {
        first: u16,
        last: u16,
    },
    /// `-m icmp --icmp-type N`.
    IcmpType(u8),
    /// `-m limit --limit N/min --limit-burst B`.
    Limit {
        per_minute: u32,
        burst: u32,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Target {
    Jump(String),
    Accept,
    Drop,
    Return,
    Reject,
    Dnat(SocketAddrV4),
    Masquerade {
        random_fully: bool,
    },
    /// `MARK --set-xmark value/mask`: clear the mask's bits, then XOR in the value.
    SetXMark {
        value: u32,
        mask: u32,
    },
    /// `NFLOG --nflog-group N`: hands a copy to a logger, and the packet goes on.
    Nflog {
        group: u16,
    },
    /// No `-j` at all: the rule only counts the packets that match it, which go on to the next
    /// rule (kube-proxy writes one as a signpost at the end of a `KUBE-FW-*` chain).
    None,
}

/// The probability kube-proxy asks for, as the kernel stores it (a fraction of 2^31).
pub fn stored_probability(p: f64) -> u32 {
    // kube-proxy writes the probability with ten decimals; iptables then rounds it to 2^-31 steps.
    let written: f64 = format!("{p:.10}").parse().unwrap_or(p);
    (written * 2f64.powi(31)).round() as u32
}

pub fn probability_of(stored: u32) -> f64 {
    stored as f64 / 2f64.powi(31)
}

impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let not = |negated: &bool| if *negated { "! " } else { "" };
        match self {
            Match::Source { net, negated } => write!(f, "{}-s {net}", not(negated)),
            Match::Destination { net, negated } => write!(f, "{}-d {net}", not(negated)),
            Match::InInterface { name, negated } => write!(f, "{}-i {name}", not(negated)),
            Match::OutInterface { name, negated } => write!(f, "{}-o {name}", not(negated)),
            Match::Protocol(p) => write!(f, "-p {}", p.lower()),
            Match::Comment(c) => write!(f, "-m comment --comment {}", save_string(c)),
            Match::DestinationPort { protocol, port } => {
                write!(f, "-m {}", protocol.lower())?;
                match port {
                    Some(port) => write!(f, " --dport {port}"),
                    None => Ok(()),
                }
            }
            Match::AddrTypeLocal { destination, negated } => write!(
                f,
                "-m addrtype {}--{}-type LOCAL",
                not(negated),
                if *destination { "dst" } else { "src" }
            ),
            Match::Mark { value, mask, negated } => write!(f, "-m mark {}--mark {value:#x}/{mask:#x}", not(negated)),
            Match::Statistic { stored } => write!(
                f,
                "-m statistic --mode random --probability {:.11}",
                probability_of(*stored)
            ),
            Match::Recent { name, check } => match check {
                RecentCheck::Rcheck { seconds } => write!(
                    f,
                    "-m recent --rcheck --seconds {seconds} --reap --name {name} --mask 255.255.255.255 --rsource"
                ),
                RecentCheck::Set => write!(f, "-m recent --set --name {name} --mask 255.255.255.255 --rsource"),
            },
            Match::Conntrack { states, negated } => {
                let names: Vec<&str> = states
                    .iter()
                    .map(|s| match s {
                        CtState::New => "NEW",
                        CtState::Established => "ESTABLISHED",
                        CtState::Related => "RELATED",
                        CtState::Invalid => "INVALID",
                        CtState::Dnat => "DNAT",
                    })
                    .collect();
                write!(f, "-m conntrack {}--ctstate {}", not(negated), names.join(","))
            }
            Match::Set { name, source, negated } => write!(
                f,
                "-m set {}--match-set {name} {}",
                not(negated),
                if *source { "src" } else { "dst" }
            ),
            Match::PhysdevIsBridged => f.write_str("-m physdev --physdev-is-bridged"),
            Match::DestinationPortRange { protocol, first, last } => {
                write!(f, "-m {} --dport {first}:{last}", protocol.lower())
            }
            Match::Multiport { first, last } => write!(f, "-m multiport --dports {first}:{last}"),
            Match::IcmpType(t) => write!(f, "-m icmp --icmp-type {t}"),
            Match::Limit { per_minute, burst } => write!(f, "-m limit --limit {per_minute}/min --limit-burst {burst}"),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::Jump(chain) => write!(f, "-j {chain}"),
            Target::Accept => f.write_str("-j ACCEPT"),
            Target::Drop => f.write_str("-j DROP"),
            Target::Return => f.write_str("-j RETURN"),
            Target::Reject => f.write_str("-j REJECT --reject-with icmp-port-unreachable"),
            Target::Dnat(to) => write!(f, "-j DNAT --to-destination {to}"),
            Target::Masquerade { random_fully } => {
                f.write_str("-j MASQUERADE")?;
                if *random_fully {
                    f.write_str(" --random-fully")?;
                }
                Ok(())
            }
            Target::SetXMark { value, mask } => write!(f, "-j MARK --set-xmark {value:#x}/{mask:#x}"),
            Target::Nflog { group } => write!(f, "-j NFLOG --nflog-group {group}"),
            Target::None => Ok(()),
        }
    }
}

impl Rule {
    pub fn new(matches: Vec<Match>, target: Target) -> Rule {
        Rule { matches, target }
    }

    /// The rule as one `iptables-save` line, `-A CHAIN ...`.
    pub fn save_line(&self, chain: &str) -> String {
        let mut line = format!("-A {chain}");
        for m in &self.matches {
            line.push(' ');
            line.push_str(&m.to_string());
        }
        if self.target != Target::None {
            line.push(' ');
            line.push_str(&self.target.to_string());
        }
        line
    }

    pub fn comment(&self) -> Option<&str> {
        self.matches.iter().find_map(|m| match m {
            Match::Comment(c) => Some(c.as_str()),
            _ => None,
        })
    }
}

impl Table {
    pub fn new(name: &str, builtins: &[&str]) -> Table {
        Table {
            name: name.to_owned(),
            own: Chains::from_list(
                builtins
                    .iter()
                    .map(|c| Chain {
                        name: (*c).to_owned(),
                        policy: Some(Policy::Accept),
                        rules: Vec::new(),
                    })
                    .collect(),
            ),
            shared: None,
            deferred: None,
        }
    }

    /// A table that reads exactly as `shared` until a chain of its own is added: what thousands
    /// of namespaces with the same (empty) tables hold, without a copy each.
    pub fn over(shared: Arc<Table>) -> Table {
        Table {
            name: shared.name.clone(),
            own: Chains::default(),
            shared: Some(shared),
            deferred: None,
        }
    }

    /// A table made of `shared`'s chains and the chains `make` returns, made on first use; a
    /// chain `make` returns hides the shared chain of the same name.
    pub fn layered(shared: Arc<Table>, make: MakeChains) -> Table {
        // Only a table's own chains are shared; a layered table given as the shared part is
        // flattened first.
        let shared = if shared.shared.is_none() && shared.deferred.is_none() {
            shared
        } else {
            let mut flat = Table::new(&shared.name, &[]);
            flat.own = Chains::from_list(shared.chains().cloned().collect());
            Arc::new(flat)
        };
        Table {
            name: shared.name.clone(),
            own: Chains::default(),
            shared: Some(shared),
            deferred: Some(Deferred {
                made: OnceLock::new(),
                make,
            }),
        }
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.deferred
            .as_ref()
            .and_then(|d| d.chains().get(name))
            .or_else(|| self.own.get(name))
            .or_else(|| self.shared.as_ref().and_then(|s| s.own.get(name)))
    }

    /// The chain, with the index of its rules by destination when it is long enough to have one.
    pub fn chain_for_walk(&self, name: &str) -> Option<(&Chain, Option<&RulesByDestination>)> {
        self.deferred
            .as_ref()
            .and_then(|d| d.chains().get_for_walk(name))
            .or_else(|| self.own.get_for_walk(name))
            .or_else(|| self.shared.as_ref().and_then(|s| s.own.get_for_walk(name)))
    }

    /// Every chain of the table, each name once: the shared chains not hidden by the host's
    /// own, then the host's own, in the order they were made.
    pub fn chains(&self) -> impl Iterator<Item = &Chain> {
        let deferred = self.deferred.as_ref().map(Deferred::chains);
        let hidden = move |name: &str| deferred.is_some_and(|d| d.get(name).is_some()) || self.own.get(name).is_some();
        let shared = self
            .shared
            .iter()
            .flat_map(|s| &s.own.list)
            .filter(move |c| !hidden(&c.name));
        let own_visible = self
            .own
            .list
            .iter()
            .filter(move |c| deferred.is_none_or(|d| d.get(&c.name).is_none()));
        shared
            .chain(own_visible)
            .chain(deferred.into_iter().flat_map(|d| d.list.iter()))
    }

    /// Appends `rule` to `chain`, creating the chain (as a user chain) if it does not exist yet.
    pub fn append(&mut self, chain: &str, rule: Rule) {
        self.ensure(chain).rules.push(rule);
    }

    /// The host's own chain `chain`, created (as a user chain) if it does not exist yet.
    pub fn ensure(&mut self, chain: &str) -> &mut Chain {
        // A table `over` a shared one becomes a table of its own when it is first written to,
        // so that it reads exactly as a table built alone would.
        if self.deferred.is_none()
            && let Some(shared) = self.shared.take()
        {
            let mut list = shared.own.list.clone();
            list.append(&mut std::mem::take(&mut self.own.list));
            self.own = Chains::from_list(list);
        }
        self.own.ensure(chain)
    }

    /// The chains this table holds itself (none of a shared part), for building another.
    pub fn into_own_chains(self) -> Vec<Chain> {
        self.own.list
    }

    /// Chains in the order `iptables-save` lists them: built-in chains first, then user chains
    /// by name.
    pub fn saved_order(&self) -> Vec<&Chain> {
        let mut builtin: Vec<&Chain> = self.chains().filter(|c| c.policy.is_some()).collect();
        let mut user: Vec<&Chain> = self.chains().filter(|c| c.policy.is_none()).collect();
        user.sort_by(|a, b| a.name.cmp(&b.name));
        builtin.append(&mut user);
        builtin
    }

    /// The table as `iptables-save -t NAME` prints it (without the date comments).
    pub fn save(&self) -> String {
        let mut out = format!("*{}\n", self.name);
        let chains = self.saved_order();
        for c in &chains {
            let policy = match c.policy {
                Some(Policy::Accept) => "ACCEPT",
                Some(Policy::Drop) => "DROP",
                None => "-",
            };
            out.push_str(&format!(":{} {policy} [0:0]\n", c.name));
        }
        for c in &chains {
            for r in &c.rules {
                out.push_str(&r.save_line(&c.name));
                out.push('\n');
            }
        }
        out.push_str("COMMIT\n");
        out
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.name == other.name && self.saved_order() == other.saved_order()
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .field("chains", &self.saved_order())
            .finish()
    }
}

impl Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("Table", 2)?;
        t.serialize_field("name", &self.name)?;
        t.serialize_field("chains", &self.saved_order())?;
        t.end()
    }
}

/// The kernel keeps at most this many bytes of a comment (`XT_MAX_COMMENT_LEN`, 256 with the
/// terminating NUL); `iptables-restore` refuses a longer one.
pub const MAX_COMMENT: usize = 255;

/// A comment as `iptables-save` writes it and `iptables-restore` reads it back as one word:
/// in double quotes, with `"` and `\` escaped by a backslash. A line break would end the rule
/// and any control character would reach a terminal that shows the rules, so each becomes a
/// space (validation has refused names that hold one; this keeps the rule whole regardless). A
/// comment too long for the kernel is cut at a character boundary.
pub fn save_string(text: &str) -> String {
    let mut end = text.len().min(MAX_COMMENT);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut out = String::with_capacity(end + 2);
    out.push('"');
    for c in text[..end].chars() {
        match c {
            '"' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// An address as a one-address network, as `-s`/`-d` take it.
pub fn host(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(ip, 32).expect("/32 is a valid prefix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probabilities_print_as_iptables_save_does() {
        let p = |x: f64| format!("{:.11}", probability_of(stored_probability(x)));
        assert_eq!(p(1.0 / 2.0), "0.50000000000");
        assert_eq!(p(1.0 / 3.0), "0.33333333349");
        assert_eq!(p(1.0 / 5.0), "0.20000000019");
        assert_eq!(p(1.0 / 6.0), "0.16666666651");
    }

    /// iptables-restore splits a rule line into words at spaces outside double quotes, takes a
    /// backslash as escaping the next character, and ends the rule at a line break: a comment
    /// from a hostile name must stay one word on one line.
    #[test]
    fn a_hostile_comment_stays_one_word_on_one_line() {
        let hostile = [
            "x\" -j ACCEPT -m comment --comment \"y",
            "a\nCOMMIT\n*filter",
            "back\\\" -j DROP",
            "\u{1b}[2J",
        ];
        for text in hostile {
            let line = Rule::new(vec![Match::Comment(text.into())], Target::Return).save_line("C");
            assert!(!line.contains('\n') && !line.chars().any(char::is_control), "{line:?}");
            let words = restore_words(&line);
            assert_eq!(words.len(), 8, "{text:?} became {words:?}");
            assert_eq!(words[5], text.replace(|c: char| c.is_control(), " "));
            assert_eq!(words[6..], ["-j", "RETURN"]);
        }
        let long = "é".repeat(200);
        let saved = save_string(&long);
        assert_eq!(
            saved.len(),
            2 + 254,
            "cut to whole characters within {MAX_COMMENT} bytes"
        );
    }

    /// The word splitting of iptables-restore's `add_param_to_argv`.
    fn restore_words(line: &str) -> Vec<String> {
        let (mut words, mut word, mut quoted, mut escaped, mut any) = (Vec::new(), String::new(), false, false, false);
        for c in line.chars() {
            if escaped {
                word.push(c);
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                quoted = !quoted;
                any = true;
            } else if c == ' ' && !quoted {
                if any || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            } else {
                word.push(c);
            }
        }
        if any || !word.is_empty() {
            words.push(word);
        }
        words
    }

    #[test]
    fn rule_prints_in_iptables_save_order() {
        let rule = Rule::new(
            vec![
                Match::Source {
                    net: "10.244.0.0/16".parse().unwrap(),
                    negated: true,
                },
                Match::Destination {
                    net: host("10.96.120.15".parse().unwrap()),
                    negated: false,
                },
                Match::Protocol(Protocol::Tcp),
                Match::Comment("shop/web:http cluster IP".into()),
                Match::DestinationPort {
                    protocol: Protocol::Tcp,
                    port: Some(80),
                },
            ],
            Target::Jump("KUBE-MARK-MASQ".into()),
        );
        assert_eq!(
            rule.save_line("KUBE-SVC-67NZLRHBNDSAWJRO"),
            "-A KUBE-SVC-67NZLRHBNDSAWJRO ! -s 10.244.0.0/16 -d 10.96.120.15/32 -p tcp -m comment --comment \"shop/web:http cluster IP\" -m tcp --dport 80 -j KUBE-MARK-MASQ"
        );
        let mark = Rule::new(
            vec![Match::Mark {
                value: 0x4000,
                mask: 0x4000,
                negated: true,
            }],
            Target::Return,
        );
        assert_eq!(
            mark.save_line("KUBE-POSTROUTING"),
            "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN"
        );
    }
}
