//! The validated cluster: every reference resolved, every address checked against its network.
//!
//! Kubernetes words live here and in the compiler. A `Cluster` is only ever built by
//! [`build`](validate::build), so code downstream may rely on its invariants: a pod's node exists,
//! its IP lies in that node's podCIDR, every Service port knows its endpoints.

pub mod endpoints;
pub mod policy;
#[cfg(test)]
mod tests;
mod validate;

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::key_index::KeyIndex;

pub use validate::build;

/// ip-masq-agent's non-masquerade ranges when its configuration gives none, as it runs with
/// `--nomasq-all-reserved-ranges` (GKE's setting): RFC 1918 and the other ranges the RFCs
/// reserve, none of which is the internet.
pub const DEFAULT_NON_MASQUERADE_CIDRS: &[&str] = &[
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "100.64.0.0/10",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.88.99.0/24",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "240.0.0.0/4",
];

/// ip-masq-agent's link-local range, never masqueraded unless `masqLinkLocal` says so.
pub const LINK_LOCAL: &str = "169.254.0.0/16";

#[derive(Debug, Clone)]
pub struct Cluster {
    pub name: String,
    pub node_network: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub pod_network: Ipv4Net,
    pub service_network: Ipv4Net,
    pub cni: Cni,
    /// Calico's pool, when `cni` is Calico.
    pub calico: Option<CalicoPool>,
    /// Nodes sit on subnets of `node_network`; with none listed, the whole network is one
    /// subnet. Each subnet is a layer-2 segment of its own, joined to the others by the router.
    pub node_subnets: Vec<Ipv4Net>,
    pub kube_proxy: KubeProxyMode,
    pub cluster_domain: String,
    /// Destinations that pod traffic reaches with its own source address; everything else is
    /// masqueraded to the node's address on the way out.
    pub non_masquerade_cidrs: Vec<Ipv4Net>,
    /// Whether link-local destinations (169.254.0.0/16, the cloud metadata server's) are
    /// masqueraded too; ip-masq-agent leaves them alone unless told.
    pub masq_link_local: bool,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub ingresses: Vec<Ingress>,
    pub traces: Vec<TraceCase>,
    /// Who enforces NetworkPolicies (`cluster.networkPolicy`, or what the CNI does).
    pub network_policy: policy::Enforcer,
    /// Every namespace a pod or policy uses or the scenario lists, sorted by name.
    pub namespaces: Vec<policy::Namespace>,
    pub policies: Vec<policy::NetworkPolicy>,
    /// Made on first use; a cluster whose lists changed length since is searched instead.
    pub(crate) index: Index,
}

/// Nodes, pods and Services by name and address, so that a lookup in a cluster of 150,000 pods
/// does not walk them all. Each key maps to the first entry in list order, as a search would.
#[derive(Debug, Clone, Default)]
pub(crate) struct Index(OnceLock<Indexed>);

#[derive(Debug, Clone)]
struct Indexed {
    lengths: (usize, usize, usize),
    nodes: KeyIndex,
    pods: KeyIndex,
    services: KeyIndex,
    pods_by_ip: HashMap<Ipv4Addr, usize>,
    /// Pods with an address of their own (not on the node's network).
    own_ip_pods: HashMap<Ipv4Addr, usize>,
    by_load_balancer_ip: HashMap<Ipv4Addr, usize>,
    /// Per node, its pods in list order.
    on_node: Vec<Vec<usize>>,
}

impl Indexed {
    fn of(c: &Cluster) -> Indexed {
        fn first<K: std::hash::Hash + Eq>(pairs: impl Iterator<Item = (K, usize)>) -> HashMap<K, usize> {
            let mut map = HashMap::new();
            for (k, i) in pairs {
                map.entry(k).or_insert(i);
            }
            map
        }
        let mut on_node = vec![Vec::new(); c.nodes.len()];
        for (i, p) in c.pods.iter().enumerate() {
            if let Some(list) = on_node.get_mut(p.node) {
                list.push(i);
            }
        }
        Indexed {
            lengths: c.lengths(),
            nodes: KeyIndex::of(c.nodes.len(), |i| c.node_key(i)),
            pods: KeyIndex::of(c.pods.len(), |i| c.pod_key(i)),
            services: KeyIndex::of(c.services.len(), |i| c.service_key(i)),
            pods_by_ip: first(c.pods.iter().enumerate().map(|(i, p)| (p.ip, i))),
            own_ip_pods: first(
                c.pods
                    .iter()
                    .enumerate()
                    .filter(|(_, p)| !p.host_network)
                    .map(|(i, p)| (p.ip, i)),
            ),
            by_load_balancer_ip: first(
                c.services
                    .iter()
                    .enumerate()
                    .filter_map(|(i, s)| s.load_balancer_ip.map(|ip| (ip, i))),
            ),
            on_node,
        }
    }
}

/// The CNI plugin that wires pods to their node and nodes to each other; each is a module of
/// `compile::cni`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cni {
    /// The CNI bridge plugin with host-local IPAM and one cloud route per podCIDR: what kubenet
    /// configured, and what `cni: kubenet` still means.
    Bridge,
    FlannelHostGw,
    FlannelVxlan,
    Calico,
    Cilium,
}

impl Cni {
    /// The name the scenario format uses.
    pub fn word(self) -> &'static str {
        match self {
            Cni::Bridge => "bridge",
            Cni::FlannelHostGw => "flannel-host-gw",
            Cni::FlannelVxlan => "flannel-vxlan",
            Cni::Calico => "calico",
            Cni::Cilium => "cilium",
        }
    }
}

/// How Calico carries pod traffic between nodes (its IP pool's `vxlanMode` and `ipipMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Encapsulation {
    None,
    #[serde(rename = "VXLAN")]
    Vxlan,
    #[serde(rename = "IPIP")]
    Ipip,
    #[serde(rename = "VXLANCrossSubnet")]
    VxlanCrossSubnet,
    #[serde(rename = "IPIPCrossSubnet")]
    IpipCrossSubnet,
}

impl Encapsulation {
    pub const WORDS: &[&str] = &["None", "VXLAN", "IPIP", "VXLANCrossSubnet", "IPIPCrossSubnet"];

    pub fn from_word(word: &str) -> Option<Encapsulation> {
        Some(match word {
            "None" => Encapsulation::None,
            "VXLAN" => Encapsulation::Vxlan,
            "IPIP" => Encapsulation::Ipip,
            "VXLANCrossSubnet" => Encapsulation::VxlanCrossSubnet,
            "IPIPCrossSubnet" => Encapsulation::IpipCrossSubnet,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        Encapsulation::WORDS[self as usize]
    }
}

/// Calico's IP pool: where its IPAM hands out per-node blocks, and how traffic between blocks
/// on different nodes travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct CalicoPool {
    pub encapsulation: Encapsulation,
    pub ip_pool: Ipv4Net,
    pub block_size: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KubeProxyMode {
    Iptables,
    /// The `ip kube-proxy` nftables table (`compile/kube_proxy/nftables.rs`).
    Nftables,
    /// IPVS virtual servers and the `kube-ipvs0` device (`compile/kube_proxy/ipvs.rs`).
    Ipvs,
    /// No kube-proxy: the CNI translates Services itself (Cilium's kube-proxy replacement).
    None,
}

/// How the kubelet lets a pod reach itself through its own Service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HairpinMode {
    /// hairpin_mode on each pod's bridge port (the kubelet's default).
    HairpinVeth,
    /// The bridge is put in promiscuous mode, which does not by itself let a frame back out of
    /// the port it came in on.
    PromiscuousBridge,
    None,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub name: String,
    pub ip: Ipv4Addr,
    pub pod_cidr: Ipv4Net,
    pub hairpin: HairpinMode,
    pub bridge_nf_call_iptables: bool,
    pub extra_routes: Vec<ExtraRoute>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RouteKind {
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// A route the scenario adds to a node on top of what the CNI installs.
#[derive(Debug, Clone)]
pub struct ExtraRoute {
    pub destination: Ipv4Net,
    pub via: Option<Ipv4Addr>,
    pub dev: Option<String>,
    pub metric: u32,
    pub kind: RouteKind,
    /// `ip route ... onlink`: the gateway is taken to be on the link though no subnet of the
    /// device holds it.
    pub onlink: bool,
    /// The scenario line it came from, so an explanation can point back at it.
    pub line: u64,
}

pub use crate::net::Protocol;

#[derive(Debug, Clone)]
pub struct Pod {
    pub namespace: String,
    pub name: String,
    /// Index into `Cluster::nodes`.
    pub node: usize,
    pub ip: Ipv4Addr,
    pub host_network: bool,
    pub labels: Vec<(String, String)>,
    pub containers: Vec<Container>,
    /// Its Ready condition, and whether it is being deleted: what makes it an endpoint that
    /// gets traffic, or one kube-proxy skips (see [`endpoints`]).
    pub ready: bool,
    pub terminating: bool,
}

impl Pod {
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Every port some container of the pod listens on, with the container that owns it.
    pub fn listeners(&self) -> impl Iterator<Item = (&Container, &ContainerPort)> {
        self.containers.iter().flat_map(|c| c.ports.iter().map(move |p| (c, p)))
    }
}

#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub ports: Vec<ContainerPort>,
}

#[derive(Debug, Clone)]
pub struct ContainerPort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ServiceType {
    ClusterIP,
    NodePort,
    LoadBalancer,
}

impl fmt::Display for ServiceType {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TrafficPolicy {
    Cluster,
    Local,
}

impl fmt::Display for TrafficPolicy {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub namespace: String,
    pub name: String,
    pub kind: ServiceType,
    /// `None` for a headless Service (`clusterIP: None`).
    pub cluster_ip: Option<Ipv4Addr>,
    /// `None` when the Service has no selector (its endpoints would be managed by hand).
    pub selector: Option<Vec<(String, String)>>,
    pub ports: Vec<ServicePort>,
    pub load_balancer_ip: Option<Ipv4Addr>,
    pub load_balancer_source_ranges: Vec<Ipv4Net>,
    /// `spec.externalIPs`, in the order written.
    pub external_ips: Vec<Ipv4Addr>,
    pub external_traffic_policy: TrafficPolicy,
    pub internal_traffic_policy: TrafficPolicy,
    pub health_check_node_port: Option<u16>,
    /// The ClientIP affinity timeout in seconds, when affinity is on.
    pub session_affinity_timeout: Option<u32>,
}

impl Service {
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Whether traffic from outside the cluster has a way in (the API's and kube-proxy's
    /// "externally accessible"): a NodePort or LoadBalancer Service, or one with externalIPs.
    /// Only such a Service has an external traffic policy.
    pub fn externally_accessible(&self) -> bool {
        self.kind != ServiceType::ClusterIP || !self.external_ips.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub protocol: Protocol,
    pub target_port: TargetPort,
    pub node_port: Option<u16>,
    /// The endpoints kube-proxy sends new connections to, in the order it sorts them: by
    /// "ip:port" as text.
    pub endpoints: Vec<Endpoint>,
    /// The endpoints it leaves out, and why.
    pub skipped: Vec<endpoints::Skipped>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPort {
    Number(u16),
    Name(String),
}

impl fmt::Display for TargetPort {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            TargetPort::Number(n) => write!(f, "{n}"),
            TargetPort::Name(s) => f.write_str(s),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Index into `Cluster::pods`.
    pub pod: usize,
    pub ip: Ipv4Addr,
    pub port: u16,
}

#[derive(Debug, Clone)]
pub struct Ingress {
    pub namespace: String,
    pub name: String,
    /// Index into `Cluster::services`: the Service in front of the controller pods.
    pub controller: usize,
    pub default_backend: Option<Backend>,
    pub rules: Vec<IngressRule>,
}

#[derive(Debug, Clone)]
pub struct IngressRule {
    pub host: Option<String>,
    pub paths: Vec<IngressPath>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum PathType {
    Exact,
    Prefix,
    ImplementationSpecific,
}

#[derive(Debug, Clone)]
pub struct IngressPath {
    pub path: String,
    pub path_type: PathType,
    pub backend: Backend,
}

#[derive(Debug, Clone)]
pub enum Backend {
    /// A port of one of the cluster's Services: an index into `Cluster::services`, and one
    /// into that Service's `ports`.
    Service { service: usize, port: usize },
    /// A Service the Ingress names but the cluster does not have, or a port that Service does
    /// not have, which the API accepts: ingress-nginx has no endpoint for it and answers 503.
    /// `service` is `namespace/name`; `exists` says whether the Service does.
    Missing {
        service: String,
        port: String,
        exists: bool,
    },
}

/// A trace the scenario pins for CI, with the verdict it must end in.
#[derive(Debug, Clone)]
pub struct TraceCase {
    pub from: CaseText,
    pub to: CaseText,
    pub port: Option<u16>,
    pub protocol: Option<Protocol>,
    pub expect: String,
    pub namespace: Option<CaseText>,
    pub container: Option<CaseText>,
    pub endpoint: Option<CaseText>,
    pub via_node: Option<CaseText>,
    /// Trace every endpoint branch; `expect` holds for each unless `branches` says otherwise.
    pub all_endpoints: bool,
    /// With `all_endpoints`, the verdict each branch must end in, by its endpoint pod, in the
    /// file's order; empty when one verdict holds for every branch.
    pub branches: Vec<(CaseText, String)>,
    pub line: u64,
}

/// A name a trace case gives, with where the file gives it: a name that resolves to nothing is
/// reported there.
#[derive(Debug, Clone)]
pub struct CaseText {
    pub value: String,
    pub at: crate::diagnostic::Span,
}

/// The router's address on `subnet`: the cluster's gateway when it lies there, else the
/// subnet's first address, as clouds give their subnets.
pub fn subnet_gateway(subnet: Ipv4Net, gateway: Option<Ipv4Addr>) -> Option<Ipv4Addr> {
    match gateway {
        Some(g) if subnet.contains(&g) => Some(g),
        _ => subnet.hosts().next(),
    }
}

impl Cluster {
    /// The subnet a node's address lies on: one of `node_subnets`, or the whole node network.
    pub fn node_subnet(&self, node: &Node) -> Ipv4Net {
        self.node_subnets
            .iter()
            .find(|s| s.contains(&node.ip))
            .copied()
            .unwrap_or(self.node_network)
    }

    /// The subnets the nodes sit on, each a segment of its own.
    pub fn subnets(&self) -> Vec<Ipv4Net> {
        if self.node_subnets.is_empty() {
            vec![self.node_network]
        } else {
            self.node_subnets.clone()
        }
    }

    /// The router's address on `subnet`.
    pub fn gateway_on(&self, subnet: Ipv4Net) -> Ipv4Addr {
        subnet_gateway(subnet, Some(self.gateway)).unwrap_or(self.gateway)
    }

    fn lengths(&self) -> (usize, usize, usize) {
        (self.nodes.len(), self.pods.len(), self.services.len())
    }

    // What the name indexes are keyed by, read from the lists themselves.
    fn node_key(&self, i: usize) -> &str {
        &self.nodes[i].name
    }

    fn pod_key(&self, i: usize) -> (&str, &str) {
        (&self.pods[i].namespace, &self.pods[i].name)
    }

    fn service_key(&self, i: usize) -> (&str, &str) {
        (&self.services[i].namespace, &self.services[i].name)
    }

    fn index(&self) -> Option<&Indexed> {
        let index = self.index.0.get_or_init(|| Indexed::of(self));
        (index.lengths == self.lengths()).then_some(index)
    }

    pub fn node_named(&self, name: &str) -> Option<usize> {
        match self.index() {
            Some(index) => index.nodes.get(&name, |i| self.node_key(i)),
            None => self.nodes.iter().position(|n| n.name == name),
        }
    }

    pub fn pod_named(&self, namespace: &str, name: &str) -> Option<usize> {
        match self.index() {
            Some(index) => index.pods.get(&(namespace, name), |i| self.pod_key(i)),
            None => self
                .pods
                .iter()
                .position(|p| p.namespace == namespace && p.name == name),
        }
    }

    pub fn service_named(&self, namespace: &str, name: &str) -> Option<usize> {
        match self.index() {
            Some(index) => index.services.get(&(namespace, name), |i| self.service_key(i)),
            None => self
                .services
                .iter()
                .position(|s| s.namespace == namespace && s.name == name),
        }
    }

    /// The first pod, in list order, with address `ip` (a host-network pod has its node's).
    pub fn pod_with_ip(&self, ip: Ipv4Addr) -> Option<usize> {
        match self.index() {
            Some(index) => index.pods_by_ip.get(&ip).copied(),
            None => self.pods.iter().position(|p| p.ip == ip),
        }
    }

    /// The first pod, in list order, with address `ip` as an address of its own.
    pub fn pod_with_own_ip(&self, ip: Ipv4Addr) -> Option<usize> {
        match self.index() {
            Some(index) => index.own_ip_pods.get(&ip).copied(),
            None => self.pods.iter().position(|p| !p.host_network && p.ip == ip),
        }
    }

    /// The first Service, in list order, whose load balancer has address `ip`.
    pub fn service_with_load_balancer_ip(&self, ip: Ipv4Addr) -> Option<usize> {
        match self.index() {
            Some(index) => index.by_load_balancer_ip.get(&ip).copied(),
            None => self.services.iter().position(|s| s.load_balancer_ip == Some(ip)),
        }
    }

    pub fn pods_on(&self, node: usize) -> impl Iterator<Item = (usize, &Pod)> {
        let indexed = self
            .index()
            .map(|index| index.on_node.get(node).map_or(&[][..], Vec::as_slice));
        let listed = indexed.into_iter().flatten().map(|&i| (i, &self.pods[i]));
        let scanned = indexed
            .is_none()
            .then(|| self.pods.iter().enumerate().filter(move |(_, p)| p.node == node))
            .into_iter()
            .flatten();
        listed.chain(scanned)
    }
}

/// Whether `labels` satisfy every term of a Service selector.
pub fn selects(selector: &[(String, String)], labels: &[(String, String)]) -> bool {
    !selector.is_empty() && selector.iter().all(|term| labels.contains(term))
}
