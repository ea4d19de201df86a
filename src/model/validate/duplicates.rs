//! Finding entries that collide (one name, one address, overlapping podCIDRs) in time that
//! grows as n log n, and naming the earlier entries each later one collides with.
//!
//! A conflict is reported once, at the later entry, naming at most two of the earlier ones and
//! counting the rest: a thousand nodes that share one podCIDR make a thousand short errors, not
//! half a million pairs.

use std::collections::HashMap;
use std::hash::Hash;

use ipnet::Ipv4Net;

use super::Validator;
use crate::input::decode::Sp;

/// The earlier entries one entry collides with: the first two of them, and how many in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Earlier<T> {
    pub first: Vec<T>,
    pub count: usize,
}

/// Remembers who used each key, so a later user can be told who came first.
pub(super) struct Seen<K> {
    users: HashMap<K, Earlier<String>>,
}

impl<K: Hash + Eq> Default for Seen<K> {
    fn default() -> Self {
        Seen { users: HashMap::new() }
    }
}

impl<K: Hash + Eq> Seen<K> {
    /// Records `user` under `key`; returns the earlier users, if any.
    pub fn record(&mut self, key: K, user: &str) -> Option<Earlier<String>> {
        let entry = self.users.entry(key).or_insert(Earlier {
            first: Vec::new(),
            count: 0,
        });
        let before = (entry.count > 0).then(|| entry.clone());
        entry.count += 1;
        if entry.first.len() < 2 {
            entry.first.push(user.to_owned());
        }
        before
    }
}

/// "node `a`", "nodes `a` and `b`", "nodes `a`, `b` and 998 more".
pub(super) fn named(singular: &str, plural: &str, earlier: &Earlier<String>) -> String {
    match (earlier.first.as_slice(), earlier.count) {
        ([one], 1) => format!("{singular} `{one}`"),
        ([a, b], 2) => format!("{plural} `{a}` and `{b}`"),
        ([a, b], n) => format!("{plural} `{a}`, `{b}` and {} more", n - 2),
        (first, n) => format!("{n} {plural} ({})", first.join(", ")),
    }
}

/// The earlier entries a CIDR overlaps, and whether they are all the very same CIDR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Overlap {
    pub earlier: Earlier<usize>,
    pub all_identical: bool,
}

/// For each CIDR, the earlier ones (by index) that overlap it. Two CIDRs overlap exactly when
/// one contains the other, so sorted by address and then prefix length, every CIDR's
/// containers come before it and its contents right after it; a chain of ever smaller
/// CIDRs is at most 33 long, which bounds the work per entry.
pub(super) fn earlier_overlaps(cidrs: &[Ipv4Net]) -> Vec<Option<Overlap>> {
    let n = cidrs.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| (cidrs[i].network(), cidrs[i].prefix_len(), i));

    // Runs of one CIDR, each with its entries in file order.
    struct Group {
        net: Ipv4Net,
        members: Vec<usize>,
        /// Where the CIDRs inside this one end in `order` (they start right after the group).
        inside_end: usize,
        /// Where the group's own run ends in `order`.
        end: usize,
        containers: Vec<usize>,
    }
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of = vec![0; n];
    for (at, &i) in order.iter().enumerate() {
        match groups.last_mut() {
            Some(g) if g.net == cidrs[i] => {
                g.members.push(i);
                g.end = at + 1;
            }
            _ => groups.push(Group {
                net: cidrs[i],
                members: vec![i],
                inside_end: n,
                end: at + 1,
                containers: Vec::new(),
            }),
        }
        group_of[i] = groups.len() - 1;
    }
    let mut open: Vec<usize> = Vec::new();
    for g in 0..groups.len() {
        while let Some(&top) = open.last() {
            if groups[top].net.contains(&groups[g].net) {
                break;
            }
            open.pop();
            groups[top].inside_end = groups[g].end - groups[g].members.len();
        }
        groups[g].containers = open.clone();
        open.push(g);
    }

    // The file positions of everything inside each group, sorted, to count the earlier ones.
    let inside: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            let mut within: Vec<usize> = order[g.end..g.inside_end].to_vec();
            within.sort_unstable();
            within
        })
        .collect();

    (0..n)
        .map(|i| {
            let g = &groups[group_of[i]];
            let mut count = 0;
            let mut first: Vec<usize> = Vec::new();
            let mut take = |sorted: &[usize]| {
                let before = sorted.partition_point(|&j| j < i);
                count += before;
                first.extend(&sorted[..before.min(2)]);
                before
            };
            let identical = take(&g.members);
            let mut others = 0;
            for &c in &g.containers {
                others += take(&groups[c].members);
            }
            others += take(&inside[group_of[i]]);
            first.sort_unstable();
            first.truncate(2);
            (count > 0).then_some(Overlap {
                earlier: Earlier { first, count },
                all_identical: others == 0 && identical > 0,
            })
        })
        .collect()
}

impl Validator {
    /// Each podCIDR that overlaps earlier ones, reported once, naming them.
    pub(super) fn pod_cidr_overlaps(&mut self, cidrs: &[(String, Sp<Ipv4Net>)]) {
        let nets: Vec<Ipv4Net> = cidrs.iter().map(|(_, c)| c.value).collect();
        for (i, found) in earlier_overlaps(&nets).into_iter().enumerate() {
            let Some(found) = found else { continue };
            let cidr = &cidrs[i].1;
            let earlier = &found.earlier;
            let message = if found.all_identical {
                let names = Earlier {
                    first: earlier.first.iter().map(|&j| cidrs[j].0.clone()).collect(),
                    count: earlier.count,
                };
                format!(
                    "podCIDR {} is also used by {}",
                    cidr.value,
                    named("node", "nodes", &names)
                )
            } else if earlier.count == 1 {
                let (other, o) = &cidrs[earlier.first[0]];
                format!("podCIDR {} overlaps node `{other}`'s podCIDR {}", cidr.value, o.value)
            } else {
                let shown: Vec<String> = earlier
                    .first
                    .iter()
                    .map(|&j| format!("`{}` ({})", cidrs[j].0, cidrs[j].1.value))
                    .collect();
                let rest = earlier.count - shown.len();
                format!(
                    "podCIDR {} overlaps the podCIDRs of {} earlier nodes: {}{}",
                    cidr.value,
                    earlier.count,
                    shown.join(", "),
                    if rest > 0 {
                        format!(" and {rest} more")
                    } else {
                        String::new()
                    }
                )
            };
            self.error(cidr.span, message, "every node needs its own slice of the pod network");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(texts: &[&str]) -> Vec<Ipv4Net> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn without_kind(found: Vec<Option<Overlap>>) -> Vec<Option<Earlier<usize>>> {
        found.into_iter().map(|o| o.map(|o| o.earlier)).collect()
    }

    /// The pairwise answer, to hold the sorted one against.
    fn pairwise(cidrs: &[Ipv4Net]) -> Vec<Option<Earlier<usize>>> {
        (0..cidrs.len())
            .map(|i| {
                let earlier: Vec<usize> = (0..i)
                    .filter(|&j| cidrs[i].contains(&cidrs[j]) || cidrs[j].contains(&cidrs[i]))
                    .collect();
                (!earlier.is_empty()).then(|| Earlier {
                    first: earlier.iter().copied().take(2).collect(),
                    count: earlier.len(),
                })
            })
            .collect()
    }

    #[test]
    fn identical_cidrs_name_the_earlier_ones() {
        let got = earlier_overlaps(&nets(&["10.0.1.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.1.0/24"]));
        assert_eq!(got[0], None);
        assert_eq!(got[2], None);
        assert_eq!(
            got[3],
            Some(Overlap {
                earlier: Earlier {
                    first: vec![0, 1],
                    count: 2
                },
                all_identical: true,
            })
        );
        let nested = earlier_overlaps(&nets(&["10.0.1.0/24", "10.0.0.0/16", "10.0.1.0/24"]));
        assert!(!nested[2].as_ref().unwrap().all_identical);
    }

    #[test]
    fn nested_cidrs_agree_with_the_pairwise_check() {
        let cases = [
            nets(&[
                "10.0.1.0/24",
                "10.0.1.128/25",
                "10.0.0.0/16",
                "10.0.1.128/26",
                "10.1.0.0/16",
            ]),
            nets(&[
                "10.0.0.0/8",
                "10.0.0.0/8",
                "10.2.0.0/16",
                "10.0.0.0/16",
                "10.2.3.0/24",
                "11.0.0.0/8",
            ]),
            nets(&[
                "10.2.3.0/24",
                "10.2.0.0/16",
                "0.0.0.0/0",
                "10.2.3.0/24",
                "192.168.0.0/16",
            ]),
        ];
        for case in cases {
            assert_eq!(without_kind(earlier_overlaps(&case)), pairwise(&case), "{case:?}");
        }
    }

    #[test]
    fn a_generated_mix_agrees_with_the_pairwise_check() {
        let mut state = 7u32;
        let mut next = || {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            state >> 8
        };
        let cidrs: Vec<Ipv4Net> = (0..400)
            .map(|_| {
                let len = 20 + (next() % 9) as u8;
                Ipv4Net::new(std::net::Ipv4Addr::from(0x0a00_0000 | (next() & 0x3fff) << 8), len)
                    .unwrap()
                    .trunc()
            })
            .collect();
        assert_eq!(without_kind(earlier_overlaps(&cidrs)), pairwise(&cidrs));
    }

    #[test]
    fn names_are_listed_then_counted() {
        let e = |first: &[&str], count| Earlier {
            first: first.iter().map(|s| s.to_string()).collect(),
            count,
        };
        assert_eq!(named("node", "nodes", &e(&["a"], 1)), "node `a`");
        assert_eq!(named("node", "nodes", &e(&["a", "b"], 2)), "nodes `a` and `b`");
        assert_eq!(
            named("node", "nodes", &e(&["a", "b"], 1000)),
            "nodes `a`, `b` and 998 more"
        );
    }
}
