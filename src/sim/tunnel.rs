//! Tunnels: a packet routed into a VXLAN device is wrapped in UDP to the remote endpoint its
//! neighbour and FDB entries name, and the outer packet is sent by the node like any other (so
//! it meets OUTPUT, POSTROUTING and the outer route lookup). Where the outer packet reaches the
//! address and port a tunnel device listens on, the inner packet is unwrapped and received on
//! that device.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{End, Next, Simulator};
use crate::net::vxlan::Vxlan;
use crate::net::{Link, Protocol};
use crate::trace::{Step, Tuple};

/// A packet inside a tunnel: the outer packet that carries it, and the device that wrapped it.
#[derive(Debug, Clone)]
pub(super) struct Tunnelled {
    pub outer: Tuple,
    pub inner: Tuple,
    pub vni: u32,
}

/// The outer UDP source port: the kernel derives it from a hash of the inner flow (so one
/// flow keeps one port and flows spread over the underlay's paths), within the ephemeral range.
/// (FNV-1a here, where the kernel uses its flow hash: the port differs, the property holds.)
fn source_port(inner: &Tuple) -> u16 {
    let mut bytes = Vec::with_capacity(13);
    bytes.extend(inner.src.ip().octets());
    bytes.extend(inner.dst.ip().octets());
    bytes.extend(inner.src.port().to_be_bytes());
    bytes.extend(inner.dst.port().to_be_bytes());
    bytes.push(inner.protocol as u8);
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    });
    32768 + (hash % (61000 - 32768)) as u16
}

impl<'a> Simulator<'a> {
    /// Wraps `inner`, routed into the VXLAN device `dev` towards `next_hop`, and sends the outer
    /// packet from `host`.
    pub(super) fn vxlan_encapsulate(
        &mut self,
        host: usize,
        dev: &str,
        v: &'a Vxlan,
        next_hop: Ipv4Addr,
        inner: Tuple,
    ) -> Next {
        let Some(neighbor) = v.neighbor(next_hop) else {
            self.step(Step::Note {
                text: format!("{dev} has no neighbour entry for {next_hop}, and learns none (nolearning)"),
            });
            return Next::End(End::NoNeighbor { host, next_hop });
        };
        let Some(fdb) = v.fdb(neighbor.mac) else {
            self.step(Step::Note {
                text: format!("{dev} has no FDB entry for {}, so no endpoint to send to", neighbor.mac),
            });
            return Next::End(End::NoNeighbor { host, next_hop });
        };
        let outer = Tuple {
            protocol: Protocol::Udp,
            src: SocketAddrV4::new(v.local, source_port(&inner)),
            dst: SocketAddrV4::new(fdb.remote, v.port),
        };
        self.step(Step::Tunnel {
            action: "encapsulate".into(),
            encapsulation: "vxlan".into(),
            device: dev.to_owned(),
            vni: Some(v.vni),
            inner,
            outer_src: v.local,
            outer_dst: fdb.remote,
            outer_port: Some(v.port),
            detail: format!(
                "neighbour {next_hop} lladdr {} and FDB {} dst {} (both permanent): the VTEP of {}; outer source port from a hash of the inner flow, {} bytes of headers (MTU {})",
                neighbor.mac,
                fdb.mac,
                fdb.remote,
                fdb.owner,
                Vxlan::OVERHEAD,
                v.mtu
            ),
        });
        self.tunnel = Some(Tunnelled {
            outer,
            inner,
            vni: v.vni,
        });
        self.send(host, outer)
    }

    /// Wraps `inner`, routed into the IP-in-IP device `dev` towards the gateway `next_hop` (the
    /// other node), in an outer IPv4 packet from `local`, and sends that from `host`.
    pub(super) fn ipip_encapsulate(
        &mut self,
        host: usize,
        dev: &str,
        local: Ipv4Addr,
        next_hop: Ipv4Addr,
        inner: Tuple,
    ) -> Next {
        let outer = Tuple {
            protocol: Protocol::Ipip,
            src: SocketAddrV4::new(local, 0),
            dst: SocketAddrV4::new(next_hop, 0),
        };
        self.step(Step::Tunnel {
            action: "encapsulate".into(),
            encapsulation: "ipip".into(),
            device: dev.to_owned(),
            vni: None,
            inner,
            outer_src: local,
            outer_dst: next_hop,
            outer_port: None,
            detail: format!(
                "the route's gateway {next_hop} is the outer destination; 20 bytes of outer IPv4 header, protocol 4 (MTU 1480)"
            ),
        });
        self.tunnel = Some(Tunnelled { outer, inner, vni: 0 });
        self.send(host, outer)
    }

    /// The tunnel device of `host` that takes `outer` in, and the packet it carries: a VXLAN
    /// device listening on the outer destination's port, with the VNI the packet was sent with.
    pub(super) fn decapsulate(&mut self, host: usize, outer: Tuple) -> Option<Next> {
        let carried = self.tunnel.as_ref().filter(|t| t.outer == outer)?.clone();
        let h = self.host(host);
        if outer.protocol == Protocol::Ipip {
            let dev = h.interfaces.iter().find(|i| matches!(i.link, Link::Ipip { .. }))?;
            self.tunnel = None;
            self.step(Step::Tunnel {
                action: "decapsulate".into(),
                encapsulation: "ipip".into(),
                device: dev.name.clone(),
                vni: None,
                inner: carried.inner,
                outer_src: *outer.src.ip(),
                outer_dst: *outer.dst.ip(),
                outer_port: None,
                detail: format!(
                    "IP protocol 4 to a local address: {} unwraps it, and the inner packet is received on {}",
                    dev.name, dev.name
                ),
            });
            return Some(Next::Receive {
                host,
                iif: dev.name.clone(),
                next_hop: *carried.inner.dst.ip(),
                tuple: carried.inner,
            });
        }
        if outer.protocol != Protocol::Udp {
            return None;
        }
        let dev = h.interfaces.iter().find(|i| {
            matches!(&i.link, Link::Vxlan(v) if v.port == outer.dst.port() && v.vni == carried.vni
                && (v.local == *outer.dst.ip() || h.owns(*outer.dst.ip())))
        })?;
        self.tunnel = None;
        self.step(Step::Tunnel {
            action: "decapsulate".into(),
            encapsulation: "vxlan".into(),
            device: dev.name.clone(),
            vni: Some(carried.vni),
            inner: carried.inner,
            outer_src: *outer.src.ip(),
            outer_dst: *outer.dst.ip(),
            outer_port: Some(outer.dst.port()),
            detail: format!(
                "UDP port {} with VNI {} belongs to {}: the inner frame is received on {} as if it had arrived there",
                outer.dst.port(),
                carried.vni,
                dev.name,
                dev.name
            ),
        });
        Some(Next::Receive {
            host,
            iif: dev.name.clone(),
            next_hop: *carried.inner.dst.ip(),
            tuple: carried.inner,
        })
    }
}
