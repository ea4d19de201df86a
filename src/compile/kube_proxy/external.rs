//! kube-proxy's rules for traffic from outside the cluster: NodePorts, load-balancer addresses
//! (with `loadBalancerSourceRanges`), and the KUBE-EXT chain that applies
//! `externalTrafficPolicy`.

use super::{EXTERNAL_SERVICES, MARK_MASQ, NODEPORTS, PortChains, SERVICES, comment, jump};
use crate::model::{Service, ServicePort, TrafficPolicy};
use crate::net::iptables::{Match, Rule, Table, Target, host};

/// NodePort and load-balancer entry points in the `nat` table: the same on every node.
pub(super) fn entry_rules(service: &Service, port: &ServicePort, chains: &PortChains, nat: &mut Table) {
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

/// The filter rules one external Service port adds to KUBE-EXTERNAL-SERVICES on a node: the
/// drop of what a load balancer's firewall chain did not accept, and under `Local`, on a node
/// without a local endpoint, the drop of all external traffic.
pub(super) fn filter_rules(
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
    local_endpoints: &[usize],
    filter: &mut Table,
) {
    let name = &chains.port_name;
    let proto = port.protocol;
    if let Some(lb) = service.load_balancer_ip
        && !service.load_balancer_source_ranges.is_empty()
    {
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
                    Match::DestinationPort {
                        protocol: proto,
                        port: Some(port.port),
                    },
                ],
                Target::Drop,
            ),
        );
    }
    if service.external_traffic_policy == TrafficPolicy::Local && local_endpoints.is_empty() {
        filter_external(service, port, name, "has no local endpoints", Target::Drop, filter);
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
