//! A long chain's rules by the destination address they require.
//!
//! kube-proxy's `KUBE-SERVICES` holds a rule per Service port, each for one ClusterIP: 20,000
//! rules at Kubernetes' limits, walked by every packet a node sends or receives, encapsulated
//! ones included. The kernel tries them in order; so does the simulator, but it need not look at
//! a rule that asks for another destination than the packet's: such a rule cannot match, and
//! trying one changes nothing. This index lists, for a destination, the rules worth trying, in
//! chain order.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::iptables::{Chain, Match};

/// Chains shorter than this are walked rule by rule: the index would cost more than it saves.
pub const MIN_RULES: usize = 64;

#[derive(Debug, Clone, Default)]
pub struct RulesByDestination {
    /// Rules that match only packets to one address (`-d A/32`), by that address.
    one_address: HashMap<Ipv4Addr, Vec<usize>>,
    /// Every other rule: any packet may match it.
    any: Vec<usize>,
}

impl RulesByDestination {
    /// The index of `chain`, or `None` when the chain should be walked rule by rule: a short
    /// one, or one with a rule whose trying has an effect even when it does not match
    /// (`-m statistic` chooses among the rules that follow it, `-m recent` remembers a miss).
    pub fn of(chain: &Chain) -> Option<RulesByDestination> {
        if chain.rules.len() < MIN_RULES {
            return None;
        }
        let mut index = RulesByDestination::default();
        for (i, rule) in chain.rules.iter().enumerate() {
            if rule
                .matches
                .iter()
                .any(|m| matches!(m, Match::Statistic { .. } | Match::Recent { .. }))
            {
                return None;
            }
            let one = rule.matches.iter().find_map(|m| match m {
                Match::Destination { net, negated: false } if net.prefix_len() == 32 => Some(net.addr()),
                _ => None,
            });
            match one {
                Some(addr) => index.one_address.entry(addr).or_default().push(i),
                None => index.any.push(i),
            }
        }
        Some(index)
    }

    /// The rules a packet to `dst` may match, in chain order.
    pub fn candidates(&self, dst: Ipv4Addr) -> Vec<usize> {
        let one = self.one_address.get(&dst).map_or(&[][..], Vec::as_slice);
        let mut merged = Vec::with_capacity(one.len() + self.any.len());
        let (mut a, mut b) = (0, 0);
        while a < one.len() || b < self.any.len() {
            if b == self.any.len() || (a < one.len() && one[a] < self.any[b]) {
                merged.push(one[a]);
                a += 1;
            } else {
                merged.push(self.any[b]);
                b += 1;
            }
        }
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::iptables::{Rule, Target};

    fn to(addr: [u8; 4]) -> Rule {
        Rule::new(
            vec![Match::Destination {
                net: ipnet::Ipv4Net::new(Ipv4Addr::from(addr), 32).unwrap(),
                negated: false,
            }],
            Target::Accept,
        )
    }

    fn chain(rules: Vec<Rule>) -> Chain {
        Chain {
            name: "KUBE-SERVICES".into(),
            policy: None,
            rules,
        }
    }

    #[test]
    fn lists_the_rules_for_the_address_and_the_rules_for_any_in_chain_order() {
        let mut rules: Vec<Rule> = (0..MIN_RULES as u8).map(|i| to([10, 96, 0, i])).collect();
        rules.insert(3, Rule::new(vec![], Target::Return));
        rules.push(to([10, 96, 0, 5]));
        rules.push(Rule::new(
            vec![Match::Destination {
                net: "10.96.0.5/32".parse().unwrap(),
                negated: true,
            }],
            Target::Drop,
        ));
        let index = RulesByDestination::of(&chain(rules.clone())).expect("long enough");
        let wanted: Vec<usize> = (0..rules.len())
            .filter(|&i| match rules[i].matches.first() {
                Some(Match::Destination { net, negated: false }) => net.addr() == Ipv4Addr::new(10, 96, 0, 5),
                _ => true,
            })
            .collect();
        assert_eq!(index.candidates(Ipv4Addr::new(10, 96, 0, 5)), wanted);
        assert_eq!(index.candidates(Ipv4Addr::new(192, 0, 2, 1)), vec![3, rules.len() - 1]);
    }

    #[test]
    fn short_chains_and_chains_with_statistic_rules_are_not_indexed() {
        let short: Vec<Rule> = (0..3).map(|i| to([10, 96, 0, i])).collect();
        assert!(RulesByDestination::of(&chain(short)).is_none());
        let mut long: Vec<Rule> = (0..MIN_RULES as u8).map(|i| to([10, 96, 0, i])).collect();
        long.push(Rule::new(vec![Match::Statistic { stored: 1 << 30 }], Target::Accept));
        assert!(RulesByDestination::of(&chain(long)).is_none());
    }
}
