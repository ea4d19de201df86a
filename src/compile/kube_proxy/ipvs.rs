//! kube-proxy in IPVS mode, following `pkg/proxy/ipvs/proxier.go` (Kubernetes v1.31): every
//! Service address is bound to the dummy device `kube-ipvs0` as a local /32, so routing hands
//! packets for it to INPUT, where IPVS translates them to a real server. One virtual server per
//! Service port and address (ClusterIP, external and load-balancer IPs, and the NodePort on
//! the node's address), scheduler `rr`, `persistent` for ClientIP affinity. iptables is kept
//! only to mark and masquerade, matching the Service addresses through IP sets.

use std::collections::HashSet;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use ipnet::Ipv4Net;

use super::{MARK_MASQ, POSTROUTING, SERVICES};
use crate::model::{Cluster, Service, ServiceType, TrafficPolicy};
use crate::net::ipset::{Entry, IpSet, IpSets, SetType};
use crate::net::iptables::{Chain, Match, Rule, Table, Target};
use crate::net::ipvs::{Address, DUMMY_DEVICE, Ipvs, RealServer, Shared, Template};
use crate::net::route::{Route, RouteTable, RouteType};
use crate::net::{Host, Interface, Link, Protocol};

pub const CLUSTER_IP_SET: &str = "KUBE-CLUSTER-IP";
pub const NODE_PORTS: &str = "KUBE-NODE-PORT";
pub const LOOP_BACK_COMMENT: &str = "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose";
const SCHEDULER: &str = "rr";

/// A local endpoint a pod may reach itself through (`KUBE-LOOP-BACK`'s element).
type LoopBack = (Ipv4Addr, u16, Protocol);

/// kube-proxy's IPVS state for the whole cluster, built once. What every node holds alike is
/// built here and shared (the virtual servers, `kube-ipvs0` and its local routes, the sets,
/// the nat rules but `KUBE-POSTROUTING`); what is a node's own (its NodePort address, its real
/// servers under a `Local` traffic policy, its `KUBE-LOOP-BACK` endpoints) is kept per node and
/// small: it is as long as the node's own endpoints, not as the cluster's Services.
pub struct KubeProxy {
    shared: Arc<Shared>,
    /// By node, the real servers of each `Local` virtual server that has some on the node.
    local: Vec<Vec<(usize, Vec<RealServer>)>>,
    nat: Arc<Table>,
    /// By node, its endpoints in the order kube-proxy writes their masquerade rules.
    loop_back: Arc<Vec<Vec<LoopBack>>>,
    device: Interface,
    local_routes: Arc<RouteTable>,
    cluster_ips: IpSet,
    /// The sets the last host held, and those with the IPVS sets added: every node holds the
    /// same, so they are made once.
    sets: Option<(Arc<IpSets>, Arc<IpSets>)>,
}

impl KubeProxy {
    pub fn new(cluster: &Cluster) -> KubeProxy {
        let (templates, local) = virtual_servers(cluster);
        let (device, local_routes) = dummy_device(cluster);
        KubeProxy {
            shared: Arc::new(Shared::new(templates)),
            local,
            nat: Arc::new(shared_nat(cluster)),
            loop_back: Arc::new(loop_back(cluster)),
            device,
            local_routes: Arc::new(RouteTable::new("local", local_routes)),
            cluster_ips: ipsets(cluster),
            sets: None,
        }
    }

    /// Gives `host`, the host of node `node`, kube-ipvs0 and its local routes, the IPVS table,
    /// the sets and the nat rules.
    pub fn install(&mut self, host: &mut Host, node: usize, node_ip: Ipv4Addr) {
        host.interfaces.push(self.device.clone());
        if let Some(t) = host.tables.iter_mut().find(|t| t.name == "local") {
            if t.shared.is_none() {
                let own = std::mem::replace(t, RouteTable::new("local", Vec::new()));
                *t = own.with_shared(Arc::clone(&self.local_routes), 0..0);
            } else {
                t.routes.extend(self.local_routes.routes.iter().cloned());
            }
        }
        host.nat = self.nat(node);
        host.ipsets = match &self.sets {
            Some((from, to)) if Arc::ptr_eq(from, &host.ipsets) || **from == *host.ipsets => Arc::clone(to),
            _ => {
                let mut sets = (*host.ipsets).clone();
                sets.insert(self.cluster_ips.clone());
                let to = Arc::new(sets);
                self.sets = Some((Arc::clone(&host.ipsets), Arc::clone(&to)));
                to
            }
        };
        host.ipvs = Some(self.table(node, node_ip));
    }

    /// The IPVS table of `node`, whose address is `node_ip`.
    pub fn table(&self, node: usize, node_ip: Ipv4Addr) -> Ipvs {
        let local = self.local.get(node).cloned().unwrap_or_default();
        Ipvs::new(Arc::clone(&self.shared), node_ip, local)
    }

    /// The nat table of `node`: the shared rules, and its own `KUBE-POSTROUTING`, made when the
    /// table is first read.
    pub fn nat(&self, node: usize) -> Table {
        let loop_back = Arc::clone(&self.loop_back);
        Table::layered(
            Arc::clone(&self.nat),
            Arc::new(move || post_routing(loop_back.get(node).map_or(&[], Vec::as_slice))),
        )
    }

    /// `kube-ipvs0` as every node holds it.
    pub fn device(&self) -> &Interface {
        &self.device
    }
}

/// The addresses a Service binds to `kube-ipvs0` (`--bind-address` in the proxier): its
/// ClusterIP and its load-balancer IP.
fn bound_addresses(s: &Service) -> Vec<std::net::Ipv4Addr> {
    s.cluster_ip.into_iter().chain(s.load_balancer_ip).collect()
}

/// Every node's virtual servers, one per Service port and address (ClusterIP, load-balancer
/// IP, NodePort), and by node the real servers of those whose traffic policy is `Local`.
#[allow(clippy::type_complexity)]
fn virtual_servers(cluster: &Cluster) -> (Vec<Template>, Vec<Vec<(usize, Vec<RealServer>)>>) {
    let mut templates = Vec::new();
    let mut local: Vec<Vec<(usize, Vec<RealServer>)>> = vec![Vec::new(); cluster.nodes.len()];
    for s in &cluster.services {
        for p in &s.ports {
            let origin = match &p.name {
                Some(n) => format!("{}:{n}", s.qualified_name()),
                None => s.qualified_name(),
            };
            let mut push = |addr, policy| {
                let at = templates.len();
                let real = |e: &crate::model::Endpoint| RealServer {
                    addr: SocketAddrV4::new(e.ip, e.port),
                    weight: 1,
                };
                let real_servers = if policy == TrafficPolicy::Cluster {
                    Some(p.endpoints.iter().map(real).collect())
                } else {
                    for e in &p.endpoints {
                        let Some(mine) = local.get_mut(cluster.pods[e.pod].node) else {
                            continue;
                        };
                        match mine.last_mut() {
                            Some((i, servers)) if *i == at => servers.push(real(e)),
                            _ => mine.push((at, vec![real(e)])),
                        }
                    }
                    None
                };
                templates.push(Template {
                    protocol: p.protocol,
                    addr,
                    scheduler: SCHEDULER.into(),
                    persistent: s.session_affinity_timeout,
                    real_servers,
                    origin: origin.clone(),
                });
            };
            if let Some(ip) = s.cluster_ip {
                push(
                    Address::Service(SocketAddrV4::new(ip, p.port)),
                    s.internal_traffic_policy,
                );
            }
            if let Some(ip) = s.load_balancer_ip.filter(|_| s.kind == ServiceType::LoadBalancer) {
                push(
                    Address::Service(SocketAddrV4::new(ip, p.port)),
                    s.external_traffic_policy,
                );
            }
            if let Some(np) = p.node_port.filter(|_| s.kind != ServiceType::ClusterIP) {
                push(Address::NodePort(np), s.external_traffic_policy);
            }
        }
    }
    (templates, local)
}

/// `kube-ipvs0` with every bound address, and the `local` routes the kernel adds for them.
pub fn dummy_device(cluster: &Cluster) -> (Interface, Vec<Route>) {
    let mut addrs = Vec::new();
    let mut seen = HashSet::new();
    let mut local = Vec::new();
    for ip in cluster.services.iter().flat_map(bound_addresses) {
        let net = Ipv4Net::new(ip, 32).expect("/32 is a valid prefix");
        if !seen.insert(net) {
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

fn comment(text: &str) -> Match {
    Match::Comment(text.to_owned())
}

/// The nat rules every node holds: `KUBE-SERVICES` marks for masquerade what comes from
/// outside the pod network to a ClusterIP, and what reaches a NodePort; `KUBE-POSTROUTING`,
/// which masquerades a pod that reaches itself (`KUBE-LOOP-BACK`) and what was marked, is each
/// node's own ([`post_routing`]).
fn shared_nat(cluster: &Cluster) -> Table {
    let mut nat = Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"]);
    let jump = |c: &str| Target::Jump(c.to_owned());
    super::nat_hooks(&mut nat);
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
    super::mark_masq(&mut nat);
    nat
}

/// By node, the endpoints on it, each (address, port, protocol) once, in the order of the
/// Services, their ports and their endpoints.
fn loop_back(cluster: &Cluster) -> Vec<Vec<LoopBack>> {
    let mut by_node = vec![Vec::new(); cluster.nodes.len()];
    let mut seen = HashSet::new();
    for s in &cluster.services {
        for p in &s.ports {
            for e in &p.endpoints {
                let node = cluster.pods[e.pod].node;
                if node < by_node.len() && seen.insert((node, e.ip, e.port, p.protocol)) {
                    by_node[node].push((e.ip, e.port, p.protocol));
                }
            }
        }
    }
    by_node
}

/// A node's `KUBE-POSTROUTING`: KUBE-LOOP-BACK is a `hash:ip,port,ip` set matched
/// `dst,dst,src`, one element per local endpoint, the endpoint as both destination and source;
/// written here as one rule per element, which matches the same packets. Then the masquerade
/// of what was marked.
fn post_routing(loop_back: &[LoopBack]) -> Vec<Chain> {
    let mut nat = Table::new("nat", &[]);
    for &(ip, port, protocol) in loop_back {
        let host = crate::net::iptables::host(ip);
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
                    Match::Protocol(protocol),
                    Match::DestinationPort {
                        protocol,
                        port: Some(port),
                    },
                ],
                Target::Masquerade { random_fully: false },
            ),
        );
    }
    super::post_routing_masquerade(&mut nat);
    nat.into_own_chains()
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
        let kube_proxy = KubeProxy::new(&c);
        let table = |name: &str| {
            let n = c.node_named(name).unwrap();
            kube_proxy.table(n, c.nodes[n].ip)
        };
        let t = table("node-1");
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
        let node2 = table("node-2");
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

    /// Each node's nat table is the shared rules and its own KUBE-POSTROUTING: a node's
    /// KUBE-LOOP-BACK rules name its own endpoints only.
    #[test]
    fn loop_back_rules_are_each_nodes_own_and_the_rest_is_shared() {
        let c = cluster();
        let kube_proxy = KubeProxy::new(&c);
        let loop_back_sources = |name: &str| -> Vec<String> {
            let nat = kube_proxy.nat(c.node_named(name).unwrap());
            nat.chain(POSTROUTING)
                .unwrap()
                .rules
                .iter()
                .filter(|r| r.comment() == Some(LOOP_BACK_COMMENT))
                .map(|r| r.save_line(POSTROUTING))
                .collect()
        };
        let (one, two) = (loop_back_sources("node-1"), loop_back_sources("node-2"));
        assert!(!one.is_empty() && !two.is_empty());
        assert!(one.iter().all(|l| !two.contains(l)), "{one:?} {two:?}");
        for (i, pod) in c.pods.iter().enumerate() {
            let rule = one.iter().any(|l| l.contains(&format!("-s {}/32", pod.ip)));
            let serves = c
                .services
                .iter()
                .flat_map(|s| &s.ports)
                .any(|p| p.endpoints.iter().any(|e| e.pod == i));
            assert_eq!(rule, serves && c.nodes[pod.node].name == "node-1", "{}", pod.name);
        }
        let node1 = kube_proxy.nat(0);
        let node2 = kube_proxy.nat(1);
        assert_eq!(node1.chain(SERVICES), node2.chain(SERVICES));
        assert!(std::ptr::eq(
            node1.chain(NODE_PORTS).unwrap(),
            node2.chain(NODE_PORTS).unwrap()
        ));
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
