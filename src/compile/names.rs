//! Names that Kubernetes components derive by hashing: kube-proxy's chain names and the host-side
//! veth names of bridge CNI plugins.

use data_encoding::{BASE32, HEXLOWER};
use sha2::{Digest, Sha256};

use crate::model::{Protocol, Service, ServicePort};

/// kube-proxy's "service port name": `namespace/name:portName`, or `namespace/name` when the
/// port is unnamed. It appears in chain-name hashes and in rule comments.
pub fn service_port_name(service: &Service, port: &ServicePort) -> String {
    match &port.name {
        Some(name) => format!("{}/{}:{name}", service.namespace, service.name),
        None => format!("{}/{}", service.namespace, service.name),
    }
}

fn hash16(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    BASE32.encode(&digest)[..16].to_owned()
}

/// The suffix shared by KUBE-SVC-, KUBE-SVL-, KUBE-EXT- and KUBE-FW- chains of one port.
pub fn service_chain_suffix(port_name: &str, protocol: Protocol) -> String {
    hash16(&format!("{port_name}{}", protocol.lower()))
}

pub fn endpoint_chain(port_name: &str, protocol: Protocol, endpoint: &str) -> String {
    format!(
        "KUBE-SEP-{}",
        hash16(&format!("{port_name}{}{endpoint}", protocol.lower()))
    )
}

/// The host side of a pod's veth pair: a short prefix and a hash of the pod, so it fits the
/// kernel's 15-character limit and stays the same from run to run.
pub fn host_veth(namespace: &str, pod: &str) -> String {
    prefixed_veth("veth", namespace, pod)
}

/// A host-side veth name with another plugin's prefix (`cali`, `lxc`), as long as the kernel
/// allows: the prefix, then hex digits of the same hash. (Calico hashes with SHA-1 and Cilium
/// hashes the endpoint's ID, so the digits differ from theirs; the shape is the same.)
pub fn prefixed_veth(prefix: &str, namespace: &str, pod: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(namespace.as_bytes());
    hasher.update(b"/");
    hasher.update(pod.as_bytes());
    let digits = if prefix == "veth" { 8 } else { 15 - prefix.len() };
    let hex = HEXLOWER.encode(&hasher.finalize()[..8]);
    format!("{prefix}{}", &hex[..digits])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_match_kube_proxy() {
        assert_eq!(
            service_chain_suffix("default/kubernetes:https", Protocol::Tcp),
            "NPX46M4PTMTKRN6Y"
        );
        assert_eq!(
            service_chain_suffix("kube-system/kube-dns:dns", Protocol::Udp),
            "TCOU7JCQXEZGVUNU"
        );
        assert_eq!(service_chain_suffix("shop/web:http", Protocol::Tcp), "67NZLRHBNDSAWJRO");
        assert_eq!(
            endpoint_chain("shop/web:http", Protocol::Tcp, "10.244.1.5:8080"),
            "KUBE-SEP-34ZZ2QFGO32YYXXO"
        );
    }

    #[test]
    fn veth_names_fit_the_kernel_limit() {
        let name = host_veth("a-very-long-namespace-name", "a-very-long-pod-name-indeed");
        assert!(name.len() <= 15, "{name}");
        assert_ne!(host_veth("default", "pod-a"), host_veth("default", "pod-b"));
    }
}
