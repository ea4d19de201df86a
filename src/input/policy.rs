//! NetworkPolicies and namespaces as written: the `networking.k8s.io/v1` NetworkPolicy spec in
//! the API's own shape, every value with its span.
//!
//! [`decode_spec`] reads one policy's `spec` mapping from the document tree and nothing else,
//! so a reader of Kubernetes manifests can hand it a NetworkPolicy object's `spec` node as the
//! scenario reader hands it the `spec` of a `networkPolicies:` entry.

use ipnet::Ipv4Net;

use super::decode::{CollectFitted, Decoder, Sp, span_of};
use super::spec::TargetPortSpec;
use super::tree::{Node, Value};
use crate::diagnostic::Span;

/// An entry of `namespaces:`.
#[derive(Debug, Clone)]
pub struct NamespaceSpec {
    pub name: Option<Sp<String>>,
    pub labels: Vec<(Sp<String>, Sp<String>)>,
    pub span: Span,
}

/// An entry of `networkPolicies:`: the object's name and namespace, and its spec.
#[derive(Debug, Clone)]
pub struct PolicySpec {
    pub name: Option<Sp<String>>,
    pub namespace: Option<Sp<String>>,
    pub spec: Option<NetworkPolicySpec>,
    pub span: Span,
}

/// `NetworkPolicySpec`.
#[derive(Debug, Clone)]
pub struct NetworkPolicySpec {
    pub pod_selector: Option<SelectorSpec>,
    pub policy_types: Option<Vec<Sp<String>>>,
    /// `None` when the field is absent; an empty list when written as `[]`.
    pub ingress: Option<Vec<RuleSpec>>,
    pub egress: Option<Vec<RuleSpec>>,
    pub span: Span,
}

/// `NetworkPolicyIngressRule` or `NetworkPolicyEgressRule`: `from` or `to` is `peers`.
#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// `None` when `from`/`to` is absent (every peer).
    pub peers: Option<Vec<PeerSpec>>,
    pub ports: Vec<PortSpec>,
    pub span: Span,
}

/// `NetworkPolicyPeer`.
#[derive(Debug, Clone)]
pub struct PeerSpec {
    pub pod_selector: Option<SelectorSpec>,
    pub namespace_selector: Option<SelectorSpec>,
    pub ip_block: Option<IpBlockSpec>,
    pub span: Span,
}

/// `LabelSelector`.
#[derive(Debug, Clone)]
pub struct SelectorSpec {
    pub match_labels: Vec<(Sp<String>, Sp<String>)>,
    pub match_expressions: Vec<ExpressionSpec>,
    pub span: Span,
}

/// `LabelSelectorRequirement`.
#[derive(Debug, Clone)]
pub struct ExpressionSpec {
    pub key: Option<Sp<String>>,
    pub operator: Option<Sp<String>>,
    pub values: Vec<Sp<String>>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct IpBlockSpec {
    pub cidr: Option<Sp<Ipv4Net>>,
    pub except: Vec<Sp<Ipv4Net>>,
    pub span: Span,
}

/// `NetworkPolicyPort`.
#[derive(Debug, Clone)]
pub struct PortSpec {
    pub protocol: Option<Sp<String>>,
    pub port: Option<Sp<TargetPortSpec>>,
    pub end_port: Option<Sp<i64>>,
    pub span: Span,
}

pub const OPERATORS: &[&str] = &["In", "NotIn", "Exists", "DoesNotExist"];
pub const POLICY_TYPES: &[&str] = &["Ingress", "Egress"];
pub const ENFORCERS: &[&str] = &["calico", "kube-router", "cilium", "none"];

pub fn decode_namespace(dec: &mut Decoder, node: &Node) -> Option<NamespaceSpec> {
    let f = dec.fields(node, "a namespace", &["name", "labels"])?;
    Some(NamespaceSpec {
        name: dec
            .require(&f, "name", "a namespace")
            .and_then(|n| dec.string(n, "namespace name")),
        labels: f.get("labels").map(|n| dec.string_map(n, "labels")).unwrap_or_default(),
        span: f.span,
    })
}

pub fn decode_policy(dec: &mut Decoder, node: &Node) -> Option<PolicySpec> {
    let f = dec.fields(node, "a network policy", &["name", "namespace", "spec"])?;
    let what = "a network policy";
    Some(PolicySpec {
        name: dec
            .require(&f, "name", what)
            .and_then(|n| dec.string(n, "network policy name")),
        namespace: f.get("namespace").and_then(|n| dec.string(n, "namespace")),
        spec: dec.require(&f, "spec", what).and_then(|n| decode_spec(dec, n)),
        span: f.span,
    })
}

/// One NetworkPolicy's `spec`, from the mapping node that holds it.
pub fn decode_spec(dec: &mut Decoder, node: &Node) -> Option<NetworkPolicySpec> {
    let known = ["podSelector", "policyTypes", "ingress", "egress"];
    let f = dec.fields(node, "a network policy spec", &known)?;
    let rules = |dec: &mut Decoder, key: &str, peers: &'static str| {
        f.get(key).map(|list| {
            dec.list(list, key)
                .iter()
                .filter_map(|r| decode_rule(dec, r, peers))
                .collect_fitted()
        })
    };
    let ingress = rules(dec, "ingress", "from");
    let egress = rules(dec, "egress", "to");
    Some(NetworkPolicySpec {
        pod_selector: dec
            .require(&f, "podSelector", "a network policy spec")
            .and_then(|n| decode_selector(dec, n, "podSelector")),
        policy_types: f.get("policyTypes").map(|n| {
            dec.list(n, "policyTypes")
                .iter()
                .filter_map(|t| dec.word(t, "policy type", POLICY_TYPES))
                .collect()
        }),
        ingress,
        egress,
        span: f.span,
    })
}

fn decode_rule(dec: &mut Decoder, node: &Node, peers_key: &'static str) -> Option<RuleSpec> {
    let what = if peers_key == "from" {
        "an ingress rule"
    } else {
        "an egress rule"
    };
    let f = dec.fields(node, what, &[peers_key, "ports"])?;
    let peers = f.get(peers_key).map(|list| {
        dec.list(list, peers_key)
            .iter()
            .filter_map(|p| decode_peer(dec, p))
            .collect_fitted()
    });
    let ports = f
        .get("ports")
        .map(|list| {
            dec.list(list, "ports")
                .iter()
                .filter_map(|p| decode_port(dec, p))
                .collect_fitted()
        })
        .unwrap_or_default();
    Some(RuleSpec {
        peers,
        ports,
        span: f.span,
    })
}

fn decode_peer(dec: &mut Decoder, node: &Node) -> Option<PeerSpec> {
    let f = dec.fields(node, "a peer", &["podSelector", "namespaceSelector", "ipBlock"])?;
    Some(PeerSpec {
        pod_selector: f
            .get("podSelector")
            .and_then(|n| decode_selector(dec, n, "podSelector")),
        namespace_selector: f
            .get("namespaceSelector")
            .and_then(|n| decode_selector(dec, n, "namespaceSelector")),
        ip_block: f.get("ipBlock").and_then(|n| {
            let b = dec.fields(n, "an ipBlock", &["cidr", "except"])?;
            Some(IpBlockSpec {
                cidr: dec
                    .require(&b, "cidr", "an ipBlock")
                    .and_then(|c| dec.cidr(c, "ipBlock cidr")),
                except: b
                    .get("except")
                    .map(|l| {
                        dec.list(l, "except")
                            .iter()
                            .filter_map(|c| dec.cidr(c, "ipBlock except"))
                            .collect_fitted()
                    })
                    .unwrap_or_default(),
                span: b.span,
            })
        }),
        span: f.span,
    })
}

fn decode_selector(dec: &mut Decoder, node: &Node, what: &str) -> Option<SelectorSpec> {
    // `podSelector:` with nothing after it is YAML's null: the empty selector, as `{}` is.
    if node.value == Value::Null {
        return Some(SelectorSpec {
            match_labels: Vec::new(),
            match_expressions: Vec::new(),
            span: span_of(node),
        });
    }
    let f = dec.fields(node, what, &["matchLabels", "matchExpressions"])?;
    let match_expressions = f
        .get("matchExpressions")
        .map(|list| {
            dec.list(list, "matchExpressions")
                .iter()
                .filter_map(|e| {
                    let ef = dec.fields(e, "a match expression", &["key", "operator", "values"])?;
                    Some(ExpressionSpec {
                        key: dec
                            .require(&ef, "key", "a match expression")
                            .and_then(|k| dec.string(k, "label key")),
                        operator: dec
                            .require(&ef, "operator", "a match expression")
                            .and_then(|o| dec.word(o, "selector operator", OPERATORS)),
                        values: ef
                            .get("values")
                            .map(|l| {
                                dec.list(l, "values")
                                    .iter()
                                    .filter_map(|v| dec.string(v, "label value"))
                                    .collect_fitted()
                            })
                            .unwrap_or_default(),
                        span: ef.span,
                    })
                })
                .collect_fitted()
        })
        .unwrap_or_default();
    Some(SelectorSpec {
        match_labels: f
            .get("matchLabels")
            .map(|n| dec.string_map(n, "matchLabels"))
            .unwrap_or_default(),
        match_expressions,
        span: f.span,
    })
}

fn decode_port(dec: &mut Decoder, node: &Node) -> Option<PortSpec> {
    let f = dec.fields(node, "a network policy port", &["protocol", "port", "endPort"])?;
    Some(PortSpec {
        protocol: f
            .get("protocol")
            .and_then(|n| dec.word(n, "protocol", super::spec::PROTOCOLS)),
        port: f.get("port").and_then(|n| match &n.value {
            Value::Str(s) => Some(Sp::new(TargetPortSpec::Name(s.clone()), span_of(n))),
            _ => dec
                .port(n, "port")
                .map(|p| Sp::new(TargetPortSpec::Number(p.value), p.span)),
        }),
        end_port: f.get("endPort").and_then(|n| dec.integer(n, "endPort", 1, 65535)),
        span: f.span,
    })
}
