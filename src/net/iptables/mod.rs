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

mod save;
pub use save::{probability_of, save_string, stored_probability};

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

/// An address as a one-address network, as `-s`/`-d` take it.
pub fn host(ip: Ipv4Addr) -> Ipv4Net {
    Ipv4Net::new(ip, 32).expect("/32 is a valid prefix")
}

#[cfg(test)]
mod tests;
