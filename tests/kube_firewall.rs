//! kube-proxy's `KUBE-FIREWALL` chain: with `route_localnet` on (for NodePorts on 127.0.0.1),
//! a neighbour could send to the node's loopback; the chain drops what was not translated.

use k8snet::compile::compile;
use k8snet::input::{self, Source};
use k8snet::net::{NetState, Protocol};
use k8snet::sim::netfilter::BranchChoice;
use k8snet::sim::{End, Simulator};
use k8snet::trace::Tuple;

fn outside_in() -> NetState {
    let source = Source {
        name: "outside-in".into(),
        text: include_str!("../scenarios/outside-in.yaml").into(),
    };
    let (spec, _) = input::parse(&source).expect("the scenario parses");
    compile(&k8snet::model::build(&spec).expect("the scenario is valid").cluster)
}

/// A packet from node-2 for node-1's 127.0.0.1, as a neighbour on the node network can send it
/// (addressed to node-1's MAC address).
fn from_neighbour(state: &NetState, port: u16) -> End {
    let node = state.host_named("node-1").expect("node-1 is a host");
    let tuple = Tuple {
        protocol: Protocol::Tcp,
        src: "10.100.0.3:40000".parse().unwrap(),
        dst: format!("127.0.0.1:{port}").parse().unwrap(),
    };
    Simulator::new(state, BranchChoice::default())
        .arrive(node, "eth0", tuple)
        .end
}

#[test]
fn a_neighbour_cannot_reach_a_service_on_the_nodes_loopback() {
    let state = outside_in();
    match from_neighbour(&state, 10248) {
        End::Dropped { rule, .. } => assert!(
            rule.contains("KUBE-FIREWALL") && rule.contains("block incoming localnet connections"),
            "{rule}"
        ),
        other => panic!("expected a drop in KUBE-FIREWALL, got {other:?}"),
    }
}

#[test]
fn a_neighbour_dialling_a_localhost_node_port_is_translated_not_blocked() {
    // The NodePort rules DNAT the packet to a pod before any filter chain sees it: it is
    // forwarded, and its DNAT status would exempt it from the rule anyway.
    let state = outside_in();
    let end = from_neighbour(&state, 30080);
    assert!(
        !matches!(&end, End::Dropped { rule, .. } if rule.contains("KUBE-FIREWALL")),
        "{end:?}"
    );
}
