//! Turns a decoded scenario into a [`Cluster`], checking every rule a real cluster would enforce
//! (or that would make the network meaningless), and collecting all problems in one pass.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::*;
use crate::diagnostic::{Diagnostic, Span};
use crate::input::decode::Sp;
use crate::input::spec::{self, Scenario, TargetPortSpec};

const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

pub struct Built {
    pub cluster: Cluster,
    pub warnings: Vec<Diagnostic>,
}

/// Validates `scenario`. On success the warnings (legal but suspicious things) come with the
/// cluster; on failure every error and warning found is returned.
pub fn build(scenario: &Scenario) -> Result<Built, Vec<Diagnostic>> {
    let mut v = Validator::default();
    let cluster = v.cluster(scenario);
    if v.diagnostics.iter().any(Diagnostic::is_error) {
        return Err(v.diagnostics);
    }
    match cluster {
        Some(cluster) => Ok(Built {
            cluster,
            warnings: v.diagnostics,
        }),
        // Every path that yields no cluster has recorded an error; this keeps it so if one is missed.
        None => Err(vec![Diagnostic::error("the scenario could not be read")]),
    }
}

/// The cluster's three networks, where they could be read.
#[derive(Clone, Copy)]
struct Networks<'a> {
    node_network: Option<&'a Sp<Ipv4Net>>,
    pod_network: Option<&'a Sp<Ipv4Net>>,
    service_network: Option<&'a Sp<Ipv4Net>>,
}

#[derive(Default)]
struct Validator {
    diagnostics: Vec<Diagnostic>,
}

impl Validator {
    fn error(&mut self, span: Span, message: impl Into<String>, help: impl Into<String>) {
        self.diagnostics.push(Diagnostic::error(message).at(span).help(help));
    }

    fn name(&mut self, field: &Option<Sp<String>>, what: &str, dots_allowed: bool) -> Option<Sp<String>> {
        let name = field.clone()?;
        let ok_label = |label: &str| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        };
        let ok = if dots_allowed {
            name.len() <= 253 && name.split('.').all(ok_label)
        } else {
            ok_label(&name)
        };
        if !ok {
            self.error(
                name.span,
                format!("`{}` is not a valid {what}", name.value),
                "names are lowercase letters, digits and '-', start and end with a letter or digit, at most 63 characters",
            );
            return None;
        }
        Some(name)
    }

    fn cluster(&mut self, s: &Scenario) -> Option<Cluster> {
        let c = &s.cluster;
        let node_network = c.node_network.clone();
        let pod_network = c.pod_network.clone();
        let service_network = c.service_network.clone();

        let networks: Vec<(&str, Sp<Ipv4Net>)> = [
            ("nodeNetwork", node_network.clone()),
            ("podNetwork", pod_network.clone()),
            ("serviceNetwork", service_network.clone()),
        ]
        .into_iter()
        .filter_map(|(n, v)| v.map(|v| (n, v)))
        .collect();
        for (i, (a_name, a)) in networks.iter().enumerate() {
            for (b_name, b) in &networks[i + 1..] {
                // GKE's classic layout carves the Service range out of the pod network; that is
                // sound as long as no node's podCIDR reaches into it, which `nodes` checks.
                let service_inside_pods =
                    *a_name == "podNetwork" && *b_name == "serviceNetwork" && a.contains(&b.value);
                if overlaps(a, b) && !service_inside_pods {
                    self.error(
                        b.span,
                        format!("{b_name} {} overlaps {a_name} {}", b.value, a.value),
                        format!(
                            "node, pod and Service addresses must come from separate ranges, or a packet's destination is ambiguous; pick a {b_name} outside {}",
                            a.value
                        ),
                    );
                }
            }
        }

        let gateway = match (&c.gateway, &node_network) {
            (Some(g), Some(net)) => {
                if !net.contains(&g.value) {
                    self.error(
                        g.span,
                        format!("gateway {} is outside nodeNetwork {}", g.value, net.value),
                        "the nodes reach their gateway directly, so it must be an address of nodeNetwork",
                    );
                }
                Some(g.value)
            }
            (None, Some(net)) => net.hosts().next(),
            _ => None,
        };

        let name = match &c.name {
            Some(_) => self.name(&c.name, "cluster name", false).map(|n| n.value),
            None => Some("cluster".to_owned()),
        };
        let cluster_domain = c
            .cluster_domain
            .as_ref()
            .map(|d| d.value.clone())
            .unwrap_or_else(|| "cluster.local".to_owned());
        let hairpin = c
            .hairpin_mode
            .as_ref()
            .map(|h| hairpin_mode(h))
            .unwrap_or(HairpinMode::HairpinVeth);
        let bridge_nf = c.bridge_nf_call_iptables.unwrap_or(true);

        let networks = Networks {
            node_network: node_network.as_ref(),
            pod_network: pod_network.as_ref(),
            service_network: service_network.as_ref(),
        };
        let nodes = self.nodes(s, networks, gateway, (hairpin, bridge_nf));
        let pods = self.pods(s, &nodes);
        let services = self.services(s, &pods, service_network.as_ref());
        let ingresses = self.ingresses(s, &services);
        let traces = self.traces(s);

        let non_masquerade_cidrs = match &c.non_masquerade_cidrs {
            Some(list) => list.iter().map(|n| n.value).collect(),
            None => pod_network.iter().map(|n| n.value).collect(),
        };

        Some(Cluster {
            name: name?,
            node_network: node_network?.value,
            gateway: gateway?,
            pod_network: pod_network?.value,
            service_network: service_network?.value,
            cni: Cni::Kubenet,
            kube_proxy: KubeProxyMode::Iptables,
            cluster_domain,
            non_masquerade_cidrs,
            nodes: nodes.into_iter().map(|(n, _)| n).collect(),
            pods: pods.into_iter().map(|(p, _)| p).collect(),
            services,
            ingresses,
            traces,
        })
    }

    fn nodes(
        &mut self,
        s: &Scenario,
        networks: Networks<'_>,
        gateway: Option<Ipv4Addr>,
        defaults: (HairpinMode, bool),
    ) -> Vec<(Node, Span)> {
        let Networks {
            node_network,
            pod_network,
            service_network,
        } = networks;
        let (hairpin, bridge_nf) = defaults;
        let mut out: Vec<(Node, Span)> = Vec::new();
        let mut cidrs: Vec<(String, Sp<Ipv4Net>)> = Vec::new();
        let mut ips: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        for n in &s.nodes {
            let name = self.name(&n.name, "node name", true);
            if let Some(name) = &name
                && out.iter().any(|(o, _)| o.name == name.value)
            {
                self.error(
                    name.span,
                    format!("duplicate node name `{}`", name.value),
                    "give each node its own name",
                );
            }
            if let (Some(ip), Some(net)) = (&n.ip, node_network)
                && !net.contains(&ip.value)
            {
                self.error(
                    ip.span,
                    format!("node IP {} is outside nodeNetwork {}", ip.value, net.value),
                    format!("pick an address in {}", net.value),
                );
            }
            if let Some(ip) = &n.ip {
                if Some(ip.value) == gateway {
                    self.error(
                        ip.span,
                        format!("node IP {} is the gateway's address", ip.value),
                        "the gateway is the cloud router; give the node another address",
                    );
                }
                if let Some(other) = ips.insert(ip.value, name.as_ref().map(|n| n.value.clone()).unwrap_or_default()) {
                    self.error(
                        ip.span,
                        format!("node IP {} is already used by node `{other}`", ip.value),
                        "every node needs its own address",
                    );
                }
            }
            if let Some(cidr) = &n.pod_cidr {
                if let Some(net) = pod_network
                    && !net.contains(&cidr.value)
                {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} is outside podNetwork {}", cidr.value, net.value),
                        format!("each node's podCIDR is a slice of podNetwork {}", net.value),
                    );
                }
                if cidr.prefix_len() > 30 {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} is too small for pods", cidr.value),
                        "a podCIDR needs room for the bridge's address and at least one pod: use /30 or larger",
                    );
                }
                if let Some(svc) = service_network
                    && overlaps(cidr, svc)
                {
                    self.error(
                        cidr.span,
                        format!("podCIDR {} overlaps serviceNetwork {}", cidr.value, svc.value),
                        "ClusterIPs would be ambiguous with this node's pod addresses; pick a podCIDR outside the service network",
                    );
                }
                for (other, o) in &cidrs {
                    if overlaps(cidr, o) {
                        self.error(
                            cidr.span,
                            format!("podCIDR {} overlaps node `{other}`'s podCIDR {}", cidr.value, o.value),
                            "every node needs its own slice of the pod network",
                        );
                    }
                }
                cidrs.push((name.as_ref().map(|n| n.value.clone()).unwrap_or_default(), cidr.clone()));
            }
            let routes = self.routes(&n.routes);
            let node_hairpin = n.hairpin_mode.as_ref().map(|h| hairpin_mode(h)).unwrap_or(hairpin);
            if let (Some(name), Some(ip), Some(cidr)) = (name, &n.ip, &n.pod_cidr) {
                out.push((
                    Node {
                        name: name.value,
                        ip: ip.value,
                        pod_cidr: cidr.value,
                        hairpin: node_hairpin,
                        bridge_nf_call_iptables: n.bridge_nf_call_iptables.unwrap_or(bridge_nf),
                        extra_routes: routes,
                    },
                    n.span,
                ));
            }
        }
        out
    }

    fn routes(&mut self, routes: &[spec::RouteSpec]) -> Vec<ExtraRoute> {
        let mut out = Vec::new();
        for r in routes {
            let kind = match r.kind.as_ref().map(|k| k.as_str()) {
                Some("blackhole") => RouteKind::Blackhole,
                Some("unreachable") => RouteKind::Unreachable,
                Some("prohibit") => RouteKind::Prohibit,
                _ => RouteKind::Unicast,
            };
            if kind == RouteKind::Unicast && r.via.is_none() && r.dev.is_none() {
                self.error(
                    r.span,
                    "a unicast route needs `via` or `dev`",
                    "add `via: <gateway IP>` or `dev: <device>`, or set `type: blackhole` to drop the traffic",
                );
                continue;
            }
            if kind != RouteKind::Unicast
                && let Some(via) = r.via.as_ref().map(|v| v.span).or(r.dev.as_ref().map(|d| d.span))
            {
                self.error(
                    via,
                    format!("a {kind:?} route has no gateway or device", kind = kind).to_lowercase(),
                    "remove `via` and `dev`: the route's type alone says what happens to the traffic",
                );
                continue;
            }
            if let Some(dev) = &r.dev
                && !["eth0", "cbr0", "lo"].contains(&dev.as_str())
            {
                self.error(
                    dev.span,
                    format!("no device `{}` on the node", dev.value),
                    "a node's devices are eth0 (node network), cbr0 (pod bridge) and lo",
                );
                continue;
            }
            let Some(destination) = &r.destination else { continue };
            out.push(ExtraRoute {
                destination: destination.value,
                via: r.via.as_ref().map(|v| v.value),
                dev: r.dev.as_ref().map(|d| d.value.clone()),
                metric: r.metric.unwrap_or(0),
                kind,
                line: r.span.pos.line,
            });
        }
        out
    }

    fn pods(&mut self, s: &Scenario, nodes: &[(Node, Span)]) -> Vec<(Pod, Span)> {
        let mut out: Vec<(Pod, Span)> = Vec::new();
        let mut ips: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        for p in &s.pods {
            let name = self.name(&p.name, "pod name", true);
            let namespace = namespace(self, &p.namespace);
            if let (Some(name), Some(ns)) = (&name, &namespace)
                && out.iter().any(|(o, _)| o.name == name.value && &o.namespace == ns)
            {
                self.error(
                    name.span,
                    format!("duplicate pod `{ns}/{}`", name.value),
                    "pod names are unique within a namespace",
                );
            }
            let node = match &p.node {
                Some(n) => match nodes.iter().position(|(node, _)| node.name == n.value) {
                    Some(i) => Some(i),
                    // A node that is in the file but had problems of its own was reported
                    // already; saying it "does not exist" would only mislead.
                    None if s
                        .nodes
                        .iter()
                        .any(|sn| sn.name.as_ref().is_some_and(|sn| sn.value == n.value)) =>
                    {
                        None
                    }
                    None => {
                        let known: Vec<&str> = nodes.iter().map(|(n, _)| n.name.as_str()).collect();
                        let help = match crate::input::decode::closest(&n.value, &known) {
                            Some(best) => format!("did you mean `{best}`?"),
                            None => format!("the nodes are: {}", known.join(", ")),
                        };
                        self.error(
                            n.span,
                            format!("pod is on node `{}`, which does not exist", n.value),
                            help,
                        );
                        None
                    }
                },
                None => None,
            };
            let ip = match (node, &p.ip, p.host_network) {
                (Some(i), ip, true) => {
                    let node_ip = nodes[i].0.ip;
                    if let Some(ip) = ip
                        && ip.value != node_ip
                    {
                        self.error(
                            ip.span,
                            format!("hostNetwork pod has IP {}, but its node's IP is {node_ip}", ip.value),
                            "a hostNetwork pod shares its node's network namespace and address: remove `ip`",
                        );
                    }
                    Some(node_ip)
                }
                (Some(i), Some(ip), false) => {
                    let cidr = nodes[i].0.pod_cidr;
                    if !cidr.contains(&ip.value) {
                        let owner = nodes.iter().find(|(n, _)| n.pod_cidr.contains(&ip.value));
                        let help = match owner {
                            Some((o, _)) => format!(
                                "{} belongs to node `{}`'s podCIDR {}; the CNI gives pods on {} addresses from {cidr}",
                                ip.value, o.name, o.pod_cidr, nodes[i].0.name
                            ),
                            None => format!("pods on {} get addresses from {cidr}", nodes[i].0.name),
                        };
                        self.error(
                            ip.span,
                            format!("pod IP {} is outside its node's podCIDR {cidr}", ip.value),
                            help,
                        );
                    } else if ip.value == cidr.network() || ip.value == cidr.broadcast() {
                        self.error(
                            ip.span,
                            format!(
                                "pod IP {} is the {} address of {cidr}",
                                ip.value,
                                if ip.value == cidr.network() {
                                    "network"
                                } else {
                                    "broadcast"
                                }
                            ),
                            "pick an address between the bridge's and the broadcast address",
                        );
                    } else if Some(ip.value) == cidr.hosts().next() {
                        self.error(
                            ip.span,
                            format!("pod IP {} is the node bridge's address", ip.value),
                            format!("cbr0 holds the first address of {cidr}, the pods' gateway; pick another"),
                        );
                    } else if let Some(other) = ips.get(&ip.value) {
                        self.error(
                            ip.span,
                            format!("pod IP {} is already used by pod `{other}`", ip.value),
                            "every pod needs its own address",
                        );
                    }
                    Some(ip.value)
                }
                _ => None,
            };
            if let (Some(ip), Some(n), Some(ns), false) = (ip, &name, &namespace, p.host_network) {
                ips.entry(ip).or_insert(format!("{ns}/{}", n.value));
            }
            let containers = self.containers(&p.containers);
            if let (Some(name), Some(namespace), Some(node), Some(ip)) = (name, namespace, node, ip) {
                out.push((
                    Pod {
                        namespace,
                        name: name.value,
                        node,
                        ip,
                        host_network: p.host_network,
                        labels: p.labels.clone(),
                        containers,
                    },
                    p.span,
                ));
            }
        }
        out
    }

    fn containers(&mut self, specs: &[spec::ContainerSpec]) -> Vec<Container> {
        let mut out: Vec<Container> = Vec::new();
        let mut bound: BTreeMap<(u16, Protocol), String> = BTreeMap::new();
        let mut port_names: BTreeSet<String> = BTreeSet::new();
        for c in specs {
            let name = self.name(&c.name, "container name", false);
            if let Some(n) = &name
                && out.iter().any(|o| o.name == n.value)
            {
                self.error(
                    n.span,
                    format!("duplicate container `{}`", n.value),
                    "container names are unique within a pod",
                );
            }
            let mut ports = Vec::new();
            for p in &c.ports {
                let Some(port) = &p.container_port else { continue };
                let protocol = protocol(&p.protocol);
                let owner = name.as_ref().map(|n| n.value.clone()).unwrap_or_default();
                if let Some(other) = bound.insert((port.value, protocol), owner.clone()) {
                    self.error(
                        port.span,
                        format!("port {}/{protocol} is declared by container `{other}` too", port.value),
                        "a pod's containers share one network namespace, so only one of them can bind a port; give one container another port",
                    );
                }
                if let Some(pn) = &p.name {
                    if !port_names.insert(pn.value.clone()) {
                        self.error(
                            pn.span,
                            format!("duplicate port name `{}` in the pod", pn.value),
                            "port names are unique within a pod",
                        );
                    }
                    if pn.len() > 15 {
                        self.error(
                            pn.span,
                            format!("port name `{}` is longer than 15 characters", pn.value),
                            "Kubernetes limits port names to 15 characters",
                        );
                    }
                }
                ports.push(ContainerPort {
                    name: p.name.as_ref().map(|n| n.value.clone()),
                    port: port.value,
                    protocol,
                });
            }
            if let Some(name) = name {
                out.push(Container {
                    name: name.value,
                    ports,
                });
            }
        }
        out
    }

    fn services(&mut self, s: &Scenario, pods: &[(Pod, Span)], service_network: Option<&Sp<Ipv4Net>>) -> Vec<Service> {
        let mut out: Vec<Service> = Vec::new();
        let mut cluster_ips: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut node_ports: BTreeMap<u16, String> = BTreeMap::new();
        for sv in &s.services {
            let name = self.name(&sv.name, "service name", false);
            let namespace = namespace(self, &sv.namespace);
            let qualified = format!(
                "{}/{}",
                namespace.as_deref().unwrap_or("?"),
                name.as_ref().map(|n| n.value.as_str()).unwrap_or("?")
            );
            if let (Some(n), Some(ns)) = (&name, &namespace)
                && out.iter().any(|o| o.name == n.value && &o.namespace == ns)
            {
                self.error(
                    n.span,
                    format!("duplicate service `{qualified}`"),
                    "service names are unique within a namespace",
                );
            }
            let kind = match sv.kind.as_ref().map(|k| k.as_str()) {
                Some("NodePort") => ServiceType::NodePort,
                Some("LoadBalancer") => ServiceType::LoadBalancer,
                _ => ServiceType::ClusterIP,
            };
            let cluster_ip = match &sv.cluster_ip {
                Some(ip) if ip.value == "None" => {
                    if kind != ServiceType::ClusterIP {
                        self.error(
                            ip.span,
                            format!("a {kind} Service cannot be headless"),
                            "give it a clusterIP, or make it type ClusterIP",
                        );
                    }
                    Some(None)
                }
                Some(ip) => match crate::input::decode::parse_ipv4(&ip.value) {
                    Ok(addr) => {
                        if let Some(net) = service_network
                            && !net.contains(&addr)
                        {
                            self.error(
                                ip.span,
                                format!("clusterIP {addr} is outside serviceNetwork {}", net.value),
                                format!(
                                    "ClusterIPs are allocated from serviceNetwork: pick an address in {}",
                                    net.value
                                ),
                            );
                        } else if let Some(other) = cluster_ips.insert(addr, qualified.clone()) {
                            self.error(
                                ip.span,
                                format!("clusterIP {addr} is already used by service `{other}`"),
                                "every Service needs its own ClusterIP",
                            );
                        }
                        Some(Some(addr))
                    }
                    Err(why) => {
                        self.error(
                            ip.span,
                            format!("`{}` is not a valid clusterIP: {why}", ip.value),
                            "write an address from serviceNetwork, or None for a headless Service",
                        );
                        None
                    }
                },
                None => None,
            };
            let selected: Vec<usize> = match &sv.selector {
                Some(sel) => pods
                    .iter()
                    .enumerate()
                    .filter(|(_, (p, _))| Some(&p.namespace) == namespace.as_ref() && selects(sel, &p.labels))
                    .map(|(i, _)| i)
                    .collect(),
                None => Vec::new(),
            };
            if sv.selector.as_ref().is_some_and(|s| !s.is_empty()) && selected.is_empty() {
                let sel = sv
                    .selector
                    .as_ref()
                    .map(|s| s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
                self.diagnostics.push(
                    Diagnostic::warning(format!("service `{qualified}` selects no pod ({})", sel.unwrap_or_default()))
                        .at(name.as_ref().map(|n| n.span).unwrap_or(sv.span))
                        .help("it has no endpoints, so kube-proxy rejects connections to it; check the selector against the pods' labels and namespace"),
                );
            }
            let mut ports: Vec<ServicePort> = Vec::new();
            for p in &sv.ports {
                let Some(port) = &p.port else { continue };
                let protocol = protocol(&p.protocol);
                if sv.ports.len() > 1 && p.name.is_none() {
                    self.error(
                        p.span,
                        "a Service with several ports must name each one",
                        "add `name:` to every port",
                    );
                }
                if ports.iter().any(|o| o.port == port.value && o.protocol == protocol) {
                    self.error(
                        port.span,
                        format!("port {}/{protocol} is listed twice", port.value),
                        "list each port once",
                    );
                }
                let node_port = match &p.node_port {
                    Some(np) if kind == ServiceType::ClusterIP => {
                        self.error(
                            np.span,
                            "a ClusterIP Service has no nodePort",
                            "make the Service type NodePort or LoadBalancer, or remove nodePort",
                        );
                        None
                    }
                    Some(np) if !NODE_PORT_RANGE.contains(&(np.value as u16)) || np.value > u16::MAX as i64 => {
                        self.error(
                            np.span,
                            format!("nodePort {} is outside the NodePort range 30000-32767", np.value),
                            "the API server allocates NodePorts from --service-node-port-range, 30000-32767 by default",
                        );
                        None
                    }
                    Some(np) => {
                        let np_value = np.value as u16;
                        if let Some(other) = node_ports.insert(np_value, qualified.clone()) {
                            self.error(
                                np.span,
                                format!("nodePort {np_value} is already used by service `{other}`"),
                                "every NodePort is open on every node, so each must be unique in the cluster",
                            );
                        }
                        Some(np_value)
                    }
                    None => None,
                };
                if node_port.is_none() && p.node_port.is_none() && kind != ServiceType::ClusterIP {
                    self.error(p.span, format!("a {kind} Service port needs a nodePort"), "add `nodePort:` with a port from 30000-32767 (the API server would pick one; k8snet needs it written down)");
                }
                let target = match &p.target_port {
                    Some(t) => match &t.value {
                        TargetPortSpec::Number(n) => TargetPort::Number(*n),
                        TargetPortSpec::Name(n) => TargetPort::Name(n.clone()),
                    },
                    None => TargetPort::Number(port.value),
                };
                let mut endpoints = Vec::new();
                for &i in &selected {
                    let pod = &pods[i].0;
                    let resolved = match &target {
                        TargetPort::Number(n) => Some(*n),
                        TargetPort::Name(n) => pod
                            .listeners()
                            .find(|(_, cp)| cp.name.as_deref() == Some(n.as_str()) && cp.protocol == protocol)
                            .map(|(_, cp)| cp.port),
                    };
                    if let Some(port) = resolved {
                        endpoints.push(Endpoint {
                            pod: i,
                            ip: pod.ip,
                            port,
                        });
                    }
                }
                if let (TargetPort::Name(n), Some(t)) = (&target, &p.target_port)
                    && !selected.is_empty()
                    && endpoints.is_empty()
                {
                    let names: BTreeSet<String> = selected
                        .iter()
                        .flat_map(|&i| {
                            pods[i]
                                .0
                                .listeners()
                                .filter_map(|(_, cp)| cp.name.clone())
                                .collect::<Vec<_>>()
                        })
                        .collect();
                    let help = if names.is_empty() {
                        "the selected pods name none of their ports; name the container port, or use a number"
                            .to_owned()
                    } else {
                        format!(
                            "the selected pods' port names are: {}",
                            names.into_iter().collect::<Vec<_>>().join(", ")
                        )
                    };
                    self.error(
                        t.span,
                        format!("targetPort `{n}` names no {protocol} container port of the selected pods"),
                        help,
                    );
                }
                // kube-proxy sorts endpoints by their "ip:port" text before writing its chains.
                endpoints.sort_by_key(|e| format!("{}:{}", e.ip, e.port));
                ports.push(ServicePort {
                    name: p.name.as_ref().map(|n| n.value.clone()),
                    port: port.value,
                    protocol,
                    target_port: target,
                    node_port,
                    endpoints,
                });
            }
            if let Some(lb) = &sv.load_balancer_ip
                && kind != ServiceType::LoadBalancer
            {
                self.error(
                    lb.span,
                    format!("a {kind} Service has no loadBalancerIP"),
                    "make the Service type LoadBalancer, or remove loadBalancerIP",
                );
            }
            let external_traffic_policy = match sv.external_traffic_policy.as_ref().map(|p| p.as_str()) {
                Some("Local") => TrafficPolicy::Local,
                _ => TrafficPolicy::Cluster,
            };
            if let Some(p) = &sv.external_traffic_policy
                && kind == ServiceType::ClusterIP
            {
                self.error(
                    p.span,
                    "externalTrafficPolicy applies only to NodePort and LoadBalancer Services",
                    "remove it, or change the Service type",
                );
            }
            let (Some(name), Some(namespace), Some(cluster_ip)) = (name, namespace, cluster_ip) else {
                continue;
            };
            out.push(Service {
                namespace,
                name: name.value,
                kind,
                cluster_ip,
                selector: sv.selector.clone(),
                ports,
                load_balancer_ip: sv.load_balancer_ip.as_ref().map(|l| l.value),
                load_balancer_source_ranges: sv.load_balancer_source_ranges.iter().map(|r| r.value).collect(),
                external_traffic_policy,
                internal_traffic_policy: match sv.internal_traffic_policy.as_ref().map(|p| p.as_str()) {
                    Some("Local") => TrafficPolicy::Local,
                    _ => TrafficPolicy::Cluster,
                },
                health_check_node_port: sv.health_check_node_port.as_ref().map(|p| p.value),
                session_affinity_timeout: match sv.session_affinity.as_ref().map(|a| a.as_str()) {
                    Some("ClientIP") => Some(
                        sv.session_affinity_timeout
                            .as_ref()
                            .map(|t| t.value as u32)
                            .unwrap_or(10800),
                    ),
                    _ => None,
                },
            });
        }
        out
    }

    fn backend(&mut self, b: &spec::BackendSpec, namespace: &str, services: &[Service]) -> Option<Backend> {
        let name = b.service.as_ref()?;
        let Some(si) = services
            .iter()
            .position(|s| s.namespace == namespace && s.name == name.value)
        else {
            self.error(
                name.span,
                format!("backend service `{namespace}/{}` does not exist", name.value),
                "an Ingress backend is a Service in the Ingress's own namespace",
            );
            return None;
        };
        let port = b.port.as_ref()?;
        let found = services[si].ports.iter().position(|p| match &port.value {
            TargetPortSpec::Number(n) => p.port == *n,
            TargetPortSpec::Name(n) => p.name.as_deref() == Some(n.as_str()),
        });
        if found.is_none() {
            let have: Vec<String> = services[si]
                .ports
                .iter()
                .map(|p| p.name.clone().unwrap_or_else(|| p.port.to_string()))
                .collect();
            self.error(
                port.span,
                format!(
                    "service `{namespace}/{}` has no port {}",
                    name.value,
                    match &port.value {
                        TargetPortSpec::Number(n) => n.to_string(),
                        TargetPortSpec::Name(n) => n.clone(),
                    }
                ),
                format!("its ports are: {}", have.join(", ")),
            );
        }
        Some(Backend {
            service: si,
            port: found?,
        })
    }

    fn ingresses(&mut self, s: &Scenario, services: &[Service]) -> Vec<Ingress> {
        let mut out: Vec<Ingress> = Vec::new();
        for ing in &s.ingresses {
            let name = self.name(&ing.name, "ingress name", true);
            let Some(namespace) = namespace(self, &ing.namespace) else {
                continue;
            };
            let controller = ing.controller.as_ref().and_then(|c| {
                let (ns, n) = c.split_once('/').unwrap_or(("default", c.as_str()));
                let found = services.iter().position(|s| s.namespace == ns && s.name == n);
                if found.is_none() {
                    self.error(
                        c.span,
                        format!("controller service `{ns}/{n}` does not exist"),
                        "name the Service in front of the ingress controller pods as namespace/name",
                    );
                }
                found
            });
            let default_backend = ing
                .default_backend
                .as_ref()
                .and_then(|b| self.backend(b, &namespace, services));
            let mut rules = Vec::new();
            for r in &ing.rules {
                if let Some(h) = &r.host
                    && !valid_host(&h.value)
                {
                    self.error(
                        h.span,
                        format!("`{}` is not a valid ingress host", h.value),
                        "write a DNS name such as shop.example.com, or *.example.com for a wildcard of one label",
                    );
                }
                let mut paths = Vec::new();
                for p in &r.paths {
                    let Some(path) = &p.path else { continue };
                    if !path.starts_with('/') {
                        self.error(
                            path.span,
                            format!("path `{}` does not start with /", path.value),
                            "ingress paths are absolute, for example /cart",
                        );
                    }
                    let path_type = match p.path_type.as_ref().map(|t| t.as_str()) {
                        Some("Exact") => PathType::Exact,
                        Some("ImplementationSpecific") => PathType::ImplementationSpecific,
                        _ => PathType::Prefix,
                    };
                    if let Some(backend) = self.backend(&p.backend, &namespace, services) {
                        paths.push(IngressPath {
                            path: path.value.clone(),
                            path_type,
                            backend,
                        });
                    }
                }
                rules.push(IngressRule {
                    host: r.host.as_ref().map(|h| h.value.clone()),
                    paths,
                });
            }
            if let (Some(name), Some(controller)) = (name, controller) {
                out.push(Ingress {
                    namespace,
                    name: name.value,
                    controller,
                    default_backend,
                    rules,
                });
            }
        }
        out
    }

    fn traces(&mut self, s: &Scenario) -> Vec<TraceCase> {
        let mut out = Vec::new();
        for t in &s.traces {
            if let Some(e) = &t.expect
                && crate::trace::Verdict::from_name(&e.value).is_none()
            {
                let names: Vec<&str> = crate::trace::Verdict::ALL.iter().map(|v| v.name()).collect();
                let help = match crate::input::decode::closest(&e.value, &names) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("verdicts are: {}", names.join(", ")),
                };
                self.error(e.span, format!("`{}` is not a verdict", e.value), help);
                continue;
            }
            if let (Some(from), Some(to), Some(expect)) = (&t.from, &t.to, &t.expect) {
                out.push(TraceCase {
                    from: from.value.clone(),
                    to: to.value.clone(),
                    port: t.port.as_ref().map(|p| p.value),
                    protocol: t.protocol.as_ref().and_then(|p| Protocol::from_word(p)),
                    expect: expect.value.clone(),
                    line: t.span.pos.line,
                });
            }
        }
        out
    }
}

fn namespace(v: &mut Validator, field: &Option<Sp<String>>) -> Option<String> {
    match field {
        Some(_) => v.name(field, "namespace", false).map(|n| n.value),
        None => Some("default".to_owned()),
    }
}

fn protocol(field: &Option<Sp<String>>) -> Protocol {
    field
        .as_ref()
        .and_then(|p| Protocol::from_word(p))
        .unwrap_or(Protocol::Tcp)
}

fn hairpin_mode(word: &str) -> HairpinMode {
    match word {
        "promiscuous-bridge" => HairpinMode::PromiscuousBridge,
        "none" => HairpinMode::None,
        _ => HairpinMode::HairpinVeth,
    }
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// An Ingress host: a DNS name, optionally with a leading `*.` wildcard label.
fn valid_host(host: &str) -> bool {
    let rest = host.strip_prefix("*.").unwrap_or(host);
    !rest.is_empty()
        && rest.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        })
}
