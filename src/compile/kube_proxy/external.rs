//! kube-proxy's rules for traffic from outside the cluster: NodePorts, load-balancer addresses
//! (with `loadBalancerSourceRanges`), and the KUBE-EXT chain that applies
//! `externalTrafficPolicy`.

use super::{EXTERNAL_SERVICES, MARK_MASQ, NODEPORTS, PROXY_FIREWALL, PortChains, SERVICES, comment, jump};
use crate::model::{Cluster, Service, ServicePort, TrafficPolicy};
use crate::net::iptables::{Match, Rule, Table, Target, host};

/// NodePort and load-balancer entry points in the `nat` table, and the drop in `filter`
/// KUBE-PROXY-FIREWALL of what a load balancer's KUBE-FW chain did not accept: the same on every
/// node (but for a KUBE-FW chain whose ranges hold a node's address, which is the node's own).
pub(super) fn entry_rules(
    cluster: &Cluster,
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
    nat: &mut Table,
    filter: &mut Table,
) {
    let name = &chains.port_name;
    let proto = port.protocol;
    let dport = |p: u16| Match::DestinationPort {
        protocol: proto,
        port: Some(p),
    };
    // kube-proxy captures externalIPs after the ClusterIP and before the load-balancer address.
    for &ip in &service.external_ips {
        let rule = to_address(ip, port, format!("{name} external IP"), jump(&chains.ext));
        nat.append(SERVICES, rule);
    }
    if let Some(lb) = service.load_balancer_ip {
        let firewalled = !service.load_balancer_source_ranges.is_empty();
        let entry = if firewalled { &chains.fw } else { &chains.ext };
        let to_lb = || Match::Destination {
            net: host(lb),
            negated: false,
        };
        nat.append(
            SERVICES,
            Rule::new(
                vec![
                    to_lb(),
                    Match::Protocol(proto),
                    comment(format!("{name} loadbalancer IP")),
                    dport(port.port),
                ],
                jump(entry),
            ),
        );
        if firewalled {
            filter.append(
                PROXY_FIREWALL,
                Rule::new(
                    vec![
                        to_lb(),
                        Match::Protocol(proto),
                        comment(format!("{name} traffic not accepted by {}", chains.fw)),
                        dport(port.port),
                    ],
                    Target::Drop,
                ),
            );
            if !ranges_hold_a_node(cluster, service) {
                fw_chain(service, chains, false, nat);
            }
        }
    }
    if let Some(np) = port.node_port {
        nat.append(
            NODEPORTS,
            Rule::new(
                vec![Match::Protocol(proto), comment(name.clone()), dport(np)],
                jump(&chains.ext),
            ),
        );
    }
}

/// Whether some node's address is in one of the Service's `loadBalancerSourceRanges`: kube-proxy
/// then also accepts, on that node, traffic from the load-balancer address itself, so the
/// KUBE-FW chain differs from node to node.
pub(super) fn ranges_hold_a_node(cluster: &Cluster, service: &Service) -> bool {
    cluster
        .nodes
        .iter()
        .any(|n| service.load_balancer_source_ranges.iter().any(|r| r.contains(&n.ip)))
}

/// The KUBE-FW chain: each source range goes on to KUBE-EXT; on a node whose address is in a
/// range, so does traffic from the load-balancer address (a node that holds the address sends
/// from it); the last rule only marks the end: what gets there is not DNATed, and
/// KUBE-PROXY-FIREWALL drops it in `filter`.
pub(super) fn fw_chain(service: &Service, chains: &PortChains, allow_from_node: bool, nat: &mut Table) {
    let name = &chains.port_name;
    let from = |net| {
        Rule::new(
            vec![
                Match::Source { net, negated: false },
                comment(format!("{name} loadbalancer IP")),
            ],
            jump(&chains.ext),
        )
    };
    for range in &service.load_balancer_source_ranges {
        nat.append(&chains.fw, from(*range));
    }
    if allow_from_node && let Some(lb) = service.load_balancer_ip {
        nat.append(&chains.fw, from(host(lb)));
    }
    nat.append(
        &chains.fw,
        Rule::new(
            vec![comment(format!(
                "other traffic to {name} will be dropped by KUBE-PROXY-FIREWALL"
            ))],
            Target::None,
        ),
    );
}

/// The filter rule one external Service port adds to KUBE-EXTERNAL-SERVICES on a node: under
/// `Local`, on a node without a local endpoint, the drop of all external traffic.
pub(super) fn filter_rules(
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
    local_endpoints: &[usize],
    filter: &mut Table,
) {
    if service.external_traffic_policy == TrafficPolicy::Local && local_endpoints.is_empty() {
        filter_external(
            service,
            port,
            &chains.port_name,
            "has no local endpoints",
            Target::Drop,
            filter,
        );
    }
}

/// The KUBE-EXT chain, which decides masquerading for external traffic. Under `Cluster` it is
/// the same on every node; under `Local` it ends in the node's KUBE-SVL chain only where the
/// node has a local endpoint.
pub(super) fn ext_chain(
    pod_network: ipnet::Ipv4Net,
    service: &Service,
    chains: &PortChains,
    local_endpoints: &[usize],
    nat: &mut Table,
) {
    let name = &chains.port_name;
    match service.external_traffic_policy {
        TrafficPolicy::Cluster => {
            nat.append(
                &chains.ext,
                Rule::new(
                    vec![comment(format!("masquerade traffic for {name} external destinations"))],
                    jump(MARK_MASQ),
                ),
            );
            nat.append(&chains.ext, Rule::new(Vec::new(), jump(&chains.svc)));
        }
        TrafficPolicy::Local => {
            nat.append(
                &chains.ext,
                Rule::new(
                    vec![
                        Match::Source {
                            net: pod_network,
                            negated: false,
                        },
                        comment("pod traffic for ".to_owned() + name + " external destinations"),
                    ],
                    jump(&chains.svc),
                ),
            );
            nat.append(
                &chains.ext,
                Rule::new(
                    vec![
                        comment(format!("masquerade LOCAL traffic for {name} external destinations")),
                        Match::AddrTypeLocal {
                            destination: false,
                            negated: false,
                        },
                    ],
                    jump(MARK_MASQ),
                ),
            );
            nat.append(
                &chains.ext,
                Rule::new(
                    vec![
                        comment(format!("route LOCAL traffic for {name} external destinations")),
                        Match::AddrTypeLocal {
                            destination: false,
                            negated: false,
                        },
                    ],
                    jump(&chains.svc),
                ),
            );
            if !local_endpoints.is_empty() {
                nat.append(&chains.ext, Rule::new(Vec::new(), jump(&chains.svl)));
            }
        }
    }
}

/// The filter rules that stop traffic to a Service's externalIPs, load-balancer address and
/// NodePort from going any further (kube-proxy's "external traffic filter target"), in
/// kube-proxy's order: the externalIPs, the load-balancer address, then the NodePort.
pub(super) fn filter_external(
    service: &Service,
    port: &ServicePort,
    name: &str,
    why: &str,
    target: Target,
    filter: &mut Table,
) {
    let proto = port.protocol;
    let dport = |p: u16| Match::DestinationPort {
        protocol: proto,
        port: Some(p),
    };
    for ip in service.external_ips.iter().copied().chain(service.load_balancer_ip) {
        let rule = to_address(ip, port, format!("{name} {why}"), target.clone());
        filter.append(EXTERNAL_SERVICES, rule);
    }
    if let Some(np) = port.node_port {
        filter.append(
            EXTERNAL_SERVICES,
            Rule::new(
                vec![
                    Match::Protocol(proto),
                    comment(format!("{name} {why}")),
                    Match::AddrTypeLocal {
                        destination: true,
                        negated: false,
                    },
                    dport(np),
                ],
                target,
            ),
        );
    }
}

/// `-d IP/32 -p PROTO -m comment -m PROTO --dport PORT` and the target: a Service port on one of
/// its external addresses.
fn to_address(ip: std::net::Ipv4Addr, port: &ServicePort, text: String, target: Target) -> Rule {
    Rule::new(
        vec![
            Match::Destination {
                net: host(ip),
                negated: false,
            },
            Match::Protocol(port.protocol),
            comment(text),
            Match::DestinationPort {
                protocol: port.protocol,
                port: Some(port.port),
            },
        ],
        target,
    )
}
