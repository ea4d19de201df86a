//! What each CNI model installs, on the datapath comparison cluster, and the simulator's tunnel
//! and shared-route mechanisms on it: each test can fail if its model installs the wrong thing.

use std::net::Ipv4Addr;

use crate::model::Cni;
use crate::net::route::{RouteType, lookup};
use crate::net::{Link, NetState};

fn compiled(file: &str) -> (crate::model::Cluster, NetState) {
    let text = std::fs::read_to_string(format!("scenarios/{file}")).unwrap();
    let source = crate::input::Source {
        name: file.into(),
        text,
    };
    let (spec, _) = crate::input::parse(&source).unwrap();
    let cluster = crate::model::build(&spec).unwrap().cluster;
    let state = crate::compile::compile(&cluster);
    (cluster, state)
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

#[test]
fn kubenet_is_the_bridge_model() {
    let text = std::fs::read_to_string("scenarios/demo.yaml").unwrap();
    assert!(text.contains("cni: kubenet"));
    let (spec, _) = crate::input::parse(&crate::input::Source {
        name: "demo".into(),
        text,
    })
    .unwrap();
    assert_eq!(crate::model::build(&spec).unwrap().cluster.cni, Cni::Bridge);
}

#[test]
fn each_node_holds_the_shared_routes_less_its_own() {
    let (_, state) = compiled("cni-flannel-host-gw.yaml");
    let node1 = &state.hosts[state.host_named("node-1").unwrap()];
    let main = node1.tables.iter().find(|t| t.name == "main").unwrap();
    let peers: Vec<String> = main
        .all()
        .filter(|r| r.via.is_some() && r.dst.prefix_len() == 24)
        .map(|r| r.to_string())
        .collect();
    assert_eq!(
        peers,
        [
            "10.0.2.0/24 via 10.100.0.3 dev eth0",
            "10.0.3.0/24 via 10.100.0.4 dev eth0"
        ]
    );
    assert_eq!(main.len(), main.all().count());
    // Its own podCIDR is the bridge's, not the shared route via itself.
    let own = lookup(&node1.tables, ip("10.0.1.9")).route.unwrap();
    assert_eq!(own.dev.as_deref(), Some("cni0"));
    let other = lookup(&node1.tables, ip("10.0.3.9")).route.unwrap();
    assert_eq!(other.via, Some(ip("10.100.0.4")));
    // The router holds no pod routes: flannel routes between the nodes itself.
    let router = &state.hosts[state.host_named("router").unwrap()];
    assert!(lookup(&router.tables, ip("10.0.2.2")).route.unwrap().dst.prefix_len() == 0);
}

#[test]
fn flannel_vxlan_holds_a_vtep_entry_for_every_other_node() {
    let (_, state) = compiled("cni-flannel-vxlan.yaml");
    let node2 = &state.hosts[state.host_named("node-2").unwrap()];
    let dev = node2.interface("flannel.1").unwrap();
    let Link::Vxlan(v) = &dev.link else {
        panic!("flannel.1 is a VXLAN device")
    };
    assert_eq!((v.vni, v.port, v.mtu), (1, 8472, 1450));
    assert_eq!(dev.addrs[0].to_string(), "10.0.2.0/32");
    let remotes: Vec<Ipv4Addr> = v.entries().map(|p| p.remote).collect();
    assert_eq!(remotes, [ip("10.100.0.2"), ip("10.100.0.4")]);
    let n = v.neighbor(ip("10.0.1.0")).unwrap();
    assert_eq!(v.fdb(n.mac).unwrap().remote, ip("10.100.0.2"));
    assert!(v.neighbor(ip("10.0.2.0")).is_none(), "no entry for its own endpoint");
    let r = lookup(&node2.tables, ip("10.0.1.2")).route.unwrap();
    assert_eq!(r.to_string(), "10.0.1.0/24 via 10.0.1.0 dev flannel.1 onlink");
}

#[test]
fn calico_routes_pods_by_32_and_blackholes_its_own_blocks() {
    let (_, state) = compiled("cni-calico-none.yaml");
    let node1 = &state.hosts[state.host_named("node-1").unwrap()];
    let to_pod = lookup(&node1.tables, ip("10.0.1.2")).route.unwrap();
    assert_eq!(to_pod.dst.prefix_len(), 32);
    assert!(to_pod.dev.as_deref().unwrap().starts_with("cali"));
    let unused = lookup(&node1.tables, ip("10.0.1.40")).route.unwrap();
    assert_eq!(unused.kind, RouteType::Blackhole);
    // Outside the blocks that hold pods, the podCIDR is nobody's: the default route.
    assert_eq!(
        lookup(&node1.tables, ip("10.0.1.70")).route.unwrap().dst.prefix_len(),
        0
    );
    let remote = lookup(&node1.tables, ip("10.0.2.2")).route.unwrap();
    assert_eq!(remote.to_string(), "10.0.2.0/26 via 10.100.0.3 dev eth0 proto bird");
    let cali = node1.interface(to_pod.dev.as_deref().unwrap()).unwrap();
    assert!(cali.proxy_arp && cali.addrs.is_empty());
}

#[test]
fn cross_subnet_encapsulates_only_towards_the_other_subnet() {
    let (_, state) = compiled("cni-calico-vxlan-cross-subnet.yaml");
    let node1 = &state.hosts[state.host_named("node-1").unwrap()];
    let same = lookup(&node1.tables, ip("10.0.2.2")).route.unwrap();
    assert_eq!(same.dev.as_deref(), Some("eth0"));
    let across = lookup(&node1.tables, ip("10.0.3.2")).route.unwrap();
    assert_eq!(across.dev.as_deref(), Some("vxlan.calico"));
    let node3 = &state.hosts[state.host_named("node-3").unwrap()];
    let back = lookup(&node3.tables, ip("10.0.2.2")).route.unwrap();
    assert_eq!(back.dev.as_deref(), Some("vxlan.calico"));
}

#[test]
fn a_vxlan_trace_wraps_and_unwraps_the_packet() {
    let (cluster, state) = compiled("cni-flannel-vxlan.yaml");
    let query = crate::resolve::Query {
        port: Some(8080),
        ..crate::resolve::Query::new("client", "pod/web-1")
    };
    let t = crate::tracer::trace(&cluster, &state, &query, Default::default()).unwrap();
    let tunnel: Vec<(String, String)> = t
        .hops
        .iter()
        .flat_map(|h| &h.steps)
        .filter_map(|s| match s {
            crate::trace::Step::Tunnel { action, device, .. } => Some((action.clone(), device.clone())),
            _ => None,
        })
        .collect();
    let pairs = [("encapsulate", "flannel.1"), ("decapsulate", "flannel.1")];
    assert_eq!(
        tunnel,
        pairs.map(|(a, d)| (a.to_owned(), d.to_owned())),
        "one wrapping on node-1, one unwrapping on node-2"
    );
    let outer = t.hops.iter().find(|h| h.packet.dst.port() == 8472).unwrap();
    assert_eq!(outer.packet.dst.ip(), &ip("10.100.0.3"));
}
