//! Service translation done by eBPF programs instead of netfilter rules (Cilium's kube-proxy
//! replacement), held as the maps those programs read: each frontend (a ClusterIP and port, or
//! a NodePort) with its backends. The simulator applies them where the programs run — at the
//! socket for connections a host opens, at the node's network device for NodePorts — and shows
//! their effect, not their instructions.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use super::Protocol;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceLb {
    /// ClusterIP, port and protocol to the Service port behind them.
    pub frontends: HashMap<(Ipv4Addr, u16, Protocol), Frontend>,
    /// NodePort and protocol, on any of the node's addresses.
    pub node_ports: HashMap<(u16, Protocol), Frontend>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Frontend {
    /// The Service port, as `namespace/name:port/PROTOCOL`.
    pub name: String,
    pub backends: Vec<SocketAddrV4>,
    /// Under a Local traffic policy the agent on each node lists only the backends on that
    /// node: here the node of each backend, in the order of `backends`. `None`: every node
    /// lists every backend.
    pub local_to: Option<Local>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Local {
    /// `internalTrafficPolicy` or `externalTrafficPolicy`, for explanations.
    pub policy: &'static str,
    pub nodes: Vec<String>,
}

impl Frontend {
    /// The frontend as the maps on `node` hold it.
    pub fn on_node(&self, node: Option<&str>) -> Cow<'_, Frontend> {
        let Some(local) = &self.local_to else {
            return Cow::Borrowed(self);
        };
        let backends = self
            .backends
            .iter()
            .zip(&local.nodes)
            .filter(|(_, n)| Some(n.as_str()) == node)
            .map(|(b, _)| *b)
            .collect();
        Cow::Owned(Frontend {
            name: self.name.clone(),
            backends,
            local_to: None,
        })
    }
}

impl ServiceLb {
    pub fn frontend(&self, dst: SocketAddrV4, protocol: Protocol) -> Option<&Frontend> {
        self.frontends.get(&(*dst.ip(), dst.port(), protocol))
    }

    pub fn node_port(&self, port: u16, protocol: Protocol) -> Option<&Frontend> {
        self.node_ports.get(&(port, protocol))
    }
}
