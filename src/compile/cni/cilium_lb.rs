//! Cilium's kube-proxy replacement (`kubeProxyReplacement: true`, with `kubeProxy: none`): the
//! Service maps its eBPF programs read (`cilium_lb4_services_v2`, `cilium_lb4_backends_v3`),
//! one set for the whole cluster. Every ClusterIP port is a frontend for the socket programs
//! (`bpf_sock`, on connect), every NodePort one for the program on the node's device
//! (`bpf_host`). Traffic policies are not modelled here: every endpoint backs every frontend.

use std::net::SocketAddrV4;
use std::sync::Arc;

use crate::model::Cluster;
use crate::net::service_lb::{Frontend, ServiceLb};

pub(super) fn maps(cluster: &Cluster) -> Arc<ServiceLb> {
    let mut lb = ServiceLb::default();
    for s in &cluster.services {
        for p in &s.ports {
            let name = match &p.name {
                Some(n) => format!("{}/{}:{n}/{}", s.namespace, s.name, p.protocol),
                None => format!("{}/{}:{}/{}", s.namespace, s.name, p.port, p.protocol),
            };
            let frontend = Frontend {
                name,
                backends: p.endpoints.iter().map(|e| SocketAddrV4::new(e.ip, e.port)).collect(),
            };
            if let Some(ip) = s.cluster_ip {
                lb.frontends.insert((ip, p.port, p.protocol), frontend.clone());
            }
            if let Some(np) = p.node_port {
                lb.node_ports.insert((np, p.protocol), frontend);
            }
        }
    }
    Arc::new(lb)
}
