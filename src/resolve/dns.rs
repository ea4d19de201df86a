//! A pod's resolver: with `dnsPolicy: ClusterFirst` the kubelet writes a resolv.conf whose
//! search list starts with the pod's own namespace, and `options ndots:5`. A name with fewer
//! than five dots is tried with each search domain first, then as given.

use std::net::{Ipv4Addr, SocketAddrV4};

use super::{Endpoints, Error, Query, cluster_ip_note, service_port};
use crate::compile::dns::{Record, pod_record};
use crate::model::{Cluster, Protocol};
use crate::trace::{DnsQuery, Step};

pub const NDOTS: u8 = 5;

/// The namespace and name of the cluster DNS Service, as kubeadm and the managed clusters name
/// it; the kubelet's `clusterDNS` (each pod's `nameserver`) is its ClusterIP.
pub const DNS_SERVICE: (&str, &str) = ("kube-system", "kube-dns");

/// Where a pod's resolver sends its queries: UDP port 53 of the cluster DNS Service's
/// ClusterIP, or why there is no such address.
pub fn server(c: &Cluster) -> Result<SocketAddrV4, String> {
    let (ns, name) = DNS_SERVICE;
    let Some(si) = c.service_named(ns, name) else {
        return Err(format!(
            "the cluster has no DNS Service ({ns}/{name}), so the nameserver in the pod's resolv.conf is an address nothing answers on"
        ));
    };
    let ip: Option<Ipv4Addr> = c.services[si].cluster_ip;
    ip.map(|ip| SocketAddrV4::new(ip, 53)).ok_or_else(|| {
        format!("the DNS Service {ns}/{name} is headless: it has no ClusterIP for the pod's resolv.conf to name")
    })
}

pub fn search_list(namespace: &str, domain: &str) -> Vec<String> {
    vec![
        format!("{namespace}.svc.{domain}"),
        format!("svc.{domain}"),
        domain.to_owned(),
    ]
}

/// The names the resolver asks, in order.
pub fn candidates(name: &str, search: &[String]) -> Vec<String> {
    if let Some(absolute) = name.strip_suffix('.') {
        return vec![absolute.to_owned()];
    }
    let expanded = search.iter().map(|d| format!("{name}.{d}"));
    let dots = name.matches('.').count();
    if dots >= usize::from(NDOTS) {
        std::iter::once(name.to_owned()).chain(expanded).collect()
    } else {
        expanded.chain(std::iter::once(name.to_owned())).collect()
    }
}

/// What the cluster DNS answered: a Service's record, or a pod A record read from the name.
pub enum Answer<'r> {
    Service(&'r Record),
    Pod(Ipv4Addr),
}

/// Resolves `name` as a pod in `namespace` would; returns the step to show and the answer.
pub fn resolve<'r>(records: &'r [Record], name: &str, namespace: &str, domain: &str) -> (Step, Option<Answer<'r>>) {
    let search = search_list(namespace, domain);
    let mut queries = Vec::new();
    let mut found = None;
    for candidate in candidates(name, &search) {
        // A headless Service without endpoints has no records at all: the name does not exist.
        let answer = records
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(&candidate) && !r.addrs.is_empty())
            .map(Answer::Service)
            .or_else(|| pod_record(&candidate.to_ascii_lowercase(), domain).map(Answer::Pod));
        queries.push(DnsQuery {
            name: candidate,
            answer: answer.as_ref().map(Answer::addrs),
        });
        if answer.is_some() {
            found = answer;
            break;
        }
    }
    let step = Step::Dns {
        name: name.to_owned(),
        search,
        ndots: NDOTS,
        queries,
        answer: found.as_ref().map(Answer::addrs).unwrap_or_default(),
        record: None,
    };
    (step, found)
}

impl Answer<'_> {
    fn addrs(&self) -> Vec<Ipv4Addr> {
        match self {
            Answer::Service(r) => r.addrs.clone(),
            Answer::Pod(ip) => vec![*ip],
        }
    }
}

/// A name looked up by the sending pod's resolver.
pub(super) fn dns_name(
    c: &Cluster,
    q: &Query<'_>,
    src_pod: Option<usize>,
    ends: &mut Endpoints,
    notes: &mut Vec<String>,
    name: &str,
    port: Option<u16>,
) -> Result<(Option<SocketAddrV4>, Protocol), Error> {
    let tcp = q.protocol.unwrap_or(Protocol::Tcp);
    let pod_hint = |ns: &str| match c.pod_named(ns, name) {
        Some(_) => format!(" (pod {ns}/{name} is pod/{name})"),
        None => String::new(),
    };
    let Some(pi) = src_pod.filter(|&p| !c.pods[p].host_network) else {
        return Err(format!(
            "`{name}` is a DNS name, and only pods resolve cluster DNS names (their resolv.conf points at the cluster DNS); write svc/NAME, pod/NAME, an address, or trace from a pod{}",
            pod_hint(q.namespace)
        ));
    };
    if name.trim_matches('.').is_empty() {
        return Err(format!("`{}` is not a name to resolve", q.to));
    }
    let records = crate::compile::dns::records(c);
    let (mut step, record) = resolve(&records, name, &c.pods[pi].namespace, &c.cluster_domain);
    if let Ok(server) = server(c) {
        let (ns, svc) = DNS_SERVICE;
        notes.push(format!(
            "the resolver asks the cluster DNS at {server} (svc {ns}/{svc}); each query is a packet of its own"
        ));
    }
    let Some(record) = record else {
        let absolute = name.trim_end_matches('.').to_ascii_lowercase();
        let in_cluster = absolute == c.cluster_domain || absolute.ends_with(&format!(".{}", c.cluster_domain));
        if absolute.contains('.') && !in_cluster {
            return Err(format!(
                "`{name}` is not a cluster name: the cluster DNS would forward it upstream, which is not modelled; trace to its address instead"
            ));
        }
        let hint = pod_hint(&c.pods[pi].namespace);
        if !hint.is_empty() {
            notes.push(format!(
                "a pod's resolver does not turn a pod's name into the pod{hint}: DNS has records for Services"
            ));
        }
        ends.dns = Some(step);
        return Ok((None, tcp));
    };
    let q = Query {
        port: q.port.or(port),
        ..*q
    };
    let record = match record {
        Answer::Service(record) => record,
        Answer::Pod(ip) => return pod_address(c, &q, ends, notes, step, ip),
    };
    let si = record.service;
    let s = &c.services[si];
    let (addr, protocol, what) = if record.headless {
        // The answer holds the pods' own addresses: the client connects to one directly.
        let ip = q
            .endpoint
            .filter(|ip| record.addrs.contains(ip))
            .unwrap_or(record.addrs[0]);
        let endpoints: Vec<_> = s
            .ports
            .iter()
            .flat_map(|p| p.endpoints.iter().map(move |e| (p, e)))
            .collect();
        let port = match q.port {
            Some(p) => p,
            None => {
                let ports: Vec<u16> = endpoints
                    .iter()
                    .filter(|(_, e)| e.ip == ip)
                    .map(|(_, e)| e.port)
                    .collect();
                match ports.as_slice() {
                    [only] => *only,
                    [] => {
                        return Err(format!(
                            "{} answers with pod addresses, and none of its ports leads to {ip}; give the port with --port",
                            record.name
                        ));
                    }
                    _ => {
                        return Err(format!("{} has several ports; pick one with --port", record.name));
                    }
                }
            }
        };
        let protocol = q
            .protocol
            .or_else(|| {
                endpoints
                    .iter()
                    .find(|(_, e)| e.ip == ip && e.port == port)
                    .map(|(p, _)| p.protocol)
            })
            .unwrap_or(Protocol::Tcp);
        notes.push(format!(
            "service {} is headless: DNS answers with its pods' own addresses and the client connects to one ({ip}) directly, with no kube-proxy rule involved",
            s.qualified_name()
        ));
        (
            ip,
            (port, protocol),
            format!("pod addresses of headless Service {}", s.qualified_name()),
        )
    } else {
        let ip = record.addrs[0];
        let (port, protocol) = service_port(c, si, &q)?;
        notes.push(cluster_ip_note(c, si, ip, port, protocol));
        super::skipped::notes(c, si, port, protocol, notes);
        (
            ip,
            (port, protocol),
            format!("ClusterIP of Service {}", s.qualified_name()),
        )
    };
    if let Step::Dns { record: r, .. } = &mut step {
        *r = Some(what);
    }
    ends.dns = Some(step);
    Ok((Some(SocketAddrV4::new(addr, protocol.0)), protocol.1))
}

/// A pod A record's answer: the address written in the name, to the port asked for or the only
/// one the pod holding the address listens on.
fn pod_address(
    c: &Cluster,
    q: &Query<'_>,
    ends: &mut Endpoints,
    notes: &mut Vec<String>,
    mut step: Step,
    ip: Ipv4Addr,
) -> Result<(Option<SocketAddrV4>, Protocol), Error> {
    let holder = c.pod_with_own_ip(ip).map(|p| &c.pods[p]);
    let (port, protocol) = match (q.port, holder) {
        (Some(port), _) => {
            let protocol = holder
                .and_then(|p| p.listeners().find(|(_, cp)| cp.port == port))
                .map(|(_, cp)| cp.protocol);
            (port, q.protocol.or(protocol).unwrap_or(Protocol::Tcp))
        }
        (None, Some(pod)) => match pod.listeners().collect::<Vec<_>>().as_slice() {
            [(_, only)] => (only.port, q.protocol.unwrap_or(only.protocol)),
            _ => {
                return Err(format!(
                    "pod {} has {} ports; pick one with --port",
                    pod.qualified_name(),
                    if pod.listeners().next().is_none() {
                        "no"
                    } else {
                        "several"
                    }
                ));
            }
        },
        (None, None) => return Err(format!("give a port for {ip} with --port")),
    };
    notes.push(format!(
        "a pod A record: CoreDNS (`pods insecure`, kubeadm's default) answers {ip} from the name itself, without checking that a pod holds it{}",
        match holder {
            Some(p) => format!(" (pod {} does)", p.qualified_name()),
            None => "; no pod holds it".to_owned(),
        }
    ));
    if let Step::Dns { record, .. } = &mut step {
        *record = Some("pod A record".to_owned());
    }
    ends.dns = Some(step);
    Ok((Some(SocketAddrV4::new(ip, port)), protocol))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(name: &str) -> Vec<String> {
        candidates(name, &search_list("shop", "cluster.local"))
    }

    #[test]
    fn short_names_try_the_search_list_first() {
        assert_eq!(
            names("web"),
            [
                "web.shop.svc.cluster.local",
                "web.svc.cluster.local",
                "web.cluster.local",
                "web"
            ]
        );
        assert_eq!(names("web.shop.svc")[2], "web.shop.svc.cluster.local");
    }

    #[test]
    fn five_dots_or_a_trailing_dot_go_out_as_given_first() {
        assert_eq!(names("a.b.c.d.e.f")[0], "a.b.c.d.e.f");
        assert_eq!(names("web.shop.svc.cluster.local.")[..], ["web.shop.svc.cluster.local"]);
        // Four dots: still searched first, which is why ndots:5 costs extra queries.
        assert_eq!(
            names("web.shop.svc.cluster.local")[0],
            "web.shop.svc.cluster.local.shop.svc.cluster.local"
        );
    }
}
