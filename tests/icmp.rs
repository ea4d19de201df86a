//! `--protocol icmp`: an echo request and its reply, as `ping` sends them, on the demo cluster.

use k8snet::compile::compile;
use k8snet::input::{self, Source};
use k8snet::net::Protocol;
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::{Step, Trace, Verdict};

fn demo_trace(from: &str, to: &str, protocol: Option<Protocol>) -> Result<Trace, String> {
    trace_in(include_str!("../scenarios/demo.yaml"), from, to, protocol)
}

fn trace_in(text: &str, from: &str, to: &str, protocol: Option<Protocol>) -> Result<Trace, String> {
    let source = Source {
        name: "demo".into(),
        text: text.into(),
    };
    let (spec, _) = input::parse(&source).expect("the demo parses");
    let cluster = k8snet::model::build(&spec).expect("the demo is valid").cluster;
    let state = compile(&cluster);
    let q = Query {
        protocol,
        ..Query::new(from, to)
    };
    k8snet::tracer::trace(&cluster, &state, &q, BranchChoice::default())
}

fn nats(t: &Trace) -> Vec<String> {
    t.hops
        .iter()
        .chain(t.reply.iter().flat_map(|r| &r.hops))
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            Step::Nat { nat, .. } => Some(nat.clone()),
            _ => None,
        })
        .collect()
}

/// pod-a declares no container port: a TCP trace needs one, a ping does not, since the kernel
/// answers the echo itself.
#[test]
fn the_kernel_answers_a_ping_to_a_pod_without_ports() {
    assert!(demo_trace("web-1", "pod/pod-a", None).is_err());
    let t = demo_trace("web-1", "pod/pod-a", Some(Protocol::Icmp)).expect("a ping needs no port");
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
    let d = t.delivered_to.expect("delivered");
    assert_eq!((d.pod.as_deref(), d.port), (Some("pod-a"), None));
}

#[test]
fn a_ping_across_nodes_comes_back_with_the_same_identifier() {
    let t = demo_trace("pod-a", "pod/web-1", Some(Protocol::Icmp)).unwrap();
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
    let sent = t.hops[0].packet;
    assert_eq!(
        sent.src.port(),
        sent.dst.port(),
        "the identifier stands in both port positions"
    );
    let seen = t.reply.as_ref().expect("a reply").seen_by_client.expect("seen");
    assert_eq!(seen, sent.reversed());
    assert!(nats(&t).is_empty());
}

/// kube-proxy's rules all name a port's protocol: an echo to a ClusterIP is never translated
/// and leaves by the default route with the ClusterIP still its destination.
#[test]
fn a_ping_to_a_cluster_ip_is_not_translated_and_dies_on_the_way_out() {
    let t = demo_trace("pod-a", "svc/web", Some(Protocol::Icmp)).unwrap();
    assert!(!t.verdict.is_success(), "{:?}", t.verdict);
    assert!(nats(&t).is_empty(), "{:?}", nats(&t));
    let cluster_ip = *t.hops[0].packet.dst.ip();
    assert!(t.hops.iter().all(|h| *h.packet.dst.ip() == cluster_ip));
    assert_eq!(t.hops.last().unwrap().place.kind, "internet");
    assert!(
        t.notes.iter().any(|n| n.contains("ICMP echo matches none")),
        "{:?}",
        t.notes
    );
    let tcp = demo_trace("pod-a", "svc/web", None).unwrap();
    assert_eq!(tcp.verdict, Verdict::Delivered);
}

/// Where only the pod network is exempt from masquerade, an echo to another node's address is
/// masqueraded like any traffic leaving the pod network, and conntrack undoes it on the echo
/// reply. (By ip-masq-agent's defaults, which exempt all of 10.0.0.0/8, it is not masqueraded.)
#[test]
fn a_masqueraded_ping_is_un_snatted_on_its_reply() {
    let demo = include_str!("../scenarios/demo.yaml");
    let from = "  kubeProxy: iptables\n";
    assert!(demo.contains(from));
    let pods_only = demo.replacen(from, "  kubeProxy: iptables\n  nonMasqueradeCIDRs: [10.0.0.0/14]\n", 1);
    let default = demo_trace("pod-a", "node/node-2", Some(Protocol::Icmp)).unwrap();
    assert!(nats(&default).is_empty(), "{:?}", nats(&default));
    let t = trace_in(&pods_only, "pod-a", "node/node-2", Some(Protocol::Icmp)).unwrap();
    assert_eq!(t.verdict, Verdict::Delivered, "{}", t.reason);
    assert_eq!(nats(&t), ["MASQUERADE", "un-SNAT"]);
    let conntrack = t
        .reply
        .as_ref()
        .unwrap()
        .hops
        .iter()
        .flat_map(|h| &h.steps)
        .find_map(|s| match s {
            Step::Nat { conntrack, .. } => conntrack.clone(),
            _ => None,
        })
        .expect("the un-SNAT names its entry");
    assert!(conntrack.starts_with("icmp src=10.0.1.2 "), "{conntrack}");
    assert!(conntrack.contains("type=8 code=0 id=40000") && conntrack.contains("type=0 code=0 id=40000"));
    assert_eq!(t.reply.unwrap().seen_by_client, Some(t.hops[0].packet.reversed()));
}

#[test]
fn a_ping_takes_no_port() {
    let source = Source {
        name: "demo".into(),
        text: include_str!("../scenarios/demo.yaml").into(),
    };
    let (spec, _) = input::parse(&source).unwrap();
    let cluster = k8snet::model::build(&spec).unwrap().cluster;
    let state = compile(&cluster);
    let q = Query {
        port: Some(80),
        protocol: Some(Protocol::Icmp),
        ..Query::new("pod-a", "svc/web")
    };
    let err = k8snet::tracer::trace(&cluster, &state, &q, BranchChoice::default()).unwrap_err();
    assert!(err.contains("no port"), "{err}");
}

#[test]
fn the_schema_knows_the_icmp_tuple_from_the_port_one() {
    let text = std::fs::read_to_string("docs/trace.schema.json").unwrap();
    let schema: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tuple = serde_json::json!({"$defs": schema["$defs"], "$ref": "#/$defs/tuple"});
    let v = jsonschema::validator_for(&tuple).unwrap();
    let t = demo_trace("pod-a", "pod/web-1", Some(Protocol::Icmp)).unwrap();
    let packet = serde_json::to_value(t.hops[0].packet).unwrap();
    assert!(v.is_valid(&packet), "{packet}");
    let mut with_port = packet.clone();
    with_port["src"] = "10.0.1.2:40000".into();
    assert!(!v.is_valid(&with_port));
    let mut without_id = packet;
    without_id.as_object_mut().unwrap().remove("id");
    assert!(!v.is_valid(&without_id));
    let tcp = demo_trace("pod-a", "svc/web", None).unwrap();
    let mut tcp_packet = serde_json::to_value(tcp.hops[0].packet).unwrap();
    assert!(v.is_valid(&tcp_packet), "{tcp_packet}");
    tcp_packet["id"] = 1.into();
    assert!(!v.is_valid(&tcp_packet));
}
