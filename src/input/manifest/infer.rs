//! What the API does not say, taken from the header or inferred from the objects, each
//! inference reported as an assumption; and the references between objects that do not resolve.

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;

use super::objects::Collected;
use super::{Report, header};
use crate::diagnostic::{Diagnostic, Span};
use crate::input::decode::{Decoder, Sp};
use crate::input::spec::{ClusterSpec, Scenario};

/// The smallest block holding every address from `low` to `high`.
fn block(low: Ipv4Addr, high: Ipv4Addr) -> Ipv4Net {
    let prefix = (u32::from(low) ^ u32::from(high)).leading_zeros() as u8;
    Ipv4Net::new(low, prefix).map(|n| n.trunc()).unwrap_or_default()
}

fn span_or_none(s: Option<Span>) -> Span {
    s.unwrap_or_default()
}

/// The header's word for a field, for messages that ask the user to write it.
fn header_help(field: &str) -> String {
    format!(
        "write `cluster.{field}` in a k8snet header document in the same input (a document with `apiVersion: {}` and `kind: Cluster`); see docs/manifests.md",
        header::API_VERSION
    )
}

pub(super) fn scenario(dec: &mut Decoder, collected: Collected, report: &mut Report) -> Scenario {
    let header = collected
        .header
        .as_ref()
        .map(|h| header::decode(dec, h))
        .unwrap_or_default();
    let Collected {
        nodes,
        mut pods,
        mut services,
        slices,
        ingresses,
        classes,
        namespaces,
        network_policies,
        ..
    } = collected;

    // A pod on a node the input does not hold cannot be placed: it is left out, and said so.
    let node_names: HashSet<&str> = nodes
        .iter()
        .filter_map(|n| n.name.as_ref().map(|n| n.value.as_str()))
        .collect();
    pods.retain(|p| match &p.node {
        Some(n) if !node_names.contains(n.value.as_str()) => {
            dec.push(
                Diagnostic::warning(format!(
                    "pod `{}` runs on node `{}`, which is not in the input",
                    p.name.as_ref().map_or("?", |n| n.value.as_str()),
                    n.value
                ))
                .at(n.span)
                .label("no such node")
                .help("k8snet cannot know that node's address or podCIDR, so it leaves the pod out; add the node to the dump"),
            );
            *report.skipped.entry("Pod (on a node not in the input)".into()).or_default() += 1;
            false
        }
        _ => true,
    });

    // EndpointSlices are the endpoints kube-proxy uses.
    let mut by_service: HashMap<(String, String), usize> = HashMap::new();
    for (i, s) in services.iter().enumerate() {
        if let Some(name) = &s.name {
            let ns = s.namespace.as_ref().map_or("default", |n| n.value.as_str());
            by_service.insert((ns.to_owned(), name.value.clone()), i);
        }
    }
    for ((ns, name), (endpoints, span)) in slices {
        match by_service.get(&(ns.clone(), name.clone())) {
            Some(&i) => services[i].endpoints.get_or_insert_with(Vec::new).extend(endpoints),
            None => dec.push(
                Diagnostic::warning(format!(
                    "an EndpointSlice is for service `{ns}/{name}`, which is not in the input"
                ))
                .at(span)
                .label("no such Service")
                .help("its endpoints are not used: nothing says which address or ports lead to them"),
            ),
        }
    }

    let cluster = cluster(dec, header.cluster, &nodes, &services, report);

    let mut out_ingresses = Vec::new();
    for (mut ing, class) in ingresses {
        let controller = controller_for(
            dec,
            &class,
            &header.ingress_controllers,
            &classes,
            &services,
            report,
            ing.span,
        );
        ing.controller = controller;
        out_ingresses.push(ing);
    }
    Scenario {
        cluster,
        nodes,
        pods,
        services,
        ingresses: out_ingresses,
        traces: header.traces,
        namespaces,
        network_policies,
    }
}

fn cluster(
    dec: &mut Decoder,
    mut c: ClusterSpec,
    nodes: &[crate::input::spec::NodeSpec],
    services: &[crate::input::spec::ServiceSpec],
    report: &mut Report,
) -> ClusterSpec {
    let mut assume = |text: String| report.assumptions.push(text);
    if c.service_network.is_none() {
        let ips: Vec<Ipv4Addr> = services
            .iter()
            .filter_map(|s| s.cluster_ip.as_ref())
            .filter_map(|ip| ip.value.parse().ok())
            .collect();
        match (ips.iter().min(), ips.iter().max()) {
            (Some(&low), Some(&high)) => {
                let kubernetes_ip: Option<Ipv4Addr> = services
                    .iter()
                    .find(|s| {
                        s.name.as_ref().is_some_and(|n| n.value == "kubernetes")
                            && s.namespace.as_ref().is_none_or(|n| n.value == "default")
                    })
                    .and_then(|s| s.cluster_ip.as_ref())
                    .and_then(|ip| ip.value.parse().ok());
                // The API server gives a block's first address to `kubernetes`, so a block whose
                // first address another Service holds cannot be the Service network.
                let first_taken = |net: &Ipv4Net| {
                    net.hosts()
                        .next()
                        .is_some_and(|first| Some(first) != kubernetes_ip && ips.contains(&first))
                };
                let mut net = block(low, high);
                let smallest = net;
                while first_taken(&net)
                    && let Some(wider) = net.supernet()
                {
                    net = wider;
                }
                let why = match kubernetes_ip {
                    Some(ip) => format!(" and the `kubernetes` Service's address {ip}"),
                    None if net != smallest => {
                        ", widened so that its first address is free for the `kubernetes` Service".to_owned()
                    }
                    None => String::new(),
                };
                assume(format!(
                    "cluster.serviceNetwork: {net}, the smallest block holding every ClusterIP{why}"
                ));
                c.service_network = Some(Sp::new(net, Span::default()));
            }
            _ => dec.push(
                Diagnostic::error("cannot infer the Service network: no Service in the input has a ClusterIP")
                    .help(header_help("serviceNetwork")),
            ),
        }
    }
    if c.pod_network.is_none() {
        let cidrs: Vec<Ipv4Net> = nodes
            .iter()
            .filter_map(|n| n.pod_cidr.as_ref())
            .map(|c| c.value)
            .collect();
        match (
            cidrs.iter().map(|c| c.network()).min(),
            cidrs.iter().map(|c| c.broadcast()).max(),
        ) {
            (Some(low), Some(high)) => {
                let net = block(low, high);
                assume(format!(
                    "cluster.podNetwork: {net}, the smallest block holding every node's podCIDR"
                ));
                c.pod_network = Some(Sp::new(net, Span::default()));
            }
            _ => dec.push(
                Diagnostic::error("cannot infer the pod network: no node in the input has a podCIDR")
                    .help(header_help("podNetwork")),
            ),
        }
    }
    if c.node_network.is_none() {
        let ips: Vec<Ipv4Addr> = nodes.iter().filter_map(|n| n.ip.as_ref()).map(|ip| ip.value).collect();
        match (ips.iter().min(), ips.iter().max()) {
            (Some(&low), Some(&high)) => {
                let smallest = block(low, high);
                // A cloud subnet is at least a /24, and its first address is the router's.
                let net = if smallest.prefix_len() > 24 {
                    Ipv4Net::new(low, 24).map(|n| n.trunc()).unwrap_or(smallest)
                } else {
                    smallest
                };
                assume(format!(
                    "cluster.nodeNetwork: {net}, the smallest block (at least a /24) holding every node's InternalIP"
                ));
                c.node_network = Some(Sp::new(net, Span::default()));
            }
            _ => dec.push(
                Diagnostic::error("cannot infer the node network: no node in the input has an InternalIP")
                    .help(header_help("nodeNetwork")),
            ),
        }
    }
    if c.gateway.is_none()
        && let Some(net) = &c.node_network
        && let Some(first) = net.value.hosts().next()
    {
        assume(format!(
            "cluster.gateway: {first}, the first address of the node network (the cloud router)"
        ));
    }
    if c.cni.is_none() {
        assume("cluster.cni: bridge (the API does not say; write `cluster.cni` in the header for flannel, Calico or Cilium)".into());
    }
    if c.kube_proxy.is_none() {
        assume("cluster.kubeProxy: iptables (the API does not say)".into());
    }
    if c.cluster_domain.is_none() {
        assume("cluster.clusterDomain: cluster.local (the API does not say)".into());
    }
    let dns = services.iter().find(|s| {
        s.name.as_ref().is_some_and(|n| n.value == "kube-dns")
            && s.namespace.as_ref().is_some_and(|n| n.value == "kube-system")
    });
    assume(match dns.and_then(|s| s.cluster_ip.as_ref()) {
        Some(ip) => format!("cluster DNS: {} (the `kube-dns` Service in `kube-system`)", ip.value),
        None => "cluster DNS: none (no `kube-dns` Service in `kube-system`), so DNS names do not resolve".into(),
    });
    c
}

/// The Service in front of an Ingress's controller: the header's `ingressControllers` entry for
/// its class, or the one Service the class's controller is known to be installed as.
fn controller_for(
    dec: &mut Decoder,
    class: &Option<Sp<String>>,
    written: &[(Sp<String>, Sp<String>)],
    classes: &[(String, String)],
    services: &[crate::input::spec::ServiceSpec],
    report: &mut Report,
    at: Span,
) -> Option<Sp<String>> {
    let class_name = match class {
        Some(c) => Some(c.value.clone()),
        None if classes.len() == 1 => Some(classes[0].0.clone()),
        None => None,
    };
    let place = class.as_ref().map_or(at, |c| c.span);
    if let Some(name) = &class_name
        && let Some((_, svc)) = written.iter().find(|(k, _)| &k.value == name)
    {
        return Some(svc.clone());
    }
    let controller = class_name
        .as_ref()
        .and_then(|n| classes.iter().find(|(c, _)| c == n))
        .map(|(_, ctl)| ctl.as_str());
    let wanted: Vec<String> = match (&class_name, controller) {
        (_, Some("k8s.io/ingress-nginx")) => vec!["ingress-nginx-controller".into()],
        (Some(n), _) => vec![format!("{n}-controller")],
        (None, _) => Vec::new(),
    };
    let found: Vec<String> = services
        .iter()
        .filter(|s| s.name.as_ref().is_some_and(|n| wanted.contains(&n.value)))
        .map(|s| {
            format!(
                "{}/{}",
                s.namespace.as_ref().map_or("default", |n| n.value.as_str()),
                s.name.as_ref().map_or("", |n| n.value.as_str())
            )
        })
        .collect();
    match (found.as_slice(), &class_name) {
        ([one], Some(name)) => {
            let line = format!(
                "ingressControllers.{name}: {one}, the Service the class's controller{} is installed as",
                controller.map(|c| format!(" ({c})")).unwrap_or_default()
            );
            if !report.assumptions.contains(&line) {
                report.assumptions.push(line);
            }
            Some(Sp::new(one.clone(), span_or_none(Some(place))))
        }
        _ => {
            let name = class_name.unwrap_or_else(|| "CLASS".into());
            dec.push(
                Diagnostic::error(format!("cannot tell which Service is in front of the controller of ingress class `{name}`"))
                    .at(place)
                    .help(format!(
                        "write `ingressControllers: {{{name}: NAMESPACE/SERVICE}}` in a k8snet header document (`apiVersion: {}`, `kind: Cluster`); see docs/manifests.md",
                        header::API_VERSION
                    )),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_smallest_block_holds_both_ends() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(block(ip("10.96.0.1"), ip("10.96.0.10")).to_string(), "10.96.0.0/28");
        assert_eq!(block(ip("10.96.0.1"), ip("10.96.3.10")).to_string(), "10.96.0.0/22");
        assert_eq!(block(ip("10.0.0.7"), ip("10.0.0.7")).to_string(), "10.0.0.7/32");
    }
}
