//! kubenet, as kubelet configures it: a `cbr0` bridge per node holding the first address of the
//! node's podCIDR, one veth pair per pod, and (outside the nodes) one cloud route per podCIDR
//! pointing at the node that owns it.

use std::net::Ipv4Addr;
use std::sync::{Arc, LazyLock};

use ipnet::Ipv4Net;

use super::names::host_veth;
use super::pod_host_name;
use crate::model::{Cluster, HairpinMode, LINK_LOCAL, RouteKind};
use crate::net::iptables::{Match, Rule, Table, Target};
use crate::net::route::{Route, RouteProto, RouteTable, RouteType};
use crate::net::{Host, Interface, Link, Listener, NetState, Role};

pub const BRIDGE: &str = "cbr0";
pub const NODE_NETWORK: &str = "node-network";
const MASQ_CHAIN: &str = "IP-MASQ-AGENT";

pub(super) fn net(ip: Ipv4Addr, len: u8) -> Ipv4Net {
    Ipv4Net::new(ip, len).expect("prefix lengths here come from validated networks")
}

fn loopback() -> (Interface, Vec<Route>) {
    // The same on every host; made once, copied for each.
    static LOOPBACK: LazyLock<(Interface, Vec<Route>)> = LazyLock::new(|| {
        let lo = net(Ipv4Addr::LOCALHOST, 8);
        let mut local = Route::connected(lo, "lo").1;
        // The whole of 127/8 is local, not only 127.0.0.1.
        local.insert(
            0,
            Route {
                kind: RouteType::Local,
                dst: lo.trunc(),
                ..local[0].clone()
            },
        );
        (Interface::new("lo", Link::Loopback, vec![lo]), local)
    });
    LOOPBACK.clone()
}

/// Every pod's tables start out the same and empty; they share one copy.
fn empty_nat() -> Table {
    static EMPTY: LazyLock<Arc<Table>> =
        LazyLock::new(|| Arc::new(Table::new("nat", &["PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"])));
    Table::over(Arc::clone(&EMPTY))
}

fn empty_filter() -> Table {
    static EMPTY: LazyLock<Arc<Table>> =
        LazyLock::new(|| Arc::new(Table::new("filter", &["INPUT", "FORWARD", "OUTPUT"])));
    Table::over(Arc::clone(&EMPTY))
}

pub(super) fn host(name: String, role: Role) -> Host {
    Host {
        name,
        role,
        interfaces: Vec::new(),
        tables: Vec::new(),
        ip_forward: false,
        bridge_nf_call_iptables: false,
        route_localnet: false,
        nat: empty_nat(),
        filter: empty_filter(),
        ipsets: Default::default(),
        listeners: Vec::new(),
    }
}

/// What a pod's namespace is made from.
struct PodNamespace {
    addr: Ipv4Net,
    gateway: Ipv4Addr,
    node_host: usize,
    /// The host side of the pod's veth pair.
    veth: String,
    listeners: Vec<Listener>,
}

impl PodNamespace {
    fn host(&self, name: String, role: Role) -> Host {
        let mut h = host(name, role);
        let (lo, mut local) = loopback();
        let (connected, eth_local) = Route::connected(self.addr, "eth0");
        local.extend(eth_local);
        h.interfaces = vec![
            lo,
            Interface::new(
                "eth0",
                Link::Veth {
                    peer_host: self.node_host,
                    peer_if: self.veth.clone(),
                },
                vec![self.addr],
            ),
        ];
        h.tables = RouteTable::local_and_main(
            local,
            vec![
                Route::unicast(Ipv4Net::default(), Some(self.gateway), "eth0")
                    .with_origin(format!("the CNI's default route: via the node's bridge {BRIDGE}")),
                connected,
            ],
        );
        h.listeners = self.listeners.clone();
        h
    }
}

/// The first address of a node's podCIDR, held by its bridge: every pod's default gateway.
pub fn bridge_ip(pod_cidr: Ipv4Net) -> Ipv4Addr {
    pod_cidr.hosts().next().unwrap_or(pod_cidr.addr())
}

pub fn compile(cluster: &Cluster) -> NetState {
    let mut state = NetState::default();
    // Exactly one host per node and per pod with its own namespace, and the few of the cloud: a
    // list grown by doubling would hold up to twice what it needs.
    let pod_hosts = cluster.pods.iter().filter(|p| !p.host_network).count();
    state.hosts.reserve_exact(cluster.nodes.len() + pod_hosts + 3);
    let node_prefix = cluster.node_network.prefix_len();

    for node in &cluster.nodes {
        state.hosts.push(host(
            node.name.clone(),
            Role::Node {
                name: node.name.clone(),
            },
        ));
    }
    let node_host = |i: usize| i;

    // Pods come after the nodes so their indices are known when the veth pairs are made.
    for pod in &cluster.pods {
        let listeners = pod.listeners().map(|(c, p)| Listener {
            port: p.port,
            protocol: p.protocol,
            owner: format!("container {} of pod {}", c.name, pod.qualified_name()),
        });
        if pod.host_network {
            state.hosts[node_host(pod.node)].listeners.extend(listeners);
            continue;
        }
        let node = &cluster.nodes[pod.node];
        let pod_host_index = state.hosts.len();
        let veth = host_veth(&pod.namespace, &pod.name);
        // A trace visits a few of a large cluster's pods: each pod's namespace is made when
        // something first reads it, from what is kept here.
        let pod_namespace = PodNamespace {
            addr: net(pod.ip, node.pod_cidr.prefix_len()),
            gateway: bridge_ip(node.pod_cidr),
            node_host: node_host(pod.node),
            veth: veth.clone(),
            listeners: listeners.collect(),
        };
        state.hosts.push_deferred(
            pod_host_name(&pod.namespace, &pod.name),
            Role::Pod {
                namespace: pod.namespace.clone(),
                name: pod.name.clone(),
                node: node.name.clone(),
            },
            Arc::new(move |name, role| pod_namespace.host(name, role)),
        );

        let mut port = Interface::new(
            &veth,
            Link::Veth {
                peer_host: pod_host_index,
                peer_if: "eth0".into(),
            },
            Vec::new(),
        );
        port.master = Some(BRIDGE.into());
        port.hairpin = node.hairpin == HairpinMode::HairpinVeth;
        state.hosts[node_host(pod.node)].interfaces.push(port);
    }

    for (i, node) in cluster.nodes.iter().enumerate() {
        let h = &mut state.hosts[node_host(i)];
        let (lo, mut local) = loopback();
        let eth0 = net(node.ip, node_prefix);
        let bridge = net(bridge_ip(node.pod_cidr), node.pod_cidr.prefix_len());
        let (eth_route, eth_local) = Route::connected(eth0, "eth0");
        let (bridge_route, bridge_local) = Route::connected(bridge, BRIDGE);
        local.extend(eth_local);
        local.extend(bridge_local);
        let ports = std::mem::take(&mut h.interfaces);
        let mut cbr0 = Interface::new(BRIDGE, Link::Bridge, vec![bridge]);
        cbr0.promiscuous = node.hairpin == HairpinMode::PromiscuousBridge;
        h.interfaces = vec![
            lo,
            Interface::new(
                "eth0",
                Link::Segment {
                    segment: NODE_NETWORK.into(),
                },
                vec![eth0],
            ),
            cbr0,
        ];
        h.interfaces.extend(ports);
        let mut main = vec![
            Route::unicast(Ipv4Net::default(), Some(cluster.gateway), "eth0")
                .with_origin("the node's default route, to the cloud router"),
            eth_route,
            bridge_route,
        ];
        for r in &node.extra_routes {
            let kind = match r.kind {
                RouteKind::Unicast => RouteType::Unicast,
                RouteKind::Blackhole => RouteType::Blackhole,
                RouteKind::Unreachable => RouteType::Unreachable,
                RouteKind::Prohibit => RouteType::Prohibit,
            };
            let dev = match (&r.dev, r.via, kind) {
                (Some(d), _, _) => Some(d.clone()),
                (None, Some(via), RouteType::Unicast) => {
                    if node.pod_cidr.contains(&via) {
                        Some(BRIDGE.to_owned())
                    } else {
                        Some("eth0".to_owned())
                    }
                }
                _ => None,
            };
            main.push(Route {
                kind,
                dst: r.destination,
                via: r.via,
                dev,
                proto: RouteProto::Boot,
                scope: if r.via.is_some() || kind != RouteType::Unicast {
                    crate::net::route::Scope::Global
                } else {
                    crate::net::route::Scope::Link
                },
                src: None,
                metric: r.metric,
                origin: format!("extra route from the scenario, line {}", r.line),
            });
        }
        h.tables = RouteTable::local_and_main(local, main);
        h.ip_forward = true;
        h.bridge_nf_call_iptables = node.bridge_nf_call_iptables;
        // kube-proxy's iptables mode sets it for its localhost NodePorts.
        h.route_localnet = true;
    }

    super::cloud::attach(cluster, &mut state);
    state
}

/// ip-masq-agent's rules: pod traffic to anything outside the non-masquerade ranges leaves with
/// the node's address.
pub fn masquerade_rules(cluster: &Cluster, nat: &mut Table) {
    nat.append(
        "POSTROUTING",
        Rule::new(
            vec![
                Match::Comment("ip-masq-agent: ensure nat POSTROUTING directs all non-LOCAL destination traffic to our custom IP-MASQ-AGENT chain".into()),
                Match::AddrTypeLocal { destination: true, negated: true },
            ],
            Target::Jump(MASQ_CHAIN.into()),
        ),
    );
    let link_local: Option<Ipv4Net> = (!cluster.masq_link_local).then(|| LINK_LOCAL.parse().expect("literal CIDR"));
    for cidr in link_local.iter().chain(&cluster.non_masquerade_cidrs) {
        nat.append(
            MASQ_CHAIN,
            Rule::new(
                vec![
                    Match::Destination {
                        net: *cidr,
                        negated: false,
                    },
                    Match::Comment("ip-masq-agent: local traffic is not subject to MASQUERADE".into()),
                ],
                Target::Return,
            ),
        );
    }
    nat.append(
        MASQ_CHAIN,
        Rule::new(
            vec![Match::Comment(
                "ip-masq-agent: outbound traffic is subject to MASQUERADE (must be last in chain)".into(),
            )],
            Target::Masquerade { random_fully: false },
        ),
    );
}
