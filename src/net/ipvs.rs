//! The kernel's IP Virtual Server table: virtual services (protocol, address, port) with a
//! scheduler and their real servers, as `ipvsadm -Ln` lists them. Only the NAT forwarding
//! method ("Masq") is modelled, the one kube-proxy uses.

use std::collections::HashMap;
use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;

use serde::Serialize;

use super::Protocol;

/// The device kube-proxy adds to hold every Service address as a local address, so that
/// routing hands packets for them to INPUT, where IPVS takes them.
pub const DUMMY_DEVICE: &str = "kube-ipvs0";

/// One node's IPVS table. kube-proxy writes nearly the same virtual servers on every node, so
/// the table is held once for the cluster ([`Shared`]) and each node adds only what is its own:
/// the address its NodePorts listen on, and the real servers of the virtual servers whose
/// traffic policy is `Local` (its own endpoints). It reads as one table.
#[derive(Clone)]
pub struct Ipvs {
    shared: Arc<Shared>,
    node_addr: Ipv4Addr,
    /// The real servers of each `Local` virtual server that has some on this node, by position
    /// in the shared list, in order; a `Local` virtual server missing here has none.
    local: Vec<(usize, Vec<RealServer>)>,
}

/// The virtual servers every node holds, in the order `ipvsadm -Ln` lists them, with an index
/// by address so that a lookup does not walk 10,000 Services.
#[derive(Debug, Default)]
pub struct Shared {
    servers: Vec<Template>,
    fixed: HashMap<(Protocol, SocketAddrV4), usize>,
    node_ports: HashMap<(Protocol, u16), usize>,
}

/// Where a virtual server listens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// A Service address (ClusterIP, load-balancer IP): the same on every node.
    Service(SocketAddrV4),
    /// A NodePort: the port on the node's own address.
    NodePort(u16),
}

/// A virtual server as every node holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    pub protocol: Protocol,
    pub addr: Address,
    pub scheduler: String,
    pub persistent: Option<u32>,
    /// The real servers, the same on every node; `None` for a `Local` traffic policy, whose
    /// real servers are each node's own endpoints.
    pub real_servers: Option<Vec<RealServer>>,
    pub origin: String,
}

/// A virtual server of one node, as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VirtualServer {
    pub protocol: Protocol,
    pub addr: SocketAddrV4,
    pub scheduler: String,
    /// `persistent TIMEOUT`: a client keeps its real server for that many seconds.
    pub persistent: Option<u32>,
    pub real_servers: Vec<RealServer>,
    /// The Service port it stands for (`namespace/name:port`), for explanations.
    #[serde(skip)]
    pub origin: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RealServer {
    pub addr: SocketAddrV4,
    pub weight: u32,
}

impl Shared {
    pub fn new(servers: Vec<Template>) -> Shared {
        let mut shared = Shared {
            servers,
            ..Shared::default()
        };
        // The kernel holds one virtual server per address: the first one written is the one
        // found.
        for (i, t) in shared.servers.iter().enumerate() {
            match t.addr {
                Address::Service(addr) => {
                    shared.fixed.entry((t.protocol, addr)).or_insert(i);
                }
                Address::NodePort(port) => {
                    shared.node_ports.entry((t.protocol, port)).or_insert(i);
                }
            }
        }
        shared
    }

    pub fn templates(&self) -> &[Template] {
        &self.servers
    }
}

impl RealServer {
    /// The line `ipvsadm -Ln` prints for it, without the spaces it pads the last column with.
    pub fn line(&self) -> String {
        let line = format!(
            "  -> {:<28} {:<7} {:<6} {:<10} {:<10}",
            self.addr.to_string(),
            "Masq",
            self.weight,
            0,
            0
        );
        line.trim_end().to_owned()
    }
}

impl VirtualServer {
    /// Each real server's share of new connections under `rr` (weights are all 1 as kube-proxy
    /// writes them, but a weight is honoured as `wrr` would).
    pub fn shares(&self) -> Vec<f64> {
        let total: u32 = self.real_servers.iter().map(|r| r.weight).sum();
        self.real_servers
            .iter()
            .map(|r| {
                if total == 0 {
                    0.0
                } else {
                    f64::from(r.weight) / f64::from(total)
                }
            })
            .collect()
    }

    /// The head line `ipvsadm -Ln` prints for the service.
    pub fn head_line(&self) -> String {
        head_line(self.protocol, self.addr, &self.scheduler, self.persistent)
    }
}

fn head_line(protocol: Protocol, addr: SocketAddrV4, scheduler: &str, persistent: Option<u32>) -> String {
    let mut line = format!("{}  {addr} {scheduler}", protocol.lower().to_ascii_uppercase());
    if let Some(t) = persistent {
        let _ = write!(line, " persistent {t}");
    }
    line
}

impl Ipvs {
    /// `local` holds, by position in `shared`, the node's real servers of each `Local` virtual
    /// server that has some.
    pub fn new(shared: Arc<Shared>, node_addr: Ipv4Addr, mut local: Vec<(usize, Vec<RealServer>)>) -> Ipvs {
        local.sort_by_key(|(i, _)| *i);
        Ipvs {
            shared,
            node_addr,
            local,
        }
    }

    pub fn shared(&self) -> &Shared {
        &self.shared
    }

    pub fn len(&self) -> usize {
        self.shared.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shared.servers.is_empty()
    }

    fn addr_of(&self, t: &Template) -> SocketAddrV4 {
        match t.addr {
            Address::Service(addr) => addr,
            Address::NodePort(port) => SocketAddrV4::new(self.node_addr, port),
        }
    }

    fn real_servers_of(&self, i: usize) -> &[RealServer] {
        match &self.shared.servers[i].real_servers {
            Some(all) => all,
            None => match self.local.binary_search_by_key(&i, |(k, _)| *k) {
                Ok(k) => &self.local[k].1,
                Err(_) => &[],
            },
        }
    }

    /// The virtual server at position `i` of the listing, as this node holds it.
    pub fn server(&self, i: usize) -> VirtualServer {
        let t = &self.shared.servers[i];
        VirtualServer {
            protocol: t.protocol,
            addr: self.addr_of(t),
            scheduler: t.scheduler.clone(),
            persistent: t.persistent,
            real_servers: self.real_servers_of(i).to_vec(),
            origin: t.origin.clone(),
        }
    }

    /// Every virtual server, in the order `ipvsadm -Ln` lists them.
    pub fn services(&self) -> impl Iterator<Item = VirtualServer> + '_ {
        (0..self.len()).map(|i| self.server(i))
    }

    pub fn lookup(&self, protocol: Protocol, dst: SocketAddrV4) -> Option<VirtualServer> {
        let service = self.shared.fixed.get(&(protocol, dst)).copied();
        let node_port = (*dst.ip() == self.node_addr)
            .then(|| self.shared.node_ports.get(&(protocol, dst.port())).copied())
            .flatten();
        let first = match (service, node_port) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b)?,
        };
        Some(self.server(first))
    }

    /// The lines `ipvsadm -Ln` prints for the virtual server at position `i`, its real servers
    /// under it.
    pub fn write_server(&self, out: &mut String, i: usize) {
        let t = &self.shared.servers[i];
        let _ = writeln!(
            out,
            "{}",
            head_line(t.protocol, self.addr_of(t), &t.scheduler, t.persistent)
        );
        for r in self.real_servers_of(i) {
            let _ = writeln!(out, "{}", r.line());
        }
    }

    /// The table as `ipvsadm -Ln` prints it.
    pub fn list(&self) -> String {
        let mut out = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
        for i in 0..self.len() {
            self.write_server(&mut out, i);
        }
        out
    }
}

impl PartialEq for Ipvs {
    fn eq(&self, other: &Ipvs) -> bool {
        self.services().eq(other.services())
    }
}

impl std::fmt::Debug for Ipvs {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.debug_struct("Ipvs")
            .field("services", &self.services().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for Ipvs {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut t = s.serialize_struct("Ipvs", 1)?;
        t.serialize_field("services", &self.services().collect::<Vec<_>>())?;
        t.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rs(addr: &str) -> RealServer {
        RealServer {
            addr: addr.parse().unwrap(),
            weight: 1,
        }
    }

    fn template(addr: Address, real_servers: Option<Vec<RealServer>>) -> Template {
        Template {
            protocol: Protocol::Tcp,
            addr,
            scheduler: "rr".into(),
            persistent: None,
            real_servers,
            origin: String::new(),
        }
    }

    #[test]
    fn lists_as_ipvsadm_does_and_finds_by_protocol_and_address() {
        let mut sticky = template(
            Address::Service("10.96.0.10:80".parse().unwrap()),
            Some(vec![rs("10.0.1.2:8080"), rs("10.0.2.2:8080")]),
        );
        sticky.persistent = Some(10800);
        let table = Ipvs::new(
            Arc::new(Shared::new(vec![sticky])),
            "10.100.0.2".parse().unwrap(),
            Vec::new(),
        );
        let text = table.list();
        assert!(text.contains("TCP  10.96.0.10:80 rr persistent 10800\n"));
        assert!(text.contains("  -> 10.0.2.2:8080                Masq    1      0          0\n"));
        assert!(table.lookup(Protocol::Tcp, "10.96.0.10:80".parse().unwrap()).is_some());
        assert!(table.lookup(Protocol::Udp, "10.96.0.10:80".parse().unwrap()).is_none());
        assert_eq!(table.server(0).shares(), vec![0.5, 0.5]);
    }

    /// Two nodes over one shared list: each finds its NodePort on its own address only, and a
    /// `Local` virtual server holds the node's own real servers (none where it has none).
    #[test]
    fn nodes_sharing_a_table_differ_by_address_and_local_real_servers() {
        let shared = Arc::new(Shared::new(vec![
            template(
                Address::Service("10.96.0.10:80".parse().unwrap()),
                Some(vec![rs("10.0.1.2:8080")]),
            ),
            template(Address::NodePort(30080), None),
        ]));
        let one = Ipvs::new(
            Arc::clone(&shared),
            "10.100.0.2".parse().unwrap(),
            vec![(1, vec![rs("10.0.1.2:8080")])],
        );
        let two = Ipvs::new(shared, "10.100.0.3".parse().unwrap(), Vec::new());
        let np = one.lookup(Protocol::Tcp, "10.100.0.2:30080".parse().unwrap()).unwrap();
        assert_eq!(np.real_servers, vec![rs("10.0.1.2:8080")]);
        assert!(one.lookup(Protocol::Tcp, "10.100.0.3:30080".parse().unwrap()).is_none());
        let theirs = two.lookup(Protocol::Tcp, "10.100.0.3:30080".parse().unwrap()).unwrap();
        assert!(theirs.real_servers.is_empty());
        assert!(two.list().contains("TCP  10.100.0.3:30080 rr\n"));
        assert_ne!(one, two);
    }
}
