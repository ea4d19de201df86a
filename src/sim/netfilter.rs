//! Walking one netfilter table for one hook, rule by rule, as the kernel does: jumps into user
//! chains and back, terminal verdicts, marks, NAT targets, and the random choice of the
//! `statistic` match made deterministic by a [`BranchChoice`].

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::net::Host;
use crate::net::iptables::{CtState, Match, RecentCheck, Rule, Table, Target, probability_of};
use crate::net::route::RouteType;
use crate::trace::{Branch, Step, Tuple};

/// Which branch each run of `statistic --mode random` rules takes. One trace may meet several
/// such decisions (a load balancer picking a node, then a Service picking an endpoint).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BranchChoice {
    /// At any decision, the branch that ends in a DNAT to one of these addresses, if one does.
    pub pins: Vec<Ipv4Addr>,
    /// `Some((k, n))`: at the k-th decision (0-based, counted over the whole journey) take
    /// branch n, for walking every branch in turn. Decisions no pin or `nth` settles take the
    /// first branch.
    pub nth: Option<(usize, usize)>,
}

impl BranchChoice {
    /// Which of `branches` this decision takes, marked chosen, and why; `decisions` counts the
    /// journey's decisions. `(unit, order)` name what holds the branches (a chain of rules, a
    /// map of elements) for the words.
    pub(super) fn choose(
        &self,
        decisions: &mut usize,
        branches: &mut [Branch],
        (unit, order): (&str, &str),
    ) -> (usize, String) {
        let decision = *decisions;
        *decisions += 1;
        let pinned = branches.iter().enumerate().find_map(|(i, b)| {
            let to = b.to?;
            self.pins.contains(to.ip()).then_some((i, *to.ip()))
        });
        let (index, how) = match (pinned, self.nth) {
            (Some((i, ip)), _) => (i, format!("the branch that leads to {ip}, as asked")),
            (None, Some((k, n))) if k == decision => {
                let taken = n.min(branches.len().saturating_sub(1));
                if taken == n {
                    (taken, format!("branch {}, as asked", n + 1))
                } else {
                    (
                        taken,
                        format!(
                            "branch {} was asked for, but this {unit} has {}; the last is followed",
                            n + 1,
                            branches.len()
                        ),
                    )
                }
            }
            _ => (0, format!("the first branch, in {order}")),
        };
        if let Some(b) = branches.get_mut(index) {
            b.chosen = true;
        }
        (index, how)
    }
}

impl BranchChoice {
    pub fn pinned(pins: Vec<Ipv4Addr>) -> BranchChoice {
        BranchChoice { pins, nth: None }
    }
}

/// What the packet looks like to the rules, and what they may change.
pub struct Packet {
    pub tuple: Tuple,
    pub mark: u32,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub ct_state: CtState,
    /// Whether the connection's destination has been translated (conntrack's DNAT status).
    pub dnat: bool,
    /// Crossing a bridge from port to port (what `-m physdev --physdev-is-bridged` sees).
    pub bridged: bool,
}

/// How a table's walk ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Accept,
    Drop(String),
    Reject(String),
}

pub struct Walk<'a> {
    pub host: &'a Host,
    pub hook: &'a str,
    pub choice: &'a BranchChoice,
    /// How many decisions the journey has met so far.
    pub decisions: &'a mut usize,
    pub steps: &'a mut Vec<Step>,
}

enum Flow {
    /// The chain hit RETURN: carry on in the caller.
    Returned,
    /// No rule of the chain matched: carry on in the caller.
    RanOut,
    Stop(Verdict),
}

const MAX_DEPTH: usize = 32;

impl Walk<'_> {
    /// Runs `table`'s built-in chain named after the hook.
    pub fn run(&mut self, table: &Table, pkt: &mut Packet) -> Verdict {
        let Some(chain) = table.chain(self.hook) else {
            return Verdict::Accept;
        };
        if chain.rules.is_empty() {
            return Verdict::Accept;
        }
        match self.chain(table, self.hook, pkt, 0) {
            Flow::Stop(v) => v,
            // A built-in chain that runs out applies its policy.
            Flow::Returned | Flow::RanOut => {
                let drop = chain.policy == Some(crate::net::iptables::Policy::Drop);
                self.steps.push(Step::Netfilter {
                    hook: self.hook.to_owned(),
                    table: table.name.clone(),
                    chain: self.hook.to_owned(),
                    rule: None,
                    action: format!(
                        "no rule in {} decided: its policy {} does",
                        self.hook,
                        if drop { "DROP" } else { "ACCEPT" }
                    ),
                });
                if drop {
                    Verdict::Drop(format!(":{} DROP (the chain's policy)", self.hook))
                } else {
                    Verdict::Accept
                }
            }
        }
    }

    fn chain(&mut self, table: &Table, name: &str, pkt: &mut Packet, depth: usize) -> Flow {
        let Some((chain, by_destination)) = table.chain_for_walk(name) else {
            return Flow::Returned;
        };
        if depth > MAX_DEPTH {
            return Flow::Stop(Verdict::Drop(format!("chain {name} nests too deep")));
        }
        let mut chosen_branch: Option<usize> = None;
        // A rule for another destination cannot match, and trying it changes nothing (the index
        // is only made for chains where that holds); the packet's destination changes only by
        // DNAT, which ends the walk.
        let candidates: Box<dyn Iterator<Item = usize>> = match by_destination {
            Some(index) => Box::new(index.candidates(*pkt.tuple.dst.ip()).into_iter()),
            None => Box::new(0..chain.rules.len()),
        };
        for i in candidates {
            let rule = &chain.rules[i];
            let statistic = rule.matches.iter().any(|m| matches!(m, Match::Statistic { .. }));
            if statistic && chosen_branch.is_none() {
                chosen_branch = Some(self.choose(table, name, &chain.rules[i..]) + i);
            }
            let matched = match chosen_branch {
                Some(branch) if i >= branch => i == branch,
                Some(_) => false,
                None => self.matches(rule, pkt),
            };
            if !matched {
                self.record_recent_miss(table, name, rule, pkt);
                continue;
            }
            let line = rule.save_line(name);
            let step = |action: String| Step::Netfilter {
                hook: self.hook.to_owned(),
                table: table.name.clone(),
                chain: name.to_owned(),
                rule: Some(line.clone()),
                action,
            };
            match &rule.target {
                Target::Jump(next) => {
                    self.steps.push(step(format!("jump to {next}")));
                    match self.chain(table, next, pkt, depth + 1) {
                        Flow::Stop(v) => return Flow::Stop(v),
                        Flow::Returned => {}
                        // A user chain that runs out returns to the rule after the jump.
                        Flow::RanOut => self.steps.push(Step::Netfilter {
                            hook: self.hook.to_owned(),
                            table: table.name.clone(),
                            chain: next.clone(),
                            rule: None,
                            action: format!("no rule in {next} matched: back in {name}"),
                        }),
                    }
                }
                Target::Return => {
                    self.steps.push(step(format!("return from {name}")));
                    return Flow::Returned;
                }
                Target::Accept => {
                    self.steps.push(step("accept".into()));
                    return Flow::Stop(Verdict::Accept);
                }
                Target::Drop => {
                    self.steps.push(step("drop".into()));
                    return Flow::Stop(Verdict::Drop(line));
                }
                Target::Reject => {
                    self.steps.push(step("reject (ICMP port unreachable)".into()));
                    return Flow::Stop(Verdict::Reject(line));
                }
                Target::None => self.steps.push(step("no target: on to the next rule".into())),
                Target::Nflog { group } => self.steps.push(step(format!(
                    "a copy goes to the logger on NFLOG group {group}; on to the next rule"
                ))),
                Target::SetXMark { value, mask } => {
                    pkt.mark = (pkt.mark & !mask) ^ value;
                    self.steps.push(step(format!("mark is now {:#x}", pkt.mark)));
                }
                Target::Dnat(to) => {
                    let before = pkt.tuple;
                    pkt.tuple.dst = *to;
                    pkt.dnat = true;
                    self.steps.push(step(format!("DNAT to {to}")));
                    self.nat_step("DNAT", before, pkt.tuple);
                    return Flow::Stop(Verdict::Accept);
                }
                Target::Masquerade { .. } => {
                    let before = pkt.tuple;
                    let Some((addr, borrowed)) = masquerade_address(self.host, pkt.oif.as_deref()) else {
                        self.steps
                            .push(step("MASQUERADE, but no interface has an address: dropped".into()));
                        return Flow::Stop(Verdict::Drop(line));
                    };
                    pkt.tuple.src = SocketAddrV4::new(addr, pkt.tuple.src.port());
                    let oif = pkt.oif.as_deref().unwrap_or("the outgoing interface");
                    self.steps.push(step(match &borrowed {
                        Some(from) => {
                            format!("MASQUERADE: {oif} has no address, so the source becomes {from}'s")
                        }
                        None => format!("MASQUERADE: source becomes {oif}'s address"),
                    }));
                    self.nat_step("MASQUERADE", before, pkt.tuple);
                    return Flow::Stop(Verdict::Accept);
                }
            }
        }
        Flow::RanOut
    }

    /// A `recent --rcheck` rule that did not match is worth showing: it is why a client with
    /// affinity is not (yet) sent back to the endpoint it had.
    fn record_recent_miss(&mut self, table: &Table, chain: &str, rule: &Rule, pkt: &Packet) {
        let Some((list, seconds)) = rule.matches.iter().find_map(|m| match m {
            Match::Recent {
                name,
                check: RecentCheck::Rcheck { seconds },
            } => Some((name, *seconds)),
            _ => None,
        }) else {
            return;
        };
        let others_match = rule
            .matches
            .iter()
            .filter(|m| !matches!(m, Match::Recent { .. }))
            .all(|m| self.matches(&Rule::new(vec![m.clone()], Target::Return), pkt));
        if others_match {
            self.steps.push(Step::Netfilter {
                hook: self.hook.to_owned(),
                table: table.name.clone(),
                chain: chain.to_owned(),
                rule: Some(rule.save_line(chain)),
                action: format!(
                    "no match: {} is not in the recent list {list} from the last {seconds} s (this is its first connection)",
                    pkt.tuple.src.ip()
                ),
            });
        }
    }

    fn nat_step(&mut self, kind: &str, before: Tuple, after: Tuple) {
        self.steps.push(Step::Nat {
            nat: kind.to_owned(),
            before,
            after,
            conntrack: None,
            endpoint: None,
            node: None,
        });
    }

    /// Records the load-balancing decision of a run of statistic rules and returns the index
    /// (within `rules`) of the branch taken.
    fn choose(&mut self, table: &Table, chain: &str, rules: &[Rule]) -> usize {
        let mut branches = Vec::new();
        let mut left = 1.0;
        for rule in rules {
            let p = rule
                .matches
                .iter()
                .find_map(|m| match m {
                    Match::Statistic { stored } => Some(probability_of(*stored)),
                    _ => None,
                })
                .unwrap_or(1.0);
            branches.push(Branch {
                rule: rule.save_line(chain),
                target: match &rule.target {
                    Target::Jump(c) => c.clone(),
                    other => other.to_string(),
                },
                probability: p,
                share: left * p,
                chosen: false,
                to: dnat_of(table, rule),
                endpoint: None,
                node: None,
            });
            left *= 1.0 - p;
            if p >= 1.0 {
                break;
            }
        }
        let (index, how) = self
            .choice
            .choose(self.decisions, &mut branches, ("chain", "rule order"));
        self.steps.push(Step::LoadBalance {
            chain: chain.to_owned(),
            branches,
            how,
        });
        index
    }

    fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.host
            .tables
            .iter()
            .filter(|t| t.name == "local")
            .flat_map(|t| t.all())
            .any(|r| r.kind == RouteType::Local && r.dst.contains(&ip))
    }

    fn matches(&self, rule: &Rule, pkt: &Packet) -> bool {
        rule.matches.iter().all(|m| match m {
            Match::Source { net, negated } => net.contains(pkt.tuple.src.ip()) != *negated,
            Match::Destination { net, negated } => net.contains(pkt.tuple.dst.ip()) != *negated,
            Match::InInterface { name, negated } => (pkt.iif.as_deref() == Some(name)) != *negated,
            Match::OutInterface { name, negated } => (pkt.oif.as_deref() == Some(name)) != *negated,
            Match::Protocol(p) => pkt.tuple.protocol == *p,
            Match::Comment(_) => true,
            Match::DestinationPort { protocol, port } => {
                pkt.tuple.protocol == *protocol && port.is_none_or(|p| pkt.tuple.dst.port() == p)
            }
            Match::AddrTypeLocal { destination, negated } => {
                let addr = if *destination {
                    pkt.tuple.dst.ip()
                } else {
                    pkt.tuple.src.ip()
                };
                self.is_local(*addr) != *negated
            }
            Match::Mark { value, mask, negated } => ((pkt.mark & mask) == *value) != *negated,
            // A traced packet is the first of its connection: nothing is remembered yet.
            Match::Recent { check, .. } => matches!(check, RecentCheck::Set),
            Match::Conntrack { states, negated } => {
                let dnat = pkt.dnat && states.contains(&CtState::Dnat);
                (states.contains(&pkt.ct_state) || dnat) != *negated
            }
            Match::Statistic { .. } => true,
            Match::Set { name, source, negated } => {
                let addr = if *source {
                    pkt.tuple.src.ip()
                } else {
                    pkt.tuple.dst.ip()
                };
                // iptables refuses a rule naming a set that does not exist; none is loaded.
                self.host.ipsets.get(name).is_some_and(|s| s.contains(*addr)) != *negated
            }
            Match::PhysdevIsBridged => pkt.bridged,
            Match::DestinationPortRange { protocol, first, last } => {
                pkt.tuple.protocol == *protocol && (*first..=*last).contains(&pkt.tuple.dst.port())
            }
            Match::Multiport { first, last } => {
                pkt.tuple.protocol.has_ports() && (*first..=*last).contains(&pkt.tuple.dst.port())
            }
            // A traced ICMP packet is an echo request (type 8) when it opens its flow, and an
            // echo reply (type 0) otherwise.
            Match::IcmpType(t) => {
                pkt.tuple.protocol == crate::net::Protocol::Icmp && *t == 8 && pkt.ct_state == CtState::New
            }
            // The first packet is always within a rate limit.
            Match::Limit { .. } => true,
        })
    }
}

/// Where a load-balancing rule sends new connections: its own DNAT, or the DNAT of the chain it
/// jumps to (a KUBE-SEP chain holds one).
fn dnat_of(table: &Table, rule: &Rule) -> Option<std::net::SocketAddrV4> {
    let dnat = |r: &Rule| match r.target {
        Target::Dnat(to) => Some(to),
        _ => None,
    };
    match &rule.target {
        Target::Jump(c) => table.chain(c)?.rules.iter().find_map(dnat),
        _ => dnat(rule),
    }
}

/// The source address MASQUERADE gives a packet leaving by `oif`, and the interface it was
/// borrowed from when not `oif`'s own. An interface without an address (Calico's cali*,
/// Cilium's lxc*) lends none: the kernel then takes the first global address of another
/// interface (inet_select_addr), and drops the packet only if there is none.
pub(super) fn masquerade_address(host: &Host, oif: Option<&str>) -> Option<(Ipv4Addr, Option<String>)> {
    if let Some(addr) = oif.and_then(|dev| host.primary_addr(dev)) {
        return Some((addr, None));
    }
    host.interfaces
        .iter()
        .filter(|i| i.link != crate::net::Link::Loopback)
        .find_map(|i| i.addrs.first().map(|a| (a.addr(), Some(i.name.clone()))))
}
