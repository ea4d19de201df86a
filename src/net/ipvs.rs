//! The kernel's IP Virtual Server table: virtual services (protocol, address, port) with a
//! scheduler and their real servers, as `ipvsadm -Ln` lists them. Only the NAT forwarding
//! method ("Masq") is modelled, the one kube-proxy uses.

use std::fmt::Write;
use std::net::{Ipv4Addr, SocketAddrV4};

use serde::Serialize;

use super::Protocol;

/// The device kube-proxy adds to hold every Service address as a local address, so that
/// routing hands packets for them to INPUT, where IPVS takes them.
pub const DUMMY_DEVICE: &str = "kube-ipvs0";

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ipvs {
    pub services: Vec<VirtualServer>,
}

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
        let mut line = format!(
            "{}  {} {}",
            self.protocol.lower().to_ascii_uppercase(),
            self.addr,
            self.scheduler
        );
        if let Some(t) = self.persistent {
            let _ = write!(line, " persistent {t}");
        }
        line
    }
}

impl Ipvs {
    pub fn lookup(&self, protocol: Protocol, dst: SocketAddrV4) -> Option<&VirtualServer> {
        self.services.iter().find(|v| v.protocol == protocol && v.addr == dst)
    }

    /// Whether `ip` is the address of some virtual service.
    pub fn holds(&self, ip: Ipv4Addr) -> bool {
        self.services.iter().any(|v| v.addr.ip() == &ip)
    }

    /// The table as `ipvsadm -Ln` prints it.
    pub fn list(&self) -> String {
        let mut out = String::from(
            "IP Virtual Server version 1.2.1 (size=4096)\n\
             Prot LocalAddress:Port Scheduler Flags\n\
             \x20 -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        );
        for v in &self.services {
            let _ = writeln!(out, "{}", v.head_line());
            for r in &v.real_servers {
                let _ = writeln!(out, "{}", r.line());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_as_ipvsadm_does_and_finds_by_protocol_and_address() {
        let vs = VirtualServer {
            protocol: Protocol::Tcp,
            addr: "10.96.0.10:80".parse().unwrap(),
            scheduler: "rr".into(),
            persistent: Some(10800),
            real_servers: vec![
                RealServer {
                    addr: "10.0.1.2:8080".parse().unwrap(),
                    weight: 1,
                },
                RealServer {
                    addr: "10.0.2.2:8080".parse().unwrap(),
                    weight: 1,
                },
            ],
            origin: String::new(),
        };
        let table = Ipvs { services: vec![vs] };
        let text = table.list();
        assert!(text.contains("TCP  10.96.0.10:80 rr persistent 10800\n"));
        assert!(text.contains("  -> 10.0.2.2:8080                Masq    1      0          0\n"));
        assert!(table.lookup(Protocol::Tcp, "10.96.0.10:80".parse().unwrap()).is_some());
        assert!(table.lookup(Protocol::Udp, "10.96.0.10:80".parse().unwrap()).is_none());
        assert_eq!(table.services[0].shares(), vec![0.5, 0.5]);
    }
}
