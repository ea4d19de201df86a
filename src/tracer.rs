//! A trace request from start to verdict: resolve the names, simulate the packet and its reply,
//! and say in Kubernetes terms what the Linux-level outcome means.
//!
//! An HTTP request to an ingress controller takes two connections: the client's, which ends at
//! the controller pod, and the controller's own to the backend pod it picks. Both are simulated
//! and joined into one trace.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::compile::cloud::{fails_open, lb_backends};
use crate::compile::kube_proxy::verdict_for_rule;
use crate::compile::kube_router;
use crate::model::Cluster;
use crate::net::route::RouteType;
use crate::net::{NetState, Role};
use crate::resolve::{self, Endpoints, Origin, http};
use crate::sim::netfilter::BranchChoice;
use crate::sim::{Client, End, Journey, Simulator, client_tuple};
use crate::trace::{DeliveredTo, Hop, Reply, Step, Trace, Tuple, Verdict};

pub fn trace(c: &Cluster, state: &NetState, q: &resolve::Query<'_>, choice: BranchChoice) -> Result<Trace, String> {
    let ends = resolve::resolve(c, state, q)?;
    let mut choice = choice;
    choice.pins.extend(ends.pins.iter().copied());
    let trace = run(c, state, q, &ends, choice);
    // An endpoint no decision leads to is a mistake in the question, like a --via-node that
    // names no node: answering without it would answer another question.
    if let Some(ip) = q.endpoint
        && !trace.hops.is_empty()
        && !endpoint_followed(&trace.hops, ip)
    {
        let offered: Vec<String> = trace
            .hops
            .iter()
            .flat_map(|h| &h.steps)
            .filter_map(|s| match s {
                Step::LoadBalance { branches, .. } => Some(branches),
                _ => None,
            })
            .flatten()
            .map(|b| match (&b.endpoint, b.to) {
                (Some(e), Some(to)) => format!("{e} ({to})"),
                (None, Some(to)) => to.to_string(),
                _ => b.target.clone(),
            })
            .collect();
        return Err(if offered.is_empty() {
            format!("--endpoint {ip}: the trace meets no load-balancing decision, so there is no endpoint to choose")
        } else {
            format!(
                "--endpoint {ip}: no branch on the way leads there; the branches lead to {}",
                offered.join(", ")
            )
        });
    }
    Ok(trace)
}

/// The last load-balancing decision before delivery (the one that picks the endpoint, after
/// any load balancer picked a node): its index among the journey's decisions, and its branch
/// count.
pub fn endpoint_decision(t: &Trace) -> Option<(usize, usize)> {
    let decisions: Vec<usize> = t
        .hops
        .iter()
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            Step::LoadBalance { branches, .. } => Some(branches.len()),
            _ => None,
        })
        .collect();
    decisions.last().map(|&n| (decisions.len() - 1, n))
}

fn start(sim: &mut Simulator, origin: &Origin, tuple: Tuple) -> Journey {
    match origin {
        Origin::Socket(host) => sim.request(*host, tuple),
        Origin::Outside { host, iif } => sim.arrive(*host, iif, tuple),
    }
}

fn run(c: &Cluster, state: &NetState, q: &resolve::Query<'_>, ends: &Endpoints, choice: BranchChoice) -> Trace {
    let mut trace = journey(c, state, q, ends, choice);
    name_endpoints(c, &mut trace);
    crate::policy_trace::annotate(c, &mut trace);
    if let Some(dst) = ends.dst {
        crate::outcome::refine(c, &mut trace, dst, ends.protocol);
    }
    if let Some(si) = ends.load_balancer
        && trace.hops.iter().any(|h| h.place.kind == "load_balancer")
        && fails_open(&lb_backends(c, &c.services[si]))
    {
        trace
            .reason
            .push_str("; no node passes the load balancer's health check, so it fails open and sends to every node");
    }
    trace
}

fn journey(c: &Cluster, state: &NetState, q: &resolve::Query<'_>, ends: &Endpoints, choice: BranchChoice) -> Trace {
    let mut trace = Trace {
        from: q.from.to_owned(),
        to: q.to.to_owned(),
        notes: ends.notes.clone(),
        resolution: ends.dns.iter().cloned().collect(),
        verdict: Verdict::Delivered,
        reason: String::new(),
        delivered_to: None,
        hops: Vec::new(),
        reply: None,
        hint: None,
    };
    if ends.dns.is_some() {
        match ask_cluster_dns(c, state, ends) {
            Ok(note) => trace.notes.push(note),
            Err((reason, hops)) => {
                // No answer came, so none of the resolver's names was answered either way.
                trace.resolution.clear();
                trace.verdict = Verdict::DnsUnreachable;
                trace.reason = reason;
                trace.hops = hops;
                return trace;
            }
        }
    }
    let Some(dst) = ends.dst else {
        trace.verdict = Verdict::Nxdomain;
        trace.reason = format!("no name the resolver tried for `{}` exists in the cluster DNS", q.to);
        return trace;
    };
    let describe_end = |end: &End| describe(state, end);
    let mut sim = Simulator::new(state, choice);
    let sent = client_tuple(ends.protocol, ends.src_ip, dst);
    let first = start(&mut sim, &ends.origin, sent);
    trace.hops = first.hops;
    explain_load_balancer(c, ends, &mut trace.hops);
    let End::Delivered { host, tuple, owner } = first.end else {
        (trace.verdict, trace.reason) = (verdict_of(state, &first.end), describe_end(&first.end));
        let sender = match ends.origin {
            Origin::Socket(h) => Some(h),
            Origin::Outside { .. } => None,
        };
        if let Some(seen) = crate::outcome::client_sees(state, &first.end, sender, ends.protocol) {
            trace.reason = format!("{}; {seen}", trace.reason);
        }
        return trace;
    };
    let client = match ends.origin {
        Origin::Socket(h) => Client::Socket(h),
        Origin::Outside { .. } => Client::Beyond,
    };
    if matches!(ends.origin, Origin::Outside { .. }) {
        let text = if tuple.src.ip() == sent.src.ip() {
            format!("the server sees the client's own address, {}", sent.src.ip())
        } else {
            format!(
                "the server sees the connection coming from {}, not from the client {}: its source was rewritten on the way",
                tuple.src.ip(),
                sent.src.ip()
            )
        };
        push_step(&mut trace.hops, Step::Note { text });
    }

    // Behind an ingress controller, a second connection: controller pod to backend pod.
    let mut inner = None;
    let (last_host, last_tuple, last_owner) = match &ends.http {
        None => (host, tuple, owner),
        Some(req) => {
            let (step, backend) = http::route(c, req.controller, &req.host, &req.path);
            push_step(&mut trace.hops, step);
            let Some(b) = backend else {
                trace.verdict = Verdict::NotFound;
                trace.reason = format!(
                    "{owner} found no rule for http://{}{} and answers 404 Not Found",
                    req.host, req.path
                );
                return trace;
            };
            let backend_name = http::backend_name(c, b);
            let crate::model::Backend::Service { service, port } = b else {
                let what = match b {
                    crate::model::Backend::Missing { exists: true, .. } => "a port the Service does not have",
                    _ => "a Service that does not exist",
                };
                trace.verdict = Verdict::NoEndpoints;
                trace.reason = format!(
                    "{owner} routes http://{}{} to {backend_name}, {what}: it has no endpoint to send to and answers 503 Service Temporarily Unavailable",
                    req.host, req.path
                );
                return trace;
            };
            let sp = &c.services[*service].ports[*port];
            let Some(e) = q
                .endpoint
                .and_then(|ip| sp.endpoints.iter().find(|e| e.ip == ip))
                .or_else(|| sp.endpoints.first())
            else {
                trace.verdict = Verdict::NoEndpoints;
                trace.reason =
                    format!("{backend_name} has no endpoints, so the controller answers 503 Service Unavailable");
                return trace;
            };
            push_step(
                &mut trace.hops,
                Step::Note {
                    text: format!(
                        "the controller dials {}:{}, the endpoint of {backend_name} in pod {}",
                        e.ip,
                        e.port,
                        c.pods[e.pod].qualified_name()
                    ),
                },
            );
            let dialled = client_tuple(sp.protocol, *tuple.dst.ip(), SocketAddrV4::new(e.ip, e.port));
            let second = sim.request(host, dialled);
            trace.hops.extend(second.hops);
            let End::Delivered {
                host: h2,
                tuple: t2,
                owner: o2,
            } = second.end
            else {
                (trace.verdict, trace.reason) = (verdict_of(state, &second.end), describe_end(&second.end));
                return trace;
            };
            inner = Some((host, dialled, owner.clone()));
            (h2, t2, o2)
        }
    };

    let pod = resolve::pod_at(c, state, last_host, last_tuple.dst.port()).map(|i| &c.pods[i]);
    trace.delivered_to = Some(DeliveredTo {
        pod: pod.map(|p| p.name.clone()),
        namespace: pod.map(|p| p.namespace.clone()),
        ip: *last_tuple.dst.ip(),
        port: last_tuple.protocol.has_ports().then(|| last_tuple.dst.port()),
        listener: last_owner.clone(),
    });
    if inner.is_some() {
        push_step(
            &mut trace.hops,
            Step::Note {
                text: format!(
                    "the backend sees the connection coming from the controller pod, {}; the client's address reaches it only in the X-Forwarded-For header",
                    last_tuple.src.ip()
                ),
            },
        );
    }

    let mut reply_hops = Vec::new();
    if let Some((controller, dialled, controller_owner)) = &inner {
        let back = sim.reply(last_host, last_tuple, Client::Socket(*controller));
        reply_hops.extend(back.hops);
        if let Err((verdict, reason)) = answered(&back.end, *dialled, controller_owner, &describe_end) {
            trace.verdict = verdict;
            trace.reason = reason;
            trace.reply = Some(Reply {
                seen_by_client: None,
                hops: reply_hops,
            });
            return trace;
        }
    }
    let back = sim.reply(host, tuple, client);
    reply_hops.extend(back.hops);
    let (verdict, reason, seen) = match answered(&back.end, sent, &ends.client, &describe_end) {
        Ok(seen) => (
            Verdict::Delivered,
            if seen.protocol.has_ports() {
                format!(
                    "{last_owner} answered, and the reply reached {} from {}, the address it dialled",
                    ends.client, seen.src
                )
            } else {
                format!(
                    "{last_owner} answered, and the echo reply reached {} from {}, the address it pinged",
                    ends.client,
                    seen.src.ip()
                )
            },
            Some(seen),
        ),
        Err((verdict, reason)) => {
            if let Some(got) = returned(&back.end) {
                not_taken(&mut reply_hops, sent, got);
            }
            (verdict, reason, returned(&back.end))
        }
    };
    trace.reply = Some(Reply {
        seen_by_client: seen,
        hops: reply_hops,
    });
    trace.verdict = verdict;
    trace.reason = reason;
    trace
}

/// The resolver's first query, traced as the packet it is: UDP from the pod to the cluster
/// DNS Service's ClusterIP, through kube-proxy, to a DNS pod and back. A note saying where it
/// was answered, or why no answer came and the hops of the query that got none.
fn ask_cluster_dns(c: &Cluster, state: &NetState, ends: &Endpoints) -> Result<String, (String, Vec<Hop>)> {
    let server = resolve::dns::server(c).map_err(|why| (format!("the name does not resolve: {why}"), Vec::new()))?;
    let Origin::Socket(host) = ends.origin else {
        return Err(("only pods resolve cluster names".to_owned(), Vec::new()));
    };
    let mut sim = Simulator::new(state, BranchChoice::default());
    let query = client_tuple(crate::net::Protocol::Udp, ends.src_ip, server);
    let sent = sim.request(host, query);
    let End::Delivered { host: at, tuple, owner } = sent.end else {
        return Err((
            format!(
                "the DNS query {query} got no answer, so the name does not resolve: {}",
                describe(state, &sent.end)
            ),
            sent.hops,
        ));
    };
    let back = sim.reply(at, tuple, Client::Socket(host));
    match answered(&back.end, query, &ends.client, &|e| describe(state, e)) {
        Ok(_) => {
            let allowed = crate::policy_trace::decisions(c, &sent.hops);
            Ok(if allowed.is_empty() {
                format!("the DNS query {query} is answered by {owner}")
            } else {
                format!("the DNS query {query} is answered by {owner} ({})", allowed.join("; "))
            })
        }
        Err((_, why)) => {
            let mut hops = sent.hops;
            hops.extend(back.hops);
            Err((
                format!("the DNS query {query} reached {owner}, but {why}; the name does not resolve"),
                hops,
            ))
        }
    }
}

/// Whether some load-balancing decision, or the ingress controller, followed `--endpoint`.
/// Whether the request headed for `ip` at some point: a translation sent it there, or (behind
/// an ingress controller, which dials endpoints itself) a hop carried it there.
fn endpoint_followed(hops: &[Hop], ip: Ipv4Addr) -> bool {
    hops.iter().any(|h| {
        *h.packet.dst.ip() == ip
            || h.steps
                .iter()
                .any(|s| matches!(s, Step::Nat { nat, after, .. } if nat == "DNAT" && *after.dst.ip() == ip))
    })
}

/// The reply reached the client's host but not as the answer its socket waits for: the last
/// step says so, instead of a delivery.
fn not_taken(hops: &mut [Hop], sent: Tuple, got: Tuple) {
    let Some(hop) = hops.last_mut() else { return };
    if let Some(step) = hop.steps.iter_mut().rev().find(|s| matches!(s, Step::Deliver { .. })) {
        *step = Step::Drop {
            reason: format!(
                "not taken by the client's socket, which dialled {} and waits for its answer from there, not from {}",
                sent.dst_text(),
                got.src_text()
            ),
        };
    }
}

fn returned(end: &End) -> Option<Tuple> {
    match end {
        End::Returned { tuple } => Some(*tuple),
        _ => None,
    }
}

/// Whether a reply reached the client as the answer to `sent`.
fn answered(
    end: &End,
    sent: Tuple,
    client: &str,
    describe: &dyn Fn(&End) -> String,
) -> Result<Tuple, (Verdict, String)> {
    match end {
        End::Returned { tuple } if *tuple == sent.reversed() => Ok(*tuple),
        End::Returned { tuple } => Err((
            Verdict::ReplyLost,
            format!(
                "the reply reaches {client} from {}, but it dialled {}: the socket does not take it as an answer",
                tuple.src_text(),
                sent.dst_text()
            ),
        )),
        other => Err((
            Verdict::ReplyLost,
            format!("the reply never got back to {client}: {}", describe(other)),
        )),
    }
}

fn push_step(hops: &mut [Hop], step: Step) {
    if let Some(hop) = hops.last_mut() {
        hop.steps.push(step);
    }
}

/// At the load balancer's hop, the health checks behind its choice of node.
/// Names what stands behind each address a Service translation sends to: the pod that holds
/// it (an endpoint), or the node (a load balancer's NodePort target).
fn name_endpoints(c: &Cluster, trace: &mut Trace) {
    use std::collections::{HashMap, HashSet};
    // The few addresses the trace names, looked up, so a trace stays cheap in a cluster of any
    // size.
    let mut wanted: HashSet<Ipv4Addr> = HashSet::new();
    for_each_target(trace, |ip, _, _| {
        wanted.insert(ip);
    });
    if wanted.is_empty() {
        return;
    }
    let pods: HashMap<Ipv4Addr, usize> = wanted
        .iter()
        .filter_map(|&ip| Some((ip, c.pod_with_own_ip(ip)?)))
        .collect();
    let nodes: HashMap<Ipv4Addr, usize> = c
        .nodes
        .iter()
        .enumerate()
        .filter(|(_, n)| wanted.contains(&n.ip))
        .map(|(i, n)| (n.ip, i))
        .collect();
    for_each_target(trace, |ip, endpoint, node| {
        if let Some(&i) = pods.get(&ip) {
            let p = &c.pods[i];
            *endpoint = Some(format!("{}/{}", p.namespace, p.name));
            *node = Some(c.nodes[p.node].name.clone());
        } else if let Some(&i) = nodes.get(&ip) {
            *endpoint = Some(format!("node {}", c.nodes[i].name));
        }
    });
}

/// Calls `f` with every address a branch or a DNAT of `trace` sends to, and the places that
/// name what stands there.
fn for_each_target(trace: &mut Trace, mut f: impl FnMut(Ipv4Addr, &mut Option<String>, &mut Option<String>)) {
    let reply_hops = trace.reply.iter_mut().flat_map(|r| r.hops.iter_mut());
    for step in trace.hops.iter_mut().chain(reply_hops).flat_map(|h| h.steps.iter_mut()) {
        match step {
            Step::LoadBalance { branches, .. } => {
                for b in branches {
                    if let Some(to) = b.to {
                        f(*to.ip(), &mut b.endpoint, &mut b.node);
                    }
                }
            }
            Step::Nat {
                nat,
                after,
                endpoint,
                node,
                ..
            } if nat == "DNAT" => f(*after.dst.ip(), endpoint, node),
            _ => {}
        }
    }
}

fn explain_load_balancer(c: &Cluster, ends: &Endpoints, hops: &mut [Hop]) {
    let Some(si) = ends.load_balancer else { return };
    let service = &c.services[si];
    let Some(lb_ip) = service.load_balancer_ip else { return };
    let Some(hop) = hops
        .iter_mut()
        .find(|h| h.place.kind == "load_balancer" && *h.packet.dst.ip() == lb_ip)
    else {
        return;
    };
    let mut notes = vec![Step::Note {
        text: format!(
            "{lb_ip} belongs to service {} (externalTrafficPolicy {}); the load balancer health-checks every node:",
            service.qualified_name(),
            service.external_traffic_policy
        ),
    }];
    let backends = lb_backends(c, service);
    let open = fails_open(&backends);
    for b in &backends {
        notes.push(Step::Note {
            text: format!(
                "  {}: {}, {}",
                c.nodes[b.node].name,
                match (b.healthy, open) {
                    (true, _) => "in rotation",
                    (false, true) => "fails its health check",
                    (false, false) => "out of rotation",
                },
                b.why
            ),
        });
    }
    if open {
        notes.push(Step::Note {
            text: "no node passes the health check, so the load balancer fails open (as an AWS Network Load Balancer does): it sends to every node, and the node's kube-proxy answers".into(),
        });
    }
    hop.steps.splice(0..0, notes);
}

fn is_internet(state: &NetState, host: usize) -> bool {
    state.hosts[host].role == Role::Internet
}

fn verdict_of(state: &NetState, end: &End) -> Verdict {
    match end {
        End::Delivered { .. } | End::Returned { .. } => Verdict::Delivered,
        End::LeftCluster => Verdict::LeftCluster,
        End::NoRoute { .. } => Verdict::NoRoute,
        // The internet's blackholes for private ranges mean: nobody out there routes them.
        End::Route { host, .. } if is_internet(state, *host) => Verdict::NoRoute,
        End::Route { kind, .. } => match kind {
            RouteType::Unreachable => Verdict::Unreachable,
            RouteType::Prohibit => Verdict::Prohibited,
            _ => Verdict::Blackhole,
        },
        End::NoNeighbor { .. } => Verdict::NoNeighbor,
        End::NoListener { .. } => Verdict::NoListener,
        End::HairpinRefused { .. } => Verdict::DroppedByBridge,
        End::Dropped { rule, host } => verdict_for_rule(rule)
            .or_else(|| kube_router::verdict_for_rule(rule))
            .or_else(|| nft_verdict(state, *host, rule))
            .unwrap_or(Verdict::Filtered),
        End::Rejected { rule, host } => verdict_for_rule(rule)
            .or_else(|| kube_router::verdict_for_rule(rule))
            .or_else(|| nft_verdict(state, *host, rule))
            .unwrap_or(Verdict::Rejected),
        End::TtlExceeded { .. } => Verdict::Loop,
        End::Stray { .. } => Verdict::ReplyLost,
        End::NotForwarding { .. } | End::MartianSource { .. } => Verdict::NoRoute,
    }
}

/// What a drop or reject by a host's nftables table means, when kube-proxy's table decided it.
fn nft_verdict(state: &NetState, host: usize, rule: &str) -> Option<Verdict> {
    let table = state.hosts[host].nftables.as_ref()?;
    crate::compile::kube_proxy::nftables::verdict_for(table, rule)
}

fn describe(state: &NetState, end: &End) -> String {
    let name = |host: usize| match &state.hosts[host].role {
        Role::Pod { namespace, name, .. } => format!("pod {namespace}/{name}"),
        Role::Node { name } => format!("node {name}"),
        Role::Router => "the cloud router".to_owned(),
        Role::LoadBalancer => "the cloud load balancer".to_owned(),
        Role::Internet => "the internet gateway".to_owned(),
    };
    match end {
        End::Delivered { owner, .. } => format!("delivered to {owner}"),
        End::Returned { tuple } => format!("the reply came back from {}", tuple.src_text()),
        End::LeftCluster => "the packet left the cloud for the internet".into(),
        End::NoRoute { host } => format!("{} has no route for the destination", name(*host)),
        End::Route { host, route, .. } if is_internet(state, *host) => format!(
            "{} matched `{route}`: private addresses are not routed on the internet; pod addresses and ClusterIPs mean something only inside the cluster",
            name(*host)
        ),
        End::Route { host, route, .. } => format!("{} matched `{route}`", name(*host)),
        End::NoNeighbor { host, next_hop } => {
            format!("{} finds no host answering for next hop {next_hop}", name(*host))
        }
        End::NoListener { host, tuple } => format!(
            "{} has no socket listening on {}/{}",
            name(*host),
            tuple.dst.port(),
            tuple.protocol
        ),
        End::HairpinRefused { host, port } => format!(
            "{}'s bridge would have to send the frame back out of {port}, the port it came in on, and hairpin mode is off",
            name(*host)
        ),
        End::Dropped { host, rule } => format!("{} dropped it: {rule}", name(*host)),
        End::Rejected { host, rule } => format!("{} rejected it: {rule}", name(*host)),
        End::TtlExceeded { host } => format!(
            "the routes form a loop through {}; the TTL runs out on the way round",
            name(*host)
        ),
        End::NotForwarding { host } => format!(
            "{} has a route, but does not forward packets (net.ipv4.ip_forward is 0)",
            name(*host)
        ),
        End::MartianSource { host } => format!(
            "the packet came back to {}, which drops it: its source is one of the host's own addresses, which never arrives from outside (a martian source; accept_local is 0)",
            name(*host)
        ),
        End::Stray { host, tuple } => format!("the reply reached {} instead of the client ({tuple})", name(*host)),
    }
}
