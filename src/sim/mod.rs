//! The simulator: walks one packet, then its reply, through a [`NetState`] using only Linux
//! primitives — route lookups, netfilter hooks in kernel order, conntrack and NAT, veths, bridges
//! (with bridge netfilter and hairpin mode) and a shared layer-2 segment.
//!
//! It knows nothing of Pods or Services: hosts carry their names only as labels.

mod conntrack;
mod hooks;
mod ipvs;
mod links;
pub mod netfilter;
mod nftables;
mod service_lb;
#[cfg(test)]
mod tests;
mod tunnel;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use crate::net::iptables::CtState;
use crate::net::route::{self, RouteType};
use crate::net::{Host, NetState, Protocol, Role};
use crate::trace::{Hop, Place, Step, Tuple};
use netfilter::{BranchChoice, Packet};

/// How the simulated journey ended, in Linux terms.
#[derive(Debug, Clone, PartialEq)]
pub enum End {
    /// Reached a listening socket on `host`; `tuple` is what the socket saw.
    Delivered {
        host: usize,
        tuple: Tuple,
        owner: String,
    },
    /// Reached the client's own socket (for a reply).
    Returned {
        tuple: Tuple,
    },
    LeftCluster,
    NoRoute {
        host: usize,
    },
    Route {
        host: usize,
        kind: RouteType,
        route: String,
    },
    NoNeighbor {
        host: usize,
        next_hop: Ipv4Addr,
    },
    NoListener {
        host: usize,
        tuple: Tuple,
    },
    HairpinRefused {
        host: usize,
        port: String,
    },
    Dropped {
        host: usize,
        rule: String,
    },
    Rejected {
        host: usize,
        rule: String,
    },
    TtlExceeded {
        host: usize,
    },
    /// A route matched, but the host does not forward (`net.ipv4.ip_forward=0`).
    NotForwarding {
        host: usize,
    },
    /// A packet arrived from outside with one of the host's own addresses as its source: the
    /// kernel drops it as a martian (`accept_local` is 0), before routing and, as it matches
    /// the connection the host itself opened, without passing the nat table again.
    MartianSource {
        host: usize,
    },
    /// A reply reached a host that holds no matching socket.
    Stray {
        host: usize,
        tuple: Tuple,
    },
}

/// Who is waiting for a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// A socket in this host.
    Socket(usize),
    /// Somewhere beyond an uplink: the reply has arrived once it leaves through one.
    Beyond,
}

pub struct Journey {
    pub hops: Vec<Hop>,
    pub end: End,
}

/// One conntrack entry: the tuple as first seen on this host, and the reply it expects.
#[derive(Debug, Clone)]
struct Entry {
    orig: Tuple,
    reply: Tuple,
}

pub struct Simulator<'a> {
    state: &'a NetState,
    /// Per host, by index: only the few hosts a trace crosses have entries, so a map, not a
    /// list as long as a cluster's 150,000 namespaces.
    conntrack: HashMap<usize, Vec<Entry>>,
    choice: BranchChoice,
    /// Load-balancing decisions met so far, so `BranchChoice::nth` can name one.
    decisions: usize,
    hops: Vec<Hop>,
    /// The client, while a reply travels back to it.
    client: Option<Client>,
    /// The packet inside the outer one now travelling, between encapsulation and decapsulation.
    tunnel: Option<tunnel::Tunnelled>,
    /// What a socket program did to the client's connection, if one did.
    socket: Option<service_lb::SocketTranslation>,
}

const TTL: u8 = 64;
const MAX_HOPS: usize = 256;

/// Where a frame or packet goes next.
enum Next {
    Receive {
        host: usize,
        iif: String,
        next_hop: Ipv4Addr,
        tuple: Tuple,
    },
    End(End),
}

/// Whether a packet belongs to a known connection on a host, and which way it flows.
#[derive(Clone, Copy, PartialEq)]
enum Direction {
    New,
    Reply(usize),
}

impl<'a> Simulator<'a> {
    pub fn new(state: &'a NetState, choice: BranchChoice) -> Self {
        Simulator {
            state,
            conntrack: HashMap::new(),
            choice,
            decisions: 0,
            hops: Vec::new(),
            client: None,
            tunnel: None,
            socket: None,
        }
    }

    /// Sends `tuple` from a socket on `host` and follows it to its end.
    pub fn request(&mut self, host: usize, tuple: Tuple) -> Journey {
        self.client = None;
        self.socket = None;
        self.hops.clear();
        let first = self.send(host, tuple);
        self.walk(first)
    }

    /// Follows `tuple` from the moment it arrives on interface `iif` of `host`, as a packet
    /// from beyond an uplink does.
    pub fn arrive(&mut self, host: usize, iif: &str, tuple: Tuple) -> Journey {
        self.client = None;
        self.hops.clear();
        self.walk(Next::Receive {
            host,
            iif: iif.to_owned(),
            next_hop: *tuple.dst.ip(),
            tuple,
        })
    }

    /// Answers a delivered request: the server on `host` replies to what it saw, and the reply
    /// is followed back to `client`.
    pub fn reply(&mut self, host: usize, seen: Tuple, client: Client) -> Journey {
        self.client = Some(client);
        self.hops.clear();
        let first = self.send(host, seen.reversed());
        self.walk(first)
    }

    fn walk(&mut self, first: Next) -> Journey {
        let mut next = first;
        let mut ttl = TTL;
        let mut seen: Vec<(usize, String, Tuple)> = Vec::new();
        loop {
            match next {
                Next::End(end) => {
                    return Journey {
                        hops: std::mem::take(&mut self.hops),
                        end,
                    };
                }
                Next::Receive {
                    host,
                    iif,
                    next_hop,
                    tuple,
                } => {
                    // A packet arriving where it already was, unchanged, will go round the same
                    // circle until its TTL runs out: say so once instead of walking every lap.
                    let here = (host, iif.clone(), tuple);
                    if let Some(first) = seen.iter().position(|s| *s == here) {
                        let lap = seen.len() - first;
                        self.step(Step::Note {
                            text: format!(
                                "next stop: back where the packet was {lap} hops ago, with the same addresses; it circles until its TTL of {TTL} runs out"
                            ),
                        });
                        return Journey {
                            hops: std::mem::take(&mut self.hops),
                            end: End::TtlExceeded { host },
                        };
                    }
                    seen.push(here);
                    if self.hops.len() >= MAX_HOPS {
                        return Journey {
                            hops: std::mem::take(&mut self.hops),
                            end: End::TtlExceeded { host },
                        };
                    }
                    let (n, forwarded) = self.receive(host, &iif, next_hop, tuple, ttl);
                    if forwarded {
                        ttl -= 1;
                    }
                    next = n;
                }
            }
        }
    }

    fn host(&self, i: usize) -> &'a Host {
        &self.state.hosts[i]
    }

    fn place(&self, i: usize) -> Place {
        place(self.state, i)
    }

    fn begin_hop(&mut self, host: usize, iif: Option<&str>, tuple: Tuple) {
        self.hops.push(Hop {
            place: self.place(host),
            iif: iif.map(str::to_owned),
            packet: tuple,
            steps: Vec::new(),
        });
    }

    fn step(&mut self, step: Step) {
        if let Some(hop) = self.hops.last_mut() {
            hop.steps.push(step);
        }
    }

    fn direction(&self, host: usize, tuple: Tuple) -> Direction {
        match self
            .conntrack
            .get(&host)
            .and_then(|t| t.iter().position(|e| e.reply == tuple))
        {
            Some(i) => Direction::Reply(i),
            None => Direction::New,
        }
    }

    /// Route lookup with its explanation recorded as a step.
    fn route(&mut self, host: usize, dst: Ipv4Addr) -> Option<route::Route> {
        let h = self.host(host);
        let d = route::lookup(&h.tables, dst);
        let chosen = d.route.cloned();
        self.step(Step::Route {
            table: d.table.to_owned(),
            destination: dst,
            matched: d.route.map(|r| r.to_string()),
            route_type: d.route.map(|r| format!("{:?}", r.kind).to_lowercase()),
            via: d.route.and_then(|r| r.via),
            dev: d.route.and_then(|r| r.dev.clone()),
            rejected: d.rejected,
            origin: d.route.map(|r| r.origin.clone()).filter(|o| !o.is_empty()),
        });
        chosen
    }

    /// A packet leaves a socket on `host`: route, OUTPUT, reroute after DNAT, POSTROUTING.
    fn send(&mut self, host: usize, tuple: Tuple) -> Next {
        self.begin_hop(host, None, tuple);
        let tuple = match self.socket_connect(host, tuple) {
            Ok(t) => t,
            Err(end) => return Next::End(end),
        };
        let dir = self.direction(host, tuple);
        let Some(r) = self.route(host, *tuple.dst.ip()) else {
            return Next::End(End::NoRoute { host });
        };
        let mut pkt = Packet {
            tuple,
            mark: 0,
            iif: None,
            oif: r.dev.clone(),
            ct_state: if dir == Direction::New {
                CtState::New
            } else {
                CtState::Established
            },
            dnat: self.dnat_status(host, dir),
            bridged: false,
        };
        // A route that refuses fails the socket's own lookup: no packet is ever built.
        if let Some(end) = blocked(host, &r) {
            return Next::End(end);
        }
        if let Direction::Reply(e) = dir {
            self.unnat(host, e, &mut pkt, true);
        }
        // The nat table's OUTPUT hook routes a packet whose destination it changed again at
        // once, before the filter table's OUTPUT hook (priority -100, then 0).
        if let Err(end) = self.hook(host, "OUTPUT", &mut pkt, dir == Direction::New, false) {
            return Next::End(end);
        }
        let r = if pkt.tuple.dst != tuple.dst {
            self.step(Step::Note {
                text: "the destination changed, so the kernel routes the packet again".into(),
            });
            match self.route(host, *pkt.tuple.dst.ip()) {
                Some(r) => r,
                None => return Next::End(End::NoRoute { host }),
            }
        } else {
            r
        };
        if let Some(end) = blocked(host, &r) {
            return Next::End(end);
        }
        pkt.oif = r.dev.clone();
        if let Err(end) = self.hook(host, "OUTPUT", &mut pkt, false, true) {
            return Next::End(end);
        }
        if r.kind == RouteType::Local {
            // A packet for a local address still leaves through POSTROUTING, then comes back
            // in through the loopback device to INPUT.
            if let Err(end) = self.hook(host, "POSTROUTING", &mut pkt, dir == Direction::New, false) {
                return Next::End(end);
            }
            return self.local_in(host, pkt, dir, tuple);
        }
        self.out(host, pkt, dir, tuple, &r, None)
    }

    /// POSTROUTING, conntrack confirmation and transmission on the route's device.
    /// `came_in` is the bridge port a bridged frame arrived on, which it may not leave by
    /// unless that port is in hairpin mode.
    fn out(
        &mut self,
        host: usize,
        mut pkt: Packet,
        dir: Direction,
        orig: Tuple,
        r: &route::Route,
        came_in: Option<&str>,
    ) -> Next {
        if let Some(end) = blocked(host, r) {
            return Next::End(end);
        }
        if let Err(end) = self.hook(host, "POSTROUTING", &mut pkt, dir == Direction::New, false) {
            return Next::End(end);
        }
        match dir {
            Direction::New => self.confirm(host, orig, pkt.tuple),
            Direction::Reply(e) => self.unnat(host, e, &mut pkt, false),
        }
        let next_hop = r.via.unwrap_or(*pkt.tuple.dst.ip());
        let dev = r.dev.clone().unwrap_or_default();
        self.transmit(host, &dev, next_hop, came_in, pkt.tuple)
    }

    /// PREROUTING: reverse NAT for replies, the nat table for new connections.
    fn prerouting(&mut self, host: usize, pkt: &mut Packet, dir: Direction) -> Option<Next> {
        if let Direction::Reply(e) = dir {
            self.unnat(host, e, pkt, true);
        }
        self.hook(host, "PREROUTING", pkt, dir == Direction::New, false)
            .err()
            .map(Next::End)
    }

    fn ip_input(&mut self, host: usize, mut pkt: Packet, dir: Direction, orig: Tuple, ttl: u8) -> (Next, bool) {
        let src = *pkt.tuple.src.ip();
        if pkt.iif.as_deref().is_some_and(|i| i != "lo")
            && self
                .host(host)
                .interfaces
                .iter()
                .any(|i| i.addrs.iter().any(|a| a.addr() == src))
        {
            return (Next::End(End::MartianSource { host }), false);
        }
        if dir == Direction::New
            && let Some(iif) = pkt.iif.clone()
        {
            pkt.tuple = self.device_node_port(host, &iif, pkt.tuple);
        }
        if let Some(next) = self.prerouting(host, &mut pkt, dir) {
            return (next, false);
        }
        let Some(r) = self.route(host, *pkt.tuple.dst.ip()) else {
            return (Next::End(End::NoRoute { host }), false);
        };
        self.after_routing(host, pkt, dir, orig, r, ttl)
    }

    fn after_routing(
        &mut self,
        host: usize,
        mut pkt: Packet,
        dir: Direction,
        orig: Tuple,
        r: route::Route,
        ttl: u8,
    ) -> (Next, bool) {
        if r.kind == RouteType::Local {
            return (self.local_in(host, pkt, dir, orig), false);
        }
        if let Some(end) = blocked(host, &r) {
            return (Next::End(end), false);
        }
        if !self.host(host).ip_forward {
            return (Next::End(End::NotForwarding { host }), false);
        }
        if ttl <= 1 {
            return (Next::End(End::TtlExceeded { host }), false);
        }
        pkt.oif = r.dev.clone();
        if let Err(end) = self.hook(host, "FORWARD", &mut pkt, false, true) {
            return (Next::End(end), false);
        }
        (self.out(host, pkt, dir, orig, &r, None), true)
    }

    /// INPUT, then the socket: a listener for a request, the client for a reply.
    fn local_in(&mut self, host: usize, mut pkt: Packet, dir: Direction, orig: Tuple) -> Next {
        if let Err(end) = self.hook(host, "INPUT", &mut pkt, dir == Direction::New, true) {
            return Next::End(end);
        }
        if let Some(vs) = self.ipvs_service(host, &pkt, dir) {
            return self.ipvs_forward(host, pkt, orig, &vs);
        }
        match dir {
            Direction::New => self.confirm(host, orig, pkt.tuple),
            Direction::Reply(e) => self.unnat(host, e, &mut pkt, false),
        }
        if let Some(next) = self.decapsulate(host, pkt.tuple) {
            return next;
        }
        if let Some(client) = self.client {
            if client == Client::Socket(host) {
                let tuple = self.socket_reply(pkt.tuple);
                self.step(Step::Deliver {
                    listener: "the client's socket".into(),
                });
                return Next::End(End::Returned { tuple });
            }
            return Next::End(End::Stray { host, tuple: pkt.tuple });
        }
        // The kernel answers an echo request to any of its addresses itself, no socket needed
        // (unless net.ipv4.icmp_echo_ignore_all is set, which is not modelled).
        if pkt.tuple.protocol == Protocol::Icmp {
            self.step(Step::Deliver {
                listener: ICMP_RESPONDER.into(),
            });
            return Next::End(End::Delivered {
                host,
                tuple: pkt.tuple,
                owner: ICMP_RESPONDER.into(),
            });
        }
        let h = self.host(host);
        match h
            .listeners
            .iter()
            .find(|l| l.port == pkt.tuple.dst.port() && l.protocol == pkt.tuple.protocol)
        {
            Some(l) => {
                self.step(Step::Deliver {
                    listener: l.owner.clone(),
                });
                Next::End(End::Delivered {
                    host,
                    tuple: pkt.tuple,
                    owner: l.owner.clone(),
                })
            }
            None => Next::End(End::NoListener { host, tuple: pkt.tuple }),
        }
    }
}

/// How a host is named in a trace.
pub fn place(state: &NetState, i: usize) -> Place {
    let h = &state.hosts[i];
    let (kind, name, node) = match &h.role {
        Role::Pod { namespace, name, node } => ("pod", format!("{namespace}/{name}"), Some(node.clone())),
        Role::Node { name } => ("node", name.clone(), Some(name.clone())),
        Role::Router => ("router", "cloud router".to_owned(), None),
        Role::LoadBalancer => ("load_balancer", "cloud load balancer".to_owned(), None),
        Role::Internet => ("internet", "internet gateway".to_owned(), None),
    };
    Place {
        kind: kind.to_owned(),
        name,
        node,
    }
}

/// The end a blackhole, unreachable or prohibit route means.
fn blocked(host: usize, r: &route::Route) -> Option<End> {
    match r.kind {
        RouteType::Blackhole | RouteType::Unreachable | RouteType::Prohibit => Some(End::Route {
            host,
            kind: r.kind,
            route: r.to_string(),
        }),
        _ => None,
    }
}

/// Who answers an ICMP echo request.
pub const ICMP_RESPONDER: &str = "the kernel's ICMP echo responder";

/// The source port a traced client uses, fixed so traces are reproducible.
pub const CLIENT_PORT: u16 = 40000;

/// The packet a client sends to `dst`. An ICMP echo carries the same identifier in place of
/// both ports, whatever port `dst` names.
pub fn client_tuple(protocol: Protocol, src: Ipv4Addr, dst: SocketAddrV4) -> Tuple {
    let dst = if protocol.has_ports() {
        dst
    } else {
        SocketAddrV4::new(*dst.ip(), CLIENT_PORT)
    };
    Tuple {
        protocol,
        src: SocketAddrV4::new(src, CLIENT_PORT),
        dst,
    }
}
