//! The scenario format as plain serde structs, and nothing more: no spans, no diagnostics, no
//! validation. Parsing a file into these is the floor any loader of the same file stands on.

// The fields are parsed and never read: parsing them is the point.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Scenario {
    pub cluster: Cluster,
    #[serde(default)]
    pub nodes: Vec<Node>,
    #[serde(default)]
    pub pods: Vec<Pod>,
    #[serde(default)]
    pub services: Vec<Service>,
    #[serde(default)]
    pub traces: Vec<TraceCase>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cluster {
    pub name: Option<String>,
    pub node_network: String,
    pub gateway: Option<String>,
    pub pod_network: String,
    pub service_network: String,
    pub cni: Option<String>,
    pub kube_proxy: Option<String>,
    pub hairpin_mode: Option<String>,
    pub bridge_nf_call_iptables: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Node {
    pub name: String,
    pub ip: String,
    #[serde(rename = "podCIDR")]
    pub pod_cidr: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pod {
    pub name: String,
    pub namespace: Option<String>,
    pub node: String,
    pub ip: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub containers: Vec<Container>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    #[serde(default)]
    pub ports: Vec<ContainerPort>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerPort {
    pub name: Option<String>,
    pub container_port: u16,
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub name: String,
    pub namespace: Option<String>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: String,
    pub selector: Option<BTreeMap<String, String>>,
    pub ports: Vec<ServicePort>,
    #[serde(rename = "loadBalancerIP")]
    pub load_balancer_ip: Option<String>,
    pub external_traffic_policy: Option<String>,
    pub internal_traffic_policy: Option<String>,
    pub session_affinity: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServicePort {
    pub name: Option<String>,
    pub port: u16,
    pub target_port: Option<u16>,
    pub node_port: Option<u16>,
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct TraceCase {
    pub from: String,
    pub to: String,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub expect: String,
}

/// The same parse budget the scenario loader gives serde-saphyr, so the floor reads what the
/// loader reads.
pub fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_events: 40_000_000,
            max_nodes: 20_000_000,
            max_aliases: 10_000,
            max_anchors: 10_000,
            max_documents: 1,
        },
        strict_booleans: true,
    }
}

pub fn from_yaml(text: &str) -> Result<Scenario, String> {
    serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|e| e.to_string())
}

pub fn from_json(text: &str) -> Result<Scenario, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}
