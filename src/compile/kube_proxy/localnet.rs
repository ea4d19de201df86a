//! The `KUBE-FIREWALL` chain: kube-proxy sets `route_localnet` so that NodePorts answer on
//! 127.0.0.1, which would also let a neighbour on the node's network reach services bound to
//! the node's loopback (CVE-2020-8558). This chain drops such packets.

use super::comment;
use crate::net::iptables::{CtState, Match, Rule, Table, Target};

pub const KUBELET_FIREWALL: &str = "KUBE-FIREWALL";

/// Writes the chain and its jumps from `INPUT` and `OUTPUT` into `filter`. Call it after the
/// other jumps into the built-in chains: kube-proxy prepends its jumps, but the kubelet, which
/// starts first, has already put `-j KUBE-FIREWALL` there, so on a node it is the last one.
pub fn block_localnet(filter: &mut Table) {
    let loopback = "127.0.0.0/8".parse().expect("a valid network");
    for builtin in ["INPUT", "OUTPUT"] {
        filter.append(
            builtin,
            Rule::new(Vec::new(), Target::Jump(KUBELET_FIREWALL.to_owned())),
        );
    }
    filter.append(
        KUBELET_FIREWALL,
        Rule::new(
            vec![
                Match::Source {
                    net: loopback,
                    negated: true,
                },
                Match::Destination {
                    net: loopback,
                    negated: false,
                },
                comment("block incoming localnet connections"),
                Match::Conntrack {
                    states: vec![CtState::Related, CtState::Established, CtState::Dnat],
                    negated: true,
                },
            ],
            Target::Drop,
        ),
    );
}
