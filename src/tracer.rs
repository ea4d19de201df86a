//! A trace request from start to verdict: resolve the names, simulate the packet and its reply,
//! and say in Kubernetes terms what the Linux-level outcome means.

use crate::compile::kube_proxy::verdict_for_rule;
use crate::model::Cluster;
use crate::net::NetState;
use crate::net::route::RouteType;
use crate::resolve::{self, Endpoints};
use crate::sim::netfilter::BranchChoice;
use crate::sim::{End, Simulator, client_tuple};
use crate::trace::{DeliveredTo, Reply, Step, Trace, Verdict};

pub fn trace(c: &Cluster, state: &NetState, q: &resolve::Query<'_>, choice: BranchChoice) -> Result<Trace, String> {
    let ends = resolve::resolve(c, state, q)?;
    Ok(run(c, state, q, &ends, choice))
}

/// How many ways the first load-balancing decision of this trace can go (1 if none).
pub fn branch_count(t: &Trace) -> usize {
    t.hops
        .iter()
        .flat_map(|h| &h.steps)
        .find_map(|s| match s {
            Step::LoadBalance { branches, .. } => Some(branches.len()),
            _ => None,
        })
        .unwrap_or(1)
}

fn run(c: &Cluster, state: &NetState, q: &resolve::Query<'_>, ends: &Endpoints, choice: BranchChoice) -> Trace {
    let mut sim = Simulator::new(state, choice);
    let sent = client_tuple(ends.protocol, ends.src_ip, ends.dst);
    let journey = sim.request(ends.src_host, sent);
    let mut trace = Trace {
        from: q.from.to_owned(),
        to: q.to.to_owned(),
        notes: ends.notes.clone(),
        verdict: Verdict::Delivered,
        reason: String::new(),
        delivered_to: None,
        hops: journey.hops,
        reply: None,
    };
    let name = |host: usize| {
        let h = &state.hosts[host];
        match &h.role {
            crate::net::Role::Pod { namespace, name, .. } => format!("pod {namespace}/{name}"),
            crate::net::Role::Node { name } => format!("node {name}"),
            crate::net::Role::Router => "the cloud router".to_owned(),
            crate::net::Role::Internet => "the internet gateway".to_owned(),
        }
    };
    let (verdict, reason) = match journey.end {
        End::Delivered { host, tuple, owner } => {
            let pod = resolve::pod_at(c, state, host, tuple.dst.port()).map(|i| &c.pods[i]);
            trace.delivered_to = Some(DeliveredTo {
                pod: pod.map(|p| p.name.clone()),
                namespace: pod.map(|p| p.namespace.clone()),
                ip: *tuple.dst.ip(),
                port: tuple.dst.port(),
                listener: owner.clone(),
            });
            let back = sim.reply(host, tuple, ends.src_host);
            let (verdict, reason, seen) = match back.end {
                End::Returned { tuple: seen } if seen == sent.reversed() => (
                    Verdict::Delivered,
                    format!(
                        "{owner} answered, and the reply reached {} from {}, the address it dialled",
                        ends.client, seen.src
                    ),
                    Some(seen),
                ),
                End::Returned { tuple: seen } => (
                    Verdict::ReplyLost,
                    format!(
                        "the reply reaches {} from {}, but it dialled {}: the socket does not take it as an answer",
                        ends.client, seen.src, sent.dst
                    ),
                    Some(seen),
                ),
                other => (
                    Verdict::ReplyLost,
                    format!("the reply never got back: {}", describe(&other, &name)),
                    None,
                ),
            };
            trace.reply = Some(Reply {
                seen_by_client: seen,
                hops: back.hops,
            });
            (verdict, reason)
        }
        other => (verdict_of(&other), describe(&other, &name)),
    };
    trace.verdict = verdict;
    trace.reason = reason;
    trace
}

fn verdict_of(end: &End) -> Verdict {
    match end {
        End::Delivered { .. } | End::Returned { .. } => Verdict::Delivered,
        End::LeftCluster => Verdict::LeftCluster,
        End::NoRoute { .. } => Verdict::NoRoute,
        End::Route { kind, .. } => match kind {
            RouteType::Unreachable => Verdict::Unreachable,
            RouteType::Prohibit => Verdict::Prohibited,
            _ => Verdict::Blackhole,
        },
        End::NoNeighbor { .. } => Verdict::NoNeighbor,
        End::NoListener { .. } => Verdict::NoListener,
        End::HairpinRefused { .. } => Verdict::DroppedByBridge,
        End::Dropped { rule, .. } => verdict_for_rule(rule).unwrap_or(Verdict::Filtered),
        End::Rejected { rule, .. } => verdict_for_rule(rule).unwrap_or(Verdict::Rejected),
        End::TtlExceeded { .. } => Verdict::Loop,
        End::Stray { .. } => Verdict::ReplyLost,
        End::NotForwarding { .. } => Verdict::NoRoute,
    }
}

fn describe(end: &End, name: &dyn Fn(usize) -> String) -> String {
    match end {
        End::Delivered { owner, .. } => format!("delivered to {owner}"),
        End::Returned { tuple } => format!("the reply came back from {}", tuple.src),
        End::LeftCluster => "the packet left through the cloud router towards the internet".into(),
        End::NoRoute { host } => format!("{} has no route for the destination", name(*host)),
        End::Route { host, route, .. } => format!("{} matched `{route}`", name(*host)),
        End::NoNeighbor { host, next_hop } => {
            format!("{} finds no host answering for next hop {next_hop}", name(*host))
        }
        End::NoListener { host, tuple } => format!(
            "{} has no socket listening on {}/{}; the client gets a reset",
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
        End::Stray { host, tuple } => format!("the reply reached {} instead of the client ({tuple})", name(*host)),
    }
}
