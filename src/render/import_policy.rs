//! `namespaces:` and `networkPolicies:` of an imported scenario, each entry on one line in YAML's
//! flow style, with the API's own field names, so the scenario reads them back as the manifests
//! said them.

use super::import::{pairs, scalar, target};
use crate::input::policy::{
    ExpressionSpec, IpBlockSpec, NamespaceSpec, NetworkPolicySpec, PeerSpec, PolicySpec, PortSpec, RuleSpec,
    SelectorSpec,
};

pub fn namespace(n: &NamespaceSpec) -> String {
    let mut fields = Vec::new();
    if let Some(name) = &n.name {
        fields.push(format!("name: {}", scalar(&name.value)));
    }
    if !n.labels.is_empty() {
        fields.push(format!("labels: {{{}}}", pairs(&n.labels)));
    }
    format!("- {{{}}}", fields.join(", "))
}

pub fn policy(p: &PolicySpec) -> String {
    let mut fields = Vec::new();
    if let Some(name) = &p.name {
        fields.push(format!("name: {}", scalar(&name.value)));
    }
    if let Some(ns) = &p.namespace {
        fields.push(format!("namespace: {}", scalar(&ns.value)));
    }
    if let Some(spec) = &p.spec {
        fields.push(format!("spec: {}", policy_spec(spec)));
    }
    format!("- {{{}}}", fields.join(", "))
}

fn policy_spec(s: &NetworkPolicySpec) -> String {
    let mut fields = Vec::new();
    if let Some(sel) = &s.pod_selector {
        fields.push(format!("podSelector: {}", selector(sel)));
    }
    if let Some(types) = &s.policy_types {
        let listed: Vec<&str> = types.iter().map(|t| t.value.as_str()).collect();
        fields.push(format!("policyTypes: [{}]", listed.join(", ")));
    }
    for (key, peers_key, rules) in [("ingress", "from", &s.ingress), ("egress", "to", &s.egress)] {
        if let Some(rules) = rules {
            let listed: Vec<String> = rules.iter().map(|r| rule(r, peers_key)).collect();
            fields.push(format!("{key}: [{}]", listed.join(", ")));
        }
    }
    format!("{{{}}}", fields.join(", "))
}

fn rule(r: &RuleSpec, peers_key: &str) -> String {
    let mut fields = Vec::new();
    // An absent `from`/`to` (every peer) and an empty one are not the same rule.
    if let Some(peers) = &r.peers {
        let listed: Vec<String> = peers.iter().map(peer).collect();
        fields.push(format!("{peers_key}: [{}]", listed.join(", ")));
    }
    if !r.ports.is_empty() {
        let listed: Vec<String> = r.ports.iter().map(port).collect();
        fields.push(format!("ports: [{}]", listed.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

fn peer(p: &PeerSpec) -> String {
    let mut fields = Vec::new();
    if let Some(sel) = &p.pod_selector {
        fields.push(format!("podSelector: {}", selector(sel)));
    }
    if let Some(sel) = &p.namespace_selector {
        fields.push(format!("namespaceSelector: {}", selector(sel)));
    }
    if let Some(block) = &p.ip_block {
        fields.push(format!("ipBlock: {}", ip_block(block)));
    }
    format!("{{{}}}", fields.join(", "))
}

fn selector(s: &SelectorSpec) -> String {
    let mut fields = Vec::new();
    if !s.match_labels.is_empty() {
        fields.push(format!("matchLabels: {{{}}}", pairs(&s.match_labels)));
    }
    if !s.match_expressions.is_empty() {
        let listed: Vec<String> = s.match_expressions.iter().map(expression).collect();
        fields.push(format!("matchExpressions: [{}]", listed.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

fn expression(e: &ExpressionSpec) -> String {
    let mut fields = Vec::new();
    if let Some(k) = &e.key {
        fields.push(format!("key: {}", scalar(&k.value)));
    }
    if let Some(op) = &e.operator {
        fields.push(format!("operator: {}", scalar(&op.value)));
    }
    if !e.values.is_empty() {
        let listed: Vec<String> = e.values.iter().map(|v| scalar(&v.value)).collect();
        fields.push(format!("values: [{}]", listed.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

fn ip_block(b: &IpBlockSpec) -> String {
    let mut fields = Vec::new();
    if let Some(cidr) = &b.cidr {
        fields.push(format!("cidr: {}", cidr.value));
    }
    if !b.except.is_empty() {
        let listed: Vec<String> = b.except.iter().map(|c| c.value.to_string()).collect();
        fields.push(format!("except: [{}]", listed.join(", ")));
    }
    format!("{{{}}}", fields.join(", "))
}

fn port(p: &PortSpec) -> String {
    let mut fields = Vec::new();
    if let Some(proto) = &p.protocol {
        fields.push(format!("protocol: {}", scalar(&proto.value)));
    }
    if let Some(port) = &p.port {
        fields.push(format!("port: {}", target(&port.value)));
    }
    if let Some(end) = &p.end_port {
        fields.push(format!("endPort: {}", end.value));
    }
    format!("{{{}}}", fields.join(", "))
}
