//! A plan written out as a scenario, in YAML or JSON, with the field names of docs/scenario.md.
//! Both formats are written from one tree, so they cannot disagree on a name. Each list item
//! takes one line, which keeps a 150,000-pod file small and its error positions useful.

use std::fmt::Write as _;

use super::{CONTAINER_PORT, Case, Options, Plan, PodAt, SERVICE_PORT};
use crate::model::{Cni, HairpinMode, KubeProxyMode, TrafficPolicy};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

enum Value {
    /// Written plain in YAML: every generated string is a name, an address or a Kubernetes
    /// word, none of which YAML would read as anything but a string.
    Str(String),
    Num(u64),
    Bool(bool),
    Map(Vec<(&'static str, Value)>),
    List(Vec<Value>),
}

fn s(text: impl Into<String>) -> Value {
    Value::Str(text.into())
}

/// The scenario, as text in the given format.
pub fn scenario(plan: &Plan, format: Format) -> String {
    let sections = sections(plan);
    match format {
        Format::Yaml => {
            let o = plan.options();
            let mut out = format!(
                "# A generated cluster: {}\n# {} nodes, {} pods, {} Services; the layout is described in docs/generate.md.\n",
                command_line(o),
                o.nodes,
                u64::from(o.nodes) * u64::from(o.pods_per_node),
                plan.services()
            );
            for (key, value) in &sections {
                yaml_section(&mut out, key, value);
            }
            out
        }
        Format::Json => {
            let mut out = String::from("{\n");
            for (n, (key, value)) in sections.iter().enumerate() {
                let _ = write!(out, "  \"{key}\": ");
                match value {
                    Value::List(items) if !items.is_empty() => {
                        out.push_str("[\n");
                        for (m, item) in items.iter().enumerate() {
                            out.push_str("    ");
                            json(&mut out, item);
                            out.push_str(if m + 1 < items.len() { ",\n" } else { "\n" });
                        }
                        out.push_str("  ]");
                    }
                    other => json(&mut out, other),
                }
                out.push_str(if n + 1 < sections.len() { ",\n" } else { "\n" });
            }
            out.push_str("}\n");
            out
        }
    }
}

/// The plan's cases as `k8snet trace --batch` queries, one a line: the same cases as the
/// scenario's `traces:` for the same options.
pub fn queries(plan: &Plan, count: u32) -> String {
    let mut out = String::new();
    for case in plan.cases(count) {
        let (from, to, port) = case_words(plan, case);
        let _ = match port {
            Some(p) => writeln!(out, "{from} {to} --port {p}"),
            None => writeln!(out, "{from} {to}"),
        };
    }
    out
}

/// The options as the command that writes them, so a file says how to make it again.
fn command_line(o: &Options) -> String {
    let mut c = format!(
        "k8snet generate --nodes {} --pods-per-node {} --services-per-node {} --seed {}",
        o.nodes, o.pods_per_node, o.services_per_node, o.seed
    );
    if o.cni != Cni::Bridge {
        let _ = write!(c, " --cni {}", o.cni.word());
    }
    if o.kube_proxy != KubeProxyMode::Iptables {
        let _ = write!(c, " --kube-proxy {}", kube_proxy_word(o.kube_proxy));
    }
    if o.hairpin_mode != HairpinMode::HairpinVeth {
        let _ = write!(c, " --hairpin-mode {}", hairpin_word(o.hairpin_mode));
    }
    if !o.bridge_nf_call_iptables {
        c.push_str(" --bridge-nf-call-iptables false");
    }
    if o.node_ports > 0 {
        let _ = write!(c, " --node-ports {}", o.node_ports);
    }
    if o.load_balancers > 0 {
        let _ = write!(c, " --load-balancers {}", o.load_balancers);
    }
    if o.external_traffic_policy != TrafficPolicy::Cluster {
        let _ = write!(c, " --external-traffic-policy {}", o.external_traffic_policy);
    }
    if o.internal_traffic_policy != TrafficPolicy::Cluster {
        let _ = write!(c, " --internal-traffic-policy {}", o.internal_traffic_policy);
    }
    if o.client_ip_affinity {
        c.push_str(" --session-affinity ClientIP");
    }
    if o.traces > 0 {
        let _ = write!(c, " --traces {}", o.traces);
    }
    c
}

fn hairpin_word(mode: HairpinMode) -> &'static str {
    match mode {
        HairpinMode::HairpinVeth => "hairpin-veth",
        HairpinMode::PromiscuousBridge => "promiscuous-bridge",
        HairpinMode::None => "none",
    }
}

fn kube_proxy_word(mode: KubeProxyMode) -> &'static str {
    match mode {
        KubeProxyMode::Iptables => "iptables",
        KubeProxyMode::Nftables => "nftables",
        KubeProxyMode::Ipvs => "ipvs",
        KubeProxyMode::None => "none",
    }
}

fn sections(plan: &Plan) -> Vec<(&'static str, Value)> {
    let o = plan.options();
    let cluster = Value::Map(vec![
        ("name", s("generated")),
        ("nodeNetwork", s(super::NODE_NETWORK)),
        ("gateway", s(super::GATEWAY.to_string())),
        ("podNetwork", s(super::POD_NETWORK)),
        ("serviceNetwork", s(super::SERVICE_NETWORK)),
        ("cni", s(o.cni.word())),
        ("kubeProxy", s(kube_proxy_word(o.kube_proxy))),
        ("hairpinMode", s(hairpin_word(o.hairpin_mode))),
        ("bridgeNfCallIptables", Value::Bool(o.bridge_nf_call_iptables)),
    ]);
    let nodes = (0..o.nodes)
        .map(|n| {
            Value::Map(vec![
                ("name", s(plan.node_name(n))),
                ("ip", s(plan.node_ip(n).to_string())),
                ("podCIDR", s(plan.pod_cidr(n).to_string())),
            ])
        })
        .collect();
    let pods = (0..o.nodes)
        .flat_map(|node| (0..o.pods_per_node).map(move |index| PodAt { node, index }))
        .map(|p| pod(plan, p))
        .collect();
    let services = (0..plan.services()).map(|n| service(plan, n)).collect();
    let mut out = vec![
        ("cluster", cluster),
        ("nodes", Value::List(nodes)),
        ("pods", Value::List(pods)),
        ("services", Value::List(services)),
    ];
    if o.traces > 0 {
        let traces = plan
            .cases(o.traces)
            .into_iter()
            .map(|case| {
                let (from, to, port) = case_words(plan, case);
                let mut fields = vec![("from", s(from)), ("to", s(to))];
                if let Some(p) = port {
                    fields.push(("port", Value::Num(u64::from(p))));
                }
                fields.push(("expect", s("delivered")));
                Value::Map(fields)
            })
            .collect();
        out.push(("traces", Value::List(traces)));
    }
    out
}

fn pod(plan: &Plan, p: PodAt) -> Value {
    let port = Value::Map(vec![("containerPort", Value::Num(u64::from(CONTAINER_PORT)))]);
    Value::Map(vec![
        ("name", s(plan.pod_name(p))),
        ("node", s(plan.node_name(p.node))),
        ("ip", s(plan.pod_ip(p).to_string())),
        (
            "labels",
            Value::Map(vec![("app", s(plan.service_name(plan.service_of(p))))]),
        ),
        (
            "containers",
            Value::List(vec![Value::Map(vec![
                ("name", s("app")),
                ("ports", Value::List(vec![port])),
            ])]),
        ),
    ])
}

fn service(plan: &Plan, n: u32) -> Value {
    let o = plan.options();
    let kind = plan.service_type(n);
    let mut port = vec![
        ("port", Value::Num(u64::from(SERVICE_PORT))),
        ("targetPort", Value::Num(u64::from(CONTAINER_PORT))),
    ];
    if let Some(np) = plan.node_port(n) {
        port.push(("nodePort", Value::Num(u64::from(np))));
    }
    let mut fields = vec![("name", s(plan.service_name(n)))];
    if kind != "ClusterIP" {
        fields.push(("type", s(kind)));
    }
    fields.push(("clusterIP", s(plan.cluster_ip(n).to_string())));
    fields.push(("selector", Value::Map(vec![("app", s(plan.service_name(n)))])));
    fields.push(("ports", Value::List(vec![Value::Map(port)])));
    if let Some(ip) = plan.load_balancer_ip(n) {
        fields.push(("loadBalancerIP", s(ip.to_string())));
    }
    if kind != "ClusterIP" && o.external_traffic_policy != TrafficPolicy::Cluster {
        fields.push(("externalTrafficPolicy", s(o.external_traffic_policy.to_string())));
    }
    if o.internal_traffic_policy != TrafficPolicy::Cluster {
        fields.push(("internalTrafficPolicy", s(o.internal_traffic_policy.to_string())));
    }
    if o.client_ip_affinity {
        fields.push(("sessionAffinity", s("ClientIP")));
    }
    Value::Map(fields)
}

/// A case as `--from`, `--to` and `--port`.
fn case_words(plan: &Plan, case: Case) -> (String, String, Option<u16>) {
    match case {
        Case::ToService { from, service } => (plan.pod_name(from), format!("svc/{}", plan.service_name(service)), None),
        Case::ToPod { from, to } => (
            plan.pod_name(from),
            format!("pod/{}", plan.pod_name(to)),
            Some(CONTAINER_PORT),
        ),
    }
}

fn yaml_section(out: &mut String, key: &str, value: &Value) {
    match value {
        Value::Map(fields) => {
            let _ = writeln!(out, "{key}:");
            for (k, v) in fields {
                let _ = write!(out, "  {k}: ");
                yaml_flow(out, v);
                out.push('\n');
            }
        }
        Value::List(items) if !items.is_empty() => {
            let _ = writeln!(out, "{key}:");
            for item in items {
                out.push_str("  - ");
                yaml_flow(out, item);
                out.push('\n');
            }
        }
        other => {
            let _ = write!(out, "{key}: ");
            yaml_flow(out, other);
            out.push('\n');
        }
    }
}

fn yaml_flow(out: &mut String, value: &Value) {
    match value {
        Value::Str(text) => out.push_str(text),
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Map(fields) => {
            out.push('{');
            for (n, (k, v)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(k);
                out.push_str(": ");
                yaml_flow(out, v);
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (n, v) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                yaml_flow(out, v);
            }
            out.push(']');
        }
    }
}

fn json(out: &mut String, value: &Value) {
    match value {
        Value::Str(text) => {
            // serde_json escapes whatever needs it; generated strings never do, but the
            // writer should not depend on that.
            out.push_str(&serde_json::Value::String(text.clone()).to_string());
        }
        Value::Num(n) => {
            let _ = write!(out, "{n}");
        }
        Value::Bool(b) => {
            let _ = write!(out, "{b}");
        }
        Value::Map(fields) => {
            out.push('{');
            for (n, (k, v)) in fields.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "\"{k}\": ");
                json(out, v);
            }
            out.push('}');
        }
        Value::List(items) => {
            out.push('[');
            for (n, v) in items.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                json(out, v);
            }
            out.push(']');
        }
    }
}
