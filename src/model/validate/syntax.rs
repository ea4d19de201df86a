//! The API server's rules for the text fields a scenario carries (k8s.io/apimachinery's
//! `util/validation` and the networking API's Ingress checks), so that what k8snet accepts is
//! what a real cluster could hold. Each returns why a value is refused, in the API's words.
//!
//! These rules also keep every name that reaches a rule comment, a message or a script to
//! plain printable ASCII without spaces or quotes.

/// A DNS-1123 label: lowercase letters, digits and `-`, starting and ending with a letter or
/// digit, at most 63 characters (namespaces, container names).
pub fn dns_label(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 63 {
        return Err("must be 1 to 63 characters long".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must hold only lowercase letters, digits and '-'".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A DNS-1123 subdomain: DNS labels joined by dots, at most 253 characters (node and pod
/// names, `clusterDomain`, label-key prefixes).
pub fn dns_subdomain(s: &str) -> Result<(), String> {
    if s.len() > 253 {
        return Err(format!("must be at most 253 characters long, not {}", s.len()));
    }
    s.split('.').try_for_each(dns_label)
}

/// An IANA service name, as a port's `name` must be: at most 15 characters of lowercase
/// letters, digits and `-`, at least one letter, no `--`, no `-` at either end.
pub fn port_name(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 15 {
        return Err("must be 1 to 15 characters long".into());
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("must hold only lowercase letters, digits and '-'".into());
    }
    if !s.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err("must hold at least one letter".into());
    }
    if s.contains("--") {
        return Err("must not hold two '-' in a row".into());
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Err("must not start or end with '-'".into());
    }
    Ok(())
}

/// The name part of a label key, and any label value that is not empty: at most 63
/// characters of letters, digits, `-`, `_` and `.`, starting and ending with a letter or digit.
fn label_word(s: &str) -> Result<(), String> {
    if s.len() > 63 {
        return Err(format!("must be at most 63 characters long, not {}", s.len()));
    }
    if !s
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err("must hold only letters, digits, '-', '_' and '.'".into());
    }
    let alnum = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_alphanumeric());
    if !alnum(s.bytes().next()) || !alnum(s.bytes().last()) {
        return Err("must start and end with a letter or digit".into());
    }
    Ok(())
}

/// A label key: a name, optionally after a DNS-subdomain prefix and `/`
/// (`app.kubernetes.io/name`).
pub fn label_key(s: &str) -> Result<(), String> {
    let name = match s.split_once('/') {
        Some((prefix, name)) => {
            if prefix.is_empty() {
                return Err("has an empty prefix before '/'".into());
            }
            dns_subdomain(prefix).map_err(|why| format!("has a prefix that {why}"))?;
            name
        }
        None => s,
    };
    if name.is_empty() {
        return Err("has no name".into());
    }
    label_word(name)
}

/// A label value: empty, or a label word.
pub fn label_value(s: &str) -> Result<(), String> {
    if s.is_empty() { Ok(()) } else { label_word(s) }
}

/// An Ingress rule's host: a DNS subdomain, whose first label may be the wildcard `*`, and not
/// an IP address.
pub fn ingress_host(s: &str) -> Result<(), String> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Err("must be a DNS name, not an IP address".into());
    }
    let rest = s.strip_prefix("*.").unwrap_or(s);
    if rest.contains('*') {
        return Err("may hold the wildcard `*` only as its whole first label".into());
    }
    dns_subdomain(rest)
}

/// An Ingress path. The API asks every path to be absolute; for `Exact` and `Prefix` paths it
/// also refuses the sequences that could step out of the path. Control characters are refused
/// for all: they cannot stand in a request line.
pub fn ingress_path(s: &str, exact_or_prefix: bool) -> Result<(), String> {
    if !s.starts_with('/') {
        return Err("must be an absolute path, starting with /".into());
    }
    if s.chars().any(|c| c.is_control() || c == ' ') {
        return Err("must not hold spaces or control characters".into());
    }
    if exact_or_prefix {
        for seq in ["//", "/./", "/../", "%2f", "%2F"] {
            if s.contains(seq) {
                return Err(format!("must not contain `{seq}`"));
            }
        }
        for suffix in ["/..", "/."] {
            if s.ends_with(suffix) {
                return Err(format!("must not end with `{suffix}`"));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_names_follow_iana() {
        for ok in ["http", "metrics-2", "h2c", "a", "x-1-y"] {
            assert_eq!(port_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "a-very-long-port1",
            "HTTP",
            "8080",
            "a--b",
            "-http",
            "http-",
            "x\" -j ACCEPT",
            "a\nb",
            "web_ui",
        ] {
            assert!(port_name(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(port_name(&"a".repeat(15)), Ok(()));
    }

    #[test]
    fn label_keys_and_values_follow_the_api() {
        for ok in ["app", "app.kubernetes.io/name", "k8s-app", "A_b.c", "example.com/Tier"] {
            assert_eq!(label_key(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "/app",
            "a/b/c",
            "-app",
            "app-",
            "Example.com/x",
            "a b",
            "x\u{1b}",
            "a/",
        ] {
            assert!(label_key(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(label_key(&"a".repeat(63)), Ok(()));
        assert!(label_key(&"a".repeat(64)).is_err());
        for ok in ["", "web", "v1.2_3", "A"] {
            assert_eq!(label_value(ok), Ok(()), "{ok:?}");
        }
        for bad in ["-web", "web\n", "$(reboot)", "a\"b", &"v".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn subdomains_hosts_and_paths() {
        assert_eq!(dns_subdomain("cluster.local"), Ok(()));
        assert!(dns_subdomain("cluster..local").is_err());
        assert!(dns_subdomain("Cluster.local").is_err());
        assert!(dns_subdomain(&format!("{}.x", "a".repeat(252))).is_err());
        assert_eq!(ingress_host("*.example.com"), Ok(()));
        assert_eq!(ingress_host("shop.example.com"), Ok(()));
        for bad in ["shop.*.com", "*", "**.example.com", "10.0.0.1", "-a.com", "a_b.com"] {
            assert!(ingress_host(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(ingress_path("/cart", true), Ok(()));
        assert_eq!(ingress_path("/", true), Ok(()));
        assert_eq!(ingress_path("/a//b", false), Ok(()));
        for bad in [
            "cart", "/a//b", "/a/../b", "/a/..", "/a/.", "/a%2fb", "/a\nb", "/a b", "/\u{1b}",
        ] {
            assert!(ingress_path(bad, true).is_err(), "{bad:?} was accepted");
        }
        assert!(ingress_path("/a\u{7f}", false).is_err());
    }
}
