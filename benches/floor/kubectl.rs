//! A kubectl `-o json` List as plain serde structs holding the fields k8snet reads, and nothing
//! more: no spans, no diagnostics, no validation, every other field skipped by serde. Parsing a
//! dump into these is the floor any loader of the same dump stands on.

// The fields are parsed and never read: parsing them is the point.
#![allow(dead_code)]

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct List {
    pub items: Vec<Object>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Object {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Option<Spec>,
    pub status: Option<Status>,
    pub address_type: Option<String>,
    pub endpoints: Option<Vec<Endpoint>>,
    pub ports: Option<Vec<Port>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    pub name: String,
    pub namespace: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub deletion_timestamp: Option<String>,
}

/// The union of the specs k8snet reads: Node, Pod and Service.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    #[serde(rename = "podCIDR")]
    pub pod_cidr: Option<String>,
    pub node_name: Option<String>,
    pub host_network: Option<bool>,
    pub containers: Option<Vec<Container>>,
    #[serde(rename = "type")]
    pub kind: Option<String>,
    #[serde(rename = "clusterIP")]
    pub cluster_ip: Option<String>,
    pub ports: Option<Vec<Port>>,
    pub selector: Option<BTreeMap<String, String>>,
    pub external_traffic_policy: Option<String>,
    pub internal_traffic_policy: Option<String>,
    pub session_affinity: Option<String>,
    pub health_check_node_port: Option<u16>,
    pub load_balancer_source_ranges: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub name: String,
    pub ports: Option<Vec<Port>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Port {
    pub name: Option<String>,
    pub port: Option<u16>,
    pub container_port: Option<u16>,
    pub target_port: Option<serde_json::Value>,
    pub node_port: Option<u16>,
    pub protocol: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub addresses: Option<Vec<Address>>,
    pub phase: Option<String>,
    #[serde(rename = "podIP")]
    pub pod_ip: Option<String>,
    pub conditions: Option<Vec<Condition>>,
    pub load_balancer: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
pub struct Address {
    pub address: String,
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Endpoint {
    pub addresses: Vec<String>,
    pub conditions: Option<EndpointConditions>,
    pub node_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct EndpointConditions {
    pub ready: Option<bool>,
    pub serving: Option<bool>,
    pub terminating: Option<bool>,
}

pub fn from_json(text: &str) -> Result<List, String> {
    serde_json::from_str(text).map_err(|e| e.to_string())
}
