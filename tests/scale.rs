//! A generated cluster of moderate size, traced in-process: each trace's verdict, the endpoint
//! it reaches and every hop are checked against where the generator put each node, pod and
//! address (its layout, `generate::Plan`), not against a file written by an earlier run.
//!
//! 300 nodes (9,000 pods, 600 Services) is what a debug build loads, compiles and traces in
//! a few seconds. `K8SNET_SCALE_NODES` sets another size.

use std::net::{Ipv4Addr, SocketAddrV4};

use k8snet::compile;
use k8snet::generate::{self, CONTAINER_PORT, Case, Options, Plan, PodAt, SERVICE_PORT};
use k8snet::input::{self, Source};
use k8snet::model::Cluster;
use k8snet::net::NetState;
use k8snet::resolve::Query;
use k8snet::sim::netfilter::BranchChoice;
use k8snet::trace::{Hop, Step, Trace, Verdict};
use k8snet::tracer;

/// The client's source port in every trace (docs/trace.md).
const CLIENT_PORT: u16 = 40000;

fn nodes() -> u32 {
    std::env::var("K8SNET_SCALE_NODES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(300)
}

struct Loaded {
    plan: Plan,
    cluster: Cluster,
    state: NetState,
}

fn load() -> Loaded {
    let plan = Plan::new(Options {
        nodes: nodes(),
        ..Options::default()
    })
    .expect("a valid plan");
    let source = Source {
        name: "generated.yaml".into(),
        text: generate::scenario(&plan, generate::Format::Yaml),
    };
    let (spec, problems) = input::parse(&source).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(problems.is_empty(), "{problems:?}");
    let cluster = k8snet::model::build(&spec).unwrap_or_else(|d| panic!("{d:?}")).cluster;
    let state = compile::compile(&cluster);
    Loaded { plan, cluster, state }
}

fn trace(l: &Loaded, from: PodAt, to: &str, endpoint: Option<Ipv4Addr>, choice: BranchChoice) -> Trace {
    let from = l.plan.pod_name(from);
    let q = Query {
        endpoint,
        ..Query::new(&from, to)
    };
    tracer::trace(&l.cluster, &l.state, &q, choice).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"))
}

fn routes(hop: &Hop) -> Vec<&str> {
    hop.steps
        .iter()
        .filter_map(|s| match s {
            Step::Route { matched, .. } => matched.as_deref(),
            _ => None,
        })
        .collect()
}

fn socket(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

/// The way kubenet takes a packet from a pod on one node to a pod on another: out of the pod,
/// through its node, the cloud router's route for the other node's podCIDR, that node's
/// bridge, into the pod. `dialled` is where the client sent it (a ClusterIP, or the pod).
fn assert_crosses_nodes(l: &Loaded, t: &Trace, from: PodAt, to: PodAt, dialled: SocketAddrV4) {
    let p = &l.plan;
    let what = format!("{} -> {}", t.from, t.to);
    assert_eq!(t.verdict, Verdict::Delivered, "{what}: {}", t.reason);
    let delivered = t.delivered_to.as_ref().expect("delivered somewhere");
    assert_eq!(delivered.pod.as_deref(), Some(p.pod_name(to).as_str()), "{what}");
    assert_eq!(delivered.ip, p.pod_ip(to), "{what}");
    assert_eq!(delivered.port, Some(CONTAINER_PORT), "{what}");

    let places: Vec<(&str, &str, Option<&str>)> = t
        .hops
        .iter()
        .map(|h| (h.place.kind.as_str(), h.place.name.as_str(), h.place.node.as_deref()))
        .collect();
    let (client_node, server_node) = (p.node_name(from.node), p.node_name(to.node));
    let (client_pod, server_pod) = (
        format!("default/{}", p.pod_name(from)),
        format!("default/{}", p.pod_name(to)),
    );
    assert_eq!(
        places,
        [
            ("pod", client_pod.as_str(), Some(client_node.as_str())),
            ("node", client_node.as_str(), Some(client_node.as_str())),
            ("router", "cloud router", None),
            ("node", server_node.as_str(), Some(server_node.as_str())),
            ("pod", server_pod.as_str(), Some(server_node.as_str())),
        ],
        "{what}"
    );

    let client = socket(p.pod_ip(from), CLIENT_PORT);
    let server = socket(p.pod_ip(to), CONTAINER_PORT);
    assert_eq!(
        (t.hops[0].packet.src, t.hops[0].packet.dst),
        (client, dialled),
        "{what}"
    );
    for hop in &t.hops[2..] {
        assert_eq!(
            (hop.packet.src, hop.packet.dst),
            (client, server),
            "{what}: no masquerade inside the pod network"
        );
    }
    assert_eq!(
        routes(&t.hops[0]),
        [format!("default via {} dev eth0", p.bridge_ip(from.node))],
        "{what}"
    );
    assert_eq!(
        routes(&t.hops[1]),
        [format!("default via {} dev eth0", generate::GATEWAY)],
        "{what}"
    );
    let cloud_route = format!("{} via {} dev eth0", p.pod_cidr(to.node), p.node_ip(to.node));
    assert!(
        routes(&t.hops[2]).iter().all(|r| r.starts_with(&cloud_route)),
        "{what}: the router's route to {server_node} is {:?}",
        routes(&t.hops[2])
    );
    assert!(
        routes(&t.hops[3])
            .iter()
            .all(|r| r.starts_with(&format!("{} dev cbr0", p.pod_cidr(to.node)))),
        "{what}: {:?}",
        routes(&t.hops[3])
    );

    let reply = t.reply.as_ref().expect("a reply");
    let seen = reply.seen_by_client.expect("the reply reached the client");
    assert_eq!(
        (seen.src, seen.dst),
        (dialled, client),
        "{what}: the reply comes from the address dialled"
    );
    let back: Vec<&str> = reply.hops.iter().map(|h| h.place.name.as_str()).collect();
    let mut there: Vec<&str> = t.hops.iter().map(|h| h.place.name.as_str()).collect();
    there.reverse();
    assert_eq!(back, there, "{what}: the reply takes the same way back");
}

/// The endpoints of a Service in kube-proxy's order: by `ip:port` as text.
fn kube_proxy_order(p: &Plan, service: u32) -> Vec<PodAt> {
    let mut e: Vec<PodAt> = p.endpoints(service).collect();
    e.sort_by_key(|pod| format!("{}:{CONTAINER_PORT}", p.pod_ip(*pod)));
    e
}

fn lb_branches(t: &Trace) -> usize {
    t.hops
        .iter()
        .flat_map(|h| &h.steps)
        .find_map(|s| match s {
            Step::LoadBalance { branches, .. } => Some(branches.len()),
            _ => None,
        })
        .expect("a load-balancing decision")
}

/// A pod on a node none of the given pods is on, chosen away from the first node.
fn client_away_from(p: &Plan, avoid: &[PodAt]) -> PodAt {
    let n = p.options().nodes;
    (0..n)
        .map(|k| (n / 2 + k) % n)
        .find(|node| avoid.iter().all(|a| a.node != *node))
        .map(|node| PodAt { node, index: 3 })
        .expect("a node without those pods")
}

#[test]
fn traces_across_a_generated_cluster_reach_what_the_generator_put_there() {
    let started = std::time::Instant::now();
    let l = load();
    let p = &l.plan;
    let loaded_in = started.elapsed();
    let services = p.services();
    let dialled = |s: u32| socket(p.cluster_ip(s), SERVICE_PORT);

    for s in [0, services / 2, services - 1] {
        let order = kube_proxy_order(p, s);
        assert_eq!(order[0], p.first_endpoint(s).unwrap());
        let to = format!("svc/{}", p.service_name(s));

        // No choice given: the first branch, the first endpoint in kube-proxy's order.
        let from = client_away_from(p, &order[..1]);
        let t = trace(&l, from, &to, None, BranchChoice::default());
        assert_eq!(lb_branches(&t), order.len(), "one branch per endpoint of {to}");
        assert_crosses_nodes(&l, &t, from, order[0], dialled(s));

        // --endpoint: the last endpoint, from a node without it.
        let last = *order.last().unwrap();
        let from = client_away_from(p, &[last]);
        let ip = p.pod_ip(last);
        let t = trace(&l, from, &to, Some(ip), BranchChoice::pinned(vec![ip]));
        assert_crosses_nodes(&l, &t, from, last, dialled(s));

        // A branch by its place, as --all-endpoints walks them: the second in kube-proxy's order.
        let from = client_away_from(p, &order[1..2]);
        let first = trace(&l, from, &to, None, BranchChoice::default());
        let (decision, branches) = tracer::endpoint_decision(&first).expect("an endpoint decision");
        assert_eq!(branches, order.len());
        let choice = BranchChoice {
            nth: Some((decision, 1)),
            ..BranchChoice::default()
        };
        let t = trace(&l, from, &to, None, choice);
        assert_crosses_nodes(&l, &t, from, order[1], dialled(s));
    }

    // Pod to pod, corner to corner, and the generator's own cases.
    let last = PodAt {
        node: p.options().nodes - 1,
        index: p.options().pods_per_node - 1,
    };
    let first = PodAt { node: 0, index: 0 };
    let t = trace(
        &l,
        first,
        &format!("pod/{}", p.pod_name(last)),
        None,
        BranchChoice::default(),
    );
    assert_crosses_nodes(&l, &t, first, last, socket(p.pod_ip(last), CONTAINER_PORT));
    for case in p.cases(12) {
        match case {
            Case::ToService { from, service } => {
                let t = trace(
                    &l,
                    from,
                    &format!("svc/{}", p.service_name(service)),
                    None,
                    BranchChoice::default(),
                );
                assert_crosses_nodes(&l, &t, from, p.first_endpoint(service).unwrap(), dialled(service));
            }
            Case::ToPod { from, to } => {
                let t = trace(
                    &l,
                    from,
                    &format!("pod/{}", p.pod_name(to)),
                    None,
                    BranchChoice::default(),
                );
                assert_crosses_nodes(&l, &t, from, to, socket(p.pod_ip(to), CONTAINER_PORT));
            }
        }
    }
    eprintln!(
        "{} nodes, {} pods, {} Services: loaded and compiled in {loaded_in:.1?}, all traced in {:.1?}",
        p.options().nodes,
        l.cluster.pods.len(),
        services,
        started.elapsed()
    );
}
