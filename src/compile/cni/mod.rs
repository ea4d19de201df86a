//! The CNI plugins: what each installs on the nodes and in the pods' namespaces. Every model
//! shares the same skeleton, made here — a namespace per node and per pod, the node's `eth0` on
//! its subnet with a default route to the cloud router, one veth pair per pod — and each
//! model's module decides the rest: the pod's address and routes, the host side of its veth,
//! the node's own devices, and how a node reaches the others' pods.
//!
//! - [`bridge`]: the CNI bridge plugin as kubenet configured it (`cni: bridge`, or `kubenet`).
//! - [`flannel`]: host-gw and VXLAN backends.
//! - [`calico`]: per-node blocks, `/32` routes to `cali*` interfaces, BGP-learnt routes.
//! - [`cilium`]: native routing through `cilium_host`, optionally without kube-proxy.

mod bridge;
mod calico;
mod cilium;
mod cilium_lb;
mod flannel;
mod plugin;

use std::net::Ipv4Addr;
use std::sync::{Arc, LazyLock};

use ipnet::Ipv4Net;

use super::pod_host_name;
use crate::model::{Cluster, Cni, LINK_LOCAL};
use crate::net::iptables::{Match, Rule, Table, Target};
use crate::net::route::{Route, RouteTable, RouteType};
use crate::net::{Host, Interface, Link, Listener, NetState, Role};

pub use bridge::BRIDGE;
use plugin::{NodeWiring, Plugin, PodWiring, extra_route};
pub use plugin::{pod_gateway, pod_veth, segment_of};
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
        nftables: None,
        ipvs: None,
        ipsets: Default::default(),
        listeners: Vec::new(),
        service_lb: None,
    }
}

/// What a pod's namespace is made from.
struct PodNamespace {
    service_lb: Option<Arc<crate::net::service_lb::ServiceLb>>,
    addr: Ipv4Net,
    /// The pod's routes besides the one of its address: the default route and any the plugin
    /// adds for its gateway. The same for every pod of a node, so shared.
    routes: Arc<Vec<Route>>,
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
        let mut main = (*self.routes).clone();
        // The kernel adds no subnet route for a /32 address.
        if self.addr.prefix_len() < 32 {
            main.push(connected);
        }
        h.tables = RouteTable::local_and_main(local, main);
        h.listeners = self.listeners.clone();
        h.service_lb = self.service_lb.clone();
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
    let plugin = Plugin::of(cluster);

    for node in &cluster.nodes {
        state.hosts.push(host(
            node.name.clone(),
            Role::Node {
                name: node.name.clone(),
            },
        ));
    }
    let node_host = |i: usize| i;
    // Without kube-proxy, Cilium's eBPF programs translate Services for every socket and
    // device of the nodes and their pods.
    let service_lb = (cluster.cni == Cni::Cilium && cluster.kube_proxy == crate::model::KubeProxyMode::None)
        .then(|| cilium_lb::maps(cluster));
    let mut pod_routes: Vec<Vec<Route>> = vec![Vec::new(); cluster.nodes.len()];
    let mut pod_gateways: Vec<Option<Arc<Vec<Route>>>> = vec![None; cluster.nodes.len()];

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
        let wiring = plugin.pod(node, pod, pod_host_index);
        // A trace visits a few of a large cluster's pods: each pod's namespace is made when
        // something first reads it, from what is kept here.
        let routes = pod_gateways[pod.node]
            .get_or_insert_with(|| Arc::new(plugin.pod_routes(node)))
            .clone();
        let pod_namespace = PodNamespace {
            service_lb: service_lb.clone(),
            addr: wiring.addr,
            routes,
            node_host: node_host(pod.node),
            veth: wiring.host_if.name.clone(),
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
        state.hosts[node_host(pod.node)].interfaces.push(wiring.host_if);
        pod_routes[pod.node].extend(wiring.node_routes);
    }

    for (i, node) in cluster.nodes.iter().enumerate() {
        let wiring = plugin.node(cluster, i);
        let h = &mut state.hosts[node_host(i)];
        let (lo, mut local) = loopback();
        let subnet = cluster.node_subnet(node);
        let eth0 = net(node.ip, subnet.prefix_len());
        let (eth_route, eth_local) = Route::connected(eth0, "eth0");
        local.extend(eth_local);
        local.extend(wiring.local);
        let ports = std::mem::take(&mut h.interfaces);
        h.interfaces = vec![
            lo,
            Interface::new(
                "eth0",
                Link::Segment {
                    segment: segment_of(cluster, subnet),
                },
                vec![eth0],
            ),
        ];
        h.interfaces.extend(wiring.interfaces);
        h.interfaces.extend(ports);
        let mut main = vec![
            Route::unicast(Ipv4Net::default(), Some(cluster.gateway_on(subnet)), "eth0")
                .with_origin("the node's default route, to the cloud router"),
            eth_route,
        ];
        main.extend(wiring.main);
        main.append(&mut pod_routes[i]);
        for r in &node.extra_routes {
            main.push(extra_route(node, r, plugin.pod_device()));
        }
        h.tables = RouteTable::local_and_main(local, main);
        if let Some((shared, own)) = wiring.shared
            && let Some(main) = h.tables.iter_mut().find(|t| t.name == "main")
        {
            *main = std::mem::replace(main, RouteTable::new("main", Vec::new())).with_shared(shared, own);
        }
        h.ip_forward = true;
        h.service_lb = service_lb.clone();
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

#[cfg(test)]
mod tests;
