//! kube-proxy's rules for traffic from outside the cluster: NodePorts, load-balancer addresses
//! (with `loadBalancerSourceRanges`), and the KUBE-EXT chain that applies
//! `externalTrafficPolicy`.

use super::{EXTERNAL_SERVICES, MARK_MASQ, NODEPORTS, PortChains, SERVICES, comment, jump};
use crate::model::{Service, ServicePort, TrafficPolicy};
use crate::net::iptables::{Match, Rule, Table, Target, host};

/// NodePort and load-balancer entry points, and the KUBE-EXT chain that decides masquerading.
#[allow(clippy::too_many_arguments)]
pub(super) fn external_rules(
    pod_network: ipnet::Ipv4Net,
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
    local_endpoints: &[usize],
    nat: &mut Table,
    filter: &mut Table,
) {
    let name = &chains.port_name;
    let proto = port.protocol;
    let dport = |p: u16| Match::DestinationPort {
        protocol: proto,
        port: Some(p),
    };
    if let Some(lb) = service.load_balancer_ip {
        let entry = if service.load_balancer_source_ranges.is_empty() {
            &chains.ext
        } else {
            &chains.fw
        };
        nat.append(
            SERVICES,
            Rule::new(
                vec![
                    Match::Destination {
                        net: host(lb),
                        negated: false,
                    },
                    Match::Protocol(proto),
                    comment(format!("{name} loadbalancer IP")),
                    dport(port.port),
                ],
                jump(entry),
            ),
        );
        for range in &service.load_balancer_source_ranges {
            nat.append(
                &chains.fw,
                Rule::new(
                    vec![
                        Match::Source {
                            net: *range,
                            negated: false,
                        },
                        comment(format!("{name} loadbalancer IP")),
                    ],
                    jump(&chains.ext),
                ),
            );
        }
        if !service.load_balancer_source_ranges.is_empty() {
            filter.append(
                EXTERNAL_SERVICES,
                Rule::new(
                    vec![
                        Match::Destination {
                            net: host(lb),
                            negated: false,
                        },
                        Match::Protocol(proto),
                        comment(format!("{name} traffic not accepted by {}", chains.fw)),
                        dport(port.port),
                    ],
                    Target::Drop,
                ),
            );
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
            if local_endpoints.is_empty() {
                filter_external(service, port, name, "has no local endpoints", Target::Drop, filter);
            } else {
                nat.append(&chains.ext, Rule::new(Vec::new(), jump(&chains.svl)));
            }
        }
    }
}

/// The filter rules that stop traffic to a Service's load-balancer address and NodePort from
/// going any further (kube-proxy's "external traffic filter target"), in kube-proxy's order:
/// the load-balancer address, then the NodePort.
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
    if let Some(lb) = service.load_balancer_ip {
        filter.append(
            EXTERNAL_SERVICES,
            Rule::new(
                vec![
                    Match::Destination {
                        net: host(lb),
                        negated: false,
                    },
                    Match::Protocol(proto),
                    comment(format!("{name} {why}")),
                    dport(port.port),
                ],
                target.clone(),
            ),
        );
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
