//! The names `k8snet materialize` writes: namespace names derived from host names (distinct
//! for distinct hosts), short hashed names for the interfaces it adds, the checks Linux applies
//! to interface names, and the one quoting function every name in the script goes through.

use std::fmt::Write as _;

use sha2::{Digest, Sha256};

pub const DEFAULT_PREFIX: &str = "k8snet-";
/// Long enough for a scenario's name and a counter; short enough that namespace names stay
/// readable in `ip netns list`.
pub const MAX_PREFIX: usize = 20;
/// The longest namespace name written out in full; longer ones are shortened with a hash.
const MAX_NETNS: usize = 64;
/// The kernel's limit on interface names (IFNAMSIZ, 16, including the terminating NUL).
pub const MAX_IFNAME: usize = 15;
/// The bridge that stands for a shared layer-2 segment, alone in its namespace.
pub const SEGMENT_BRIDGE: &str = "br0";

/// Checks `--prefix`: lowercase letters, digits and `-`, at most [`MAX_PREFIX`] characters.
pub fn validate_prefix(prefix: &str) -> Result<(), String> {
    if prefix.is_empty() || prefix.len() > MAX_PREFIX {
        return Err(format!(
            "--prefix must be 1 to {MAX_PREFIX} characters long, not {}",
            prefix.len()
        ));
    }
    if let Some(c) = prefix
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(format!(
            "--prefix may hold only lowercase letters, digits and `-`, not {c:?}"
        ));
    }
    Ok(())
}

/// Writes `name` with every byte outside `[a-z0-9.-]` escaped, so that different names stay
/// different: `/` (pod hosts are `namespace/pod`) becomes `:`, anything else `_` and two hex
/// digits. The output never holds `+` or `~`, which the callers use as markers.
fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' => out.push(b as char),
            b'/' => out.push(':'),
            _ => {
                let _ = write!(out, "_{b:02x}");
            }
        }
    }
    out
}

/// Keeps a namespace name readable: one too long keeps its start and gains a hash of the whole,
/// after a `~` that no escaped name contains.
fn bounded(prefix: &str, body: String, whole: &str) -> String {
    let name = format!("{prefix}{body}");
    if name.len() <= MAX_NETNS {
        return name;
    }
    let hash = hex(&Sha256::digest(whole.as_bytes())[..8]);
    let keep = MAX_NETNS - hash.len() - 1;
    // Escaped names are ASCII, so any byte index is a character boundary.
    format!("{}~{hash}", &name[..keep])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The network namespace that holds the host named `host`. Distinct hosts get distinct names.
pub fn netns_name(prefix: &str, host: &str) -> String {
    bounded(prefix, escape(host), host)
}

/// The namespace holding the bridge that stands for a layer-2 segment. The `+` keeps it apart
/// from every host's namespace.
pub fn segment_netns_name(prefix: &str, segment: &str) -> String {
    bounded(
        prefix,
        format!("segment+{}", escape(segment)),
        &format!("segment+{segment}"),
    )
}

/// The segment bridge's port for interface `iface` of host `host`: the segment namespace holds
/// one per host, so the name is a hash that fits the kernel's limit, like a CNI plugin's veth.
pub fn segment_port_name(host: &str, iface: &str) -> String {
    format!(
        "seg{}",
        &hex(&Sha256::digest(format!("{host}/{iface}").as_bytes()))[..12]
    )
}

/// Quotes one word for a POSIX shell: inside single quotes nothing is special, and a single
/// quote itself is closed, escaped and reopened.
pub fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// The kernel's rule for interface names (`dev_valid_name`).
pub fn valid_ifname(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_IFNAME
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == ':' || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn quoting_keeps_a_hostile_word_one_inert_word() {
        assert_eq!(quote("cbr0"), "'cbr0'");
        assert_eq!(quote("$(reboot)"), "'$(reboot)'");
        assert_eq!(quote("a'b"), r"'a'\''b'");
        assert_eq!(quote("'; reboot; '"), r"''\''; reboot; '\'''");
        // The shell itself reads each quoted word back unchanged.
        for word in ["$(reboot)", "`reboot`", "a'b", "'; reboot #", "x\ny", "\\'\""] {
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("printf '%s' {}", quote(word)))
                .output()
                .expect("sh runs");
            assert_eq!(String::from_utf8_lossy(&out.stdout), word);
        }
    }

    /// Names reach the script only from a validated cluster, and validation refuses anything
    /// but DNS names: a pod, namespace or node named like a command never gets that far.
    #[test]
    fn hostile_names_are_refused_before_any_script_is_written() {
        let demo = include_str!("../../../scenarios/demo.yaml");
        for (from, to) in [
            ("name: pod-a", "name: $(reboot)"),
            ("name: pod-a", "name: \"a'; reboot; '\""),
            ("    namespace: default ", "    namespace: \"`reboot`\" "),
            ("name: node-1", "name: \"node-1 && reboot\""),
        ] {
            assert!(demo.contains(from), "the demo has no {from:?}");
            let source = crate::input::Source {
                name: "hostile.yaml".into(),
                text: demo.replacen(from, to, 1),
            };
            let (spec, mut diags) = crate::input::parse(&source).expect("the YAML itself is fine");
            if let Err(more) = crate::model::build(&spec) {
                diags.extend(more);
            }
            assert!(
                diags.iter().any(|d| d.message.contains("is not a valid")),
                "{to} was not refused as a name: {diags:?}"
            );
        }
    }

    #[test]
    fn namespace_names_are_distinct_for_distinct_hosts() {
        let names = [
            "default/pod-a",
            "default:pod-a",
            "default_3apod-a",
            "default.pod-a",
            "node-1",
            "router",
            "internet",
            "a/b-c",
            "a-b/c",
        ];
        let mut seen = BTreeSet::new();
        for n in names {
            assert!(seen.insert(netns_name("k8snet-", n)), "{n} collides");
        }
        assert!(seen.insert(segment_netns_name("k8snet-", "node-network")));
        assert!(seen.insert(netns_name("k8snet-", "segment+node-network")));
        assert_eq!(netns_name("k8snet-", "default/pod-a"), "k8snet-default:pod-a");
    }

    #[test]
    fn long_names_are_shortened_and_stay_distinct() {
        let a = format!("ns/{}", "p".repeat(200));
        let b = format!("ns/{}q", "p".repeat(199));
        let (na, nb) = (netns_name("k8snet-", &a), netns_name("k8snet-", &b));
        assert!(na.len() <= MAX_NETNS && nb.len() <= MAX_NETNS);
        assert_ne!(na, nb);
        assert!(na.starts_with("k8snet-ns:ppp"));
    }

    #[test]
    fn prefixes_are_short_and_plain() {
        assert!(validate_prefix("k8snet-").is_ok());
        assert!(validate_prefix("lab2-").is_ok());
        assert!(validate_prefix("").is_err());
        assert!(validate_prefix("$(reboot)").is_err());
        assert!(validate_prefix("Upper").is_err());
        assert!(validate_prefix(&"a".repeat(MAX_PREFIX + 1)).is_err());
    }

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(valid_ifname("veth1a2b3c4d"));
        assert!(valid_ifname(&segment_port_name(
            "default/some-very-long-pod-name",
            "eth0"
        )));
        assert!(!valid_ifname("a-name-of-16-chr"));
        assert!(!valid_ifname("a/b"));
        assert!(!valid_ifname(".."));
        assert!(!valid_ifname(""));
    }
}
