//! Services: addresses, ports, endpoints and the rules of NodePort and load-balancer fields.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::endpoints as endpoints_of;
use super::{Validator, namespace, protocol};
use crate::diagnostic::{Diagnostic, Span};
use crate::input::decode::Sp;
use crate::input::spec::{Scenario, TargetPortSpec};
use crate::model::*;

const NODE_PORT_RANGE: std::ops::RangeInclusive<u16> = 30000..=32767;

impl Validator {
    pub(super) fn services(
        &mut self,
        s: &Scenario,
        pods: &[(Pod, Span)],
        service_network: Option<&Sp<Ipv4Net>>,
    ) -> Vec<Service> {
        let mut out: Vec<Service> = Vec::new();
        let mut cluster_ips: BTreeMap<Ipv4Addr, String> = BTreeMap::new();
        let mut node_ports: BTreeMap<u16, String> = BTreeMap::new();
        let mut names: HashSet<(String, String)> = HashSet::new();
        // Pods by each of their labels, so a selector looks only at pods that carry its rarest label.
        // Each is built only when some Service needs it: a dump's Services all have
        // EndpointSlices, and then no selector is matched.
        let mut by_label: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        if s.services
            .iter()
            .any(|sv| sv.selector.is_some() && sv.endpoints.is_none())
        {
            for (i, (p, _)) in pods.iter().enumerate() {
                for (k, v) in &p.labels {
                    by_label.entry((&p.namespace, k, v)).or_default().push(i);
                }
            }
        }
        let by_ip = if s.services.iter().any(|sv| sv.endpoints.is_some()) {
            endpoints_of::pods_by_ip(pods)
        } else {
            HashMap::new()
        };
        for sv in &s.services {
            let name = self.name(&sv.name, "service name", false);
            let namespace = namespace(self, &sv.namespace);
            let qualified = format!(
                "{}/{}",
                namespace.as_deref().unwrap_or("?"),
                name.as_ref().map(|n| n.value.as_str()).unwrap_or("?")
            );
            if let (Some(n), Some(ns)) = (&name, &namespace)
                && !names.insert((ns.clone(), n.value.clone()))
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
                            format!(
                                "`{}` is not a valid clusterIP: {why}",
                                crate::diagnostic::shorten(&ip.value)
                            ),
                            "write an address from serviceNetwork, or None for a headless Service",
                        );
                        None
                    }
                },
                None => None,
            };
            if sv.ports.is_empty() && cluster_ip != Some(None) {
                self.error(
                    sv.span,
                    format!("service `{qualified}` has no ports"),
                    "a Service with a ClusterIP needs at least one port under `ports:`; only a headless Service (`clusterIP: None`) may have none, for DNS alone",
                );
            }
            let selector = sv.selector.as_ref().map(|s| self.labels(s));
            // Written endpoints (EndpointSlices) are the whole truth: the selector picks nothing then.
            let selected: Vec<usize> = match (&selector, &namespace) {
                (Some(sel), Some(ns)) if sv.endpoints.is_none() => sel
                    .iter()
                    .map(|(k, v)| {
                        by_label
                            .get(&(ns.as_str(), k.as_str(), v.as_str()))
                            .map_or(&[][..], Vec::as_slice)
                    })
                    .min_by_key(|candidates| candidates.len())
                    .unwrap_or_default()
                    .iter()
                    .copied()
                    .filter(|&i| selects(sel, &pods[i].0.labels))
                    .collect(),
                _ => Vec::new(),
            };
            let written = sv
                .endpoints
                .as_ref()
                .map(|specs| self.resolve_endpoints(specs, &by_ip, &qualified));
            if written.is_none() && selector.as_ref().is_some_and(|s| !s.is_empty()) && selected.is_empty() {
                let sel = selector
                    .as_ref()
                    .map(|s| s.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","));
                self.diagnostics.push(
                    Diagnostic::warning(format!("service `{qualified}` selects no pod ({})", sel.unwrap_or_default()))
                        .at(name.as_ref().map(|n| n.span).unwrap_or(sv.span))
                        .help("it has no endpoints, so kube-proxy rejects connections to it; check the selector against the pods' labels and namespace"),
                );
            }
            let mut ports: Vec<ServicePort> = Vec::new();
            let mut listed: HashSet<(u16, Protocol)> = HashSet::new();
            let mut port_names: HashSet<&str> = HashSet::new();
            for p in &sv.ports {
                let Some(port) = &p.port else { continue };
                let protocol = protocol(&p.protocol);
                // The API holds a Service port's name to a DNS label (a container port's is an
                // IANA service name), unique within the Service: kube-proxy names its chains
                // after it.
                if let Some(n) = &p.name
                    && self.syntax(
                        n,
                        "Service port name",
                        super::syntax::dns_label,
                        "a Service port's name is a DNS label: up to 63 lowercase letters, digits and '-', such as `http` or `metrics`",
                    )
                    && !port_names.insert(n.value.as_str())
                {
                    self.error(
                        n.span,
                        format!("port name `{}` is used twice in service `{qualified}`", n.value),
                        "each port of a Service needs a name of its own: kube-proxy writes one KUBE-SVC chain per name",
                    );
                }
                if let Some(t) = &p.target_port
                    && let TargetPortSpec::Name(n) = &t.value
                {
                    self.port_name(&Sp::new(n.clone(), t.span));
                }
                if sv.ports.len() > 1 && p.name.is_none() {
                    self.error(
                        p.span,
                        "a Service with several ports must name each one",
                        "add `name:` to every port",
                    );
                }
                if !listed.insert((port.value, protocol)) {
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
                    Some(np) if !u16::try_from(np.value).is_ok_and(|v| NODE_PORT_RANGE.contains(&v)) => {
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
                let candidates: Vec<endpoints::Candidate> = match &written {
                    Some(resolved) => endpoints_of::written_candidates(
                        resolved,
                        pods,
                        p.name.as_ref().map(|n| n.value.as_str()),
                        protocol,
                        &target,
                    ),
                    None => selected
                        .iter()
                        .filter_map(|&i| {
                            let port = endpoints_of::target_on(&pods[i].0, &target, protocol)?;
                            Some(endpoints_of::selected_candidate(i, &pods[i].0, port))
                        })
                        .collect(),
                };
                if let (TargetPort::Name(n), Some(t), None) = (&target, &p.target_port, &written)
                    && !selected.is_empty()
                    && candidates.is_empty()
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
                    // Legal: the API does not check it. The EndpointSlice controller finds no
                    // port for the pods, so the port has no endpoints and kube-proxy rejects.
                    self.diagnostics.push(
                        Diagnostic::warning(format!(
                            "targetPort `{}` names no {protocol} container port of the selected pods",
                            crate::diagnostic::shorten(n)
                        ))
                        .at(t.span)
                        .help(format!(
                            "the port has no endpoints, so kube-proxy rejects connections to it; {help}"
                        )),
                    );
                }
                let (mut endpoints, skipped) = endpoints::categorize(candidates);
                // kube-proxy sorts endpoints by their "ip:port" text before writing its chains.
                endpoints.sort_by_cached_key(|e| format!("{}:{}", e.ip, e.port));
                ports.push(ServicePort {
                    name: p.name.as_ref().map(|n| n.value.clone()),
                    port: port.value,
                    protocol,
                    target_port: target,
                    node_port,
                    endpoints: super::fitted(endpoints),
                    skipped,
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
                && sv.external_ips.is_empty()
            {
                self.error(
                    p.span,
                    "externalTrafficPolicy applies only to NodePort and LoadBalancer Services and to Services with externalIPs",
                    "remove it, or change the Service type",
                );
            }
            // The API server allocates healthCheckNodePort from the NodePort range, and only for
            // a LoadBalancer with externalTrafficPolicy Local.
            if let Some(h) = &sv.health_check_node_port {
                if kind != ServiceType::LoadBalancer || external_traffic_policy != TrafficPolicy::Local {
                    self.error(
                        h.span,
                        "healthCheckNodePort applies only to a LoadBalancer Service with externalTrafficPolicy: Local",
                        "remove it, or make the Service a LoadBalancer with externalTrafficPolicy: Local",
                    );
                } else if !NODE_PORT_RANGE.contains(&h.value) {
                    self.error(
                        h.span,
                        format!(
                            "healthCheckNodePort {} is outside the NodePort range 30000-32767",
                            h.value
                        ),
                        "the API server allocates it from --service-node-port-range, like a nodePort",
                    );
                } else if let Some(other) = node_ports.insert(h.value, qualified.clone()) {
                    self.error(
                        h.span,
                        format!("healthCheckNodePort {} is already used by service `{other}`", h.value),
                        "it is opened on every node like a nodePort, so it must differ from every nodePort",
                    );
                }
            }
            let (Some(name), Some(namespace), Some(cluster_ip)) = (name, namespace, cluster_ip) else {
                continue;
            };
            out.push(Service {
                namespace,
                name: name.value,
                kind,
                cluster_ip,
                selector,
                ports: super::fitted(ports),
                load_balancer_ip: sv.load_balancer_ip.as_ref().map(|l| l.value),
                load_balancer_source_ranges: sv.load_balancer_source_ranges.iter().map(|r| r.value).collect(),
                external_ips: self.external_ips(&sv.external_ips),
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
}
