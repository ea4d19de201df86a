//! Conntrack as a trace meets it: undoing a connection's NAT on the way back, and the
//! entry a new connection leaves.

use super::*;

impl Simulator<'_> {
    /// The reverse NAT conntrack applies to a reply: the destination is restored where the
    /// kernel does destination NAT (PREROUTING, OUTPUT), the source where it does source NAT
    /// (POSTROUTING, INPUT).
    pub(super) fn unnat(&mut self, host: usize, entry: usize, pkt: &mut Packet, destination: bool) {
        let orig = self.conntrack[&host][entry].orig;
        let before = pkt.tuple;
        let (kind, changed) = if destination {
            pkt.tuple.dst = orig.src;
            ("un-SNAT", before.dst != orig.src)
        } else {
            pkt.tuple.src = orig.dst;
            ("un-DNAT", before.src != orig.dst)
        };
        if changed {
            self.step(Step::Nat {
                nat: kind.to_owned(),
                before,
                after: pkt.tuple,
                conntrack: Some(conntrack_line(&self.conntrack[&host][entry])),
                endpoint: None,
                node: None,
            });
        }
    }

    /// Conntrack's DNAT status of the connection a packet belongs to: a new one has had no
    /// translation yet.
    pub(super) fn dnat_status(&self, host: usize, dir: Direction) -> bool {
        match dir {
            Direction::Reply(e) => {
                let entry = &self.conntrack[&host][e];
                entry.orig.dst != entry.reply.src
            }
            Direction::New => false,
        }
    }

    pub(super) fn confirm(&mut self, host: usize, orig: Tuple, now: Tuple) {
        let entry = Entry {
            orig,
            reply: now.reversed(),
        };
        if orig != now {
            self.step(Step::Note {
                text: format!("conntrack remembers: {}", conntrack_line(&entry)),
            });
        }
        self.conntrack.entry(host).or_default().push(entry);
    }
}

/// A conntrack entry as `conntrack -L` prints its addresses.
fn conntrack_line(e: &Entry) -> String {
    if e.orig.protocol == Protocol::Icmp {
        let side = |t: Tuple, kind: u8| {
            format!(
                "src={} dst={} type={kind} code=0 id={}",
                t.src.ip(),
                t.dst.ip(),
                t.src.port()
            )
        };
        return format!("icmp {} {}", side(e.orig, 8), side(e.reply, 0));
    }
    let side = |t: Tuple| {
        format!(
            "src={} dst={} sport={} dport={}",
            t.src.ip(),
            t.dst.ip(),
            t.src.port(),
            t.dst.port()
        )
    };
    format!("{} {} {}", e.orig.protocol.lower(), side(e.orig), side(e.reply))
}
