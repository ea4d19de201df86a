//! Netfilter rules as nftables holds them: one table of base chains (each on a hook, at a
//! priority), regular chains, sets and verdict maps, listed exactly as `nft list table` lists
//! them (`list.rs`).
//!
//! What kube-proxy writes is nearly the same on every node, so a node's table is layered as an
//! iptables table is: the part every node shares, held once behind an [`Arc`], and the node's
//! own part (chains that hide shared chains of the same name, sets of its own, and elements it
//! adds to shared sets), made the first time anything reads the table.

mod list;

use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, OnceLock};

use ipnet::Ipv4Net;
use serde::Serialize;

use super::Protocol;

pub use list::{quoted_string, script_of};

/// A verdict as nft writes it: `goto CHAIN`, `drop`.
pub fn verdict_words(v: &Verdict) -> String {
    list::verdict_text(v)
}

/// An element's key as nft writes it: `10.3.0.10 . tcp . 80`.
pub fn key_words(k: &Key) -> String {
    list::key_text(k)
}

/// The standard priorities of the `ip` family that kube-proxy's chains are placed against.
pub const DSTNAT: i32 = -100;
pub const SRCNAT: i32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainType {
    Filter,
    Nat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Hook {
    Prerouting,
    Input,
    Forward,
    Output,
    Postrouting,
}

impl Hook {
    /// The hook an iptables built-in chain is named after.
    pub fn of_builtin(name: &str) -> Option<Hook> {
        Some(match name {
            "PREROUTING" => Hook::Prerouting,
            "INPUT" => Hook::Input,
            "FORWARD" => Hook::Forward,
            "OUTPUT" => Hook::Output,
            "POSTROUTING" => Hook::Postrouting,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Hook::Prerouting => "prerouting",
            Hook::Input => "input",
            Hook::Forward => "forward",
            Hook::Output => "output",
            Hook::Postrouting => "postrouting",
        }
    }
}

/// What makes a chain a base chain: the hook it is attached to and where on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BaseChain {
    #[serde(rename = "type")]
    pub kind: ChainType,
    pub hook: Hook,
    pub priority: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Chain {
    pub name: String,
    pub base: Option<BaseChain>,
    pub comment: Option<String>,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Field {
    Saddr,
    Daddr,
}

/// What an address is compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Addrs {
    Net(Ipv4Net),
    /// An anonymous set, `{ a, b }`.
    List(Vec<Ipv4Net>),
    /// A named set of the table, `@name`.
    Set(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    Addr {
        field: Field,
        negated: bool,
        addrs: Addrs,
    },
    /// `tcp dport 80`
    Dport {
        protocol: Protocol,
        port: u16,
    },
    /// `meta l4proto tcp`
    L4proto(Protocol),
    /// `fib daddr type local`: the address is one of this host's own.
    FibLocal(Field),
    /// `ct state new`
    CtNew,
    /// `meta mark & MASK == 0`
    MarkUnset(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Jump(String),
    Goto(String),
    Return,
    Accept,
    Drop,
    Reject,
}

/// The key a verdict map is looked up by, as the rule builds it from the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// `ipv4_addr`
    Addr,
    /// `ipv4_addr . inet_proto . inet_service`, built as `ip daddr . meta l4proto . th dport`.
    AddrProtoPort,
    /// `inet_proto . inet_service`, built as `meta l4proto . th dport`.
    ProtoPort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Statement {
    Verdict(Verdict),
    /// `meta mark set meta mark | BITS`
    MarkOr(u32),
    /// `meta mark set meta mark ^ BITS`
    MarkXor(u32),
    /// `masquerade fully-random`
    Masquerade,
    /// `dnat to IP:PORT`
    Dnat(SocketAddrV4),
    /// `update @SET { ip saddr }`: remember the source in a timed set.
    UpdateSource(String),
    /// `KEY vmap @MAP`
    Vmap {
        key: KeyType,
        map: String,
    },
    /// `numgen random mod N vmap { 0 : V0, 1 : V1, … }`
    Numgen(Vec<Verdict>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub matches: Vec<Match>,
    pub statement: Statement,
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(matches: Vec<Match>, statement: Statement) -> Rule {
        Rule {
            matches,
            statement,
            comment: None,
        }
    }

    pub fn commented(mut self, comment: impl Into<String>) -> Rule {
        self.comment = Some(comment.into());
        self
    }
}

/// An element's key: an address, a protocol and port, or all three.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Key {
    pub addr: Option<Ipv4Addr>,
    pub protocol: Option<Protocol>,
    pub port: Option<u16>,
}

impl Key {
    pub fn addr(addr: Ipv4Addr) -> Key {
        Key {
            addr: Some(addr),
            protocol: None,
            port: None,
        }
    }

    pub fn service(addr: Ipv4Addr, protocol: Protocol, port: u16) -> Key {
        Key {
            addr: Some(addr),
            protocol: Some(protocol),
            port: Some(port),
        }
    }

    pub fn node_port(protocol: Protocol, port: u16) -> Key {
        Key {
            addr: None,
            protocol: Some(protocol),
            port: Some(port),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Element {
    pub key: Key,
    pub comment: Option<String>,
    /// A map's value; a plain set's elements have none.
    pub verdict: Option<Verdict>,
}

/// A named set, or (with verdicts) a verdict map.
#[derive(Debug, Clone, Serialize)]
pub struct Set {
    pub name: String,
    pub key: KeyType,
    pub map: bool,
    pub comment: Option<String>,
    /// A timed set that rules fill (`flags dynamic,timeout`): entries expire after this many
    /// seconds.
    pub timeout: Option<u32>,
    elements: Vec<Element>,
    #[serde(skip)]
    index: HashMap<Key, usize>,
}

impl Set {
    pub fn new(name: &str, key: KeyType, map: bool, comment: Option<&str>) -> Set {
        Set {
            name: name.to_owned(),
            key,
            map,
            comment: comment.map(str::to_owned),
            timeout: None,
            elements: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub fn timed(name: &str, seconds: u32) -> Set {
        Set {
            timeout: Some(seconds),
            ..Set::new(name, KeyType::Addr, false, None)
        }
    }

    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    pub fn get(&self, key: &Key) -> Option<&Element> {
        self.index.get(key).map(|&i| &self.elements[i])
    }

    /// Adds `element`; as `nft add element` does, a key already present keeps its element.
    fn add(&mut self, element: Element) {
        if self.index.contains_key(&element.key) {
            return;
        }
        self.index.insert(element.key, self.elements.len());
        self.elements.push(element);
    }
}

impl PartialEq for Set {
    fn eq(&self, other: &Set) -> bool {
        self.name == other.name
            && self.key == other.key
            && self.map == other.map
            && self.comment == other.comment
            && self.timeout == other.timeout
            && self.elements == other.elements
    }
}

/// Chains and sets in the order they were made, each with an index by name, and elements added
/// to sets another part holds.
#[derive(Debug, Clone, Default)]
pub struct Part {
    chains: Vec<Chain>,
    chain_index: HashMap<String, usize>,
    /// The base chains among `chains`, so a hook finds its few without walking every chain.
    base: Vec<usize>,
    sets: Vec<Set>,
    set_index: HashMap<String, usize>,
    /// Elements for sets of the shared part, by set name.
    additions: Vec<Set>,
    addition_index: HashMap<String, usize>,
}

impl Part {
    pub fn base_chain(&mut self, name: &str, kind: ChainType, hook: Hook, priority: i32) {
        self.chain(name).base = Some(BaseChain { kind, hook, priority });
        let i = self.chain_index[name];
        if !self.base.contains(&i) {
            self.base.push(i);
        }
    }

    /// The chain `name`, made (as a regular chain) if it does not exist yet.
    pub fn chain(&mut self, name: &str) -> &mut Chain {
        let i = match self.chain_index.get(name) {
            Some(&i) => i,
            None => {
                self.chains.push(Chain {
                    name: name.to_owned(),
                    base: None,
                    comment: None,
                    rules: Vec::new(),
                });
                self.chain_index.insert(name.to_owned(), self.chains.len() - 1);
                self.chains.len() - 1
            }
        };
        &mut self.chains[i]
    }

    pub fn append(&mut self, chain: &str, rule: Rule) {
        self.chain(chain).rules.push(rule);
    }

    /// Adds `set` unless one of that name exists.
    pub fn add_set(&mut self, set: Set) {
        if !self.set_index.contains_key(&set.name) {
            self.set_index.insert(set.name.clone(), self.sets.len());
            self.sets.push(set);
        }
    }

    /// Adds an element to this part's set `set`, or, when this part has none of that name, to
    /// its additions to the shared part's set.
    pub fn add_element(&mut self, set: &str, element: Element) {
        if let Some(&i) = self.set_index.get(set) {
            self.sets[i].add(element);
            return;
        }
        let i = match self.addition_index.get(set) {
            Some(&i) => i,
            None => {
                self.additions.push(Set::new(set, KeyType::Addr, false, None));
                self.addition_index.insert(set.to_owned(), self.additions.len() - 1);
                self.additions.len() - 1
            }
        };
        self.additions[i].add(element);
    }

    pub fn chains(&self) -> &[Chain] {
        &self.chains
    }

    fn get_chain(&self, name: &str) -> Option<&Chain> {
        self.chain_index.get(name).map(|&i| &self.chains[i])
    }

    fn get_set(&self, name: &str) -> Option<&Set> {
        self.set_index.get(name).map(|&i| &self.sets[i])
    }

    fn addition(&self, name: &str) -> Option<&Set> {
        self.addition_index.get(name).map(|&i| &self.additions[i])
    }
}

/// A node's own part, made on first use by whoever built the table and kept from then on.
pub type MakePart = Arc<dyn Fn() -> Part + Send + Sync>;

#[derive(Clone)]
struct Deferred {
    made: OnceLock<Part>,
    make: MakePart,
}

/// One nftables table of one host (always of the `ip` family here).
#[derive(Clone)]
pub struct Table {
    pub name: String,
    pub comment: Option<String>,
    shared: Arc<Part>,
    own: Option<Deferred>,
}

impl Table {
    pub fn new(name: &str, comment: Option<&str>, shared: Arc<Part>) -> Table {
        Table {
            name: name.to_owned(),
            comment: comment.map(str::to_owned),
            shared,
            own: None,
        }
    }

    /// A table of `shared` and the part `make` returns, made the first time anything reads it.
    pub fn layered(name: &str, comment: Option<&str>, shared: Arc<Part>, make: MakePart) -> Table {
        Table {
            own: Some(Deferred {
                made: OnceLock::new(),
                make,
            }),
            ..Table::new(name, comment, shared)
        }
    }

    fn own(&self) -> Option<&Part> {
        self.own.as_ref().map(|d| d.made.get_or_init(|| (d.make)()))
    }

    /// The part every node shares, for telling whether two tables share it.
    pub fn shared(&self) -> &Arc<Part> {
        &self.shared
    }

    pub fn chain(&self, name: &str) -> Option<&Chain> {
        self.own()
            .and_then(|o| o.get_chain(name))
            .or_else(|| self.shared.get_chain(name))
    }

    pub fn set(&self, name: &str) -> Option<&Set> {
        self.own()
            .and_then(|o| o.get_set(name))
            .or_else(|| self.shared.get_set(name))
    }

    /// The element of set `set` whose key is `key`, wherever it was added.
    pub fn element(&self, set: &str, key: &Key) -> Option<&Element> {
        if let Some(own) = self.own() {
            if let Some(found) = own.get_set(set) {
                return found.get(key);
            }
            if let Some(e) = own.addition(set).and_then(|a| a.get(key)) {
                return Some(e);
            }
        }
        self.shared.get_set(set)?.get(key)
    }

    /// Every chain, each name once: the shared chains (the node's own in their place when it
    /// has one of the same name), then the node's other chains, in the order they were made.
    pub fn chains(&self) -> Vec<&Chain> {
        let own = self.own();
        let mut list: Vec<&Chain> = self
            .shared
            .chains
            .iter()
            .map(|c| own.and_then(|o| o.get_chain(&c.name)).unwrap_or(c))
            .collect();
        if let Some(own) = own {
            list.extend(own.chains.iter().filter(|c| self.shared.get_chain(&c.name).is_none()));
        }
        list
    }

    /// Every set and map with all its elements: the shared ones (with the node's additions
    /// after their own elements), then the node's.
    pub fn sets(&self) -> Vec<Set> {
        let own = self.own();
        let mut list: Vec<Set> = self
            .shared
            .sets
            .iter()
            .map(|s| {
                if let Some(mine) = own.and_then(|o| o.get_set(&s.name)) {
                    return mine.clone();
                }
                let mut s = s.clone();
                if let Some(extra) = own.and_then(|o| o.addition(&s.name)) {
                    for e in &extra.elements {
                        s.add(e.clone());
                    }
                }
                s
            })
            .collect();
        if let Some(own) = own {
            list.extend(
                own.sets
                    .iter()
                    .filter(|s| self.shared.get_set(&s.name).is_none())
                    .cloned(),
            );
        }
        list
    }

    /// The base chains on `hook`, by priority; chains of one priority in the order they were
    /// made.
    pub fn base_chains(&self, hook: Hook) -> Vec<&Chain> {
        let own = self.own();
        let shared = self.shared.base.iter().map(|&i| {
            let c = &self.shared.chains[i];
            own.and_then(|o| o.get_chain(&c.name)).unwrap_or(c)
        });
        let mine = own
            .into_iter()
            .flat_map(|o| o.base.iter().map(|&i| &o.chains[i]))
            .filter(|c| self.shared.get_chain(&c.name).is_none());
        let mut list: Vec<&Chain> = shared
            .chain(mine)
            .filter(|c| c.base.is_some_and(|b| b.hook == hook))
            .collect();
        list.sort_by_key(|c| c.base.map(|b| b.priority));
        list
    }

    /// The table as `nft list table ip NAME` prints it.
    pub fn list(&self) -> String {
        list::list(self)
    }

    /// The listing without the chains and sets of single Service ports and with at most `max`
    /// elements a set, and how many chains it left out.
    pub fn list_abridged(&self, max: usize) -> (String, usize) {
        list::list_abridged(self, max)
    }
}

impl PartialEq for Table {
    fn eq(&self, other: &Table) -> bool {
        self.name == other.name && self.chains() == other.chains() && self.sets() == other.sets()
    }
}

impl fmt::Debug for Table {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("Table")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl Serialize for Table {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("Table", 4)?;
        t.serialize_field("family", "ip")?;
        t.serialize_field("name", &self.name)?;
        t.serialize_field("sets", &self.sets())?;
        t.serialize_field("chains", &self.chains())?;
        t.end()
    }
}
