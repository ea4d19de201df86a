//! How ingress-nginx picks a backend for an HTTP request. It merges the rules of every Ingress
//! it serves into one nginx `server` per host (an exact host, a wildcard `*.example.com`
//! covering one label, and the catch-all server `_` for rules without a host), turns each path
//! into nginx `location` blocks (`Exact` into `= /p`; `Prefix` into `/p/` and `= /p`;
//! `ImplementationSpecific` into a plain prefix `/p`, which also matches `/pfoo`), and nginx
//! then picks, for the request's path with repeated slashes merged (`merge_slashes on`), an
//! exact location if one matches, else the longest matching prefix. A request no location
//! matches goes to the server's `/`: the `defaultBackend` of the Ingress that first named the
//! host, or for the catch-all server that of an Ingress with no rules; otherwise the
//! controller's own 404.

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

/// One nginx `location` block: `= PATH` (exact) or a plain prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    exact: bool,
    path: String,
}

/// The locations ingress-nginx writes for an Ingress path (`updateServerLocations` and
/// `buildLocation` in its controller): `Prefix /p` becomes `/p/` and `= /p`, except `/`.
fn locations(kind: PathType, path: &str) -> Vec<Location> {
    let at = |exact: bool, path: &str| Location {
        exact,
        path: path.to_owned(),
    };
    match kind {
        PathType::Exact => vec![at(true, path)],
        PathType::ImplementationSpecific => vec![at(false, path)],
        PathType::Prefix if path == "/" || path.ends_with('/') => vec![at(false, path)],
        PathType::Prefix => vec![at(false, &format!("{path}/")), at(true, path)],
    }
}

/// How a location matches `uri`: `Some((exact, length))`, which nginx ranks exact first, then
/// by the longest prefix.
fn location_match(locations: &[Location], uri: &str) -> Option<(bool, usize)> {
    locations
        .iter()
        .filter(|l| {
            if l.exact {
                uri == l.path
            } else {
                uri.starts_with(&l.path)
            }
        })
        .map(|l| (l.exact, l.path.len()))
        .max()
}

/// The path as nginx matches it: repeated slashes merged into one.
pub fn merge_slashes(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if !(c == '/' && out.ends_with('/')) {
            out.push(c);
        }
    }
    out
}

fn location_text(locations: &[Location]) -> String {
    let shown: Vec<String> = locations
        .iter()
        .map(|l| {
            if l.exact {
                format!("`= {}`", l.path)
            } else {
                format!("`{}`", l.path)
            }
        })
        .collect();
    shown.join(" and ")
}

pub fn backend_name(c: &Cluster, b: &Backend) -> String {
    match b {
        Backend::Service { service, port } => {
            let s = &c.services[*service];
            let p = &s.ports[*port];
            let port = p.name.clone().unwrap_or_else(|| p.port.to_string());
            format!("{}/{}:{port}", s.namespace, s.name)
        }
        Backend::Missing { service, port, .. } => format!("{service}:{port}"),
    }
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
    locations: Vec<Location>,
    path_match: Option<(bool, usize)>,
}

/// Picks the backend for `host` and `path` among the Ingresses of `controller`.
pub fn route<'c>(c: &'c Cluster, controller: usize, host: &str, path: &str) -> (Step, Option<&'c Backend>) {
    let ingresses = served_by(c, controller);
    let uri = merge_slashes(path);
    let mut all: Vec<Candidate> = Vec::new();
    for ing in &ingresses {
        for rule in &ing.rules {
            for p in &rule.paths {
                let locations = locations(p.path_type, &p.path);
                all.push(Candidate {
                    ingress: ing,
                    host: rule.host.as_deref(),
                    path: &p.path,
                    kind: p.path_type,
                    backend: &p.backend,
                    host_match: host_match(rule.host.as_deref(), host),
                    path_match: location_match(&locations, &uri),
                    locations,
                });
            }
        }
    }
    let best_host = all.iter().filter_map(|x| x.host_match).max();
    // nginx: an exact location first, then the longest prefix; on a tie an Exact path (whose
    // `= /p` ingress-nginx keeps over a Prefix path's), then the first written.
    let rank = |x: &Candidate| (x.path_match, x.kind == PathType::Exact);
    let winner = all
        .iter()
        .enumerate()
        .filter(|(_, x)| x.host_match.is_some() && x.host_match == best_host && x.path_match.is_some())
        .max_by(|(i, a), (j, b)| rank(a).cmp(&rank(b)).then(j.cmp(i)))
        .map(|(i, _)| i);
    let mut candidates: Vec<HttpCandidate> = all
        .iter()
        .enumerate()
        .map(|(i, x)| {
            let why = match (x.host_match, winner) {
                (None, _) => format!("host {} does not match {host}", x.host.unwrap_or("*")),
                (Some(m), _) if Some(m) < best_host => "a more specific host rule matches this host".to_owned(),
                _ if x.path_match.is_none() => {
                    format!(
                        "{uri} matches none of its nginx locations, {}",
                        location_text(&x.locations)
                    )
                }
                (_, Some(w)) if w == i => match x.path_match {
                    Some((true, _)) => "exact match".to_owned(),
                    _ => format!(
                        "the longest matching nginx prefix location, {}",
                        location_text(&x.locations)
                    ),
                },
                (_, Some(w)) => {
                    let w = &all[w];
                    match (w.path_match, x.path_match) {
                        (Some((true, _)), Some((false, _))) => {
                            format!("the exact location `= {}` wins over prefixes", w.path)
                        }
                        (Some(a), Some(b)) if a > b => format!("{} is a longer match", w.path),
                        _ if w.kind == PathType::Exact && x.kind != PathType::Exact => {
                            "an Exact path wins over a Prefix path's `= ` location".to_owned()
                        }
                        _ => "an earlier rule with the same path wins".to_owned(),
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
                matches: x.host_match.is_some() && x.path_match.is_some(),
                chosen: winner == Some(i),
                why,
            }
        })
        .collect();
    let mut chosen = winner.map(|w| all[w].backend);
    let mut fallback = "there is no default backend";
    if chosen.is_none() {
        // The server's `/` location: a named host's is the defaultBackend of the Ingress that
        // first named it; the catch-all server's is that of an Ingress with no rules at all.
        let server_host = all
            .iter()
            .find(|x| x.host_match.is_some() && x.host_match == best_host && best_host > Some(HostMatch::Any))
            .and_then(|x| x.host);
        let owner = match server_host {
            Some(h) => {
                fallback = "the Ingress that first names this host has no defaultBackend";
                ingresses
                    .iter()
                    .find(|i| i.rules.iter().any(|r| r.host.as_deref() == Some(h)))
                    .filter(|i| i.default_backend.is_some())
            }
            None => {
                fallback = "no Ingress without rules gives a defaultBackend for hosts no rule names";
                ingresses
                    .iter()
                    .find(|i| i.rules.is_empty() && i.default_backend.is_some())
            }
        };
        if let Some(ing) = owner {
            let b = ing.default_backend.as_ref().expect("found by its presence");
            candidates.push(HttpCandidate {
                ingress: format!("{}/{}", ing.namespace, ing.name),
                host: server_host.unwrap_or("default backend").to_owned(),
                path: None,
                path_type: None,
                backend: backend_name(c, b),
                matches: true,
                chosen: true,
                why: match server_host {
                    Some(_) => "no path matched, so the defaultBackend of the Ingress that first names the host takes the request".into(),
                    None => "no rule names this host, so the catch-all server takes it: the defaultBackend of an Ingress with no rules".into(),
                },
            });
            chosen = Some(b);
        }
    }
    let mut how = match chosen {
        Some(Backend::Missing { exists, .. }) => format!(
            "{} is {}: the controller has no endpoint for it and answers 503 itself",
            backend_name(c, chosen.expect("matched")),
            if *exists {
                "a port the Service does not have"
            } else {
                "a Service that does not exist"
            }
        ),
        Some(b) => format!(
            "the controller opens a new connection of its own to one of {}'s endpoint addresses (it balances over the endpoints itself, not through the ClusterIP)",
            backend_name(c, b)
        ),
        None => format!("no location matched and {fallback}: the controller answers 404 Not Found itself"),
    };
    if uri != path {
        how = format!("nginx merges repeated slashes, so {path} is matched as {uri}; {how}");
    }
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
    fn locations_match_as_nginx_does() {
        let m = |kind, rule: &str, uri: &str| location_match(&locations(kind, rule), uri);
        assert_eq!(m(PathType::Prefix, "/foo", "/foo/bar"), Some((false, 5)));
        assert_eq!(m(PathType::Prefix, "/foo", "/foo"), Some((true, 4)));
        assert_eq!(m(PathType::Prefix, "/foo/", "/foo"), None);
        assert_eq!(m(PathType::Prefix, "/", "/anything"), Some((false, 1)));
        assert_eq!(m(PathType::Prefix, "/foo", "/foobar"), None);
        assert_eq!(
            m(PathType::ImplementationSpecific, "/static", "/staticfiles"),
            Some((false, 7))
        );
        assert_eq!(m(PathType::Exact, "/foo", "/foo"), Some((true, 4)));
        assert_eq!(m(PathType::Exact, "/foo", "/foo/"), None);
    }

    #[test]
    fn repeated_slashes_are_merged() {
        assert_eq!(merge_slashes("//static///logo.png"), "/static/logo.png");
        assert_eq!(merge_slashes("/a/b/"), "/a/b/");
    }
}
