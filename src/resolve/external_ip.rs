//! What a trace says when it is sent to one of a Service's `externalIPs`.

use std::net::Ipv4Addr;

use crate::model::{Cluster, KubeProxyMode};

/// A note naming the Service whose externalIP `ip` is, how the address is reached, and, where
/// the kube-proxy mode does not model it, that nothing translates it.
pub fn note(c: &Cluster, ip: Ipv4Addr) -> Option<String> {
    let s = c.services.iter().find(|s| s.external_ips.contains(&ip))?;
    let modelled = matches!(c.kube_proxy, KubeProxyMode::Iptables | KubeProxyMode::Nftables);
    let reached = if c.nodes.iter().any(|n| n.ip == ip) {
        "it is a node's own address".to_owned()
    } else if !modelled {
        "the cloud network does not route it".to_owned()
    } else {
        let node = crate::compile::external_ips::gateway_node(c).map(|n| c.nodes[n].name.as_str());
        format!(
            "the cloud network routes it to {} (Kubernetes does not route externalIPs)",
            node.unwrap_or("no node")
        )
    };
    Some(match c.kube_proxy {
        KubeProxyMode::Ipvs => format!(
            "{ip} is an externalIP of service {}; {reached}; k8snet does not model externalIPs in kube-proxy's IPVS mode, so the trace shows no translation for it",
            s.qualified_name()
        ),
        KubeProxyMode::None => format!(
            "{ip} is an externalIP of service {}; {reached}; k8snet does not model externalIPs in Cilium's kube-proxy replacement, so the trace shows no translation for it",
            s.qualified_name()
        ),
        _ => format!(
            "{ip} is an externalIP of service {}; {reached}, and kube-proxy on every node sends it to the Service's external chain (externalTrafficPolicy {})",
            s.qualified_name(),
            s.external_traffic_policy
        ),
    })
}
