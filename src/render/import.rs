//! `k8snet import`: manifests written out in the scenario format, each value with a comment
//! naming the file and line it came from, so the result can be read, edited and traced.
//!
//! Objects keep the order the input lists them in (kubectl's: by namespace, then name, within
//! each kind). The cluster's inferred facts are written with the assumption that made them.

use std::fmt::Write;

use crate::diagnostic::Span;
use crate::input::decode::Sp;
use crate::input::endpoints::EndpointSpec;
use crate::input::manifest::Report;
use crate::input::sources::Inputs;
use crate::input::spec::*;

/// The scenario as text: the header comments, then `cluster:`, `nodes:`, `pods:`,
/// `services:`, `ingresses:`, `namespaces:`, `networkPolicies:` and any `traces:` of the k8snet
/// header.
pub fn scenario(s: &Scenario, inputs: &Inputs, report: &Report) -> String {
    let w = Writer { inputs };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# A k8snet scenario imported from {}.",
        crate::render::untrusted::escape(&inputs.source.name)
    );
    out.push_str("# Each comment names the file and line a value was read from.\n");
    for a in &report.assumptions {
        let _ = writeln!(out, "# assumption: {a}");
    }
    if let Some(line) = report.skipped_line() {
        let _ = writeln!(out, "# {line}");
    }
    w.cluster(&mut out, &s.cluster);
    list(&mut out, "nodes", &s.nodes, |out, n| w.node(out, n));
    list(&mut out, "pods", &s.pods, |out, p| w.pod(out, p));
    list(&mut out, "services", &s.services, |out, sv| w.service(out, sv));
    list(&mut out, "ingresses", &s.ingresses, |out, i| w.ingress(out, i));
    list(&mut out, "namespaces", &s.namespaces, |out, n| {
        let _ = writeln!(out, "{}{}", super::import_policy::namespace(n), w.from(n.span));
    });
    list(&mut out, "networkPolicies", &s.network_policies, |out, p| {
        let _ = writeln!(out, "{}{}", super::import_policy::policy(p), w.from(p.span));
    });
    list(&mut out, "traces", &s.traces, |out, t| w.trace(out, t));
    out
}

fn list<T>(out: &mut String, key: &str, items: &[T], mut each: impl FnMut(&mut String, &T)) {
    if items.is_empty() {
        return;
    }
    let _ = writeln!(out, "{key}:");
    for item in items {
        each(out, item);
    }
}

/// A string as YAML reads it back as the same string: plain when that is safe, else quoted.
pub fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric() || c == '/')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
        && s.parse::<f64>().is_err()
        && !s.starts_with("0x")
        && !s.starts_with("0o");
    if plain {
        s.to_owned()
    } else {
        serde_json::to_string(s).unwrap_or_default()
    }
}

struct Writer<'a> {
    inputs: &'a Inputs,
}

impl Writer<'_> {
    /// ` # file:line`, or nothing for a value k8snet inferred.
    fn from(&self, span: Span) -> String {
        if span.pos.line == 0 {
            "  # assumed: see the assumptions above".to_owned()
        } else {
            format!("  # {}", crate::render::untrusted::escape(&self.inputs.place(span.pos)))
        }
    }

    fn field<T: ToString>(&self, out: &mut String, indent: &str, key: &str, v: &Option<Sp<T>>) {
        if let Some(v) = v {
            let _ = writeln!(
                out,
                "{indent}{key}: {}{}",
                scalar(&v.value.to_string()),
                self.from(v.span)
            );
        }
    }

    fn number<T: ToString>(&self, out: &mut String, indent: &str, key: &str, v: &Option<Sp<T>>) {
        if let Some(v) = v {
            let _ = writeln!(out, "{indent}{key}: {}{}", v.value.to_string(), self.from(v.span));
        }
    }

    fn cluster(&self, out: &mut String, c: &ClusterSpec) {
        out.push_str("cluster:\n");
        let i = "  ";
        self.field(out, i, "name", &c.name);
        self.field(out, i, "nodeNetwork", &c.node_network);
        self.field(out, i, "gateway", &c.gateway);
        self.field(out, i, "podNetwork", &c.pod_network);
        self.field(out, i, "serviceNetwork", &c.service_network);
        self.field(out, i, "cni", &c.cni);
        self.field(out, i, "encapsulation", &c.encapsulation);
        self.field(out, i, "ipPool", &c.ip_pool);
        self.number(out, i, "blockSize", &c.block_size);
        if let Some(subnets) = &c.node_subnets {
            let listed: Vec<String> = subnets.iter().map(|c| c.value.to_string()).collect();
            let _ = writeln!(out, "{i}nodeSubnets: [{}]", listed.join(", "));
        }
        self.field(out, i, "kubeProxy", &c.kube_proxy);
        self.field(out, i, "clusterDomain", &c.cluster_domain);
        self.field(out, i, "hairpinMode", &c.hairpin_mode);
        if let Some(b) = c.bridge_nf_call_iptables {
            let _ = writeln!(out, "{i}bridgeNfCallIptables: {b}");
        }
        if let Some(cidrs) = &c.non_masquerade_cidrs {
            let listed: Vec<String> = cidrs.iter().map(|c| c.value.to_string()).collect();
            let _ = writeln!(out, "{i}nonMasqueradeCIDRs: [{}]", listed.join(", "));
        }
        if let Some(b) = c.masq_link_local {
            let _ = writeln!(out, "{i}masqLinkLocal: {b}");
        }
        if let Some(api) = &c.api_server {
            let _ = writeln!(out, "{i}apiServer:");
            self.field(out, "    ", "node", &api.node);
            self.number(out, "    ", "port", &api.port);
        }
    }

    fn node(&self, out: &mut String, n: &NodeSpec) {
        let mut first = true;
        let mut lead = || if std::mem::take(&mut first) { "- " } else { "  " };
        for (key, value) in [
            ("name", n.name.as_ref().map(|v| (v.value.clone(), v.span))),
            ("ip", n.ip.as_ref().map(|v| (v.value.to_string(), v.span))),
            ("podCIDR", n.pod_cidr.as_ref().map(|v| (v.value.to_string(), v.span))),
        ] {
            if let Some((v, span)) = value {
                let _ = writeln!(out, "{}{key}: {}{}", lead(), scalar(&v), self.from(span));
            }
        }
    }

    fn pod(&self, out: &mut String, p: &PodSpec) {
        let _ = writeln!(
            out,
            "- name: {}{}",
            p.name.as_ref().map_or(String::new(), |n| scalar(&n.value)),
            p.name.as_ref().map_or(String::new(), |n| self.from(n.span))
        );
        let i = "  ";
        self.field(out, i, "namespace", &p.namespace);
        self.field(out, i, "node", &p.node);
        self.field(out, i, "ip", &p.ip);
        if p.host_network {
            let _ = writeln!(out, "{i}hostNetwork: true");
        }
        if let Some(r) = &p.conditions.ready
            && !r.value
        {
            let _ = writeln!(out, "{i}ready: false{}", self.from(r.span));
        }
        if let Some(t) = &p.conditions.terminating
            && t.value
        {
            let _ = writeln!(out, "{i}terminating: true{}", self.from(t.span));
        }
        if let Some((first, _)) = p.labels.first() {
            let _ = writeln!(out, "{i}labels: {{{}}}{}", pairs(&p.labels), self.from(first.span));
        }
        if p.containers.is_empty() {
            let _ = writeln!(out, "{i}containers: []");
            return;
        }
        let _ = writeln!(out, "{i}containers:");
        for c in &p.containers {
            let ports: Vec<String> = c
                .ports
                .iter()
                .map(|port| {
                    let mut fields = Vec::new();
                    if let Some(n) = &port.name {
                        fields.push(format!("name: {}", scalar(&n.value)));
                    }
                    if let Some(n) = &port.container_port {
                        fields.push(format!("containerPort: {}", n.value));
                    }
                    if let Some(n) = &port.protocol {
                        fields.push(format!("protocol: {}", n.value));
                    }
                    format!("{{{}}}", fields.join(", "))
                })
                .collect();
            let name = c.name.as_ref().map_or(String::new(), |n| scalar(&n.value));
            let place = c.name.as_ref().map_or(String::new(), |n| self.from(n.span));
            if ports.is_empty() {
                let _ = writeln!(out, "{i}  - {{name: {name}}}{place}");
            } else {
                let _ = writeln!(out, "{i}  - {{name: {name}, ports: [{}]}}{place}", ports.join(", "));
            }
        }
    }

    fn service(&self, out: &mut String, s: &ServiceSpec) {
        let _ = writeln!(
            out,
            "- name: {}{}",
            s.name.as_ref().map_or(String::new(), |n| scalar(&n.value)),
            s.name.as_ref().map_or(String::new(), |n| self.from(n.span))
        );
        let i = "  ";
        self.field(out, i, "namespace", &s.namespace);
        self.field(out, i, "type", &s.kind);
        self.field(out, i, "clusterIP", &s.cluster_ip);
        if let Some(sel) = &s.selector {
            let place = sel.first().map_or(String::new(), |(k, _)| self.from(k.span));
            let _ = writeln!(out, "{i}selector: {{{}}}{place}", pairs(sel));
        }
        let _ = writeln!(out, "{i}ports:");
        for p in &s.ports {
            let mut fields = Vec::new();
            if let Some(n) = &p.name {
                fields.push(format!("name: {}", scalar(&n.value)));
            }
            if let Some(n) = &p.port {
                fields.push(format!("port: {}", n.value));
            }
            if let Some(t) = &p.target_port {
                fields.push(format!("targetPort: {}", target(&t.value)));
            }
            if let Some(n) = &p.node_port {
                fields.push(format!("nodePort: {}", n.value));
            }
            if let Some(n) = &p.protocol {
                fields.push(format!("protocol: {}", n.value));
            }
            let _ = writeln!(out, "{i}  - {{{}}}{}", fields.join(", "), self.from(p.span));
        }
        self.field(out, i, "loadBalancerIP", &s.load_balancer_ip);
        if !s.load_balancer_source_ranges.is_empty() {
            let listed: Vec<String> = s
                .load_balancer_source_ranges
                .iter()
                .map(|r| r.value.to_string())
                .collect();
            let _ = writeln!(
                out,
                "{i}loadBalancerSourceRanges: [{}]{}",
                listed.join(", "),
                self.from(s.load_balancer_source_ranges[0].span)
            );
        }
        if !s.external_ips.is_empty() {
            let listed: Vec<String> = s.external_ips.iter().map(|ip| ip.value.to_string()).collect();
            let _ = writeln!(
                out,
                "{i}externalIPs: [{}]{}",
                listed.join(", "),
                self.from(s.external_ips[0].span)
            );
        }
        self.field(out, i, "externalTrafficPolicy", &s.external_traffic_policy);
        self.field(out, i, "internalTrafficPolicy", &s.internal_traffic_policy);
        self.number(out, i, "healthCheckNodePort", &s.health_check_node_port);
        self.field(out, i, "sessionAffinity", &s.session_affinity);
        self.number(out, i, "sessionAffinityTimeoutSeconds", &s.session_affinity_timeout);
        if let Some(endpoints) = &s.endpoints {
            if endpoints.is_empty() {
                let _ = writeln!(out, "{i}endpoints: []");
            } else {
                let _ = writeln!(out, "{i}endpoints:");
                for e in endpoints {
                    let _ = writeln!(out, "{i}  - {}{}", endpoint(e), self.from(e.span));
                }
            }
        }
    }

    fn ingress(&self, out: &mut String, ing: &IngressSpec) {
        let _ = writeln!(
            out,
            "- name: {}{}",
            ing.name.as_ref().map_or(String::new(), |n| scalar(&n.value)),
            ing.name.as_ref().map_or(String::new(), |n| self.from(n.span))
        );
        let i = "  ";
        self.field(out, i, "namespace", &ing.namespace);
        self.field(out, i, "controller", &ing.controller);
        if let Some(b) = &ing.default_backend {
            let _ = writeln!(out, "{i}defaultBackend: {{{}}}{}", backend(b), self.from(b.span));
        }
        if ing.rules.is_empty() {
            return;
        }
        let _ = writeln!(out, "{i}rules:");
        for r in &ing.rules {
            match &r.host {
                Some(h) => {
                    let _ = writeln!(out, "{i}  - host: {}{}", scalar(&h.value), self.from(h.span));
                    let _ = writeln!(out, "{i}    paths:");
                }
                None => {
                    let _ = writeln!(out, "{i}  - paths:");
                }
            }
            for p in &r.paths {
                let mut fields = Vec::new();
                if let Some(path) = &p.path {
                    fields.push(format!("path: {}", scalar(&path.value)));
                }
                if let Some(t) = &p.path_type {
                    fields.push(format!("pathType: {}", t.value));
                }
                fields.push(backend(&p.backend));
                let _ = writeln!(out, "{i}      - {{{}}}{}", fields.join(", "), self.from(p.backend.span));
            }
        }
    }

    fn trace(&self, out: &mut String, t: &TraceSpec) {
        let mut fields = Vec::new();
        let mut text = |key: &str, v: &Option<Sp<String>>| {
            if let Some(v) = v {
                fields.push(format!("{key}: {}", scalar(&v.value)));
            }
        };
        text("from", &t.from);
        text("to", &t.to);
        text("protocol", &t.protocol);
        text("namespace", &t.namespace);
        text("container", &t.container);
        text("endpoint", &t.endpoint);
        text("viaNode", &t.via_node);
        text("expect", &t.expect);
        if let Some(p) = &t.port {
            fields.push(format!("port: {}", p.value));
        }
        if let Some(a) = &t.all_endpoints {
            fields.push(format!("allEndpoints: {}", a.value));
        }
        if let Some(branches) = &t.expect_branches {
            let listed: Vec<String> = branches
                .value
                .iter()
                .map(|(k, v)| format!("{}: {}", scalar(&k.value), scalar(&v.value)))
                .collect();
            fields.push(format!("expect: {{{}}}", listed.join(", ")));
        }
        let _ = writeln!(out, "- {{{}}}{}", fields.join(", "), self.from(t.span));
    }
}

pub(super) fn pairs(list: &[(Sp<String>, Sp<String>)]) -> String {
    list.iter()
        .map(|(k, v)| format!("{}: {}", scalar(&k.value), scalar(&v.value)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn target(t: &TargetPortSpec) -> String {
    match t {
        TargetPortSpec::Number(n) => n.to_string(),
        TargetPortSpec::Name(n) => scalar(n),
    }
}

fn backend(b: &BackendSpec) -> String {
    let mut fields = Vec::new();
    if let Some(s) = &b.service {
        fields.push(format!("service: {}", scalar(&s.value)));
    }
    if let Some(p) = &b.port {
        fields.push(format!("port: {}", target(&p.value)));
    }
    fields.join(", ")
}

fn endpoint(e: &EndpointSpec) -> String {
    let mut fields = Vec::new();
    if let Some(ip) = &e.ip {
        fields.push(format!("ip: {}", ip.value));
    }
    if let Some(n) = &e.node {
        fields.push(format!("nodeName: {}", scalar(&n.value)));
    }
    if let Some(ports) = &e.ports {
        let listed: Vec<String> = ports
            .iter()
            .map(|p| {
                let mut f = Vec::new();
                if let Some(n) = &p.name {
                    f.push(format!("name: {}", scalar(&n.value)));
                }
                if let Some(n) = &p.port {
                    f.push(format!("port: {}", n.value));
                }
                if let Some(n) = &p.protocol {
                    f.push(format!("protocol: {}", n.value));
                }
                format!("{{{}}}", f.join(", "))
            })
            .collect();
        fields.push(format!("ports: [{}]", listed.join(", ")));
    }
    for (key, v) in [
        ("ready", &e.ready),
        ("serving", &e.serving),
        ("terminating", &e.terminating),
    ] {
        if let Some(v) = v {
            fields.push(format!("{key}: {}", v.value));
        }
    }
    format!("{{{}}}", fields.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_would_read_back_as_something_else_are_quoted() {
        assert_eq!(scalar("web-1"), "web-1");
        assert_eq!(scalar("10.0.0.0/8"), "10.0.0.0/8");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("8080"), "\"8080\"");
        assert_eq!(scalar("a b"), "\"a b\"");
        assert_eq!(scalar(""), "\"\"");
        assert_eq!(scalar("*.example.com"), "\"*.example.com\"");
    }
}
