//! Simulator behaviours the kernel differential tests (tests/kernel.rs) found wrong, each pinned
//! by a test named after what the kernel does. They run everywhere, without root.

use k8snet::compile::compile;
use k8snet::input::{self, Source};
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::{Step, Trace, Verdict};

/// Traces `from` to `to` in a scenario's text, following the branch to `endpoint` if given.
fn trace_in(text: &str, from: &str, to: &str, endpoint: Option<&str>) -> Trace {
    let source = Source {
        name: "scenario".into(),
        text: text.into(),
    };
    let (spec, diags) = input::parse(&source).expect("the scenario parses");
    assert!(diags.is_empty(), "{diags:?}");
    let cluster = k8snet::model::build(&spec).expect("the scenario is valid").cluster;
    let state = compile(&cluster);
    let choice = match endpoint {
        Some(pod) => BranchChoice::pinned(vec![
            cluster.pods[cluster.pod_named("default", pod).expect("the endpoint exists")].ip,
        ]),
        None => BranchChoice::default(),
    };
    let q = Query::new(from, to);
    k8snet::tracer::trace(&cluster, &state, &q, choice).expect("the trace resolves")
}

/// The demo with one line of its cluster block changed.
fn demo_trace(cluster_setting: &str, from: &str, endpoint: &str) -> Trace {
    let demo = include_str!("../scenarios/demo.yaml");
    let marker = "  kubeProxy: iptables\n";
    assert!(demo.contains(marker));
    let text = demo.replacen(marker, &format!("{marker}{cluster_setting}\n"), 1);
    trace_in(&text, from, "svc/web", Some(endpoint))
}

const DATAPATH: &str = include_str!("../scenarios/datapath.yaml");

fn tables_walked(t: &Trace) -> Vec<(String, String)> {
    t.hops
        .iter()
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            Step::Netfilter { hook, table, .. } => Some((hook.clone(), table.clone())),
            _ => None,
        })
        .collect()
}

/// A promiscuous bridge receives every frame, but the kernel still sends none back out of the
/// port it came in on: a pod reaching itself through its Service needs hairpin mode.
#[test]
fn a_promiscuous_bridge_does_not_hairpin() {
    let t = demo_trace("  hairpinMode: promiscuous-bridge", "web-2", "web-2");
    assert_eq!(t.verdict, Verdict::DroppedByBridge, "{}", t.reason);
    let t = demo_trace("  hairpinMode: hairpin-veth", "web-2", "web-2");
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
}

/// The bridge picks the outgoing port before its FORWARD and POSTROUTING hooks run, so a frame
/// it may not send back where it came from meets neither: no MASQUERADE, and no conntrack
/// entry (the kernel discards a connection that was never confirmed).
#[test]
fn a_frame_refused_for_hairpin_meets_no_forward_or_postrouting_hook() {
    let t = demo_trace("  hairpinMode: none", "web-2", "web-2");
    assert_eq!(t.verdict, Verdict::DroppedByBridge, "{}", t.reason);
    let node = t.hops.last().expect("a hop");
    assert_eq!(node.place.kind, "node");
    for step in &node.steps {
        match step {
            Step::Netfilter { hook, .. } => assert_eq!(hook, "PREROUTING", "{step:?}"),
            Step::Nat { nat, .. } => assert_eq!(nat, "DNAT", "{step:?}"),
            Step::Note { text } => assert!(!text.starts_with("conntrack remembers"), "{text}"),
            _ => {}
        }
    }
}

/// A route that refuses fails the sending socket's own lookup, before any netfilter hook; and
/// after a DNAT in nat OUTPUT the kernel routes again at once, so a packet the new route
/// refuses never meets filter OUTPUT. (node-3 blackholes node-1's podCIDR, where echo-1 is.)
#[test]
fn a_route_that_refuses_stops_a_sent_packet_before_filter_output() {
    let direct = trace_in(DATAPATH, "node/node-3", "pod/echo-1", None);
    assert_eq!(direct.verdict, Verdict::Blackhole, "{}", direct.reason);
    assert_eq!(tables_walked(&direct), vec![], "no hook runs for a packet never built");
    let through = trace_in(DATAPATH, "node/node-3", "svc/echo", Some("echo-1"));
    assert_eq!(through.verdict, Verdict::Blackhole, "{}", through.reason);
    let walked = tables_walked(&through);
    assert!(walked.contains(&("OUTPUT".into(), "nat".into())), "{walked:?}");
    assert!(!walked.iter().any(|(_, table)| table == "filter"), "{walked:?}");
}

/// A packet a host sends to one of its own addresses leaves through POSTROUTING before it
/// comes back in through the loopback device (metrics-agent runs in node-4's host network).
#[test]
fn a_packet_for_a_local_address_passes_postrouting() {
    let t = trace_in(DATAPATH, "node/node-4", "node/node-4:9100", None);
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
    let walked = tables_walked(&t);
    let post = walked.iter().position(|w| w.0 == "POSTROUTING");
    let input = walked.iter().position(|w| w.0 == "INPUT");
    assert!(post.is_some() && input.is_some() && post < input, "{walked:?}");
}

/// A pod sending to an address of its own subnet that nobody holds asks for it with ARP across
/// its node's bridge; nobody answers, so the packet never leaves the pod.
#[test]
fn an_unanswered_neighbour_on_the_pod_subnet_stops_the_packet_in_the_pod() {
    let t = trace_in(DATAPATH, "client-2", "10.244.2.200:80", None);
    assert_eq!(t.verdict, Verdict::NoNeighbor, "{}", t.reason);
    assert_eq!(t.hops.len(), 1, "the packet stays in the pod: {:?}", t.hops);
    assert_eq!(t.hops[0].place.kind, "pod");
}

/// A route whose gateway is the node's own address sends the packet onto the node network,
/// where nobody else answers ARP for that address: it does not come back to the node.
#[test]
fn a_gateway_that_is_the_senders_own_address_is_no_neighbour() {
    let text = DATAPATH.replacen(
        "      - {destination: 10.99.0.0/16, via: 172.20.0.14}",
        "      - {destination: 10.99.0.0/16, via: 172.20.0.13}",
        1,
    );
    assert_ne!(text, DATAPATH);
    let t = trace_in(&text, "client-3", "10.99.1.1:80", None);
    assert_eq!(t.verdict, Verdict::NoNeighbor, "{}", t.reason);
}

/// A promiscuous bridge that sends a frame back out after a DNAT also passes a copy up to the
/// node, which routes it (the kernel's walk shows the copy in FORWARD); the trace says so.
#[test]
fn a_promiscuous_bridge_passes_a_copy_of_a_bridged_dnat_frame_up() {
    let copy = |t: &Trace| {
        t.hops
            .iter()
            .flat_map(|h| &h.steps)
            .any(|s| matches!(s, Step::Note { text } if text.contains("passes a copy of the frame up")))
    };
    let t = demo_trace("  hairpinMode: promiscuous-bridge", "pod-a", "web-2");
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
    assert!(copy(&t));
    assert!(copy(&demo_trace("  hairpinMode: promiscuous-bridge", "web-2", "web-2")));
    assert!(!copy(&demo_trace("  hairpinMode: hairpin-veth", "pod-a", "web-2")));
}

/// A node's own packet to an externalIP that has no endpoints is not rejected on its way out
/// (KUBE-EXTERNAL-SERVICES sits on INPUT and FORWARD only); the network routes the address back
/// to the node, and the kernel drops a packet that arrives from outside with one of its own
/// addresses as the source (a martian), walking no rule: the client times out.
#[test]
fn a_packet_that_comes_back_with_the_hosts_own_source_is_dropped_as_a_martian() {
    let text = include_str!("../scenarios/external-ips.yaml");
    let t = trace_in(text, "node/node-1", "203.0.113.70:80", None);
    assert_eq!(t.verdict, Verdict::NoRoute, "{}", t.reason);
    assert!(t.reason.contains("martian"), "{}", t.reason);
    let last = t.hops.last().expect("hops");
    assert!(
        !last.steps.iter().any(|s| matches!(s, Step::Netfilter { .. })),
        "no rule is walked on the way back in: {:?}",
        last.steps
    );
    // From a pod the same packet is rejected on its node, which forwards it.
    let t = trace_in(text, "client-1", "203.0.113.70:80", None);
    assert_eq!(t.verdict, Verdict::NoEndpoints, "{}", t.reason);
}
