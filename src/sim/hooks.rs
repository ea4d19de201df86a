//! The netfilter hooks of one host in the kernel's order: iptables' tables and kube-proxy's
//! nftables base chains, by priority, each walked by its own front end.

use super::netfilter::{Packet, Verdict as NfVerdict, Walk};
use super::{End, Simulator, nftables, route};
use crate::net::Host;
use crate::net::iptables::CtState;

impl Simulator<'_> {
    /// Runs one hook's tables (`nat` only for new connections, as the kernel does): the
    /// iptables tables and, on a host that has one, the nftables table's base chains on the
    /// hook, in priority order (`sim/nftables.rs`).
    pub(super) fn hook(
        &mut self,
        host: usize,
        hook: &str,
        pkt: &mut Packet,
        nat: bool,
        filter: bool,
    ) -> Result<(), End> {
        let h = self.host(host);
        let mut steps = Vec::new();
        let mut result = Ok(());
        let mut nat_done = false;
        for stage in stages(h, hook, nat, filter) {
            let before = pkt.tuple;
            // The nat core runs a hook's nat chains in priority order until one of them has
            // translated the connection; the others are not consulted.
            if stage.is_nat() && nat_done {
                continue;
            }
            let verdict = match stage {
                Stage::Iptables(table) => Walk {
                    host: h,
                    hook,
                    choice: &self.choice,
                    decisions: &mut self.decisions,
                    steps: &mut steps,
                }
                .run(table, pkt),
                Stage::Nftables(table, chain, _) => nftables::NftWalk {
                    host: h,
                    hook,
                    choice: &self.choice,
                    decisions: &mut self.decisions,
                    steps: &mut steps,
                }
                .run(table, chain, pkt),
            };
            if stage.is_nat() && pkt.tuple != before {
                nat_done = true;
            }
            match verdict {
                NfVerdict::Accept => {}
                NfVerdict::Drop(rule) => {
                    result = Err(End::Dropped { host, rule });
                    break;
                }
                NfVerdict::Reject(rule) => {
                    result = Err(End::Rejected { host, rule });
                    break;
                }
            }
        }
        for s in steps {
            self.step(s);
        }
        result
    }

    /// Whether FORWARD lets through a copy of `pkt` that conntrack finds INVALID (iptables-mode
    /// kube-proxy drops such packets; its nftables mode does not). Nothing is recorded.
    pub(super) fn forwards_invalid(&self, host: usize, pkt: &Packet, r: &route::Route) -> bool {
        let h = self.host(host);
        let mut copy = Packet {
            tuple: pkt.tuple,
            mark: pkt.mark,
            iif: pkt.iif.clone(),
            oif: r.dev.clone(),
            ct_state: CtState::Invalid,
            dnat: false,
            bridged: pkt.bridged,
        };
        let mut decisions = 0;
        let mut steps = Vec::new();
        stages(h, "FORWARD", false, true).into_iter().all(|stage| {
            let verdict = match stage {
                Stage::Iptables(table) => Walk {
                    host: h,
                    hook: "FORWARD",
                    choice: &self.choice,
                    decisions: &mut decisions,
                    steps: &mut steps,
                }
                .run(table, &mut copy),
                Stage::Nftables(table, chain, _) => nftables::NftWalk {
                    host: h,
                    hook: "FORWARD",
                    choice: &self.choice,
                    decisions: &mut decisions,
                    steps: &mut steps,
                }
                .run(table, chain, &mut copy),
            };
            verdict == NfVerdict::Accept
        })
    }
}

/// One netfilter table, or one nftables base chain, that a hook runs.
enum Stage<'h> {
    Iptables(&'h crate::net::iptables::Table),
    Nftables(&'h crate::net::nftables::Table, &'h crate::net::nftables::Chain, bool),
}

impl Stage<'_> {
    fn is_nat(&self) -> bool {
        match self {
            Stage::Iptables(t) => t.name == "nat",
            Stage::Nftables(_, _, nat) => *nat,
        }
    }
}

/// What `hook` runs on `h`, in the kernel's order: by priority (iptables' `nat` at dstnat,
/// -100, on PREROUTING and OUTPUT and at srcnat, 100, on INPUT and POSTROUTING; `filter` at 0),
/// nftables chains of the same priority first, as they were registered after the iptables
/// tables. `nat` and `filter` say which iptables tables run; the nftables nat chains run with
/// `nat`, its filter chains for every packet. OUTPUT is run in two calls around the reroute
/// after DNAT: the first (`filter` false) up to dstnat, the second after it.
fn stages<'h>(h: &'h Host, hook: &str, nat: bool, filter: bool) -> Vec<Stage<'h>> {
    use crate::net::nftables::{ChainType, DSTNAT, Hook, SRCNAT};
    let nat_priority = if matches!(hook, "INPUT" | "POSTROUTING") {
        SRCNAT
    } else {
        DSTNAT
    };
    let mut list: Vec<(i32, u8, Stage<'h>)> = Vec::new();
    if nat {
        list.push((nat_priority, 1, Stage::Iptables(&h.nat)));
    }
    if filter {
        list.push((0, 1, Stage::Iptables(&h.filter)));
    }
    if let (Some(table), Some(on)) = (&h.nftables, Hook::of_builtin(hook)) {
        for chain in table.base_chains(on) {
            let Some(base) = chain.base else { continue };
            let is_nat = base.kind == ChainType::Nat;
            let in_window = hook != "OUTPUT" || (base.priority <= DSTNAT) != filter;
            if in_window && (!is_nat || nat) {
                list.push((base.priority, 0, Stage::Nftables(table, chain, is_nat)));
            }
        }
    }
    list.sort_by_key(|(priority, order, _)| (*priority, *order));
    list.into_iter().map(|(_, _, s)| s).collect()
}
