//! Simulator behaviours the kernel differential tests (tests/kernel.rs) found wrong, each pinned
//! by a test named after what the kernel does. They run everywhere, without root.

use k8snet::compile::compile;
use k8snet::input::{self, Source};
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::{Step, Trace, Verdict};

/// The demo with one line of its cluster block changed.
fn demo_trace(cluster_setting: &str, from: &str, endpoint: &str) -> Trace {
    let demo = include_str!("../scenarios/demo.yaml");
    let marker = "  kubeProxy: iptables\n";
    assert!(demo.contains(marker));
    let source = Source {
        name: "demo".into(),
        text: demo.replacen(marker, &format!("{marker}{cluster_setting}\n"), 1),
    };
    let (spec, diags) = input::parse(&source).expect("the demo parses");
    assert!(diags.is_empty(), "{diags:?}");
    let cluster = k8snet::model::build(&spec).expect("the demo is valid").cluster;
    let state = compile(&cluster);
    let ip = cluster.pods[cluster.pod_named("default", endpoint).expect("the endpoint exists")].ip;
    let q = Query {
        from,
        container: None,
        to: "svc/web",
        port: None,
        protocol: None,
        namespace: "default",
    };
    k8snet::tracer::trace(&cluster, &state, &q, BranchChoice::DnatTo(ip)).expect("the trace resolves")
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
