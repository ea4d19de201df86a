//! A pod's resolver: with `dnsPolicy: ClusterFirst` the kubelet writes a resolv.conf whose
//! search list starts with the pod's own namespace, and `options ndots:5`. A name with fewer
//! than five dots is tried with each search domain first, then as given.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::compile::dns::Record;
use crate::model::Cluster;
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

/// Resolves `name` as a pod in `namespace` would; returns the step to show and the record found.
pub fn resolve<'r>(records: &'r [Record], name: &str, namespace: &str, domain: &str) -> (Step, Option<&'r Record>) {
    let search = search_list(namespace, domain);
    let mut queries = Vec::new();
    let mut found = None;
    for candidate in candidates(name, &search) {
        // A headless Service without endpoints has no records at all: the name does not exist.
        let record = records
            .iter()
            .find(|r| r.name.eq_ignore_ascii_case(&candidate) && !r.addrs.is_empty());
        queries.push(DnsQuery {
            name: candidate,
            answer: record.map(|r| r.addrs.clone()),
        });
        if record.is_some() {
            found = record;
            break;
        }
    }
    let step = Step::Dns {
        name: name.to_owned(),
        search,
        ndots: NDOTS,
        queries,
        answer: found.map(|r| r.addrs.clone()).unwrap_or_default(),
        record: None,
    };
    (step, found)
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
