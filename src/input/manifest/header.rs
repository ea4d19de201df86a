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
use crate::input::spec::ClusterSpec;
use crate::input::spec::{Networks, TraceSpec, decode_cluster_fields, decode_trace};
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
        cluster: f
            .get("cluster")
            .map(|n| decode_cluster_fields(dec, n, Networks::Optional))
            .unwrap_or_default(),
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
