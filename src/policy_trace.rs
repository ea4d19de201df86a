//! The NetworkPolicy step of a trace, in Kubernetes words.
//!
//! Where kube-router enforces policies, the simulator has walked its chains like any others;
//! this reads that walk back (a jump into a pod's `KUBE-POD-FW-` chain names the pod and the
//! direction, a mark set in a `KUBE-NWPLCY-` chain names the rule that allowed) and adds one
//! `policy` step after it. Where nothing enforces them, it says which policies select the pods
//! the packet reached, and what they would have decided.

use std::net::Ipv4Addr;

use crate::compile::kube_router::{COMMON, DEFAULT, POD_CHAIN_PREFIX, POLICY_CHAIN_PREFIX, TAIL};
use crate::model::Cluster;
use crate::model::policy::{Decision, Direction, Enforcer, Remote};
use crate::trace::{Hop, Step, Trace, Tuple, Verdict};

pub fn annotate(c: &Cluster, trace: &mut Trace) {
    if c.policies.is_empty() {
        return;
    }
    match c.network_policy {
        Enforcer::KubeRouter => read_walk(c, trace),
        other => unenforced(c, trace, other),
    }
}

/// What a pod's firewall chain did with the packet.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Established,
    Icmp,
    FromNode,
    NotIsolated,
    /// The pod's chain let the packet through by its default rule for the other direction: a
    /// packet from the pod to itself matches both.
    OtherDefault,
    Allowed(String),
    Denied,
}

fn comment_of(rule: &str) -> Option<&str> {
    let start = rule.find("--comment \"")? + "--comment \"".len();
    let end = rule[start..].find('"')?;
    Some(&rule[start..start + end])
}

/// A jump into a pod's chain: the pod and the direction its comment names.
fn pod_jump(step: &Step) -> Option<(String, Direction)> {
    let Step::Netfilter {
        rule: Some(rule),
        action,
        ..
    } = step
    else {
        return None;
    };
    if !action.starts_with(&format!("jump to {POD_CHAIN_PREFIX}")) {
        return None;
    }
    let text = comment_of(rule)?;
    if let Some(pod) = text.strip_suffix(" in") {
        Some((pod.to_owned(), Direction::Ingress))
    } else {
        text.strip_suffix(" out").map(|pod| (pod.to_owned(), Direction::Egress))
    }
}

fn in_pod_chains(step: &Step) -> bool {
    matches!(step, Step::Netfilter { chain, .. } if chain.starts_with(POD_CHAIN_PREFIX) || chain.starts_with(POLICY_CHAIN_PREFIX))
}

fn classify(step: &Step, direction: Direction, outcome: &mut Option<Outcome>) {
    let Step::Netfilter {
        chain, rule, action, ..
    } = step
    else {
        return;
    };
    let rule = rule.as_deref().unwrap_or_default();
    if action.starts_with("reject") || action == "drop" {
        *outcome = Some(Outcome::Denied);
    } else if chain == COMMON && action == "accept" {
        *outcome = Some(if rule.contains("-p icmp") {
            Outcome::Icmp
        } else {
            Outcome::Established
        });
    } else if action == "accept" && rule.contains("\"from local node\"") {
        *outcome = Some(Outcome::FromNode);
    } else if action == &format!("jump to {DEFAULT}") {
        let own = rule.contains(&format!("\"default {}\"", direction.name()));
        if outcome.is_none() || (own && *outcome == Some(Outcome::OtherDefault)) {
            *outcome = Some(if own {
                Outcome::NotIsolated
            } else {
                Outcome::OtherDefault
            });
        }
    } else if chain.starts_with(POLICY_CHAIN_PREFIX)
        && ![DEFAULT, COMMON, TAIL].contains(&chain.as_str())
        && action.starts_with("mark is now")
        && let Some(text) = comment_of(rule)
    {
        *outcome = Some(Outcome::Allowed(text.to_owned()));
    }
}

/// `default/web ingress pods (rule 0)` as `default/web ingress rule 0`.
fn rule_name(comment: &str) -> String {
    let Some((head, rest)) = comment.split_once(" (rule ") else {
        return comment.to_owned();
    };
    let index = rest.trim_end_matches(')');
    let mut words = head.split(' ');
    let policy = words.next().unwrap_or_default();
    let direction = words.next().unwrap_or_default();
    format!("{policy} {direction} rule {index}")
}

/// The policy decisions a journey met where some policy selected the pod, in words: for a
/// packet the trace does not show hop by hop, such as the resolver's DNS query.
pub fn decisions(c: &Cluster, hops: &[Hop]) -> Vec<String> {
    if c.policies.is_empty() || c.network_policy != Enforcer::KubeRouter {
        return Vec::new();
    }
    let mut t = Trace {
        from: String::new(),
        to: String::new(),
        notes: Vec::new(),
        resolution: Vec::new(),
        verdict: Verdict::Delivered,
        reason: String::new(),
        delivered_to: None,
        hops: hops.to_vec(),
        reply: None,
        hint: None,
    };
    read_walk(c, &mut t);
    t.hops
        .iter()
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            Step::Policy { verdict, summary, .. } if verdict == "allowed" || verdict == "denied" => {
                Some(summary.trim_start_matches("policy: ").to_owned())
            }
            _ => None,
        })
        .collect()
}

fn read_walk(c: &Cluster, trace: &mut Trace) {
    let mut denial: Option<String> = None;
    for hop in &mut trace.hops {
        let steps = std::mem::take(&mut hop.steps);
        let mut out = Vec::with_capacity(steps.len() + 2);
        let mut current = hop.packet;
        let mut done: Vec<(String, Direction)> = Vec::new();
        let mut i = 0;
        while i < steps.len() {
            if let Step::Nat { after, .. } = &steps[i] {
                current = *after;
            }
            out.push(steps[i].clone());
            let Some((pod, direction)) = pod_jump(&steps[i]) else {
                i += 1;
                continue;
            };
            let mut outcome = None;
            let mut j = i + 1;
            while j < steps.len() && in_pod_chains(&steps[j]) {
                classify(&steps[j], direction, &mut outcome);
                out.push(steps[j].clone());
                j += 1;
            }
            i = j;
            if done.contains(&(pod.clone(), direction)) {
                continue;
            }
            done.push((pod.clone(), direction));
            let outcome = outcome.unwrap_or(Outcome::NotIsolated);
            if outcome == Outcome::Denied {
                denial = Some(explain_denial(c, &pod, direction, current));
            }
            out.push(policy_step(c, &pod, direction, &outcome));
        }
        hop.steps = out;
    }
    if trace.verdict == Verdict::DeniedByPolicy
        && let Some(reason) = denial
    {
        trace.reason = reason;
    }
}

fn pod_index(c: &Cluster, qualified: &str) -> Option<usize> {
    let (ns, name) = qualified.split_once('/')?;
    c.pod_named(ns, name)
}

fn selecting(c: &Cluster, pod: Option<usize>, direction: Direction) -> Vec<usize> {
    pod.map(|p| {
        c.policies_selecting(p)
            .into_iter()
            .filter(|&i| c.policies[i].rules(direction).is_some())
            .collect()
    })
    .unwrap_or_default()
}

fn names(c: &Cluster, list: &[usize]) -> Vec<String> {
    list.iter().map(|&i| c.policies[i].qualified_name()).collect()
}

fn policy_step(c: &Cluster, pod: &str, direction: Direction, outcome: &Outcome) -> Step {
    let policies = names(c, &selecting(c, pod_index(c, pod), direction));
    let d = direction.name();
    let (verdict, rule, summary) = match outcome {
        Outcome::Established => (
            "established",
            None,
            format!("policy: {d} at {pod}: part of an established connection, which kube-router always accepts"),
        ),
        Outcome::Icmp => (
            "allowed",
            None,
            format!("policy: {d} at {pod}: kube-router accepts ICMP echo requests whatever the policies say"),
        ),
        Outcome::FromNode => (
            "from_node",
            None,
            format!("policy: {d} at {pod}: from the pod's own node, which is always allowed (kubelet probes)"),
        ),
        Outcome::NotIsolated => (
            "not_isolated",
            None,
            format!("policy: {d} at {pod}: no policy selects the pod for {d}, so everything is allowed"),
        ),
        Outcome::OtherDefault => (
            "allowed",
            None,
            format!(
                "policy: {d} at {pod}: the pod's chain also applies its default rule for the other direction, which marks this packet (from the pod to itself) allowed"
            ),
        ),
        Outcome::Allowed(comment) => {
            let rule = rule_name(comment);
            let summary = format!("policy: {d} at {pod} allowed by {rule}");
            ("allowed", Some(rule), summary)
        }
        Outcome::Denied => (
            "denied",
            None,
            format!(
                "policy: {d} at {pod} denied: no rule of {} allows it",
                policies.join(", ")
            ),
        ),
    };
    Step::Policy {
        direction: d.to_owned(),
        pod: pod.to_owned(),
        enforcer: c.network_policy.name().to_owned(),
        policies,
        verdict: verdict.to_owned(),
        rule,
        summary,
    }
}

/// The other end of `tuple` as seen from the pod judged in `direction`, and the port judged.
fn remote_of(c: &Cluster, direction: Direction, tuple: Tuple) -> Remote {
    let ip: Ipv4Addr = match direction {
        Direction::Ingress => *tuple.src.ip(),
        Direction::Egress => *tuple.dst.ip(),
    };
    Remote {
        ip,
        pod: c.pod_with_own_ip(ip),
    }
}

fn describe_remote(c: &Cluster, remote: Remote) -> String {
    match remote.pod {
        Some(i) => {
            let p = &c.pods[i];
            let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "pod {} ({}, labels {})",
                p.qualified_name(),
                remote.ip,
                if labels.is_empty() {
                    "none".to_owned()
                } else {
                    labels.join(",")
                }
            )
        }
        None => match c.nodes.iter().find(|n| n.ip == remote.ip) {
            Some(n) => format!(
                "{} (node {}'s address: the source was rewritten on the way)",
                remote.ip, n.name
            ),
            None => remote.ip.to_string(),
        },
    }
}

/// Why no rule allowed it, and what would have to match: the reason of a `denied_by_policy`.
fn explain_denial(c: &Cluster, pod: &str, direction: Direction, tuple: Tuple) -> String {
    let remote = remote_of(c, direction, tuple);
    let port = format!("{}/{}", tuple.dst.port(), tuple.protocol);
    let (d, peer_word, towards) = match direction {
        Direction::Ingress => ("ingress", "from", "from"),
        Direction::Egress => ("egress", "to", "to"),
    };
    let idx = pod_index(c, pod);
    let mut admits = Vec::new();
    for i in selecting(c, idx, direction) {
        let np = &c.policies[i];
        let rules = np.rules(direction).unwrap_or_default();
        if rules.is_empty() {
            admits.push(format!("{} has no {d} rules (it denies all {d})", np.qualified_name()));
        }
        for (ri, r) in rules.iter().enumerate() {
            admits.push(format!("{} {d} rule {ri} admits {}", np.qualified_name(), r.describe()));
        }
    }
    let need = match remote.pod.map(|i| &c.pods[i]) {
        Some(p) => format!(
            "a `{peer_word}` item whose podSelector matches {} (with a namespaceSelector matching namespace {} if it is not the policy's), or an ipBlock holding {}, and a port {port}",
            if p.labels.is_empty() {
                "{}".to_owned()
            } else {
                p.labels
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            },
            p.namespace,
            remote.ip
        ),
        None => format!("a `{peer_word}` ipBlock holding {} and a port {port}", remote.ip),
    };
    format!(
        "NetworkPolicy denies {d} at {pod} {towards} {} on {port}: {}; to allow it, a rule needs {need}",
        describe_remote(c, remote),
        admits.join("; ")
    )
}

/// With no enforcer modelled: the policies that select the sender and the receiver, what they
/// would decide, and that nothing applies them.
fn unenforced(c: &Cluster, trace: &mut Trace, enforcer: Enforcer) {
    let why = match enforcer {
        Enforcer::None => "nothing enforces NetworkPolicies in this cluster (networkPolicy: none)".to_owned(),
        other => format!("k8snet does not model {other}'s enforcement yet, so this trace does not apply them"),
    };
    let Some(last) = trace.hops.iter().rposition(|h| h.place.kind == "pod") else {
        return;
    };
    let seen = trace.hops[last].packet;
    let ends = [(0, Direction::Egress), (last, Direction::Ingress)];
    for (at, direction) in ends {
        let hop: &Hop = &trace.hops[at];
        if hop.place.kind != "pod" || (direction == Direction::Egress) == hop.iif.is_some() {
            continue;
        }
        let pod = hop.place.name.clone();
        let Some(pi) = pod_index(c, &pod) else { continue };
        let remote = remote_of(c, direction, seen);
        let decision: Decision = c.decide(direction, pi, remote, seen.protocol, seen.dst.port());
        if !decision.isolated() {
            continue;
        }
        let policies = names(c, &decision.selecting);
        let would = match decision.allowed_by {
            Some(r) => format!(
                "it would be allowed by {} {} rule {}",
                c.policies[r.policy].qualified_name(),
                r.direction.name(),
                r.rule
            ),
            None => format!(
                "no rule of {} allows this connection, so it would be denied",
                policies.join(", ")
            ),
        };
        let d = direction.name();
        let summary = format!(
            "policy: {} selects {pod} for {d}, but {why}; {would}",
            policies.join(", ")
        );
        trace.notes.push(format!(
            "NetworkPolicy {} selects {pod} for {d}, but {why}: {would}",
            policies.join(", ")
        ));
        trace.hops[at].steps.push(Step::Policy {
            direction: d.to_owned(),
            pod,
            enforcer: enforcer.name().to_owned(),
            policies,
            verdict: "not_enforced".to_owned(),
            rule: None,
            summary,
        });
    }
}
