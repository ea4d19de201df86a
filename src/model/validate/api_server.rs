//! The `kubernetes` Service in `default`, which the API server keeps in every cluster: the first
//! address of the Service network, port `https` 443, leading to the API server itself. k8snet
//! runs the API server as kubeadm does, as a static pod with the host's network on a node
//! (`cluster.apiServer`, by default the first node on port 6443).

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::Validator;
use crate::diagnostic::Span;
use crate::input::decode::Sp;
use crate::input::spec::Scenario;
use crate::model::*;

pub const SERVICE: (&str, &str) = ("default", "kubernetes");
/// kube-apiserver's `--secure-port` default.
pub const DEFAULT_PORT: u16 = 6443;

impl Validator {
    /// Adds the API server's pod and the `kubernetes` Service (after everything the scenario
    /// lists, so no index into either list moves). A scenario that declares `default/kubernetes`
    /// keeps its own; when it has no selector, as the real one has none, its ports lead to the
    /// API server, as the API server's endpoint reconciler writes them.
    pub(super) fn kubernetes_service(
        &mut self,
        s: &Scenario,
        nodes: &[(Node, Span)],
        pods: &mut Vec<(Pod, Span)>,
        services: &mut Vec<Service>,
        service_network: Option<&Sp<Ipv4Net>>,
    ) {
        let spec = s.cluster.api_server.as_ref();
        let node = match spec.and_then(|a| a.node.as_ref()) {
            Some(name) => match nodes.iter().position(|(n, _)| n.name == name.value) {
                Some(i) => Some(i),
                None => {
                    let known: Vec<&str> = nodes.iter().map(|(n, _)| n.name.as_str()).collect();
                    self.error(
                        name.span,
                        format!("apiServer.node `{}` is not a node of the scenario", name.value),
                        format!("the API server runs on one of the nodes: {}", known.join(", ")),
                    );
                    None
                }
            },
            // A file that lists kubeadm's API server pod (as `kubectl get pods -A` prints it)
            // says where it runs.
            None => pods
                .iter()
                .find(|(p, _)| p.namespace == "kube-system" && p.name.starts_with("kube-apiserver-") && p.host_network)
                .map(|(p, _)| p.node)
                .or((!nodes.is_empty()).then_some(0)),
        };
        let port = spec
            .and_then(|a| a.port.as_ref())
            .map_or(DEFAULT_PORT, |p| p.value as u16);
        let first = service_network.and_then(|net| net.value.hosts().next());
        if let Some(first) = first {
            self.first_address_taken(s, first);
        }
        let endpoint = node.map(|n| api_server_pod(&nodes[n].0, n, port, pods));
        let endpoints = |target: u16| match endpoint {
            Some((pod, ip)) => vec![Endpoint { pod, ip, port: target }],
            None => Vec::new(),
        };
        let (ns, name) = SERVICE;
        // Endpoints the file lists (an EndpointSlice, as `kubectl get` prints it) are the
        // reconciler's own answer, so they stay.
        let lists_endpoints = s.services.iter().any(|sv| {
            sv.name.as_ref().is_some_and(|n| n.value == name)
                && sv.namespace.as_ref().map_or("default", |n| n.value.as_str()) == ns
                && sv.endpoints.is_some()
        });
        if let Some(declared) = services.iter_mut().find(|s| s.namespace == ns && s.name == name) {
            if declared.selector.is_none() && !lists_endpoints {
                for p in &mut declared.ports {
                    p.endpoints = endpoints(port);
                }
            }
            return;
        }
        let Some(cluster_ip) = first else { return };
        services.push(Service {
            namespace: ns.to_owned(),
            name: name.to_owned(),
            kind: ServiceType::ClusterIP,
            cluster_ip: Some(cluster_ip),
            selector: None,
            ports: vec![ServicePort {
                name: Some("https".to_owned()),
                port: 443,
                protocol: Protocol::Tcp,
                target_port: TargetPort::Number(port),
                node_port: None,
                endpoints: endpoints(port),
                skipped: Vec::new(),
            }],
            load_balancer_ip: None,
            load_balancer_source_ranges: Vec::new(),
            external_ips: Vec::new(),
            external_traffic_policy: TrafficPolicy::Cluster,
            internal_traffic_policy: TrafficPolicy::Cluster,
            health_check_node_port: None,
            session_affinity_timeout: None,
        });
    }

    /// The API server allocates the first address of the Service network to `kubernetes`
    /// before any other Service exists, so no other Service can hold it.
    fn first_address_taken(&mut self, s: &Scenario, first: Ipv4Addr) {
        let (ns, name) = SERVICE;
        for sv in &s.services {
            let is_kubernetes = sv.name.as_ref().is_some_and(|n| n.value == name)
                && sv.namespace.as_ref().map_or("default", |n| n.value.as_str()) == ns;
            let Some(ip) = &sv.cluster_ip else { continue };
            if is_kubernetes || crate::input::decode::parse_ipv4(&ip.value) != Ok(first) {
                continue;
            }
            self.error(
                ip.span,
                format!("clusterIP {first} is the `kubernetes` Service's"),
                "the API server gives the first address of serviceNetwork to default/kubernetes in every cluster; pick another address (k8snet adds that Service itself, so it need not be listed)",
            );
        }
    }
}

/// The API server's pod on `node`, kubeadm's `kube-system/kube-apiserver-NODE`, added unless the
/// scenario lists it; returns its index and address.
fn api_server_pod(node: &Node, index: usize, port: u16, pods: &mut Vec<(Pod, Span)>) -> (usize, Ipv4Addr) {
    let name = format!("kube-apiserver-{}", node.name);
    if let Some(i) = pods
        .iter()
        .position(|(p, _)| p.namespace == "kube-system" && p.name == name)
    {
        // kubeadm's manifest declares no ports; the API server listens on its port anyway.
        let pod = &mut pods[i].0;
        if !pod
            .listeners()
            .any(|(_, p)| p.port == port && p.protocol == Protocol::Tcp)
            && let Some(c) = pod.containers.first_mut()
        {
            c.ports.push(ContainerPort {
                name: Some("https".to_owned()),
                port,
                protocol: Protocol::Tcp,
            });
        }
        return (i, pods[i].0.ip);
    }
    pods.push((
        Pod {
            namespace: "kube-system".to_owned(),
            name,
            node: index,
            ip: node.ip,
            host_network: true,
            labels: vec![
                ("component".to_owned(), "kube-apiserver".to_owned()),
                ("tier".to_owned(), "control-plane".to_owned()),
            ],
            containers: vec![Container {
                name: "kube-apiserver".to_owned(),
                ports: vec![ContainerPort {
                    name: Some("https".to_owned()),
                    port,
                    protocol: Protocol::Tcp,
                }],
            }],
            ready: true,
            terminating: false,
        },
        Span::default(),
    ));
    (pods.len() - 1, node.ip)
}
