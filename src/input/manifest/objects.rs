//! Each kind k8snet reads, turned into the scenario's spec: Node, Pod, Service, EndpointSlice,
//! Ingress, IngressClass, NetworkPolicy and Namespace.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use super::{Document, Report, at, get, header, infer, is_object, text_at};
use crate::diagnostic::{Diagnostic, Span};
use crate::input::decode::{CollectFitted, Decoder, Sp, span_of};
use crate::input::endpoints::{EndpointPortSpec, EndpointSpec, PodConditionsSpec};
use crate::input::policy::{NamespaceSpec, PolicySpec};
use crate::input::spec::*;
use crate::input::tree::{Node, Value};

/// What the objects say, before the cluster-wide facts are inferred.
#[derive(Default)]
pub(super) struct Collected {
    pub nodes: Vec<NodeSpec>,
    pub pods: Vec<PodSpec>,
    pub services: Vec<ServiceSpec>,
    /// Per Service (namespace, name): its endpoints, and where the first slice names it.
    pub slices: BTreeMap<(String, String), (Vec<EndpointSpec>, Span)>,
    /// Ingresses with the class they name (`ingressClassName`, or the old annotation).
    pub ingresses: Vec<(IngressSpec, Option<Sp<String>>)>,
    /// IngressClass name to its `spec.controller`.
    pub classes: Vec<(String, String)>,
    pub namespaces: Vec<NamespaceSpec>,
    pub network_policies: Vec<PolicySpec>,
    /// The k8snet header document, kept whole (it is small) since the tree it came from may not be.
    pub header: Option<Node>,
}

pub(super) fn decode(dec: &mut Decoder, documents: &mut [Document], report: &mut Report) -> Scenario {
    let mut collected = Collected::default();
    for doc in documents.iter_mut() {
        let doc = match doc {
            Document::Tree(doc) => doc,
            Document::Decoded(decoded) => {
                decoded.merge_into(dec, &mut collected, report);
                continue;
            }
        };
        if !is_object(doc) {
            dec.push(
                Diagnostic::error("this document is not a Kubernetes object: it has no top-level `apiVersion` and `kind`")
                    .at(span_of(doc))
                    .label("not a manifest")
                    .help("manifests and a k8snet scenario cannot be read together; write the cluster facts in a header document with `apiVersion: k8snet/v1` and `kind: Cluster`"),
            );
            continue;
        }
        let kind = text_at(doc, &["kind"]).unwrap_or_default();
        let items = get(doc, "items").filter(|_| kind == "List" || kind.ends_with("List"));
        match items.map(|i| &i.value) {
            Some(Value::Seq(items)) => {
                for item in items {
                    object(dec, item, &mut collected, report);
                }
            }
            _ => object(dec, doc, &mut collected, report),
        }
    }
    infer::scenario(dec, collected, report)
}

pub(super) fn object(dec: &mut Decoder, node: &Node, out: &mut Collected, report: &mut Report) {
    let api = text_at(node, &["apiVersion"]).unwrap_or_default();
    let kind = text_at(node, &["kind"]).unwrap_or_default();
    let skip = |report: &mut Report, what: String| *report.skipped.entry(what).or_default() += 1;
    match (api, kind) {
        (header::API_VERSION, "Cluster") => match out.header {
            None => out.header = Some(node.clone()),
            Some(_) => second_header(dec, node),
        },
        ("v1", "Node") => {
            if let Some(n) = decode_node(dec, node) {
                out.nodes.push(n);
            }
        }
        ("v1", "Pod") => match decode_pod(dec, node) {
            Ok(p) => out.pods.push(p),
            Err(why) => skip(report, format!("Pod ({why})")),
        },
        ("v1", "Service") => match decode_service(dec, node) {
            Ok(s) => out.services.push(s),
            Err(why) => skip(report, format!("Service ({why})")),
        },
        ("discovery.k8s.io/v1", "EndpointSlice") => {
            if let Err(why) = decode_slice(dec, node, out) {
                skip(report, format!("EndpointSlice ({why})"));
            }
        }
        ("networking.k8s.io/v1", "Ingress") => out.ingresses.push(decode_ingress(dec, node)),
        ("networking.k8s.io/v1", "IngressClass") => {
            if let (Some(name), Some(controller)) = (
                text_at(node, &["metadata", "name"]),
                text_at(node, &["spec", "controller"]),
            ) {
                out.classes.push((name.to_owned(), controller.to_owned()));
            }
        }
        ("networking.k8s.io/v1", "NetworkPolicy") => out.network_policies.push(PolicySpec {
            name: name_of(dec, node, "network policy name"),
            namespace: string_at(dec, node, &["metadata", "namespace"], "namespace"),
            // The API's own spec, decoded as a scenario's `networkPolicies[].spec` is.
            spec: get(node, "spec").and_then(|spec| crate::input::policy::decode_spec(dec, spec)),
            span: span_of(node),
        }),
        ("v1", "Namespace") => out.namespaces.push(NamespaceSpec {
            name: name_of(dec, node, "namespace name"),
            labels: at(node, &["metadata", "labels"])
                .map(|n| dec.string_map(n, "labels"))
                .unwrap_or_default(),
            span: span_of(node),
        }),
        (_, k) => skip(report, k.to_owned()),
    }
}

pub(super) fn second_header(dec: &mut Decoder, node: &Node) {
    dec.push(
        Diagnostic::error("a second k8snet header document")
            .at(span_of(node))
            .help("write the cluster's facts in one `kind: Cluster` document"),
    );
}

/// A string at a path, with a diagnostic when it is there but not a string.
fn string_at(dec: &mut Decoder, node: &Node, path: &[&str], what: &str) -> Option<Sp<String>> {
    at(node, path).and_then(|n| dec.string(n, what))
}

fn name_of(dec: &mut Decoder, node: &Node, what: &str) -> Option<Sp<String>> {
    let name = string_at(dec, node, &["metadata", "name"], what);
    if name.is_none() && at(node, &["metadata", "name"]).is_none() {
        dec.push(
            Diagnostic::error(format!("{what}: the object has no `metadata.name`"))
                .at(span_of(node))
                .label("no name"),
        );
    }
    name
}

/// The first IPv4 address of a list of strings (`podIPs: [{ip: ...}]` or `addresses: [...]`).
fn first_ipv4<'a>(node: Option<&'a Node>, key: Option<&str>) -> Option<&'a Node> {
    let Value::Seq(items) = &node?.value else { return None };
    items.iter().map(|i| key.map_or(Some(i), |k| get(i, k))).find_map(|n| {
        let n = n?;
        matches!(&n.value, Value::Str(s) if s.parse::<Ipv4Addr>().is_ok()).then_some(n)
    })
}

fn decode_node(dec: &mut Decoder, node: &Node) -> Option<NodeSpec> {
    let name = name_of(dec, node, "node name")?;
    let cidr = get(node, "spec")
        .and_then(|spec| {
            get(spec, "podCIDR")
                .filter(|n| matches!(&n.value, Value::Str(s) if !s.contains(':')))
                .or_else(|| first_ipv4_cidr(get(spec, "podCIDRs")))
        })
        .and_then(|n| dec.cidr(n, "podCIDR"));
    if cidr.is_none() {
        dec.push(
            Diagnostic::error(format!("node `{}` has no IPv4 `spec.podCIDR`", name.value))
                .at(name.span)
                .help("every CNI model k8snet has places a node's pods in its podCIDR; a cluster whose CNI allocates pod addresses without one (Calico's own IPAM) is not modelled yet"),
        );
    }
    let addresses = at(node, &["status", "addresses"]);
    let internal = match addresses.map(|a| &a.value) {
        Some(Value::Seq(list)) => list
            .iter()
            .filter(|a| text_at(a, &["type"]) == Some("InternalIP"))
            .filter_map(|a| get(a, "address"))
            .find(|n| matches!(&n.value, Value::Str(s) if s.parse::<Ipv4Addr>().is_ok())),
        _ => None,
    };
    let ip = internal.and_then(|n| dec.ipv4(n, "node InternalIP"));
    if ip.is_none() {
        dec.push(
            Diagnostic::error(format!(
                "node `{}` has no IPv4 InternalIP in `status.addresses`",
                name.value
            ))
            .at(name.span)
            .help("the node's InternalIP is its address on the node network"),
        );
    }
    Some(NodeSpec {
        span: name.span,
        name: Some(name),
        ip,
        pod_cidr: cidr,
        hairpin_mode: None,
        bridge_nf_call_iptables: None,
        routes: Vec::new(),
    })
}

fn first_ipv4_cidr(list: Option<&Node>) -> Option<&Node> {
    let Value::Seq(items) = &list?.value else { return None };
    items
        .iter()
        .find(|n| matches!(&n.value, Value::Str(s) if !s.contains(':')))
}

/// A pod, or why it is not one k8snet can place: not scheduled, finished, or with no address.
fn decode_pod(dec: &mut Decoder, node: &Node) -> Result<PodSpec, &'static str> {
    let phase = text_at(node, &["status", "phase"]);
    if matches!(phase, Some("Succeeded" | "Failed")) {
        return Err("finished");
    }
    let spec = get(node, "spec");
    let node_name = spec.and_then(|s| get(s, "nodeName"));
    if node_name.is_none() {
        return Err("not scheduled");
    }
    let host_network = spec
        .and_then(|s| get(s, "hostNetwork"))
        .and_then(|n| dec.bool(n, "hostNetwork"))
        .unwrap_or(false);
    let ip_node = get(node, "status").and_then(|st| {
        get(st, "podIP")
            .filter(|n| matches!(&n.value, Value::Str(s) if s.parse::<Ipv4Addr>().is_ok()))
            .or_else(|| first_ipv4(get(st, "podIPs"), Some("ip")))
    });
    if ip_node.is_none() && !host_network {
        return Err("no IPv4 address yet");
    }
    let name = name_of(dec, node, "pod name");
    let containers = match spec.and_then(|s| get(s, "containers")) {
        Some(list) => dec
            .list(list, "`spec.containers`")
            .iter()
            .map(|c| decode_container(dec, c))
            .collect_fitted(),
        None => Vec::new(),
    };
    let conditions = at(node, &["status", "conditions"]);
    let ready_condition = match conditions.map(|c| &c.value) {
        Some(Value::Seq(list)) => list.iter().find(|c| text_at(c, &["type"]) == Some("Ready")),
        _ => None,
    };
    let ready = match ready_condition {
        Some(c) => Some(Sp::new(
            text_at(c, &["status"]) == Some("True"),
            get(c, "status").map_or(span_of(c), span_of),
        )),
        None => phase.filter(|p| *p != "Running").map(|_| Sp::new(false, span_of(node))),
    };
    let terminating = at(node, &["metadata", "deletionTimestamp"]).map(|n| Sp::new(true, span_of(n)));
    Ok(PodSpec {
        span: name.as_ref().map_or(span_of(node), |n| n.span),
        name,
        namespace: string_at(dec, node, &["metadata", "namespace"], "namespace"),
        node: node_name.and_then(|n| dec.string(n, "nodeName")),
        // A hostNetwork pod has its node's address; the scenario takes it from the node.
        ip: if host_network {
            None
        } else {
            ip_node.and_then(|n| dec.ipv4(n, "pod IP"))
        },
        host_network,
        labels: at(node, &["metadata", "labels"])
            .map(|n| dec.string_map(n, "labels"))
            .unwrap_or_default(),
        containers,
        conditions: PodConditionsSpec { ready, terminating },
    })
}

fn decode_container(dec: &mut Decoder, node: &Node) -> ContainerSpec {
    let ports = match get(node, "ports") {
        Some(list) => dec
            .list(list, "`ports`")
            .iter()
            .map(|p| ContainerPortSpec {
                name: string_at(dec, p, &["name"], "port name"),
                container_port: get(p, "containerPort").and_then(|n| dec.port(n, "containerPort")),
                protocol: get(p, "protocol").and_then(|n| dec.word(n, "protocol", PROTOCOLS)),
                span: span_of(p),
            })
            .collect_fitted(),
        None => Vec::new(),
    };
    ContainerSpec {
        name: string_at(dec, node, &["name"], "container name"),
        ports,
    }
}

fn target_port(dec: &mut Decoder, node: &Node, what: &str) -> Option<Sp<TargetPortSpec>> {
    match &node.value {
        Value::Str(s) => Some(Sp::new(TargetPortSpec::Name(s.clone()), span_of(node))),
        _ => dec
            .port(node, what)
            .map(|p| Sp::new(TargetPortSpec::Number(p.value), p.span)),
    }
}

/// `spec.externalIPs`: the IPv4 addresses; an IPv6 one is left out with a warning, as k8snet
/// models IPv4 only.
fn external_ips(dec: &mut Decoder, node: &Node) -> Vec<Sp<Ipv4Addr>> {
    let mut ips = Vec::new();
    for item in dec.list(node, "externalIPs") {
        if matches!(&item.value, Value::Str(s) if s.contains(':')) {
            dec.push(
                Diagnostic::warning("an IPv6 externalIP is left out: k8snet models IPv4 only")
                    .at(span_of(item))
                    .label("skipped"),
            );
            continue;
        }
        ips.extend(dec.ipv4(item, "externalIP"));
    }
    ips
}

fn decode_service(dec: &mut Decoder, node: &Node) -> Result<ServiceSpec, &'static str> {
    let empty = Node {
        pos: node.pos,
        value: Value::Map(Vec::new()),
    };
    let spec = get(node, "spec").unwrap_or(&empty);
    let kind = text_at(spec, &["type"]).unwrap_or("ClusterIP");
    if kind == "ExternalName" {
        return Err("ExternalName");
    }
    if text_at(spec, &["clusterIP"]).is_some_and(|ip| ip.contains(':')) {
        return Err("IPv6");
    }
    let name = name_of(dec, node, "service name");
    let external_ips = get(spec, "externalIPs")
        .map(|n| external_ips(dec, n))
        .unwrap_or_default();
    let affinity = get(spec, "sessionAffinity").and_then(|n| dec.word(n, "sessionAffinity", &["None", "ClientIP"]));
    let client_ip = affinity.as_ref().is_some_and(|a| a.value == "ClientIP");
    let ports = match get(spec, "ports") {
        Some(list) => dec
            .list(list, "`spec.ports`")
            .iter()
            .map(|p| ServicePortSpec {
                name: string_at(dec, p, &["name"], "port name"),
                port: get(p, "port").and_then(|n| dec.port(n, "port")),
                target_port: get(p, "targetPort").and_then(|n| target_port(dec, n, "targetPort")),
                node_port: get(p, "nodePort")
                    .filter(|_| kind != "ClusterIP")
                    .and_then(|n| dec.integer(n, "nodePort", 0, 65535)),
                protocol: get(p, "protocol").and_then(|n| dec.word(n, "protocol", PROTOCOLS)),
                span: span_of(p),
            })
            .collect_fitted(),
        None => Vec::new(),
    };
    let load_balancer_ip = first_ipv4(at(node, &["status", "loadBalancer", "ingress"]), Some("ip"))
        .filter(|_| kind == "LoadBalancer")
        .and_then(|n| dec.ipv4(n, "load-balancer ingress IP"));
    let ranges = get(spec, "loadBalancerSourceRanges")
        .filter(|_| kind == "LoadBalancer")
        .map(|n| {
            dec.list(n, "loadBalancerSourceRanges")
                .iter()
                .filter_map(|i| dec.cidr(i, "source range"))
                .collect_fitted()
        })
        .unwrap_or_default();
    // The API takes an external policy for any Service reachable from outside, externalIPs
    // included.
    let external = kind != "ClusterIP" || !external_ips.is_empty();
    Ok(ServiceSpec {
        span: name.as_ref().map_or(span_of(node), |n| n.span),
        name,
        namespace: string_at(dec, node, &["metadata", "namespace"], "namespace"),
        kind: get(spec, "type").and_then(|n| dec.word(n, "service type", &["ClusterIP", "NodePort", "LoadBalancer"])),
        cluster_ip: get(spec, "clusterIP").and_then(|n| dec.string(n, "clusterIP")),
        selector: get(spec, "selector").map(|n| dec.string_map(n, "selector")),
        ports,
        load_balancer_ip,
        load_balancer_source_ranges: ranges,
        external_ips,
        external_traffic_policy: get(spec, "externalTrafficPolicy")
            .filter(|_| external)
            .and_then(|n| dec.word(n, "externalTrafficPolicy", &["Cluster", "Local"])),
        internal_traffic_policy: get(spec, "internalTrafficPolicy")
            .and_then(|n| dec.word(n, "internalTrafficPolicy", &["Cluster", "Local"])),
        health_check_node_port: get(spec, "healthCheckNodePort")
            .filter(|_| kind == "LoadBalancer")
            .and_then(|n| dec.port(n, "healthCheckNodePort")),
        session_affinity_timeout: at(spec, &["sessionAffinityConfig", "clientIP", "timeoutSeconds"])
            .filter(|_| client_ip)
            .and_then(|n| dec.integer(n, "timeoutSeconds", 1, 86400)),
        session_affinity: affinity,
        endpoints: None,
    })
}

/// An EndpointSlice's endpoints, added to its Service's.
fn decode_slice(dec: &mut Decoder, node: &Node, out: &mut Collected) -> Result<(), &'static str> {
    if text_at(node, &["addressType"]).is_some_and(|t| t != "IPv4") {
        return Err("not IPv4");
    }
    let label = at(node, &["metadata", "labels", "kubernetes.io/service-name"]);
    let Some(service) = label.and_then(|n| dec.string(n, "service name")) else {
        return Err("no kubernetes.io/service-name label");
    };
    let namespace = text_at(node, &["metadata", "namespace"])
        .unwrap_or("default")
        .to_owned();
    let ports: Option<Vec<EndpointPortSpec>> = get(node, "ports").map(|list| {
        dec.list(list, "`ports`")
            .iter()
            .map(|p| EndpointPortSpec {
                name: string_at(dec, p, &["name"], "port name"),
                port: get(p, "port").and_then(|n| dec.port(n, "port")),
                protocol: get(p, "protocol").and_then(|n| dec.word(n, "protocol", PROTOCOLS)),
                span: span_of(p),
            })
            .collect()
    });
    let mut endpoints = Vec::new();
    if let Some(list) = get(node, "endpoints") {
        for e in dec.list(list, "`endpoints`") {
            let flag = |key: &str| {
                at(e, &["conditions", key]).and_then(|n| match n.value {
                    Value::Bool(b) => Some(Sp::new(b, span_of(n))),
                    _ => None,
                })
            };
            endpoints.push(EndpointSpec {
                ip: first_ipv4(get(e, "addresses"), None).and_then(|n| dec.ipv4(n, "endpoint address")),
                node: string_at(dec, e, &["nodeName"], "nodeName"),
                ports: ports.clone(),
                ready: flag("ready"),
                serving: flag("serving"),
                terminating: flag("terminating"),
                span: span_of(e),
            });
        }
    }
    let entry = out
        .slices
        .entry((namespace, service.value.clone()))
        .or_insert_with(|| (Vec::new(), service.span));
    entry.0.extend(endpoints);
    Ok(())
}

fn decode_ingress(dec: &mut Decoder, node: &Node) -> (IngressSpec, Option<Sp<String>>) {
    let spec = get(node, "spec");
    let class = spec
        .and_then(|s| get(s, "ingressClassName"))
        .or_else(|| at(node, &["metadata", "annotations", "kubernetes.io/ingress.class"]))
        .and_then(|n| dec.string(n, "ingressClassName"));
    let backend = |dec: &mut Decoder, n: &Node| -> Option<BackendSpec> {
        let service = get(n, "service")?;
        let port = get(service, "port");
        Some(BackendSpec {
            service: string_at(dec, service, &["name"], "backend service"),
            port: port
                .and_then(|p| get(p, "number").or_else(|| get(p, "name")))
                .and_then(|p| target_port(dec, p, "backend port")),
            span: span_of(n),
        })
    };
    let default_backend = spec
        .and_then(|s| get(s, "defaultBackend"))
        .and_then(|b| backend(dec, b));
    let mut rules = Vec::new();
    if let Some(list) = spec.and_then(|s| get(s, "rules")) {
        for r in dec.list(list, "`rules`") {
            let mut paths = Vec::new();
            if let Some(pl) = at(r, &["http", "paths"]) {
                for p in dec.list(pl, "`paths`") {
                    let Some(b) = get(p, "backend").and_then(|b| backend(dec, b)) else {
                        continue;
                    };
                    paths.push(IngressPathSpec {
                        path: Some(
                            string_at(dec, p, &["path"], "path").unwrap_or_else(|| Sp::new("/".into(), span_of(p))),
                        ),
                        path_type: get(p, "pathType")
                            .and_then(|n| dec.word(n, "pathType", &["Exact", "Prefix", "ImplementationSpecific"])),
                        backend: b,
                    });
                }
            }
            rules.push(IngressRuleSpec {
                host: string_at(dec, r, &["host"], "host"),
                paths,
            });
        }
    }
    let name = name_of(dec, node, "ingress name");
    (
        IngressSpec {
            span: name.as_ref().map_or(span_of(node), |n| n.span),
            name,
            namespace: string_at(dec, node, &["metadata", "namespace"], "namespace"),
            controller: None,
            default_backend,
            rules,
        },
        class,
    )
}
