//! What the trace claims, put in the kernel's terms, and the kernel's answer to the same
//! question: routing decisions (`ip route get`), routing tables, loaded rules, who answered a
//! connection, and conntrack's NAT.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use k8snet::net::route::{Route, RouteProto, Scope};
use k8snet::net::{NetState, Protocol};
use k8snet::sim::netfilter::BranchChoice;
use k8snet::sim::{Client, End, Simulator};
use k8snet::trace::{Hop, Place, Step, Trace, Tuple, Verdict};
use serde_json::Value;

use crate::lab::{Lab, output};

/// Every comparison made, by kind, and the ones where the trace and the kernel disagree.
#[derive(Default)]
pub struct Tally {
    pub checks: usize,
    pub by_kind: std::collections::BTreeMap<&'static str, usize>,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn check<T: fmt::Debug + PartialEq>(
        &mut self,
        kind: &'static str,
        what: impl fmt::Display,
        trace: T,
        kernel: T,
    ) -> bool {
        let agree = trace == kernel;
        self.compare(kind, what, agree, &trace, &kernel)
    }

    pub fn compare(
        &mut self,
        kind: &'static str,
        what: impl fmt::Display,
        agree: bool,
        trace: &impl fmt::Debug,
        kernel: &impl fmt::Debug,
    ) -> bool {
        self.checks += 1;
        *self.by_kind.entry(kind).or_default() += 1;
        if !agree {
            self.failures
                .push(format!("{what}\n    trace:  {trace:?}\n    kernel: {kernel:?}"));
        }
        agree
    }

    pub fn absorb(&mut self, other: Tally) {
        self.checks += other.checks;
        for (k, n) in other.by_kind {
            *self.by_kind.entry(k).or_default() += n;
        }
        self.failures.extend(other.failures);
    }

    /// "1200 route lookups, 300 answers, ..."
    pub fn breakdown(&self) -> String {
        self.by_kind
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The host a hop happened on. Hosts of a kind that occurs once (the router) are found by
/// kind; the others carry their host's name as the place's name.
pub fn host_at(state: &NetState, place: &Place) -> usize {
    let same_kind: Vec<usize> = (0..state.hosts.len())
        .filter(|&i| state.hosts[i].role.kind() == place.kind)
        .collect();
    match same_kind.as_slice() {
        [only] => *only,
        _ => same_kind
            .into_iter()
            .find(|&i| state.hosts[i].name == place.name)
            .unwrap_or_else(|| panic!("no host for the place {place:?}")),
    }
}

/// A routing decision as `ip route get fibmatch` reports it: the route that matched, or the
/// error the kernel answered with.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteAnswer {
    Route {
        kind: String,
        dst: String,
        via: Option<Ipv4Addr>,
        dev: Option<String>,
    },
    Error(String),
}

/// One route lookup a trace made: where, for which packet, and what it found.
#[derive(Debug, Clone)]
pub struct RouteQuestion {
    pub host: usize,
    /// The device the packet came in on (the bridge, for a frame that came in on a bridge
    /// port); `None` for a packet the host itself sends.
    pub iif: Option<String>,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub expect: RouteAnswer,
}

/// Every route lookup of the request and the reply, with the packet's addresses at that point
/// (after any NAT earlier in the same hop).
pub fn route_questions(state: &NetState, trace: &Trace) -> Vec<RouteQuestion> {
    let reply = trace.reply.as_ref().map(|r| r.hops.as_slice()).unwrap_or_default();
    let mut out = Vec::new();
    for hop in trace.hops.iter().chain(reply) {
        let host = host_at(state, &hop.place);
        let h = &state.hosts[host];
        let iif = hop.iif.as_ref().map(|i| {
            h.interface(i)
                .and_then(|x| x.master.clone())
                .unwrap_or_else(|| i.clone())
        });
        let mut tuple = hop.packet;
        for step in &hop.steps {
            match step {
                Step::Nat { after, .. } => tuple = *after,
                Step::Route {
                    destination,
                    route_type,
                    matched,
                    via,
                    dev,
                    ..
                } => {
                    let expect = expected_route(
                        h.ip_forward || iif.is_none(),
                        route_type.as_deref(),
                        matched.as_deref(),
                        *via,
                        dev.clone(),
                    );
                    out.push(RouteQuestion {
                        host,
                        iif: iif.clone(),
                        src: *tuple.src.ip(),
                        dst: *destination,
                        expect,
                    });
                }
                _ => {}
            }
        }
    }
    out
}

/// What the kernel answers for a lookup the trace resolved to a route of `kind`. The kernel
/// reports routes that refuse packets as errors, and a host that does not forward answers
/// "No route to host" for anything it would have to forward.
pub fn expected_route(
    forwards: bool,
    kind: Option<&str>,
    matched: Option<&str>,
    via: Option<Ipv4Addr>,
    dev: Option<String>,
) -> RouteAnswer {
    let error = |e: &str| RouteAnswer::Error(e.to_owned());
    match kind {
        None => error("Network is unreachable"),
        Some("local" | "broadcast") => route_answer(kind, matched, via, dev),
        Some(_) if !forwards => error("No route to host"),
        Some("blackhole") => error("Invalid argument"),
        Some("unreachable") => error("No route to host"),
        Some("prohibit") => error("Permission denied"),
        Some(_) => route_answer(kind, matched, via, dev),
    }
}

fn route_answer(kind: Option<&str>, matched: Option<&str>, via: Option<Ipv4Addr>, dev: Option<String>) -> RouteAnswer {
    let kind = kind.unwrap_or("unicast").to_owned();
    // `matched` is the route as `ip route` prints it: an optional type word, then the prefix.
    let dst = matched
        .unwrap_or_default()
        .split_whitespace()
        .find(|w| *w != kind)
        .unwrap_or_default()
        .to_owned();
    RouteAnswer::Route { kind, dst, via, dev }
}

/// Asks the kernel: `ip route get fibmatch DST from SRC [iif DEV]` in the host's namespace.
pub fn ask_route(lab: &Lab, q: &RouteQuestion) -> RouteAnswer {
    let (dst, src) = (q.dst.to_string(), q.src.to_string());
    let mut args = vec!["-4", "-j", "route", "get", "fibmatch", &dst, "from", &src];
    if let Some(iif) = &q.iif {
        args.extend(["iif", iif]);
    }
    let out = lab.ip(q.host, &args);
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        return RouteAnswer::Error(err.trim().trim_start_matches("RTNETLINK answers: ").to_owned());
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let r = &v[0];
    RouteAnswer::Route {
        kind: r["type"].as_str().unwrap_or("unicast").to_owned(),
        dst: r["dst"].as_str().unwrap_or_default().to_owned(),
        via: r["gateway"].as_str().and_then(|g| g.parse().ok()),
        dev: r["dev"].as_str().map(str::to_owned),
    }
}

/// A route in one canonical line, from the model or from `ip -j route show`.
fn canonical(kind: &str, dst: &str, fields: [(&str, Option<String>); 6]) -> String {
    let mut s = if kind == "unicast" {
        dst.to_owned()
    } else {
        format!("{kind} {dst}")
    };
    for (name, value) in fields {
        if let Some(v) = value {
            s.push_str(&format!(" {name} {v}"));
        }
    }
    s
}

pub fn model_route(r: &Route) -> String {
    let kind = format!("{:?}", r.kind).to_lowercase();
    let dst = match r.dst.prefix_len() {
        0 => "default".to_owned(),
        32 => r.dst.addr().to_string(),
        _ => r.dst.to_string(),
    };
    let proto = match r.proto {
        RouteProto::Kernel => Some("kernel".to_owned()),
        RouteProto::Static => Some("static".to_owned()),
        RouteProto::Bird => Some("bird".to_owned()),
        RouteProto::Boot => None,
    };
    let scope = match r.scope {
        Scope::Global => None,
        Scope::Link => Some("link".to_owned()),
        Scope::Host => Some("host".to_owned()),
    };
    canonical(
        &kind,
        &dst,
        [
            ("via", r.via.map(|v| v.to_string())),
            ("dev", r.dev.clone()),
            ("proto", proto),
            ("scope", scope),
            ("src", r.src.map(|s| s.to_string())),
            ("metric", (r.metric != 0).then(|| r.metric.to_string())),
        ],
    )
}

fn kernel_route(r: &Value) -> String {
    let text = |k: &str| r[k].as_str().map(str::to_owned);
    canonical(
        r["type"].as_str().unwrap_or("unicast"),
        r["dst"].as_str().unwrap_or_default(),
        [
            ("via", text("gateway")),
            ("dev", text("dev")),
            ("proto", text("protocol").filter(|p| p != "boot")),
            ("scope", text("scope").filter(|s| s != "global" && s != "universe")),
            ("src", text("prefsrc")),
            (
                "metric",
                r["metric"].as_u64().filter(|m| *m != 0).map(|m| m.to_string()),
            ),
        ],
    )
}

/// The routing tables the kernel holds against the model's, table by table, as sets: the
/// kernel makes the routes of addresses itself, so this is where the model's claims about
/// them are tested.
pub fn check_tables(lab: &Lab, tally: &mut Tally, label: &str) {
    for (i, h) in lab.state.hosts.iter().enumerate() {
        for table in ["local", "main"] {
            let mut model: Vec<String> = h
                .tables
                .iter()
                .filter(|t| t.name == table)
                .flat_map(|t| t.all().map(model_route))
                .collect();
            let out = lab.ip(i, &["-4", "-j", "route", "show", "table", table]);
            let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
            let mut kernel: Vec<String> = v.as_array().into_iter().flatten().map(kernel_route).collect();
            model.sort();
            kernel.sort();
            tally.check(
                "routing tables",
                format!("{label}: {} table {table}", h.name),
                model,
                kernel,
            );
        }
    }
}

/// The rules loaded in each namespace, as `iptables-save` prints them back, against the
/// model's. Counters and the date comments are the only differences allowed.
pub fn check_rules(lab: &Lab, tally: &mut Tally, label: &str) {
    for (i, h) in lab.state.hosts.iter().enumerate() {
        for table in [&h.nat, &h.filter] {
            if table.chains().all(|c| c.rules.is_empty()) {
                continue;
            }
            let out = output(lab.exec(i, &["iptables-save", "-t", &table.name]));
            let kernel: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(without_counters)
                .collect();
            let model: Vec<String> = table.save().lines().map(without_counters).collect();
            tally.check(
                "rule sets",
                format!("{label}: {} iptables -t {}", h.name, table.name),
                model,
                kernel,
            );
        }
    }
}

/// kube-proxy's nftables table as `nft list table` prints it back, against the model's
/// listing. The kernel lists a set's elements in its own hash order, so elements are compared
/// as sets.
pub fn check_nftables(lab: &Lab, tally: &mut Tally, label: &str) {
    for (i, h) in lab.state.hosts.iter().enumerate() {
        let Some(table) = &h.nftables else { continue };
        let out = output(lab.exec(i, &["nft", "list", "table", "ip", &table.name]));
        tally.check(
            "rule sets",
            format!("{label}: {} nft list table ip {}", h.name, table.name),
            normalized_listing(&table.list()),
            normalized_listing(&String::from_utf8_lossy(&out.stdout)),
        );
    }
}

/// A listing with each `elements = { … }` on one line, its elements sorted.
fn normalized_listing(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for line in text.lines() {
        match line.strip_prefix("\t\t\t     ") {
            Some(more) if lines.last().is_some_and(|l| l.contains("elements = {")) => {
                let last = lines.last_mut().expect("a line before");
                last.push(' ');
                last.push_str(more);
            }
            _ => lines.push(line.to_owned()),
        }
    }
    for line in &mut lines {
        if let Some((head, rest)) = line.split_once("elements = { ") {
            let body = rest.strip_suffix(" }").unwrap_or(rest);
            let mut elements: Vec<&str> = body.split(", ").map(|e| e.trim_end_matches(',')).collect();
            elements.sort_unstable();
            *line = format!("{head}elements = {{ {} }}", elements.join(", "));
        }
    }
    lines
}

/// A chain line without its packet and byte counters.
fn without_counters(line: &str) -> String {
    match line.strip_prefix(':') {
        Some(_) => line.split(" [").next().unwrap_or(line).to_owned(),
        None => line.to_owned(),
    }
}

/// How a connection attempt ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A listener answered: its host's name, the address it was reached at, and the peer it saw.
    Answered {
        who: String,
        local: SocketAddrV4,
        peer: SocketAddrV4,
    },
    Refused,
    /// An echo reply came back from this address.
    Echoed(Ipv4Addr),
    /// The kernel reported an error (an ICMP error, or a route that refuses).
    Failed(String),
    /// No answer in time.
    Silent,
}

pub fn outcome(out: &std::process::Output, protocol: Protocol) -> Outcome {
    let stdout = String::from_utf8_lossy(&out.stdout);
    if protocol == Protocol::Icmp {
        return ping_outcome(&stdout, &String::from_utf8_lossy(&out.stderr));
    }
    // A request duplicated on the way (a promiscuous bridge's copy that no rule drops) is
    // answered twice: the first answer is the one compared.
    let words: Vec<&str> = stdout.lines().next().unwrap_or_default().split_whitespace().collect();
    if let [who, local, lport, peer, pport] = words.as_slice()
        && let (Ok(l), Ok(lp), Ok(p), Ok(pp)) = (local.parse(), lport.parse(), peer.parse(), pport.parse())
    {
        return Outcome::Answered {
            who: (*who).to_owned(),
            local: SocketAddrV4::new(l, lp),
            peer: SocketAddrV4::new(p, pp),
        };
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stderr.contains("Connection refused") {
        return Outcome::Refused;
    }
    if stderr.contains("timed out") || out.status.code() == Some(124) || stderr.trim().is_empty() {
        return Outcome::Silent;
    }
    // socat ends its error lines with the system's message, after the last ": ".
    let last = stderr.lines().rev().find(|l| l.contains(" E ")).unwrap_or_default();
    Outcome::Failed(last.rsplit(": ").next().unwrap_or(last).trim().to_owned())
}

/// What `ping -c1` saw: `64 bytes from A: …`, an ICMP error (`From A icmp_seq=1 Destination
/// Net Unreachable`), a failed send (`ping: connect: Network is unreachable`), or nothing.
fn ping_outcome(stdout: &str, stderr: &str) -> Outcome {
    for line in stdout.lines() {
        if let Some(rest) = line.split_once(" bytes from ").map(|(_, r)| r)
            && let Some(Ok(from)) = rest.split(':').next().map(str::parse)
        {
            return Outcome::Echoed(from);
        }
        if let Some(rest) = line.strip_prefix("From ") {
            let message = rest.split_once(" icmp_seq=").map_or(rest, |(_, m)| m);
            return Outcome::Failed(message.split_once(' ').map_or(message, |(_, m)| m).to_owned());
        }
    }
    match stderr.lines().find(|l| l.starts_with("ping:")) {
        Some(l) => Outcome::Failed(l.rsplit(": ").next().unwrap_or(l).trim().to_owned()),
        None => Outcome::Silent,
    }
}

/// What the client must see, given the trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Answer {
        who: String,
        local: SocketAddrV4,
        peer_ip: Ipv4Addr,
        /// The client's port as the server sees it, unless a MASQUERADE may have changed it.
        peer_port: Option<u16>,
    },
    Refused,
    /// An echo reply from this address.
    Echo(Ipv4Addr),
    /// Refused by a route in the sender's own namespace: the connect call itself fails.
    Failed(String),
    /// Nothing comes back: the packet was dropped without a word.
    Silent,
    /// An ICMP error from a forwarding host, if it finds its way back; otherwise silence.
    ErrorOrSilent,
}

impl Expect {
    pub fn admits(&self, got: &Outcome) -> bool {
        match (self, got) {
            (
                Expect::Answer {
                    who,
                    local,
                    peer_ip,
                    peer_port,
                },
                Outcome::Answered { who: w, local: l, peer },
            ) => w == who && l == local && peer.ip() == peer_ip && peer_port.is_none_or(|p| p == peer.port()),
            (Expect::Refused, Outcome::Refused) | (Expect::Silent, Outcome::Silent) => true,
            (Expect::Echo(want), Outcome::Echoed(got)) => want == got,
            (Expect::Failed(e), Outcome::Failed(g)) => e == g,
            (Expect::ErrorOrSilent, Outcome::Failed(_) | Outcome::Silent) => true,
            _ => false,
        }
    }
}

/// The tuple a hop ends with: its packet after the NAT steps taken in it.
pub fn final_tuple(hop: &Hop) -> Tuple {
    hop.steps.iter().fold(hop.packet, |t, s| match s {
        Step::Nat { after, .. } => *after,
        _ => t,
    })
}

pub fn masqueraded(hops: &[Hop]) -> bool {
    hops.iter()
        .flat_map(|h| &h.steps)
        .any(|s| matches!(s, Step::Nat { nat, .. } if nat == "MASQUERADE"))
}

/// The client's port in the kernel for the port the trace gave it.
pub fn port_in_kernel(trace_port: u16, client_port: u16) -> u16 {
    if trace_port == k8snet::sim::CLIENT_PORT {
        client_port
    } else {
        trace_port
    }
}

/// Whether the refusal that ends a flow (the listener's reset, or the rejecting host's ICMP
/// error) finds its way back to the client. A trace stops at the refusal, so the harness walks
/// the way back with the simulator itself, as it walks a delivered request's reply; an extra
/// route can send it elsewhere, and then the client hears nothing.
pub fn refusal_returns(state: &NetState, src_host: usize, sent: Tuple, choice: &BranchChoice) -> bool {
    let mut sim = Simulator::new(state, choice.clone());
    let request = sim.request(src_host, sent);
    let Some(last) = request.hops.last() else { return false };
    let back = sim.reply(host_at(state, &last.place), final_tuple(last), Client::Socket(src_host));
    matches!(back.end, End::Returned { tuple } if tuple == sent.reversed())
}

/// What the client must see, given the trace and whether a refusal would reach it.
pub fn expect(state: &NetState, trace: &Trace, client_port: u16, refusal_returns: bool) -> Expect {
    let last = trace.hops.last().expect("a trace has a hop");
    let at_sender = trace.hops.len() == 1 && last.iif.is_none();
    match trace.verdict {
        Verdict::Delivered if last.packet.protocol == Protocol::Icmp => {
            let seen = trace.reply.as_ref().and_then(|r| r.seen_by_client);
            Expect::Echo(*seen.expect("a delivered trace has its reply").src.ip())
        }
        Verdict::Delivered => {
            let t = final_tuple(last);
            Expect::Answer {
                who: state.hosts[host_at(state, &last.place)].name.clone(),
                local: t.dst,
                peer_ip: *t.src.ip(),
                peer_port: (!masqueraded(&trace.hops)).then(|| port_in_kernel(t.src.port(), client_port)),
            }
        }
        // A rejected echo request comes back as the ICMP error itself (nftables mode rejects
        // pings to a ClusterIP in cluster-ips-check).
        Verdict::NoEndpoints | Verdict::Rejected if refusal_returns && last.packet.protocol == Protocol::Icmp => {
            Expect::Failed("Destination Port Unreachable".into())
        }
        Verdict::NoListener | Verdict::NoEndpoints | Verdict::Rejected if refusal_returns => Expect::Refused,
        // kube-router's REJECT answers with an ICMP error that conntrack ties to the refused
        // connection (RELATED, which every policy chain accepts) and that carries the header
        // the client sent, Service DNAT undone; walking it back as a reply from the endpoint
        // would meet a connection the rejecting host never confirmed.
        Verdict::DeniedByPolicy => Expect::Refused,
        Verdict::NoRoute if at_sender => Expect::Failed("Network is unreachable".into()),
        Verdict::Blackhole if at_sender => Expect::Failed("Invalid argument".into()),
        Verdict::Unreachable if at_sender => Expect::Failed("No route to host".into()),
        Verdict::Prohibited if at_sender => Expect::Failed("Permission denied".into()),
        Verdict::NoRoute | Verdict::Unreachable | Verdict::Prohibited | Verdict::Loop => Expect::ErrorOrSilent,
        _ => Expect::Silent,
    }
}

/// A conntrack entry's two directions, as `conntrack -L` prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub orig: (SocketAddrV4, SocketAddrV4),
    pub reply: (SocketAddrV4, SocketAddrV4),
}

pub fn parse_entries(text: &str) -> Vec<Entry> {
    text.lines()
        .filter_map(|line| {
            let field =
                |key: &str| -> Vec<&str> { line.split_whitespace().filter_map(|w| w.strip_prefix(key)).collect() };
            let (src, dst, mut sport, mut dport) = (field("src="), field("dst="), field("sport="), field("dport="));
            // An ICMP entry keys on the echo identifier where others have ports.
            if sport.is_empty() {
                (sport, dport) = (field("id="), field("id="));
            }
            let at = |ip: &str, port: &str| Some(SocketAddrV4::new(ip.parse().ok()?, port.parse().ok()?));
            Some(Entry {
                orig: (at(src.first()?, sport.first()?)?, at(dst.first()?, dport.first()?)?),
                reply: (at(src.get(1)?, sport.get(1)?)?, at(dst.get(1)?, dport.get(1)?)?),
            })
        })
        .collect()
}
