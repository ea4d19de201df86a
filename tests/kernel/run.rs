//! One scenario against the kernel: trace every flow, build the scenario for real, and put each
//! of the trace's claims to the kernel.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use k8snet::model::Cluster;
use k8snet::net::iptables::Target;
use k8snet::net::{NetState, Protocol};
use k8snet::resolve::Origin;
use k8snet::resolve::{self, Query};
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::{Step, Trace, Verdict};

use crate::compare::{self, Outcome, RouteAnswer, RouteQuestion, Tally};
use crate::lab::{Lab, output};
use crate::nftrace;

/// A connection to try, written as `k8snet trace` takes it.
#[derive(Debug, Clone)]
pub struct FlowSpec {
    pub from: String,
    pub to: String,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub choice: BranchChoice,
}

impl FlowSpec {
    /// The flow as `k8snet trace` would be asked for it.
    pub fn query(&self) -> Query<'_> {
        Query {
            from: &self.from,
            container: None,
            to: &self.to,
            port: self.port,
            port_name: None,
            protocol: self.protocol,
            namespace: "default",
            endpoint: None,
            via_node: None,
        }
    }

    pub fn new(from: &str, to: &str) -> FlowSpec {
        FlowSpec {
            from: from.to_owned(),
            to: to.to_owned(),
            port: None,
            protocol: None,
            choice: BranchChoice::default(),
        }
    }
}

/// A flow traced and ready to be tried. The kernel's client sends from its own port (`src`)
/// where the trace's client uses port 40000, so that flows tried at once stay apart.
pub struct Flow {
    pub label: String,
    pub trace: Trace,
    pub src_host: usize,
    pub protocol: Protocol,
    pub src: SocketAddrV4,
    pub dst: SocketAddrV4,
    pub choice: BranchChoice,
}

pub const FIRST_CLIENT_PORT: u16 = 41000;

pub fn trace_flows(name: &str, c: &Cluster, state: &NetState, specs: &[FlowSpec]) -> Vec<Flow> {
    specs
        .iter()
        .enumerate()
        .filter_map(|(i, f)| {
            let q = f.query();
            let ends = resolve::resolve(c, state, &q).unwrap_or_else(|e| panic!("{name}: {f:?}: {e}"));
            // A client beyond the internet gateway has no socket in the lab, and a name that
            // resolves to nothing sends no packet: neither has anything to put to the kernel.
            let (Origin::Socket(src_host), Some(dst)) = (&ends.origin, ends.dst) else {
                return None;
            };
            let trace = k8snet::tracer::trace(c, state, &q, f.choice.clone()).unwrap_or_else(|e| panic!("{name}: {e}"));
            let port = FIRST_CLIENT_PORT + u16::try_from(i).expect("fewer than 20000 flows");
            Some(Flow {
                label: format!(
                    "{name}: {} -> {}{} ({:?}, {})",
                    f.from,
                    f.to,
                    f.port.map(|p| format!(" port {p}")).unwrap_or_default(),
                    f.choice,
                    trace.verdict
                ),
                src_host: *src_host,
                protocol: ends.protocol,
                src: SocketAddrV4::new(ends.src_ip, port),
                dst,
                choice: f.choice.clone(),
                trace,
            })
        })
        .collect()
}

/// What a lab's run found.
pub struct Report {
    pub tally: Tally,
    pub flows: usize,
}

/// Builds `state`, then checks its tables and rules, every route lookup of every flow, and
/// every flow end to end.
pub fn run(name: &str, state: &NetState, flows: &[Flow]) -> Report {
    let mut tally = Tally::default();
    let mut lab = Lab::build(state.clone());
    compare::check_tables(&lab, &mut tally, name);
    compare::check_rules(&lab, &mut tally, name);
    compare::check_nftables(&lab, &mut tally, name);
    check_routes(&lab, flows, &mut tally);
    lab.start_listeners(120);
    let pins = pin_endpoints(&lab, flows);
    // Hosts with rules are where a trace has netfilter steps to compare. xtables-monitor
    // prints only iptables rules, so a host with kube-proxy's nftables table has its walk left
    // out (its table, conntrack and every connection are still compared).
    let ruled: Vec<usize> = (0..lab.state.hosts.len())
        .filter(|&h| {
            let host = &lab.state.hosts[h];
            host.nftables.is_none()
                && [&host.nat, &host.filter]
                    .iter()
                    .any(|t| t.chains().any(|c| !c.rules.is_empty()))
        })
        .collect();
    let monitors = nftrace::available().then(|| nftrace::start(&lab, &ruled));
    let outcomes = probe_all(&lab, flows);
    // Conntrack first: an unreplied UDP or ICMP entry lives 30 s, less than stopping the
    // monitors can take when one misses its last marker.
    check_conntrack(&lab, flows, &outcomes, &mut tally);
    if let Some(monitors) = monitors {
        let walks = nftrace::stop(&lab, monitors);
        if let Some(dir) = std::env::var_os("K8SNET_KERNEL_DUMP") {
            for (h, lines) in &walks {
                let file = std::path::Path::new(&dir).join(format!("{name}-{}.trace", lab.state.hosts[*h].name));
                let _ = std::fs::write(file, lines.join("\n"));
            }
        }
        check_walks(&lab, flows, &walks, &pins, &mut tally);
    }
    for (f, got) in flows.iter().zip(&outcomes) {
        if f.protocol == Protocol::Sctp {
            continue;
        }
        let sent = k8snet::sim::client_tuple(f.protocol, *f.src.ip(), f.dst);
        let returns = compare::refusal_returns(&lab.state, f.src_host, sent, &f.choice);
        let want = compare::expect(&lab.state, &f.trace, f.src.port(), returns);
        tally.compare(
            "connections",
            format!("{}: who answered", f.label),
            want.admits(got),
            &want,
            got,
        );
        // The trace's words for what the client sees must be what the kernel showed it.
        let words = match got {
            compare::Outcome::Failed(message) if want.admits(got) => Some(message.clone()),
            compare::Outcome::Silent if f.trace.verdict == k8snet::trace::Verdict::Blackhole => {
                Some("times out".to_owned())
            }
            _ => None,
        };
        if let Some(words) = words {
            tally.compare(
                "client's view",
                format!("{}: the reason says `{words}`", f.label),
                f.trace.reason.contains(&words),
                &words,
                &f.trace.reason,
            );
        }
    }
    Report {
        tally,
        flows: flows.len(),
    }
}

/// A route lookup's question without its expected answer: host, incoming device, source,
/// destination.
type Lookup = (usize, Option<String>, Ipv4Addr, Ipv4Addr);

/// Each distinct lookup once: many flows share their first hops.
pub fn check_routes(lab: &Lab, flows: &[Flow], tally: &mut Tally) {
    let mut asked: BTreeMap<Lookup, (RouteAnswer, String)> = BTreeMap::new();
    for f in flows {
        for q in compare::route_questions(&lab.state, &f.trace) {
            asked
                .entry((q.host, q.iif.clone(), q.src, q.dst))
                .or_insert_with(|| (q.expect.clone(), f.label.clone()));
        }
    }
    for ((host, iif, src, dst), (expect, label)) in asked {
        let q = RouteQuestion {
            host,
            iif,
            src,
            dst,
            expect,
        };
        let got = compare::ask_route(lab, &q);
        tally.check("route lookups", describe(lab, &q, &label), q.expect, got);
    }
}

pub fn describe(lab: &Lab, q: &RouteQuestion, label: &str) -> String {
    format!(
        "{label}: ip -n {} route get fibmatch {} from {}{}",
        lab.netns(q.host),
        q.dst,
        q.src,
        q.iif.as_ref().map(|i| format!(" iif {i}")).unwrap_or_default()
    )
}

/// Forces each flow down the endpoint branch its trace took: a rule placed before the Service
/// chain's random choice sends this client's connection (its address and port) straight to
/// the chosen endpoint's chain, so chance cannot make a run disagree. Returns the rules added,
/// as the kernel's rule-by-rule walk prints them.
fn pin_endpoints(lab: &Lab, flows: &[Flow]) -> Vec<String> {
    let mut lines: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for f in flows {
        let masq_before = |i: usize| compare::masqueraded(&f.trace.hops[..i]);
        for (i, hop) in f.trace.hops.iter().enumerate() {
            let host = compare::host_at(&lab.state, &hop.place);
            let mut tuple = hop.packet;
            for step in &hop.steps {
                match step {
                    Step::Nat { after, .. } => tuple = *after,
                    Step::LoadBalance { chain, branches, .. } => {
                        let Some(chosen) = branches.iter().find(|b| b.chosen) else {
                            continue;
                        };
                        if let Some(nft_chain) = chain.strip_prefix("ip kube-proxy ") {
                            let sport =
                                (!masq_before(i)).then(|| compare::port_in_kernel(tuple.src.port(), f.src.port()));
                            pin_nft(lab, host, nft_chain, *tuple.src.ip(), f.protocol, sport, &chosen.target);
                            continue;
                        }
                        let rules = &lab.state.hosts[host]
                            .nat
                            .chain(chain)
                            .unwrap_or_else(|| panic!("{}: no chain {chain}", f.label))
                            .rules;
                        let first = rules
                            .iter()
                            .position(
                                |r| matches!(&r.target, Target::Jump(t) if branches.iter().any(|b| &b.target == t)),
                            )
                            .unwrap_or(0);
                        let proto = f.protocol.lower();
                        let sport = if masq_before(i) {
                            String::new()
                        } else {
                            format!(
                                " -m {proto} --sport {}",
                                compare::port_in_kernel(tuple.src.port(), f.src.port())
                            )
                        };
                        lines.entry(host).or_default().push(format!(
                            "-I {chain} {} -s {}/32 -p {proto}{sport} -j {}",
                            first + 1,
                            tuple.src.ip(),
                            chosen.target
                        ));
                    }
                    _ => {}
                }
            }
        }
    }
    let mut added = Vec::new();
    for (host, pins) in lines {
        added.extend(pins.iter().map(|p| {
            // `-I CHAIN N ...` is listed as `-A CHAIN ...`.
            let mut words: Vec<&str> = p.split(' ').collect();
            words[0] = "-A";
            words.remove(2);
            format!("nat: {}", words.join(" "))
        }));
        let input = format!("*nat\n{}\nCOMMIT\n", pins.join("\n"));
        let mut c = lab.exec(host, &["iptables-restore", "--noflush"]);
        let out = crate::lab::run_with_input(&mut c, &input);
        assert!(
            out.status.success(),
            "pinning endpoints in {} failed: {}\n{input}",
            lab.netns(host),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    added
}

/// The nftables form of a pin: a rule inserted before the first rule of the Service chain that
/// can send to an endpoint (an affinity check or the `numgen` map), sending this client
/// straight to the chosen endpoint's chain.
fn pin_nft(lab: &Lab, host: usize, chain: &str, src: Ipv4Addr, protocol: Protocol, sport: Option<u16>, target: &str) {
    use k8snet::net::nftables::{Statement, Verdict as NftVerdict};
    let table = lab.state.hosts[host].nftables.as_ref().expect("an nftables table");
    let rules = &table.chain(chain).unwrap_or_else(|| panic!("no chain {chain}")).rules;
    let first = rules
        .iter()
        .position(|r| {
            matches!(&r.statement, Statement::Numgen(_))
                || matches!(&r.statement, Statement::Verdict(NftVerdict::Goto(t)) if t.starts_with("endpoint-"))
        })
        .expect("the chain chooses an endpoint");
    let listed = output(lab.exec(host, &["nft", "-a", "list", "chain", "ip", "kube-proxy", chain]));
    let handles: Vec<String> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter(|l| l.starts_with("\t\t"))
        .filter_map(|l| l.rsplit_once("# handle ").map(|(_, h)| h.trim().to_owned()))
        .collect();
    let handle = &handles[first];
    let proto = protocol.lower();
    let sport = sport.map(|p| format!(" {proto} sport {p}")).unwrap_or_default();
    let rule = format!("ip saddr {src} meta l4proto {proto}{sport} goto {target}");
    let out = output(lab.exec(
        host,
        &[
            "nft",
            &format!("insert rule ip kube-proxy {chain} position {handle} {rule}"),
        ],
    ));
    assert!(
        out.status.success(),
        "pinning an endpoint in {} failed: {}\n{rule}",
        lab.netns(host),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rules the kernel walked in each namespace against the trace's netfilter steps, hop by
/// hop of the request, for hops where the client's port is known (before any MASQUERADE). The
/// endpoint choice is left out on both sides: the trace shows the branch it took, the kernel
/// the pin that sent it there.
fn check_walks(lab: &Lab, flows: &[Flow], walks: &[(usize, Vec<String>)], pins: &[String], tally: &mut Tally) {
    for f in flows.iter().filter(|f| f.protocol != Protocol::Sctp) {
        for (i, hop) in f.trace.hops.iter().enumerate() {
            let host = compare::host_at(&lab.state, &hop.place);
            let Some((_, lines)) = walks.iter().find(|(h, _)| *h == host) else {
                continue;
            };
            if compare::masqueraded(&f.trace.hops[..i]) {
                continue;
            }
            // A tunnel's outer packet: not traced in the kernel (see nftrace::start).
            if hop.packet.protocol == Protocol::Udp && [4789, 8472].contains(&hop.packet.dst.port()) {
                continue;
            }
            let branches: Vec<&str> = hop
                .steps
                .iter()
                .flat_map(|s| match s {
                    Step::LoadBalance { branches, .. } => branches.iter().map(|b| b.rule.as_str()).collect(),
                    _ => Vec::new(),
                })
                .collect();
            let mut expected: Vec<String> = hop
                .steps
                .iter()
                .filter_map(|s| match s {
                    // A rule the trace shows only because it did not match (an affinity
                    // check on a first packet) is not one the kernel's trace reports.
                    Step::Netfilter {
                        table,
                        rule: Some(rule),
                        action,
                        ..
                    } if !branches.contains(&rule.as_str()) && !action.starts_with("no match") => {
                        Some(format!("{table}: {rule}"))
                    }
                    _ => None,
                })
                .collect();
            let sport =
                (f.protocol != Protocol::Icmp).then(|| compare::port_in_kernel(hop.packet.src.port(), f.src.port()));
            let visit = f.trace.hops[..i]
                .iter()
                .filter(|h| h.place == hop.place && h.packet == hop.packet)
                .count();
            let walk = nftrace::walked(
                lines,
                &hop.packet.src.ip().to_string(),
                sport,
                &hop.packet.dst.ip().to_string(),
                hop.iif.is_some(),
                visit,
            );
            let mut kernel: Vec<String> = walk.into_iter().filter(|r| !pins.contains(r)).collect();
            // A `limit` match keeps one budget for every packet the rule sees: kube-router's
            // NFLOG of denied packets (10 a minute, bursts of 10) stops matching once a lab's
            // probes have spent it, while a trace is one packet within any budget. The rule
            // only logs, so it is compared where the kernel still had budget for it.
            let limited = |r: &String| r.contains(" -m limit ");
            if !kernel.iter().any(limited) {
                expected.retain(|r| !limited(r));
            }
            // Where the trace says a promiscuous bridge passed a copy of the frame up, the
            // kernel walks the copy's FORWARD rules after the frame's: the trace does not follow
            // them, so only the frame's walk is compared, and the copy must be in the filter
            // table alone.
            let copied = hop
                .steps
                .iter()
                .any(|s| matches!(s, Step::Note { text } if text.contains("passes a copy of the frame up")));
            if copied
                && kernel.len() > expected.len()
                && kernel[expected.len()..].iter().all(|r| r.starts_with("filter: "))
            {
                kernel.truncate(expected.len());
            }
            tally.check(
                "netfilter walks",
                format!("{}: rules walked in {}", f.label, lab.netns(host)),
                expected,
                kernel,
            );
        }
    }
}

/// Tries every flow at once, each from its own client port.
fn probe_all(lab: &Lab, flows: &[Flow]) -> Vec<Outcome> {
    let children: Vec<_> = flows
        .iter()
        .map(|f| (f.protocol != Protocol::Sctp).then(|| lab.probe(f.src_host, f.protocol, f.src, f.dst)))
        .collect();
    children
        .into_iter()
        .zip(flows)
        .map(|(c, f)| match c {
            Some(c) => compare::outcome(&c.wait_with_output().expect("the probe finishes"), f.protocol),
            None => Outcome::Silent,
        })
        .collect()
}

/// Where a hop translated the packet and the trace says conntrack confirmed the connection
/// there, conntrack must hold the same translation: the reply it expects comes from the DNAT
/// target and goes to the masquerading address. Where the packet never left the hop after its
/// NAT (dropped there), no entry may exist: the kernel discards unconfirmed ones. TCP flows
/// refused with a reset are skipped: conntrack deletes an entry whose only reply was a reset,
/// on every host the reset passes, and a trace does not follow the reset.
fn check_conntrack(lab: &Lab, flows: &[Flow], outcomes: &[Outcome], tally: &mut Tally) {
    for (f, got) in flows.iter().zip(outcomes) {
        let reset = f.protocol == Protocol::Tcp && (*got == Outcome::Refused || f.trace.verdict == Verdict::NoListener);
        if f.protocol == Protocol::Sctp || reset {
            continue;
        }
        let last = f.trace.hops.len() - 1;
        for (i, hop) in f.trace.hops.iter().enumerate() {
            if !hop.steps.iter().any(|s| matches!(s, Step::Nat { .. })) {
                continue;
            }
            // The simulator notes each entry it confirms with a translation in it; an identity
            // translation (a MASQUERADE to the address the packet already had) goes unnoted,
            // and is confirmed wherever the packet went on or reached a socket.
            let noted = hop
                .steps
                .iter()
                .any(|s| matches!(s, Step::Note { text } if text.starts_with("conntrack remembers")));
            let confirmed = if compare::final_tuple(hop) != hop.packet {
                noted
            } else {
                i < last
                    || matches!(
                        f.trace.verdict,
                        Verdict::Delivered | Verdict::ReplyLost | Verdict::NoListener
                    )
            };
            let host = compare::host_at(&lab.state, &hop.place);
            let known_port = !compare::masqueraded(&f.trace.hops[..i]);
            let masq_here = compare::masqueraded(std::slice::from_ref(hop));
            let port = |p: u16, known: bool| known.then(|| compare::port_in_kernel(p, f.src.port()));
            let orig = hop.packet;
            let fin = compare::final_tuple(hop);
            let mut args: Vec<String> = ["conntrack", "-L", "-p", f.protocol.lower(), "-s"]
                .map(str::to_owned)
                .to_vec();
            args.extend([orig.src.ip().to_string(), "-d".into(), orig.dst.ip().to_string()]);
            if known_port {
                args.extend([
                    if f.protocol == Protocol::Icmp {
                        "--icmp-id"
                    } else {
                        "--sport"
                    }
                    .into(),
                    port(orig.src.port(), true).unwrap_or_default().to_string(),
                ]);
            }
            let out = output(lab.exec(host, &args.iter().map(String::as_str).collect::<Vec<_>>()));
            let entries = compare::parse_entries(&String::from_utf8_lossy(&out.stdout));
            // An echo's identifier stands in the destination's place too.
            let in_kernel = |dst: SocketAddrV4| {
                if f.protocol == Protocol::Icmp {
                    SocketAddrV4::new(*dst.ip(), compare::port_in_kernel(dst.port(), f.src.port()))
                } else {
                    dst
                }
            };
            let (fin_dst, orig_dst) = (in_kernel(fin.dst), in_kernel(orig.dst));
            let expected =
                confirmed.then_some((fin_dst, *fin.src.ip(), port(fin.src.port(), known_port && !masq_here)));
            let found: Vec<_> = entries
                .iter()
                .filter(|e| e.orig.1 == orig_dst)
                .map(|e| {
                    (
                        e.reply.0,
                        *e.reply.1.ip(),
                        expected.and_then(|x| x.2).map(|_| e.reply.1.port()),
                    )
                })
                .collect();
            // Without the client's port, a loop's every lap makes an entry of its own.
            let agree = match expected {
                Some(e) if !known_port => found.contains(&e),
                _ => found.first().copied() == expected && found.len() <= 1,
            };
            tally.compare(
                "conntrack entries",
                format!("{}: conntrack in {}", f.label, lab.netns(host)),
                agree,
                &expected,
                &found,
            );
        }
    }
}
