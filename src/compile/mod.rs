//! From the cluster model to what Linux would hold on every machine: the CNI plugin's namespaces,
//! interfaces and routes, the cloud's router, and kube-proxy's netfilter rules.
//!
//! Each CNI model and each kube-proxy mode is a module of its own; this one only puts them
//! together in a fixed order, so the same cluster always compiles to the same state.

pub mod cloud;
pub mod cni;
pub mod dns;
pub mod external_ips;
pub mod facts;
pub mod kube_proxy;
pub mod kube_router;
pub mod names;

/// The CNI skeleton's old name, from when kubenet was the only model.
pub use cni as kubenet;

use crate::model::Cluster;
use crate::net::NetState;

/// Names of the hosts that are not nodes or pods.
pub const ROUTER: &str = "router";
pub const LOAD_BALANCER: &str = "cloud-lb";
pub const INTERNET: &str = "internet";

pub fn compile(cluster: &Cluster) -> NetState {
    let mut state = cni::compile(cluster);
    let nftables = (cluster.kube_proxy == crate::model::KubeProxyMode::Nftables).then(|| {
        (
            kube_proxy::nftables::KubeProxy::new(cluster),
            kube_proxy::nftables::nat(cluster),
        )
    });
    let mut ipvs =
        (cluster.kube_proxy == crate::model::KubeProxyMode::Ipvs).then(|| kube_proxy::ipvs::KubeProxy::new(cluster));
    let iptables = (nftables.is_none() && ipvs.is_none() && cluster.kube_proxy != crate::model::KubeProxyMode::None)
        .then(|| kube_proxy::KubeProxy::new(cluster));
    let listeners = kube_proxy::listeners(cluster);
    let kube_router = (cluster.network_policy == crate::model::policy::Enforcer::KubeRouter)
        .then(|| kube_router::KubeRouter::new(cluster, iptables.as_ref()));
    for i in 0..state.hosts.len() {
        if cluster.kube_proxy == crate::model::KubeProxyMode::None {
            break;
        }
        if let crate::net::Role::Node { name } = state.hosts.role(i)
            && let Some(node) = cluster.node_named(name)
        {
            let host = &mut state.hosts[i];
            if let Some((kube_proxy, nat)) = &nftables {
                host.nat = crate::net::iptables::Table::over(std::sync::Arc::clone(nat));
                host.nftables = Some(kube_proxy.table(node));
            } else if let Some(kube_proxy) = &iptables {
                (host.nat, host.filter) = kube_proxy.tables(node);
            }
            if let Some(kr) = &kube_router {
                host.filter = kr.filter(node, iptables.as_ref().map(|k| k.own_filter_chains(node)));
                host.ipsets = kr.ipsets();
            }
            if let Some(ipvs) = &mut ipvs {
                ipvs.install(host, node, cluster.nodes[node].ip);
            }
            host.listeners.extend(listeners.iter().cloned());
        }
    }
    state
}

/// The namespace name of a pod's host.
pub fn pod_host_name(namespace: &str, pod: &str) -> String {
    format!("{namespace}/{pod}")
}
