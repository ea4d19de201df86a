//! Pods with the host's network share the node's ports: each of their container ports is a host
//! port, and the scheduler places no two pods that ask for the same host port and protocol on
//! one node.

use std::collections::HashMap;

use super::Validator;
use crate::diagnostic::Span;
use crate::model::{Pod, Protocol};

impl Validator {
    pub(super) fn host_ports(&mut self, pods: &[(Pod, Span)]) {
        let mut taken: HashMap<(usize, u16, Protocol), usize> = HashMap::new();
        for (i, (pod, _)) in pods.iter().enumerate().filter(|(_, (p, _))| p.host_network) {
            for (_, port) in pod.listeners() {
                let Some(&first) = taken.get(&(pod.node, port.port, port.protocol)) else {
                    taken.insert((pod.node, port.port, port.protocol), i);
                    continue;
                };
                if first == i {
                    continue; // One pod listing a port twice is reported on its own.
                }
                // The pods k8snet adds itself (the API server's) have no place in the file:
                // point at the one that has.
                let (other, at) = if pods[i].1 == Span::default() {
                    (i, first)
                } else {
                    (first, i)
                };
                self.error(
                    pods[at].1,
                    format!(
                        "port {}/{} is taken on the node by hostNetwork pod {}",
                        port.port,
                        port.protocol,
                        pods[other].0.qualified_name()
                    ),
                    "pods with the host's network share the node's ports, so the scheduler never puts two that ask for the same port on one node; move one to another node or change its port (the API server's pod listens on cluster.apiServer's port)",
                );
            }
        }
    }
}
