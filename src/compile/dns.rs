//! The records the cluster DNS (CoreDNS's kubernetes plugin) serves for Services: an A record
//! per Service, holding its ClusterIP, or for a headless Service the addresses of its endpoint
//! pods.

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
                    let mut ips: Vec<Ipv4Addr> = s.ports.iter().flat_map(|p| &p.endpoints).map(|e| e.ip).collect();
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
