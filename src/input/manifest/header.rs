//! The k8snet header: the facts a cluster's API does not hold, written by the user in the same
//! input as the manifests.
//!
//! ```yaml
//! apiVersion: k8snet/v1
//! kind: Cluster
//! cluster: {nodeNetwork: 10.100.0.0/24, serviceNetwork: 10.96.0.0/12}   # the scenario's fields
//! ingressControllers: {nginx: ingress-nginx/ingress-nginx-controller}    # class -> Service
//! traces: [...]                                                          # as in a scenario
//! ```
//!
//! Every `cluster:` field is optional here: what is not written is inferred.

use crate::input::decode::{CollectFitted, Decoder, Sp};
use crate::input::spec::{ClusterSpec, HAIRPIN_MODES, TraceSpec, decode_trace};
use crate::input::tree::Node;

pub const API_VERSION: &str = "k8snet/v1";

#[derive(Default)]
pub struct Header {
    pub cluster: ClusterSpec,
    /// Ingress class name to the Service in front of its controller, as written.
    pub ingress_controllers: Vec<(Sp<String>, Sp<String>)>,
    pub traces: Vec<TraceSpec>,
}

pub fn decode(dec: &mut Decoder, node: &Node) -> Header {
    let known = [
        "apiVersion",
        "kind",
        "metadata",
        "cluster",
        "ingressControllers",
        "traces",
    ];
    let Some(f) = dec.fields(node, "the k8snet header", &known) else {
        return Header::default();
    };
    Header {
        cluster: f.get("cluster").map(|n| cluster(dec, n)).unwrap_or_default(),
        ingress_controllers: f
            .get("ingressControllers")
            .map(|n| dec.string_map(n, "ingressControllers"))
            .unwrap_or_default(),
        traces: f
            .get("traces")
            .map(|n| {
                dec.list(n, "`traces`")
                    .iter()
                    .filter_map(|t| decode_trace(dec, t))
                    .collect_fitted()
            })
            .unwrap_or_default(),
    }
}

fn cluster(dec: &mut Decoder, node: &Node) -> ClusterSpec {
    let known = [
        "name",
        "nodeNetwork",
        "gateway",
        "podNetwork",
        "serviceNetwork",
        "cni",
        "kubeProxy",
        "clusterDomain",
        "hairpinMode",
        "bridgeNfCallIptables",
        "nonMasqueradeCIDRs",
        "masqLinkLocal",
    ];
    let Some(f) = dec.fields(node, "the header's `cluster`", &known) else {
        return ClusterSpec::default();
    };
    ClusterSpec {
        name: f.get("name").and_then(|n| dec.string(n, "cluster name")),
        node_network: f.get("nodeNetwork").and_then(|n| dec.cidr(n, "nodeNetwork")),
        gateway: f.get("gateway").and_then(|n| dec.ipv4(n, "gateway address")),
        pod_network: f.get("podNetwork").and_then(|n| dec.cidr(n, "podNetwork")),
        service_network: f.get("serviceNetwork").and_then(|n| dec.cidr(n, "serviceNetwork")),
        cni: f.get("cni").and_then(|n| dec.word(n, "CNI model", &["kubenet"])),
        kube_proxy: f
            .get("kubeProxy")
            .and_then(|n| dec.word(n, "kube-proxy mode", &["iptables"])),
        cluster_domain: f.get("clusterDomain").and_then(|n| dec.string(n, "cluster domain")),
        hairpin_mode: f
            .get("hairpinMode")
            .and_then(|n| dec.word(n, "hairpin mode", HAIRPIN_MODES)),
        bridge_nf_call_iptables: f
            .get("bridgeNfCallIptables")
            .and_then(|n| dec.bool(n, "bridgeNfCallIptables")),
        non_masquerade_cidrs: f.get("nonMasqueradeCIDRs").map(|n| {
            dec.list(n, "nonMasqueradeCIDRs")
                .iter()
                .filter_map(|i| dec.cidr(i, "non-masquerade CIDR"))
                .collect_fitted()
        }),
        masq_link_local: f.get("masqLinkLocal").and_then(|n| dec.bool(n, "masqLinkLocal")),
    }
}
