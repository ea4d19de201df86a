//! IP sets as the kernel's `ipset` holds them: `hash:ip` (addresses) and `hash:net` (networks,
//! where an entry added with `nomatch` makes the addresses it covers miss, unless a longer
//! prefix covers them again), matched by iptables' `-m set --match-set NAME src|dst`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum SetType {
    #[serde(rename = "hash:ip")]
    HashIp,
    #[serde(rename = "hash:net")]
    HashNet,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    pub net: Ipv4Net,
    /// `nomatch`: addresses this entry covers best are not in the set.
    pub nomatch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IpSet {
    pub name: String,
    pub kind: SetType,
    pub entries: Vec<Entry>,
}

impl IpSet {
    /// Whether `ip` is in the set: for `hash:net`, the entry with the longest prefix that
    /// covers it decides, as the kernel tries prefixes from the longest down.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.entries
            .iter()
            .filter(|e| e.net.contains(&ip))
            .max_by_key(|e| (e.net.prefix_len(), !e.nomatch))
            .is_some_and(|e| !e.nomatch)
    }
}

/// The sets of one host, by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct IpSets {
    sets: BTreeMap<String, IpSet>,
}

impl IpSets {
    /// Adds `set`, each address or network once: kube-router adds with `-exist`, so an entry
    /// named twice (a pod two peers select) is one element, the first one kept.
    pub fn insert(&mut self, mut set: IpSet) {
        let mut seen = std::collections::HashSet::new();
        set.entries.retain(|e| seen.insert(e.net));
        self.sets.insert(set.name.clone(), set);
    }

    pub fn get(&self, name: &str) -> Option<&IpSet> {
        self.sets.get(name)
    }

    pub fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &IpSet> {
        self.sets.values()
    }

    /// The sets as `ipset restore` reads them (and `ipset save` prints them).
    pub fn save(&self) -> String {
        let mut out = String::new();
        for s in self.sets.values() {
            let kind = match s.kind {
                SetType::HashIp => "hash:ip",
                SetType::HashNet => "hash:net",
            };
            let _ = writeln!(
                out,
                "create {} {kind} family inet hashsize 1024 maxelem 65536 timeout 0",
                s.name
            );
            for e in &s.entries {
                let addr = match s.kind {
                    SetType::HashIp => e.net.addr().to_string(),
                    SetType::HashNet => e.net.to_string(),
                };
                let _ = writeln!(
                    out,
                    "add {} {addr} timeout 0{}",
                    s.name,
                    if e.nomatch { " nomatch" } else { "" }
                );
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nomatch_entries_cut_holes_that_longer_prefixes_fill_again() {
        let e = |n: &str, nomatch| Entry {
            net: n.parse().unwrap(),
            nomatch,
        };
        let set = IpSet {
            name: "S".into(),
            kind: SetType::HashNet,
            entries: vec![e("10.0.0.0/8", false), e("10.1.0.0/16", true), e("10.1.2.0/24", false)],
        };
        assert!(set.contains("10.2.0.1".parse().unwrap()));
        assert!(!set.contains("10.1.3.1".parse().unwrap()));
        assert!(set.contains("10.1.2.1".parse().unwrap()));
        assert!(!set.contains("11.0.0.1".parse().unwrap()));
    }
}
