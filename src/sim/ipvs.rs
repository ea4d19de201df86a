//! IPVS at LOCAL_IN: a new connection to a virtual server (an address routing found local,
//! on `kube-ipvs0`) is given a real server and sent there, NAT forwarding ("Masq"). The kernel
//! sends the rewritten packet out through POSTROUTING; conntrack records the translation, so
//! the reply is un-NATed there like any DNAT.

use crate::net::ipvs::VirtualServer;
use crate::trace::{Branch, Step};

use super::netfilter::Packet;
use super::{Direction, End, Next, Simulator};

impl Simulator<'_> {
    /// The virtual server a new connection's packet reaching INPUT on `host` is for, if any.
    pub(super) fn ipvs_service(&self, host: usize, pkt: &Packet, dir: Direction) -> Option<VirtualServer> {
        let ipvs = self.host(host).ipvs.as_ref()?;
        if dir != Direction::New || !pkt.tuple.protocol.has_ports() {
            return None;
        }
        ipvs.lookup(pkt.tuple.protocol, pkt.tuple.dst)
    }

    /// Schedules the connection on `vs` and forwards the packet to the real server chosen.
    pub(super) fn ipvs_forward(
        &mut self,
        host: usize,
        mut pkt: Packet,
        orig: super::Tuple,
        vs: &VirtualServer,
    ) -> Next {
        let label = format!(
            "IPVS lookup: {} {} {}{}",
            vs.protocol.lower().to_ascii_uppercase(),
            vs.addr,
            vs.scheduler,
            vs.persistent.map(|t| format!(" persistent {t}")).unwrap_or_default()
        );
        if vs.real_servers.is_empty() {
            // ip_vs_leave: no destination to schedule, so the client is told the port is
            // unreachable.
            self.step(Step::Note {
                text: format!("{label}: the virtual server has no real server"),
            });
            return Next::End(End::Rejected {
                host,
                rule: format!("{label}: \"{} has no endpoints\" (ICMP port unreachable)", vs.origin),
            });
        }
        let n = vs.real_servers.len();
        let mut branches: Vec<Branch> = vs
            .real_servers
            .iter()
            .zip(vs.shares())
            .enumerate()
            .map(|(i, (r, share))| Branch {
                rule: format!("-> {} Masq weight {}", r.addr, r.weight),
                target: r.addr.to_string(),
                probability: 1.0 / (n - i) as f64,
                share,
                chosen: false,
                to: Some(r.addr),
                endpoint: None,
                node: None,
            })
            .collect();
        let (index, how) = self.choice.choose(
            &mut self.decisions,
            &mut branches,
            ("virtual server", "the order ipvsadm lists the real servers"),
        );
        let real = vs.real_servers[index.min(n - 1)].addr;
        self.step(Step::LoadBalance {
            chain: format!("{label} -> {real}"),
            branches,
            how,
        });
        let before = pkt.tuple;
        pkt.tuple.dst = real;
        pkt.dnat = true;
        self.step(Step::Nat {
            nat: "DNAT (IPVS)".into(),
            before,
            after: pkt.tuple,
            conntrack: None,
            endpoint: None,
            node: None,
        });
        let Some(r) = self.route(host, *real.ip()) else {
            return Next::End(End::NoRoute { host });
        };
        pkt.oif = r.dev.clone();
        self.out(host, pkt, Direction::New, orig, &r, None)
    }
}
