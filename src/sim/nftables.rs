//! nftables as the kernel runs it, beside iptables: one base chain at a time, rule by rule,
//! with jumps and gotos, verdict maps looked up by the packet's address, protocol and port,
//! `numgen` choosing a branch (made deterministic by the [`BranchChoice`]), marks, DNAT and
//! masquerade.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::netfilter::{BranchChoice, Packet, Verdict};
use crate::net::Host;
use crate::net::nftables::{Addrs, Chain, Field, Key, KeyType, Match, Rule, Statement, Table, Verdict as NftVerdict};
use crate::net::route::RouteType;
use crate::trace::{Branch, Step};

/// How the table is named in traces.
pub fn table_label(table: &Table) -> String {
    format!("ip {}", table.name)
}

pub struct NftWalk<'a> {
    pub host: &'a Host,
    /// The hook, named as iptables names it (`PREROUTING`), so traces read alike.
    pub hook: &'a str,
    pub choice: &'a BranchChoice,
    pub decisions: &'a mut usize,
    pub steps: &'a mut Vec<Step>,
}

enum Flow {
    /// The chain returned: carry on in the caller.
    Returned,
    /// No rule of the chain decided: carry on in the caller.
    RanOut,
    Stop(Verdict),
}

const MAX_DEPTH: usize = 32;

impl NftWalk<'_> {
    /// Runs one base chain; a chain that runs out applies its policy, accept.
    pub fn run(&mut self, table: &Table, chain: &Chain, pkt: &mut Packet) -> Verdict {
        match self.chain(table, chain, pkt, 0, None) {
            Flow::Stop(v) => v,
            Flow::Returned | Flow::RanOut => Verdict::Accept,
        }
    }

    fn step(&mut self, table: &Table, chain: &str, rule: Option<String>, action: String) {
        self.steps.push(Step::Netfilter {
            hook: self.hook.to_owned(),
            table: table_label(table),
            chain: chain.to_owned(),
            rule,
            action,
        });
    }

    /// `decided_by` is the map element that sent the walk here, named in a drop or reject
    /// (`no-endpoint-services` says why).
    fn chain(
        &mut self,
        table: &Table,
        chain: &Chain,
        pkt: &mut Packet,
        depth: usize,
        decided_by: Option<&str>,
    ) -> Flow {
        if depth > MAX_DEPTH {
            return Flow::Stop(Verdict::Drop(format!("chain {} nests too deep", chain.name)));
        }
        for rule in &chain.rules {
            if !self.matches(table, &chain.name, rule, pkt) {
                continue;
            }
            let line = format!("{}: {}", chain.name, rule.text());
            let verdict = match &rule.statement {
                Statement::Verdict(v) => Some((v.clone(), None)),
                Statement::MarkOr(bits) => {
                    pkt.mark |= bits;
                    self.step(
                        table,
                        &chain.name,
                        Some(line.clone()),
                        format!("mark is now {:#x}", pkt.mark),
                    );
                    None
                }
                Statement::MarkXor(bits) => {
                    pkt.mark ^= bits;
                    self.step(
                        table,
                        &chain.name,
                        Some(line.clone()),
                        format!("mark is now {:#x}", pkt.mark),
                    );
                    None
                }
                Statement::UpdateSource(set) => {
                    self.step(
                        table,
                        &chain.name,
                        Some(line.clone()),
                        format!("{} is remembered in @{set}", pkt.tuple.src.ip()),
                    );
                    None
                }
                Statement::Dnat(to) => {
                    let before = pkt.tuple;
                    pkt.tuple.dst = *to;
                    self.step(table, &chain.name, Some(line.clone()), format!("DNAT to {to}"));
                    self.nat_step("DNAT", before, pkt.tuple);
                    return Flow::Stop(Verdict::Accept);
                }
                Statement::Masquerade => {
                    let before = pkt.tuple;
                    let Some((addr, borrowed)) = super::netfilter::masquerade_address(self.host, pkt.oif.as_deref())
                    else {
                        self.step(
                            table,
                            &chain.name,
                            Some(line.clone()),
                            "masquerade, but no interface has an address: dropped".into(),
                        );
                        return Flow::Stop(Verdict::Drop(line));
                    };
                    pkt.tuple.src = SocketAddrV4::new(addr, pkt.tuple.src.port());
                    let oif = pkt.oif.as_deref().unwrap_or("the outgoing interface");
                    let what = match &borrowed {
                        Some(from) => format!("masquerade: {oif} has no address, so the source becomes {from}'s"),
                        None => format!("masquerade: source becomes {oif}'s address"),
                    };
                    self.step(table, &chain.name, Some(line.clone()), what);
                    self.nat_step("MASQUERADE", before, pkt.tuple);
                    return Flow::Stop(Verdict::Accept);
                }
                Statement::Vmap { key, map } => {
                    let k = key_of(*key, pkt);
                    match table.element(map, &k) {
                        Some(e) => {
                            let v = e.verdict.clone().unwrap_or(NftVerdict::Accept);
                            Some((v, Some(format!("{line}: {}", e.text()))))
                        }
                        None => {
                            self.step(
                                table,
                                &chain.name,
                                Some(line.clone()),
                                format!("no element of @{map} is {}: on to the next rule", key_words(&k)),
                            );
                            None
                        }
                    }
                }
                Statement::Numgen(branches) => {
                    let i = self.choose(table, &chain.name, &line, branches);
                    Some((branches[i].clone(), None))
                }
            };
            let Some((verdict, element)) = verdict else {
                continue;
            };
            let shown = element.clone().unwrap_or_else(|| line.clone());
            let why = element.as_deref().or(decided_by);
            match verdict {
                NftVerdict::Jump(ref next) | NftVerdict::Goto(ref next) => {
                    let is_goto = matches!(verdict, NftVerdict::Goto(_));
                    let Some(target) = table.chain(next) else {
                        continue;
                    };
                    let word = if is_goto { "goto" } else { "jump to" };
                    self.step(table, &chain.name, Some(shown), format!("{word} {next}"));
                    match self.chain(table, target, pkt, depth + 1, why) {
                        Flow::Stop(v) => return Flow::Stop(v),
                        // A goto does not come back here: the chain that ran out returns to
                        // whoever called this one.
                        Flow::Returned | Flow::RanOut if is_goto => return Flow::Returned,
                        Flow::Returned => {}
                        Flow::RanOut => self.step(
                            table,
                            next,
                            None,
                            format!("no rule in {next} matched: back in {}", chain.name),
                        ),
                    }
                }
                NftVerdict::Return => {
                    self.step(table, &chain.name, Some(shown), format!("return from {}", chain.name));
                    return Flow::Returned;
                }
                NftVerdict::Accept => {
                    self.step(table, &chain.name, Some(shown), "accept".into());
                    return Flow::Stop(Verdict::Accept);
                }
                NftVerdict::Drop => {
                    self.step(table, &chain.name, Some(shown.clone()), "drop".into());
                    return Flow::Stop(Verdict::Drop(why.map(str::to_owned).unwrap_or(shown)));
                }
                NftVerdict::Reject => {
                    self.step(
                        table,
                        &chain.name,
                        Some(shown.clone()),
                        "reject (ICMP port unreachable)".into(),
                    );
                    return Flow::Stop(Verdict::Reject(why.map(str::to_owned).unwrap_or(shown)));
                }
            }
        }
        Flow::RanOut
    }

    fn nat_step(&mut self, kind: &str, before: crate::trace::Tuple, after: crate::trace::Tuple) {
        self.steps.push(Step::Nat {
            nat: kind.to_owned(),
            before,
            after,
            conntrack: None,
            endpoint: None,
            node: None,
        });
    }

    /// Records the choice `numgen random mod N` makes, each branch with probability 1/N, and
    /// returns the branch taken.
    fn choose(&mut self, table: &Table, chain: &str, line: &str, branches: &[NftVerdict]) -> usize {
        let n = branches.len().max(1);
        let mut list: Vec<Branch> = branches
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let target = match v {
                    NftVerdict::Jump(c) | NftVerdict::Goto(c) => c.clone(),
                    other => crate::net::nftables::verdict_words(other),
                };
                Branch {
                    rule: format!("{line} [{i}]"),
                    to: table.chain(&target).and_then(dnat_of),
                    target,
                    probability: 1.0 / n as f64,
                    share: 1.0 / n as f64,
                    chosen: false,
                    endpoint: None,
                    node: None,
                }
            })
            .collect();
        let (index, how) = self.choice.choose(self.decisions, &mut list, ("map", "element order"));
        self.steps.push(Step::LoadBalance {
            chain: format!("{} {chain}", table_label(table)),
            branches: list,
            how,
        });
        index
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.host
            .tables
            .iter()
            .filter(|t| t.name == "local")
            .flat_map(|t| &t.routes)
            .any(|r| r.kind == RouteType::Local && r.dst.contains(&ip))
    }

    fn matches(&mut self, table: &Table, chain: &str, rule: &Rule, pkt: &Packet) -> bool {
        let t = &pkt.tuple;
        let mut all = true;
        for m in &rule.matches {
            let ok = match m {
                Match::Addr { field, negated, addrs } => {
                    let a = match field {
                        Field::Saddr => *t.src.ip(),
                        Field::Daddr => *t.dst.ip(),
                    };
                    let inside = match addrs {
                        Addrs::Net(n) => n.contains(&a),
                        Addrs::List(list) => list.iter().any(|n| n.contains(&a)),
                        Addrs::Set(name) => {
                            let held = table.element(name, &Key::addr(a)).is_some();
                            // A timed set is filled by the traffic itself: a traced packet is
                            // the first of its connection, so its source is not in it yet.
                            if !held && table.set(name).is_some_and(|s| s.timeout.is_some()) && all {
                                self.step(
                                    table,
                                    chain,
                                    Some(format!("{chain}: {}", rule.text())),
                                    format!("no match: {a} is not in @{name} (this is its first connection)"),
                                );
                            }
                            held
                        }
                    };
                    inside != *negated
                }
                Match::Dport { protocol, port } => t.protocol == *protocol && t.dst.port() == *port,
                Match::L4proto(p) => t.protocol == *p,
                Match::FibLocal(field) => self.is_local(match field {
                    Field::Saddr => *t.src.ip(),
                    Field::Daddr => *t.dst.ip(),
                }),
                Match::CtNew => pkt.ct_state == crate::net::iptables::CtState::New,
                Match::MarkUnset(mask) => pkt.mark & mask == 0,
            };
            all &= ok;
            if !all {
                return false;
            }
        }
        true
    }
}

/// The key a map lookup builds from the packet. ICMP has no ports; its key holds the echo
/// identifier, which no Service's element names.
fn key_of(key: KeyType, pkt: &Packet) -> Key {
    let t = &pkt.tuple;
    match key {
        KeyType::Addr => Key::addr(*t.dst.ip()),
        KeyType::AddrProtoPort => Key::service(*t.dst.ip(), t.protocol, t.dst.port()),
        KeyType::ProtoPort => Key::node_port(t.protocol, t.dst.port()),
    }
}

fn key_words(k: &Key) -> String {
    crate::net::nftables::key_words(k)
}

/// Where an endpoint chain sends new connections: its DNAT.
fn dnat_of(chain: &Chain) -> Option<SocketAddrV4> {
    chain.rules.iter().find_map(|r| match r.statement {
        Statement::Dnat(to) => Some(to),
        _ => None,
    })
}
