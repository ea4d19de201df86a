//! The cloud around the nodes: the router that is every node's gateway (with one route per
//! podCIDR), the load balancer in front of LoadBalancer Services, and the internet gateway.
//!
//! Every packet between the cluster and the internet passes router → load balancer → internet
//! gateway, so the load balancer's connection tracking sees replies too and can give them back
//! the load-balancer address the client dialled.

use std::net::SocketAddrV4;

use ipnet::Ipv4Net;

use super::kube_proxy::HEALTHZ_PORT;
use super::kubenet::{host, net};
use super::names::{service_chain_suffix, service_port_name};
use super::{INTERNET, LOAD_BALANCER, ROUTER};
use crate::model::{Cluster, Cni, Service, ServiceType, TrafficPolicy};
use crate::net::iptables::{Match, Rule, Target, host as host_net, stored_probability};
use crate::net::route::{Route, RouteProto, RouteTable, RouteType, Scope};
use crate::net::{Host, Interface, Link, Listener, NetState, Role};

/// The cloud metadata server's address (link-local, the same on every cloud).
pub const METADATA_SERVER: std::net::Ipv4Addr = std::net::Ipv4Addr::new(169, 254, 169, 254);

/// A node as the load balancer's health check sees it.
#[derive(Debug, Clone)]
pub struct Backend {
    /// Index into `Cluster::nodes`.
    pub node: usize,
    pub healthy: bool,
    /// Why, in words: what the health check asks and what it gets.
    pub why: String,
}

/// The nodes a cloud load balancer considers for `service`. Under `externalTrafficPolicy:
/// Cluster` it checks kube-proxy's own health endpoint, which answers on every node; under
/// `Local` it checks `healthCheckNodePort`, where kube-proxy answers 200 only on nodes that run
/// an endpoint of the Service.
pub fn lb_backends(cluster: &Cluster, service: &Service) -> Vec<Backend> {
    let mut order: Vec<usize> = (0..cluster.nodes.len()).collect();
    order.sort_by(|&a, &b| cluster.nodes[a].name.cmp(&cluster.nodes[b].name));
    // The distinct endpoint pods on each node, counted once rather than once per node.
    let mut local_pods: std::collections::HashMap<usize, std::collections::BTreeSet<usize>> =
        std::collections::HashMap::new();
    if service.external_traffic_policy == TrafficPolicy::Local {
        for e in service.ports.iter().flat_map(|p| &p.endpoints) {
            local_pods.entry(cluster.pods[e.pod].node).or_default().insert(e.pod);
        }
    }
    order
        .into_iter()
        .map(|node| {
            let n = &cluster.nodes[node];
            match service.external_traffic_policy {
                TrafficPolicy::Cluster => Backend {
                    node,
                    healthy: true,
                    why: format!(
                        "http://{}:{HEALTHZ_PORT}/healthz answers 200: with externalTrafficPolicy Cluster every node forwards",
                        n.ip
                    ),
                },
                TrafficPolicy::Local => {
                    let local = local_pods.get(&node).map_or(0, |pods| pods.len());
                    let url = match service.health_check_node_port {
                        Some(port) => format!("http://{}:{port}/healthz", n.ip),
                        None => format!("the healthCheckNodePort of {}", n.name),
                    };
                    if local > 0 {
                        Backend {
                            node,
                            healthy: true,
                            why: format!(
                                "{url} answers 200: {local} local endpoint{}",
                                if local == 1 { "" } else { "s" }
                            ),
                        }
                    } else {
                        Backend {
                            node,
                            healthy: false,
                            why: format!("{url} answers 503: no local endpoint"),
                        }
                    }
                }
            }
        })
        .collect()
}

/// Whether no node passes the health check, so that the load balancer fails open: an AWS
/// Network Load Balancer (the one k8snet models) then sends to every registered target rather
/// than to none, and each node's kube-proxy answers for itself.
pub fn fails_open(backends: &[Backend]) -> bool {
    !backends.is_empty() && backends.iter().all(|b| !b.healthy)
}

/// The nodes the load balancer sends to: those that pass the health check, or all of them when
/// none does.
pub fn lb_targets(backends: Vec<Backend>) -> Vec<Backend> {
    if fails_open(&backends) {
        backends
    } else {
        backends.into_iter().filter(|b| b.healthy).collect()
    }
}

/// The iptables chain in which the load balancer picks a node for one Service port.
pub fn lb_chain(port_name: &str, protocol: crate::net::Protocol) -> String {
    format!("CLOUD-LB-{}", service_chain_suffix(port_name, protocol))
}

fn load_balanced(cluster: &Cluster) -> impl Iterator<Item = &Service> {
    cluster
        .services
        .iter()
        .filter(|s| s.kind == ServiceType::LoadBalancer && s.load_balancer_ip.is_some())
}

/// Adds the router, the load balancer (when a Service has a load-balancer address) and the
/// internet gateway, in that order, after the nodes and pods.
pub fn attach(cluster: &Cluster, state: &mut NetState) {
    let router = state.hosts.len();
    let with_lb = load_balanced(cluster).next().is_some();
    let lb = router + 1;
    let internet = if with_lb { router + 2 } else { router + 1 };
    let (up_host, up_if) = if with_lb { (lb, "eth0") } else { (internet, "eth0") };
    state.hosts.push(router_host(cluster, up_host, up_if));
    if with_lb {
        state.hosts.push(load_balancer(cluster, router, internet));
    }
    let (down_host, down_if) = if with_lb { (lb, "uplink") } else { (router, "uplink") };
    state.hosts.push(internet_host(cluster, down_host, down_if));
}

fn veth(name: &str, peer_host: usize, peer_if: &str) -> Interface {
    Interface::new(
        name,
        Link::Veth {
            peer_host,
            peer_if: peer_if.into(),
        },
        Vec::new(),
    )
}

/// The cloud network's router: the nodes' gateway on each of their subnets, with one route per
/// node podCIDR when the CNI relies on cloud routes (the bridge plugin, as kubenet set it up).
fn router_host(cluster: &Cluster, up_host: usize, up_if: &str) -> Host {
    let mut h = host(ROUTER.into(), Role::Router);
    let mut local = Vec::new();
    let mut main =
        vec![Route::unicast(Ipv4Net::default(), None, "uplink").with_origin("the cloud network's way to the internet")];
    let subnets = cluster.subnets();
    let device = |k: usize| if k == 0 { "eth0".to_owned() } else { format!("eth{k}") };
    for (k, subnet) in subnets.iter().enumerate() {
        let dev = device(k);
        let addr = net(cluster.gateway_on(*subnet), subnet.prefix_len());
        let (connected, mut here) = Route::connected(addr, &dev);
        let mut addrs = vec![addr];
        if k == 0 {
            // The cloud's metadata server answers on a link-local address behind the nodes'
            // gateway, as on GCE and AWS; it stands here so that a pod's request to it can be
            // followed.
            let metadata = net(METADATA_SERVER, 32);
            here.extend(Route::connected(metadata, &dev).1);
            addrs.push(metadata);
        }
        local.extend(here);
        main.push(connected);
        h.interfaces.push(Interface::new(
            &dev,
            Link::Segment {
                segment: super::cni::segment_of(cluster, *subnet),
            },
            addrs,
        ));
    }
    h.interfaces.push(veth("uplink", up_host, up_if));
    h.listeners.push(Listener {
        port: 80,
        protocol: crate::net::Protocol::Tcp,
        owner: format!("the cloud metadata server ({METADATA_SERVER}:80)"),
    });
    if cluster.cni == Cni::Bridge {
        for node in &cluster.nodes {
            let subnet = cluster.node_subnet(node);
            let k = subnets.iter().position(|s| *s == subnet).unwrap_or(0);
            let mut r = Route::unicast(node.pod_cidr, Some(node.ip), &device(k))
                .with_origin(format!("cloud route for {}'s podCIDR", node.name));
            r.proto = RouteProto::Static;
            main.push(r);
        }
    }
    main.extend(super::external_ips::router_routes(cluster, &subnets, device));
    h.tables = RouteTable::local_and_main(local, main);
    h.ip_forward = true;
    h
}

/// The cloud load balancer: it owns the load-balancer addresses, takes connections for them,
/// picks a node that passes its health check, and sends them on to that node's NodePort. It
/// keeps the client's address as the source, so `externalTrafficPolicy: Local` can preserve it.
fn load_balancer(cluster: &Cluster, router: usize, internet: usize) -> Host {
    let mut h = host(LOAD_BALANCER.into(), Role::LoadBalancer);
    let mut outside = veth("uplink", internet, "eth0");
    let mut local = Vec::new();
    for ip in load_balanced(cluster).filter_map(|s| s.load_balancer_ip) {
        let addr = net(ip, 32);
        if !outside.addrs.contains(&addr) {
            outside.addrs.push(addr);
            local.extend(Route::connected(addr, "uplink").1);
        }
    }
    h.interfaces = vec![veth("eth0", router, "uplink"), outside];
    let mut main = vec![
        Route::unicast(Ipv4Net::default(), None, "uplink").with_origin("the internet"),
        Route::unicast(cluster.node_network, None, "eth0").with_origin("the nodes, behind the cloud router"),
    ];
    main.extend(super::external_ips::inbound_routes(cluster, "eth0"));
    h.tables = RouteTable::local_and_main(local, main);
    h.ip_forward = true;
    for service in load_balanced(cluster) {
        let lb_ip = service.load_balancer_ip.expect("filtered on its presence");
        let backends = lb_targets(lb_backends(cluster, service));
        for port in &service.ports {
            let Some(node_port) = port.node_port else { continue };
            let name = service_port_name(service, port);
            let chain = lb_chain(&name, port.protocol);
            let entry = |source: Option<Ipv4Net>| {
                // In the order iptables-save prints them: source, then destination.
                let mut m = Vec::new();
                if let Some(s) = source {
                    m.push(Match::Source { net: s, negated: false });
                }
                m.push(Match::Destination {
                    net: host_net(lb_ip),
                    negated: false,
                });
                m.push(Match::Protocol(port.protocol));
                m.push(Match::Comment(format!("{name} loadbalancer IP")));
                m.push(Match::DestinationPort {
                    protocol: port.protocol,
                    port: Some(port.port),
                });
                Rule::new(m, Target::Jump(chain.clone()))
            };
            // loadBalancerSourceRanges become the cloud's firewall: only those sources get in.
            if service.load_balancer_source_ranges.is_empty() {
                h.nat.append("PREROUTING", entry(None));
            } else {
                for range in &service.load_balancer_source_ranges {
                    h.nat.append("PREROUTING", entry(Some(*range)));
                }
            }
            h.nat.ensure(&chain);
            let n = backends.len();
            for (k, b) in backends.iter().enumerate() {
                let node = &cluster.nodes[b.node];
                // iptables refuses a DNAT to a port without a protocol to go with it.
                let why = if b.healthy {
                    format!("{} passes the health check", node.name)
                } else {
                    format!(
                        "{}: no node passes the health check, so the load balancer fails open",
                        node.name
                    )
                };
                let mut m = vec![Match::Protocol(port.protocol), Match::Comment(why)];
                if k + 1 < n {
                    m.push(Match::Statistic {
                        stored: stored_probability(1.0 / (n - k) as f64),
                    });
                }
                h.nat.append(
                    &chain,
                    Rule::new(m, Target::Dnat(SocketAddrV4::new(node.ip, node_port))),
                );
            }
        }
        // Whatever the load balancer did not translate stays addressed to the load balancer
        // itself: refuse it there, first sources outside loadBalancerSourceRanges, then ports it
        // does not serve.
        let to_lb = || Match::Destination {
            net: host_net(lb_ip),
            negated: false,
        };
        if !service.load_balancer_source_ranges.is_empty() {
            let fw = format!(
                "CLOUD-FW-{}",
                service_chain_suffix(&service.qualified_name(), crate::net::Protocol::Tcp)
            );
            h.filter
                .append("INPUT", Rule::new(vec![to_lb()], Target::Jump(fw.clone())));
            for range in &service.load_balancer_source_ranges {
                h.filter.append(
                    &fw,
                    Rule::new(
                        vec![Match::Source {
                            net: *range,
                            negated: false,
                        }],
                        Target::Return,
                    ),
                );
            }
            let ranges: Vec<String> = service
                .load_balancer_source_ranges
                .iter()
                .map(|r| r.to_string())
                .collect();
            h.filter.append(
                &fw,
                Rule::new(
                    vec![Match::Comment(format!(
                        "{} load balancer: the source is not in loadBalancerSourceRanges ({})",
                        service.qualified_name(),
                        ranges.join(", ")
                    ))],
                    Target::Drop,
                ),
            );
        }
        h.filter.append(
            "INPUT",
            Rule::new(vec![to_lb(), Match::Comment(refusal(service))], Target::Drop),
        );
    }
    h
}

/// Why the load balancer would leave a packet from an allowed source untranslated.
fn refusal(service: &Service) -> String {
    let ports: Vec<String> = service
        .ports
        .iter()
        .map(|p| format!("{}/{}", p.port, p.protocol))
        .collect();
    format!(
        "{} load balancer: serves only {}",
        service.qualified_name(),
        ports.join(", ")
    )
}

/// The world beyond the cloud. Private addresses are not routed there, so a packet for one (a
/// ClusterIP nobody translated, say) ends at a blackhole instead of leaving. Clients out there
/// reach the load-balancer addresses and, as through the nodes' external addresses, the nodes.
fn internet_host(cluster: &Cluster, down_host: usize, down_if: &str) -> Host {
    let mut h = host(INTERNET.into(), Role::Internet);
    h.interfaces = vec![
        veth("eth0", down_host, down_if),
        Interface::new("world", Link::Uplink, Vec::new()),
    ];
    let mut main = vec![Route::unicast(Ipv4Net::default(), None, "world").with_origin("the public internet")];
    for private in ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10"] {
        main.push(Route {
            kind: RouteType::Blackhole,
            dev: None,
            scope: Scope::Global,
            ..Route::unicast(private.parse().expect("literal CIDR"), None, "world")
                .with_origin("private addresses are not routed on the internet")
        });
    }
    main.push(
        Route::unicast(cluster.node_network, None, "eth0")
            .with_origin("the nodes, reachable from outside (as through their external addresses)"),
    );
    main.extend(super::external_ips::inbound_routes(cluster, "eth0"));
    for service in load_balanced(cluster) {
        let ip = service.load_balancer_ip.expect("filtered on its presence");
        if !main.iter().any(|r| r.dst == host_net(ip)) {
            main.push(
                Route::unicast(host_net(ip), None, "eth0")
                    .with_origin(format!("load-balancer address of {}", service.qualified_name())),
            );
        }
    }
    h.tables = vec![RouteTable::new("main", main)];
    h.ip_forward = true;
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Source, parse};

    fn outside_in() -> Cluster {
        let source = Source {
            name: "outside-in".into(),
            text: include_str!("../../scenarios/outside-in.yaml").into(),
        };
        let (spec, problems) = parse(&source).unwrap();
        assert!(problems.is_empty());
        crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster
    }

    #[test]
    fn local_policy_takes_nodes_without_an_endpoint_out_of_rotation() {
        let c = outside_in();
        let health = |svc: &str| -> Vec<(String, bool)> {
            let s = &c.services[c.service_named("shop", svc).unwrap()];
            lb_backends(&c, s)
                .into_iter()
                .map(|b| (c.nodes[b.node].name.clone(), b.healthy))
                .collect()
        };
        let names = |v: &[(String, bool)]| v.iter().filter(|x| x.1).map(|x| x.0.clone()).collect::<Vec<_>>();
        assert_eq!(names(&health("web")), ["node-1", "node-2", "node-3"]);
        assert_eq!(names(&health("web-local")), ["node-1", "node-2"]);
    }

    #[test]
    fn the_load_balancer_sits_between_router_and_internet_and_drops_what_it_does_not_translate() {
        let c = outside_in();
        let state = crate::compile::compile(&c);
        let lb = &state.hosts[state.host_named(LOAD_BALANCER).unwrap()];
        let peers: Vec<&str> = lb
            .interfaces
            .iter()
            .filter_map(|i| match &i.link {
                Link::Veth { peer_host, .. } => Some(state.hosts[*peer_host].name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(peers, [ROUTER, INTERNET]);
        let web_local = c.service_named("shop", "web-local").unwrap();
        let chain = lb_chain("shop/web-local:http", crate::net::Protocol::Tcp);
        let rules = &lb.nat.chain(&chain).unwrap().rules;
        assert_eq!(rules.len(), 2, "one DNAT per healthy node");
        assert_eq!(rules[1].target, Target::Dnat("10.100.0.3:30081".parse().unwrap()));
        assert!(c.services[web_local].load_balancer_source_ranges.is_empty());
        let forward = &lb.filter.chain("INPUT").unwrap().rules;
        assert!(
            forward
                .iter()
                .all(|r| matches!(r.target, Target::Drop | Target::Jump(_))),
            "only drops, and jumps to source-range checks"
        );
    }
}
