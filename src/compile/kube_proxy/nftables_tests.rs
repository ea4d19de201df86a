use super::*;
use crate::input::{Source, parse};

fn cluster(name: &str, text: &str) -> Cluster {
    let source = Source {
        name: name.into(),
        text: text.into(),
    };
    let (spec, problems) = parse(&source).unwrap();
    assert!(problems.is_empty(), "{problems:?}");
    let mut c = crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster;
    c.kube_proxy = crate::model::KubeProxyMode::Nftables;
    c
}

#[test]
fn chain_names_match_kube_proxys_test_vectors() {
    assert_eq!(hashed("ns1/svc1/tcp/p80"), "ULMVA6XW-ns1/svc1/tcp/p80");
    assert_eq!(
        hashed("ns1/svc1/tcp/p80__10.180.0.1/80"),
        "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"
    );
}

#[test]
fn the_demo_service_dispatches_through_the_map_and_spreads_with_numgen() {
    let c = cluster("demo", include_str!("../../../scenarios/demo.yaml"));
    let table = KubeProxy::new(&c).table(0);
    let s = &c.services[0];
    let chains = port_chains(s, &s.ports[0]);
    let key = Key::service(s.cluster_ip.unwrap(), s.ports[0].protocol, s.ports[0].port);
    assert_eq!(
        table.element(SERVICE_IPS, &key).and_then(|e| e.verdict.clone()),
        Some(Verdict::Goto(chains.service.clone()))
    );
    let svc = table.chain(&chains.service).expect("service chain");
    let last = svc.rules.last().unwrap().text();
    assert_eq!(
        last,
        format!(
            "numgen random mod 2 vmap {{ 0 : goto {}, 1 : goto {} }}",
            chains.endpoints[0], chains.endpoints[1]
        )
    );
    assert!(
        svc.rules[0]
            .text()
            .ends_with("ip saddr != 10.0.0.0/14 jump mark-for-masquerade")
    );
    let ep = table.chain(&chains.endpoints[0]).unwrap();
    let e = &s.ports[0].endpoints[0];
    assert_eq!(
        ep.rules.last().unwrap().text(),
        format!("meta l4proto tcp dnat to {}:{}", e.ip, e.port)
    );
}

#[test]
fn nodes_share_the_table_but_each_takes_node_ports_on_its_own_address() {
    let c = cluster("outside-in", include_str!("../../../scenarios/outside-in.yaml"));
    let kp = KubeProxy::new(&c);
    let (a, b) = (kp.table(0), kp.table(1));
    assert!(Arc::ptr_eq(a.shared(), b.shared()));
    for (n, t) in [(0, &a), (1, &b)] {
        for (m, node) in c.nodes.iter().enumerate() {
            assert_eq!(t.element(NODEPORT_IPS, &Key::addr(node.ip)).is_some(), n == m);
        }
    }
    // externalTrafficPolicy Local: the external chain ends in the local chain only where the
    // node has an endpoint; elsewhere the NodePort is dropped by no-endpoint-nodeports.
    let s = &c.services[c.service_named("shop", "web-local").unwrap()];
    let port = &s.ports[0];
    let chains = port_chains(s, port);
    for n in 0..c.nodes.len() {
        let t = kp.table(n);
        let here = port.endpoints.iter().any(|e| c.pods[e.pod].node == n);
        let last = t.chain(&chains.external).and_then(|ch| ch.rules.last()).map(Rule::text);
        assert_eq!(last == Some(format!("goto {}", chains.local)), here, "node {n}");
        let np = Key::node_port(port.protocol, port.node_port.unwrap());
        let dropped = t.element(NO_ENDPOINT_NODEPORTS, &np).and_then(|e| e.verdict.clone());
        assert_eq!(dropped == Some(Verdict::Drop), !here, "node {n}");
    }
}

#[test]
fn a_port_without_endpoints_is_rejected_through_the_no_endpoint_map() {
    let mut c = cluster("demo", include_str!("../../../scenarios/demo.yaml"));
    c.services[0].ports[0].endpoints.clear();
    let table = KubeProxy::new(&c).table(0);
    let s = &c.services[0];
    let key = Key::service(s.cluster_ip.unwrap(), s.ports[0].protocol, s.ports[0].port);
    assert!(table.element(SERVICE_IPS, &key).is_none());
    let e = table.element(NO_ENDPOINT_SERVICES, &key).unwrap();
    assert_eq!(
        e.text(),
        format!(
            "{} . tcp . 80 comment \"default/web:http\" : goto reject-chain",
            s.cluster_ip.unwrap()
        )
    );
    assert!(table.chain(&port_chains(s, &s.ports[0]).service).is_none());
}
