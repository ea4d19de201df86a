//! VXLAN devices as Linux holds them: the device (VNI, UDP port, local address, the underlay
//! device), and the neighbour and forwarding-database entries that tell it where each remote
//! tunnel endpoint is. No learning: every entry is permanent, written by the CNI's agent.

use std::fmt;
use std::net::Ipv4Addr;
use std::sync::Arc;

use serde::Serialize;

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// A locally administered address made from an IPv4 address, so a VTEP's address is the
    /// same from run to run (the kernel would pick a random one).
    pub fn local_from(prefix: u8, ip: Ipv4Addr) -> Mac {
        let [a, b, c, d] = ip.octets();
        Mac([prefix & 0xfe | 0x02, 0x00, a, b, c, d])
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// One remote tunnel endpoint: a permanent neighbour entry (`addr` is at `mac`) and a
/// permanent FDB entry (`mac` is behind the underlay address `remote`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VtepPeer {
    pub addr: Ipv4Addr,
    pub mac: Mac,
    pub remote: Ipv4Addr,
    /// Whose endpoint it is, for explanations ("node-2").
    pub owner: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Vxlan {
    pub vni: u32,
    /// The UDP destination port of the outer packet.
    pub port: u16,
    /// The outer source address, and where the device listens.
    pub local: Ipv4Addr,
    /// The device the outer packets leave by.
    pub underlay: String,
    pub mac: Mac,
    pub mtu: u32,
    /// The same list on every node of a cluster, shared.
    #[serde(skip)]
    pub peers: Arc<Vec<VtepPeer>>,
    /// The position in `peers` of this device's own endpoint, which it does not hold.
    #[serde(skip)]
    pub own: Option<usize>,
}

impl Vxlan {
    /// The entries this device holds, in order.
    pub fn entries(&self) -> impl Iterator<Item = &VtepPeer> {
        self.peers
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != self.own)
            .map(|(_, p)| p)
    }

    /// The neighbour entry for `addr`: the MAC address a frame for it is sent to.
    pub fn neighbor(&self, addr: Ipv4Addr) -> Option<&VtepPeer> {
        self.entries().find(|p| p.addr == addr)
    }

    /// The FDB entry for `mac`: the underlay address its frames are tunnelled to.
    pub fn fdb(&self, mac: Mac) -> Option<&VtepPeer> {
        self.entries().find(|p| p.mac == mac)
    }

    /// The overhead the encapsulation adds: outer IPv4 (20), UDP (8), VXLAN (8) and the inner
    /// Ethernet header (14).
    pub const OVERHEAD: u32 = 50;
}
