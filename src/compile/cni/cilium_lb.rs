//! Cilium's kube-proxy replacement (`kubeProxyReplacement: true`, with `kubeProxy: none`): the
//! Service maps its eBPF programs read (`cilium_lb4_services_v2`, `cilium_lb4_backends_v3`),
//! one set for the whole cluster. Every ClusterIP port is a frontend for the socket programs
//! (`bpf_sock`, on connect), every NodePort one for the program on the node's device
//! (`bpf_host`). Under `internalTrafficPolicy: Local` (for the ClusterIP) or
//! `externalTrafficPolicy: Local` (for the NodePort) each node's agent lists only the backends
//! on its own node, as Cilium's two-scope service entries do; the maps keep each backend's node.

use std::net::SocketAddrV4;
use std::sync::Arc;

use crate::model::{Cluster, ServicePort, TrafficPolicy};
use crate::net::service_lb::{Frontend, Local, ServiceLb};

pub(super) fn maps(cluster: &Cluster) -> Arc<ServiceLb> {
    let mut lb = ServiceLb::default();
    for s in &cluster.services {
        for p in &s.ports {
            let name = match &p.name {
                Some(n) => format!("{}/{}:{n}/{}", s.namespace, s.name, p.protocol),
                None => format!("{}/{}:{}/{}", s.namespace, s.name, p.port, p.protocol),
            };
            let frontend = |policy: TrafficPolicy, word: &'static str| Frontend {
                name: name.clone(),
                backends: p.endpoints.iter().map(|e| SocketAddrV4::new(e.ip, e.port)).collect(),
                local_to: (policy == TrafficPolicy::Local).then(|| Local {
                    policy: word,
                    nodes: backend_nodes(cluster, p),
                }),
            };
            if let Some(ip) = s.cluster_ip {
                let internal = frontend(s.internal_traffic_policy, "internalTrafficPolicy");
                lb.frontends.insert((ip, p.port, p.protocol), internal);
            }
            if let Some(np) = p.node_port {
                let external = frontend(s.external_traffic_policy, "externalTrafficPolicy");
                lb.node_ports.insert((np, p.protocol), external);
            }
        }
    }
    Arc::new(lb)
}

fn backend_nodes(cluster: &Cluster, port: &ServicePort) -> Vec<String> {
    let node = |e: &crate::model::Endpoint| cluster.nodes[cluster.pods[e.pod].node].name.clone();
    port.endpoints.iter().map(node).collect()
}
