//! From the cluster model to what Linux would hold on every machine: the CNI plugin's namespaces,
//! interfaces and routes, the cloud's router, and kube-proxy's netfilter rules.
//!
//! Each CNI model and each kube-proxy mode is a module of its own; this one only puts them
//! together in a fixed order, so the same cluster always compiles to the same state.

pub mod cloud;
pub mod dns;
pub mod facts;
pub mod kube_proxy;
pub mod kube_router;
pub mod kubenet;
pub mod names;

use crate::model::Cluster;
use crate::net::NetState;

/// Names of the hosts that are not nodes or pods.
pub const ROUTER: &str = "router";
pub const LOAD_BALANCER: &str = "cloud-lb";
pub const INTERNET: &str = "internet";

pub fn compile(cluster: &Cluster) -> NetState {
    let mut state = kubenet::compile(cluster);
    let kube_proxy = kube_proxy::KubeProxy::new(cluster);
    let listeners = kube_proxy::listeners(cluster);
    let kube_router = (cluster.network_policy == crate::model::policy::Enforcer::KubeRouter)
        .then(|| kube_router::KubeRouter::new(cluster, &kube_proxy));
    for i in 0..state.hosts.len() {
        if let crate::net::Role::Node { name } = state.hosts.role(i)
            && let Some(node) = cluster.node_named(name)
        {
            let (nat, mut filter) = kube_proxy.tables(node);
            let host = &mut state.hosts[i];
            if let Some(kr) = &kube_router {
                filter = kr.filter(node, kube_proxy.own_filter_chains(node));
                host.ipsets = kr.ipsets();
            }
            host.nat = nat;
            host.filter = filter;
            host.listeners.extend(listeners.iter().cloned());
        }
    }
    state
}

/// The namespace name of a pod's host.
pub fn pod_host_name(namespace: &str, pod: &str) -> String {
    format!("{namespace}/{pod}")
}
