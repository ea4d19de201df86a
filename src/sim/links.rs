//! Crossing links: veth pairs, the node network segment, the uplink, and the bridge, whose
//! layer-2 decision (up to the IP stack, or bridged to another port) comes before any routing.

use std::net::Ipv4Addr;

use super::{Direction, End, Next, Simulator};
use crate::net::iptables::CtState;
use crate::net::route::{self, RouteType};
use crate::net::{Interface, Link};
use crate::sim::netfilter::Packet;
use crate::trace::{Step, Tuple};

impl<'a> Simulator<'a> {
    /// Puts a packet on the wire of `dev`, finding the interface that owns `next_hop`.
    pub(super) fn transmit(
        &mut self,
        host: usize,
        dev: &str,
        next_hop: Ipv4Addr,
        came_in: Option<&str>,
        tuple: Tuple,
    ) -> Next {
        let h = self.host(host);
        let Some(iface) = h.interface(dev) else {
            return Next::End(End::NoNeighbor { host, next_hop });
        };
        match &iface.link {
            Link::Veth { peer_host, peer_if } => {
                // Behind a bridge port, the sender's ARP for the next hop crosses the bridge:
                // only the bridge itself or a host behind one of its ports can answer it, and
                // unanswered, the packet is never sent.
                let peer = self.host(*peer_host);
                if let Some(bridge) = peer.interface(peer_if).and_then(|p| p.master.as_deref())
                    && !peer.interface(bridge).is_some_and(|b| b.owns(next_hop))
                    && self.bridge_port(*peer_host, bridge, next_hop).is_none()
                {
                    return Next::End(End::NoNeighbor { host, next_hop });
                }
                if let Some(far) = peer.interface(peer_if)
                    && far.proxy_arp
                    && !peer.owns(next_hop)
                {
                    self.step(Step::Note {
                        text: format!(
                            "no interface holds {next_hop}: {peer_if} answers the ARP for it with its own address (proxy_arp)"
                        ),
                    });
                }
                self.step(Step::Forward {
                    via: dev.to_owned(),
                    detail: format!(
                        "out {dev}, across the veth pair to {peer_if} in {}",
                        self.place(*peer_host).name
                    ),
                });
                Next::Receive {
                    host: *peer_host,
                    iif: peer_if.clone(),
                    next_hop,
                    tuple,
                }
            }
            Link::Vxlan(v) => self.vxlan_encapsulate(host, dev, v, next_hop, tuple),
            Link::Ipip { local, .. } => self.ipip_encapsulate(host, dev, *local, next_hop, tuple),
            Link::Uplink => {
                self.step(Step::Forward {
                    via: dev.to_owned(),
                    detail: "out to the world beyond the cluster".into(),
                });
                if self.client == Some(super::Client::Beyond) {
                    self.step(Step::Deliver {
                        listener: "the client's socket, out in the world".into(),
                    });
                    return Next::End(End::Returned { tuple });
                }
                Next::End(End::LeftCluster)
            }
            // A dummy device drops what is sent through it.
            Link::Dummy => Next::End(End::NoNeighbor { host, next_hop }),
            Link::Loopback => Next::Receive {
                host,
                iif: "lo".into(),
                next_hop,
                tuple,
            },
            Link::Segment { segment } => {
                // Who answers ARP for next_hop on the segment; never the sender itself, whose
                // own broadcast does not come back to it.
                let target = self.state.neighbor_on_segment(segment, next_hop, host);
                match target {
                    Some((i, ifname)) => {
                        self.step(Step::Forward {
                            via: dev.to_owned(),
                            detail: format!(
                                "out {dev} onto the {}: {next_hop} is {} ({ifname})",
                                segment.replace('-', " "),
                                self.place(i).name
                            ),
                        });
                        Next::Receive {
                            host: i,
                            iif: ifname,
                            next_hop,
                            tuple,
                        }
                    }
                    None => Next::End(End::NoNeighbor { host, next_hop }),
                }
            }
            Link::Bridge => {
                let Some(port) = self.bridge_port(host, dev, next_hop) else {
                    return Next::End(End::NoNeighbor { host, next_hop });
                };
                if let Some(end) = hairpin_refused(host, port, came_in) {
                    return Next::End(end);
                }
                if came_in == Some(port.name.as_str()) {
                    self.step(Step::Note {
                        text: format!(
                            "{} is in hairpin mode: the frame may leave by the port it came in on",
                            port.name
                        ),
                    });
                }
                self.step(Step::Forward {
                    via: dev.to_owned(),
                    detail: format!("{dev} forwards the frame for {next_hop} to its port {}", port.name),
                });
                let port_name = port.name.clone();
                self.transmit(host, &port_name, next_hop, None, tuple)
            }
        }
    }

    /// A frame or packet arrives on `iif` of `host`. Returns where it goes next and whether it
    /// was forwarded (which costs a TTL).
    pub(super) fn receive(
        &mut self,
        host: usize,
        iif: &str,
        next_hop: Ipv4Addr,
        tuple: Tuple,
        ttl: u8,
    ) -> (Next, bool) {
        let h = self.host(host);
        self.begin_hop(host, Some(iif), tuple);
        let bridge = h.interface(iif).and_then(|i| i.master.clone());
        let dir = self.direction(host, tuple);
        let mut pkt = Packet {
            tuple,
            mark: 0,
            iif: Some(iif.to_owned()),
            oif: None,
            ct_state: if dir == Direction::New {
                CtState::New
            } else {
                CtState::Established
            },
            dnat: self.dnat_status(host, dir),
            bridged: false,
        };
        let Some(bridge) = bridge else {
            return self.ip_input(host, pkt, dir, tuple, ttl);
        };
        // Layer 2 first: the frame is addressed to the bridge itself (the packet's next hop is
        // the bridge's address) or to another port.
        let to_bridge = h.interface(&bridge).is_some_and(|b| b.owns(next_hop));
        let nf = h.bridge_nf_call_iptables;
        if to_bridge {
            self.step(Step::Forward {
                via: iif.to_owned(),
                detail: format!("the frame is addressed to {bridge} itself, so it goes up to the node's IP stack"),
            });
            if !nf {
                pkt.iif = Some(bridge.clone());
                return self.ip_input(host, pkt, dir, tuple, ttl);
            }
            // With bridge netfilter, PREROUTING runs while the frame is still on the bridge; a
            // DNAT to an address behind the same bridge then keeps it bridged, not routed.
            pkt.iif = Some(bridge.clone());
            if let Some(next) = self.prerouting(host, &mut pkt, dir) {
                return (next, false);
            }
            let Some(r) = self.route(host, *pkt.tuple.dst.ip()) else {
                return (Next::End(End::NoRoute { host }), false);
            };
            if pkt.tuple.dst.ip() != tuple.dst.ip()
                && r.dev.as_deref() == Some(bridge.as_str())
                && r.kind == RouteType::Unicast
            {
                self.step(Step::Note {
                    text: format!(
                        "the new destination is behind {bridge} itself: the frame is bridged back out, not routed"
                    ),
                });
                if h.interface(&bridge).is_some_and(|b| b.promiscuous) {
                    let text = if self.forwards_invalid(host, &pkt, &r) {
                        format!(
                            "{bridge} is promiscuous, so it also passes a copy of the frame up to the node, which routes the copy through FORWARD as a packet conntrack finds INVALID; no rule drops it, so the destination gets the packet twice (a UDP listener answers twice); this trace follows the bridged frame"
                        )
                    } else {
                        format!(
                            "{bridge} is promiscuous, so it also passes a copy of the frame up to the node, which routes the copy through FORWARD as a packet conntrack finds INVALID; this trace follows the bridged frame"
                        )
                    };
                    self.step(Step::Note { text });
                }
                let next = self.bridged(host, pkt, dir, tuple, &bridge, iif, &r);
                return (next, false);
            }
            return self.after_routing(host, pkt, dir, tuple, r, ttl);
        }
        self.step(Step::Forward {
            via: iif.to_owned(),
            detail: format!("the frame is for {next_hop}, another port of {bridge}: bridged"),
        });
        if !nf {
            self.step(Step::Note {
                text: "bridge-nf-call-iptables is off: bridged frames skip iptables and conntrack".into(),
            });
            return (self.transmit(host, &bridge, next_hop, Some(iif), tuple), false);
        }
        pkt.iif = Some(bridge.clone());
        if let Some(next) = self.prerouting(host, &mut pkt, dir) {
            return (next, false);
        }
        let r = route::Route::unicast(ipnet::Ipv4Net::new(next_hop, 32).expect("/32"), None, &bridge);
        (self.bridged(host, pkt, dir, tuple, &bridge, iif, &r), false)
    }

    /// The port of `bridge` behind which `next_hop` lives.
    fn bridge_port(&self, host: usize, bridge: &str, next_hop: Ipv4Addr) -> Option<&'a Interface> {
        self.host(host).interfaces.iter().find(|p| {
            p.master.as_deref() == Some(bridge)
                && matches!(&p.link, Link::Veth { peer_host, peer_if }
                    if self.host(*peer_host).interface(peer_if).is_some_and(|i| i.owns(next_hop)))
        })
    }

    /// A frame that stays on the bridge: FORWARD and POSTROUTING through bridge netfilter,
    /// then out of the port that leads to the destination. The bridge decides the port before
    /// those hooks, so a frame it may not send back where it came from never meets them (nor
    /// gets a conntrack entry).
    #[allow(clippy::too_many_arguments)]
    fn bridged(
        &mut self,
        host: usize,
        mut pkt: Packet,
        dir: Direction,
        orig: Tuple,
        bridge: &str,
        iif: &str,
        r: &route::Route,
    ) -> Next {
        let next_hop = r.via.unwrap_or(*pkt.tuple.dst.ip());
        if let Some(end) = self
            .bridge_port(host, bridge, next_hop)
            .and_then(|port| hairpin_refused(host, port, Some(iif)))
        {
            return Next::End(end);
        }
        pkt.oif = Some(bridge.to_owned());
        pkt.bridged = true;
        if let Err(end) = self.hook(host, "FORWARD", &mut pkt, false, true) {
            return Next::End(end);
        }
        self.out(host, pkt, dir, orig, r, Some(iif))
    }
}

/// Only the port's hairpin flag lets a frame out where it came in: the kernel's bridge checks
/// nothing else (a promiscuous bridge only sees more frames itself).
fn hairpin_refused(host: usize, port: &Interface, came_in: Option<&str>) -> Option<End> {
    (came_in == Some(port.name.as_str()) && !port.hairpin).then(|| End::HairpinRefused {
        host,
        port: port.name.clone(),
    })
}
