//! The records the cluster DNS (CoreDNS's kubernetes plugin) serves for Services: an A record
//! per Service, holding its ClusterIP, or for a headless Service the addresses of its selected
//! pods; and, with `pods insecure` (kubeadm's Corefile), a pod A record for any address written
//! as `10-0-1-5.NAMESPACE.pod.DOMAIN`.

use std::net::Ipv4Addr;

use crate::model::Cluster;

#[derive(Debug, Clone)]
pub struct Record {
    /// Fully qualified, without the trailing dot: `web.shop.svc.cluster.local`.
    pub name: String,
    /// Sorted; empty for a headless Service with no endpoints (the name exists, with no data).
    pub addrs: Vec<Ipv4Addr>,
    /// Index into `Cluster::services`.
    pub service: usize,
    pub headless: bool,
}

pub fn records(cluster: &Cluster) -> Vec<Record> {
    cluster
        .services
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let addrs = match s.cluster_ip {
                Some(ip) => vec![ip],
                None => {
                    // The EndpointSlice controller lists every selected pod, also one that
                    // lacks a port's named targetPort and also for a Service with no ports at
                    // all; CoreDNS answers with all of them.
                    let selected = s.selector.iter().filter(|sel| !sel.is_empty()).flat_map(|sel| {
                        cluster
                            .pods
                            .iter()
                            .filter(move |p| p.namespace == s.namespace && crate::model::selects(sel, &p.labels))
                            .map(|p| p.ip)
                    });
                    let mut ips: Vec<Ipv4Addr> = s
                        .ports
                        .iter()
                        .flat_map(|p| &p.endpoints)
                        .map(|e| e.ip)
                        .chain(selected)
                        .collect();
                    ips.sort();
                    ips.dedup();
                    ips
                }
            };
            Record {
                name: format!("{}.{}.svc.{}", s.name, s.namespace, cluster.cluster_domain),
                addrs,
                service: i,
                headless: s.cluster_ip.is_none(),
            }
        })
        .collect()
}

/// The address a pod A record names: `10-0-1-5.shop.pod.cluster.local` is 10.0.1.5. Under
/// `pods insecure` CoreDNS answers it without checking that a pod holds the address, in any
/// namespace.
pub fn pod_record(name: &str, domain: &str) -> Option<Ipv4Addr> {
    let rest = name.strip_suffix(domain)?.strip_suffix(".pod.")?;
    let (dashed, namespace) = rest.split_once('.')?;
    if namespace.is_empty() || namespace.contains('.') {
        return None;
    }
    let octets: Vec<&str> = dashed.split('-').collect();
    if octets.len() != 4 {
        return None;
    }
    // CoreDNS turns the dashes back into dots and parses the result as an address.
    octets.join(".").parse().ok()
}

#[cfg(test)]
mod tests {
    use super::pod_record;

    #[test]
    fn pod_records_name_an_address_in_a_namespace() {
        assert_eq!(
            pod_record("10-0-1-5.shop.pod.cluster.local", "cluster.local"),
            Some("10.0.1.5".parse().unwrap())
        );
        assert_eq!(pod_record("10-0-1-5.pod.cluster.local", "cluster.local"), None);
        assert_eq!(pod_record("10-0-1.shop.pod.cluster.local", "cluster.local"), None);
        assert_eq!(pod_record("10-0-1-256.shop.pod.cluster.local", "cluster.local"), None);
        assert_eq!(pod_record("10-0-1-5.shop.svc.cluster.local", "cluster.local"), None);
    }
}
