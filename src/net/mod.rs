//! A cluster's network as Linux holds it: network namespaces with their interfaces, routing
//! tables, sysctls, netfilter tables and listening sockets.
//!
//! Nothing here knows what a Pod or a Service is. The compiler produces a [`NetState`]; the
//! simulator walks packets through it; a script writer could build it for real.

pub mod hosts;
pub mod ipset;
pub mod iptables;
pub mod ipvs;
pub mod nftables;
pub mod route;
pub mod rule_index;
pub mod service_lb;
pub mod vxlan;

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::OnceLock;

use ipnet::Ipv4Net;
use serde::Serialize;

use crate::key_index::KeyIndex;
pub use hosts::Hosts;
use iptables::Table;
use route::RouteTable;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
    /// ICMP echo (`ping`). Never a Service or container port's protocol: Kubernetes has none,
    /// so [`Protocol::from_word`] does not accept it.
    Icmp,
    /// IP-in-IP (IP protocol 4): only ever an outer packet between two tunnel ends.
    Ipip,
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

    /// A protocol a traced packet may use: a port's, or ICMP.
    pub fn of_packet(word: &str) -> Option<Protocol> {
        match word.to_ascii_lowercase().as_str() {
            "icmp" => Some(Protocol::Icmp),
            _ => Protocol::from_word(word),
        }
    }

    /// The spelling iptables and kube-proxy's chain hashing use.
    pub fn lower(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
            Protocol::Ipip => "ipip",
        }
    }

    /// Whether packets of this protocol carry ports. ICMP echo carries an identifier instead,
    /// which conntrack keys the flow on as it would a port: a packet's tuple holds it in both
    /// port positions.
    pub fn has_ports(self) -> bool {
        !matches!(self, Protocol::Icmp | Protocol::Ipip)
    }
}

impl fmt::Display for Protocol {
    /// Kubernetes' spelling.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
            Protocol::Icmp => "ICMP",
            Protocol::Ipip => "IPIP",
        })
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetState {
    pub hosts: Hosts,
    /// Made on first use, once the hosts are complete; a state whose host count changed since
    /// is searched instead.
    #[serde(skip)]
    index: OnceLock<HostIndex>,
}

/// Hosts by name, and the interfaces on each shared segment by address, so that finding a host
/// or answering ARP does not walk every namespace of a large cluster.
#[derive(Debug, Clone, Default)]
struct HostIndex {
    hosts: usize,
    by_name: KeyIndex,
    /// (segment, address) to every (host, interface) holding it, in host order, first
    /// interface of each host.
    on_segment: HashMap<(String, Ipv4Addr), Vec<(usize, String)>>,
}

impl HostIndex {
    fn of(hosts: &Hosts) -> HostIndex {
        let mut index = HostIndex {
            hosts: hosts.len(),
            by_name: KeyIndex::of(hosts.len(), |i| hosts.name(i)),
            ..HostIndex::default()
        };
        // A host not yet made is on no shared segment (`Hosts::push_deferred`).
        for (i, h) in hosts.made() {
            for iface in &h.interfaces {
                let Link::Segment { segment } = &iface.link else {
                    continue;
                };
                for a in &iface.addrs {
                    let holders = index.on_segment.entry((segment.clone(), a.addr())).or_default();
                    if holders.last().is_none_or(|(last, _)| *last != i) {
                        holders.push((i, iface.name.clone()));
                    }
                }
            }
        }
        index
    }
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
    /// `net.ipv4.conf.all.route_localnet`: packets from or to 127/8 may be routed off the host,
    /// which kube-proxy turns on so that NodePorts answer on 127.0.0.1.
    pub route_localnet: bool,
    pub nat: Table,
    pub filter: Table,
    /// kube-proxy's `ip kube-proxy` table, on a node whose kube-proxy runs in nftables mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nftables: Option<nftables::Table>,
    /// The IPVS table, on a node whose kube-proxy runs in IPVS mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipvs: Option<ipvs::Ipvs>,
    /// The IP sets rules match with `-m set`; shared by every node that holds the same ones.
    #[serde(skip)]
    pub ipsets: std::sync::Arc<ipset::IpSets>,
    pub listeners: Vec<Listener>,
    /// Service translation by eBPF programs (Cilium's kube-proxy replacement), shared by the
    /// hosts whose sockets and devices it applies to.
    #[serde(skip)]
    pub service_lb: Option<std::sync::Arc<service_lb::ServiceLb>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Link {
    Loopback,
    /// A dummy device: it holds addresses and sends nothing (kube-proxy's `kube-ipvs0`).
    Dummy,
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
    /// A VXLAN tunnel device: what is routed into it is wrapped in UDP and sent to the remote
    /// endpoint its neighbour and FDB entries name.
    Vxlan(vxlan::Vxlan),
    /// An IP-in-IP tunnel device (`tunl0`): what is routed into it is wrapped in an outer IPv4
    /// packet (protocol 4) to the route's gateway.
    Ipip {
        local: Ipv4Addr,
        underlay: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Interface {
    pub name: String,
    pub link: Link,
    pub addrs: Addresses,
    /// The bridge this interface is a port of.
    pub master: Option<String>,
    /// A bridge port in hairpin mode sends frames back out the port they came in on.
    pub hairpin: bool,
    /// A bridge in promiscuous mode (kubelet's `promiscuous-bridge` hairpin mode). It receives
    /// every frame itself, but sends none back out of the port it came in on: only a port's
    /// hairpin flag does that.
    pub promiscuous: bool,
    /// `net.ipv4.conf.<dev>.proxy_arp`: the interface answers ARP for addresses its host
    /// routes elsewhere (Calico's and Cilium's pod gateway, which no interface holds).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub proxy_arp: bool,
}

impl Interface {
    pub fn new(name: &str, link: Link, addrs: Vec<Ipv4Net>) -> Interface {
        Interface {
            name: name.to_owned(),
            link,
            addrs: Addresses::from(addrs),
            master: None,
            hairpin: false,
            promiscuous: false,
            proxy_arp: false,
        }
    }

    pub fn owns(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|a| a.addr() == ip)
    }
}

/// An interface's addresses, held once for every host whose interface holds the same ones
/// (`kube-ipvs0` holds every Service address, on every node): a clone shares the list, and the
/// first change a host makes gives it a copy of its own.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Addresses(std::sync::Arc<Vec<Ipv4Net>>);

impl Serialize for Addresses {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'a> IntoIterator for &'a Addresses {
    type Item = &'a Ipv4Net;
    type IntoIter = std::slice::Iter<'a, Ipv4Net>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl From<Vec<Ipv4Net>> for Addresses {
    fn from(addrs: Vec<Ipv4Net>) -> Addresses {
        Addresses(std::sync::Arc::new(addrs))
    }
}

impl std::ops::Deref for Addresses {
    type Target = Vec<Ipv4Net>;
    fn deref(&self) -> &Vec<Ipv4Net> {
        &self.0
    }
}

impl std::ops::DerefMut for Addresses {
    fn deref_mut(&mut self) -> &mut Vec<Ipv4Net> {
        std::sync::Arc::make_mut(&mut self.0)
    }
}

impl fmt::Debug for Addresses {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt(f)
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
    pub fn new(hosts: Vec<Host>) -> NetState {
        NetState {
            hosts: hosts.into(),
            index: OnceLock::new(),
        }
    }

    fn index(&self) -> Option<&HostIndex> {
        let index = self.index.get_or_init(|| HostIndex::of(&self.hosts));
        (index.hosts == self.hosts.len()).then_some(index)
    }

    pub fn host_named(&self, name: &str) -> Option<usize> {
        match self.index() {
            Some(index) => index.by_name.get(&name, |i| self.hosts.name(i)),
            None => (0..self.hosts.len()).find(|&i| self.hosts.name(i) == name),
        }
    }

    /// The host, other than `sender`, that answers ARP for `ip` on `segment`, with the
    /// interface that holds the address: the first such host in host order.
    pub fn neighbor_on_segment(&self, segment: &str, ip: Ipv4Addr, sender: usize) -> Option<(usize, String)> {
        if let Some(index) = self.index() {
            return index
                .on_segment
                .get(&(segment.to_owned(), ip))?
                .iter()
                .find(|(h, _)| *h != sender)
                .cloned();
        }
        self.hosts
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != sender)
            .find_map(|(i, other)| {
                other
                    .interfaces
                    .iter()
                    .find(|o| matches!(&o.link, Link::Segment { segment: s } if s == segment) && o.owns(ip))
                    .map(|o| (i, o.name.clone()))
            })
    }
}
