//! kube-proxy in IPVS mode, following `pkg/proxy/ipvs/proxier.go` (Kubernetes v1.31): every
//! Service address is bound to the dummy device `kube-ipvs0` as a local /32, so routing hands
//! packets for it to INPUT, where IPVS translates them to a real server. One virtual server per
//! Service port and address (ClusterIP, external and load-balancer IPs, and the NodePort on
//! the node's address), scheduler `rr`, `persistent` for ClientIP affinity. iptables is kept
//! only to mark and masquerade, matching the Service addresses through IP sets.

use std::net::SocketAddrV4;

use ipnet::Ipv4Net;

use super::{MARK_MASQ, MASQ_MARK, POSTROUTING, SERVICES};
use crate::model::{Cluster, Service, ServicePort, ServiceType, TrafficPolicy};
use crate::net::ipset::{Entry, IpSet, IpSets, SetType};
use crate::net::iptables::{Match, Rule, Table, Target};
use crate::net::ipvs::{DUMMY_DEVICE, Ipvs, RealServer, VirtualServer};
use crate::net::route::{Route, RouteType};
use crate::net::{Interface, Link};

pub const CLUSTER_IP_SET: &str = "KUBE-CLUSTER-IP";
pub const NODE_PORTS: &str = "KUBE-NODE-PORT";
pub const LOOP_BACK_COMMENT: &str = "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose";
const SCHEDULER: &str = "rr";

/// The addresses a Service binds to `kube-ipvs0` (`--bind-address` in the proxier): its
/// ClusterIP and its load-balancer IP.
fn bound_addresses(s: &Service) -> Vec<std::net::Ipv4Addr> {
    s.cluster_ip.into_iter().chain(s.load_balancer_ip).collect()
}

fn real_servers(cluster: &Cluster, port: &ServicePort, node: usize, policy: TrafficPolicy) -> Vec<RealServer> {
    port.endpoints
        .iter()
        .filter(|e| policy == TrafficPolicy::Cluster || cluster.pods[e.pod].node == node)
        .map(|e| RealServer {
            addr: SocketAddrV4::new(e.ip, e.port),
            weight: 1,
        })
        .collect()
}

/// The IPVS table of `node`.
pub fn table(cluster: &Cluster, node: usize) -> Ipvs {
    let mut services = Vec::new();
    let node_ip = cluster.nodes[node].ip;
    for s in &cluster.services {
        for p in &s.ports {
            let origin = match &p.name {
                Some(n) => format!("{}:{n}", s.qualified_name()),
                None => s.qualified_name(),
            };
            let vs = |ip, port, policy| VirtualServer {
                protocol: p.protocol,
                addr: SocketAddrV4::new(ip, port),
                scheduler: SCHEDULER.into(),
                persistent: s.session_affinity_timeout,
                real_servers: real_servers(cluster, p, node, policy),
                origin: origin.clone(),
            };
            if let Some(ip) = s.cluster_ip {
                services.push(vs(ip, p.port, s.internal_traffic_policy));
            }
            if let Some(ip) = s.load_balancer_ip.filter(|_| s.kind == ServiceType::LoadBalancer) {
                services.push(vs(ip, p.port, s.external_traffic_policy));
            }
            if let Some(np) = p.node_port.filter(|_| s.kind != ServiceType::ClusterIP) {
                services.push(vs(node_ip, np, s.external_traffic_policy));
            }
        }
    }
    Ipvs { services }
}

/// `kube-ipvs0` with every bound address, and the `local` routes the kernel adds for them.
pub fn dummy_device(cluster: &Cluster) -> (Interface, Vec<Route>) {
    let mut addrs = Vec::new();
    let mut local = Vec::new();
    for ip in cluster.services.iter().flat_map(bound_addresses) {
        let net = Ipv4Net::new(ip, 32).expect("/32 is a valid prefix");
        if addrs.contains(&net) {
            continue;
        }
        addrs.push(net);
        local.extend(
            Route::connected(net, DUMMY_DEVICE)
                .1
                .into_iter()
                .filter(|r| r.kind == RouteType::Local),
        );
    }
    (Interface::new(DUMMY_DEVICE, Link::Dummy, addrs), local)
}

/// The IP sets the nat rules match: kube-proxy's `KUBE-CLUSTER-IP` is `hash:ip,port` matched
/// `dst,dst`; held here as the addresses alone (`hash:ip`, matched `dst`), which selects the
/// same packets unless a client sends to a Service address on a port it does not serve.
pub fn ipsets(cluster: &Cluster) -> IpSet {
    let entries = cluster
        .services
        .iter()
        .filter_map(|s| s.cluster_ip)
        .map(|ip| Entry {
            net: crate::net::iptables::host(ip),
            nomatch: false,
        })
        .collect();
    IpSet {
        name: CLUSTER_IP_SET.into(),
        kind: SetType::HashIp,
        entries,
    }
}

/// Adds the IPVS sets to those a host already holds (kube-router's, when it enforces policies).
pub fn with_sets(cluster: &Cluster, existing: &IpSets) -> IpSets {
    let mut sets = existing.clone();
    sets.insert(ipsets(cluster));
    sets
}

fn comment(text: &str) -> Match {
    Match::Comment(text.to_owned())
}

/// The nat table of `node`: `KUBE-SERVICES` marks for masquerade what comes from outside the
/// pod network to a ClusterIP, and what reaches a NodePort; `KUBE-POSTROUTING` masquerades a
/// pod that reaches itself (`KUBE-LOOP-BACK`) and what was marked.
pub fn nat(cluster: &Cluster, node_index: usize) -> Table {
    let mut nat = Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    let jump = |c: &str| Target::Jump(c.to_owned());
    nat.append(
        "PREROUTING",
        Rule::new(vec![comment("kubernetes service portals")], jump(SERVICES)),
    );
    nat.append(
        "OUTPUT",
        Rule::new(vec![comment("kubernetes service portals")], jump(SERVICES)),
    );
    nat.append(
        "POSTROUTING",
        Rule::new(vec![comment("kubernetes postrouting rules")], jump(POSTROUTING)),
    );
    nat.append(
        SERVICES,
        Rule::new(
            vec![
                comment("Kubernetes service cluster ip + port for masquerade purpose"),
                Match::Set {
                    name: CLUSTER_IP_SET.into(),
                    source: false,
                    negated: false,
                },
                Match::Source {
                    net: cluster.pod_network,
                    negated: true,
                },
            ],
            jump(MARK_MASQ),
        ),
    );
    nat.append(
        SERVICES,
        Rule::new(
            vec![Match::AddrTypeLocal {
                destination: true,
                negated: false,
            }],
            jump(NODE_PORTS),
        ),
    );
    nat.ensure(NODE_PORTS);
    for s in cluster.services.iter().filter(|s| s.kind != ServiceType::ClusterIP) {
        for p in &s.ports {
            if let Some(np) = p.node_port {
                nat.append(
                    NODE_PORTS,
                    Rule::new(
                        vec![
                            comment("Kubernetes nodeport TCP port for masquerade purpose"),
                            Match::Protocol(p.protocol),
                            Match::DestinationPort {
                                protocol: p.protocol,
                                port: Some(np),
                            },
                        ],
                        jump(MARK_MASQ),
                    ),
                );
            }
        }
    }
    // KUBE-LOOP-BACK is a `hash:ip,port,ip` set matched `dst,dst,src`: one element per local
    // endpoint, the endpoint as both destination and source. Written here as one rule per
    // element, which matches the same packets.
    let mut seen = Vec::new();
    for s in &cluster.services {
        for p in &s.ports {
            for e in p.endpoints.iter().filter(|e| cluster.pods[e.pod].node == node_index) {
                if seen.contains(&(e.ip, e.port, p.protocol)) {
                    continue;
                }
                seen.push((e.ip, e.port, p.protocol));
                let host = crate::net::iptables::host(e.ip);
                nat.append(
                    POSTROUTING,
                    Rule::new(
                        vec![
                            comment(LOOP_BACK_COMMENT),
                            Match::Source {
                                net: host,
                                negated: false,
                            },
                            Match::Destination {
                                net: host,
                                negated: false,
                            },
                            Match::Protocol(p.protocol),
                            Match::DestinationPort {
                                protocol: p.protocol,
                                port: Some(e.port),
                            },
                        ],
                        Target::Masquerade { random_fully: false },
                    ),
                );
            }
        }
    }
    super::post_routing_masquerade(&mut nat);
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
    nat
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::{Source, parse};
    use crate::net::Protocol;

    fn cluster() -> Cluster {
        let source = Source {
            name: "kube-proxy-ipvs".into(),
            text: include_str!("../../../scenarios/kube-proxy-ipvs.yaml").into(),
        };
        let (spec, _) = parse(&source).unwrap();
        crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster
    }

    #[test]
    fn every_service_port_gets_a_virtual_server_and_local_traffic_policy_narrows_the_node_port() {
        let c = cluster();
        let node1 = c.node_named("node-1").unwrap();
        let t = table(&c, node1);
        let web = t
            .lookup(Protocol::Tcp, "10.96.0.10:80".parse().unwrap())
            .expect("web's ClusterIP");
        assert_eq!(web.real_servers.len(), 2);
        assert_eq!(web.scheduler, "rr");
        let sticky = t.lookup(Protocol::Tcp, "10.96.0.70:80".parse().unwrap()).unwrap();
        assert_eq!(sticky.persistent, Some(10800));
        // api-local's only endpoint is on node-2: node-1's NodePort has no real server.
        let local = t.lookup(Protocol::Tcp, "10.100.0.2:30081".parse().unwrap()).unwrap();
        assert!(local.real_servers.is_empty());
        let node2 = table(&c, c.node_named("node-2").unwrap());
        assert_eq!(
            node2
                .lookup(Protocol::Tcp, "10.100.0.3:30081".parse().unwrap())
                .unwrap()
                .real_servers
                .len(),
            1
        );
        assert!(t.lookup(Protocol::Tcp, "10.100.0.3:30081".parse().unwrap()).is_none());
    }

    #[test]
    fn the_dummy_device_holds_cluster_and_load_balancer_ips_as_local_addresses() {
        let c = cluster();
        let (dev, local) = dummy_device(&c);
        assert_eq!(dev.link, Link::Dummy);
        assert!(dev.addrs.iter().any(|a| a.to_string() == "35.184.97.171/32"));
        assert_eq!(dev.addrs.len(), local.len());
        assert!(
            local
                .iter()
                .all(|r| r.kind == RouteType::Local && r.dst.prefix_len() == 32)
        );
    }
}
