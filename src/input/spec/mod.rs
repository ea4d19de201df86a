//! The scenario format as written: every field in Kubernetes' spelling, every value with its span.
//!
//! Nothing here is cross-checked yet (a pod may name a node that does not exist); the model stage
//! does that. This stage only reads what is there and reports what cannot be read.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::decode::{CollectFitted, Decoder, Fields, Sp};
use super::yaml::Node;

#[derive(Debug, Clone, Default)]
pub struct Scenario {
    pub cluster: ClusterSpec,
    pub nodes: Vec<NodeSpec>,
    pub pods: Vec<PodSpec>,
    pub services: Vec<ServiceSpec>,
    pub ingresses: Vec<IngressSpec>,
    pub traces: Vec<TraceSpec>,
    pub namespaces: Vec<super::policy::NamespaceSpec>,
    pub network_policies: Vec<super::policy::PolicySpec>,
}

#[derive(Debug, Clone, Default)]
pub struct ClusterSpec {
    pub name: Option<Sp<String>>,
    pub node_network: Option<Sp<Ipv4Net>>,
    pub gateway: Option<Sp<Ipv4Addr>>,
    pub pod_network: Option<Sp<Ipv4Net>>,
    pub service_network: Option<Sp<Ipv4Net>>,
    pub cni: Option<Sp<String>>,
    pub encapsulation: Option<Sp<String>>,
    pub ip_pool: Option<Sp<Ipv4Net>>,
    pub block_size: Option<Sp<i64>>,
    pub node_subnets: Option<Vec<Sp<Ipv4Net>>>,
    pub kube_proxy: Option<Sp<String>>,
    pub cluster_domain: Option<Sp<String>>,
    pub hairpin_mode: Option<Sp<String>>,
    pub bridge_nf_call_iptables: Option<bool>,
    pub non_masquerade_cidrs: Option<Vec<Sp<Ipv4Net>>>,
    pub masq_link_local: Option<bool>,
    /// Who enforces NetworkPolicies: `calico`, `kube-router`, `cilium` or `none`.
    pub network_policy: Option<Sp<String>>,
    pub api_server: Option<ApiServerSpec>,
}

/// Where the API server behind the `kubernetes` Service listens: a node's address, as kubeadm
/// runs it (a static pod with the host's network).
#[derive(Debug, Clone)]
pub struct ApiServerSpec {
    pub node: Option<Sp<String>>,
    pub port: Option<Sp<i64>>,
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: Option<Sp<String>>,
    pub ip: Option<Sp<Ipv4Addr>>,
    pub pod_cidr: Option<Sp<Ipv4Net>>,
    pub hairpin_mode: Option<Sp<String>>,
    pub bridge_nf_call_iptables: Option<bool>,
    pub routes: Vec<RouteSpec>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct RouteSpec {
    pub destination: Option<Sp<Ipv4Net>>,
    pub via: Option<Sp<Ipv4Addr>>,
    pub dev: Option<Sp<String>>,
    pub metric: Option<u32>,
    pub kind: Option<Sp<String>>,
    pub onlink: Option<Sp<bool>>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct PodSpec {
    pub name: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub node: Option<Sp<String>>,
    pub ip: Option<Sp<Ipv4Addr>>,
    pub host_network: bool,
    pub labels: Vec<(Sp<String>, Sp<String>)>,
    pub containers: Vec<ContainerSpec>,
    /// Readiness and deletion, as the pod's status holds them: see [`super::endpoints`].
    pub conditions: super::endpoints::PodConditionsSpec,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub name: Option<Sp<String>>,
    pub ports: Vec<ContainerPortSpec>,
}

#[derive(Debug, Clone)]
pub struct ContainerPortSpec {
    pub name: Option<Sp<String>>,
    pub container_port: Option<Sp<u16>>,
    pub protocol: Option<Sp<String>>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub kind: Option<Sp<String>>,
    /// `None` in the file ("clusterIP: None") is kept as the text, for headless Services.
    pub cluster_ip: Option<Sp<String>>,
    pub selector: Option<Vec<(Sp<String>, Sp<String>)>>,
    pub ports: Vec<ServicePortSpec>,
    pub load_balancer_ip: Option<Sp<Ipv4Addr>>,
    pub load_balancer_source_ranges: Vec<Sp<Ipv4Net>>,
    /// `spec.externalIPs`: addresses outside the cluster that kube-proxy also answers for the
    /// Service's ports.
    pub external_ips: Vec<Sp<Ipv4Addr>>,
    pub external_traffic_policy: Option<Sp<String>>,
    pub internal_traffic_policy: Option<Sp<String>>,
    pub health_check_node_port: Option<Sp<u16>>,
    pub session_affinity: Option<Sp<String>>,
    pub session_affinity_timeout: Option<Sp<i64>>,
    /// Endpoints written out, as EndpointSlices hold them; they replace the selector's.
    pub endpoints: Option<Vec<super::endpoints::EndpointSpec>>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct ServicePortSpec {
    pub name: Option<Sp<String>>,
    pub port: Option<Sp<u16>>,
    pub target_port: Option<Sp<TargetPortSpec>>,
    pub node_port: Option<Sp<i64>>,
    pub protocol: Option<Sp<String>>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPortSpec {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone)]
pub struct IngressSpec {
    pub name: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub controller: Option<Sp<String>>,
    pub default_backend: Option<BackendSpec>,
    pub rules: Vec<IngressRuleSpec>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct IngressRuleSpec {
    pub host: Option<Sp<String>>,
    pub paths: Vec<IngressPathSpec>,
}

#[derive(Debug, Clone)]
pub struct IngressPathSpec {
    pub path: Option<Sp<String>>,
    pub path_type: Option<Sp<String>>,
    pub backend: BackendSpec,
}

#[derive(Debug, Clone)]
pub struct BackendSpec {
    pub service: Option<Sp<String>>,
    pub port: Option<Sp<TargetPortSpec>>,
    pub span: crate::diagnostic::Span,
}

#[derive(Debug, Clone)]
pub struct TraceSpec {
    pub from: Option<Sp<String>>,
    pub to: Option<Sp<String>>,
    pub port: Option<Sp<u16>>,
    pub protocol: Option<Sp<String>>,
    pub expect: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub container: Option<Sp<String>>,
    pub endpoint: Option<Sp<String>>,
    pub via_node: Option<Sp<String>>,
    /// `allEndpoints: true`: trace every endpoint branch, as `--all-endpoints`.
    pub all_endpoints: Option<Sp<bool>>,
    /// `expect` written as a mapping, endpoint pod to verdict: one expectation per branch.
    pub expect_branches: Option<Sp<Vec<BranchExpectSpec>>>,
    pub span: crate::diagnostic::Span,
}

/// One entry of a per-branch `expect`: the endpoint pod as written, and its verdict.
pub type BranchExpectSpec = (Sp<String>, Sp<String>);

pub const HAIRPIN_MODES: &[&str] = &["hairpin-veth", "promiscuous-bridge", "none"];
pub const PROTOCOLS: &[&str] = &["TCP", "UDP", "SCTP"];
pub const ROUTE_TYPES: &[&str] = &["unicast", "blackhole", "unreachable", "prohibit"];

pub fn decode(dec: &mut Decoder, root: &Node) -> Scenario {
    let mut scenario = Scenario::default();
    let known = [
        "cluster",
        "nodes",
        "pods",
        "services",
        "ingresses",
        "traces",
        "namespaces",
        "networkPolicies",
    ];
    let Some(f) = dec.fields(root, "the scenario", &known) else {
        return scenario;
    };
    if let Some(node) = dec.require(&f, "cluster", "the scenario") {
        scenario.cluster = decode_cluster(dec, node);
    }
    let mut each = |key: &str, what: &str| -> Vec<&Node> {
        f.get(key)
            .map(|n| dec.list(n, what).iter().collect())
            .unwrap_or_default()
    };
    let nodes = each("nodes", "`nodes`");
    let pods = each("pods", "`pods`");
    let services = each("services", "`services`");
    let ingresses = each("ingresses", "`ingresses`");
    let traces = each("traces", "`traces`");
    let namespaces = each("namespaces", "`namespaces`");
    let policies = each("networkPolicies", "`networkPolicies`");
    scenario.nodes = nodes.into_iter().filter_map(|n| decode_node(dec, n)).collect_fitted();
    scenario.pods = pods.into_iter().filter_map(|n| decode_pod(dec, n)).collect_fitted();
    scenario.services = services
        .into_iter()
        .filter_map(|n| decode_service(dec, n))
        .collect_fitted();
    scenario.ingresses = ingresses
        .into_iter()
        .filter_map(|n| decode_ingress(dec, n))
        .collect_fitted();
    scenario.traces = traces.into_iter().filter_map(|n| decode_trace(dec, n)).collect_fitted();
    scenario.namespaces = namespaces
        .into_iter()
        .filter_map(|n| super::policy::decode_namespace(dec, n))
        .collect_fitted();
    scenario.network_policies = policies
        .into_iter()
        .filter_map(|n| super::policy::decode_policy(dec, n))
        .collect_fitted();
    scenario
}

/// Reads an optional field with `read` when it is present.
fn opt<'a, T>(f: &Fields<'a>, key: &str, read: impl FnOnce(&'a Node) -> Option<T>) -> Option<T> {
    f.get(key).and_then(read)
}

/// Every `cluster.cni` the format accepts; `kubenet` is the old name of `bridge`.
pub const CNI_MODELS: &[&str] = &[
    "bridge",
    "kubenet",
    "flannel-host-gw",
    "flannel-vxlan",
    "calico",
    "cilium",
];

fn decode_cluster(dec: &mut Decoder, node: &Node) -> ClusterSpec {
    decode_cluster_fields(dec, node, Networks::Required)
}

/// Whether `cluster:` must name its networks: a scenario must, a manifest header need not (what
/// it leaves out is inferred from the objects).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Networks {
    Required,
    Optional,
}

pub(crate) fn decode_cluster_fields(dec: &mut Decoder, node: &Node, networks: Networks) -> ClusterSpec {
    let known = [
        "name",
        "nodeNetwork",
        "gateway",
        "podNetwork",
        "serviceNetwork",
        "cni",
        "encapsulation",
        "ipPool",
        "blockSize",
        "nodeSubnets",
        "kubeProxy",
        "clusterDomain",
        "hairpinMode",
        "bridgeNfCallIptables",
        "nonMasqueradeCIDRs",
        "masqLinkLocal",
        "apiServer",
        "networkPolicy",
    ];
    let Some(f) = dec.fields(node, "`cluster`", &known) else {
        return ClusterSpec::default();
    };
    fn network<'a>(dec: &mut Decoder, f: &Fields<'a>, key: &str, networks: Networks) -> Option<&'a Node> {
        match networks {
            Networks::Required => dec.require(f, key, "`cluster`"),
            Networks::Optional => f.get(key),
        }
    }
    ClusterSpec {
        name: opt(&f, "name", |n| dec.string(n, "cluster name")),
        node_network: network(dec, &f, "nodeNetwork", networks).and_then(|n| dec.cidr(n, "nodeNetwork")),
        gateway: opt(&f, "gateway", |n| dec.ipv4(n, "gateway address")),
        pod_network: network(dec, &f, "podNetwork", networks).and_then(|n| dec.cidr(n, "podNetwork")),
        service_network: network(dec, &f, "serviceNetwork", networks).and_then(|n| dec.cidr(n, "serviceNetwork")),
        cni: opt(&f, "cni", |n| dec.word(n, "CNI model", CNI_MODELS)),
        encapsulation: opt(&f, "encapsulation", |n| {
            dec.word(n, "Calico encapsulation", crate::model::Encapsulation::WORDS)
        }),
        ip_pool: opt(&f, "ipPool", |n| dec.cidr(n, "ipPool")),
        block_size: opt(&f, "blockSize", |n| dec.integer(n, "blockSize", 20, 32)),
        node_subnets: opt(&f, "nodeSubnets", |n| {
            let items = dec.list(n, "nodeSubnets");
            Some(items.iter().filter_map(|i| dec.cidr(i, "node subnet")).collect_fitted())
        }),
        kube_proxy: opt(&f, "kubeProxy", |n| {
            dec.word(n, "kube-proxy mode", &["iptables", "nftables", "ipvs", "none"])
        }),
        cluster_domain: opt(&f, "clusterDomain", |n| dec.string(n, "cluster domain")),
        hairpin_mode: opt(&f, "hairpinMode", |n| dec.word(n, "hairpin mode", HAIRPIN_MODES)),
        bridge_nf_call_iptables: opt(&f, "bridgeNfCallIptables", |n| dec.bool(n, "bridgeNfCallIptables")),
        masq_link_local: opt(&f, "masqLinkLocal", |n| dec.bool(n, "masqLinkLocal")),
        api_server: opt(&f, "apiServer", |n| {
            let f = dec.fields(n, "`apiServer`", &["node", "port"])?;
            Some(ApiServerSpec {
                node: opt(&f, "node", |n| dec.string(n, "node name")),
                port: opt(&f, "port", |n| dec.integer(n, "API server port", 1, 65535)),
            })
        }),
        network_policy: opt(&f, "networkPolicy", |n| {
            dec.word(n, "NetworkPolicy enforcer", super::policy::ENFORCERS)
        }),
        non_masquerade_cidrs: opt(&f, "nonMasqueradeCIDRs", |n| {
            let items = dec.list(n, "nonMasqueradeCIDRs");
            Some(
                items
                    .iter()
                    .filter_map(|i| dec.cidr(i, "non-masquerade CIDR"))
                    .collect_fitted(),
            )
        }),
    }
}

fn decode_node(dec: &mut Decoder, node: &Node) -> Option<NodeSpec> {
    let known = ["name", "ip", "podCIDR", "hairpinMode", "bridgeNfCallIptables", "routes"];
    let f = dec.fields(node, "a node", &known)?;
    let what = "a node";
    Some(NodeSpec {
        name: dec.require(&f, "name", what).and_then(|n| dec.string(n, "node name")),
        ip: dec.require(&f, "ip", what).and_then(|n| dec.ipv4(n, "node IP")),
        pod_cidr: dec.require(&f, "podCIDR", what).and_then(|n| dec.cidr(n, "podCIDR")),
        hairpin_mode: opt(&f, "hairpinMode", |n| dec.word(n, "hairpin mode", HAIRPIN_MODES)),
        bridge_nf_call_iptables: opt(&f, "bridgeNfCallIptables", |n| dec.bool(n, "bridgeNfCallIptables")),
        routes: match f.get("routes") {
            Some(list) => dec
                .list(list, "`routes`")
                .iter()
                .filter_map(|r| decode_route(dec, r))
                .collect_fitted(),
            None => Vec::new(),
        },
        span: f.span,
    })
}

fn decode_route(dec: &mut Decoder, node: &Node) -> Option<RouteSpec> {
    let known = ["destination", "via", "dev", "metric", "type", "onlink"];
    let f = dec.fields(node, "a route", &known)?;
    Some(RouteSpec {
        destination: dec
            .require(&f, "destination", "a route")
            .and_then(|n| dec.cidr(n, "route destination")),
        via: opt(&f, "via", |n| dec.ipv4(n, "route gateway")),
        dev: opt(&f, "dev", |n| dec.string(n, "route device")),
        metric: opt(&f, "metric", |n| dec.integer(n, "route metric", 0, u32::MAX as i64)).map(|m| m.value as u32),
        kind: opt(&f, "type", |n| dec.word(n, "route type", ROUTE_TYPES)),
        onlink: opt(&f, "onlink", |n| {
            dec.bool(n, "onlink").map(|b| Sp::new(b, super::decode::span_of(n)))
        }),
        span: f.span,
    })
}

fn decode_pod(dec: &mut Decoder, node: &Node) -> Option<PodSpec> {
    let known = [
        "name",
        "namespace",
        "node",
        "ip",
        "hostNetwork",
        "labels",
        "containers",
        "ready",
        "terminating",
    ];
    let f = dec.fields(node, "a pod", &known)?;
    let what = "a pod";
    let host_network = opt(&f, "hostNetwork", |n| dec.bool(n, "hostNetwork")).unwrap_or(false);
    let containers = match dec.require(&f, "containers", what) {
        Some(list) => dec
            .list(list, "`containers`")
            .iter()
            .filter_map(|c| decode_container(dec, c))
            .collect_fitted(),
        None => Vec::new(),
    };
    Some(PodSpec {
        name: dec.require(&f, "name", what).and_then(|n| dec.string(n, "pod name")),
        namespace: opt(&f, "namespace", |n| dec.string(n, "namespace")),
        node: dec.require(&f, "node", what).and_then(|n| dec.string(n, "node name")),
        // A hostNetwork pod has the node's address; an address of its own would be a mistake.
        ip: if host_network {
            opt(&f, "ip", |n| dec.ipv4(n, "pod IP"))
        } else {
            dec.require(&f, "ip", what).and_then(|n| dec.ipv4(n, "pod IP"))
        },
        host_network,
        labels: opt(&f, "labels", |n| Some(dec.string_map(n, "labels"))).unwrap_or_default(),
        containers,
        conditions: super::endpoints::decode_pod_conditions(dec, &f),
        span: f.span,
    })
}

fn decode_container(dec: &mut Decoder, node: &Node) -> Option<ContainerSpec> {
    let f = dec.fields(node, "a container", &["name", "ports"])?;
    let ports = match f.get("ports") {
        Some(list) => dec
            .list(list, "`ports`")
            .iter()
            .filter_map(|p| {
                let pf = dec.fields(p, "a container port", &["name", "containerPort", "protocol"])?;
                Some(ContainerPortSpec {
                    name: opt(&pf, "name", |n| dec.string(n, "port name")),
                    container_port: dec
                        .require(&pf, "containerPort", "a container port")
                        .and_then(|n| dec.port(n, "containerPort")),
                    protocol: opt(&pf, "protocol", |n| dec.word(n, "protocol", PROTOCOLS)),
                    span: pf.span,
                })
            })
            .collect_fitted(),
        None => Vec::new(),
    };
    Some(ContainerSpec {
        name: dec
            .require(&f, "name", "a container")
            .and_then(|n| dec.string(n, "container name")),
        ports,
    })
}

fn target_port(dec: &mut Decoder, node: &Node, what: &str) -> Option<Sp<TargetPortSpec>> {
    match &node.value {
        super::yaml::Value::Str(s) => Some(Sp::new(TargetPortSpec::Name(s.clone()), super::decode::span_of(node))),
        _ => dec
            .port(node, what)
            .map(|p| Sp::new(TargetPortSpec::Number(p.value), p.span)),
    }
}

mod ingress;
mod services;
use ingress::decode_ingress;
pub(crate) use ingress::decode_trace;
use services::decode_service;
