//! kube-proxy in iptables mode: the `nat` and `filter` rules it writes on a node, following
//! `pkg/proxy/iptables/proxier.go` (chain names, rule order, comments and probabilities).

use std::net::SocketAddrV4;
use std::sync::Arc;

mod external;
pub mod ipvs;
mod localnet;
pub mod nftables;
mod per_node;

use super::kubenet::masquerade_rules;
use super::names::{endpoint_chain, service_chain_suffix, service_port_name};
use crate::model::{Cluster, Service, ServicePort, ServiceType, TrafficPolicy};
use crate::net::iptables::{CtState, Match, RecentCheck, Rule, Table, Target, host, stored_probability};

pub const MASQ_MARK: u32 = 0x4000;
pub const SERVICES: &str = "KUBE-SERVICES";
pub const NODEPORTS: &str = "KUBE-NODEPORTS";
pub const MARK_MASQ: &str = "KUBE-MARK-MASQ";
pub const POSTROUTING: &str = "KUBE-POSTROUTING";
pub const EXTERNAL_SERVICES: &str = "KUBE-EXTERNAL-SERVICES";
pub const FORWARD: &str = "KUBE-FORWARD";
pub const PROXY_FIREWALL: &str = "KUBE-PROXY-FIREWALL";

/// The chains kube-proxy writes for one Service port.
pub struct PortChains {
    pub port_name: String,
    pub svc: String,
    pub svl: String,
    pub ext: String,
    pub fw: String,
    /// One per endpoint, in the order of `ServicePort::endpoints`.
    pub endpoints: Vec<String>,
}

pub fn port_chains(service: &Service, port: &ServicePort) -> PortChains {
    let port_name = service_port_name(service, port);
    let suffix = service_chain_suffix(&port_name, port.protocol);
    PortChains {
        svc: format!("KUBE-SVC-{suffix}"),
        svl: format!("KUBE-SVL-{suffix}"),
        ext: format!("KUBE-EXT-{suffix}"),
        fw: format!("KUBE-FW-{suffix}"),
        endpoints: port
            .endpoints
            .iter()
            .map(|e| endpoint_chain(&port_name, port.protocol, &format!("{}:{}", e.ip, e.port)))
            .collect(),
        port_name,
    }
}

fn comment(text: impl Into<String>) -> Match {
    Match::Comment(text.into())
}

fn jump(chain: &str) -> Target {
    Target::Jump(chain.to_owned())
}

fn ct(states: &[CtState]) -> Match {
    Match::Conntrack {
        states: states.to_vec(),
        negated: false,
    }
}

/// The `nat` and `filter` tables kube-proxy (and the masquerade agent) leave on `node`.
pub fn tables(cluster: &Cluster, node: usize) -> (Table, Table) {
    KubeProxy::new(cluster).tables(node)
}

/// kube-proxy's rules for a whole cluster: what it writes on every node, held once, and what it
/// writes differently on each node (under `externalTrafficPolicy: Local`), made for a node the
/// first time its tables are read.
pub struct KubeProxy {
    nat: Arc<Table>,
    filter: Arc<Table>,
    per_node: Arc<per_node::PerNode>,
}

impl KubeProxy {
    pub fn new(cluster: &Cluster) -> KubeProxy {
        let (nat, filter) = shared_tables(cluster);
        let (nat, filter) = (Arc::new(nat), Arc::new(filter));
        KubeProxy {
            per_node: Arc::new(per_node::PerNode::new(cluster, &nat, &filter)),
            nat,
            filter,
        }
    }

    /// The `filter` chains kube-proxy writes the same on every node.
    pub fn shared_filter(&self) -> &Table {
        &self.filter
    }

    /// What makes `node`'s own `filter` chains, for a table that layers them over other
    /// shared chains.
    pub fn own_filter_chains(&self, node: usize) -> crate::net::iptables::MakeChains {
        let per_node = Arc::clone(&self.per_node);
        Arc::new(move || per_node.filter_chains(node))
    }

    /// `node`'s `nat` and `filter` tables: the shared rules with the node's own chains on top.
    pub fn tables(&self, node: usize) -> (Table, Table) {
        let nat = {
            let per_node = Arc::clone(&self.per_node);
            Table::layered(Arc::clone(&self.nat), Arc::new(move || per_node.nat_chains(node)))
        };
        let filter = {
            let per_node = Arc::clone(&self.per_node);
            Table::layered(Arc::clone(&self.filter), Arc::new(move || per_node.filter_chains(node)))
        };
        (nat, filter)
    }
}

/// The jumps from the `nat` hooks into kube-proxy's chains, the same in iptables and IPVS mode.
pub(super) fn nat_hooks(nat: &mut Table) {
    for hook in ["PREROUTING", "OUTPUT"] {
        nat.append(
            hook,
            Rule::new(vec![comment("kubernetes service portals")], jump(SERVICES)),
        );
    }
    nat.append(
        "POSTROUTING",
        Rule::new(vec![comment("kubernetes postrouting rules")], jump(POSTROUTING)),
    );
}

/// KUBE-MARK-MASQ: marks a packet for masquerading in KUBE-POSTROUTING, in iptables and IPVS
/// mode alike.
pub(super) fn mark_masq(nat: &mut Table) {
    nat.append(
        MARK_MASQ,
        Rule::new(
            Vec::new(),
            Target::SetXMark {
                value: MASQ_MARK,
                mask: MASQ_MARK,
            },
        ),
    );
}

/// The rules kube-proxy (and the masquerade agent) write the same on every node.
fn shared_tables(cluster: &Cluster) -> (Table, Table) {
    let mut nat = Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    let mut filter = Table::new("filter", &["INPUT", "FORWARD", "OUTPUT"]);

    nat_hooks(&mut nat);
    masquerade_rules(cluster, &mut nat);
    mark_masq(&mut nat);
    post_routing_masquerade(&mut nat);

    let new = || ct(&[CtState::New]);
    // kube-proxy puts each jump at the top of its chain, one after the other, so they end up in
    // the reverse of the order it lists them in: the load-balancer firewall comes first.
    for builtin in ["INPUT", "FORWARD", "OUTPUT"] {
        filter.append(
            builtin,
            Rule::new(
                vec![new(), comment("kubernetes load balancer firewall")],
                jump(PROXY_FIREWALL),
            ),
        );
    }
    filter.append(
        "INPUT",
        Rule::new(vec![comment("kubernetes health check service ports")], jump(NODEPORTS)),
    );
    filter.append(
        "INPUT",
        Rule::new(
            vec![new(), comment("kubernetes externally-visible service portals")],
            jump(EXTERNAL_SERVICES),
        ),
    );
    filter.append(
        "FORWARD",
        Rule::new(vec![comment("kubernetes forwarding rules")], jump(FORWARD)),
    );
    filter.append(
        "FORWARD",
        Rule::new(vec![new(), comment("kubernetes service portals")], jump(SERVICES)),
    );
    filter.append(
        "FORWARD",
        Rule::new(
            vec![new(), comment("kubernetes externally-visible service portals")],
            jump(EXTERNAL_SERVICES),
        ),
    );
    filter.append(
        "OUTPUT",
        Rule::new(vec![new(), comment("kubernetes service portals")], jump(SERVICES)),
    );
    localnet::block_localnet(&mut filter);
    filter.append(FORWARD, Rule::new(vec![ct(&[CtState::Invalid])], Target::Drop));
    filter.append(
        FORWARD,
        Rule::new(
            vec![
                comment("kubernetes forwarding rules"),
                Match::Mark {
                    value: MASQ_MARK,
                    mask: MASQ_MARK,
                    negated: false,
                },
            ],
            Target::Accept,
        ),
    );
    filter.append(
        FORWARD,
        Rule::new(
            vec![
                comment("kubernetes forwarding conntrack rule"),
                ct(&[CtState::Related, CtState::Established]),
            ],
            Target::Accept,
        ),
    );
    // Chains exist even when empty: kube-proxy creates them all up front.
    for chain in [SERVICES, NODEPORTS, EXTERNAL_SERVICES, PROXY_FIREWALL] {
        filter.ensure(chain);
        nat.ensure(chain);
    }
    nat.ensure(NODEPORTS);

    for service in &cluster.services {
        if service.cluster_ip.is_none() {
            continue; // Headless: DNS hands out pod IPs, kube-proxy has nothing to do.
        }
        for port in &service.ports {
            // kube-proxy accepts the health-check port once per Service port, endpoints or not.
            if let Some(health) = health_check_port(service) {
                filter.append(
                    NODEPORTS,
                    Rule::new(
                        vec![
                            Match::Protocol(crate::net::Protocol::Tcp),
                            comment(format!("{} health check node port", service_port_name(service, port))),
                            Match::DestinationPort {
                                protocol: crate::net::Protocol::Tcp,
                                port: Some(health),
                            },
                        ],
                        Target::Accept,
                    ),
                );
            }
            service_port_rules(cluster, service, port, &mut nat, &mut filter);
        }
    }

    nat.append(
        SERVICES,
        Rule::new(
            vec![
                comment("kubernetes service nodeports; NOTE: this must be the last rule in this chain"),
                Match::AddrTypeLocal {
                    destination: true,
                    negated: false,
                },
            ],
            jump(NODEPORTS),
        ),
    );
    (nat, filter)
}

/// The rules of one Service port that are the same on every node; the rest are in [`per_node`].
fn service_port_rules(cluster: &Cluster, service: &Service, port: &ServicePort, nat: &mut Table, filter: &mut Table) {
    let chains = port_chains(service, port);
    let name = &chains.port_name;
    let cluster_ip = service.cluster_ip.expect("headless Services are skipped");
    let proto = port.protocol;
    let dport = |p: u16| Match::DestinationPort {
        protocol: proto,
        port: Some(p),
    };
    let to_ip = |ip| Match::Destination {
        net: host(ip),
        negated: false,
    };
    let external = service.externally_accessible();

    if port.endpoints.is_empty() {
        filter.append(
            SERVICES,
            Rule::new(
                vec![
                    to_ip(cluster_ip),
                    Match::Protocol(proto),
                    comment(format!("{name} has no endpoints")),
                    dport(port.port),
                ],
                Target::Reject,
            ),
        );
        return;
    }

    // ClusterIP: dispatch, masquerade for non-pod sources, then spread over the endpoints. Under
    // internalTrafficPolicy Local the dispatch goes to the node's own KUBE-SVL chain (or is
    // dropped where the node has no endpoint), so it is the node's own (`per_node`).
    let internal_local = service.internal_traffic_policy == TrafficPolicy::Local;
    if !internal_local {
        nat.append(
            SERVICES,
            Rule::new(
                vec![
                    to_ip(cluster_ip),
                    Match::Protocol(proto),
                    comment(format!("{name} cluster IP")),
                    dport(port.port),
                ],
                jump(&chains.svc),
            ),
        );
        nat.append(
            &chains.svc,
            cluster_ip_masquerade(cluster.pod_network, service, port, &chains),
        );
    }
    if uses_cluster_chain(service) {
        let all: Vec<usize> = (0..port.endpoints.len()).collect();
        spread(service, port, &chains, &chains.svc, &all, nat);
    }

    if external {
        external::entry_rules(cluster, service, port, &chains, nat, filter);
        if service.external_traffic_policy == TrafficPolicy::Cluster {
            external::ext_chain(cluster.pod_network, service, &chains, &[], nat);
        }
    }

    // kube-proxy writes a KUBE-SEP chain only for the endpoints a node can send to: all of them
    // when the KUBE-SVC chain is in use, otherwise only the node's own (`per_node`).
    if uses_cluster_chain(service) {
        for i in 0..port.endpoints.len() {
            endpoint_rules(service, port, &chains, i, nat);
        }
    }
}

/// Whether kube-proxy writes a port's KUBE-SVC chain, which spreads over every endpoint: under
/// internalTrafficPolicy Cluster, and for any Service reachable from outside (whose KUBE-EXT
/// chain sends the node's own and its pods' traffic there whatever the external policy).
pub(super) fn uses_cluster_chain(service: &Service) -> bool {
    service.internal_traffic_policy == TrafficPolicy::Cluster || service.externally_accessible()
}

/// The first rule of the chain ClusterIP traffic is sent to (KUBE-SVC, or KUBE-SVL under
/// internalTrafficPolicy Local): traffic from outside the pod network is masqueraded.
pub(super) fn cluster_ip_masquerade(
    pod_network: ipnet::Ipv4Net,
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
) -> Rule {
    let cluster_ip = service.cluster_ip.expect("headless Services are skipped");
    Rule::new(
        vec![
            Match::Source {
                net: pod_network,
                negated: true,
            },
            Match::Destination {
                net: host(cluster_ip),
                negated: false,
            },
            Match::Protocol(port.protocol),
            comment(format!("{} cluster IP", chains.port_name)),
            Match::DestinationPort {
                protocol: port.protocol,
                port: Some(port.port),
            },
        ],
        jump(MARK_MASQ),
    )
}

/// The KUBE-SEP chain of endpoint `i`: masquerade hairpin traffic, then DNAT.
pub(super) fn endpoint_rules(service: &Service, port: &ServicePort, chains: &PortChains, i: usize, nat: &mut Table) {
    let name = &chains.port_name;
    let endpoint = &port.endpoints[i];
    let sep = &chains.endpoints[i];
    nat.append(
        sep,
        Rule::new(
            vec![
                Match::Source {
                    net: host(endpoint.ip),
                    negated: false,
                },
                comment(name.clone()),
            ],
            jump(MARK_MASQ),
        ),
    );
    let mut dnat = vec![Match::Protocol(port.protocol), comment(name.clone())];
    if service.session_affinity_timeout.is_some() {
        dnat.push(Match::Recent {
            name: sep.clone(),
            check: RecentCheck::Set,
        });
    }
    dnat.push(Match::DestinationPort {
        protocol: port.protocol,
        port: None,
    });
    nat.append(
        sep,
        Rule::new(dnat, Target::Dnat(SocketAddrV4::new(endpoint.ip, endpoint.port))),
    );
}

/// The rules of a KUBE-SVC or KUBE-SVL chain that pick one of `endpoints`: affinity checks
/// first, then one rule per endpoint with probability 1/(n-i), the last one unconditional.
pub(super) fn spread(
    service: &Service,
    port: &ServicePort,
    chains: &PortChains,
    chain: &str,
    endpoints: &[usize],
    nat: &mut Table,
) {
    let name = &chains.port_name;
    if let Some(seconds) = service.session_affinity_timeout {
        for &i in endpoints {
            let e = &port.endpoints[i];
            let sep = &chains.endpoints[i];
            nat.append(
                chain,
                Rule::new(
                    vec![
                        comment(format!("{name} -> {}:{}", e.ip, e.port)),
                        Match::Recent {
                            name: sep.clone(),
                            check: RecentCheck::Rcheck { seconds },
                        },
                    ],
                    jump(sep),
                ),
            );
        }
    }
    let n = endpoints.len();
    for (k, &i) in endpoints.iter().enumerate() {
        let e = &port.endpoints[i];
        let mut matches = vec![comment(format!("{name} -> {}:{}", e.ip, e.port))];
        if k + 1 < n {
            matches.push(Match::Statistic {
                stored: stored_probability(1.0 / (n - k) as f64),
            });
        }
        nat.append(chain, Rule::new(matches, jump(&chains.endpoints[i])));
    }
}

/// The port on which kube-proxy answers a load balancer's health checks for `service`: only
/// Services with `externalTrafficPolicy: Local` have one.
pub fn health_check_port(service: &Service) -> Option<u16> {
    (service.external_traffic_policy == TrafficPolicy::Local && service.kind != ServiceType::ClusterIP)
        .then_some(service.health_check_node_port)
        .flatten()
}

/// kube-proxy's health server, which a cloud load balancer asks under `externalTrafficPolicy:
/// Cluster`.
pub const HEALTHZ_PORT: u16 = 10256;

/// The sockets kube-proxy itself listens on, in the node's network namespace.
pub fn listeners(cluster: &Cluster) -> Vec<crate::net::Listener> {
    let mut list = vec![crate::net::Listener {
        port: HEALTHZ_PORT,
        protocol: crate::net::Protocol::Tcp,
        owner: "kube-proxy's health server (/healthz)".into(),
    }];
    for service in &cluster.services {
        if let Some(port) = health_check_port(service) {
            list.push(crate::net::Listener {
                port,
                protocol: crate::net::Protocol::Tcp,
                owner: format!(
                    "kube-proxy's health check for {} (healthCheckNodePort)",
                    service.qualified_name()
                ),
            });
        }
    }
    list
}

/// What a kube-proxy rule that dropped or rejected a packet means, read from the comment it
/// wrote on the rule.
pub fn verdict_for_rule(rule: &str) -> Option<crate::trace::Verdict> {
    if rule.contains(" has no endpoints\"") {
        Some(crate::trace::Verdict::NoEndpoints)
    } else if rule.contains(" has no local endpoints\"") {
        // The ClusterIP drop (internalTrafficPolicy) is in KUBE-SERVICES, the drop of external
        // traffic in KUBE-EXTERNAL-SERVICES.
        Some(if rule.starts_with(&format!("-A {SERVICES} ")) {
            crate::trace::Verdict::NoLocalEndpointsInternal
        } else {
            crate::trace::Verdict::NoLocalEndpoints
        })
    } else {
        None
    }
}

/// `KUBE-POSTROUTING`: masquerade what `KUBE-MARK-MASQ` marked, clearing the mark, as every
/// mode of kube-proxy that uses iptables for it writes it.
pub(super) fn post_routing_masquerade(nat: &mut Table) {
    nat.append(
        POSTROUTING,
        Rule::new(
            vec![Match::Mark {
                value: MASQ_MARK,
                mask: MASQ_MARK,
                negated: true,
            }],
            Target::Return,
        ),
    );
    nat.append(
        POSTROUTING,
        Rule::new(
            Vec::new(),
            Target::SetXMark {
                value: MASQ_MARK,
                mask: 0,
            },
        ),
    );
    nat.append(
        POSTROUTING,
        Rule::new(
            vec![comment("kubernetes service traffic requiring SNAT")],
            Target::Masquerade { random_fully: true },
        ),
    );
}

#[cfg(test)]
mod tests;
