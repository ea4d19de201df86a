use super::*;
use crate::input::{self, Source};
use crate::model::{self, Cluster, ServiceType};

fn load(text: String, name: &str) -> Cluster {
    let source = Source {
        name: name.into(),
        text,
    };
    let (spec, problems) = input::parse(&source).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(problems.is_empty(), "{problems:?}");
    let built = model::build(&spec).unwrap_or_else(|d| panic!("{d:?}"));
    assert!(built.warnings.is_empty(), "{:?}", built.warnings);
    built.cluster
}

fn plan(o: Options) -> Plan {
    Plan::new(o).expect("valid options")
}

#[test]
fn every_option_gives_a_cluster_that_validates_without_warnings() {
    let variants = [
        Options::default(),
        Options {
            nodes: 4,
            pods_per_node: 5,
            services_per_node: 3,
            hairpin_mode: HairpinMode::None,
            bridge_nf_call_iptables: false,
            node_ports: 3,
            load_balancers: 2,
            external_traffic_policy: TrafficPolicy::Local,
            internal_traffic_policy: TrafficPolicy::Local,
            client_ip_affinity: true,
            traces: 7,
            ..Options::default()
        },
        Options {
            nodes: 1,
            pods_per_node: 0,
            services_per_node: 0,
            ..Options::default()
        },
        Options {
            nodes: 2,
            pods_per_node: 253,
            services_per_node: 1,
            ..Options::default()
        },
    ];
    for o in variants {
        let p = plan(o.clone());
        for format in [Format::Yaml, Format::Json] {
            let c = load(scenario(&p, format), "generated");
            assert_eq!(c.nodes.len(), o.nodes as usize);
            // And the API server's pod and the `kubernetes` Service, which every cluster has.
            assert_eq!(c.pods.len(), (o.nodes * o.pods_per_node) as usize + 1);
            assert_eq!(c.services.len(), p.services() as usize + 1);
            assert_eq!(c.services.last().map(|s| s.name.as_str()), Some("kubernetes"));
            assert_eq!(c.traces.len(), o.traces as usize);
        }
    }
}

/// The layout the functions describe is the one the file holds, so a test can rely on them.
#[test]
fn the_file_holds_the_layout_the_plan_describes() {
    let p = plan(Options {
        nodes: 300,
        pods_per_node: 7,
        services_per_node: 2,
        node_ports: 5,
        load_balancers: 5,
        ..Options::default()
    });
    let c = load(scenario(&p, Format::Yaml), "generated");
    for (n, node) in c.nodes.iter().enumerate() {
        let n = n as u32;
        assert_eq!(node.name, p.node_name(n));
        assert_eq!(node.ip, p.node_ip(n));
        assert_eq!(node.pod_cidr, p.pod_cidr(n));
    }
    assert_eq!(
        c.nodes[299].pod_cidr.to_string(),
        "10.1.43.0/24",
        "node 300 is past the first 256"
    );
    let (apiserver, pods) = c.pods.split_last().unwrap();
    assert_eq!(apiserver.name, "kube-apiserver-node-1");
    for pod in pods {
        let (node, index) = pod.name["pod-".len()..].split_once('-').unwrap();
        let at = PodAt {
            node: node.parse::<u32>().unwrap() - 1,
            index: index.parse::<u32>().unwrap() - 1,
        };
        assert_eq!(pod.ip, p.pod_ip(at));
        assert_eq!(c.nodes[pod.node].name, p.node_name(at.node));
    }
    for (s, service) in c.services.split_last().unwrap().1.iter().enumerate() {
        let s = s as u32;
        assert_eq!(service.name, p.service_name(s));
        assert_eq!(service.cluster_ip, Some(p.cluster_ip(s)));
        assert_eq!(service.load_balancer_ip, p.load_balancer_ip(s));
        assert_eq!(service.ports[0].node_port, p.node_port(s));
        let kind = match service.kind {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        };
        assert_eq!(kind, p.service_type(s));
        // The model sorts endpoints as kube-proxy does; the plan's first must be its first.
        let endpoints = &service.ports[0].endpoints;
        let mut expected: Vec<Ipv4Addr> = p.endpoints(s).map(|e| p.pod_ip(e)).collect();
        let mut got: Vec<Ipv4Addr> = endpoints.iter().map(|e| e.ip).collect();
        assert_eq!(got[0], p.pod_ip(p.first_endpoint(s).unwrap()));
        expected.sort();
        got.sort();
        assert_eq!(got, expected, "{}", service.name);
    }
}

#[test]
fn same_options_same_bytes_and_the_seed_moves_only_the_cases() {
    let o = Options {
        nodes: 20,
        traces: 50,
        ..Options::default()
    };
    let a = scenario(&plan(o.clone()), Format::Yaml);
    assert_eq!(a, scenario(&plan(o.clone()), Format::Yaml));
    let b = scenario(&plan(Options { seed: 2, ..o.clone() }), Format::Yaml);
    assert_ne!(a, b);
    let before_traces = |t: &str| t[t.find("\ncluster:").unwrap()..t.find("\ntraces:").unwrap()].to_owned();
    assert_eq!(before_traces(&a), before_traces(&b));
    assert_eq!(queries(&plan(o.clone()), 50), queries(&plan(o), 50));
}

#[test]
fn yaml_and_json_carry_the_same_document() {
    let p = plan(Options {
        nodes: 5,
        pods_per_node: 4,
        node_ports: 2,
        load_balancers: 1,
        external_traffic_policy: TrafficPolicy::Local,
        client_ip_affinity: true,
        traces: 5,
        ..Options::default()
    });
    let yaml: serde_json::Value = serde_saphyr::from_str(&scenario(&p, Format::Yaml)).unwrap();
    let json: serde_json::Value = serde_json::from_str(&scenario(&p, Format::Json)).unwrap();
    assert_eq!(yaml, json);
    assert_eq!(json["services"][2]["loadBalancerIP"], "198.18.0.3");
}

#[test]
fn cases_cross_nodes_and_queries_match_the_traces() {
    let p = plan(Options {
        nodes: 2,
        pods_per_node: 2,
        services_per_node: 1,
        traces: 40,
        ..Options::default()
    });
    let cases = p.cases(40);
    assert!(cases.iter().any(|c| matches!(c, Case::ToPod { .. })));
    assert!(cases.iter().any(|c| matches!(c, Case::ToService { .. })));
    for case in &cases {
        match *case {
            Case::ToService { from, service } => {
                assert_ne!(from.node, p.first_endpoint(service).unwrap().node)
            }
            Case::ToPod { from, to } => assert_ne!(from.node, to.node),
        }
    }
    let c = load(scenario(&p, Format::Yaml), "generated");
    let lines: Vec<String> = queries(&p, 40).lines().map(str::to_owned).collect();
    for (case, line) in c.traces.iter().zip(&lines) {
        let mut expected = format!("{} {}", case.from.value, case.to.value);
        if let Some(port) = case.port {
            expected += &format!(" --port {port}");
        }
        assert_eq!(&expected, line);
    }
}

#[test]
fn options_past_what_the_address_plan_holds_are_refused() {
    let refused = |o: Options| Plan::new(o).unwrap_err();
    assert!(
        refused(Options {
            nodes: 0,
            ..Options::default()
        })
        .contains("--nodes")
    );
    assert!(
        refused(Options {
            pods_per_node: 254,
            ..Options::default()
        })
        .contains("253")
    );
    assert!(
        refused(Options {
            services_per_node: 31,
            ..Options::default()
        })
        .contains("endpoint")
    );
    assert!(
        refused(Options {
            nodes: 40_000,
            services_per_node: 2,
            ..Options::default()
        })
        .contains("Service network")
    );
    assert!(
        refused(Options {
            node_ports: 2_000,
            load_balancers: 769,
            nodes: 2_000,
            ..Options::default()
        })
        .contains("30000-32767")
    );
    assert!(
        refused(Options {
            node_ports: 7,
            ..Options::default()
        })
        .contains("6 Services")
    );
    assert!(
        refused(Options {
            nodes: 1,
            traces: 1,
            ..Options::default()
        })
        .contains("2 nodes")
    );
    assert!(
        Plan::new(Options {
            nodes: 5_000,
            ..Options::default()
        })
        .is_ok()
    );
}

/// IPVS mode's state is shared by the nodes, so a cluster whose nodes × Service ports once
/// exceeded what a table per node could hold (2,000,000 virtual servers) builds, and its nodes
/// hold one list of virtual servers.
#[test]
fn ipvs_mode_builds_a_cluster_whose_nodes_times_service_ports_are_in_the_millions() {
    let p = plan(Options {
        nodes: 1500,
        pods_per_node: 2,
        services_per_node: 2,
        kube_proxy: KubeProxyMode::Ipvs,
        ..Options::default()
    });
    let source = Source {
        name: "generated".into(),
        text: scenario(&p, Format::Yaml),
    };
    let (spec, _) = input::parse(&source).unwrap_or_else(|d| panic!("{d:?}"));
    let cluster = model::build(&spec).unwrap_or_else(|d| panic!("{d:?}")).cluster;
    let ports: usize = cluster.services.iter().map(|s| s.ports.len()).sum();
    assert!(cluster.nodes.len() * ports > 2_000_000);
    let state = crate::compile::compile(&cluster);
    let tables: Vec<&crate::net::ipvs::Ipvs> = state.hosts.iter().filter_map(|h| h.ipvs.as_ref()).collect();
    assert_eq!(tables.len(), 1500);
    assert!(tables.iter().all(|t| std::ptr::eq(t.shared(), tables[0].shared())));
    assert!(tables[0].len() >= ports);
}
