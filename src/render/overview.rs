//! `explain` of a large cluster: the address plan (with its one row per node), the cloud around
//! the nodes in a few lines, the rules every Service shares, one row per Service, and how to see
//! one node or Service in full. A full explanation of every node and Service would run to
//! thousands of pages; this stays a few lines per node and per Service.

use std::fmt::Write;

use super::explain::{SUMMARY_ABOVE_NODES, SUMMARY_ABOVE_SERVICES, ingresses, shared_rules};
use super::style::{Style, indent};
use crate::compile::ROUTER;
use crate::compile::facts::Facts;
use crate::model::{Cluster, ServiceType};
use crate::net::NetState;

pub(super) fn render(out: &mut String, c: &Cluster, state: &NetState, facts: &Facts, style: Style) {
    if let Some(router) = state.host_named(ROUTER) {
        let routes: usize = state.hosts[router].tables.iter().map(|t| t.len()).sum();
        let _ = writeln!(
            out,
            "{} {}\n  {routes} routes: the way to the internet, the node network, and one route per node podCIDR to that node.\n",
            style.heading("Cloud router"),
            style.dim("(the nodes' gateway)")
        );
    }
    if !facts.load_balancer.is_empty() {
        let _ = writeln!(out, "{}", style.heading("Cloud load balancer"));
        let mut t = style.table(&["address", "service", "policy", "nodes passing the health check"]);
        for (si, backends) in &facts.load_balancer {
            let s = &c.services[*si];
            let healthy = backends.iter().filter(|b| b.healthy).count();
            t.add_row(vec![
                s.load_balancer_ip.map(|ip| ip.to_string()).unwrap_or_default(),
                s.qualified_name(),
                s.external_traffic_policy.to_string(),
                format!("{healthy} of {}", backends.len()),
            ]);
        }
        let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));
    }
    shared_rules(out, facts, style);
    services(out, c, style);
    if !c.ingresses.is_empty() {
        ingresses(out, c, style);
    }
    let _ = writeln!(
        out,
        "This cluster has {} nodes and {} Services: above {SUMMARY_ABOVE_NODES} nodes or {SUMMARY_ABOVE_SERVICES} Services, explain shows each in one row.\n\
         See one in full: `k8snet explain --node NAME` (its interfaces, routes and pods) or `k8snet explain --service NAME` (its endpoints and kube-proxy rules on every node).",
        c.nodes.len(),
        c.services.len()
    );
}

fn services(out: &mut String, c: &Cluster, style: Style) {
    let _ = writeln!(out, "{}", style.heading("Services"));
    let mut t = style.table(&["service", "type", "address", "ports", "endpoints", "on nodes"]);
    for s in &c.services {
        let mut address = match s.cluster_ip {
            Some(ip) => ip.to_string(),
            None => "headless".to_owned(),
        };
        if let Some(lb) = s.load_balancer_ip {
            address.push_str(&format!(", load balancer {lb}"));
        }
        let ports: Vec<String> = s
            .ports
            .iter()
            .map(|p| match p.node_port {
                Some(np) => format!("{}/{} (nodePort {np})", p.port, p.protocol),
                None => format!("{}/{}", p.port, p.protocol),
            })
            .collect();
        let mut endpoints: Vec<usize> = s.ports.iter().flat_map(|p| &p.endpoints).map(|e| e.pod).collect();
        endpoints.sort_unstable();
        endpoints.dedup();
        let mut nodes: Vec<usize> = endpoints.iter().map(|&pod| c.pods[pod].node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        let mut kind = s.kind.to_string();
        if s.kind != ServiceType::ClusterIP {
            kind.push_str(&format!(" ({})", s.external_traffic_policy));
        }
        t.add_row(vec![
            s.qualified_name(),
            kind,
            address,
            ports.join(", "),
            endpoints.len().to_string(),
            match nodes.as_slice() {
                [] => "-".to_owned(),
                [one] => c.nodes[*one].name.clone(),
                many => format!("{} nodes", many.len()),
            },
        ]);
    }
    let _ = writeln!(out, "{}\n", indent(&t.to_string(), 2));
}

#[cfg(test)]
mod tests {
    use crate::input::{Source, parse};
    use crate::render::explain::{Filter, SUMMARY_ABOVE_NODES, render, shown};
    use crate::render::style::Style;

    /// A cluster of `nodes` nodes, one pod on each, and one Service over all of them.
    fn cluster(nodes: usize) -> crate::model::Cluster {
        let mut text = String::from(
            "cluster:\n  name: wide\n  nodeNetwork: 10.100.0.0/16\n  gateway: 10.100.0.1\n  podNetwork: 10.0.0.0/14\n  serviceNetwork: 10.96.0.0/16\n  cni: kubenet\n  kubeProxy: iptables\nnodes:\n",
        );
        for i in 1..=nodes {
            text.push_str(&format!(
                "  - {{name: node-{i}, ip: 10.100.0.{}, podCIDR: 10.0.{i}.0/24}}\n",
                i + 1
            ));
        }
        text.push_str("pods:\n");
        for i in 1..=nodes {
            text.push_str(&format!(
                "  - {{name: web-{i}, node: node-{i}, ip: 10.0.{i}.2, labels: {{app: web}}, containers: [{{name: c, ports: [{{containerPort: 8080}}]}}]}}\n"
            ));
        }
        text.push_str("services:\n  - {name: web, clusterIP: 10.96.0.10, selector: {app: web}, ports: [{name: http, port: 80, targetPort: 8080}]}\n");
        let (spec, problems) = parse(&Source {
            name: "wide".into(),
            text,
        })
        .unwrap_or_else(|d| panic!("{d:#?}"));
        assert!(problems.is_empty(), "{problems:#?}");
        crate::model::build(&spec).unwrap_or_else(|e| panic!("{e:#?}")).cluster
    }

    fn explain(c: &crate::model::Cluster, filter: &Filter) -> String {
        let state = crate::compile::compile(c);
        let shown = shown(c, filter);
        let facts = crate::compile::facts::gather(c, &state, &shown.services, shown.whole);
        render(c, &state, &facts, filter, Style::PLAIN)
    }

    #[test]
    fn a_large_cluster_is_summarised_one_row_per_node_and_per_service() {
        let c = cluster(SUMMARY_ABOVE_NODES + 1);
        let out = explain(&c, &Filter::default());
        assert!(!out.contains("Node node-1 "), "no node in full");
        assert!(!out.contains("Service default/web "), "no Service in full");
        assert_eq!(out.matches("│ node-").count(), c.nodes.len(), "one row per node");
        assert!(out.contains("│ default/web "), "one row per Service");
        assert!(out.contains("k8snet explain --node NAME"));
        let one = explain(
            &c,
            &Filter {
                node: Some("node-3".into()),
                service: None,
            },
        );
        assert!(one.contains("Node node-3 "), "one node in full");
        let service = explain(
            &c,
            &Filter {
                node: None,
                service: Some("web".into()),
            },
        );
        assert!(service.contains("kube-proxy rules for default/web:http on every node"));
    }

    #[test]
    fn a_small_cluster_is_shown_in_full() {
        let c = cluster(SUMMARY_ABOVE_NODES);
        let out = explain(&c, &Filter::default());
        assert!(out.contains("Node node-1 ") && out.contains("Service default/web "));
        assert!(!out.contains("k8snet explain --node NAME"));
    }
}
