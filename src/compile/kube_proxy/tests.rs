use super::*;
use crate::input::{Source, parse};

fn demo() -> Cluster {
    let source = Source {
        name: "demo".into(),
        text: include_str!("../../../scenarios/demo.yaml").into(),
    };
    let (spec, problems) = parse(&source).unwrap();
    assert!(problems.is_empty());
    crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster
}

#[test]
fn demo_web_service_spreads_evenly_over_both_endpoints() {
    let cluster = demo();
    let (nat, _) = tables(&cluster, 0);
    let service = &cluster.services[0];
    let chains = port_chains(service, &service.ports[0]);
    let svc = nat.chain(&chains.svc).expect("KUBE-SVC chain");
    let lines: Vec<String> = svc.rules.iter().map(|r| r.save_line(&svc.name)).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(lines[0].contains("! -s 10.0.0.0/14") && lines[0].ends_with("-j KUBE-MARK-MASQ"));
    assert!(lines[1].contains("--probability 0.50000000000"));
    assert!(lines[1].ends_with(&chains.endpoints[0]));
    assert!(!lines[2].contains("statistic") && lines[2].ends_with(&chains.endpoints[1]));
    for (i, endpoint) in service.ports[0].endpoints.iter().enumerate() {
        let sep = nat.chain(&chains.endpoints[i]).expect("KUBE-SEP chain");
        assert_eq!(
            sep.rules.last().unwrap().target,
            Target::Dnat(SocketAddrV4::new(endpoint.ip, endpoint.port))
        );
    }
}

#[test]
fn a_service_without_endpoints_gets_a_reject_and_no_nat_rules() {
    let mut cluster = demo();
    cluster.services[0].ports[0].endpoints.clear();
    let (nat, filter) = tables(&cluster, 0);
    let chains = port_chains(&cluster.services[0], &cluster.services[0].ports[0]);
    assert!(nat.chain(&chains.svc).is_none());
    let rejects: Vec<&Rule> = filter
        .chain(SERVICES)
        .unwrap()
        .rules
        .iter()
        .filter(|r| r.target == Target::Reject)
        .collect();
    assert_eq!(rejects.len(), 1);
    assert_eq!(rejects[0].comment(), Some("default/web:http has no endpoints"));
}

#[test]
fn nodes_share_one_copy_of_the_rules_that_are_the_same_everywhere() {
    let source = Source {
        name: "outside-in".into(),
        text: include_str!("../../../scenarios/outside-in.yaml").into(),
    };
    let (spec, _) = parse(&source).unwrap();
    let cluster = crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster;
    let kube_proxy = KubeProxy::new(&cluster);
    let (a, _) = kube_proxy.tables(0);
    let (b, _) = kube_proxy.tables(1);
    let s = &cluster.services[cluster.service_named("shop", "web-local").unwrap()];
    let chains = port_chains(s, &s.ports[0]);
    let sep = &chains.endpoints[0];
    assert!(
        std::ptr::eq(a.chain(sep).unwrap(), b.chain(sep).unwrap()),
        "an endpoint chain is held once"
    );
    // Under externalTrafficPolicy Local the KUBE-EXT chain is each node's own, and it ends
    // in KUBE-SVL only on a node with a local endpoint.
    let node_with = |n: usize| s.ports[0].endpoints.iter().any(|e| cluster.pods[e.pod].node == n);
    let ends_in_svl = |t: &Table| {
        t.chain(&chains.ext)
            .and_then(|c| c.rules.last())
            .is_some_and(|r| r.target == Target::Jump(chains.svl.clone()))
    };
    for n in 0..cluster.nodes.len() {
        let (nat, _) = kube_proxy.tables(n);
        assert_eq!(ends_in_svl(&nat), node_with(n), "node {n}");
        assert_eq!(nat.chain(&chains.svl).is_some(), node_with(n), "node {n}");
    }
}

#[test]
fn internal_traffic_policy_local_keeps_cluster_ip_traffic_on_the_senders_node() {
    let source = Source {
        name: "traffic-policy".into(),
        text: include_str!("../../../scenarios/traffic-policy.yaml").into(),
    };
    let (spec, _) = parse(&source).unwrap();
    let cluster = crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster;
    let kube_proxy = KubeProxy::new(&cluster);
    let s = &cluster.services[cluster.service_named("monitoring", "node-logs").unwrap()];
    let chains = port_chains(s, &s.ports[0]);
    for n in 0..cluster.nodes.len() {
        let (nat, filter) = kube_proxy.tables(n);
        let local: Vec<usize> = (0..s.ports[0].endpoints.len())
            .filter(|&i| cluster.pods[s.ports[0].endpoints[i].pod].node == n)
            .collect();
        assert!(
            nat.chain(&chains.svc).is_none(),
            "a ClusterIP-only Service has no KUBE-SVC"
        );
        for (i, sep) in chains.endpoints.iter().enumerate() {
            assert_eq!(nat.chain(sep).is_some(), local.contains(&i), "node {n}, endpoint {i}");
        }
        let services = nat.chain(SERVICES).unwrap();
        let last = services.rules.last().unwrap();
        assert_eq!(
            last.target,
            Target::Jump(NODEPORTS.into()),
            "the NodePort jump stays last"
        );
        let dispatch = services
            .rules
            .iter()
            .any(|r| r.target == Target::Jump(chains.svl.clone()));
        let drop =
            filter.chain(SERVICES).unwrap().rules.iter().any(|r| {
                r.target == Target::Drop && r.comment() == Some("monitoring/node-logs has no local endpoints")
            });
        assert_eq!(dispatch, !local.is_empty(), "node {n}");
        assert_eq!(drop, local.is_empty(), "node {n}");
    }
}
