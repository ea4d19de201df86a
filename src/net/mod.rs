//! A cluster's network as Linux holds it: network namespaces with their interfaces, routing
//! tables, sysctls, netfilter tables and listening sockets.
//!
//! Nothing here knows what a Pod or a Service is. The compiler produces a [`NetState`]; the
//! simulator walks packets through it; a script writer could build it for real.

pub mod iptables;
pub mod route;

use std::fmt;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

use iptables::Table;
use route::RouteTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn from_word(word: &str) -> Option<Protocol> {
        match word.to_ascii_lowercase().as_str() {
            "tcp" => Some(Protocol::Tcp),
            "udp" => Some(Protocol::Udp),
            "sctp" => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// The spelling iptables and kube-proxy's chain hashing use.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    /// Kubernetes' spelling.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetState {
    pub hosts: Vec<Host>,
}

/// What a network namespace stands for, carried only so explanations can name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    Pod {
        namespace: String,
        name: String,
        node: String,
    },
    Node {
        name: String,
    },
    Router,
    LoadBalancer,
    Internet,
}

impl Role {
    pub fn kind(&self) -> &'static str {
        match self {
            Role::Pod { .. } => "pod",
            Role::Node { .. } => "node",
            Role::Router => "router",
            Role::LoadBalancer => "load_balancer",
            Role::Internet => "internet",
        }
    }

    pub fn node(&self) -> Option<&str> {
        match self {
            Role::Pod { node, .. } => Some(node),
            Role::Node { name } => Some(name),
            _ => None,
        }
    }
}

/// One network namespace.
#[derive(Debug, Clone, Serialize)]
pub struct Host {
    /// A short unique name, also used as the namespace's name when the state is built for real.
    pub name: String,
    pub role: Role,
    pub interfaces: Vec<Interface>,
    /// In lookup order: `local`, then `main`.
    pub tables: Vec<RouteTable>,
    pub ip_forward: bool,
    /// `net.bridge.bridge-nf-call-iptables`: bridged IPv4 frames meet iptables.
    pub bridge_nf_call_iptables: bool,
    pub nat: Table,
    pub filter: Table,
    pub listeners: Vec<Listener>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Link {
    Loopback,
    /// One end of a veth pair; the other end is `peer_if` in host `peer_host`.
    Veth {
        peer_host: usize,
        peer_if: String,
    },
    Bridge,
    /// An interface on a shared layer-2 network (the nodes' subnet), reaching every other
    /// interface on the same segment.
    Segment {
        segment: String,
    },
    /// Leaves the modelled world: what is sent here has left the cluster.
    Uplink,
}

#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    pub link: Link,
    pub addrs: Vec<Ipv4Net>,
    /// The bridge this interface is a port of.
    pub master: Option<String>,
    /// A bridge port in hairpin mode sends frames back out the port they came in on.
    pub hairpin: bool,
    /// A bridge in promiscuous mode (kubelet's `promiscuous-bridge` hairpin mode). It receives
    /// every frame itself, but sends none back out of the port it came in on: only a port's
    /// hairpin flag does that.
    pub promiscuous: bool,
}

impl Interface {
    pub fn new(name: &str, link: Link, addrs: Vec<Ipv4Net>) -> Interface {
        Interface {
            name: name.to_owned(),
            link,
            addrs,
            master: None,
            hairpin: false,
            promiscuous: false,
        }
    }

    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|a| a.addr() == ip)
    }
}

/// A socket waiting for connections, with the names of who opened it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Listener {
    pub port: u16,
    pub protocol: Protocol,
    /// The process's owner, for explanations ("container server of default/web-1").
    pub owner: String,
}

impl Host {
    pub fn interface(&self, name: &str) -> Option<&Interface> {
        self.interfaces.iter().find(|i| i.name == name)
    }

    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.interfaces.iter().any(|i| i.owns(ip))
    }

    /// The address the kernel picks as source for packets sent out of `dev`: its first address.
    pub fn primary_addr(&self, dev: &str) -> Option<Ipv4Addr> {
        self.interface(dev).and_then(|i| i.addrs.first()).map(|a| a.addr())
    }
}

impl NetState {
    pub fn host_named(&self, name: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.name == name)
    }
}
