//! How an ingress controller picks a backend for an HTTP request, following the Ingress
//! specification: the host first (an exact host beats a wildcard, which beats a rule with no
//! host), then the longest matching path of that host (`Exact` beats `Prefix` on a tie), then
//! the Ingress's `defaultBackend`, and otherwise the controller's own 404.
//!
//! The rules of every Ingress served by the same controller are merged by host, as
//! ingress-nginx does. `ImplementationSpecific` paths are matched as `Prefix`.

use crate::model::{Backend, Cluster, Ingress, PathType};
use crate::trace::{HttpCandidate, Step};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum HostMatch {
    /// No host on the rule: it matches any host.
    Any,
    Wildcard,
    Exact,
}

fn host_match(rule: Option<&str>, host: &str) -> Option<HostMatch> {
    let Some(rule) = rule else {
        return Some(HostMatch::Any);
    };
    if rule.eq_ignore_ascii_case(host) {
        return Some(HostMatch::Exact);
    }
    // `*.example.com` covers exactly one more label: `a.example.com`, not `a.b.example.com`.
    let suffix = rule.strip_prefix('*')?;
    let lower = host.to_ascii_lowercase();
    let label = lower.strip_suffix(&suffix.to_ascii_lowercase())?;
    (!label.is_empty() && !label.contains('.')).then_some(HostMatch::Wildcard)
}

/// How well a rule's host matches `host` (higher is better), or `None`.
pub fn host_rank(rule: Option<&str>, host: &str) -> Option<u8> {
    host_match(rule, host).map(|m| m as u8)
}

/// Element-wise prefix match: `/foo` matches `/foo`, `/foo/` and `/foo/bar`, not `/foobar`.
fn prefix_matches(rule: &str, path: &str) -> bool {
    let elements = |p: &str| {
        p.split('/')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (r, p) = (elements(rule), elements(path));
    p.len() >= r.len() && r.iter().zip(&p).all(|(a, b)| a == b)
}

fn path_matches(kind: PathType, rule: &str, path: &str) -> bool {
    match kind {
        PathType::Exact => rule == path,
        PathType::Prefix | PathType::ImplementationSpecific => prefix_matches(rule, path),
    }
}

pub fn backend_name(c: &Cluster, b: &Backend) -> String {
    let s = &c.services[b.service];
    let p = &s.ports[b.port];
    let port = p.name.clone().unwrap_or_else(|| p.port.to_string());
    format!("{}/{}:{port}", s.namespace, s.name)
}

fn type_name(t: PathType) -> &'static str {
    match t {
        PathType::Exact => "Exact",
        PathType::Prefix => "Prefix",
        PathType::ImplementationSpecific => "ImplementationSpecific",
    }
}

/// The Ingresses a controller Service serves, in namespace/name order.
pub fn served_by(c: &Cluster, controller: usize) -> Vec<&Ingress> {
    let mut list: Vec<&Ingress> = c.ingresses.iter().filter(|i| i.controller == controller).collect();
    list.sort_by_key(|i| (i.namespace.clone(), i.name.clone()));
    list
}

struct Candidate<'c> {
    ingress: &'c Ingress,
    host: Option<&'c str>,
    path: &'c str,
    kind: PathType,
    backend: &'c Backend,
    host_match: Option<HostMatch>,
    path_match: bool,
}

/// Picks the backend for `host` and `path` among the Ingresses of `controller`.
pub fn route<'c>(c: &'c Cluster, controller: usize, host: &str, path: &str) -> (Step, Option<&'c Backend>) {
    let ingresses = served_by(c, controller);
    let mut all: Vec<Candidate> = Vec::new();
    for ing in &ingresses {
        for rule in &ing.rules {
            for p in &rule.paths {
                all.push(Candidate {
                    ingress: ing,
                    host: rule.host.as_deref(),
                    path: &p.path,
                    kind: p.path_type,
                    backend: &p.backend,
                    host_match: host_match(rule.host.as_deref(), host),
                    path_match: path_matches(p.path_type, &p.path, path),
                });
            }
        }
    }
    let best_host = all.iter().filter_map(|x| x.host_match).max();
    // Longest path wins; on equal length Exact beats Prefix; then the first written.
    let rank = |x: &Candidate| (x.path.trim_end_matches('/').len(), x.kind == PathType::Exact);
    let winner = all
        .iter()
        .enumerate()
        .filter(|(_, x)| x.host_match.is_some() && x.host_match == best_host && x.path_match)
        .max_by(|(i, a), (j, b)| rank(a).cmp(&rank(b)).then(j.cmp(i)))
        .map(|(i, _)| i);
    let mut candidates: Vec<HttpCandidate> = all
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let why = match (x.host_match, winner) {
                (None, _) => format!("host {} does not match {host}", x.host.unwrap_or("*")),
                (Some(m), _) if Some(m) < best_host => "a more specific host rule matches this host".to_owned(),
                _ if !x.path_match => match x.kind {
                    PathType::Exact => format!("{path} is not exactly {}", x.path),
                    _ => format!("{} is not a path prefix of {path}, element by element", x.path),
                },
                (_, Some(w)) if w == i => match x.kind {
                    PathType::Exact => "exact match".to_owned(),
                    _ => "the longest matching prefix".to_owned(),
                },
                (_, Some(w)) => {
                    let w = &all[w];
                    if rank(w).0 > rank(x).0 {
                        format!("{} is longer", w.path)
                    } else if w.kind == PathType::Exact && x.kind != PathType::Exact {
                        "an Exact path of the same length wins over a Prefix".to_owned()
                    } else {
                        "an earlier rule with the same path wins".to_owned()
                    }
                }
                (_, None) => "no path matched".to_owned(),
            };
            HttpCandidate {
                ingress: format!("{}/{}", x.ingress.namespace, x.ingress.name),
                host: x.host.unwrap_or("*").to_owned(),
                path: Some(x.path.to_owned()),
                path_type: Some(type_name(x.kind).to_owned()),
                backend: backend_name(c, x.backend),
                matches: x.host_match.is_some() && x.path_match,
                chosen: winner == Some(i),
                why,
            }
        })
        .collect();
    let mut chosen = winner.map(|w| all[w].backend);
    if chosen.is_none() {
        // The Ingress that owns the matched host supplies the default; with no host matched,
        // the first Ingress that has one.
        let owners: Vec<&Ingress> = match best_host {
            Some(best) => all
                .iter()
                .filter(|x| x.host_match == Some(best))
                .map(|x| x.ingress)
                .collect(),
            None => ingresses.clone(),
        };
        if let Some(ing) = owners.iter().find(|i| i.default_backend.is_some()) {
            let b = ing.default_backend.as_ref().expect("found by its presence");
            candidates.push(HttpCandidate {
                ingress: format!("{}/{}", ing.namespace, ing.name),
                host: "default backend".into(),
                path: None,
                path_type: None,
                backend: backend_name(c, b),
                matches: true,
                chosen: true,
                why: "no rule matched, so the Ingress's defaultBackend takes the request".into(),
            });
            chosen = Some(b);
        }
    }
    let how = match chosen {
        Some(b) => format!(
            "the controller opens a new connection of its own to one of {}'s endpoint addresses (it balances over the endpoints itself, not through the ClusterIP)",
            backend_name(c, b)
        ),
        None => "no rule matched and there is no default backend: the controller answers 404 Not Found itself".into(),
    };
    let step = Step::Http {
        host: host.to_owned(),
        path: path.to_owned(),
        candidates,
        backend: chosen.map(|b| backend_name(c, b)),
        how,
    };
    (step, chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_cover_one_label_and_exact_hosts_rank_higher() {
        assert_eq!(
            host_match(Some("*.example.com"), "a.example.com"),
            Some(HostMatch::Wildcard)
        );
        assert_eq!(host_match(Some("*.example.com"), "a.b.example.com"), None);
        assert_eq!(host_match(Some("*.example.com"), "example.com"), None);
        assert_eq!(
            host_match(Some("Shop.Example.com"), "shop.example.com"),
            Some(HostMatch::Exact)
        );
        assert!(HostMatch::Exact > HostMatch::Wildcard && HostMatch::Wildcard > HostMatch::Any);
    }

    #[test]
    fn prefixes_match_whole_path_elements() {
        assert!(prefix_matches("/foo", "/foo/bar"));
        assert!(prefix_matches("/foo/", "/foo"));
        assert!(prefix_matches("/", "/anything"));
        assert!(!prefix_matches("/foo", "/foobar"));
        assert!(!prefix_matches("/foo/bar", "/foo"));
        assert!(path_matches(PathType::Exact, "/foo", "/foo"));
        assert!(!path_matches(PathType::Exact, "/foo", "/foo/"));
    }
}
